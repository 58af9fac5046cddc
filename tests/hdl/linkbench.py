"""Benches for the command processor's parts: the opcode flags of a command and a walker with
its request's payload in a buffer read by a real `ElementReader`."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from ohmflow.emulator import protocol as P
from ohmflow.hdl.link.framing import BANKS, ElementReader


def op_flags(name: str) -> dict[str, int]:
    """The `op_flags_layout` value of command ``name``."""
    return {c.name: int(c.name == name) for c in P.TABLE.commands}


def with_payload(walker, payload: bytes) -> Module:
    """``walker`` with an `ElementReader` on a payload buffer holding ``payload`` (byte a in
    bank a % 4, row a // 4, as the receiver stores it)."""
    m = Module()
    m.submodules.walker = walker
    m.submodules.reader = reader = ElementReader()
    wiring.connect(m, walker.reader, reader.job)
    wiring.connect(m, reader.o, walker.elements)
    if "reader_busy" in walker.signature.members:
        m.d.comb += walker.reader_busy.eq(reader.busy)
    rows = -(-P.constants()["MAX_PAYLOAD"] // BANKS)
    for bank in range(BANKS):
        m.submodules[f"bank{bank}"] = mem = Memory(shape=8, depth=rows,
                                                   init=list(payload[bank::BANKS]))
        port = mem.read_port()
        m.d.comb += [port.addr.eq(reader.rd_addr[bank]), port.en.eq(reader.rd_en),
                     reader.rd_data[bank].eq(port.data)]
    return m
