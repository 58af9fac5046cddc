"""Suite-wide settings: plain emulator builds, and the longest builds first.

- The chip emulators are built without the profile-guided step (``OHMFLOW_EMULATOR_PGO=0``,
  unless the environment says otherwise): the same C++ model compiled once instead of twice, which
  takes several minutes off the suite. `tests/soc/test_harness.py` builds profile-guided and
  runs the chip's profile workload.
- The board builds start first. `./run test` runs pytest-xdist with ``--dist worksteal``: the
  worker that builds the ULX3S bitstream (most of 20 minutes) leaves the other tests of its share
  to the other worker, which takes them over when its own are done.
"""

import os

from ohmflow.sim.verilator_server import PGO_ENV

os.environ.setdefault(PGO_ENV, "0")

#: tests that start before all others, longest first (node ids)
LONGEST_FIRST = (
    "tests/boards/test_build.py::test_soc_fits_the_ulx3s_and_meets_its_clock",
    "tests/boards/test_build.py::test_soc_fits_the_icebreaker_and_meets_its_clock",
)


def pytest_collection_modifyitems(config, items):
    """Move `LONGEST_FIRST` to the front; the rest keep their order."""
    rank = {node: i for i, node in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))
