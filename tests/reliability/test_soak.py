"""A short soak: training through the emulator in lockstep with the twin (seed 0).

The full run is ``python -m ohmflow.host.soak --commands 100000`` (docs/reliability.md)."""

import os

from ohmflow.host import soak

COMMANDS = int(os.environ.get("OHMFLOW_SOAK_COMMANDS", "2000"))


def test_short_soak_agrees_with_the_twin_without_errors_or_growth(tiny_exe):
    rep = soak.run(COMMANDS, seed=0)
    assert rep.mismatch is None, rep.summary()
    assert rep.commands >= COMMANDS and rep.retries == 0 and rep.stale == 0, rep.summary()
    assert rep.server_rss_kb[-1] - rep.server_rss_kb[0] < 1024, rep.summary()
    assert rep.host_rss_kb[-1] - rep.host_rss_kb[0] < 32 * 1024, rep.summary()
