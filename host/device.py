"""One host API over every chip: the in-process twin, the Verilator emulator, a board.

`Device` is the contract; `TwinDevice` runs the bit-exact twin in process. Link backends
(`ohmflow.host.link`) speak the framed protocol over a pyserial byte link. `open_device` picks a
backend from one string: ``twin``, ``verilator``, or a serial port / pyserial URL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from ohmflow.emulator import config as C
from ohmflow.emulator.config import (
    DT_BITS,
    PHYSICS_NAMES,
    TIME_UNIT_MS,
    ChipConfig,
    Settings,
    get_config,
)
from ohmflow.emulator.fabrication import DeviceMap
from ohmflow.emulator.protocol import CONTRACT_VERSION
from ohmflow.emulator.step_shape import StepShape
from ohmflow.emulator.twin import Twin
from ohmflow.host import periphery

__all__ = ["CONTRACT_VERSION", "ConfigMismatch", "Device", "DeviceError", "DeviceInfo",
           "TwinDevice", "open_device"]


@dataclass(frozen=True)
class DeviceInfo:
    """What a device says about itself (the INFO command)."""

    config: ChipConfig
    version: int
    fingerprint: int
    backend: str


class DeviceError(RuntimeError):
    """The device is gone, timed out, or answered with an error."""


class ConfigMismatch(DeviceError):
    """The device's synthesized config is not the one the host expects."""


class Device(ABC):
    """A chip: weights, device maps, settings, forward/backward/update, counters.

    Every array is integer codes as in docs/numerics.md; shapes follow the tile's active window
    ``Settings.shapes[tile] = (n_in, n_out)``. Batched operations take (B, n) arrays.
    """

    config: ChipConfig
    #: calls wait with the GIL released (a link), so chips gain from a worker thread each
    concurrent: bool = True

    @abstractmethod
    def info(self) -> DeviceInfo:
        """The device's config, contract version and config fingerprint."""

    @abstractmethod
    def reset(self) -> None:
        """Weights to 0, settings to defaults, nonce and counters to 0; the device map stays."""

    @abstractmethod
    def settings(self) -> Settings:
        """The current run-time settings."""

    @abstractmethod
    def configure(self, **changes) -> Settings:
        """Change run-time settings (names of `Settings` fields); returns the new settings."""

    @abstractmethod
    def program(self, tile: int, weights: np.ndarray) -> None:
        """Write device states (n_out, n_in); each is clipped to its device's bounds."""

    @abstractmethod
    def read(self, tile: int) -> np.ndarray:
        """Read device states (n_out, n_in)."""

    @abstractmethod
    def load_device_map(self, dmap: DeviceMap, tile: int | None = None) -> None:
        """Upload per-device parameters: the whole chip, or one tile (arrays (1, cols, rows))."""

    @abstractmethod
    def read_device_map(self, tile: int | None = None) -> DeviceMap:
        """Read per-device parameters back."""

    @abstractmethod
    def load_step_shape(self, shape: StepShape) -> None:
        """Load the chip's step-shape tables (numerics §5.4.1: ExpStep, PowStep, PiecewiseStep).

        The linear shape (ConstantStep, LinearStep, SoftBounds) is every chip's power-up shape.
        An engine without table interpolation (`config.SHAPE_ENGINES`) refuses a table.
        """

    @abstractmethod
    def read_step_shape(self) -> StepShape:
        """The chip's step-shape tables."""

    @abstractmethod
    def forward(self, tile: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ADC codes (B, n_out) and saturated-output counts (B,) for DAC codes x (B, n_in)."""

    @abstractmethod
    def backward(self, tile: int, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transposed read: ADC codes (B, n_in) and saturation counts for d (B, n_out)."""

    @abstractmethod
    def update(self, tile: int, x: np.ndarray, d: np.ndarray) -> None:
        """Stochastic pulse update from signed probability codes x (B, n_in), d (B, n_out)."""

    @abstractmethod
    def pulse(self, tile: int, axis: str, index: int, counts: np.ndarray) -> None:
        """Deterministic signed pulse counts on one row (axis "row") or column ("col")."""

    def pulse_lines(self, axis: str, tiles, indices, counts) -> None:
        """`pulse` for each (tile, index, counts) in turn, all along ``axis``: the op order (and
        so each op's nonce) is the list's."""
        for tile, index, c in zip(tiles, indices, counts, strict=True):
            self.pulse(tile, axis, index, c)

    @abstractmethod
    def counters(self) -> list[dict[str, int]]:
        """Per-tile counters (names in `ohmflow.emulator.config.COUNTERS`; RTL adds ``cycles``)."""

    def tile_counters(self, tile: int) -> dict[str, int]:
        """The counters of one tile (a link device reads just that tile: one round trip)."""
        return self.counters()[self._check_tile(tile)]

    def _check_tile(self, tile) -> int:
        """``tile`` as an index of this device's tiles, or a ValueError saying what would do."""
        if isinstance(tile, bool) or not isinstance(tile, int | np.integer) or not (
            0 <= tile < self.config.tiles
        ):
            raise ValueError(f"tile must be an integer in [0, {self.config.tiles - 1}], "
                             f"got {tile!r}")
        return int(tile)

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for in-process devices
        """Release the link or process behind the device."""

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, seconds: float) -> float:
        """Let ``seconds`` of simulated time pass: every device drifts and decays
        (docs/numerics.md §11). Returns the chip time in seconds. Time counts whole ms; a step
        longer than one ADVANCE (2**32 - 1 ms, 49.7 days) is sent as several, which compose."""
        last = None
        for ms in advance_steps(seconds):
            last = self._advance_ms(ms)
        return (self.chip_time_ms() if last is None else last) * TIME_UNIT_MS / 1000

    def _advance_ms(self, ms: int) -> int:
        """One ADVANCE of ``ms`` milliseconds; returns the new chip time in ms."""
        raise DeviceError(time_refusal(self.config))

    def chip_time_ms(self) -> int:
        """The chip time in ms."""
        raise DeviceError(time_refusal(self.config))

    def load_device_key(self, key: int) -> None:
        """Set the chip's device key (its per-device drift and decay, §11.2; RESET keeps it)."""
        raise DeviceError(time_refusal(self.config))

    def check_config(self, expected: ChipConfig) -> DeviceInfo:
        """Refuse a device whose synthesized config differs from ``expected``."""
        info = self.info()
        if info.version != CONTRACT_VERSION:
            raise ConfigMismatch(
                f"device speaks contract version {info.version}, this host speaks "
                f"{CONTRACT_VERSION}; rebuild the gateware or update ohmflow"
            )
        if info.fingerprint != expected.fingerprint():
            diff = {k: (v, expected.to_dict()[k]) for k, v in info.config.to_dict().items()
                    if k not in ("name", "clock_hz") and expected.to_dict()[k] != v}
            raise ConfigMismatch(f"device config differs from the expected one "
                                 f"(device, expected): {diff}")
        return info


