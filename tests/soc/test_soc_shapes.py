"""The tile engine's step shapes in the whole SoC (Amaranth simulator), against the reference:
ExpStep (centered), PowStep and PiecewiseStep (bottom) tables on the 5x7 `tiny` geometry, a
fabricated map of the model (every device its own range and rinv), states at both bounds,
UPDATE and PULSE along a row and a column in both directions (numerics §5.4.1)."""

import numpy as np
import pytest
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import DeviceModel
from ohmflow.emulator.fabrication import FIELDS, fabricate
from ohmflow.emulator.step_shape import step_shape
from ohmflow.sim.cocotb_frames import FrameGen, Scoreboard

from .test_soc_sim import CFG, run

MODELS = {
    "ExpStep": DeviceModel(model="ExpStep", dw_min=0.004, A_up=-1.18445, A_down=-0.081404,
                           a=-0.5, b=-0.5, gamma_up=5.0, gamma_down=5.0, dw_min_dtod=0.2),
    "PowStep": DeviceModel(model="PowStep", dw_min=0.004, pow_gamma=2.5, pow_up_down=0.3,
                           w_max_dtod=0.3, w_min_dtod=0.3),
    "PiecewiseStep": DeviceModel(model="PiecewiseStep", dw_min=0.006,
                                 piecewise_up=(1.5, 1.2, 1.0, 0.7, 0.4, 0.2, 0.1),
                                 piecewise_down=(0.1, 0.4, 0.6, 0.9, 1.0, 1.2, 1.3)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_updates_and_pulses_through_the_tables(name):
    model = MODELS[name]
    shape = step_shape(model)
    sb = Scoreboard(CFG)
    rng = np.random.default_rng(sum(map(ord, name)))
    gen = FrameGen(CFG, sb.ref.twin, rng, max_vectors=2)
    dm = fabricate(CFG, model, seed=11)
    devices = CFG.rows * CFG.cols
    pm, bl = CFG.p_max, CFG.bl_max
    w = rng.integers(-6000, 6000, size=devices)
    w[:CFG.rows] = CFG.w_max_code  # device row j = 0 at its upper bound
    w[CFG.rows:2 * CFG.rows] = CFG.w_min_code  # j = 1 at its lower bound
    frames = [gen.frame("LOAD_MAP", tile=t, k0=0, k=devices,
                        **{f: getattr(dm, f)[t].ravel() for f in FIELDS})
              for t in range(CFG.tiles)]
    frames += [gen.frame("LOAD_SHAPE", mode=shape.code, up=shape.up, down=shape.down),
               gen.frame("PROGRAM", tile=1, k0=0, k=devices, w=w),
               gen.frame("UPDATE", tile=1, b=2, ni=CFG.rows, nj=CFG.cols,
                         x=rng.integers(-pm, pm + 1, size=2 * CFG.rows),
                         d=rng.integers(-pm, pm + 1, size=2 * CFG.cols)),
               gen.frame("PULSE", tile=1, axis=0, index=3, n=CFG.cols,
                         counts=rng.integers(-bl, bl + 1, size=CFG.cols)),
               gen.frame("PULSE", tile=1, axis=1, index=1, n=CFG.rows,
                         counts=rng.integers(-bl, bl + 1, size=CFG.rows)),
               gen.frame("READ", tile=1, k0=0, k=devices),
               gen.frame("READ_SHAPE")]
    for f in frames:
        sb.sent(f)
    sb.received += run(frames, max_cycles=120_000)
    assert sb.compare() == len(frames)
    statuses = [r.payload[0] for r in P.FrameParser().feed(bytes(sb.expected))]
    assert statuses == [P.ST["OK"]] * len(frames)
    after = sb.ref.twin.read(1).ravel()
    assert (after != np.clip(w, dm.wmin[1].ravel(), dm.wmax[1].ravel())).sum() > devices // 3


@pytest.mark.parametrize("noise", [0.0, 0.06])
def test_table_mode_backward_with_a_fast_dac_ends(noise):
    """A table mode's longer array pipeline keeps the read noise busy with earlier vectors' results
    while the 3-bit DAC drives the last vector: its key is still owed when its last drive request
    is accepted, and must still be requested (the SoC used to stop there and take no more bytes).
    Replies byte for byte the reference's, within a cycle limit."""
    from ohmflow.emulator.config import Settings

    sb = Scoreboard(CFG)
    rng = np.random.default_rng(69)
    gen = FrameGen(CFG, sb.ref.twin, rng, max_vectors=4)
    shape = step_shape(MODELS["PowStep"])
    s = Settings.default(CFG, out_noise=noise).replace(CFG, shapes=((3, 2), (5, 3)), in_bits=3)
    pm = 2 ** (s.in_bits - 1) - 1
    frames = [gen.frame("LOAD_SHAPE", mode=shape.code, up=shape.up, down=shape.down),
              gen.frame("SET", **P.settings_fields(s), restart=1),
              gen.frame("BACKWARD", tile=0, b=4, n=2, x=rng.integers(-pm, pm + 1, size=8)),
              gen.frame("FORWARD", tile=0, b=4, n=3, x=rng.integers(-pm, pm + 1, size=12)),
              gen.frame("INFO")]
    for f in frames:
        sb.sent(f)
    sb.received += run(frames, max_cycles=20_000)
    assert sb.compare() == len(frames)
    statuses = [r.payload[0] for r in P.FrameParser().feed(bytes(sb.expected))]
    assert statuses == [P.ST["OK"]] * len(frames)
