"""The host link protocol: one command table, the frame codec and the payload codec.

`TABLE` is the single description of the protocol (sync, header, CRC, limits, status codes,
element kinds, commands and their payload layouts). The host (`ohmflow.host.link`), the reference
device (`ohmflow.emulator.executor`) and the gateware's command processor take every constant from
it, through `command`, `opcodes`, `status_codes` and `constants`; ``docs/protocol.md`` carries a
section generated from it by `render_markdown` (``python -m ohmflow.emulator.protocol --write``).

A frame, either direction::

    A5 5A | opcode u8 | seq u8 | length u16 | payload[length] | crc u32

Integers are little-endian. The CRC is CRC-32/ISO-HDLC (zlib's) over opcode..payload. A reply has
opcode | 0x80, the request's seq, and a payload that starts with a status byte.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import zlib
from dataclasses import dataclass

import numpy as np
from ohmflow.emulator.config import (
    COUNTERS,
    ENGINES,
    PHYSICS_NAMES,
    SETTING_NAMES,
    SHAPE_MODES,
    SHAPE_NODES,
    ChipConfig,
    Settings,
)
from ohmflow.emulator.fabrication import FIELD_KINDS

#: version of the device contract (numerics + protocol); INFO reports it, hosts refuse others
CONTRACT_VERSION = 2


@dataclass(frozen=True)
class Status:
    code: int
    name: str
    link: bool  #: link-level: the frame was not executed; the host may resend it as it was
    doc: str


@dataclass(frozen=True)
class Kind:
    """A config-dependent array element: its range over `ChipConfig` names sets its width."""

    name: str
    lo: str
    hi: str
    doc: str


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  #: u8 u16 u32 u64 i8 i16 i32, or a `Kind` name
    count: str | None = None  #: None: a scalar; else an array of count elements (an expression)
    doc: str = ""


@dataclass(frozen=True)
class Command:
    opcode: int
    name: str
    idempotent: bool  #: a duplicate may be executed again; otherwise it is answered from the cache
    request: tuple[Field, ...]
    reply: tuple[Field, ...]
    doc: str


@dataclass(frozen=True)
class Table:
    version: int
    sync: bytes
    reply_flag: int
    header: tuple[Field, ...]
    crc: dict
    max_payload: int
    byte_timeout_ms: int
    counters: tuple[str, ...]
    statuses: tuple[Status, ...]
    kinds: tuple[Kind, ...]
    commands: tuple[Command, ...]


F = Field
_SETTINGS = (F("in_bits", "u8"), F("out_bits", "u8"), F("fwd_gain", "u16"), F("fwd_shift", "u8"),
             F("bwd_gain", "u16"), F("bwd_shift", "u8"), F("fwd_sigma", "u16"),
             F("bwd_sigma", "u16"), F("bl", "u8"), F("dw_std", "u16"), F("seed", "u32"))
assert tuple(f.name for f in _SETTINGS) == (*SETTING_NAMES, "seed"), "SET's fields are Settings'"
_SHAPES = (F("tiles", "u16", doc="must equal the config's tiles"),
           F("shapes", "u16", "2*tiles", "(n_in, n_out) per tile, interleaved"))
_MAP = tuple(F(f, k, "k") for f, k in FIELD_KINDS.items())
_RANGE = (F("tile", "u8"), F("k0", "u32", doc="first device, flat index"),
          F("k", "u16", doc="number of devices"))
_SHAPE = (F("mode", "u8", doc="step-shape mode, index in " + ", ".join(SHAPE_MODES)),
          F("up", "node", str(SHAPE_NODES), "T_up, node k at x = k / (nodes - 1)"),
          F("down", "node", str(SHAPE_NODES), "T_down, the same positions"))
_PHYSICS = (F("drift_nu", "u16", doc="mean drift exponent, NU_FRAC code"),
            F("drift_nu_dtod", "u16", doc="device-to-device spread of the exponent"),
            F("decay_rate", "u64", doc="1 / lifetime, RATE_FRAC code, below 2**RATE_BITS"),
            F("decay_dtod", "u16", doc="relative device-to-device spread of the rate"),
            F("temperature", "u16", doc="kelvin, T_MIN ... T_MAX"),
            F("device_key", "u32", doc="the chip's key of per-device drift and decay"))
assert tuple(f.name for f in _PHYSICS) == (*PHYSICS_NAMES, "device_key"), "SET_PHYSICS's fields"
_READ = (F("b", "u16", doc="vectors"), F("m", "u16", doc="outputs per vector"),
         F("y", "adc", "b*m"), F("sat", "sat", "b", "saturated outputs per vector"))

TABLE = Table(
    version=CONTRACT_VERSION,
    sync=b"\xa5\x5a",
    reply_flag=0x80,
    header=(F("sync", "u8", "2", "A5 5A"), F("opcode", "u8"), F("seq", "u8"),
            F("length", "u16", doc="payload bytes, at most max_payload")),
    crc={"name": "CRC-32/ISO-HDLC", "poly": 0x04C11DB7, "init": 0xFFFFFFFF, "refin": True,
         "refout": True, "xorout": 0xFFFFFFFF, "check": 0xCBF43926,
         "covers": "opcode, seq, length, payload", "order": "little-endian u32 after the payload"},
    max_payload=4096,
    byte_timeout_ms=50,
    counters=(*COUNTERS, "cycles"),
    statuses=(
        Status(0x00, "OK", False, "executed; the reply carries the command's results"),
        Status(0x01, "BAD_CRC", True, "CRC mismatch; the frame (as its length delimits it) "
               "was dropped"),
        Status(0x02, "TOO_LONG", True, "header length above max_payload; hunting for sync "
               "resumes after the header"),
        Status(0x03, "TRUNCATED", True, "no byte for byte_timeout_ms inside a frame whose "
               "header was complete; the partial frame was dropped"),
        Status(0x04, "BUSY", True, "a frame arrived while one was executing (host broke flow "
               "control); it was dropped"),
        Status(0x10, "UNKNOWN_OPCODE", False, "no such command (or the reply flag was set)"),
        Status(0x11, "BAD_LENGTH", False, "payload length differs from what its layout and "
               "counts imply"),
        Status(0x12, "BAD_ARGUMENT", False, "a field is out of range; nothing was changed"),
        Status(0x13, "DEVICE_FAULT", False, "the device failed internally; nothing was changed"),
    ),
    kinds=(
        Kind("dac", "-in_max", "in_max", "DAC input code"),
        Kind("adc", "-out_max", "out_max", "ADC output code"),
        Kind("w", "w_min_code", "w_max_code", "device state (weight) code"),
        Kind("p", "-p_max", "p_max", "signed pulse-probability code"),
        Kind("cnt", "-bl_max", "bl_max", "signed deterministic pulse count"),
        Kind("step", "0", "step_max", "per-device step code"),
        Kind("slope", "-slope_max", "slope_max", "per-device slope code"),
        Kind("sat", "0", "max(rows, cols)", "saturation count"),
        Kind("node", "0", "node_max", "step-shape table node (G, SHAPE_FRAC fractional bits)"),
    ),
    commands=(
        Command(0x01, "INFO", True, (), (
            F("version", "u16", doc="contract version"),
            F("fingerprint", "u32", doc="ChipConfig.fingerprint()"),
            F("max_payload", "u16"),
            F("tiles", "u16"), F("rows", "u16"), F("cols", "u16"), F("lanes", "u16"),
            F("in_bits", "u8"), F("out_bits", "u8"), F("w_bits", "u8"), F("w_frac", "u8"),
            F("step_bits", "u8"), F("slope_bits", "u8"), F("p_bits", "u8"), F("bl_max", "u8"),
            F("clock_hz", "u64"), F("engine", "u8", doc="0 tile datapath, 1 rv32 firmware "
                                     "(config.ENGINES)"),
            F("name", "u8", "16", "config name, UTF-8, zero-padded")),
            "The synthesized config, contract version and config fingerprint. A host starts "
            "every session with INFO, which also replaces the reply cache."),
        Command(0x02, "RESET", True, (), (),
                "Weights to 0, settings to defaults, nonce and counters to 0; the device map "
                "and the reply cache stay."),
        Command(0x03, "SET", True, (*_SETTINGS, F("restart", "u8", doc="1: nonce to 0 (a "
                "seed was given), 0: nonce kept unless the seed changes"), *_SHAPES), (),
                "Replace every run-time setting (docs/numerics.md §3). Checks: each field as "
                "Settings.validated; restart in {0, 1}; tiles equal to the config's."),
        Command(0x04, "GET", True, (), (*_SETTINGS, F("nonce", "u32"), *_SHAPES),
                "The run-time settings and the PRNG nonce."),
        Command(0x05, "SET_PHYSICS", True, _PHYSICS, (),
                "Replace the time and temperature settings and the device key "
                "(docs/numerics.md §11.1); SET leaves them, RESET restores the settings' "
                "defaults and keeps the key. Checks: each field as Settings.validated; an "
                "engine without time and temperature (config.TIME_ENGINES) refuses it."),
        Command(0x06, "GET_PHYSICS", True, (), (
            *_PHYSICS, F("time", "u64", doc="chip time, ms"),
            F("tiles", "u16", doc="the config's tiles"),
            F("ages", "u64", "tiles", "each tile's drift age, ms at T0")),
                "The time and temperature settings, the device key, the chip time and the "
                "tiles' drift ages. Checks: an engine without time and temperature refuses it."),
        Command(0x10, "PROGRAM", True, (*_RANGE, F("w", "w", "k")), (),
                "Write device states of the tile's active window (n_out, n_in), flat index "
                "j*n_in + i, each clipped to its device's bounds. Checks: tile < tiles; "
                "k0 + k <= n_out*n_in; w in range."),
        Command(0x11, "READ", True, _RANGE, (F("k", "u16"), F("w", "w", "k")),
                "Read device states of the active window (flat index j*n_in + i). Checks: "
                "tile < tiles; k0 + k <= n_out*n_in."),
        Command(0x12, "LOAD_MAP", True, (*_RANGE, *_MAP), (),
                "Write the per-device parameters of devices k0..k0+k-1 of the whole tile (flat "
                "index j*rows + i); their states are clipped into the new bounds. Checks: "
                "tile < tiles; k0 + k <= rows*cols; ranges; wmin <= 0 <= wmax; wmin < wmax."),
        Command(0x13, "READ_MAP", True, _RANGE, (F("k", "u16"), *_MAP),
                "Read per-device parameters (flat index j*rows + i). Checks as LOAD_MAP."),
        Command(0x14, "LOAD_SHAPE", True, _SHAPE, (),
                "Replace the chip's step-shape tables (docs/numerics.md §5.4.1); states and the "
                "device map stay. Checks: mode in range; nodes in range; the linear mode has "
                "every node at 1.0; an engine without table interpolation (docs/boards.md) "
                "takes the linear mode only."),
        Command(0x15, "READ_SHAPE", True, (), _SHAPE,
                "The chip's step-shape tables (the linear shape after power-up; RESET keeps "
                "them)."),
        Command(0x16, "ADVANCE", False, (F("dt", "u32", doc="ms"),),
                (F("time", "u64", doc="the new chip time, ms"),),
                "Let dt ms pass at the set temperature: every device of every tile drifts and "
                "decays (docs/numerics.md §11.3). Checks: time and every age stay below 2**64; "
                "an engine without time and temperature (config.TIME_ENGINES) refuses it."),
        Command(0x20, "FORWARD", False, (F("tile", "u8"), F("b", "u16"), F("n", "u16"),
                                         F("x", "dac", "b*n")), _READ,
                "y = ADC(W . DAC(x) + noise) for b vectors. Checks: tile < tiles; b >= 1; "
                "n = n_in; x in range. Takes b nonces."),
        Command(0x21, "BACKWARD", False, (F("tile", "u8"), F("b", "u16"), F("n", "u16"),
                                          F("x", "dac", "b*n")), _READ,
                "The transposed read: dx = ADC(W^T . DAC(d) + noise) for b vectors. Checks: "
                "tile < tiles; b >= 1; n = n_out; codes in range. Takes b nonces."),
        Command(0x22, "UPDATE", False, (F("tile", "u8"), F("b", "u16"), F("ni", "u16"),
                                        F("nj", "u16"), F("x", "p", "b*ni"),
                                        F("d", "p", "b*nj")), (),
                "Stochastic pulse update, sample by sample. Checks: tile < tiles; b >= 1; "
                "ni = n_in; nj = n_out; codes in range. Takes b nonces."),
        Command(0x23, "PULSE", False, (F("tile", "u8"), F("axis", "u8", doc="0 row, 1 col"),
                                       F("index", "u16"), F("n", "u16"),
                                       F("counts", "cnt", "n")), (),
                "Deterministic signed pulse counts on one row (devices (j, index), n = n_out) "
                "or column (devices (index, i), n = n_in). Checks: tile < tiles; axis in "
                "{0, 1}; index below n_in (row) or n_out (col); n as stated. Takes 1 nonce."),
        Command(0x30, "COUNTERS", True, (F("tile", "u8"),),
                (F("n", "u8"), F("values", "u64", "n", "in the order of the counter list")),
                "The tile's counters; a device reports the first n of the counter list."),
    ),
)

#: the commands of time and temperature (docs/numerics.md §11): engines outside
#: config.TIME_ENGINES answer them BAD_ARGUMENT
TIME_COMMANDS = ("SET_PHYSICS", "GET_PHYSICS", "ADVANCE")
HEADER_SIZE = len(TABLE.sync) + 4
CRC_SIZE = 4
OVERHEAD = HEADER_SIZE + CRC_SIZE
_FIXED = {"u8": "<u1", "u16": "<u2", "u32": "<u4", "u64": "<u8", "i8": "<i1", "i16": "<i2",
          "i32": "<i4"}
_BY_NAME = {c.name: c for c in TABLE.commands}
_BY_OPCODE = {c.opcode: c for c in TABLE.commands}
_KINDS = {k.name: k for k in TABLE.kinds}
_STATUS = {s.code: s for s in TABLE.statuses}
ST = {s.name: s.code for s in TABLE.statuses}  #: status code by name


# ----- accessors (for the host, the reference device and the gateware decoder) -----
def command(key: str | int) -> Command:
    """A command by name or opcode; KeyError names the known ones."""
    c = _BY_NAME.get(key) if isinstance(key, str) else _BY_OPCODE.get(key)
    if c is None:
        raise KeyError(f"no command {key!r}; known: {', '.join(_BY_NAME)}")
    return c


def opcodes() -> dict[str, int]:
    return {c.name: c.opcode for c in TABLE.commands}


def status_codes() -> dict[str, int]:
    return dict(ST)


def status_name(code: int) -> str:
    s = _STATUS.get(code)
    return s.name if s else f"status 0x{code:02x}"


def is_link_status(code: int) -> bool:
    """True if a reply with this status means the frame was not executed and may be resent."""
    s = _STATUS.get(code)
    return bool(s and s.link)


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def evaluate(expr: str, env: dict, operand=int):
    """An integer expression of names, literals, + - * and max/min (table ranges and counts).

    The one reader of the table's count grammar (``"b*n"``, ``"2*tiles"``): ``operand`` turns a
    name's entry of ``env`` into a value (``int``; the gateware passes its registers through and
    gets the count as logic)."""
    def ev(n: ast.AST):
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name):
            return operand(env[n.id])
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("max", "min"):
            return (max if n.func.id == "max" else min)(ev(a) for a in n.args)
        raise ValueError(f"unsupported expression {expr!r}")
    return ev(_parse(expr))


@functools.lru_cache(maxsize=256)
def _parse(expr: str) -> ast.AST:
    return ast.parse(expr, mode="eval").body


@functools.lru_cache(maxsize=256)
def kind_range(kind: str, cfg: ChipConfig) -> tuple[int, int]:
    """The valid range [lo, hi] of an element kind (fixed kinds: the whole integer type)."""
    if kind in _FIXED:
        info = np.iinfo(np.dtype(_FIXED[kind]))
        return int(info.min), int(info.max)
    k = _KINDS[kind]
    env = {n.id: getattr(cfg, n.id) for e in (k.lo, k.hi) for n in ast.walk(_parse(e))
           if isinstance(n, ast.Name) and n.id not in ("max", "min")}
    return evaluate(k.lo, env), evaluate(k.hi, env)


@functools.lru_cache(maxsize=256)
def kind_dtype(kind: str, cfg: ChipConfig) -> np.dtype:
    """Wire type of an element: the smallest of 1, 2, 4, 8 bytes that holds the kind's range."""
    if kind in _FIXED:
        return np.dtype(_FIXED[kind])
    lo, hi = kind_range(kind, cfg)
    for size in (1, 2, 4, 8):
        t = np.dtype(f"<{'i' if lo < 0 else 'u'}{size}")
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return t
    raise ValueError(f"kind {kind} range [{lo}, {hi}] exceeds 64 bits")


