"""A fault-injecting wrapper around a pyserial port, frame-aware in both directions."""

from __future__ import annotations

import time
from collections.abc import Callable

from ohmflow.emulator import protocol as P


class FaultyPort:
    """Wraps a port; `plan(opcode_name, action)` arms one fault for the next such request.

    Request actions: ``drop_request``, ``corrupt_request``, ``truncate_request``, ``on_send``
    (call a function after sending). Reply actions: ``drop_reply``, ``corrupt_reply``,
    ``stall_reply`` (hold the reply back for `stall` seconds).
    """

    def __init__(self, port, stall: float = 0.5):
        self.port = port
        self.stall = stall
        self._plans: list[tuple[int, str, Callable | None]] = []
        self._reply_action: str | None = None
        self._parser = P.FrameParser()
        self._held: list[tuple[float, bytes]] = []
        self._out = bytearray()
        self.done: list[str] = []

    def plan(self, name: str, action: str, fn: Callable | None = None) -> None:
        self._plans.append((P.command(name).opcode, action, fn))

    def write(self, data: bytes) -> int:
        (ev,) = P.FrameParser().feed(data)
        match = next((p for p in self._plans if p[0] == ev.opcode), None)
        if match is None:
            return self.port.write(data)
        self._plans.remove(match)
        _, action, fn = match
        self.done.append(action)
        if action == "drop_request":
            return len(data)
        if action == "corrupt_request":
            data = data[:-5] + bytes((data[-5] ^ 0x10,)) + data[-4:]
        elif action == "truncate_request":
            data = data[: len(data) // 2]
        elif action.endswith("_reply"):
            self._reply_action = action
        n = self.port.write(data)
        if fn is not None:
            fn()
        return n

    def read(self, size: int = 1) -> bytes:
        data = b"" if len(self._out) >= size else self.port.read(size)
        for ev in self._parser.feed(data):
            raw = P.encode_frame(ev.opcode, ev.seq, ev.payload)
            action, self._reply_action = self._reply_action, None
            if action == "drop_reply":
                continue
            if action == "corrupt_reply":
                raw = raw[:8] + bytes((raw[8] ^ 0x01,)) + raw[9:]
            release = time.monotonic() + (self.stall if action == "stall_reply" else 0.0)
            self._held.append((release, raw))
        now = time.monotonic()
        for item in [h for h in self._held if h[0] <= now]:
            self._held.remove(item)
            self._out += item[1]
        out = bytes(self._out[:size])
        del self._out[:size]
        return out

    def close(self) -> None:
        self.port.close()

    def open(self) -> None:
        """Reopen the port (a new connection: nothing in flight on the old one arrives)."""
        self._parser = P.FrameParser()
        self._held.clear()
        self._out.clear()
        self.port.open()
