"""The reference device: bytes in, reply bytes out, exactly as the gateware CommandProcessor.

`CommandExecutor` runs the protocol of `ohmflow.emulator.protocol` on a `Twin`. It is the model the
cocotb scoreboard and the fuzzers compare the gateware with, and the engine of the Python device
server (`ohmflow.sim.twin_server`). Its rules, in order, for each frame the parser yields:

1. A parser error (BAD_CRC, TOO_LONG, TRUNCATED) is answered with that status, the frame's
   (possibly corrupted) opcode and seq and no data; nothing else happens.
2. A frame equal to the last executed one (same opcode, seq and CRC) is a retransmission: the
   cached reply is sent again without executing (idempotent commands give the same bytes either
   way).
3. An opcode that is not a request in the table gets UNKNOWN_OPCODE; a payload whose length does
   not match its layout BAD_LENGTH; a field out of range BAD_ARGUMENT. None changes any state.
4. Otherwise the command executes and is answered OK with its results.

Replies of rules 3 and 4 become the cached reply. Every frame gets exactly one reply; garbage
between frames gets none.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ohmflow.emulator import config as C
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PHYSICS_NAMES, SHAPE_ENGINES, SHAPE_MODES
from ohmflow.emulator.fabrication import FIELD_KINDS, FIELDS, DeviceMap
from ohmflow.emulator.step_shape import StepShape
from ohmflow.emulator.twin import Twin


class CommandExecutor:
    """A device that speaks the protocol: `feed` bytes, get reply bytes; `timeout` on silence."""

    def __init__(self, twin: Twin):
        P.check_fits(twin.cfg)
        self.twin = twin
        self.cfg = twin.cfg
        self.parser = P.FrameParser()
        self._last: tuple[int, int, int] | None = None  # (opcode, seq, crc) of the last frame
        self._last_reply = b""
        self.frames = 0  #: frames answered (any status)
        self.last_fault: str | None = None  #: the exception behind the last DEVICE_FAULT
        self._handlers = {
            "INFO": self._info, "RESET": self._reset, "SET": self._set, "GET": self._get,
            "PROGRAM": self._program, "READ": self._read, "LOAD_MAP": self._load_map,
            "READ_MAP": self._read_map, "LOAD_SHAPE": self._load_shape,
            "READ_SHAPE": self._read_shape, "SET_PHYSICS": self._set_physics,
            "GET_PHYSICS": self._get_physics, "ADVANCE": self._advance,
            "FORWARD": self._forward, "BACKWARD": self._backward, "UPDATE": self._update,
            "PULSE": self._pulse, "COUNTERS": self._counters,
        }

    @property
    def pending(self) -> bool:
        """True while a frame is partly received (a timeout would drop it)."""
        return self.parser.partial

    def feed(self, data: bytes) -> bytes:
        """Consume received bytes; return the replies to every frame they complete."""
        return b"".join(self._answer(ev) for ev in self.parser.feed(data))

    def timeout(self) -> bytes:
        """The line was silent for the byte timeout: drop a partial frame (TRUNCATED reply)."""
        err = self.parser.timeout()
        return b"" if err is None else self._answer(err)

    def _answer(self, ev: P.Frame | P.FrameError) -> bytes:
        self.frames += 1
        if isinstance(ev, P.FrameError):
            return P.encode_reply(ev.opcode, ev.seq, ev.status)
        key = (ev.opcode, ev.seq, ev.crc)
        if key == self._last:
            return self._last_reply
        reply = P.encode_reply(ev.opcode, ev.seq, *self.execute(ev.opcode, ev.payload))
        self._last, self._last_reply = key, reply
        return reply

    def execute(self, opcode: int, payload: bytes) -> tuple[int, bytes]:
        """Run one command's payload: (status, reply data). State changes only on OK."""
        try:
            cmd = P.command(opcode)
        except KeyError:
            return P.ST["UNKNOWN_OPCODE"], b""
        try:
            fields = P.decode_payload(cmd.request, payload, self.cfg)
        except P.PayloadError:
            return P.ST["BAD_LENGTH"], b""
        try:
            values = self._handlers[cmd.name](fields)
        except ValueError:
            return P.ST["BAD_ARGUMENT"], b""
        except Exception as e:  # a fault of the model itself: answer, never hang the link
            self.last_fault = f"{cmd.name}: {type(e).__name__}: {e}"
            return P.ST["DEVICE_FAULT"], b""
        return P.ST["OK"], P.encode_payload(cmd.reply, values, self.cfg)

    # ----- argument checks (each raises ValueError before any state changes) -----
    def _window(self, f: dict) -> tuple[int, int]:
        tile = f["tile"]
        if tile >= self.cfg.tiles:
            raise ValueError(f"tile {tile} >= {self.cfg.tiles}")
        return self.twin.settings.shapes[tile]

    @staticmethod
    def _span(f: dict, total: int) -> slice:
        if f["k0"] + f["k"] > total:
            raise ValueError(f"devices {f['k0']}..{f['k0'] + f['k'] - 1} beyond {total}")
        return slice(f["k0"], f["k0"] + f["k"])

    def _reply_fits(self, name: str, **counts) -> None:
        """A reply must fit one frame (status byte + payload <= max_payload), checked first."""
        size = 1 + P.payload_size(P.command(name).reply, counts, self.cfg)
        if size > P.TABLE.max_payload:
            raise ValueError(f"{name} reply of {size} bytes exceeds {P.TABLE.max_payload}")

    def _in_range(self, name: str, a: np.ndarray, kind: str) -> np.ndarray:
        lo, hi = P.kind_range(kind, self.cfg)
        if a.size and (a.min() < lo or a.max() > hi):
            raise ValueError(f"{name} outside [{lo}, {hi}]")
        return a

    # ----- commands -----
    def _info(self, f: dict) -> dict:
        return P.info_fields(self.cfg)

    def _reset(self, f: dict) -> dict:
        self.twin.reset()
        return {}

    def _set(self, f: dict) -> dict:
        if f["restart"] not in (0, 1):
            raise ValueError("restart must be 0 or 1")
        new = P.settings_from_fields(f, self.cfg)
        # SET carries no time or temperature settings (numerics §11): they stay as they are
        new = dataclasses.replace(new, **{n: getattr(self.twin.settings, n) for n in PHYSICS_NAMES})
        if f["restart"] or new.seed != self.twin.settings.seed:  # a new seed always restarts
            self.twin.nonce = 0
        self.twin.settings = new
        return {}

    def _get(self, f: dict) -> dict:
        return {**P.settings_fields(self.twin.settings), "nonce": self.twin.nonce}

    def _program(self, f: dict) -> dict:
        n_in, n_out = self._window(f)
        span = self._span(f, n_in * n_out)
        w = self.twin.read(f["tile"]).ravel()
        w[span] = self._in_range("w", f["w"], "w")
        self.twin.program(f["tile"], w.reshape(n_out, n_in))
        return {}

    def _read(self, f: dict) -> dict:
        n_in, n_out = self._window(f)
        span = self._span(f, n_in * n_out)
        self._reply_fits("READ", k=f["k"])
        return {"k": f["k"], "w": self.twin.read(f["tile"]).ravel()[span]}

    def _load_map(self, f: dict) -> dict:
        self._window(f)
        span = self._span(f, self.cfg.rows * self.cfg.cols)
        for name, kind in FIELD_KINDS.items():
            self._in_range(name, f[name], kind)
        if (f["wmax"] < 0).any() or (f["wmin"] > 0).any() or (f["wmin"] >= f["wmax"]).any():
            raise ValueError("device bounds must satisfy wmin <= 0 <= wmax and wmin < wmax")
        m = self.twin.read_device_map(f["tile"])
        for name in FIELDS:
            getattr(m, name).reshape(-1)[span] = f[name]
        self.twin.load_device_map(m, f["tile"])
        return {}

    def _read_map(self, f: dict) -> dict:
        self._window(f)
        span = self._span(f, self.cfg.rows * self.cfg.cols)
        self._reply_fits("READ_MAP", k=f["k"])
        m: DeviceMap = self.twin.read_device_map(f["tile"])
        return {"k": f["k"], **{name: getattr(m, name).reshape(-1)[span] for name in FIELDS}}

    def _load_shape(self, f: dict) -> dict:
        if f["mode"] >= len(SHAPE_MODES):
            raise ValueError(f"step-shape mode {f['mode']} is none of {SHAPE_MODES}")
        up, down = (self._in_range(n, f[n], "node") for n in ("up", "down"))
        shape = StepShape(SHAPE_MODES[f["mode"]], up, down).validate()
        if shape.mode != "linear" and self.cfg.engine not in SHAPE_ENGINES:
            raise ValueError(f"the {self.cfg.engine} engine holds the linear step shape only")
        self.twin.load_step_shape(shape)
        return {}

    def _read_shape(self, f: dict) -> dict:
        s = self.twin.read_step_shape()
        return {"mode": s.code, "up": s.up, "down": s.down}

    def _time_engine(self, name: str) -> None:
        """Time and temperature run where config.has_time says (TIME_ENGINES, TIME_UNFIT)."""
        if not C.has_time(self.cfg):
            raise ValueError(f"{name}: config {self.cfg.name!r} ({self.cfg.engine} engine) has "
                             f"no time and temperature (config.has_time)")

    def _set_physics(self, f: dict) -> dict:
        self._time_engine("SET_PHYSICS")
        new = dataclasses.replace(self.twin.settings, **{n: f[n] for n in PHYSICS_NAMES})
        self.twin.settings = new.validated(self.cfg)
        self.twin.load_device_key(f["device_key"])
        return {}

    def _get_physics(self, f: dict) -> dict:
        self._time_engine("GET_PHYSICS")
        tw = self.twin
        return {**P.physics_fields(tw.settings, tw.device_key), "time": tw.time,
                "tiles": self.cfg.tiles, "ages": np.array(tw.ages, dtype=np.uint64)}

    def _advance(self, f: dict) -> dict:
        self._time_engine("ADVANCE")
        return {"time": self.twin.advance(f["dt"])}

    def _read_op(self, f: dict, backward: bool) -> dict:
        n_in, n_out = self._window(f)
        n, m = (n_out, n_in) if backward else (n_in, n_out)
        if f["b"] < 1 or f["n"] != n:
            raise ValueError(f"need b >= 1 vectors of {n} codes")
        self._reply_fits("BACKWARD" if backward else "FORWARD", b=f["b"], m=m)
        x = self._in_range("x", f["x"], "dac").reshape(f["b"], n)
        y, sat = (self.twin.backward if backward else self.twin.forward)(f["tile"], x)
        return {"b": f["b"], "m": m, "y": y, "sat": sat}

    def _forward(self, f: dict) -> dict:
        return self._read_op(f, backward=False)

    def _backward(self, f: dict) -> dict:
        return self._read_op(f, backward=True)

    def _update(self, f: dict) -> dict:
        n_in, n_out = self._window(f)
        if f["b"] < 1 or f["ni"] != n_in or f["nj"] != n_out:
            raise ValueError(f"need b >= 1 samples of ({n_in}, {n_out}) codes")
        x = self._in_range("x", f["x"], "p").reshape(f["b"], n_in)
        d = self._in_range("d", f["d"], "p").reshape(f["b"], n_out)
        self.twin.update(f["tile"], x, d, counts=False)
        return {}

    def _pulse(self, f: dict) -> dict:
        n_in, n_out = self._window(f)
        if f["axis"] not in (0, 1):
            raise ValueError("axis must be 0 (row) or 1 (col)")
        limit, length = (n_in, n_out) if f["axis"] == 0 else (n_out, n_in)
        if f["index"] >= limit or f["n"] != length:
            raise ValueError(f"index must be below {limit} and n equal to {length}")
        counts = self._in_range("counts", f["counts"], "cnt")
        self.twin.pulse(f["tile"], ("row", "col")[f["axis"]], f["index"], counts)
        return {}

    def _counters(self, f: dict) -> dict:
        self._window(f)
        c = self.twin.counters[f["tile"]]
        names = [n for n in P.TABLE.counters if n in c]
        return {"n": len(names), "values": np.array([c[n] for n in names], dtype=np.uint64)}
