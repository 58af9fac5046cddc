"""The rv32 engine's firmware build: the generated header agrees with the command table, the
image fits the iCEBreaker's block RAM, configs the engine cannot serve are refused clearly.

(What the firmware computes is tested against the reference device in tests/soc and
tests/reliability, on the RTL it runs on.)
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import PRESETS, ChipConfig, get_config
from ohmflow.hdl.rv32 import core_map, firmware
from ohmflow.hdl.rv32.core_soc import CoreSoC
from ohmflow.hdl.soc import SoC, make_soc

ODD = dataclasses.replace(PRESETS["tiny"], lanes=1, engine="rv32", name="tiny-rv32")


def defines(header: str) -> dict[str, int]:
    out = {}
    for name, value in re.findall(r"^#define (\w+) \(?(-?\d+|0x[0-9a-f]+)u?(?:ll)?\)?$", header,
                                  re.M):
        out[name] = int(value, 0)
    return out


@pytest.mark.parametrize("cfg", [get_config("icebreaker"), ODD], ids=lambda c: c.name)
def test_header_offsets_follow_the_command_table(cfg):
    d = defines(firmware.chip_header(cfg))
    for c in P.TABLE.commands:
        for prefix, layout in (("REQ", c.request), ("REP", c.reply)):
            pos = 0
            for f in layout:
                w = P.kind_dtype(f.kind, cfg).itemsize
                if f.count is not None and not f.count.isdigit():
                    assert d[f"{prefix}_{c.name}_{f.name.upper()}_W"] == w
                    continue
                assert d[f"{prefix}_{c.name}_{f.name.upper()}"] == pos, (c.name, f.name)
                assert d[f"{prefix}_{c.name}_{f.name.upper()}_W"] == w
                pos += w * (1 if f.count is None else int(f.count))
            counts = {f.name: 0 for f in layout if f.count is None}
            fixed = P.payload_size([f for f in layout if f.count is None or f.count.isdigit()],
                                   counts, cfg)
            assert d[f"{prefix}_{c.name}_FIXED"] == fixed
    for k in P.TABLE.kinds:
        lo, hi = P.kind_range(k.name, cfg)
        assert (d[f"{k.name.upper()}_LO"], d[f"{k.name.upper()}_HI"]) == (lo, hi)
        assert d[f"W_{k.name.upper()}"] == P.kind_dtype(k.name, cfg).itemsize
    for name, off in core_map.IO.items():
        assert d[f"IO_{name}"] == off
    assert [d[f"C_{n.upper()}"] for n in P.TABLE.counters] == list(range(len(P.TABLE.counters)))
    assert (d["TILES"], d["ROWS"], d["COLS"]) == (cfg.tiles, cfg.rows, cfg.cols)


def test_the_icebreaker_image_fits_its_block_ram():
    """Code and constants only; with the register file (4 block RAMs) and the receive FIFO
    (1) the UP5K's 30 block RAMs of 512 bytes must hold it."""
    fw = firmware.build("icebreaker")
    assert 4 * len(fw.words) <= fw.bram_bytes <= (30 - 5) * 512
    assert fw.spram_bytes <= core_map.SPRAM_BYTES
    assert fw.words[0] != 0  # the reset vector holds code
    assert firmware.build("icebreaker").words == fw.words  # cached, and reproducible


def test_time_is_compiled_in_where_the_config_has_it_and_the_icebreaker_cannot_hold_it(
        monkeypatch):
    """config.has_time sets chip.h's HAVE_TIME; the iCEBreaker is in TIME_UNFIT because its
    image with time and temperature (numerics §11) would not fit the block RAM it has."""
    from ohmflow.emulator import config as C

    assert C.has_time(ODD) and not C.has_time(get_config("icebreaker"))
    assert "#define HAVE_TIME 1" in firmware.chip_header(ODD)
    assert "#define HAVE_TIME 0" in firmware.chip_header("icebreaker")
    monkeypatch.setattr(C, "TIME_UNFIT", ())
    assert "#define HAVE_TIME 1" in firmware.chip_header("icebreaker")
    assert firmware.build("icebreaker").bram_bytes > (30 - 5) * 512


def test_a_chip_too_large_for_the_spram_is_refused_with_the_reason():
    big = ChipConfig(tiles=4, rows=64, cols=64, lanes=1, engine="rv32", name="big-rv32")
    with pytest.raises(firmware.FirmwareError, match="SPRAM cannot hold"):
        firmware.build(big)


def test_formats_wider_than_the_firmware_stores_are_refused():
    """The firmware keeps states, bounds and steps in 16 bits."""
    wide = ChipConfig(tiles=1, rows=4, cols=4, lanes=1, w_bits=20, w_frac=16, engine="rv32",
                      name="wide")
    with pytest.raises(ValueError, match="16 bits"):
        firmware.chip_header(wide)


def test_engines_are_checked_where_a_soc_is_made():
    with pytest.raises(ValueError, match="lanes must be 1"):
        ChipConfig(tiles=1, rows=4, cols=4, lanes=2, engine="rv32")
    with pytest.raises(ValueError, match="unknown engine"):
        ChipConfig(engine="analog")
    with pytest.raises(ValueError, match="CoreSoC runs the 'rv32' engine"):
        CoreSoC("tiny")
    with pytest.raises(ValueError, match="make_soc picks"):
        SoC(ODD)
    with pytest.raises(ValueError, match="byte_timeout"):
        CoreSoC(ODD, byte_timeout=1)
    from ohmflow.emulator.fabrication import nominal

    with pytest.raises(ValueError, match="nominal device map"):
        make_soc(ODD, device_map=nominal(ODD))
    for cfg, cls in ((ODD, CoreSoC), ("tiny", SoC)):
        with warnings.catch_warnings():  # made to be looked at, not elaborated
            warnings.simplefilter("ignore", UnusedElaboratable)
            soc = make_soc(cfg)
            assert type(soc) is cls
            del soc


def test_the_fingerprint_covers_the_engine():
    tile = dataclasses.replace(ODD, engine="tile")
    assert tile.fingerprint() != ODD.fingerprint()
    v = P.decode_payload(P.command("INFO").reply,
                         P.encode_payload(P.command("INFO").reply, P.info_fields(ODD), ODD), ODD)
    assert P.config_from_info(v) == ODD and v["engine"] == 1
    v["engine"] = 7
    with pytest.raises(ValueError, match="engine code 7"):
        P.config_from_info(v)


def test_the_address_map_in_the_docs_is_generated_from_the_table():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "rv32.md").read_text()
    a, b = text.index(core_map.DOC_BEGIN), text.index(core_map.DOC_END) + len(core_map.DOC_END)
    assert text[a:b] == core_map.render_markdown(), \
        "run python -m ohmflow.hdl.rv32.core_map --write"


def test_a_first_build_says_what_it_does_and_how_long_it_took(tmp_path, capsys):
    fw = firmware.build("icebreaker", cache=tmp_path)
    err = capsys.readouterr().err
    assert "compiling the rv32 firmware for icebreaker" in err and str(tmp_path) in err
    assert re.search(r"firmware compiled in \d+\.\d s", err)
    assert firmware.build("icebreaker", cache=tmp_path).words == fw.words
    assert capsys.readouterr().err == ""  # a cached build is silent
