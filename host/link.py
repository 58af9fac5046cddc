"""Link backends: the `Device` API over the framed protocol on a pyserial byte link.

`LinkDevice` speaks `ohmflow.emulator.protocol` over a byte link: a board's serial port
(``/dev/ttyUSB0``, pyserial) or an emulator's ``socket://127.0.0.1:PORT`` (`SocketPort`). Every
frame is answered. Big operations are split into as few frames as the max payload allows. On a
serial line flow control is stop and wait, one frame in flight; on TCP the frames of one
operation go out up to `WINDOW` at a time (docs/protocol.md, Flow control). A lost, corrupt or
late reply to a frame sent alone is retried with the same frame (same seq): the device answers a
retransmission of its last frame from its reply cache, so even UPDATE and PULSE are never
applied twice. `EmulatorDevice` (`ohmflow.host.emulator_device`, importable from here too) starts
an emulator server process and connects.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import time

import numpy as np
import serial
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    PHYSICS_NAMES,
    ChipConfig,
    Settings,
    get_config,
)
from ohmflow.emulator.fabrication import FIELDS
from ohmflow.host.device import (
    Device,
    DeviceError,
    DeviceInfo,
    check_physics,
    has_time,
)
from ohmflow.host.link_tables import LinkTables
from ohmflow.host.servers import start_twin_server, stop_process  # noqa: F401 (re-exported)
from ohmflow.host.socket_port import SocketPort
from serial.tools import list_ports

POLL = 0.02  #: seconds a single port read may block
#: frames in flight on a pipelined link (their replies, at most 4 KB each, fit the buffers)
WINDOW = 4
_MAP_KINDS = dict(zip(FIELDS, ("step", "step", "slope", "slope", "w", "w"), strict=True))
#: commands that leave every counter as it is (docs/gateware.md, Counters)
_KEEP_COUNTERS = frozenset(("INFO", "GET", "SET", "COUNTERS", "LOAD_SHAPE", "READ_SHAPE",
                            *P.TIME_COMMANDS))


class BadArgument(DeviceError, ValueError):
    """The device refused a frame's arguments (BAD_ARGUMENT); nothing was changed."""


class _Lost(Exception):
    """No usable reply (timeout, corrupt frame or a link-level error status)."""


def _open_port(url: str, baudrate: int, write_timeout: float):
    """A pyserial port for ``url``; a `SocketPort` for a plain ``socket://HOST:PORT``."""
    try:
        if url.startswith("socket://") and "?" not in url:
            return SocketPort(url, POLL, write_timeout)
        return serial.serial_for_url(url, baudrate=baudrate, timeout=POLL,
                                     write_timeout=write_timeout)
    except (serial.SerialException, ValueError, OSError) as e:
        ports = ", ".join(p.device for p in list_ports.comports()) or "none"
        raise DeviceError(
            f"cannot open {url!r}: {e}. Serial ports on this machine: {ports}. A board is a "
            "serial port such as /dev/ttyUSB0; an emulator server is socket://127.0.0.1:PORT "
            "(`python -m ohmflow.sim.twin_server` prints its port); the backend 'verilator' "
            "(ohmflow --backend verilator) starts one itself, and 'twin' needs no link.") from None


