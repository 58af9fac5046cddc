"""The command table: consistent, complete, and the one source of docs/protocol.md."""

import dataclasses
import zlib
from pathlib import Path

import pytest
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    COUNTERS,
    PHYSICS_NAMES,
    PRESETS,
    ChipConfig,
    Settings,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_opcodes_and_statuses_are_unique_and_fit_the_frame():
    ops = [c.opcode for c in P.TABLE.commands]
    assert len(set(ops)) == len(ops)
    assert all(0 < op < P.TABLE.reply_flag for op in ops)
    codes = [s.code for s in P.TABLE.statuses]
    assert len(set(codes)) == len(codes) and P.ST["OK"] == 0
    assert {"OK", "BAD_CRC", "BAD_LENGTH", "UNKNOWN_OPCODE", "BAD_ARGUMENT", "BUSY"} <= set(P.ST)


def test_fields_use_known_kinds_and_counts_of_earlier_fields():
    kinds = {k.name for k in P.TABLE.kinds} | {"u8", "u16", "u32", "u64", "i8", "i16", "i32"}
    for c in P.TABLE.commands:
        for layout in (c.request, c.reply):
            seen = {}
            for f in layout:
                assert f.kind in kinds, (c.name, f.name)
                if f.count is not None:
                    assert P.evaluate(f.count, {k: 1 for k in seen}) >= 1, (c.name, f.name)
                else:
                    seen[f.name] = 1


def test_info_carries_every_config_field_and_set_every_setting():
    info = {f.name for f in P.command("INFO").reply}
    assert {f.name for f in dataclasses.fields(ChipConfig)} <= info
    # SET and GET carry every setting but time and temperature (numerics §11), which
    # SET_PHYSICS and GET_PHYSICS carry with the device key; no setting is on both
    wire = {f.name for f in dataclasses.fields(Settings)} - set(PHYSICS_NAMES)
    assert wire <= {f.name for f in P.command("SET").request}
    assert wire <= {f.name for f in P.command("GET").reply}
    physics = {*PHYSICS_NAMES, "device_key"}
    assert physics == {f.name for f in P.command("SET_PHYSICS").request}
    assert physics <= {f.name for f in P.command("GET_PHYSICS").reply}
    assert not physics & {f.name for f in P.command("SET").request}
    assert set(P.TIME_COMMANDS) <= {c.name for c in P.TABLE.commands}


def test_counters_extend_the_twins():
    assert P.TABLE.counters[: len(COUNTERS)] == COUNTERS


def test_crc_parameters_are_zlibs():
    assert zlib.crc32(b"123456789") == P.TABLE.crc["check"]
    assert P.constants()["CRC_CHECK"] == P.TABLE.crc["check"]


def test_constants_for_a_gateware_decoder():
    c = P.constants(PRESETS["default"])
    assert c["SYNC0"] == 0xA5 and c["SYNC1"] == 0x5A and c["MAX_PAYLOAD"] == 4096
    assert c["OP_FORWARD"] == P.command("FORWARD").opcode == P.opcodes()["FORWARD"]
    assert c["ST_BAD_ARGUMENT"] == P.status_codes()["BAD_ARGUMENT"]
    # 7-bit DAC codes in one byte, 9-bit ADC codes in two, weights in two
    assert (c["W_DAC"], c["W_ADC"], c["W_W"], c["W_CNT"]) == (1, 2, 2, 1)
    assert c["BYTE_TIMEOUT_CYCLES"] == 50_000_000 * P.TABLE.byte_timeout_ms // 1000


def test_command_lookup_errors_name_the_known_commands():
    assert P.command(0x20).name == "FORWARD"
    with pytest.raises(KeyError, match="FORWARD"):
        P.command("FROBNICATE")


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_fit_frames(name):
    P.check_fits(PRESETS[name])


def test_oversized_vectors_are_refused():
    with pytest.raises(ValueError, match="max_payload"):
        P.check_fits(ChipConfig(tiles=1, rows=4096, cols=64))


def test_docs_are_generated_from_the_table():
    text = DOC.read_text()
    from ohmflow.emulator import protocol_doc as D

    a, b = text.index(D.DOC_BEGIN), text.index(D.DOC_END) + len(D.DOC_END)
    assert text[a:b] == D.render_markdown(), (
        "docs/protocol.md is stale: run python -m ohmflow.emulator.protocol_doc --write")
    for c in P.TABLE.commands:
        assert f"0x{c.opcode:02X} {c.name}" in text
