"""docs/benchmarks.md is written by several benchmarks: each owns one marked section."""

from __future__ import annotations

import datetime as _dt
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures measured on the machine named in each section, with the command that made them.\n"
    "Each section is rewritten by its benchmark; tests never depend on these numbers.\n"
)


def machine() -> str:
    """One line naming this machine (CPU model, core count, Python)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(key: str, title: str, body: str, command: str, doc: Path = DOC) -> None:
    """Replace (or append) the section ``key`` of docs/benchmarks.md."""
    text = doc.read_text() if doc.exists() else HEADER
    stamp = _dt.date.today().isoformat()
    block = (
        f"<!-- section:{key} -->\n## {title}\n\n"
        f"Command: `{command}`  \nMachine: {machine()}; {stamp}\n\n{body.strip()}\n"
        f"<!-- end:{key} -->\n"
    )
    pat = re.compile(rf"<!-- section:{re.escape(key)} -->.*?<!-- end:{re.escape(key)} -->\n",
                     re.S)
    text = pat.sub(lambda _m: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
