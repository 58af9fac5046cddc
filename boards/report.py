"""Build reports: utilisation and post-route Fmax parsed from the Yosys and nextpnr logs.

Yosys writes ``top.rpt`` (its log; the last ``stat`` gives the cell counts) and nextpnr writes
``top.tim`` (its log: a "Device utilisation" table after packing, and "Max frequency for clock"
lines after placement and again after routing; the last line per clock is the post-route figure).
`BuildReport` gathers both, with the board's target clock and the time each tool took.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

__all__ = ["ClockTiming", "BuildReport", "parse_nextpnr", "parse_yosys", "summary"]

_FMAX = re.compile(r"Max frequency for clock\s+'(?P<clock>[^']+)':\s+(?P<fmax>[\d.]+) MHz\s+"
                   r"\((?P<status>PASS|FAIL) at (?P<target>[\d.]+) MHz\)")
_UTIL = re.compile(r"^Info:\s+(?P<name>\w+):\s+(?P<used>\d+)/\s*(?P<total>\d+)\s+\d+%")
_CELL_A = re.compile(r"^\s+(?P<count>\d+)\s+(?P<name>[A-Z$][\w$]*)\s*$")  # Yosys >= 0.50 layout
_CELL_B = re.compile(r"^\s+(?P<name>[A-Z$][\w$]*)\s+(?P<count>\d+)\s*$")  # older layout

#: the summary rows: label -> (nextpnr resource, or None for a Yosys cell sum; Yosys cell prefixes)
SUMMARY = {
    "ecp5": {"LUT4": ("TRELLIS_COMB", ()), "FF": ("TRELLIS_FF", ()), "DSP": ("MULT18X18D", ()),
             "BRAM": ("DP16KD", ()), "LUTRAM": ("TRELLIS_RAMW", ()), "PLL": ("EHXPLLL", ())},
    "ice40": {"LC": ("ICESTORM_LC", ()), "FF": (None, ("SB_DFF",)), "DSP": ("ICESTORM_DSP", ()),
              "BRAM": ("ICESTORM_RAM", ()), "SPRAM": ("ICESTORM_SPRAM", ()),
              "PLL": ("ICESTORM_PLL", ())},
}


@dataclass(frozen=True)
class ClockTiming:
    clock: str
    fmax_mhz: float
    target_mhz: float
    passed: bool


def parse_nextpnr(text: str) -> tuple[dict[str, tuple[int, int]], list[ClockTiming]]:
    """``(utilisation, timing)`` from a nextpnr log.

    Utilisation maps each resource of the last "Device utilisation" table to ``(used, total)``;
    timing holds the last "Max frequency" line of each clock (post-route when routing finished).
    """
    util: dict[str, tuple[int, int]] = {}
    in_table = False
    timing: dict[str, ClockTiming] = {}
    for line in text.splitlines():
        if "Device utilisation:" in line:
            util, in_table = {}, True
            continue
        if in_table:
            m = _UTIL.match(line)
            if m:
                util[m["name"]] = (int(m["used"]), int(m["total"]))
                continue
            in_table = False
        m = _FMAX.search(line)
        if m:
            timing[m["clock"]] = ClockTiming(m["clock"], float(m["fmax"]), float(m["target"]),
                                             m["status"] == "PASS")
    return util, list(timing.values())


def parse_yosys(text: str) -> dict[str, int]:
    """Cell counts of the whole design from the last ``stat`` of a Yosys log."""
    start = text.rfind("Printing statistics")
    if start < 0:
        return {}
    section = text[start:]
    for marker in ("=== design hierarchy ===", "=== top ==="):
        k = section.rfind(marker)
        if k >= 0:
            section = section[k:]
            break
    cells: dict[str, int] = {}
    for line in section.splitlines():
        if re.match(r"^\d+\.\d+\. ", line) or line.startswith("End of script"):
            break  # the next pass
        m = _CELL_A.match(line) or _CELL_B.match(line)
        if m and m["name"] != "$scopeinfo":
            cells[m["name"]] = int(m["count"])
    return cells


@dataclass
class BuildReport:
    """One board build: what it used, how fast it runs, how long it took."""

    board: str
    design: str
    config: dict
    family: str
    target_mhz: float
    utilisation: dict[str, tuple[int, int]]
    timing: list[ClockTiming]
    cells: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    key: str = ""
    tools: dict[str, str] = field(default_factory=dict)
    folder: str = ""  #: the build folder (bitstream, logs)

    @property
    def fmax_mhz(self) -> float:
        """The design clock's post-route Fmax (the slowest clock if there are several)."""
        if not self.timing:
            raise ValueError("the nextpnr log has no 'Max frequency' line: did routing finish?")
        return min(t.fmax_mhz for t in self.timing)

    @property
    def timing_met(self) -> bool:
        return bool(self.timing) and self.fmax_mhz >= self.target_mhz

    def resources(self) -> dict[str, tuple[int, int]]:
        """The summary rows for the family: label -> (used, available)."""
        rows = {}
        for label, (res, prefixes) in SUMMARY[self.family].items():
            if res is not None:
                if res in self.utilisation:
                    rows[label] = self.utilisation[res]
            else:
                used = sum(n for c, n in self.cells.items() if c.startswith(prefixes))
                total = next((t for r, (_, t) in self.utilisation.items()
                              if r in ("ICESTORM_LC", "TRELLIS_FF")), 0)
                rows[label] = (used, total)
        return rows

    def to_json(self) -> str:
        d = asdict(self)
        d["utilisation"] = {k: list(v) for k, v in self.utilisation.items()}
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BuildReport:
        d = json.loads(text)
        d["utilisation"] = {k: tuple(v) for k, v in d["utilisation"].items()}
        d["timing"] = [ClockTiming(**t) for t in d["timing"]]
        return cls(**d)


def summary(r: BuildReport) -> str:
    """The report as text: utilisation rows, Fmax against the target, tool times."""
    cfg = r.config
    lines = [f"board {r.board}, design {r.design}, config {cfg.get('name')} "
             f"({cfg.get('tiles')} tiles of {cfg.get('rows')}x{cfg.get('cols')}, "
             f"{cfg.get('lanes')} lanes, clock {cfg.get('clock_hz', 0) / 1e6:g} MHz)",
             f"{'resource':<8} {'used':>7} {'of':>7} {'%':>5}"]
    for label, (used, total) in r.resources().items():
        pct = f"{100 * used / total:5.1f}" if total else "    -"
        lines.append(f"{label:<8} {used:>7} {total:>7} {pct}")
    for t in r.timing:
        lines.append(f"Fmax {t.fmax_mhz:.2f} MHz post-route (clock {t.clock}), target "
                     f"{r.target_mhz:g} MHz: {'PASS' if t.fmax_mhz >= r.target_mhz else 'FAIL'}")
    if not r.timing:
        lines.append("Fmax: not reported (routing did not finish)")
    if r.seconds:
        lines.append("time " + ", ".join(f"{k} {v:.1f} s" for k, v in r.seconds.items()))
    return "\n".join(lines)