class TwinDevice(Device):
    """The bit-exact twin, in process: the fastest backend and the reference for the others."""

    concurrent = False  # computes in the caller's thread holding the GIL
    #: `AnalogTile` may read and update through `managed_read` and `managed_update` (one
    #: compiled call each) instead of `forward` / `backward` / `update` (the same device ops);
    #: a subclass that changes what those do sets it False
    fused = True

    def __init__(self, config: ChipConfig | str = "default", device_map: DeviceMap | None = None):
        self.config = get_config(config)
        self.twin = Twin(self.config, device_map=device_map)

    def info(self) -> DeviceInfo:
        return DeviceInfo(self.config, CONTRACT_VERSION, self.config.fingerprint(), "twin")

    def reset(self) -> None:
        self.twin.reset()

    def settings(self) -> Settings:
        return self.twin.settings

    def configure(self, **changes) -> Settings:
        return self.twin.set(**changes)

    def program(self, tile, weights) -> None:
        self.twin.program(tile, weights)

    def read(self, tile) -> np.ndarray:
        return self.twin.read(tile)

    def load_device_map(self, dmap, tile=None) -> None:
        self.twin.load_device_map(dmap, tile)

    def read_device_map(self, tile=None) -> DeviceMap:
        return self.twin.read_device_map(tile)

    def load_step_shape(self, shape: StepShape) -> None:
        self.twin.load_step_shape(shape)

    def read_step_shape(self) -> StepShape:
        return self.twin.read_step_shape()

    def forward(self, tile, x):
        return self.twin.forward(tile, x)

    def _advance_ms(self, ms: int) -> int:
        return self.twin.advance(ms)

    def chip_time_ms(self) -> int:
        return self.twin.time

    def load_device_key(self, key: int) -> None:
        self.twin.load_device_key(key)

    def backward(self, tile, d):
        return self.twin.backward(tile, d)

    def update(self, tile, x, d) -> None:
        self.twin.update(tile, x, d, counts=False)

    def managed_read(self, tile: int, x: np.ndarray, transpose: bool, noise_management: bool,
                     dac_max: int, lsb: float):
        """`forward` (``transpose`` False) or `backward` of the float vectors x (B, n) in one
        compiled call with the host's noise management (`periphery.managed_dac_codes` to
        ±``dac_max``) and output scaling (``lsb``): returns (out, sat, saturations, scale, inv)
        as `periphery.managed_read`; the device op, its nonces and counters are `forward`'s."""
        twin = self.twin
        n_in, n_out = twin._tile(tile)
        n = n_out if transpose else n_in
        if x.ndim != 2 or x.shape[1] != n or not len(x):
            raise ValueError(f"{'backward' if transpose else 'forward'} input must have shape "
                             f"(batch >= 1, {n}), got {x.shape}")
        out, sat, total, scale, inv = periphery.managed_read(
            x, noise_management, dac_max, lsb, *twin.read_args(tile, transpose))
        if total == -2:
            raise ValueError(f"{'backward' if transpose else 'forward'} input contains NaN or "
                             "inf; expected finite floats")
        if total < 0:
            raise ValueError(f"DAC codes must lie within +-{self.config.in_max}, the managed "
                             f"read made codes up to +-{dac_max}")
        twin.count_read(tile, transpose, len(x), total)
        return out, sat, total, scale, inv

    def managed_update(self, tile: int, xc: np.ndarray, dc: np.ndarray, live: np.ndarray,
                       n_live: int) -> None:
        """`update` of the samples ``live`` marks (``n_live`` of them, `periphery.live_samples`)
        of the int64 codes xc (B, n_in), dc (B, n_out), in one compiled call: the same device
        op, nonces and counters as ``update(tile, xc[live], dc[live])``."""
        twin = self.twin
        n_in, n_out = twin._tile(tile)
        if (xc.dtype != np.int64 or dc.dtype != np.int64 or xc.ndim != 2 or dc.ndim != 2
                or xc.shape[1] != n_in or dc.shape[1] != n_out or len(xc) != len(dc)
                or live.shape != (len(xc),) or not 1 <= n_live <= len(xc)):
            raise ValueError(f"update codes must be int64 of shapes (B, {n_in}) and (B, {n_out}) "
                             f"with at least one live sample, got {xc.dtype} {xc.shape}, "
                             f"{dc.dtype} {dc.shape} and {n_live} live")
        pulses = periphery.live_update(xc, dc, live, n_live, *twin.update_args(tile))
        if pulses < 0:
            pm = self.config.p_max
            raise ValueError(f"update codes must lie in [{-pm}, {pm}]")
        twin.count_update(tile, n_live, pulses)

    def coded_update(self, tile: int, x: np.ndarray, d: np.ndarray, lr: float, dw_min: float,
                     bl_max: int, bl_management: bool, update_management: bool,
                     u: np.ndarray) -> tuple[int, int]:
        """The host's update management of the float x (B, n_in), d (B, n_out) with the uniform
        draws ``u`` (`periphery.coded_update`) and `managed_update` of its codes, in one
        compiled call; BL is then set to the chosen one when a sample was live (the pulses ran
        at it). Returns (BL, live samples); the device op, nonces and counters are those of
        ``configure(bl=BL)`` then ``update(tile, xc[live], dc[live])``."""
        twin = self.twin
        n_in, n_out = twin._tile(tile)
        if (x.ndim != 2 or d.ndim != 2 or x.shape[1] != n_in or d.shape[1] != n_out
                or len(x) != len(d) or not len(x) or u.shape != (len(x) * (n_in + n_out),)):
            raise ValueError(f"an update needs x (B >= 1, {n_in}), d (B, {n_out}) and B * "
                             f"{n_in + n_out} uniforms, got {x.shape}, {d.shape}, {u.shape}")
        w, p_max, _, *args = twin.update_args(tile)
        pulses, n_live, bl = periphery.coded_update(
            x, d, lr, dw_min, bl_max, bl_management, update_management, u, w, p_max, *args)
        if pulses < -1:
            raise ValueError(f"update {'x' if pulses == -2 else 'd'} contains NaN or inf; "
                             "expected finite floats")
        if pulses < 0:
            raise ValueError(f"update codes must lie in [{-p_max}, {p_max}]")
        if n_live:
            if twin.settings.bl != bl:
                twin.set(bl=int(bl))
            twin.count_update(tile, n_live, pulses)
        return int(bl), n_live

    def pulse(self, tile, axis, index, counts) -> None:
        self.twin.pulse(tile, axis, index, counts)

    def pulse_lines(self, axis, tiles, indices, counts) -> None:
        self.twin.pulse_lines(axis, tiles, indices, counts)

    def counters(self) -> list[dict[str, int]]:
        return [self.tile_counters(t) for t in range(self.config.tiles)]

    def tile_counters(self, tile: int) -> dict[str, int]:
        counters = self.twin.counters
        if type(tile) is not int or not 0 <= tile < len(counters):  # the usual case: checked
            tile = self._check_tile(tile)
        return dict(counters[tile])  # the twin's counters are exactly COUNTERS, in order