class LinkDevice(LinkTables, Device):
    """A chip behind a byte link (board serial port or emulator socket)."""

    backend = "link"

    def __init__(self, port, config: ChipConfig | str = "default", *, url: str = "",
                 timeout: float = 2.0, retries: int = 3, baudrate: int | None = None):
        self.config = get_config(config)
        P.check_fits(self.config)
        self.port = port
        self.url = url or str(getattr(port, "port", "") or "link")
        self.timeout = timeout
        self.retries = retries
        self.baudrate = baudrate
        self._parser = P.FrameParser()
        self._events: collections.deque = collections.deque()
        self._seq = int.from_bytes(os.urandom(1), "little")
        self._settings: Settings | None = None
        self._device_key = 0  #: the chip's device key as last read or loaded (numerics §11.2)
        #: counters read since the last command that could change them, by tile
        self._counters: dict[int, dict[str, int]] = {}
        self.stats = dict.fromkeys(("frames", "retries", "stale", "bytes_out", "bytes_in"), 0)

    @classmethod
    def open(cls, url: str, config: ChipConfig | str = "default", *, baudrate: int = 3_000_000,
             timeout: float = 2.0, retries: int = 3) -> LinkDevice:
        """Open ``url``, check the device's config against ``config`` and read its settings."""
        port = _open_port(url, baudrate, timeout)
        is_serial = not url.startswith(("socket://", "loop://"))
        dev = cls(port, config, url=url, timeout=timeout, retries=retries,
                  baudrate=baudrate if is_serial else None)
        try:
            dev.connect()
        except BaseException:
            dev.close()
            raise
        return dev

    def connect(self) -> None:
        """Session start: INFO (refusing another config), then GET the settings."""
        self._counters.clear()
        self.check_config(self.config)
        self.refresh_settings()

    # ----- transport -----
    @property
    def pipelined(self) -> bool:
        """Whether several frames may be in flight: on a TCP stream (`SocketPort`), which
        neither loses nor reorders bytes and holds back what the device cannot take yet."""
        return isinstance(self.port, SocketPort)

    def _frame(self, cmd: P.Command, values: dict) -> tuple[bytes, int, float]:
        """A request frame with the next seq, and how long to wait for its reply."""
        payload = P.encode_payload(cmd.request, values, self.config)
        if cmd.name not in _KEEP_COUNTERS:
            if "tile" in values:
                self._counters.pop(int(values["tile"]), None)
            else:
                self._counters.clear()
        self._seq = (self._seq + 1) & 0xFF
        frame = P.encode_frame(cmd.opcode, self._seq, payload)
        wait = self.timeout
        if self.baudrate:  # wire time of the request and the longest reply, 10 bits a byte
            wait += (len(frame) + P.TABLE.max_payload + P.OVERHEAD) * 10 / self.baudrate
        return frame, self._seq, wait

    def _send(self, frame: bytes) -> None:
        self.port.write(frame)
        self.stats["frames"] += 1
        self.stats["bytes_out"] += len(frame)

    def _lost(self, name: str, seq: int, e: Exception) -> DeviceError:
        return DeviceError(f"{self.url}: link lost during {name} (seq {seq}): {e}; the device "
                           "or emulator server has gone")

    def _decode(self, cmd: P.Command, seq: int, status: int, data: bytes) -> dict:
        """The values of an OK reply; the refusal of any other status (not a link status)."""
        if status == P.ST["OK"]:
            try:
                return P.decode_payload(cmd.reply, data, self.config)
            except P.PayloadError as e:
                raise DeviceError(f"{self.url}: malformed {cmd.name} reply: {e}") from None
        err = BadArgument if status == P.ST["BAD_ARGUMENT"] else DeviceError
        raise err(f"{self.url}: device refused {cmd.name} (seq {seq}) with "
                  f"{P.status_name(status)}; host and device disagree on the contract or "
                  "the settings")

    def _call(self, name: str, **values) -> dict:
        cmd = P.command(name)
        frame, seq, wait = self._frame(cmd, values)
        problems: list[str] = []
        for attempt in range(self.retries + 1):
            try:
                if attempt:
                    self.stats["retries"] += 1
                    self._drain()
                self._send(frame)
                status, data = self._await(cmd, seq, wait)
            except _Lost as e:
                problems.append(str(e))
                self._counters.clear()
                continue
            except (serial.SerialException, OSError) as e:
                raise self._lost(name, seq, e) from None
            if P.is_link_status(status):
                problems.append(f"device answered {P.status_name(status)}")
                continue
            return self._decode(cmd, seq, status, data)
        raise DeviceError(f"{self.url}: no valid reply to {name} (seq {seq}) after "
                          f"{self.retries + 1} attempts: {'; '.join(problems)}. Is the device "
                          f"running and speaking ohmflow protocol v{P.CONTRACT_VERSION}?")

    def _calls(self, name: str, parts: list[dict]) -> list[dict]:
        """`_call` for each of ``parts``, in order. On a `pipelined` link up to `WINDOW` frames
        are in flight (the device takes the next frame while the host reads a reply). After a
        refusal no more frames are sent; the replies in flight are read, then it is raised. A
        frame with frames sent after it is never resent (they would run twice): a lost reply
        there is an error."""
        if not self.pipelined or len(parts) < 2:
            return [self._call(name, **v) for v in parts]
        cmd = P.command(name)
        out: list[dict] = []
        flight: collections.deque[int] = collections.deque()
        error: DeviceError | None = None
        for k in range(len(parts) + WINDOW):
            if len(flight) == WINDOW or (k >= len(parts) or error) and flight:
                seq = flight.popleft()
                try:
                    status, data = self._await(cmd, seq, self.timeout)
                    if P.is_link_status(status):
                        raise _Lost(f"device answered {P.status_name(status)}")
                    out.append(self._decode(cmd, seq, status, data))
                except _Lost as e:
                    self._counters.clear()
                    self._parser, self._events = P.FrameParser(), collections.deque()
                    raise DeviceError(f"{self.url}: no valid reply to {name} (seq {seq}, frame "
                                      f"{len(out) + 1} of {len(parts)}, sent with others in "
                                      f"flight): {e}; it cannot be resent after the frames "
                                      "that followed it") from None
                except (serial.SerialException, OSError) as e:
                    raise self._lost(name, seq, e) from None
                except DeviceError as e:  # a refusal: read the replies in flight, then raise
                    error = error or e
            if k < len(parts) and error is None:
                frame, seq, _ = self._frame(cmd, parts[k])
                try:
                    self._send(frame)
                except (serial.SerialException, OSError) as e:
                    raise self._lost(name, seq, e) from None
                flight.append(seq)
        if error is not None:
            raise error
        return out

    def _device_busy(self) -> bool:
        """Whether the device is visibly still working when a reply is late (a backend that can
        watch the device's clock says so; a plain link cannot)."""
        return False

    def _await(self, cmd: P.Command, seq: int, wait: float) -> tuple[int, bytes]:
        deadline = time.monotonic() + wait
        want = cmd.opcode | P.TABLE.reply_flag
        # a port that can wait for a whole frame part wakes once for it (`SocketPort`)
        read = getattr(self.port, "read_some", None) or self.port.read
        events = self._events  # frames parsed but not yet taken (replies to later frames)
        while True:
            while events:
                ev = events.popleft()
                if isinstance(ev, P.FrameError):
                    raise _Lost(f"corrupt reply ({ev.message})")
                if not ev.payload or not ev.opcode & P.TABLE.reply_flag:
                    raise _Lost(f"malformed reply frame opcode 0x{ev.opcode:02x}")
                status = ev.payload[0]
                if P.is_link_status(status) or (ev.opcode == want and ev.seq == seq):
                    return status, ev.payload[1:]
                self.stats["stale"] += 1
            if time.monotonic() >= deadline:
                if not self._device_busy():
                    break
                deadline = time.monotonic() + wait
            data = read(self._parser.needed())
            if data:
                self.stats["bytes_in"] += len(data)
                events.extend(self._parser.feed(data))
        raise _Lost(f"no reply within {wait:.2f} s")

    def _drain(self) -> None:
        """Resync before a retry: forget a partial reply, and make sure the device has dropped
        any partial frame of ours by its own byte timeout.

        An emulator server (``socket://``) runs that timeout in simulated cycles, which a loaded
        machine stretches to any length of wall time; but it serves a new connection only after
        the device has dropped the last connection's partial frame, so the host reconnects. A
        board runs it in real time: the host reads until the line has been quiet for twice the
        byte timeout."""
        self._parser = P.FrameParser()
        self._events.clear()
        if self.url.startswith("socket://") and hasattr(self.port, "open"):
            self.port.close()
            self.port.open()
            return
        quiet = 2 * P.TABLE.byte_timeout_ms / 1000
        now = time.monotonic()
        until, hard = now + quiet, now + quiet + max(1.0, self.timeout)
        while time.monotonic() < min(until, hard):
            if self.port.read(4096):
                until = time.monotonic() + quiet

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.port.close()

    # ----- host-side checks (the same errors a TwinDevice raises) -----
    def _window(self, tile) -> tuple[int, int]:
        tile = self._check_tile(tile)
        if self._settings is None:
            self.settings()
        return self._settings.shapes[tile]

    def _codes(self, name: str, a, kind: str, shape: tuple) -> np.ndarray:
        lo, hi = P.kind_range(kind, self.config)
        arr = np.asarray(a)
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all() or not np.array_equal(arr, np.rint(arr)):
                raise ValueError(f"{name} must hold integer codes in [{lo}, {hi}]")
        elif arr.dtype.kind not in "iub":
            raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
        if arr.ndim != len(shape) or any(s is not None and s != g for s, g in
                                         zip(shape, arr.shape, strict=True)) or not arr.size:
            want = tuple("B" if s is None else s for s in shape)
            raise ValueError(f"{name} must have shape {want} (B >= 1), got {arr.shape}")
        arr = arr.astype(np.int64)
        if arr.min() < lo or arr.max() > hi:
            raise ValueError(f"{name} codes must lie in [{lo}, {hi}], "
                             f"got [{int(arr.min())}, {int(arr.max())}]")
        return arr

    def _per_frame(self, name: str, var: str, **fixed) -> int:
        """The most items (``var``) one frame of command ``name`` carries, both ways."""
        cmd, best = P.command(name), None
        for layout, extra in ((cmd.request, 0), (cmd.reply, 1)):
            s0 = extra + P.payload_size(layout, {**fixed, var: 0}, self.config)
            s1 = extra + P.payload_size(layout, {**fixed, var: 1}, self.config)
            if s1 > s0:
                n = (P.TABLE.max_payload - s0) // (s1 - s0)
                best = n if best is None else min(best, n)
        return min(best, 0xFFFF)

    # ----- the Device API -----
    def info(self) -> DeviceInfo:
        v = self._call("INFO")
        try:
            cfg = P.config_from_info(v)
        except ValueError as e:
            raise DeviceError(f"{self.url}: device reports an invalid config: {e}") from None
        return DeviceInfo(cfg, v["version"], v["fingerprint"], self.backend)

    def reset(self) -> None:
        self._call("RESET")
        self.refresh_settings()

    def settings(self) -> Settings:
        """The device's settings: cached after the first read, since only this host's SET and
        RESET change them (`refresh_settings` reads them again)."""
        if self._settings is not None:
            return self._settings
        return self.refresh_settings()

    def refresh_settings(self) -> Settings:
        """Read the settings from the device (GET, and GET_PHYSICS on an engine with time and
        temperature), replacing the cached copy."""
        v = self._call("GET")
        ph = self._call("GET_PHYSICS") if has_time(self.config) else {}
        try:
            s = P.settings_from_fields(v, self.config)
            if ph:
                s = dataclasses.replace(s, **{n: ph[n] for n in PHYSICS_NAMES})
            self._settings = s.validated(self.config)
        except ValueError as e:
            raise DeviceError(f"{self.url}: device reports invalid settings: {e}") from None
        self._device_key = ph.get("device_key", 0)
        return self._settings

    def configure(self, **changes) -> Settings:
        if self._settings is None:
            self.settings()
        old, new = self._settings, self._settings.replace(self.config, **changes)
        check_physics(self.config, new)
        self._call("SET", **P.settings_fields(new), restart=int("seed" in changes))
        if any(getattr(new, n) != getattr(old, n) for n in PHYSICS_NAMES):
            self._call("SET_PHYSICS", **P.physics_fields(new, self._device_key))
        self._settings = new
        return new

    def program(self, tile, weights) -> None:
        n_in, n_out = self._window(tile)
        w = self._codes("weights", weights, "w", (n_out, n_in)).ravel()
        step = self._per_frame("PROGRAM", "k")
        self._calls("PROGRAM", [dict(tile=tile, k0=k0, k=w[k0 : k0 + step].size,
                                     w=w[k0 : k0 + step]) for k0 in range(0, w.size, step)])

    def read(self, tile) -> np.ndarray:
        n_in, n_out = self._window(tile)
        total, step = n_in * n_out, self._per_frame("READ", "k")
        parts = self._calls("READ", [dict(tile=tile, k0=k0, k=min(step, total - k0))
                                     for k0 in range(0, total, step)])
        return np.concatenate([v["w"] for v in parts]).reshape(n_out, n_in)

    def _read_op(self, name: str, tile, x, backward: bool):
        n_in, n_out = self._window(tile)
        n, m = (n_out, n_in) if backward else (n_in, n_out)
        x = self._codes(f"{name.lower()} input", x, "dac", (None, n))
        step = self._per_frame(name, "b", n=n, m=m)
        parts = [x[b0 : b0 + step] for b0 in range(0, len(x), step)]
        replies = self._calls(name, [dict(tile=tile, b=len(p), n=n, x=p) for p in parts])
        return (np.concatenate([v["y"].reshape(len(p), m) for v, p in
                                zip(replies, parts, strict=True)]),
                np.concatenate([v["sat"] for v in replies]))

    def forward(self, tile, x):
        return self._read_op("FORWARD", tile, x, backward=False)

    def backward(self, tile, d):
        return self._read_op("BACKWARD", tile, d, backward=True)

    def update(self, tile, x, d) -> None:
        n_in, n_out = self._window(tile)
        x = self._codes("update x codes", x, "p", (None, n_in))
        d = self._codes("update d codes", d, "p", (None, n_out))
        if len(x) != len(d):
            raise ValueError(f"update codes need the same batch, got {len(x)} and {len(d)}")
        step = self._per_frame("UPDATE", "b", ni=n_in, nj=n_out)
        self._calls("UPDATE", [dict(tile=tile, b=len(x[b0 : b0 + step]), ni=n_in, nj=n_out,
                                    x=x[b0 : b0 + step], d=d[b0 : b0 + step])
                               for b0 in range(0, len(x), step)])

    def pulse(self, tile, axis, index, counts) -> None:
        n_in, n_out = self._window(tile)
        if axis not in ("row", "col"):
            raise ValueError(f"axis must be 'row' or 'col', got {axis!r}")
        limit, length = (n_in, n_out) if axis == "row" else (n_out, n_in)
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not (
            0 <= index < limit
        ):
            raise ValueError(f"{axis} index must be in [0, {limit - 1}], got {index!r}")
        c = self._codes("pulse counts", np.ravel(counts), "cnt", (length,))
        self._call("PULSE", tile=tile, axis=("row", "col").index(axis), index=int(index),
                   n=length, counts=c)

    def counters(self) -> list[dict[str, int]]:
        return [self._tile_counters(t) for t in range(self.config.tiles)]

    def tile_counters(self, tile: int) -> dict[str, int]:
        """One tile's counters; read again only after a command that could have changed them
        (so a cost ledger's reading after one phase serves as the next phase's start)."""
        return self._tile_counters(self._check_tile(tile))

    def _tile_counters(self, tile: int) -> dict[str, int]:
        if tile not in self._counters:
            v = self._call("COUNTERS", tile=tile)
            self._counters[tile] = {k: int(x) for k, x in
                                    zip(P.TABLE.counters, v["values"], strict=False)}
        return dict(self._counters[tile])


def __getattr__(name: str):
    """`EmulatorDevice` lives in `ohmflow.host.emulator_device`; still importable from here."""
    if name == "EmulatorDevice":
        from ohmflow.host.emulator_device import EmulatorDevice

        return EmulatorDevice
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
