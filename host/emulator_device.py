"""`EmulatorDevice`: an emulator server process (Verilator, or the Python twin server) behind a
socket, as a `LinkDevice` (``ohmflow.host.link``, which still exports the name)."""

from __future__ import annotations

import subprocess

from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.host.device import DeviceError
from ohmflow.host.link import LinkDevice, _open_port
from ohmflow.host.servers import start_twin_server, stop_process

__all__ = ["EmulatorDevice"]


class EmulatorDevice(LinkDevice):
    """An emulator server process (Verilator, or the Python twin server) behind a socket.

    ``server="verilator"`` builds and starts ``ohmflow.sim.verilator_server``; ``server="twin"``
    starts ``ohmflow.sim.twin_server``. Closing the device stops the process.
    """

    def __init__(self, config: ChipConfig | str = "default", *, server: str = "verilator",
                 device_map: DeviceMap | None = None, timeout: float = 2.0, retries: int = 3,
                 startup_timeout: float = 30.0):
        cfg = get_config(config)
        if server == "twin":
            proc, port = start_twin_server(cfg, startup_timeout)
        elif server == "verilator":
            try:
                from ohmflow.sim import verilator_server
            except ImportError as e:
                raise DeviceError(
                    "the Verilator emulator server (ohmflow.sim.verilator_server) is not "
                    f"available: {e}. "
                    "Use EmulatorDevice(cfg, server='twin') for the Python twin server, or "
                    "open_device('twin') in process.") from None
            try:
                proc, port = verilator_server.start(cfg)
            except (ImportError, RuntimeError, OSError, subprocess.SubprocessError) as e:
                raise DeviceError(f"the Verilator emulator server did not start: "
                                  f"{type(e).__name__}: {e}") from e
            self._stop = verilator_server.stop
        else:
            raise ValueError(f"server must be 'verilator' or 'twin', got {server!r}")
        self.process = proc
        self._stop = getattr(self, "_stop", stop_process)
        self.backend = "verilator" if server == "verilator" else "twin-server"
        url = f"socket://127.0.0.1:{port}"
        try:
            super().__init__(_open_port(url, 3_000_000, timeout), cfg, url=url,
                             timeout=timeout, retries=retries)
            self.connect()
            if device_map is not None:
                self.load_device_map(device_map)
        except BaseException:
            self.close()
            raise

    def _device_busy(self) -> bool:
        """A Verilator server's simulated clock stands still while the device is idle, so a late
        reply is waited for as long as the clock advances (the device executes, or runs its own
        byte timeout), however slowly a loaded machine runs it; a stopped or idle server gives
        the first look's baseline one more ``timeout``, then the usual retry."""
        if self.backend != "verilator":
            return False
        from ohmflow.sim import verilator_server

        try:
            cycles = verilator_server.stats(self.process, timeout=0.5)["cycles"]
        except (TimeoutError, RuntimeError, OSError, KeyError, ValueError):
            return False
        last, self._cycles_seen = getattr(self, "_cycles_seen", None), cycles
        return last is None or cycles > last

    def _call(self, name: str, **values) -> dict:
        self._cycles_seen = None
        return super()._call(name, **values)

    def _calls(self, name: str, parts: list[dict]) -> list[dict]:
        self._cycles_seen = None
        return super()._calls(name, parts)

    def close(self) -> None:
        if getattr(self, "port", None) is not None:
            super().close()
        self._stop(self.process)
