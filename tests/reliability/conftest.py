"""Fixtures: the tiny chip's Verilator emulator (built once, cached) and its servers."""

import pytest
from ohmflow.emulator.config import PRESETS
from ohmflow.sim import verilator_server

CFG = PRESETS["tiny"]


@pytest.fixture(scope="session")
def tiny_exe():
    """The cached emulator executable of the tiny chip."""
    return verilator_server.build(CFG)


@pytest.fixture
def tiny_server(tiny_exe):
    """A running tiny emulator server: (process, port); stopped afterwards."""
    proc, port = verilator_server.start(tiny_exe)
    yield proc, port
    verilator_server.stop(proc)
