"""ohmflow.nn sits on top: no other package imports it, and only it imports torch."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


#: modules that may import torch (never ohmflow.nn), and why
TORCH_PEERS = {"host/bench_twin.py": "runs aihwkit, a torch library, beside the twin"}


@pytest.mark.parametrize("folder", ["emulator", "hdl", "sim", "boards", "host"])
def test_no_other_package_imports_ohmflow_nn_or_torch(folder):
    bad = {}
    for p in (ROOT / folder).rglob("*.py"):
        rel = str(p.relative_to(ROOT))
        bad[rel] = sorted(n for n in imports(p) if n.startswith("ohmflow.nn")
                          or (n.split(".")[0] == "torch" and rel not in TORCH_PEERS))
    assert {k: v for k, v in bad.items() if v} == {}
