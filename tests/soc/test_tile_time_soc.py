"""numerics §11 on the tile engine's gateware in Verilator against the reference device: the
rv32 engine's test of time and temperature (`test_core_soc`), run on the `tiny` chip (two 5x7
tiles, 3 lanes) and on an odd chip of two 3x5 tiles and 2 lanes, in the linear mode and with a
PowStep table; and random sessions that draw SET_PHYSICS, GET_PHYSICS and ADVANCE among the
other commands."""

from __future__ import annotations

import pytest
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS, ChipConfig

from .test_core_soc import served, session
from .test_core_soc import test_time_and_temperature_as_the_twin as _as_the_twin
from .test_emulator_e2e import call

CONFIGS = {"tiny": PRESETS["tiny"],
           "three-by-five": ChipConfig(tiles=2, rows=3, cols=5, lanes=2, name="three-by-five")}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def server(request):
    with served(CONFIGS[request.param]) as s:
        yield s


def test_random_sessions_with_time_are_byte_exact(server):
    cfg, _proc, link = server
    assert session(cfg, link, 17, 120) == 120  # first: a fresh chip, as the reference
    # the next test starts from a RESET chip (time, ages and settings as after power-up)
    reply = call(link, P.encode_frame(P.command("RESET").opcode, 1, b""))
    assert reply.payload == bytes((P.ST["OK"],))


@pytest.mark.parametrize("model", ["ConstantStep", "PowStep"])
def test_time_and_temperature_on_the_tile_as_the_twin(server, model):
    assert server[0].engine == "tile"
    _as_the_twin(server, model)
