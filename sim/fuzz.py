"""Fuzzing the gateware's command processor (the Verilator emulator) against the reference device.

Every case is a burst of bytes: random noise, truncated or over-long frames, bad CRCs, unknown
opcodes, wrong lengths, valid frames with fields out of range, valid commands, retransmissions, or
several of these back to back without a gap. The same bytes go to the emulator over TCP and to
`CommandExecutor(Twin(cfg))`; every reply must be byte-identical (COUNTERS: equal except the
``cycles`` counter the twin does not have). After each case a probe (INFO, GET, READ, READ_MAP and
COUNTERS of every tile) must also agree, so weights, device maps, settings and counters change
only when a valid command changed them, in both.

A case that ends inside a frame is normally completed with zero bytes (which the executor models
too), so no case waits for the byte timeout; a fraction ``silence`` of the cases instead lets the
line go quiet until the device drops the partial frame (TRUNCATED), which takes the byte timeout
in emulated cycles (~3.5 s of wall time on the default build).

Command line: ``python -m ohmflow.sim.fuzz --cases N --seed S [--config tiny]``; exit status 1 on
a mismatch, whose bytes are printed for a regression test.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    DT_BITS,
    DW_STD_BITS,
    GAIN_BITS,
    NOISE_FRAC,
    NU_BITS,
    RATE_BITS,
    SEED_BITS,
    SHAPE_ENGINES,
    SHAPE_FRAC,
    SHAPE_MODES,
    SHAPE_NODES,
    SIGMA_BITS,
    T_MAX,
    T_MIN,
    ChipConfig,
    Settings,
    get_config,
)
from ohmflow.emulator.executor import CommandExecutor
from ohmflow.emulator.fabrication import FIELD_KINDS
from ohmflow.emulator.twin import Twin
from ohmflow.sim import verilator_server
from ohmflow.sim.replies import compare_replies, reply_frames

__all__ = ["CaseGen", "Mismatch", "Report", "Session", "rss_kb", "run"]

KINDS = ("noise", "valid", "out_of_range", "wrap", "bad_length", "unknown_opcode", "bad_crc",
         "too_long", "truncated", "retransmit", "burst")
_WEIGHTS = (1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2)


def pack(layout: tuple[P.Field, ...], values: dict, cfg: ChipConfig) -> bytes:
    """A payload with every field packed as given, whatever the count fields say."""
    return b"".join(np.asarray([values[f.name]] if f.count is None else values[f.name])
                    .astype(P.kind_dtype(f.kind, cfg)).tobytes() for f in layout)


def rss_kb(pid: int | str = "self") -> int:
    """Resident set size of a process in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class CaseGen:
    """Random cases for a config; valid arguments follow the twin's current settings."""

    def __init__(self, cfg: ChipConfig, rng: np.random.Generator, array_limit: int = 256):
        self.cfg = cfg
        self.rng = rng
        self.array_limit = array_limit or P.TABLE.max_payload

    def _batch(self, per: int, size: int) -> int:
        """A batch of vectors of ``per`` codes: mostly small, sometimes as large as allowed."""
        most = max(1, min(self.array_limit // per, (P.TABLE.max_payload - 16) // size))
        return self._int(1, most if self.rng.random() < 0.2 else min(4, most))

    def _int(self, lo: int, hi: int) -> int:
        wide = np.uint64 if hi >= 2**63 else np.int64  # u64 fields reach past int64
        return int(self.rng.integers(lo, hi, endpoint=True, dtype=wide))

    def _codes(self, kind: str, n: int) -> np.ndarray:
        lo, hi = P.kind_range(kind, self.cfg)
        a = self.rng.integers(lo, hi, size=n, endpoint=True)
        edge = self.rng.random(n) < 0.1
        a[edge] = self.rng.choice([lo, hi], size=int(edge.sum()))
        return a

    def values(self, name: str, settings: Settings) -> dict:
        """Valid request fields of command ``name`` under the device's current ``settings``.

        A SET that changes the seed carries restart=1, as the host sends it (with restart=0
        the gateware restarts the nonce anyway: a known divergence, tested separately)."""
        cfg, r = self.cfg, self.rng
        tile = self._int(0, cfg.tiles - 1)
        n_in, n_out = settings.shapes[tile]
        if name in ("INFO", "RESET", "GET", "GET_PHYSICS"):
            return {}
        if name == "SET_PHYSICS":  # valid on an engine of config.TIME_ENGINES, refused elsewhere
            return {"drift_nu": self._int(0, 2**NU_BITS - 1),
                    "drift_nu_dtod": self._int(0, 2**NU_BITS - 1),
                    "decay_rate": self._int(0, 2**RATE_BITS - 1) >> self._int(0, RATE_BITS),
                    "decay_dtod": self._int(0, 2**NU_BITS - 1),
                    "temperature": self._int(T_MIN, T_MAX),
                    "device_key": self._int(0, 2**SEED_BITS - 1)}
        if name == "ADVANCE":
            return {"dt": self._int(0, 2**DT_BITS - 1 if r.random() < 0.2 else 3_600_000)}
        if name == "SET":
            shp = [(self._int(1, cfg.rows), self._int(1, cfg.cols)) if r.random() < 0.3
                   else (cfg.rows, cfg.cols) for _ in range(cfg.tiles)]
            return {"in_bits": self._int(2, cfg.in_bits), "out_bits": self._int(2, cfg.out_bits),
                    "fwd_gain": self._int(0, 2**GAIN_BITS - 1), "fwd_shift": self._int(
                        NOISE_FRAC, 40), "bwd_gain": self._int(0, 2**GAIN_BITS - 1),
                    "bwd_shift": self._int(NOISE_FRAC, 40), "fwd_sigma": self._int(0, 2000),
                    "bwd_sigma": self._int(0, 2**SIGMA_BITS - 1), "bl": self._int(1, cfg.bl_max),
                    "dw_std": self._int(0, 2**DW_STD_BITS - 1),
                    **({"seed": self._int(0, 2**SEED_BITS - 1), "restart": 1} if r.random() < 0.5
                       else {"seed": settings.seed, "restart": self._int(0, 1)}),
                    "tiles": cfg.tiles, "shapes": np.array(shp).ravel()}
        if name in ("PROGRAM", "READ"):
            total = n_in * n_out
            k0 = self._int(0, total - 1)
            k = self._int(0, total - k0)
            return {"tile": tile, "k0": k0, "k": k,
                    **({"w": self._codes("w", k)} if name == "PROGRAM" else {})}
        if name in ("LOAD_MAP", "READ_MAP"):
            total = cfg.rows * cfg.cols
            k0 = self._int(0, total - 1)
            k = self._int(0, min(total - k0, 12))
            v = {"tile": tile, "k0": k0, "k": k}
            if name == "LOAD_MAP":
                v.update({f: self._codes(FIELD_KINDS[f], k) for f in ("su", "sd", "ku", "kd")})
                lo, hi = P.kind_range("w", cfg)
                v["wmax"] = r.integers(1, hi, size=k, endpoint=True)
                v["wmin"] = r.integers(lo, 0, size=k, endpoint=True)
            return v
        if name in ("FORWARD", "BACKWARD"):
            n, m = (n_in, n_out) if name == "FORWARD" else (n_out, n_in)
            b = self._batch(n, n + 3 * m)
            return {"tile": tile, "b": b, "n": n, "x": self._codes("dac", b * n)}
        if name == "UPDATE":
            b = self._batch(max(n_in, n_out), 2 * (n_in + n_out))
            return {"tile": tile, "b": b, "ni": n_in, "nj": n_out,
                    "x": self._codes("p", b * n_in), "d": self._codes("p", b * n_out)}
        if name == "PULSE":
            axis = self._int(0, 1)
            limit, length = (n_in, n_out) if axis == 0 else (n_out, n_in)
            return {"tile": tile, "axis": axis, "index": self._int(0, limit - 1), "n": length,
                    "counts": self._codes("cnt", length)}
        if name == "COUNTERS":
            return {"tile": tile}
        if name == "READ_SHAPE":
            return {}
        if name == "LOAD_SHAPE":  # a table (random nodes) on an engine that holds one
            mode = self._int(0, len(SHAPE_MODES) - 1) if cfg.engine in SHAPE_ENGINES else 0
            if mode == 0:
                ones = np.full(SHAPE_NODES, 1 << SHAPE_FRAC)
                return {"mode": 0, "up": ones, "down": ones}
            return {"mode": mode, "up": self._codes("node", SHAPE_NODES) >> self._int(0, 12),
                    "down": self._codes("node", SHAPE_NODES) >> self._int(0, 12)}
        raise KeyError(name)

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        return P.encode_frame(opcode, self._int(0, 255), payload)

    def valid(self, settings) -> bytes:
        cmd = P.TABLE.commands[self._int(0, len(P.TABLE.commands) - 1)]
        v = self.values(cmd.name, settings)
        return self._frame(cmd.opcode, P.encode_payload(cmd.request, v, self.cfg))

    def out_of_range(self, settings) -> bytes:
        """A valid frame with one field (a scalar, or one array element) out of its range; a
        count field changed this way leaves the arrays as they were (a length mismatch)."""
        cmds = [c for c in P.TABLE.commands if c.request]
        cmd = cmds[self._int(0, len(cmds) - 1)]
        v = self.values(cmd.name, settings)
        f = cmd.request[self._int(0, len(cmd.request) - 1)]
        info = np.iinfo(P.kind_dtype(f.kind, self.cfg))
        lo, hi = P.kind_range(f.kind, self.cfg)
        picks = [int(info.min), int(info.max), self._int(int(info.min), int(info.max))]
        picks += [x for x in (lo - 1, hi + 1) if info.min <= x <= info.max]
        bad = picks[self._int(0, len(picks) - 1)]
        if f.count is None:
            v[f.name] = bad
            if f.name == "seed":  # every seed is valid: a seed change, sent as the host sends it
                v["restart"] = 1
            elif cmd.name == "SET" and v["restart"] == 0:
                v["seed"] = settings.seed
        elif len(v[f.name]):
            a = np.array(v[f.name], dtype=np.int64 if info.min < 0 else np.uint64)
            a[self._int(0, a.size - 1)] = bad
            v[f.name] = a
        return self._frame(cmd.opcode, pack(cmd.request, v, self.cfg))

    def wrap(self, settings) -> bytes:
        """A valid frame whose count fields imply a payload 2**16 bytes (or a multiple) longer
        than the one sent: a decoder that computes lengths in 16 bits would accept it."""
        name = ("PROGRAM", "FORWARD", "BACKWARD", "UPDATE", "LOAD_MAP")[self._int(0, 4)]
        cmd = P.command(name)
        v = self.values(name, settings)
        j = self._int(1, 3)
        if name == "PROGRAM":
            v["k"] = (v["k"] + 32768 * j) & 0xFFFF
        elif name == "LOAD_MAP":
            v["k"] = (v["k"] + 4096 * j) & 0xFFFF
        elif name == "UPDATE":
            b, ni, nj = self._factor(v["b"] * (v["ni"] + v["nj"]) + 32768 * j, parts=3)
            v.update(b=b, ni=ni, nj=nj)
        else:
            v["b"], v["n"] = self._factor(v["b"] * v["n"] + 65536 * j, parts=2)
        return self._frame(cmd.opcode, pack(cmd.request, v, self.cfg))

    def _factor(self, total: int, parts: int) -> tuple[int, ...]:
        """(b, n) with b*n == total, or (b, ni, nj) with b*(ni+nj) == total, all below 2**16."""
        divs = [d for d in range(1, 0x10000) if total % d == 0 and total // d < 0x10000 *
                (parts - 1)]
        b = divs[self._int(0, len(divs) - 1)] if divs else 1
        rest = total // b
        if parts == 2:
            return b, min(rest, 0xFFFF)
        ni = self._int(max(0, rest - 0xFFFF), min(rest, 0xFFFF))
        return b, ni, min(rest - ni, 0xFFFF)

    def case(self, settings, depth: int = 0) -> tuple[str, bytes]:
        kind = KINDS[self.rng.choice(len(KINDS), p=np.array(_WEIGHTS) / sum(_WEIGHTS))]
        if depth and kind == "burst":
            kind = "valid"
        r = self.rng
        if kind == "noise":
            data = bytearray(r.integers(0, 256, self._int(1, 300), dtype=np.uint8).tobytes())
            for _ in range(self._int(0, 3)):  # sync patterns make the noise look like frames
                at = self._int(0, len(data))
                data[at:at] = P.TABLE.sync + bytes(r.integers(0, 256, self._int(0, 6),
                                                              dtype=np.uint8))
            return kind, bytes(data)
        if kind == "valid":
            return kind, self.valid(settings)
        if kind == "out_of_range":
            return kind, self.out_of_range(settings)
        if kind == "wrap":
            return kind, self.wrap(settings)
        if kind == "bad_length":
            raw = self.valid(settings)
            body = raw[P.HEADER_SIZE:-P.CRC_SIZE]
            cut = self._int(1, 3)
            body = body + bytes(cut) if r.random() < 0.5 or len(body) < cut else body[:-cut]
            return kind, self._frame(raw[2], body)
        if kind == "unknown_opcode":
            known = set(P.opcodes().values())
            op = int(r.choice([o for o in range(256) if o not in known]))
            return kind, self._frame(op, r.integers(0, 256, self._int(0, 40),
                                                    dtype=np.uint8).tobytes())
        if kind == "bad_crc":
            raw = bytearray(self.valid(settings))
            for _ in range(self._int(1, 3)):
                bit = self._int(len(P.TABLE.sync) * 8, len(raw) * 8 - 1)
                raw[bit // 8] ^= 1 << (bit % 8)
            return kind, bytes(raw)
        if kind == "too_long":
            n = self._int(P.TABLE.max_payload + 1, 0xFFFF)
            head = P.TABLE.sync + bytes((self._int(0, 255), self._int(0, 255))) + \
                n.to_bytes(2, "little")
            tail = self.valid(settings) if r.random() < 0.5 else b""
            return kind, head + tail
        if kind == "truncated":
            raw = self.valid(settings)
            return kind, raw[: self._int(1, len(raw) - 1)]
        if kind == "retransmit":
            raw = self.valid(settings)
            return kind, raw * self._int(2, 3)
        parts = [self.case(settings, depth + 1)[1] for _ in range(self._int(2, 8))]
        return kind, b"".join(parts)


@dataclass
class Mismatch:
    """The first disagreement: the case, the bytes sent, and both replies."""

    case: int
    kind: str
    sent: bytes
    expected: bytes
    got: bytes
    what: str

    def __str__(self) -> str:
        return (f"case {self.case} ({self.kind}): {self.what}\n  sent     {self.sent.hex()}\n"
                f"  expected {self.expected.hex()}\n  got      {self.got.hex()}")


@dataclass
class Report:
    cases: int = 0
    kinds: Counter = field(default_factory=Counter)
    frames: int = 0  #: reply frames compared (cases and probes)
    silences: int = 0
    bytes_sent: int = 0
    wall_s: float = 0.0
    host_rss_kb: tuple[int, int] = (0, 0)
    server_rss_kb: tuple[int, int] = (0, 0)
    mismatch: Mismatch | None = None

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {self.kinds[k]}" for k in KINDS)
        return (f"{self.cases} cases ({kinds}; {self.silences} with a timeout), {self.frames} "
                f"reply frames and {self.bytes_sent} bytes compared in {self.wall_s:.1f} s; "
                f"RSS host {self.host_rss_kb[0]} -> {self.host_rss_kb[1]} KiB, server "
                f"{self.server_rss_kb[0]} -> {self.server_rss_kb[1]} KiB; "
                + ("no mismatch" if self.mismatch is None else f"MISMATCH\n{self.mismatch}"))


class Session:
    """One emulator server and its reference executor, fed the same bytes."""

    def __init__(self, cfg: ChipConfig | str, exe=None, timeout: float = 10.0):
        self.cfg = get_config(cfg)
        self.timeout = timeout
        self.ex = CommandExecutor(Twin(self.cfg))
        self.proc, port = verilator_server.start(exe if exe is not None else self.cfg)
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            verilator_server.stop(self.proc)
            raise
        self._seq = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        verilator_server.stop(self.proc)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _recv(self, frames: int, wait: float) -> bytes:
        """Bytes until ``frames`` reply frames are complete (or ``wait`` seconds passed), then
        whatever else arrives within a short grace period (replies that should not come)."""
        got, parser, n = bytearray(), P.FrameParser(), 0
        deadline = time.monotonic() + wait
        grace = None
        while True:
            if n >= frames and grace is None:
                grace = time.monotonic() + (0.002 if frames else 0.05)
            left = (grace if grace is not None else deadline) - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                raise ConnectionError("the emulator server closed the connection")
            got += chunk
            n += len(parser.feed(chunk))
        return bytes(got)

    def wait_idle(self, limit: float = 60.0) -> None:
        """Until the model stops clocking (it sleeps only when idle, hunting for a frame)."""
        deadline = time.monotonic() + limit
        last = verilator_server.stats(self.proc)["cycles"]
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now = verilator_server.stats(self.proc)["cycles"]
            if now == last:
                return
            last = now
        raise TimeoutError(f"the emulator did not go idle within {limit} s")

    def exchange(self, data: bytes, silence: bool = False) -> tuple[bytes, bytes, bytes]:
        """Send ``data`` (completed with zero bytes if it ends inside a frame, unless
        ``silence``: then the device's byte timeout drops it). Returns (sent, expected, got)."""
        expected = self.ex.feed(data)
        p = self.ex.parser
        if silence:
            partial = p.partial or p.needed() == 1
            expected += self.ex.timeout()
        else:
            partial = False
            while p.partial or p.needed() == 1:  # inside a frame, or a lone first sync byte
                fill = bytes(p.needed())
                data += fill
                expected += self.ex.feed(fill)
        self.sock.sendall(data)
        got = self._recv(len(reply_frames(expected)), self.timeout + (60.0 if silence else 0.0))
        if silence and partial:
            self.wait_idle()
            got += self._recv(0, 0.0)
        return data, expected, got

    def frame(self, name: str, **values) -> bytes:
        self._seq = (self._seq + 1) & 0xFF
        return P.encode_request(name, self._seq, values, self.cfg)

    def probe(self) -> bytes:
        """INFO, GET, and READ, READ_MAP, COUNTERS of every tile, as one burst."""
        cfg = self.cfg
        out = [self.frame("INFO"), self.frame("GET")]
        for t, (n_in, n_out) in enumerate(self.ex.twin.settings.shapes):
            out.append(self.frame("READ", tile=t, k0=0, k=n_in * n_out))
            step = P.TABLE.max_payload // (1 + sum(P.kind_dtype(k, cfg).itemsize
                                                   for k in FIELD_KINDS.values()))
            for k0 in range(0, cfg.rows * cfg.cols, step):
                out.append(self.frame("READ_MAP", tile=t, k0=k0,
                                      k=min(step, cfg.rows * cfg.cols - k0)))
            out.append(self.frame("COUNTERS", tile=t))
        return b"".join(out)


def run(cfg: ChipConfig | str = "tiny", cases: int = 200, seed: int = 0, *,
        silence: float = 0.0, array_limit: int = 256, exe=None, log=None) -> Report:
    """Fuzz ``cases`` cases (seeded); stops at the first mismatch. ``silence``: fraction of cases
    that end with the line quiet for the byte timeout; ``array_limit``: most codes in one array of
    a valid FORWARD, BACKWARD or UPDATE (0: as many as a frame holds)."""
    cfg = get_config(cfg)
    rng = np.random.default_rng(seed)
    gen = CaseGen(cfg, rng, array_limit)
    rep = Report()
    t0 = time.monotonic()
    with Session(cfg, exe) as s:
        rep.host_rss_kb = (rss_kb(), 0)
        rep.server_rss_kb = (rss_kb(s.proc.pid), 0)
        for i in range(cases):
            kind, data = gen.case(s.ex.twin.settings)
            quiet = bool(rng.random() < silence)
            sent, want, got = s.exchange(data, silence=quiet)
            rep.bytes_sent += len(sent)
            what = compare_replies(want, got, cfg)
            if what is None:
                sent_p, want_p, got_p = s.exchange(s.probe())
                what = compare_replies(want_p, got_p, cfg)
                if what is not None:
                    what, want, got = f"state probe after the case: {what}", want_p, got_p
            rep.cases = i + 1
            rep.kinds[kind] += 1
            rep.silences += quiet
            rep.frames += len(reply_frames(want))
            rep.frames += len(reply_frames(want_p)) if what is None else 0
            if what is not None:
                rep.mismatch = Mismatch(i, kind, sent, want, got, what)
                break
            if log and (i + 1) % 1000 == 0:
                log(f"{i + 1} cases, {time.monotonic() - t0:.0f} s")
        rep.host_rss_kb = (rep.host_rss_kb[0], rss_kb())
        rep.server_rss_kb = (rep.server_rss_kb[0], rss_kb(s.proc.pid))
    rep.wall_s = time.monotonic() - t0
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohmflow.sim.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="tiny", help="preset name or .toml file")
    ap.add_argument("--silence", type=float, default=0.002,
                    help="fraction of cases ending in a byte timeout (each ~3.5 s)")
    ap.add_argument("--array-limit", type=int, default=256,
                    help="most codes per array of valid FORWARD/BACKWARD/UPDATE frames (0: no "
                    "limit; the tiny build hangs above 256, see docs/reliability.md)")
    args = ap.parse_args(argv)
    cfg = get_config(args.config)
    print(f"building/finding the {cfg.name} emulator ...", file=sys.stderr)
    verilator_server.build(cfg)
    rep = run(cfg, args.cases, args.seed, silence=args.silence, array_limit=args.array_limit,
              log=lambda m: print(m, file=sys.stderr))
    print(f"fuzz {cfg.name} seed {args.seed}: {rep.summary()}")
    return 0 if rep.mismatch is None else 1


if __name__ == "__main__":
    sys.exit(main())
