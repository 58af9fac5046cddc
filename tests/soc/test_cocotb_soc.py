"""cocotb + Verilator testbenches of the SoC (sim/cocotb_soc.py), on the ``tiny`` config.

Builds are cached across tests and sessions (ohmflow.sim.runner); ``WAVES=1`` writes dump.vcd in
each test's folder; ``OHMFLOW_SEED`` changes the random seed (default: fixed, reproducible).
"""

import os

import pytest
from amaranth.back import verilog
from ohmflow.hdl.soc import SoC
from ohmflow.sim import runner

CONFIG = "tiny"
TIMEOUT = 200  #: byte timeout of the test builds, in cycles (the protocol's 50 ms is 2.5 M)
DIVISOR = 4  #: UART clocks per bit of the UART build
SEED = int(os.environ.get("OHMFLOW_SEED", "20261128"))
MODULE = "ohmflow.sim.cocotb_soc"


@pytest.fixture(scope="session")
def stream_top() -> str:
    return verilog.convert(SoC(CONFIG, byte_timeout=TIMEOUT), name="top", emit_src=False)


@pytest.fixture(scope="session")
def uart_top() -> str:
    soc = SoC(CONFIG, byte_timeout=TIMEOUT * DIVISOR, uart_divisor=DIVISOR)
    return verilog.convert(soc, name="top", emit_src=False)


def env(**kw) -> dict[str, str]:
    return {"OHMFLOW_CONFIG": CONFIG, "OHMFLOW_TIMEOUT": str(TIMEOUT),
            **{k: str(v) for k, v in kw.items()}}


@pytest.mark.parametrize("testcase,frames", [("random_commands", 150),
                                             ("malformed_frames", 120),
                                             ("back_to_back_no_stalls", 90),
                                             ("large_frames", 6)])
def test_soc_stream(stream_top, tmp_path, testcase, frames):
    runner.run(stream_top, MODULE, tmp_path, testcase=testcase, seed=SEED,
               extra_env=env(OHMFLOW_FRAMES=frames))


@pytest.mark.slow  # every bit of ten frames through the UART pins, in cocotb
def test_soc_uart(uart_top, tmp_path):
    runner.run(uart_top, MODULE, tmp_path, testcase="uart_link", seed=SEED,
               extra_env=env(OHMFLOW_UART=DIVISOR, OHMFLOW_TIMEOUT=TIMEOUT * DIVISOR,
                             OHMFLOW_FRAMES=10))
