"""The Python device server: the reference `CommandExecutor` behind a loopback TCP socket.

It speaks exactly the bytes the Verilator emulator server and a board speak, so the link backend
(`socket://127.0.0.1:PORT`) can be exercised end to end without the gateware. Start it in a thread
(`TwinServer(...).start()` returns the port) or as a process::

    python -m ohmflow.sim.twin_server --config tiny          # prints "listening on 127.0.0.1:PORT"

The chip state outlives connections (like a board); a new connection drops any partial frame.
A server compiles the twin's kernels before it listens (`compile_kernels`), so its first replies
come as fast as the later ones.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time

from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.emulator.protocol import TABLE
from ohmflow.emulator.twin import Twin

HOST = "127.0.0.1"
_IDLE_POLL = 0.1  # seconds between stop checks while nothing happens


def compile_kernels(config: ChipConfig) -> None:
    """Run a FORWARD, a BACKWARD, an UPDATE and a PULSE along each axis through a scratch
    executor of ``config``, so that numba compiles the twin's kernels (or loads them from its
    on-disk cache) now. A first compile takes seconds (an UPDATE 2.5 s with the cache empty),
    longer than a link gives a reply before it resends."""
    ex = CommandExecutor(Twin(config))
    r, c = config.rows, config.cols
    frames = [("FORWARD", {"tile": 0, "b": 1, "n": r, "x": [1] * r}),
              ("BACKWARD", {"tile": 0, "b": 1, "n": c, "x": [1] * c}),
              ("UPDATE", {"tile": 0, "b": 1, "ni": r, "nj": c, "x": [1] * r, "d": [1] * c}),
              ("PULSE", {"tile": 0, "axis": 0, "index": 0, "n": c, "counts": [1] * c}),
              ("PULSE", {"tile": 0, "axis": 1, "index": 0, "n": r, "counts": [1] * r})]
    for seq, (name, fields) in enumerate(frames, 1):
        reply = P.FrameParser().feed(ex.feed(P.encode_request(name, seq, fields, config)))
        if not reply or reply[0].payload[:1] != bytes((P.ST["OK"],)):
            raise RuntimeError(f"the twin refused its warm-up {name}: {reply}")


class TwinServer:
    """Serve one connection at a time on 127.0.0.1; port 0 picks a free port. The twin's kernels
    are compiled before the socket listens (`compile_kernels`)."""

    def __init__(self, config: ChipConfig | str = "default", device_map: DeviceMap | None = None,
                 port: int = 0):
        self.config = get_config(config)
        compile_kernels(self.config)
        self.executor = CommandExecutor(Twin(self.config, device_map=device_map))
        self._sock = socket.create_server((HOST, port))
        self._sock.settimeout(_IDLE_POLL)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Serve in a daemon thread; returns the port."""
        self._thread = threading.Thread(target=self.serve_forever, name="twin-server", daemon=True)
        self._thread.start()
        return self.port

    def serve_forever(self) -> None:
        with self._sock:
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                with conn:
                    self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        ex = self.executor
        ex.timeout()  # a new connection starts between frames
        limit = TABLE.byte_timeout_ms / 1000
        last = time.monotonic()
        while not self._stop.is_set():
            conn.settimeout(limit / 4 if ex.pending else _IDLE_POLL)
            try:
                data = conn.recv(65536)
            except TimeoutError:
                if ex.pending and time.monotonic() - last >= limit:
                    reply = ex.timeout()
                    if reply and not self._send(conn, reply):
                        return
                continue
            except OSError:
                return
            if not data:
                return
            last = time.monotonic()
            reply = ex.feed(data)
            if reply and not self._send(conn, reply):
                return

    @staticmethod
    def _send(conn: socket.socket, data: bytes) -> bool:
        try:
            conn.sendall(data)
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop serving and close the socket; waits for the thread (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        else:
            self._sock.close()

    def __enter__(self) -> TwinServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.sim.twin_server",
                                 description="Serve the reference device on 127.0.0.1 over TCP.")
    ap.add_argument("--config", default="default", help="preset name or .toml path")
    ap.add_argument("--config-json", help="a ChipConfig as JSON (overrides --config)")
    ap.add_argument("--map", help="device map .npz to load (default: nominal)")
    ap.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    args = ap.parse_args(argv)
    cfg = (ChipConfig.from_dict(json.loads(args.config_json)) if args.config_json
           else get_config(args.config))
    dmap = DeviceMap.load_npz(args.map, cfg) if args.map else None
    server = TwinServer(cfg, dmap, args.port)
    signal.signal(signal.SIGTERM, lambda *_: server._stop.set())
    print(f"listening on {HOST}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
