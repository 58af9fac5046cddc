"""The command processor's PhysicsWalker against the twin (docs/numerics.md §11): SET_PHYSICS
and GET_PHYSICS byte for byte, ADVANCE's tile operations and words (the log2 age ratio of each
tile, skipped where neither drift nor decay acts), PROGRAM restarting an age, RESET, and an
ADVANCE that would carry the time or an age past 2^64 - 1 refused with nothing changed."""

from __future__ import annotations

import numpy as np
from ohmflow.emulator import physics
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import ChipConfig, Settings
from ohmflow.emulator.twin import Twin
from ohmflow.hdl.link.command_layouts import payload_layout
from ohmflow.hdl.link.command_physics import PhysicsWalker
from ohmflow.hdl.tile.tile_drift import advance_words
from ohmflow.hdl.tile.tile_io import Op

from .hdlbench import run

CFG = ChipConfig(tiles=5, rows=3, cols=4, lanes=1, name="five-tiles")
SET = {"drift_nu": 5000, "drift_nu_dtod": 700, "decay_rate": 3 << 30, "decay_dtod": 900,
       "temperature": 420, "device_key": 0xDEADBEEF}


def _driver(dut, script, out):
    """Run ``script``: (command, request fields, extra) steps; collect per step the reply
    bytes, the tile operations with their words, refused and length."""

    async def tb(ctx):
        ctx.set(dut.tile_op.ready, 1)
        ctx.set(dut.data_in.ready, 1)
        ctx.set(dut.write.ready, 1)
        ctx.set(dut.tile_busy, 0)
        for name, fields, extra in script:
            for k, v in extra:
                ctx.set(k, v)
            if name is None:
                await ctx.tick()
                continue
            for k, v in fields.items():
                ctx.set(dut.request[k], v)
            ctx.set(dut.op[name], 1)
            ctx.set(dut.go, 1)
            await ctx.tick()
            ctx.set(dut.go, 0)
            rec = {"bytes": bytearray(64), "ops": [], "words": [], "cycles": 1}
            while True:
                if ctx.get(dut.tile_op.valid):
                    rec["ops"].append((Op(ctx.get(dut.tile_op.payload)), ctx.get(dut.tile)))
                if ctx.get(dut.data_in.valid):
                    rec["words"].append(ctx.get(dut.data_in.payload))
                if ctx.get(dut.write.valid):
                    job = ctx.get(dut.write.payload)
                    rec["bytes"][job.addr:job.addr + job.width] = \
                        int(job.value).to_bytes(4, "little")[:job.width]
                if ctx.get(dut.done):
                    rec["refused"], rec["length"] = ctx.get(dut.refused), ctx.get(dut.length)
                    await ctx.tick()
                    break
                await ctx.tick()
                rec["cycles"] += 1
            ctx.set(dut.op[name], 0)
            out.append(rec)

    return tb


def _get_bytes(twin: Twin) -> bytes:
    ref = {**P.physics_fields(twin.settings, twin.device_key), "time": twin.time,
           "tiles": CFG.tiles, "ages": np.array(twin.ages, dtype=np.uint64)}
    return P.encode_payload(P.command("GET_PHYSICS").reply, ref, CFG)


