"""Frame generation and the scoreboard for the SoC testbenches (plain Python, no cocotb).

`FrameGen` draws random protocol frames — valid commands with random settings and data, commands
with bad arguments, bad lengths, unknown opcodes, and link-level damage — from the state of the
reference device, so most commands are meaningful. `Scoreboard` feeds every byte sent to the
reference `CommandExecutor(Twin(cfg))`, and compares the device's reply frames with the reference's:
byte for byte, except that a device COUNTERS reply may carry the extra ``cycles`` counter.
"""

from __future__ import annotations

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    NOISE_FRAC,
    NU_BITS,
    RATE_BITS,
    SHAPE_MODES,
    SHAPE_NODES,
    T_MAX,
    T_MIN,
    ChipConfig,
    DeviceModel,
    Settings,
)
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.step_shape import step_shape
from ohmflow.emulator.twin import Twin
from ohmflow.sim.replies import compare_replies, reply_frames

__all__ = ["FrameGen", "Scoreboard"]


class Scoreboard:
    """Reference replies for the bytes sent; comparison with the bytes received."""

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.ref = CommandExecutor(Twin(cfg))
        self.expected = bytearray()
        self.received = bytearray()
        self._count: dict[str, list] = {}  # incremental reply counts: parser, bytes seen, frames

    def sent(self, data: bytes) -> None:
        self.expected += self.ref.feed(data)

    def silence(self) -> None:
        """The line was silent for longer than the byte timeout."""
        self.expected += self.ref.timeout()

    def on_byte(self, byte: int) -> None:
        self.received.append(byte)

    def replies(self) -> tuple[int, int]:
        """(replies received, replies expected) so far."""
        for name, buf in (("received", self.received), ("expected", self.expected)):
            parser, done, count = self._count.setdefault(name, [P.FrameParser(), 0, 0])
            self._count[name][2] += len(parser.feed(bytes(buf[done:])))
            self._count[name][1] = len(buf)
        return self._count["received"][2], self._count["expected"][2]

    def compare(self) -> int:
        """AssertionError naming the first differing reply (`compare_replies`); returns the
        number of replies."""
        what = compare_replies(bytes(self.expected), bytes(self.received), self.cfg)
        assert what is None, what
        return len(reply_frames(bytes(self.expected)))


