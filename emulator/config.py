"""The chip's configuration: the single source of truth for sizes, bit widths and defaults.

`ChipConfig` is what is synthesized (geometry, lanes, maximum bit widths). `Settings` is what the
host may change at run time within those maxima. `DeviceModel` holds the analog device's
parameters under aihwkit's names; the fabrication sampler turns it into a per-device map.

Every other part of ohmflow (the twin, the gateware, the protocol, the host) takes its numbers from
here; see ``docs/numerics.md`` for what each field means in the arithmetic.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# Fixed formats of the contract (docs/numerics.md §2). They are not configurable because the
# hardware's datapath widths follow from them; changing one is a change of the contract.
NOISE_FRAC = 16  #: fractional bits of the pre-ADC value, in ADC LSBs
SLOPE_FRAC = 20  #: fractional bits of the per-device slope codes ku, kd
C2C_FRAC = 12  #: fractional bits of the relative cycle-to-cycle perturbation e
C2C_SHIFT = 8  #: e = rnd(g * dw_std, C2C_SHIFT)
SQRT_FRAC = 8  #: fractional bits of the sqrt(n) table
GAIN_BITS = 16  #: unsigned ADC gain code
SHIFT_BITS = 6  #: unsigned ADC shift (NOISE_FRAC .. 2**SHIFT_BITS - 1)
SIGMA_BITS = 16  #: unsigned read-noise sigma code
DW_STD_BITS = 16  #: unsigned cycle-to-cycle sigma code
SEED_BITS = 32
# Step-shape tables (docs/numerics.md §5.4): the step of a pulse is s * G(x), G one table of
# SHAPE_NODES fixed-point nodes per direction, x the device's normalized position in its range.
SHAPE_SEG_BITS = 7  #: 2**SHAPE_SEG_BITS segments between the nodes of a step-shape table
SHAPE_SEGS = 2**SHAPE_SEG_BITS
SHAPE_NODES = SHAPE_SEGS + 1
SHAPE_POS_FRAC = 6  #: fractional bits of the position within a segment (interpolation weight)
SHAPE_FRAC = 12  #: fractional bits of a node value G (1.0 = 4096)
SHAPE_BITS = 20  #: unsigned width of a node value: G < 256
#: the reciprocal of a device's range: rinv = floor(2**(w_bits + RINV_EXTRA) / (wmax - wmin))
RINV_EXTRA = SHAPE_SEG_BITS + SHAPE_POS_FRAC
#: how a table is indexed (the index is the mode's code in the kernels).
#: "linear": no table (G = 1, the step of §5.4 with its slopes); "bottom": x = (w - wmin) / range
#: (PowStep, PiecewiseStep); "centered": x = (w + range) / (2 range) (ExpStep's z = 2a w/range + b)
SHAPE_MODES = ("linear", "bottom", "centered")
# Time and temperature (docs/numerics.md §11)
TIME_UNIT_MS = 1  #: the chip time and ADVANCE's step count milliseconds
TIME_BITS = 64  #: unsigned chip time and per-tile drift ages
DT_BITS = 32  #: unsigned ADVANCE step: at most 2**32 - 1 ms (49.7 days)
DRIFT_T0_MS = 20_000  #: aihwkit's t0 = 20 s: no drift before it, the power law after
LOG_FRAC = 16  #: fractional bits of the fixed-point log2 and of a factor's exponent
LOG_SEG_BITS = 6  #: 2**LOG_SEG_BITS segments of the log2 and exp2 tables
FACTOR_FRAC = 16  #: fractional bits of a drift/decay factor (1.0 = 2**16)
NU_FRAC = 16  #: fractional bits of the drift exponent codes (nu = code / 2**16)
NU_BITS = 16  #: unsigned drift_nu and the dtod codes
RATE_FRAC = 48  #: decay rate code = (1 / lifetime in ms) * 2**RATE_FRAC
RATE_BITS = 48  #: unsigned decay rate code
T_MIN, T_MAX = 200, 450  #: the chip temperature's range in kelvin (integers)
T_REF = 300  #: the reference temperature T0: every factor of T is exactly 1.0 here
TEMP_FRAC = 12  #: fractional bits of the conductance, step and read-noise factors of T
ACCEL_FRAC = 16  #: fractional bits of the drift acceleration A(T)
# The float model of temperature (docs/numerics.md §11.4; the tables come from these, in
# emulator/physics.py). E_D, ALPHA_G and ALPHA_S are assumptions, stated as such in the docs.
K_BOLTZMANN_EV = 8.617333262e-5  #: eV / K
DRIFT_ACTIVATION_EV = 1.0  #: E_d of the drift's time-temperature superposition
ALPHA_G = 0.002  #: conductance temperature coefficient, 1 / K
ALPHA_S = 0.001  #: step-size temperature coefficient, 1 / K
#: the engines that implement §11 (ADVANCE, time and temperature settings); the others refuse
#: them (the twin implements them for every config): `has_time` says which configs run them
TIME_ENGINES: tuple[str, ...] = ("rv32", "tile")
#: configs of a time engine whose board cannot hold §11: the iCEBreaker's rv32 image with the
#: time code and the temperature tables would pass its block RAM (docs/rv32.md)
TIME_UNFIT: tuple[str, ...] = ("icebreaker",)
#: standard deviation of the Irwin-Hall variate g = sum of 4 bytes - 510: sqrt(4 * (256**2-1) / 12)
GAUSS_STD = math.sqrt(4 * (256**2 - 1) / 12)

DEVICE_MODELS = ("ConstantStep", "LinearStep", "SoftBounds", "ExpStep", "PowStep",
                 "PiecewiseStep")
#: the models whose step is s + k w (slopes, no table); ``fit-device`` fits these
SLOPE_MODELS = ("ConstantStep", "LinearStep", "SoftBounds")
#: the models whose step is a shape table (emulator/step_shape.py) rather than slopes
TABLE_MODELS = ("ExpStep", "PowStep", "PiecewiseStep")
#: aihwkit's defaults of the parameters a model names differently or adds (configs/devices.py);
#: ``gamma_up``/``gamma_down`` are LinearStep's slopes and ExpStep's exponents
MODEL_DEFAULTS = {
    "ExpStep": {"gamma_up": 12.44625, "gamma_down": 12.78785},
}
#: how the chip computes: "tile", the lane-parallel gateware datapath (hdl/soc.py); "rv32", the
#: same contract as firmware on a small RV32 core (hdl/rv32/core_soc.py), for FPGAs too small
#: for the tile. The index is the engine's code on the wire (INFO).
ENGINES = ("tile", "rv32")
#: the engines whose update interpolates step-shape tables (§5.4.1); an engine not named holds the
#: linear shape only and refuses a table (LOAD_SHAPE answers BAD_ARGUMENT; docs/boards.md)
SHAPE_ENGINES = ("rv32", "tile")
#: the per-tile operation counters of the contract (docs/numerics.md), in the order the twin keeps
#: them and the COUNTERS command returns them; the gateware adds ``cycles`` (protocol.TABLE)
COUNTERS = (
    "fwd_vectors", "bwd_vectors", "update_samples", "pulse_ops",
    "macs", "dac_conversions", "adc_conversions", "adc_saturations", "pulses",
)


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _check_float(name: str, value: object, lo: float, hi: float) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {value!r}")
    return v


@dataclass(frozen=True)
class ChipConfig:
    """What is synthesized: geometry, parallelism and the maximum bit widths.

    Parameters
    ----------
    tiles:
        Logical tiles (weight banks) sharing one datapath.
    rows:
        Inputs per tile (word lines, driven by the DACs; index ``i``).
    cols:
        Outputs per tile (bit lines, read by the ADCs; index ``j``).
    lanes:
        MAC lanes / devices processed per clock in the gateware.
    in_bits, out_bits:
        Maximum DAC and ADC resolution (signed, symmetric codes).
    w_bits, w_frac:
        Device state: signed ``w_bits`` integer, ``w_frac`` fractional bits (1.0 = 2**w_frac).
    step_bits, slope_bits:
        Per-device step codes (unsigned) and slope codes (signed, SLOPE_FRAC fractional bits).
    p_bits:
        Pulse-probability resolution: a code c in [0, 2**p_bits] fires with probability
        c/2**p_bits. Each slot compares one random byte, so p_bits is 8 (the contract's format).
    bl_max:
        Maximum pulse-train length (BL) and maximum |count| of a deterministic pulse.
    clock_hz:
        The gateware's clock, used to turn cycle counts into time.
    engine:
        One of `ENGINES`: the tile datapath with ``lanes`` MAC lanes, or ``rv32`` firmware
        (one device at a time, ``lanes`` = 1). Results are the same; cycle counts differ.
    """

    tiles: int = 4
    rows: int = 64
    cols: int = 64
    lanes: int = 16
    in_bits: int = 7
    out_bits: int = 9
    w_bits: int = 16
    w_frac: int = 14
    step_bits: int = 12
    slope_bits: int = 18
    p_bits: int = 8
    bl_max: int = 63
    clock_hz: int = 50_000_000
    engine: str = "tile"
    name: str = "default"

    def __post_init__(self) -> None:
        _check_int("tiles", self.tiles, 1, 256)
        _check_int("rows", self.rows, 1, 4096)
        _check_int("cols", self.cols, 1, 4096)
        _check_int("lanes", self.lanes, 1, 256)
        _check_int("in_bits", self.in_bits, 2, 12)
        _check_int("out_bits", self.out_bits, 2, 16)
        _check_int("w_bits", self.w_bits, 4, 24)
        _check_int("w_frac", self.w_frac, 1, self.w_bits - 1)
        _check_int("step_bits", self.step_bits, 2, self.w_bits - 1)
        _check_int("slope_bits", self.slope_bits, 2, 24)
        _check_int("p_bits", self.p_bits, 8, 8)  # one random byte per slot (numerics §5.2)
        _check_int("bl_max", self.bl_max, 1, 64)
        _check_int("clock_hz", self.clock_hz, 1, 10**10)
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}: expected one of "
                             f"{', '.join(ENGINES)}")
        if self.engine == "rv32" and self.lanes != 1:
            raise ValueError(f"the rv32 engine computes one device at a time: lanes must be 1, "
                             f"got {self.lanes}")
        if self.rows * self.cols > 2**24:
            raise ValueError(
                f"rows*cols must be at most 2**24 (PRNG index space), got {self.rows * self.cols}"
            )

    # Derived widths (docs/numerics.md §2)
    @property
    def w_max_code(self) -> int:
        """Largest device state, 2**(w_bits-1) - 1."""
        return 2 ** (self.w_bits - 1) - 1

    @property
    def w_min_code(self) -> int:
        return -(2 ** (self.w_bits - 1) - 1)

    @property
    def in_max(self) -> int:
        """Largest DAC code magnitude at full resolution."""
        return 2 ** (self.in_bits - 1) - 1

    @property
    def out_max(self) -> int:
        return 2 ** (self.out_bits - 1) - 1

    @property
    def p_max(self) -> int:
        """Largest probability code (probability 1)."""
        return 2**self.p_bits

    @property
    def step_max(self) -> int:
        return 2**self.step_bits - 1

    @property
    def slope_max(self) -> int:
        return 2 ** (self.slope_bits - 1) - 1

    @property
    def node_max(self) -> int:
        """Largest step-shape table node, 2**SHAPE_BITS - 1 (§5.4.1)."""
        return 2**SHAPE_BITS - 1

    @property
    def acc_bits(self) -> int:
        """Signed width of an exact MVM accumulator over max(rows, cols) products."""
        n = max(self.rows, self.cols)
        return self.w_bits + self.in_bits + max(1, math.ceil(math.log2(n)))

    @property
    def devices(self) -> int:
        return self.rows * self.cols

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ChipConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown chip config field(s) {sorted(unknown)}; known: {sorted(names)}"
            )
        return cls(**d)

    @classmethod
    def from_toml(cls, path: str | Path) -> ChipConfig:
        """Load a config from a TOML file: a ``[chip]`` table, or top-level keys."""
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"chip config {path} is not valid TOML: {e}") from None
        data = data.get("chip", data)
        if not isinstance(data, dict):
            raise ValueError(f"chip config {path}: [chip] must be a table")
        data.setdefault("name", Path(path).stem)
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"chip config {path}: {e}") from None

    def fingerprint(self) -> int:
        """A 32-bit digest of the config, reported by INFO so a host can refuse a mismatch."""
        from ohmflow.emulator.prng import lowbias32

        h = 0x6F686D66  # "ohmf"
        for f in dataclasses.fields(self):
            if f.name in ("name", "clock_hz"):
                continue
            v = getattr(self, f.name)
            v = ENGINES.index(v) if f.name == "engine" else int(v)
            h = lowbias32(h ^ (v & 0xFFFFFFFF))
        return h


#: Named configurations. The same name selects the twin, the emulator build and the board build.
PRESETS: dict[str, ChipConfig] = {
    # The reference chip: four 64x64 tiles, 16 lanes (the emulator's; with the step-shape tables
    # it needs more multipliers than the ULX3S has, docs/boards.md).
    "default": ChipConfig(),
    # The ULX3S ECP5-85F: four 64x64 tiles, 2 lanes. At 3 Mbaud the link, not the lanes, sets
    # the board's speed (a 64x64 forward vector computes in 2,048 cycles, 41 us, and takes
    # 640 us on the wire), and fewer lanes build sooner with more timing margin (docs/boards.md).
    "ulx3s": ChipConfig(tiles=4, rows=64, cols=64, lanes=2, name="ulx3s"),
    # The iCEBreaker iCE40UP5K: two 64x32 tiles as firmware on an RV32 core, devices in SPRAM
    # (the tile datapath needs about 3.4 times its logic cells); the 64-32-10 MLP fits.
    "icebreaker": ChipConfig(
        tiles=2, rows=64, cols=32, lanes=1, clock_hz=24_000_000, engine="rv32",
        name="icebreaker"
    ),
    # Bigger chips for bigger networks, in emulation only: no board here holds them (the ULX3S's
    # 208 block RAMs hold the 4 tiles of default/ulx3s; 16 tiles need about 4 times as many).
    # 16 tiles hold the 64-256-128-10 MLP (14 tiles of 64x64) on one chip.
    "tiles16": ChipConfig(tiles=16, rows=64, cols=64, lanes=16, name="tiles16"),
    # 64 tiles hold a 500-256-10 MLP (36 tiles) or a 784-256-128-10 MLP (39 tiles).
    "tiles64": ChipConfig(tiles=64, rows=64, cols=64, lanes=16, name="tiles64"),
    # Small and odd-sized, for fast simulation tests.
    "tiny": ChipConfig(tiles=2, rows=5, cols=7, lanes=3, name="tiny"),
}


def get_config(name_or_path: str | ChipConfig) -> ChipConfig:
    """A preset by name, or a TOML file by path."""
    if isinstance(name_or_path, ChipConfig):
        return name_or_path
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return ChipConfig.from_toml(p)
    raise ValueError(
        f"unknown chip config {name_or_path!r}: expected a preset ({', '.join(PRESETS)}) "
        "or the path of a .toml file"
    )


@dataclass(frozen=True)
class DeviceModel:
    """Analog device parameters, named and defaulted as aihwkit's ``ConstantStepDevice``.

    ``model`` selects the response: ``ConstantStep`` (gamma 0), ``LinearStep`` (slopes gamma_up,
    gamma_down relative to the mean bounds), ``SoftBounds`` (step falls to zero at each device's
    own bound), or one of aihwkit's ``ExpStep`` (``A_up``, ``A_down``, ``gamma_up``,
    ``gamma_down``, ``a``, ``b``), ``PowStep`` (``pow_gamma``, ``pow_up_down``) and
    ``PiecewiseStep`` (``piecewise_up``, ``piecewise_down``), whose step shape is a table
    (docs/numerics.md §5.4). ``gamma_up``/``gamma_down`` default to the model's aihwkit value.
    ``dw_min_std`` is cycle-to-cycle and becomes the run-time setting ``dw_std``.
    """

    model: str = "ConstantStep"
    dw_min: float = 0.001
    dw_min_dtod: float = 0.3
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 0.6
    w_min: float = -0.6
    w_max_dtod: float = 0.3
    w_min_dtod: float = 0.3
    gamma_up: float | None = None
    gamma_down: float | None = None
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    # ExpStep (aihwkit ExpStepDevice)
    A_up: float = 0.00081
    A_down: float = 0.36833
    a: float = 0.244
    b: float = 0.2425
    # PowStep (aihwkit PowStepDevice). aihwkit's pow_gamma_dtod default is 0.1; the chip holds one
    # exponent per direction for the whole chip, so it is 0 here and nonzero values are refused
    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.0
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0
    # PiecewiseStep (aihwkit PiecewiseStepDevice): node values over [w_min, w_max]
    piecewise_up: tuple[float, ...] = (1.0,)
    piecewise_down: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.model not in DEVICE_MODELS:
            raise ValueError(
                f"unknown device model {self.model!r}: expected one of {', '.join(DEVICE_MODELS)}"
            )
        for name in ("gamma_up", "gamma_down"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, MODEL_DEFAULTS.get(self.model, {}).get(name, 0.0))
        for name in ("piecewise_up", "piecewise_down"):
            v = getattr(self, name)
            if isinstance(v, str) or not hasattr(v, "__len__"):
                raise ValueError(f"{name} must be a list of numbers, got {v!r}")
            object.__setattr__(self, name, tuple(
                _check_float(f"{name}[{k}]", x, 0.0, 255.0) for k, x in enumerate(v)))
        if not 1 <= len(self.piecewise_up) <= SHAPE_NODES:
            raise ValueError(f"piecewise_up must have 1 to {SHAPE_NODES} nodes, got "
                             f"{len(self.piecewise_up)}")
        if len(self.piecewise_down) != len(self.piecewise_up):
            raise ValueError(f"piecewise_up and piecewise_down must have the same number of "
                             f"nodes, got {len(self.piecewise_up)} and "
                             f"{len(self.piecewise_down)}")
        for name in ("A_up", "A_down", "a", "b"):
            _check_float(name, getattr(self, name), -1e3, 1e3)
        _check_float("pow_gamma", self.pow_gamma, 0.0, 100.0)
        _check_float("pow_up_down", self.pow_up_down, -1.0, 1.0)
        for name in ("pow_gamma_dtod", "pow_up_down_dtod"):
            if _check_float(name, getattr(self, name), 0.0, 10.0) != 0.0:
                raise ValueError(
                    f"{name} must be 0: the chip holds one PowStep exponent per direction for the "
                    f"whole chip (a step-shape table, docs/numerics.md §5.4), so it has no "
                    f"device-to-device variation of the exponent; got {getattr(self, name)}")
        _check_float("dw_min", self.dw_min, 1e-9, 1.0)
        for name in ("dw_min_dtod", "up_down_dtod", "w_max_dtod", "w_min_dtod",
                     "gamma_up_dtod", "gamma_down_dtod"):
            _check_float(name, getattr(self, name), 0.0, 10.0)
        _check_float("dw_min_std", self.dw_min_std, 0.0, 9.0)
        _check_float("up_down", self.up_down, -0.99, 0.99)
        _check_float("w_max", self.w_max, 1e-6, 1e6)
        _check_float("w_min", self.w_min, -1e6, -1e-6)
        _check_float("gamma_up", self.gamma_up, -100.0, 100.0)
        _check_float("gamma_down", self.gamma_down, -100.0, 100.0)

    @property
    def is_table(self) -> bool:
        """True if the step shape is a table (ExpStep, PowStep, PiecewiseStep)."""
        return self.model in TABLE_MODELS

    @classmethod
    def soft_bounds(cls, **kw) -> DeviceModel:
        """aihwkit's ``SoftBoundsDevice`` defaults."""
        return cls(model="SoftBounds", **kw)

    def replace(self, **kw) -> DeviceModel:
        return dataclasses.replace(self, **kw)


