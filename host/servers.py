"""Server processes for `EmulatorDevice`: the Python twin server, started and stopped."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import tempfile

from ohmflow.emulator.config import ChipConfig
from ohmflow.host.device import DeviceError

__all__ = ["start_twin_server", "stop_process"]


def start_twin_server(cfg: ChipConfig, startup_timeout: float = 30.0):
    """Start ``python -m ohmflow.sim.twin_server`` for ``cfg``; returns (process, port)."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ohmflow.sim.twin_server", "--config-json",
         json.dumps(cfg.to_dict())], stdout=subprocess.PIPE, stderr=err, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = proc.stdout.readline() if sel.select(startup_timeout) else ""
    sel.close()
    if not line.startswith("listening on "):
        stop_process(proc)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
        raise DeviceError(f"the twin server did not start within {startup_timeout} s "
                          f"(said {line!r}); its stderr:\n{tail}")
    err.close()
    return proc, int(line.rsplit(":", 1)[1])


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Terminate a server process (kill it after ``grace`` seconds)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()
