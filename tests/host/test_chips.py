"""Chip sets: twins run their jobs in the calling thread, with exactly the results (and failures)
of one worker thread per chip."""

import threading

import numpy as np
import pytest
from ohmflow.host.chips import Chips
from ohmflow.host.datasets import Dataset
from ohmflow.host.device import TwinDevice
from ohmflow.host.trainer import TrainConfig, Trainer


class ThreadedTwin(TwinDevice):
    """A twin that asks for a worker thread, as a link device does."""

    concurrent = True


def blobs() -> Dataset:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 9))
    return Dataset("blobs", x[:40], x[:40, :3].argmax(axis=1), x[40:], x[40:, :3].argmax(axis=1),
                   3)


def test_twins_run_inline_and_threaded_chips_on_workers():
    inline = Chips([TwinDevice("tiny") for _ in range(3)])
    threaded = Chips([ThreadedTwin("tiny") for _ in range(3)])
    where = lambda chips: chips.run([(k, threading.current_thread)  # noqa: E731
                                     for k in range(3)])
    assert where(inline) == [threading.current_thread()] * 3
    assert threading.current_thread() not in where(threaded)
    inline.close()
    threaded.close()


@pytest.mark.parametrize("chips", [Chips([TwinDevice("tiny") for _ in range(3)]),
                                   Chips([ThreadedTwin("tiny") for _ in range(3)])])
def test_every_job_runs_and_the_first_failure_is_raised(chips):
    ran = []

    def fail(k):
        ran.append(k)
        raise ValueError(f"job {k}")

    jobs = [(0, lambda: ran.append(0)), (1, lambda: fail(1)), (2, lambda: fail(2)),
            (0, lambda: ran.append(3))]
    with pytest.raises(ValueError, match="job 1"):
        chips.run(jobs)
    assert sorted(ran) == [0, 1, 2, 3]
    chips.close()


@pytest.mark.parametrize("algorithm, n", [("sgd", 4), ("ttv2", 7), ("c-ttv2", 7),
                                          ("mixed-precision", 4)])
def test_inline_twins_train_exactly_as_twins_on_worker_threads(algorithm, n):
    """9-11-3 on n tiny chips (with the fast arrays of Tiki-Taka), one epoch: device states,
    nonces, counters, the cost ledger's counts and the history are the same whether the chips
    run inline or on worker threads."""
    data = blobs()
    cfg = TrainConfig(config="tiny", hidden=(11,), chips=n, epochs=1, seed=4, batch=8,
                      algorithm=algorithm)
    runs, threads = [], []
    for kind in (TwinDevice, ThreadedTwin):
        chips = Chips([kind("tiny") for _ in range(n)])
        t = Trainer(cfg, chips, data)
        t.run()
        runs.append(t)
        threads.append(chips._workers is not None)
        chips.close()
    a, b = runs
    assert threads == [False, True]
    for k, v in a.analog.state().items():
        assert np.array_equal(v, b.analog.state()[k]), k
    for da, db in zip(a.chips, b.chips, strict=True):
        assert np.array_equal(da.twin.weights, db.twin.weights)
        assert da.twin.nonce == db.twin.nonce
    assert a.counters() == b.counters()
    assert a.ledger.entries == b.ledger.entries
    drop = ("seconds", "analog_samples_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a.history] == \
        [{k: v for k, v in r.items() if k not in drop} for r in b.history]


def test_posted_jobs_run_in_order_per_chip_and_the_block_waits_for_them():
    chips = Chips([ThreadedTwin("tiny") for _ in range(2)])
    release, ran = threading.Event(), []
    with chips.overlapped():
        chips.post([(0, release.wait), (0, lambda: ran.append("0a")), (1, lambda: ran.append("1"))])
        chips.post([(0, lambda: ran.append("0b"))])
        assert "0a" not in ran  # chip 0 is still held: post did not wait
        release.set()
    assert ran.index("0a") < ran.index("0b") and sorted(ran) == ["0a", "0b", "1"]
    chips.close()


@pytest.mark.parametrize("kind", [TwinDevice, ThreadedTwin])
def test_a_failed_posted_job_is_raised_at_the_end_of_the_block(kind):
    chips = Chips([kind("tiny") for _ in range(2)])
    ran = []

    def fail(k):
        raise ValueError(f"job {k}")

    with pytest.raises(ValueError, match="job 1"), chips.overlapped():
        chips.post([(0, lambda: fail(1)), (1, lambda: fail(2))])
        chips.post([(1, lambda: ran.append(1))])
        ran.append("body")
    assert sorted(ran, key=str) == [1, "body"] if kind is ThreadedTwin else ran == []
    chips.close()


def test_the_block_own_failure_wins_after_its_jobs_have_run():
    chips = Chips([ThreadedTwin("tiny") for _ in range(2)])
    ran = []
    with pytest.raises(KeyError), chips.overlapped():
        chips.post([(0, lambda: ran.append(0)), (1, lambda: 1 / 0)])
        raise KeyError("body")
    assert ran == [0]
    chips.close()


def test_post_outside_a_block_runs_at_once():
    chips = Chips([ThreadedTwin("tiny") for _ in range(2)])
    ran = []
    chips.post([(0, lambda: ran.append(0)), (1, lambda: ran.append(1))])
    assert sorted(ran) == [0, 1]
    chips.close()