class FrameGen:
    """Random frames against the current state of a reference `Twin`."""

    def __init__(self, cfg: ChipConfig, twin: Twin, rng: np.random.Generator,
                 max_vectors: int = 5, bad: float = 0.15, shapes: bool = False,
                 times: bool = False):
        self.cfg, self.twin, self.rng = cfg, twin, rng
        self.max_vectors, self.bad = max_vectors, bad
        self.shapes = shapes  #: `command` draws LOAD_SHAPE and READ_SHAPE too
        self.times = times  #: `command` draws SET_PHYSICS, GET_PHYSICS and ADVANCE too
        self.seq = 0
        self.last = b""

    def frame(self, name: str, **fields) -> bytes:
        c = P.command(name)
        self.seq = (self.seq + 1) & 0xFF
        payload = P.encode_payload(c.request, fields, self.cfg)
        self.last = P.encode_frame(c.opcode, self.seq, payload)
        return self.last

    def _codes(self, kind: str, n: int, wrong: bool = False) -> np.ndarray:
        lo, hi = P.kind_range(kind, self.cfg)
        a = self.rng.integers(lo, hi + 1, n)
        info = np.iinfo(P.kind_dtype(kind, self.cfg))
        outside = [v for v in (lo - 1, hi + 1) if info.min <= v <= info.max]
        if wrong and n and outside:  # a value the wire can carry but the device refuses
            a[self.rng.integers(n)] = self.rng.choice(outside)
        return a

    def _shape(self, tile: int) -> tuple[int, int]:
        return self.twin.settings.shapes[tile]

    # ----- one random command; ``wrong`` asks for a refused argument -----
    def command(self) -> bytes:
        r = self.rng
        names = ["FORWARD", "BACKWARD", "UPDATE", "PULSE", "PROGRAM", "READ", "LOAD_MAP",
                 "READ_MAP", "SET", "GET", "COUNTERS", "INFO", "RESET"]
        weights = [8, 6, 6, 3, 4, 4, 2, 2, 3, 2, 2, 1, 0.5]
        if self.shapes:  # (without them, a seed gives the frames it gave before they existed)
            names, weights = [*names, "LOAD_SHAPE", "READ_SHAPE"], [*weights, 1, 0.5]
        if self.times:
            names, weights = [*names, *P.TIME_COMMANDS], [*weights, 1, 0.5, 1]
        weights = np.array(weights)
        name = names[r.choice(len(names), p=weights / weights.sum())]
        wrong = r.random() < self.bad
        return getattr(self, f"_{name.lower()}")(wrong)

    def _tile(self, wrong: bool) -> tuple[int, bool]:
        if wrong and self.rng.random() < 0.3:
            return int(self.rng.integers(self.cfg.tiles, 256)), False
        return int(self.rng.integers(self.cfg.tiles)), wrong

    def _forward(self, wrong, name="FORWARD"):
        tile, wrong = self._tile(wrong)
        n_in, n_out = self._shape(min(tile, self.cfg.tiles - 1))
        n = n_out if name == "BACKWARD" else n_in
        b = int(self.rng.integers(1, self.max_vectors + 1))
        how = self.rng.integers(3) if wrong else -1
        if how == 0:
            b = 0
        elif how == 1:
            n = n + 1
        x = self._codes("dac", b * n, wrong=how == 2)
        if self.rng.random() < 0.5:  # mostly small codes: meaningful ADC outputs
            x = np.clip(x, -3, 3) if how != 2 else x
        return self.frame(name, tile=tile, b=b, n=n, x=x)

    def _backward(self, wrong):
        return self._forward(wrong, "BACKWARD")

    def _update(self, wrong):
        tile, wrong = self._tile(wrong)
        ni, nj = self._shape(min(tile, self.cfg.tiles - 1))
        b = int(self.rng.integers(1, self.max_vectors + 1))
        how = self.rng.integers(3) if wrong else -1
        if how == 0:
            nj += 1
        x, d = self._codes("p", b * ni, how == 1), self._codes("p", b * nj, how == 2)
        return self.frame("UPDATE", tile=tile, b=b, ni=ni, nj=nj, x=x, d=d)

    def _pulse(self, wrong):
        tile, wrong = self._tile(wrong)
        n_in, n_out = self._shape(min(tile, self.cfg.tiles - 1))
        axis = int(self.rng.integers(2))
        limit, n = (n_in, n_out) if axis == 0 else (n_out, n_in)
        index = int(self.rng.integers(limit))
        how = self.rng.integers(3) if wrong else -1
        if how == 0:
            index = limit
        elif how == 1:
            axis = 2
        counts = self._codes("cnt", n, how == 2)
        return self.frame("PULSE", tile=tile, axis=axis, index=index, n=n, counts=counts)

    def _span(self, total: int, most: int, wrong: bool) -> tuple[int, int]:
        k = int(self.rng.integers(0, min(total, most) + 1))
        k0 = int(self.rng.integers(0, total - k + 1))
        if wrong:
            k0 = total - k + 1
        return k0, k

    def _program(self, wrong):
        tile, wrong = self._tile(wrong)
        n_in, n_out = self._shape(min(tile, self.cfg.tiles - 1))
        bad_w = wrong and self.rng.random() < 0.5
        k0, k = self._span(n_in * n_out, 64, wrong and not bad_w)
        w = self._codes("w", k, bad_w and k > 0) // int(self.rng.choice([1, 8, 64]))
        return self.frame("PROGRAM", tile=tile, k0=k0, k=k, w=w)

    def _read(self, wrong):
        tile, wrong = self._tile(wrong)
        n_in, n_out = self._shape(min(tile, self.cfg.tiles - 1))
        k0, k = self._span(n_in * n_out, 64, wrong)
        return self.frame("READ", tile=tile, k0=k0, k=k)

    def _load_map(self, wrong):
        tile, wrong = self._tile(wrong)
        c = self.cfg
        k0, k = self._span(c.rows * c.cols, 16, False)
        f = {"su": self._codes("step", k), "sd": self._codes("step", k),
             "ku": self._codes("slope", k), "kd": self._codes("slope", k),
             "wmax": self.rng.integers(1, c.w_max_code + 1, k),
             "wmin": self.rng.integers(c.w_min_code, 0, k)}
        if wrong and k:
            field = str(self.rng.choice(["su", "ku", "wmax", "both0"]))
            if field == "both0":
                f["wmax"][0] = f["wmin"][0] = 0
            elif field == "wmax":
                f["wmax"][0] = -1
            else:
                f[field][0] = P.kind_range({"su": "step", "ku": "slope"}[field], c)[1] + 1
        return self.frame("LOAD_MAP", tile=tile, k0=k0, k=k, **f)

    def _read_map(self, wrong):
        tile, wrong = self._tile(wrong)
        k0, k = self._span(self.cfg.rows * self.cfg.cols, 16, wrong)
        return self.frame("READ_MAP", tile=tile, k0=k0, k=k)

    def random_settings(self) -> Settings:
        c, r = self.cfg, self.rng
        s = Settings.default(c, out_bound=float(r.uniform(0.5, 12.0)),
                             out_noise=float(r.choice([0.0, 0.06, 0.3])),
                             bl=int(r.integers(1, c.bl_max + 1)),
                             dw_min_std=float(r.choice([0.0, 0.3])), seed=int(r.integers(2**32)))
        shapes = tuple((int(r.integers(1, c.rows + 1)), int(r.integers(1, c.cols + 1)))
                       for _ in range(c.tiles))
        in_bits = int(r.integers(2, c.in_bits + 1))
        return s.replace(c, shapes=shapes, in_bits=in_bits, seed=s.seed)

    def _set(self, wrong):
        s = self.random_settings()
        keep_seed = self.rng.random() < 0.3
        fields = P.settings_fields(s)
        if keep_seed:
            fields["seed"] = self.twin.settings.seed
        fields["restart"] = int(self.rng.random() < 0.5)  # a new seed restarts the nonce anyway
        if wrong:
            how = str(self.rng.choice(["in_bits", "bl", "restart", "tiles", "shape",
                                       "fwd_shift"]))
            if how == "tiles":
                fields["tiles"] = self.cfg.tiles + 1
                fields["shapes"] = np.ones(2 * fields["tiles"], dtype=np.int64)
            elif how == "shape":
                fields["shapes"][self.rng.integers(2 * self.cfg.tiles)] = 0
            else:
                fields[how] = {"in_bits": 1, "bl": self.cfg.bl_max + 1, "restart": 2,
                               "fwd_shift": NOISE_FRAC - 1}[how]
        return self.frame("SET", **fields)

    def _get(self, wrong):
        return self.frame("GET")

    def _info(self, wrong):
        return self.frame("INFO")

    def _reset(self, wrong):
        return self.frame("RESET")

    def _load_shape(self, wrong):
        """A model's step-shape tables (numerics §5.4.1), or the linear shape; ``wrong``: a
        mode, a node or a linear node out of range."""
        r = self.rng
        model = str(r.choice(["ConstantStep", "ExpStep", "PowStep", "PiecewiseStep"]))
        kw = {"PowStep": {"pow_gamma": float(r.choice([0.5, 1.0, 2.0]))},
              "PiecewiseStep": {"piecewise_up": tuple(r.uniform(0.2, 3.0, 5)),
                                "piecewise_down": tuple(r.uniform(0.2, 3.0, 5))}}
        s = step_shape(DeviceModel(model=model, **kw.get(model, {})))
        fields = {"mode": s.code, "up": s.up.copy(), "down": s.down.copy()}
        if wrong:
            how = str(r.choice(["mode", "node", "linear"]))
            if how == "mode":
                fields["mode"] = int(r.integers(len(SHAPE_MODES), 256))
            elif how == "node":
                fields[str(r.choice(["up", "down"]))][r.integers(SHAPE_NODES)] = \
                    self.cfg.node_max + 1
            else:
                fields["mode"] = 0
                fields["up"][r.integers(SHAPE_NODES)] = int(r.integers(0, self.cfg.node_max))
        return self.frame("LOAD_SHAPE", **fields)

    def _read_shape(self, wrong):
        return self.frame("READ_SHAPE")

    def _set_physics(self, wrong):
        """Time and temperature settings (numerics §11.1) and a device key; ``wrong``: a
        temperature or decay rate out of range."""
        r = self.rng
        fields = {"drift_nu": int(r.integers(0, 2**NU_BITS)),
                  "drift_nu_dtod": int(r.integers(0, 2**NU_BITS)),
                  "decay_rate": int(r.integers(0, 2**RATE_BITS)) >> int(r.integers(0, RATE_BITS)),
                  "decay_dtod": int(r.integers(0, 2**NU_BITS)),
                  "temperature": int(r.integers(T_MIN, T_MAX + 1)),
                  "device_key": int(r.integers(0, 2**32))}
        if wrong:
            how = str(r.choice(["cold", "hot", "rate"]))
            fields.update({"cold": {"temperature": int(r.integers(0, T_MIN))},
                           "hot": {"temperature": int(r.integers(T_MAX + 1, 2**16))},
                           "rate": {"decay_rate": int(r.integers(2**RATE_BITS, 2**63))}}[how])
        return self.frame("SET_PHYSICS", **fields)

    def _get_physics(self, wrong):
        return self.frame("GET_PHYSICS")

    def _advance(self, wrong):
        """A step of up to an hour, or now and then of up to 49.7 days."""
        r = self.rng
        return self.frame("ADVANCE", dt=int(r.integers(0, 2**32 if r.random() < 0.2 else
                                                        3_600_001)))

    def _counters(self, wrong):
        tile, _ = self._tile(wrong)
        return self.frame("COUNTERS", tile=tile)

    # ----- frames as full as the protocol allows -----
    def most(self, name: str, var: str, **fixed) -> int:
        """The largest ``var`` for which the request and the reply of ``name`` fit a frame."""
        cmd, best = P.command(name), 0xFFFF
        for layout, extra in ((cmd.request, 0), (cmd.reply, 1)):
            s0 = extra + P.payload_size(layout, {**fixed, var: 0}, self.cfg)
            s1 = extra + P.payload_size(layout, {**fixed, var: 1}, self.cfg)
            if s1 > s0:
                best = min(best, (P.TABLE.max_payload - s0) // (s1 - s0))
        return best

    def large(self) -> bytes:
        """A valid frame of a random command with the most vectors, samples or devices."""
        r, c = self.rng, self.cfg
        tile = int(r.integers(c.tiles))
        n_in, n_out = self._shape(tile)
        name = str(r.choice(["FORWARD", "BACKWARD", "UPDATE", "PROGRAM", "READ", "LOAD_MAP",
                             "READ_MAP"]))
        if name in ("FORWARD", "BACKWARD"):
            n, m = (n_in, n_out) if name == "FORWARD" else (n_out, n_in)
            b = self.most(name, "b", n=n, m=m)
            return self.frame(name, tile=tile, b=b, n=n, x=r.integers(-3, 4, b * n))
        if name == "UPDATE":
            b = self.most(name, "b", ni=n_in, nj=n_out)
            return self.frame(name, tile=tile, b=b, ni=n_in, nj=n_out,
                              x=self._codes("p", b * n_in), d=self._codes("p", b * n_out))
        total = n_in * n_out if name in ("PROGRAM", "READ") else c.rows * c.cols
        k = min(total, self.most(name, "k"))
        k0 = int(r.integers(0, total - k + 1))
        if name == "PROGRAM":
            return self.frame(name, tile=tile, k0=k0, k=k, w=self._codes("w", k) // 16)
        if name == "LOAD_MAP":
            return self.frame(name, tile=tile, k0=k0, k=k, su=self._codes("step", k),
                              sd=self._codes("step", k), ku=self._codes("slope", k),
                              kd=self._codes("slope", k),
                              wmax=r.integers(1, c.w_max_code + 1, k),
                              wmin=r.integers(c.w_min_code, 0, k))
        return self.frame(name, tile=tile, k0=k0, k=k)

    # ----- malformed traffic -----
    def malformed(self) -> tuple[bytes, bool]:
        """Damaged bytes, and whether the line must then go silent (a cut frame)."""
        r = self.rng
        kind = str(r.choice(["crc", "long", "cut", "cut_header", "garbage", "unknown",
                             "length", "repeat"]))
        if kind == "repeat":
            return self.last, False
        f = bytearray(self.command())
        if kind == "crc":
            f[int(r.integers(6, len(f)))] ^= 1 << int(r.integers(8))  # the length stays
        elif kind == "long":
            f[4:6] = int(r.integers(P.TABLE.max_payload + 1, 65536)).to_bytes(2, "little")
            f = f[:6]
        elif kind == "cut":
            f = f[: int(r.integers(6, len(f)))]
        elif kind == "cut_header":
            f = f[: int(r.integers(1, 6))]
        elif kind == "garbage":
            f = bytearray(r.choice([0xA5, 0x5A, 0x00, 0xFF, 0x13], int(r.integers(1, 12))))
            f += self.command()
        elif kind == "unknown":
            op = int(r.choice([o for o in range(256) if o not in P.opcodes().values()]))
            f = bytearray(P.encode_frame(op, int(r.integers(256)), r.bytes(int(r.integers(8)))))
        elif kind == "length":
            body = bytes(f[6:-4])
            body = body + b"\0" if r.random() < 0.5 or not body else body[:-1]
            f = bytearray(P.encode_frame(f[2], f[3], body))
        return bytes(f), kind.startswith("cut")