def constants(cfg: ChipConfig | None = None) -> dict[str, int]:
    """Flat integer constants for a gateware decoder: SYNC*, MAX_PAYLOAD, CRC_*, OP_*, ST_*,
    and, given a config, element widths W_<kind> in bytes and BYTE_TIMEOUT_CYCLES."""
    out = {"VERSION": TABLE.version, "SYNC0": TABLE.sync[0], "SYNC1": TABLE.sync[1],
           "REPLY_FLAG": TABLE.reply_flag, "HEADER_SIZE": HEADER_SIZE, "CRC_SIZE": CRC_SIZE,
           "MAX_PAYLOAD": TABLE.max_payload, "BYTE_TIMEOUT_MS": TABLE.byte_timeout_ms}
    out.update({f"CRC_{k.upper()}": int(v) for k, v in TABLE.crc.items() if not isinstance(v, str)})
    out.update({f"OP_{c.name}": c.opcode for c in TABLE.commands})
    out.update({f"ST_{s.name}": s.code for s in TABLE.statuses})
    if cfg is not None:
        out.update({f"W_{k.name.upper()}": kind_dtype(k.name, cfg).itemsize for k in TABLE.kinds})
        out["BYTE_TIMEOUT_CYCLES"] = cfg.clock_hz * TABLE.byte_timeout_ms // 1000
    return out