def time_refusal(cfg: ChipConfig) -> str:
    """Why a device of ``cfg`` refuses time and temperature (config.has_time)."""
    unfit = f", except {', '.join(C.TIME_UNFIT)}" if C.TIME_UNFIT else ""
    return (f"the {cfg.engine} engine (config {cfg.name!r}) has no chip time, drift, decay or "
            f"temperature (config.TIME_ENGINES: {', '.join(C.TIME_ENGINES) or 'none'}{unfit}); "
            f"the twin backend has them (docs/numerics.md §11)")


def has_time(cfg: ChipConfig) -> bool:
    """True if a chip of ``cfg`` executes time and temperature (config.has_time)."""
    return C.has_time(cfg)


def check_physics(cfg: ChipConfig, settings: Settings) -> None:
    """Refuse time and temperature settings other than the defaults on an engine without
    them (DeviceError naming the settings)."""
    if has_time(cfg):
        return
    default = Settings.default(cfg)
    changed = [n for n in PHYSICS_NAMES if getattr(settings, n) != getattr(default, n)]
    if changed:
        raise DeviceError(f"{', '.join(changed)}: {time_refusal(cfg)}")


def advance_steps(seconds: float) -> list[int]:
    """``seconds`` as whole milliseconds, in ADVANCE steps of at most 2**32 - 1 ms."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"advance takes a number of seconds >= 0, got {seconds!r}") from None
    if isinstance(seconds, bool) or not np.isfinite(s) or s < 0:
        raise ValueError(f"advance takes a finite number of seconds >= 0, got {seconds!r}")
    ms = round(s * 1000 / TIME_UNIT_MS)
    if ms >= 2**64:
        raise ValueError(f"advance of {seconds!r} s exceeds the chip's 64-bit time in ms")
    top = 2**DT_BITS - 1
    return [top] * (ms // top) + ([ms % top] if ms % top or ms == 0 else [])


def open_device(spec: str, config: ChipConfig | str = "default", **kw) -> Device:
    """A device from one string: ``twin``, ``verilator``, or a serial port / pyserial URL.

    The device's reported config is checked against ``config``; a mismatch raises
    `ConfigMismatch`.
    """
    cfg = get_config(config)
    if spec == "twin":
        return TwinDevice(cfg, **kw)
    # the link backends need pyserial and the emulator build
    from ohmflow.host import link
    from ohmflow.host.emulator_device import EmulatorDevice

    if spec == "verilator":
        dev = EmulatorDevice(cfg, **kw)
    else:
        dev = link.LinkDevice.open(spec, cfg, **kw)
    try:
        dev.check_config(cfg)
    except Exception:
        dev.close()
        raise
    return dev
