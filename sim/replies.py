"""The one reply checker of the testbenches and the fuzzer: a device's reply bytes against the
reference device's (`ohmflow.emulator.executor.CommandExecutor`).

Replies must be equal byte for byte, with one allowance: a device's COUNTERS reply may carry the
``cycles`` counter after the reference's (the twin has no cycles).
"""

from __future__ import annotations

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig

__all__ = ["compare_replies", "reply_frames"]

_COUNTERS = P.command("COUNTERS")
_COUNTERS_REPLY = _COUNTERS.opcode | P.TABLE.reply_flag


def reply_frames(data: bytes) -> list:
    """The frames and frame errors in ``data``; a partial frame at the end counts as one."""
    p = P.FrameParser()
    return p.feed(data) + ([e] if (e := p.timeout()) else [])


def _describe(f) -> str:
    if isinstance(f, P.Frame):
        return f"opcode 0x{f.opcode:02x} seq {f.seq} {f.payload[:48].hex()}"
    return f"a corrupt frame {f}"


def compare_replies(expected: bytes, got: bytes, cfg: ChipConfig) -> str | None:
    """None if the device's replies ``got`` equal the reference's ``expected``; else what is the
    first difference."""
    if expected == got:
        return None
    want, have = reply_frames(expected), reply_frames(got)
    if len(want) != len(have):
        return f"{len(have)} reply frames from the device, {len(want)} expected"
    for i, (x, y) in enumerate(zip(want, have, strict=True)):
        if x == y:
            continue
        if (isinstance(x, P.Frame) and isinstance(y, P.Frame) and x.opcode == y.opcode ==
                _COUNTERS_REPLY and x.seq == y.seq and x.payload[:1] == y.payload[:1] ==
                bytes((P.ST["OK"],))):
            vx, vy = (P.decode_payload(_COUNTERS.reply, f.payload[1:], cfg) for f in (x, y))
            n = vx["n"]
            if vy["n"] == n + 1 and P.TABLE.counters[n] == "cycles" and \
                    np.array_equal(vx["values"], vy["values"][:n]):
                continue
            return f"reply frame {i}: COUNTERS {list(vy['values'])}, expected {list(vx['values'])}"
        return f"reply frame {i} differs: device {_describe(y)}, reference {_describe(x)}"
    return None