# ----- payload codec -----
class PayloadError(ValueError):
    """A payload whose length does not match its layout (answered BAD_LENGTH)."""


def encode_payload(layout: tuple[Field, ...], values: dict, cfg: ChipConfig) -> bytes:
    """Pack values (ints, arrays) in layout order; ValueError if a value does not fit."""
    out, env = [], {}
    for f in layout:
        t = kind_dtype(f.kind, cfg)
        v = values[f.name]
        if f.count is None:
            a = np.asarray([v])
            env[f.name] = int(v)
        else:
            a = np.asarray(v).ravel()
            n = evaluate(f.count, env)
            if a.size != n:
                raise ValueError(f"field {f.name} must hold {f.count} = {n} elements, got {a.size}")
        if a.size and a.dtype.kind not in "iub":
            raise ValueError(f"field {f.name} must be integer, got dtype {a.dtype}")
        info = np.iinfo(t)
        if a.size and (int(a.min()) < info.min or int(a.max()) > info.max):
            raise ValueError(f"field {f.name} does not fit {t.name}: "
                             f"[{int(a.min())}, {int(a.max())}]")
        out.append(a.astype(t).tobytes())
    return b"".join(out)


def decode_payload(layout: tuple[Field, ...], data: bytes, cfg: ChipConfig) -> dict:
    """Unpack a payload into ints and int64 arrays; PayloadError if its length is wrong."""
    vals, pos = {}, 0
    for f in layout:
        t = kind_dtype(f.kind, cfg)
        n = 1 if f.count is None else evaluate(f.count, vals)
        end = pos + n * t.itemsize
        if end > len(data):
            raise PayloadError(f"payload of {len(data)} bytes ends inside field {f.name}")
        a = np.frombuffer(data, dtype=t, count=n, offset=pos)
        wide = t.kind == "u" and t.itemsize == 8  # u64 stays unsigned, all else is int64
        vals[f.name] = int(a[0]) if f.count is None else a.astype(t.newbyteorder("=") if wide
                                                                else np.int64)
        pos = end
    if pos != len(data):
        raise PayloadError(f"payload has {len(data) - pos} bytes beyond its last field")
    return vals


