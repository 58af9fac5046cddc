"""Clock gating for simulation speed: a domain whose clock stops while its logic has no work.

A cycle-based simulator (Verilator) evaluates a clock domain's registers only on that domain's
edges, so stopping the clock of an idle unit removes its cost. The gate is the usual
latch-and-AND: the enable is sampled while the parent clock is low, so the gated clock never
glitches. Only the emulator's top uses it; the boards' gateware is built without gates.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal, Value

__all__ = ["gate_domain", "GATE_TAIL"]

#: cycles a gated clock keeps running after its last cycle of work
GATE_TAIL = 16


def gate_domain(m: Module, name: str, work: Value, *, parent: str = "sync",
                tail: int = GATE_TAIL, enable: Signal | None = None) -> Signal:
    """Add the local domain ``name``: ``parent``'s clock in cycles where ``work`` is high or
    parent's reset is asserted, and for ``tail`` cycles after; stopped otherwise. Returns the
    enable (high in the cycles the gated clock runs; pass ``enable`` to use a given signal).

    The caller guarantees that the gated logic changes nothing a later use reads while
    ``work`` is low (its pipelines have drained within ``tail`` cycles).
    """
    if tail < 1:
        raise ValueError(f"tail must be at least 1 cycle, got {tail}")
    enable = Signal(init=1, name=f"{name}_clock_on") if enable is None else enable
    m.domains += [ClockDomain(name, local=True),
                  ClockDomain(f"{name}_gate", clk_edge="neg", local=True)]
    left = Signal(range(tail + 1), name=f"{name}_tail")
    busy = Signal(name=f"{name}_work")
    m.d.comb += busy.eq(work | ResetSignal(parent))
    with m.If(busy):
        m.d[parent] += left.eq(tail)
    with m.Elif(left != 0):
        m.d[parent] += left.eq(left - 1)
    m.d[f"{name}_gate"] += enable.eq(busy | (left != 0))
    m.d.comb += [
        ClockSignal(f"{name}_gate").eq(ClockSignal(parent)),
        ResetSignal(f"{name}_gate").eq(0),
        ClockSignal(name).eq(ClockSignal(parent) & enable),
        ResetSignal(name).eq(ResetSignal(parent)),
    ]
    return enable
