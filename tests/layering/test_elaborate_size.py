"""Every gateware component's ``elaborate()`` stays readable: at most about 150 lines. A longer
one is split into named parts (components of their own, or helpers for one pipeline stage), as
docs/gateware.md describes."""

from __future__ import annotations

import ast
from pathlib import Path

import ohmflow.hdl

LIMIT = 160  # "about 150": a few lines of slack, not a second screen
HDL = Path(ohmflow.hdl.__file__).resolve().parent


def elaborate_lengths() -> dict[str, int]:
    """``path:line`` of every ``elaborate`` method under hdl/ and its length in lines."""
    out = {}
    for path in sorted(HDL.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and node.name == "elaborate":
                out[f"{path.relative_to(HDL)}:{node.lineno}"] = node.end_lineno - node.lineno + 1
    return out


def test_there_are_components_to_check():
    lengths = elaborate_lengths()
    assert len(lengths) > 20
    assert any(k.startswith("link/command_processor.py") for k in lengths)


def test_no_elaborate_is_longer_than_the_limit():
    long = {k: n for k, n in elaborate_lengths().items() if n > LIMIT}
    assert not long, f"elaborate() longer than {LIMIT} lines: {long}"
