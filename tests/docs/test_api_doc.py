"""docs/api.md's Python snippets run as they stand, each on its own."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_page_has_its_snippets():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_snippet_runs(k, capsys):
    code = BLOCKS[k]
    if "torch" in code:
        pytest.importorskip("torch")
    exec(compile(code, f"docs/api.md snippet {k + 1}", "exec"), {"__name__": f"snippet{k}"})
    assert capsys.readouterr().out.strip()  # every snippet shows something