def adc_gain_shift(
    cfg: ChipConfig, out_bound: float, out_bits: int, in_bits: int
) -> tuple[int, int]:
    """ADC gain code and shift for a full scale of ``out_bound`` (aihwkit's ``out_bound``).

    The host maps |x| <= 1 to DAC codes of magnitude 2**(in_bits-1)-1 and weights to states with
    w_frac fractional bits, so one unit of y is ``(2**(in_bits-1)-1) * 2**w_frac`` accumulator LSBs;
    the ADC must map ``out_bound`` to ``2**(out_bits-1)-1`` codes. Returns ``(gain, shift)`` with
    ``gain < 2**GAIN_BITS`` as large as possible, so the ratio is as exact as 16 bits allow.
    """
    _check_float("out_bound", out_bound, 1e-6, 1e6)
    per_unit = (2 ** (in_bits - 1) - 1) * 2**cfg.w_frac
    ratio = (2 ** (out_bits - 1) - 1) / (out_bound * per_unit)
    shift = NOISE_FRAC
    while ratio * 2**shift < 2 ** (GAIN_BITS - 1) and shift < 2**SHIFT_BITS - 2:
        shift += 1
    gain = round(ratio * 2**shift)
    while gain >= 2**GAIN_BITS:
        shift -= 1
        gain = round(ratio * 2**shift)
    if gain < 1 or shift < NOISE_FRAC:
        raise ValueError(f"out_bound {out_bound} is outside what the ADC gain can express")
    return gain, shift


