"""The cocotb runner glue and the stream source/sink, on the echo design."""

from amaranth.back import verilog
from ohmflow.sim import runner

from .echo import Echo


def test_cocotb_echo(tmp_path):
    v = verilog.convert(Echo(0x3C, depth=4), name="top", emit_src=False)
    tests, failed = runner.run(v, "tests.soc.cocotb_echo", tmp_path,
                               extra_env={"ECHO_MASK": str(0x3C)}, seed=7)
    assert (tests, failed) == (1, 0)
