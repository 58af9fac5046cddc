"""Checkpoints survive crashes mid-write: a writer killed at random moments (seed 11) and a
failure injected at every step of `checkpoint.save` leave the last complete checkpoint."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ohmflow.host import checkpoint
from ohmflow.host.device import TwinDevice
from ohmflow.host.soak import blobs, train_config
from ohmflow.host.trainer import Trainer

from .conftest import CFG

WRITER = """
import sys, numpy as np
from ohmflow.host import checkpoint
path = sys.argv[1]
for i in range(1, 10**6):
    rng = np.random.default_rng(i)
    checkpoint.save(path, {"i": i}, {"x": rng.integers(0, 2**31, 300_000), "i": np.array(i)})
    print(i, flush=True)
"""


def check(path):
    meta, arrays = checkpoint.load(path)
    i = meta["i"]
    assert int(arrays["i"]) == i
    np.testing.assert_array_equal(arrays["x"], np.random.default_rng(i).integers(0, 2**31,
                                                                                 300_000))
    return i


def test_a_writer_killed_at_random_moments_never_leaves_a_torn_checkpoint(tmp_path):
    path = tmp_path / "run.ohmckpt"
    rng = np.random.default_rng(11)
    seen = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline()  # one save done: from now on a kill may hit a write
            time.sleep(float(rng.uniform(0.0, 0.3)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc.stdout.close()
        seen = max(seen, check(path))  # complete, checksummed, one of the versions written
    assert seen >= 1
    others = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(n.startswith(".run.ohmckpt.tmp") for n in others)  # at most stale temp files


STEPS = ["open", "write", "fsync", "replace"]


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_write_step_keeps_the_previous_checkpoint(tmp_path, monkeypatch, step):
    path = tmp_path / "c.ohmckpt"
    checkpoint.save(path, {"i": 1}, {"x": np.arange(5)})
    old = path.read_bytes()

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    real_open = open
    if step == "open":
        monkeypatch.setattr("builtins.open", lambda p, *a, **k: fail() if ".tmp" in str(p)
                            else real_open(p, *a, **k))
    elif step == "write":
        class Half:
            def __init__(self, f):
                self.f, self.n = f, 0

            def __enter__(self):
                return self

            def __exit__(self, *e):
                self.f.close()

            def write(self, b):
                self.n += 1
                if self.n == 2:
                    self.f.write(b[: len(b) // 2])
                    fail()
                return self.f.write(b)

            def __getattr__(self, name):
                return getattr(self.f, name)

        monkeypatch.setattr("builtins.open", lambda p, *a, **k: Half(real_open(p, *a, **k))
                            if ".tmp" in str(p) else real_open(p, *a, **k))
    else:
        monkeypatch.setattr(os, step, fail)
    with pytest.raises(OSError, match="No space"):
        checkpoint.save(path, {"i": 2}, {"x": np.arange(7)})
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert checkpoint.load(path)[0] == {"i": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ohmckpt"]


def test_training_whose_checkpoint_write_fails_resumes_bit_identically(tmp_path, monkeypatch):
    cfg, data = train_config(seed=9, epochs=3), blobs(9)
    whole = Trainer(cfg, TwinDevice(CFG), data)
    whole.run()
    first = Trainer(cfg, TwinDevice(CFG), data, out_dir=tmp_path)
    first.run(stop_after=1)
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        first.run()  # epoch 2 trains, then its checkpoint cannot be written
    monkeypatch.setattr(os, "replace", real)
    resumed = Trainer.resume(tmp_path, TwinDevice(CFG), data=data)
    assert resumed.epoch == 1
    resumed.run()
    a, b = whole.analog.state(), resumed.analog.state()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [h["analog_test_loss"] for h in whole.history] == \
        [h["analog_test_loss"] for h in resumed.history]