def sigma_code(noise_lsb: float) -> int:
    """Read-noise code for a standard deviation of ``noise_lsb`` ADC LSBs."""
    top = (2**SIGMA_BITS - 1) * GAUSS_STD / 2**NOISE_FRAC
    _check_float("read noise (ADC LSBs)", noise_lsb, 0.0, top)
    return round(noise_lsb * 2**NOISE_FRAC / GAUSS_STD)


def dw_std_code(dw_min_std: float) -> int:
    """Cycle-to-cycle code for a relative step deviation ``dw_min_std``."""
    scale = 2 ** (C2C_SHIFT + C2C_FRAC) / GAUSS_STD
    _check_float("dw_min_std", dw_min_std, 0.0, (2**DW_STD_BITS - 1) / scale)
    return round(dw_min_std * scale)


@dataclass(frozen=True)
class Settings:
    """Run-time settings, validated against a `ChipConfig` (docs/numerics.md §3).

    Defaults follow aihwkit's IO defaults: 7-bit DAC, 9-bit ADC, out_bound 12, out_noise 0.06,
    desired_bl 31, dw_min_std 0.3. Use `Settings.default(cfg)` to get them for a config.
    """

    in_bits: int
    out_bits: int
    fwd_gain: int
    fwd_shift: int
    bwd_gain: int
    bwd_shift: int
    fwd_sigma: int
    bwd_sigma: int
    bl: int
    dw_std: int
    seed: int = 0
    #: active (n_in, n_out) per tile; operations use only this top-left window of the tile
    shapes: tuple[tuple[int, int], ...] = field(default=())
    #: time and temperature (docs/numerics.md §11): drift exponent and its spread (NU_FRAC
    #: codes), decay rate (1 / lifetime, RATE_FRAC) and its relative spread, kelvin
    drift_nu: int = 0
    drift_nu_dtod: int = 0
    decay_rate: int = 0
    decay_dtod: int = 0
    temperature: int = T_REF

    @classmethod
    def default(cls, cfg: ChipConfig, out_bound: float = 12.0, out_noise: float = 0.06,
                bl: int = 31, dw_min_std: float = 0.3, seed: int = 0) -> Settings:
        in_bits = min(7, cfg.in_bits)
        out_bits = min(9, cfg.out_bits)
        gain, shift = adc_gain_shift(cfg, out_bound, out_bits, in_bits)
        lsb = 2 * out_bound / (2**out_bits - 2)  # aihwkit: out_res = 1/(2**bits - 2) of the range
        sig = sigma_code(out_noise / lsb)
        return cls(
            in_bits=in_bits, out_bits=out_bits, fwd_gain=gain, fwd_shift=shift,
            bwd_gain=gain, bwd_shift=shift, fwd_sigma=sig, bwd_sigma=sig,
            bl=min(bl, cfg.bl_max), dw_std=dw_std_code(dw_min_std), seed=seed,
            shapes=tuple((cfg.rows, cfg.cols) for _ in range(cfg.tiles)),
        ).validated(cfg)

    @staticmethod
    def _range(cfg: ChipConfig, name: str) -> tuple[int, int]:
        """The valid range of the integer setting ``name`` on ``cfg``."""
        if name == "bl":
            return 1, cfg.bl_max
        if name in ("in_bits", "out_bits"):
            return 2, getattr(cfg, name)
        if name in ("fwd_gain", "bwd_gain"):
            return 0, 2**GAIN_BITS - 1
        if name in ("fwd_shift", "bwd_shift"):
            return NOISE_FRAC, 2**SHIFT_BITS - 1
        if name in ("fwd_sigma", "bwd_sigma"):
            return 0, 2**SIGMA_BITS - 1
        if name == "dw_std":
            return 0, 2**DW_STD_BITS - 1
        if name in ("drift_nu", "drift_nu_dtod", "decay_dtod"):
            return 0, 2**NU_BITS - 1
        if name == "decay_rate":
            return 0, 2**RATE_BITS - 1
        if name == "temperature":
            return T_MIN, T_MAX
        if name == "seed":
            return 0, 2**SEED_BITS - 1
        raise ValueError(f"{name!r} is not an integer setting; those are {list(_SCALARS)}")

    def validated(self, cfg: ChipConfig) -> Settings:
        """Return self after checking every field against ``cfg``; raises ValueError."""
        check_temperature(self.temperature)
        for name in _SCALARS:
            _check_int(name, getattr(self, name), *self._range(cfg, name))
        if len(self.shapes) != cfg.tiles:
            raise ValueError(f"shapes must have one (n_in, n_out) per tile ({cfg.tiles}), "
                             f"got {len(self.shapes)}")
        for t, shp in enumerate(self.shapes):
            if len(shp) != 2:
                raise ValueError(f"shapes[{t}] must be (n_in, n_out), got {shp!r}")
            _check_int(f"shapes[{t}] n_in", shp[0], 1, cfg.rows)
            _check_int(f"shapes[{t}] n_out", shp[1], 1, cfg.cols)
        return self

    def replace(self, cfg: ChipConfig, **kw) -> Settings:
        """A copy with fields changed, validated against ``cfg``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(kw) - names
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(names)}")
        if "shapes" in kw:
            try:
                kw["shapes"] = tuple(tuple(s) for s in kw["shapes"])
            except TypeError:
                raise ValueError(f"shapes must be one (n_in, n_out) pair per tile, got "
                                 f"{kw['shapes']!r}") from None
        return dataclasses.replace(self, **kw).validated(cfg)

    def changed(self, cfg: ChipConfig, name: str, value) -> Settings:
        """``replace(cfg, name=value)`` for settings already valid on ``cfg`` (a twin's current
        settings): an integer setting is checked alone, anything else as `replace` does."""
        if name not in _SCALARS or name == "temperature":
            return self.replace(cfg, **{name: value})
        _check_int(name, value, *self._range(cfg, name))
        new = copy.copy(self)
        object.__setattr__(new, name, value)
        return new


#: the integer settings, in `Settings`' order (all but ``shapes``)
_SCALARS = tuple(f.name for f in dataclasses.fields(Settings) if f.name != "shapes")

#: the time and temperature settings (§11), apart from SET/GET's
PHYSICS_NAMES = ("drift_nu", "drift_nu_dtod", "decay_rate", "decay_dtod", "temperature")
#: the scalar run-time settings, in `Settings`' order (SET/GET carry them, then the seed and the
#: shapes; the gateware holds them in one register each)
SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings)
                      if f.name not in ("seed", "shapes", *PHYSICS_NAMES))


def has_time(cfg: ChipConfig) -> bool:
    """True if a chip of ``cfg`` executes time and temperature (§11): its engine is one of
    `TIME_ENGINES` and its config not one of `TIME_UNFIT`."""
    return cfg.engine in TIME_ENGINES and cfg.name not in TIME_UNFIT


def check_temperature(t: object) -> int:
    """The chip temperature in kelvin, or a ValueError naming the range (§11.1)."""
    if isinstance(t, bool) or not isinstance(t, int) or not T_MIN <= t <= T_MAX:
        raise ValueError(f"temperature must be an integer number of kelvin in [{T_MIN}, "
                         f"{T_MAX}], got {t!r}")
    return t

