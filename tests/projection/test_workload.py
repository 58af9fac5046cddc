"""Block names, analytic ledgers against a measured run, and the model's block arithmetic.

Expected values are computed here from the counting rules of `AnalogMLP.train_batch` and the
equations of docs/projection.md, not with the module's helpers.
"""

import math

import pytest
from ohmflow.host import projection as P
from ohmflow.host.device import TwinDevice
from ohmflow.host.ledger import PHASES
from ohmflow.host.mapping import block_index, layer_of
from ohmflow.host.trainer import TrainConfig, Trainer
from ohmflow.host.workload import PerSample, analytic_ledger, group_blocks, steps_of


def test_block_names():
    assert layer_of("layer3") == "layer3" and layer_of("layer3.1.2") == "layer3"
    assert block_index("layer3") == (0, 0) and block_index("layer3.1.2") == (1, 2)
    led = analytic_ledger([64, 32, 10], 4, block=(40, 20))
    assert list(group_blocks(led)) == ["layer0", "layer1"]
    assert group_blocks(led)["layer0"] == {"layer0.0.0": (32, 16), "layer0.0.1": (32, 16),
                                           "layer0.1.0": (32, 16), "layer0.1.1": (32, 16)}
    assert group_blocks(led)["layer1"] == {"layer1": (32, 10)}  # one block: the plain name


@pytest.fixture(scope="module")
def measured():
    # one epoch of the digits MLP with bound management off, so every sample is read once
    cfg = TrainConfig(epochs=1, float_baseline=False, bound_management=False, max_bm_rounds=0)
    tr = Trainer(cfg, TwinDevice(cfg.config))
    tr.run()
    return tr.ledger, len(tr.data.x_train)


def test_analytic_ledger_counts_what_the_run_counted(measured):
    led, n = measured
    steps = steps_of(led)
    assert steps == math.ceil(n / 32)
    rates = PerSample.measure(led, n, "test")
    assert rates.fwd_reads == 1.0 and rates.bwd_reads == 1.0
    # the same samples as one step: reads and their conversions are exact
    ana = analytic_ledger([64, 32, 10], n, rates=rates)
    for name in ("layer0", "layer1"):
        for phase in ("forward", "backward"):
            m, a = led.get(name, phase), ana.get(name, phase)
            for k in ("fwd_vectors", "bwd_vectors", "macs", "dac_conversions",
                      "adc_conversions"):
                assert m[k] == a[k], (name, phase, k)
    # update samples, slots and pulses through the measured rates, up to rounding
    for k in ("update_samples", "device_updates", "pulse_slots", "pulses"):
        total = sum(led.get(x, "update")[k] for x in ("layer0", "layer1"))
        got = sum(ana.get(x, "update")[k] for x in ("layer0", "layer1"))
        assert got == pytest.approx(total, rel=0.01), k
    assert 1 <= rates.bl <= 31 and 0 < rates.live <= 1 and rates.pulses_per_update > 0


def test_blocks_of_a_layer_run_at_once_and_sum_digitally():
    rpu = P.get_profile("rpu")
    whole = analytic_ledger([64, 32, 10], 8)
    split = analytic_ledger([64, 32, 10], 8, block=(40, 20))
    a, b = P.project(whole, rpu), P.project(split, rpu)
    for phase in PHASES:
        assert b.phases[phase].time_terms["mvm"] == pytest.approx(
            a.phases[phase].time_terms["mvm"])
        assert b.phases[phase].energy_terms["array"] == pytest.approx(
            a.phases[phase].energy_terms["array"])
    # forward of layer0: 2 row blocks -> 8 vectors x 32 outputs x 1 extra add each;
    # backward of layer1 is one block; layer0 has no backward
    extra = 8 * 32 * 1 * rpu.e_periph_op_j
    assert b.phases["forward"].energy_terms["periphery"] - \
        a.phases["forward"].energy_terms["periphery"] == pytest.approx(extra)
    assert (a.arrays, b.arrays) == (2, 5)
    assert a.utilisation == pytest.approx((64 * 32 + 32 * 10) / (2 * 4096 ** 2))
    # the digital side runs a layer as one kernel whatever its blocks
    d1, d2 = P.project(whole, "h100-bf16-measured"), P.project(split, "h100-bf16-measured")
    assert d2.time_s == pytest.approx(d1.time_s) and d2.energy_j == pytest.approx(d1.energy_j)


def test_pipelined_schedule_and_digital_floor(tmp_path):
    from tests.projection.test_projection import SMALL

    path = tmp_path / "toy.toml"
    path.write_text(SMALL + '''
[toy-pipe]
based_on = "toy-analog"
schedule = { value = "pipelined", source = "test" }

[toy-slow]
based_on = "toy-digital"
efficiency = { value = 0.5, source = "test" }
t_kernel_s = { value = 1e-6, source = "test" }
''')
    led = analytic_ledger([4, 3, 2], 5)  # 5 vectors through 2 layers
    seq, pipe = P.project(led, "toy-analog", path), P.project(led, "toy-pipe", path)
    tau = 2 * 1e-7  # read_phases x t_mvm per vector and layer
    assert seq.phases["forward"].time_s == pytest.approx(2 * 5 * tau)
    assert pipe.phases["forward"].time_s == pytest.approx(2 * tau + 4 * tau)
    # update: both layers' pulses at once (5 samples x BL 31 slots of 1 ns)
    assert pipe.phases["update"].time_s == pytest.approx(5 * 31 * 1e-9)
    assert seq.phases["update"].time_s == pytest.approx(2 * 5 * 31 * 1e-9)
    slow = P.project(led, "toy-slow", path)
    # forward, layer0: 60 MACs at 0.5 x 1e9 = 120 ns, bytes 2 x (5 x 7 + 12) = 94 ns, kernel 1 us
    f = slow.phases["forward"]
    assert f.time_s == pytest.approx(2e-6)
    assert f.time_terms["compute"] == pytest.approx((60 + 30) / 0.5e9)
    assert f.energy_terms["macs"] == pytest.approx((60 + 30) * 1e-12 / 0.5)
    with pytest.raises(ValueError, match="'based_on' must name another profile"):
        bad = tmp_path / "bad.toml"
        bad.write_text(SMALL + '[x]\nbased_on = "nope"\n')
        P.load_profiles(bad)
    with pytest.raises(ValueError, match="'schedule' must be one of"):
        P.get_profile("toy-pipe", path).replace(schedule="random")


def test_regime_sentence_names_utilisation_and_bounds():
    led = analytic_ledger([64, 32, 10], 32)
    s = P.regime_sentence(led, "hermes", "h100-bf16-measured")
    u = 100 * (64 * 32 + 32 * 10) / (2 * 256 * 256)
    assert f"underuse a 256x256 array: utilisation {u:.2g} %" in s
    assert "(forward+backward only)" in s and "bound by kernel launches" in s
    big = P.regime_sentence(analytic_ledger([4096] * 4, 32), "rpu", "h100-bf16")
    assert "fill 3 arrays of 4096x4096 to 100 %" in big and "memory-bound" in big
    with pytest.raises(ValueError, match="analog and a digital"):
        P.regime_sentence(led, "h100-bf16", "rpu")


def test_bad_workloads():
    with pytest.raises(ValueError, match="at least two widths"):
        analytic_ledger([64], 1)
    with pytest.raises(ValueError, match="batch and steps"):
        analytic_ledger([4, 2], 0)
    led = analytic_ledger([4, 2], 1)
    led.shapes.clear()
    with pytest.raises(ValueError, match="has no shape"):
        P.project(led, "rpu")
