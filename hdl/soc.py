"""The SoC top: byte link, command processor and tile controller.

`SoC(cfg)` has the byte-stream ports the Verilator emulator server bridges to TCP (``rx``, ``tx``,
``idle``); `SoC(cfg, uart_divisor=n)` puts the `UART` in front for boards (``rx_pin``,
``tx_pin``). The chip behind either is the same: frames in, replies out (docs/protocol.md).
"""

from amaranth.hdl import DomainRenamer, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.hdl.lib.checked import Checked
from ohmflow.hdl.lib.clock_gate import gate_domain
from ohmflow.hdl.lib.skid import Skid
from ohmflow.hdl.link.command_processor import CommandProcessor
from ohmflow.hdl.link.uart import UART
from ohmflow.hdl.tile.tile_controller import TileController
from ohmflow.hdl.tile.tile_io import WORD, TileLink

__all__ = ["LinkSlices", "SoC", "make_soc"]


class LinkSlices(wiring.Component):
    """Register slices (`Skid`) on a `TileLink`'s operand and result words, so that no
    combinational path runs between the command processor's sequencer and the tile's pipelines
    (valid, data or ready). ``cmd``, ``settings`` and the step shape's inputs pass through;
    ``busy`` toward the command processor also covers a word still in a slice.

    Ports: ``cp``, the command processor's end of the link; ``tile``, the tile's.
    """

    def __init__(self, cfg: ChipConfig):
        super().__init__({"cp": In(TileLink(cfg)), "tile": Out(TileLink(cfg))})

    def elaborate(self, platform):
        m = Module()
        cp, tile = self.cp, self.tile
        m.submodules.data_in = data_in = Skid(WORD)
        m.submodules.data_out = data_out = Skid(WORD)
        wiring.connect(m, wiring.flipped(cp.cmd), wiring.flipped(tile.cmd))
        wiring.connect(m, wiring.flipped(cp.data_in), data_in.i)
        wiring.connect(m, data_in.o, wiring.flipped(tile.data_in))
        wiring.connect(m, wiring.flipped(tile.data_out), data_out.i)
        wiring.connect(m, data_out.o, wiring.flipped(cp.data_out))
        m.d.comb += [tile.settings.eq(cp.settings), tile.shape_mode.eq(cp.shape_mode),
                     tile.shape_wr.eq(cp.shape_wr), tile.step_factor.eq(cp.step_factor),
                     cp.settling.eq(tile.settling),
                     cp.busy.eq(tile.busy | data_in.busy | data_out.busy)]
        return m


def make_soc(cfg: ChipConfig | str, *, uart_divisor: int | None = None,
             byte_timeout: int | None = None, device_map: DeviceMap | None = None,
             gate_tile_clock: bool = False) -> wiring.Component:
    """The SoC of ``cfg``'s engine: `SoC` (the tile) or `ohmflow.hdl.rv32.core_soc.CoreSoC` (rv32).

    Both have the same link ports and ``idle``. The rv32 engine powers up with the nominal map
    (load another with LOAD_MAP) and has no clock gates (``gate_tile_clock`` is ignored).
    """
    cfg = get_config(cfg)
    if cfg.engine == "rv32":
        from ohmflow.hdl.rv32.core_soc import CoreSoC

        if device_map is not None:
            raise ValueError("the rv32 engine powers up with the nominal device map; "
                             "load another with LOAD_MAP")
        return CoreSoC(cfg, uart_divisor=uart_divisor, byte_timeout=byte_timeout)
    return SoC(cfg, uart_divisor=uart_divisor, byte_timeout=byte_timeout,
               device_map=device_map, gate_tile_clock=gate_tile_clock)


class SoC(Checked, wiring.Component):
    """The chip: `CommandProcessor` + `TileController` (+ `UART`).

    Parameters
    ----------
    cfg: a `ChipConfig` or the name of a preset / TOML file.
    uart_divisor: clocks per bit; given, the link is a UART on ``rx_pin`` / ``tx_pin``.
    byte_timeout: cycles of line silence that drop a partial frame (default: the protocol's).
    device_map: the device parameters at power-up (default: the nominal map).
    gate_tile_clock: clock the `TileController` only while it works, and its units only in the
        operations that use them (simulation only, `ohmflow.hdl.lib.clock_gate`): a cycle-based
        simulator then skips their logic while the chip receives, answers or waits.

    Attributes
    ----------
    rx, tx: byte streams of the link (without a UART).
    rx_pin, tx_pin: serial lines (with a UART).
    idle: nothing received, executing or being answered: a simulator may sleep until a byte.
    """

    def __init__(self, cfg: ChipConfig | str, *, uart_divisor: int | None = None,
                 byte_timeout: int | None = None, device_map: DeviceMap | None = None,
                 gate_tile_clock: bool = False):
        self.cfg = get_config(cfg)
        self.gate_tile_clock = gate_tile_clock
        #: with ``gate_tile_clock``: the gated tile clock runs in this cycle (for tests)
        self.tile_clock_on = Signal(init=1) if gate_tile_clock else None
        self.uart_divisor = uart_divisor
        self.byte_timeout = byte_timeout
        self.device_map = device_map
        if uart_divisor is None:
            ports = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8))}
        else:
            ports = {"rx_pin": In(1, init=1), "tx_pin": Out(1, init=1)}
        super().__init__({**ports, "idle": Out(1)})

    @classmethod
    def check(cls, cfg: ChipConfig | str, **_kw) -> None:
        cfg = get_config(cfg)
        if cfg.engine != "tile":
            raise ValueError(f"config {cfg.name!r} has engine {cfg.engine!r}; SoC is the 'tile' "
                             "engine (make_soc picks the SoC of a config)")

    def elaborate(self, platform):
        m = Module()
        m.submodules.cp = cp = CommandProcessor(self.cfg, self.byte_timeout)
        tc = TileController(self.cfg, self.device_map, gate_units=self.gate_tile_clock)
        if self.gate_tile_clock:
            tc = DomainRenamer("tile")(tc)
            # Between commands nothing in the tile changes that a later command reads (its
            # pipelines have drained and its one free-running register, the operation's cycle
            # count, restarts with the next command); the emulator tests compare the gated
            # SoC with the reference device byte for byte.
            # step shapes: the tables are written while the tile is idle, and rinv writes may
            # follow a map write's end
            gate_domain(m, "tile", tc.busy | cp.tile.cmd.valid | cp.tile.shape_wr.load
                        | tc.settling, enable=self.tile_clock_on)
        m.submodules.tile = tc
        m.submodules.link = link = LinkSlices(self.cfg)
        wiring.connect(m, cp.tile, link.cp)
        wiring.connect(m, link.tile, tc)
        m.d.comb += self.idle.eq(cp.idle & ~cp.tile.busy)
        if self.uart_divisor is None:
            wiring.connect(m, wiring.flipped(self.rx), cp.rx)
            wiring.connect(m, cp.tx, wiring.flipped(self.tx))
        else:
            m.submodules.uart = uart = UART(self.uart_divisor)
            m.d.comb += [uart.rx_pin.eq(self.rx_pin), self.tx_pin.eq(uart.tx_pin)]
            wiring.connect(m, uart.rx, cp.rx)
            wiring.connect(m, cp.tx, uart.tx)
        return m