def payload_size(layout: tuple[Field, ...], counts: dict, cfg: ChipConfig) -> int:
    """Bytes of a payload whose scalar fields (those used in counts) are given."""
    return sum(kind_dtype(f.kind, cfg).itemsize * (1 if f.count is None else
               evaluate(f.count, counts)) for f in layout)


# ----- frames -----
@dataclass(frozen=True)
class Frame:
    opcode: int
    seq: int
    payload: bytes
    crc: int


@dataclass(frozen=True)
class FrameError:
    """A frame the parser rejected: status BAD_CRC, TOO_LONG or TRUNCATED, with its header."""

    status: int
    opcode: int
    seq: int
    message: str


def encode_frame(opcode: int, seq: int, payload: bytes) -> bytes:
    if not (0 <= opcode <= 0xFF and 0 <= seq <= 0xFF):
        raise ValueError(f"opcode and seq must be bytes, got {opcode}, {seq}")
    if len(payload) > TABLE.max_payload:
        raise ValueError(f"payload of {len(payload)} bytes exceeds max_payload "
                         f"{TABLE.max_payload}")
    body = bytes((opcode, seq)) + len(payload).to_bytes(2, "little") + payload
    return TABLE.sync + body + zlib.crc32(body).to_bytes(4, "little")


def encode_request(name: str, seq: int, fields: dict, cfg: ChipConfig) -> bytes:
    """The frame of command ``name`` with request ``fields`` (`encode_payload`) and ``seq``."""
    cmd = command(name)
    return encode_frame(cmd.opcode, seq, encode_payload(cmd.request, fields, cfg))