def test_set_get_advance_program_and_reset_as_the_twin():
    dut = PhysicsWalker(CFG)
    twin = Twin(CFG)
    out, expect = [], []
    script = [("SET_PHYSICS", SET, []), ("GET_PHYSICS", {}, [])]
    twin.settings = twin.settings.replace(CFG, **{k: v for k, v in SET.items()
                                                  if k != "device_key"})
    twin.load_device_key(SET["device_key"])
    expect.append(("get", _get_bytes(twin)))
    for dt in (1000, 7_200_000, 0, 2**32 - 1):
        s = twin.settings
        step = physics.age_step(dt, s.temperature)
        words = []
        for t in range(CFG.tiles):
            dl = physics.drift_log(twin.ages[t], twin.ages[t] + step)
            words.append(advance_words(dl, twin.device_key, s.drift_nu, s.drift_nu_dtod,
                                       s.decay_rate, s.decay_dtod, dt))
        twin.advance(dt)
        script += [("ADVANCE", {"dt": dt}, []), ("GET_PHYSICS", {}, [])]
        expect += [("advance", words, twin.time), ("get", _get_bytes(twin))]
    script += [(None, {}, [(dut.programmed, 1), (dut.programmed_tile, 3)]),
               (None, {}, [(dut.programmed, 0)]), ("GET_PHYSICS", {}, [])]
    twin.ages[3] = 0
    expect.append(("get", _get_bytes(twin)))
    script += [(None, {}, [(dut.reset, 1)]), (None, {}, [(dut.reset, 0)]), ("GET_PHYSICS", {}, [])]
    twin.reset()
    expect.append(("get", _get_bytes(twin)))
    run(dut, _driver(dut, script, out), max_cycles=200_000)
    got = out
    assert got[0]["length"] == 1 and not got[0]["refused"] and got[0]["ops"] == []
    for rec, exp in zip(got[1:], expect, strict=True):
        assert not rec["refused"]
        if exp[0] == "get":
            size = len(exp[1])
            assert rec["length"] == 1 + size and bytes(rec["bytes"][1:1 + size]) == exp[1]
        else:
            _, words, time = exp
            acts = [t for t, w in enumerate(words) if w[0] != 0 or w[6] | w[7]]
            assert rec["ops"] == [(Op.ADVANCE, t) for t in acts]
            assert rec["words"] == [x for t in acts for x in words[t]]
            assert int.from_bytes(rec["bytes"][1:9], "little") == time
            # docs/gateware.md: at most 69 + 115 per tile, the tiles' operations aside (here
            # each answers at once)
            assert rec["cycles"] <= 69 + 115 * CFG.tiles


def test_advance_past_the_64_bit_time_is_refused_and_changes_nothing():
    dut = PhysicsWalker(CFG)
    out = []
    top = 2**64 - 1
    set_t = {**SET, "temperature": 300}
    script = [("SET_PHYSICS", set_t, []),
              (None, {}, [(dut.time_reg, top - 10), (dut.age_regs[2], 5)]),
              ("ADVANCE", {"dt": 11}, []), ("GET_PHYSICS", {}, []),  # the time would pass
              (None, {}, [(dut.time_reg, 0), (dut.age_regs[4], top - 999)]),
              ("ADVANCE", {"dt": 1000}, []), ("GET_PHYSICS", {}, []),  # tile 4's age would
              ("ADVANCE", {"dt": 999}, []), ("GET_PHYSICS", {}, [])]  # reaches 2^64 - 1: taken
    run(dut, _driver(dut, script, out), max_cycles=100_000)
    twin = Twin(CFG, Settings.default(CFG).replace(CFG, **{k: v for k, v in set_t.items()
                                                           if k != "device_key"}))
    twin.load_device_key(SET["device_key"])
    twin.time, twin.ages = top - 10, [0, 0, 5, 0, 0]
    assert out[1]["refused"] and out[1]["length"] == 1 and out[1]["ops"] == []
    assert bytes(out[2]["bytes"][1:out[2]["length"]]) == _get_bytes(twin)
    twin.time, twin.ages[4] = 0, top - 999
    assert out[3]["refused"] and out[3]["ops"] == []
    assert bytes(out[4]["bytes"][1:out[4]["length"]]) == _get_bytes(twin)
    assert not out[5]["refused"]
    twin.advance(999)
    assert twin.ages[4] == top
    assert bytes(out[6]["bytes"][1:out[6]["length"]]) == _get_bytes(twin)
    _scalars, _arrays, off = payload_layout(P.command("GET_PHYSICS").reply, CFG, start=1)
    assert out[6]["length"] == off + 8 * CFG.tiles
