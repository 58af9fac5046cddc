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


@pytest.mark.parametrize("folder", ["emulator", "hdl", "sim", "boards", "host"])
def test_no_other_package_imports_ohmflow_nn_or_torch(folder):
    bad = {str(p.relative_to(ROOT)): sorted(n for n in imports(p)
                                            if n.split(".")[0] == "torch"
                                            or n.startswith("ohmflow.nn"))
           for p in (ROOT / folder).rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}