def encode_reply(opcode: int, seq: int, status: int, data: bytes = b"") -> bytes:
    return encode_frame((opcode | TABLE.reply_flag) & 0xFF, seq, bytes((status,)) + data)


class FrameParser:
    """Incremental frame parser with resynchronisation (the exact byte behaviour of a device).

    Hunting: bytes are dropped until A5 5A. Header: a length above max_payload yields TOO_LONG and
    hunting resumes after the header. Then length payload bytes and the CRC are taken; a mismatch
    yields BAD_CRC and hunting resumes after the CRC. `timeout` models byte_timeout_ms of silence.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0  #: bytes discarded while hunting for sync

    @property
    def partial(self) -> bool:
        """True while inside a frame (sync seen)."""
        return self._buf[:2] == TABLE.sync

    def needed(self) -> int:
        """Bytes needed before the parser can make progress (at least 1)."""
        if not self.partial:
            return 2 - (self._buf[-1:] == TABLE.sync[:1])
        if len(self._buf) < HEADER_SIZE:
            return HEADER_SIZE - len(self._buf)
        n = int.from_bytes(self._buf[4:6], "little")
        return max(1, HEADER_SIZE + n + CRC_SIZE - len(self._buf))

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self._buf += data
        out: list[Frame | FrameError] = []
        buf = self._buf
        while True:
            i = buf.find(TABLE.sync)
            if i < 0:
                keep = 1 if buf[-1:] == TABLE.sync[:1] else 0
                self.dropped += len(buf) - keep
                del buf[: len(buf) - keep]
                return out
            self.dropped += i
            del buf[:i]
            if len(buf) < HEADER_SIZE:
                return out
            op, seq, n = buf[2], buf[3], int.from_bytes(buf[4:6], "little")
            if n > TABLE.max_payload:
                out.append(FrameError(ST["TOO_LONG"], op, seq, f"frame length {n} exceeds "
                                      f"max_payload {TABLE.max_payload}"))
                del buf[:HEADER_SIZE]
                continue
            end = HEADER_SIZE + n + CRC_SIZE
            if len(buf) < end:
                return out
            body = bytes(buf[2 : HEADER_SIZE + n])
            crc = int.from_bytes(buf[end - CRC_SIZE : end], "little")
            if zlib.crc32(body) != crc:
                out.append(FrameError(ST["BAD_CRC"], op, seq, f"CRC mismatch in frame opcode "
                                      f"0x{op:02x} seq {seq} length {n}"))
            else:
                out.append(Frame(op, seq, body[4:], crc))
            del buf[:end]

    def timeout(self) -> FrameError | None:
        """The link was silent for byte_timeout_ms: drop a partial frame (TRUNCATED if its
        header was complete)."""
        err = None
        if self.partial and len(self._buf) >= HEADER_SIZE:
            b = self._buf
            err = FrameError(ST["TRUNCATED"], b[2], b[3], f"frame truncated after "
                             f"{len(b)} bytes")
        self._buf.clear()
        return err


# ----- settings and config over the wire -----
def settings_fields(s: Settings) -> dict:
    d = {f.name: getattr(s, f.name) for f in _SETTINGS}
    d["tiles"] = len(s.shapes)
    d["shapes"] = np.asarray(s.shapes, dtype=np.int64).ravel()
    return d


def settings_from_fields(v: dict, cfg: ChipConfig) -> Settings:
    """A Settings from decoded SET/GET fields; ValueError if any is out of range."""
    if v["tiles"] != cfg.tiles:
        raise ValueError(f"settings for {v['tiles']} tiles, the config has {cfg.tiles}")
    shp = v["shapes"].reshape(-1, 2)
    shapes = tuple((int(a), int(b)) for a, b in shp)
    return Settings(**{f.name: v[f.name] for f in _SETTINGS}, shapes=shapes).validated(cfg)


def physics_fields(s: Settings, device_key: int) -> dict:
    """SET_PHYSICS's fields: the time and temperature settings and the device key."""
    return {**{n: getattr(s, n) for n in PHYSICS_NAMES}, "device_key": device_key}


