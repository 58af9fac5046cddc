"""The pulse update that visits only coinciding devices against the twin's pair-by-pair kernel
(itself checked against the scalar spec model in test_twin_vs_spec)."""

import numpy as np
import pytest
from ohmflow.emulator import coincidence, kernels
from ohmflow.emulator.config import ChipConfig, DeviceModel, Settings
from ohmflow.emulator.fabrication import fabricate
from ohmflow.emulator.step_shape import step_shape
from ohmflow.emulator.twin import Twin

MODELS = [
    DeviceModel(),
    DeviceModel(model="LinearStep", gamma_up=0.5, gamma_down=0.3, up_down=0.1),
    DeviceModel.soft_bounds(w_max=0.3, w_min=-0.2, dw_min=0.01),
    DeviceModel(model="ExpStep", dw_min=0.004),
    DeviceModel(model="PowStep", pow_gamma=0.5),
]


@pytest.mark.parametrize("case", range(15))
def test_coincidence_update_equals_the_pair_by_pair_kernel(case):
    """Random chips (rows up to 150: several 64-bit row words), BL up to 63, codes from sparse
    to full, each model (step-shape tables included): the same states and pulse total as
    kernels.update."""
    rng = np.random.default_rng(2000 + case)
    cfg = ChipConfig(tiles=1, rows=int(rng.choice([1, 7, 64, 65, 150])),
                     cols=int(rng.integers(1, 70)), lanes=1,
                     bl_max=int(rng.choice([7, 31, 63])), name="rand")
    n_in, n_out = int(rng.integers(1, cfg.rows + 1)), int(rng.integers(1, cfg.cols + 1))
    s = Settings.default(cfg).replace(cfg, bl=int(rng.integers(1, cfg.bl_max + 1)),
                                      dw_std=int(rng.integers(0, 20000)),
                                      seed=int(rng.integers(0, 2**32)), shapes=((n_in, n_out),))
    model = MODELS[case % len(MODELS)]
    twin = Twin(cfg, s, fabricate(cfg, model, seed=case))
    twin.load_step_shape(step_shape(model))  # the table models' shapes, linear for the others
    twin.program(0, rng.integers(cfg.w_min_code, cfg.w_max_code + 1, size=(n_out, n_in)))
    pm = cfg.p_max
    total = 0
    for density in (0.02, 0.3, 1.0):
        b = int(rng.integers(1, 9))
        x = rng.integers(-pm, pm + 1, size=(b, n_in)) * (rng.random((b, n_in)) < density)
        d = rng.integers(-pm, pm + 1, size=(b, n_out)) * (rng.random((b, n_out)) < density)
        w, *args = twin.update_args(0)
        w_pairs = w.copy()
        want = kernels.update(w_pairs, x, d, *args, np.zeros((0, 0, 0), dtype=np.int64), False)
        got = coincidence.update(w, x, d, *args)
        assert got == want
        assert np.array_equal(w, w_pairs)
        total += got
        twin.count_update(0, b, got)  # next round: new nonces
    assert total > 0
    bad = np.full((1, n_in), pm + 1)
    w, *args = twin.update_args(0)
    before = w.copy()
    assert coincidence.update(w, bad, np.ones((1, n_out), dtype=np.int64), *args) == -1
    assert np.array_equal(w, before)
