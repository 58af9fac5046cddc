"""The chip (Verilator) fuzzed against the reference executor, on both engines: the tile's
gateware command processor and the rv32 engine's firmware, with the odd-sized tiny chip.

Budget: ``OHMFLOW_FUZZ_CASES`` cases (default 200), seed ``OHMFLOW_FUZZ_SEED`` (default 20261128).
"""

import dataclasses
import os

import numpy as np
import pytest
from ohmflow.emulator import protocol as P
from ohmflow.sim import fuzz, verilator_server
from ohmflow.sim.replies import compare_replies

from .conftest import CFG

RV32 = dataclasses.replace(CFG, lanes=1, engine="rv32", name="tiny-rv32")


@pytest.fixture(scope="module", params=["tile", "rv32"])
def chip(request, tiny_exe):
    """(config, emulator executable) of the tiny chip on each engine."""
    if request.param == "tile":
        return CFG, tiny_exe
    return RV32, verilator_server.build(RV32)

CASES = int(os.environ.get("OHMFLOW_FUZZ_CASES", "200"))
SEED = int(os.environ.get("OHMFLOW_FUZZ_SEED", "20261128"))


def test_fuzzed_bytes_give_the_reference_replies_and_state(chip):
    cfg, exe = chip
    rep = fuzz.run(cfg, CASES, SEED, silence=0.01, exe=exe)
    assert rep.mismatch is None, rep.summary()
    assert rep.cases == CASES and all(rep.kinds[k] for k in fuzz.KINDS), rep.summary()


@pytest.mark.parametrize("tail", ["lone sync byte", "partial header", "partial payload"])
def test_silence_inside_a_frame_drops_it_like_the_reference(chip, tail):
    """The byte timeout runs in emulated cycles: a partial frame is dropped (TRUNCATED once its
    header is complete), and the next frame is answered."""
    CFG, exe = chip
    with fuzz.Session(CFG, exe) as s:
        frame = s.frame("READ", tile=1, k0=2, k=9)
        cut = {"lone sync byte": 1, "partial header": 4, "partial payload": 9}[tail]
        sent, want, got = s.exchange(frame[:cut], silence=True)
        assert compare_replies(want, got, CFG) is None
        assert bool(want) == (cut >= P.HEADER_SIZE)
        sent, want, got = s.exchange(s.probe())
        assert compare_replies(want, got, CFG) is None


def replies_of(s, frames):
    sent, want, got = s.exchange(b"".join(frames))
    return want, got


def test_set_with_a_new_seed_restarts_the_nonce_even_with_restart_0(chip):
    """A new seed always restarts the nonce (docs/numerics.md §6.2), as the gateware does."""
    CFG, exe = chip
    with fuzz.Session(CFG, exe) as s:
        x = np.ones(CFG.rows, dtype=np.int64)
        fields = {**P.settings_fields(s.ex.twin.settings), "seed": 1234, "restart": 0}
        want, got = replies_of(s, [s.frame("FORWARD", tile=0, b=1, n=CFG.rows, x=x),
                                   s.frame("SET", **fields), s.frame("GET")])
        assert compare_replies(want, got, CFG) is None


@pytest.mark.parametrize("op", ["FORWARD", "UPDATE", "FORWARD_REPLY_TOO_LONG"])
def test_long_arrays_are_answered(chip, op):
    """Arrays over 256 elements (the element counter once wrapped and hung the device)."""
    CFG, exe = chip
    with fuzz.Session(CFG, exe, timeout=2.0) as s:
        if op == "FORWARD_REPLY_TOO_LONG":  # the reply would not fit a frame: BAD_ARGUMENT
            frame = s.frame("FORWARD", tile=0, b=273, n=CFG.rows,
                            x=np.ones(273 * CFG.rows, dtype=np.int64))
        elif op == "FORWARD":
            frame = s.frame("FORWARD", tile=0, b=52, n=CFG.rows,
                            x=np.ones(52 * CFG.rows, dtype=np.int64))
        else:
            frame = s.frame("UPDATE", tile=1, b=37, ni=CFG.rows, nj=CFG.cols,
                            x=np.full(37 * CFG.rows, 100), d=np.full(37 * CFG.cols, -100))
        sent, want, got = s.exchange(frame)
        assert compare_replies(want, got, CFG) is None
