"""Imports point down: host -> sim, boards -> hdl -> emulator, never back up.

Every ``import``/``from ... import`` in the installed packages (at any depth: imports inside
functions count too) is read from the source with `ast` and checked against the layer order.
``ohmflow.nn`` (torch modules) sits above host: it may import torch; no other module may import
``ohmflow.nn``, and torch only the modules in `TORCH_PEERS`, each for its stated reason.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: package folder -> (import name, layer); a module may import its own layer and those below
LAYERS = {
    "emulator": ("ohmflow.emulator", 0),
    "hdl": ("ohmflow.hdl", 1),
    "sim": ("ohmflow.sim", 2),
    "boards": ("ohmflow.boards", 2),
    "host": ("ohmflow.host", 3),
    "nn": ("ohmflow.nn", 4),
}
NN = "ohmflow.nn"
#: modules outside ohmflow.nn that may import torch, and why
TORCH_PEERS = {"ohmflow.host.aihwkit_peer": "runs aihwkit, a torch library, beside the twin"}


def _sources() -> list[Path]:
    return sorted(p for folder in LAYERS for p in (ROOT / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([LAYERS[parts[0]][0], *parts[1:]])


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from ohmflow.host import nn`` imports the module ohmflow.host.nn
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
            out.append((node.lineno, mod))
    return out


def _layer(module: str) -> int | None:
    for name, level in LAYERS.values():
        if module == name or module.startswith(name + "."):
            return level
    return None


def violations(path: Path) -> list[str]:
    """Why each import of ``path`` breaks the layering (empty when it keeps it)."""
    me = _module_name(path)
    mine = _layer(me)
    in_nn = me == NN or me.startswith(NN + ".")
    bad = []
    for line, mod in _imports(path):
        where = f"{path.relative_to(ROOT)}:{line} imports {mod}"
        level = _layer(mod)
        if level is not None and level > mine:
            bad.append(f"{where}: an upward import (layer {level} above {mine})")
        if not in_nn and (mod == NN or mod.startswith(NN + ".")):
            bad.append(f"{where}: only {NN} itself may import {NN}")
        if not in_nn and me not in TORCH_PEERS and (mod == "torch" or mod.startswith("torch.")):
            bad.append(f"{where}: only {NN} may import torch")
    return bad


def test_the_packages_are_found():
    found = {p.relative_to(ROOT).parts[0] for p in _sources()}
    assert found == set(LAYERS)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    assert violations(path) == []


def test_the_check_catches_upward_and_torch_imports(tmp_path, monkeypatch):
    """The checker itself: a planted upward import, relative or absolute, and torch are caught."""
    fake = tmp_path / "hdl"
    fake.mkdir()
    (fake / "x.py").write_text("def f():\n    from ohmflow.sim import runner\n")
    (fake / "y.py").write_text("from ..host import device\n")
    (fake / "z.py").write_text("import torch\nfrom ohmflow.emulator import config\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert "upward" in violations(fake / "x.py")[0]
    assert any("ohmflow.host.device" in v for v in violations(fake / "y.py"))
    assert violations(fake / "z.py") == [
        "hdl/z.py:1 imports torch: only ohmflow.nn may import torch"]
    host = tmp_path / "host"
    host.mkdir()
    (host / "cli.py").write_text("from ohmflow.nn import AnalogLinear\n")
    found = violations(host / "cli.py")  # the module, and the name from it
    assert sum("upward" in v for v in found) == 2
    assert sum("only ohmflow.nn itself" in v for v in found) == 2


#: inside ohmflow.hdl, groups in order: a group may import its own and the groups before it;
#: the SoC tops (hdl/*.py) may import every group
HDL_GROUPS = ("lib", "tile", "link", "rv32")


def hdl_violations(path: Path) -> list[str]:
    """Why each import of an hdl module breaks the order of hdl's groups."""
    me = _module_name(path).split(".")
    if me[:2] != ["ohmflow", "hdl"] or len(me) < 4 or me[2] not in HDL_GROUPS:
        return []
    mine = HDL_GROUPS.index(me[2])
    bad = []
    for line, mod in _imports(path):
        parts = mod.split(".")
        if parts[:2] != ["ohmflow", "hdl"] or len(parts) < 3:
            continue
        theirs = HDL_GROUPS.index(parts[2]) if parts[2] in HDL_GROUPS else len(HDL_GROUPS)
        if theirs > mine:
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}: hdl/{me[2]} may import "
                       f"only {', '.join(HDL_GROUPS[: mine + 1])}")
    return bad


@pytest.mark.parametrize("path", sorted((ROOT / "hdl").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_hdl_groups_import_in_order(path):
    assert hdl_violations(path) == []


def test_the_hdl_check_catches_a_tile_importing_the_link(tmp_path, monkeypatch):
    tile = tmp_path / "hdl" / "tile"
    tile.mkdir(parents=True)
    (tile / "x.py").write_text("from ohmflow.hdl.link.framing import FrameRx\n"
                               "from ohmflow.hdl.lib.fixed import clip\n")
    (tile / "y.py").write_text("from ohmflow.hdl.soc import SoC\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = hdl_violations(tile / "x.py")  # the module, and the name from it
    assert len(found) == 2 and all("ohmflow.hdl.link.framing" in v for v in found)
    assert "hdl/tile may import only lib, tile" in hdl_violations(tile / "y.py")[0]
