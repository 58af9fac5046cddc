"""The emulator's standard workload: INFO, FORWARD and UPDATE frames, and a stop-and-wait call.

The profile-guided build of the emulator server (`ohmflow.sim.verilator_server`) trains on it,
and the speed benchmark (`ohmflow.host.emulator_bench`) times it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig

__all__ = ["call", "largest_batch", "scenarios"]


def call(port, frame: bytes, timeout: float = 60.0) -> P.Frame:
    """Send ``frame`` on a pyserial port and return its reply; an error unless the status is OK."""
    port.write(frame)
    parser, deadline = P.FrameParser(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = parser.feed(port.read(max(1, port.in_waiting)))
        if got:
            if not isinstance(got[0], P.Frame) or got[0].payload[:1] != bytes((P.ST["OK"],)):
                raise RuntimeError(f"the emulator refused a workload frame: {got[0]}")
            return got[0]
    raise TimeoutError(f"no reply within {timeout} s")


def largest_batch(cfg: ChipConfig, name: str, **fixed) -> int:
    """The largest batch of ``name`` whose request and reply fit one frame."""
    cmd, b = P.command(name), 1
    while all(1 + P.payload_size(lay, {**fixed, "b": b + 1, "m": cfg.cols}, cfg) <=
              P.TABLE.max_payload for lay in (cmd.request, cmd.reply)):
        b += 1
    return b


def scenarios(cfg: ChipConfig,
              rng: np.random.Generator) -> list[tuple[str, int, Callable[[int], bytes]]]:
    """(label, items per command, frame factory of a sequence number) of each scenario."""
    r, c = cfg.rows, cfg.cols
    bf = largest_batch(cfg, "FORWARD", n=r)
    bu = largest_batch(cfg, "UPDATE", ni=r, nj=c)

    def enc(name, seq, **f):
        return P.encode_request(name, seq, f, cfg)

    return [
        ("INFO round trip", 0, lambda s: enc("INFO", s)),
        ("FORWARD, 1 vector", 1,
         lambda s: enc("FORWARD", s, tile=0, b=1, n=r, x=rng.integers(-63, 64, r))),
        (f"FORWARD, {bf} vectors", bf,
         lambda s: enc("FORWARD", s, tile=0, b=bf, n=r, x=rng.integers(-63, 64, bf * r))),
        (f"UPDATE, {bu} samples", bu,
         lambda s: enc("UPDATE", s, tile=0, b=bu, ni=r, nj=c, x=rng.integers(-64, 65, bu * r),
                       d=rng.integers(-64, 65, bu * c))),
    ]
