"""`ohmflow bench`: its link-efficiency figure equals what a real link exchange puts on the wire."""

import numpy as np
import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.host import bench, cli
from ohmflow.host.link import LinkDevice
from ohmflow.sim.twin_server import TwinServer


@pytest.mark.parametrize("batch", [1, 8, 31])
def test_link_efficiency_matches_the_wire(batch):
    cfg = PRESETS["default"]
    with TwinServer(cfg) as srv:
        # A loaded machine may stall the server past a short timeout, and a retry sends the
        # request again; the generous timeout keeps this to one exchange, which is checked.
        dev = LinkDevice.open(f"socket://127.0.0.1:{srv.port}", cfg, timeout=120.0)
        try:
            before = dict(dev.stats)
            dev.forward(0, np.ones((batch, 64), dtype=np.int64))
            wire = sum(dev.stats[k] - before[k] for k in ("bytes_out", "bytes_in"))
            assert dev.stats["retries"] == before["retries"]
        finally:
            dev.close()
    codes = batch * 64 * (1 + 2)  # int8 DAC codes out, int16 ADC codes back
    assert bench.link_efficiency(cfg, batch) == pytest.approx(codes / wire, abs=1e-12)


def test_bench_is_an_ohmflow_command(capsys):
    assert cli.main(["bench", "--repeats", "0"]) == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err


def test_bench_writes_the_docs_only_when_asked(monkeypatch, capsys):
    from ohmflow.host import benchdoc

    monkeypatch.setattr(bench, "amaranth_cycles_per_s", lambda cfg: 1.0)
    monkeypatch.setattr(bench, "verilator_cycles_per_s", lambda cfg, seconds: 2.0)
    monkeypatch.setattr(bench, "training_samples_per_s", lambda backend, cfg, n: [3.0] * n)
    written = []
    monkeypatch.setattr(benchdoc, "write_section", lambda *a, **k: written.append(a))
    assert cli.main(["bench", "--repeats", "1"]) == 0
    assert written == [] and "training, twin: median 3.0" in capsys.readouterr().out
    assert cli.main(["bench", "--repeats", "1", "--write-docs"]) == 0
    assert len(written) == 1 and written[0][0] == "bench"
    assert "--write-docs" in written[0][3] and "| training, twin | samples/s | 3 | 3 |" in \
        written[0][2]