def info_fields(cfg: ChipConfig) -> dict:
    d = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "name"}
    d["engine"] = ENGINES.index(cfg.engine)
    name = cfg.name.encode()[:16].ljust(16, b"\0")
    return {**d, "version": TABLE.version, "fingerprint": cfg.fingerprint(),
            "max_payload": TABLE.max_payload, "name": np.frombuffer(name, dtype=np.uint8)}


def config_from_info(v: dict) -> ChipConfig:
    name = bytes(v["name"].astype(np.uint8)).rstrip(b"\0").decode(errors="replace")
    keys = [f.name for f in dataclasses.fields(ChipConfig) if f.name not in ("name", "engine")]
    if not 0 <= v["engine"] < len(ENGINES):
        raise ValueError(f"engine code {v['engine']} is none of {ENGINES}")
    return ChipConfig(**{k: v[k] for k in keys}, engine=ENGINES[v["engine"]], name=name)


def check_fits(cfg: ChipConfig) -> None:
    """Raise ValueError if one vector of this config does not fit a frame."""
    n = max(cfg.rows, cfg.cols)
    req = payload_size(command("FORWARD").request, {"b": 1, "n": n}, cfg)
    rep = 1 + payload_size(command("FORWARD").reply, {"b": 1, "m": n}, cfg)
    upd = payload_size(command("UPDATE").request, {"b": 1, "ni": cfg.rows, "nj": cfg.cols}, cfg)
    if max(req, rep, upd) > TABLE.max_payload:
        raise ValueError(f"a {cfg.rows}x{cfg.cols} tile needs frames of {max(req, rep, upd)} "
                         f"bytes for one vector; the protocol's max_payload is "
                         f"{TABLE.max_payload}")
