"""Training over the byte link (the twin server behind a socket) equals training in process."""

import numpy as np
import pytest
from ohmflow.host.device import TwinDevice, open_device
from ohmflow.host.trainer import TrainConfig, Trainer

twin_server = pytest.importorskip("ohmflow.sim.twin_server")


@pytest.fixture
def link_device():
    srv = twin_server.TwinServer("default")
    port = srv.start()
    dev = open_device(f"socket://127.0.0.1:{port}")
    yield dev
    dev.close()
    srv.stop()


def test_link_run_equals_twin_run_and_resumes_across_backends(digits, link_device, tmp_path):
    cfg = TrainConfig(epochs=2, seed=5, hidden=(16,), lr=0.2)
    ref = Trainer(cfg, TwinDevice(), digits)
    ref.run()
    part = Trainer(cfg, TwinDevice(), digits, out_dir=tmp_path)
    part.run(stop_after=1)
    resumed = Trainer.resume(tmp_path, link_device)  # checkpoint from the twin, run on the link
    resumed.run()
    a, b = ref.analog.state(), resumed.analog.state()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert [h["analog_test_loss"] for h in ref.history] == \
        [h["analog_test_loss"] for h in resumed.history]
    whole = Trainer(cfg, link_device, digits)
    whole.run()
    for k, v in whole.analog.state().items():
        assert np.array_equal(a[k], v), k
    assert [c["pulses"] for c in whole.counters()[:2]] == [c["pulses"] for c in ref.counters()[:2]]
