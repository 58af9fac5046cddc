"""Time and temperature of the chip (docs/numerics.md §11): fixed-point log2 and exp2, the
per-device drift exponents and decay rates from the hash, ADVANCE's arithmetic, and the tables of
the temperature factors built from their float formulas (the one place they are built).

Everything here is integer arithmetic the twin shares with the gateware and the firmware; the
float formulas appear only where the tables are generated (`temperature_factors`) and where
the host's values become setting codes (`drift_nu_code`, `dtod_code`, `decay_rate_code`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from ohmflow.emulator import prng
from ohmflow.emulator.config import (
    ACCEL_FRAC,
    ALPHA_G,
    ALPHA_S,
    DRIFT_ACTIVATION_EV,
    DRIFT_T0_MS,
    FACTOR_FRAC,
    GAUSS_STD,
    K_BOLTZMANN_EV,
    LOG_FRAC,
    LOG_SEG_BITS,
    NU_BITS,
    NU_FRAC,
    RATE_BITS,
    RATE_FRAC,
    SEED_BITS,
    T_MAX,
    T_MIN,
    T_REF,
    TEMP_FRAC,
    TIME_BITS,
    TIME_UNIT_MS,
    ChipConfig,
    Settings,
)
from ohmflow.emulator.config import _check_float as check_float

DOMAIN_DRIFT = 6  #: per-device drift exponent, key(device key, 6, tile), index j * rows + i
DOMAIN_DECAY = 7  #: per-device decay rate, likewise
#: the interpolation weight's bits: LOG_FRAC bits of position, LOG_SEG_BITS of them the segment
POS_BITS = LOG_FRAC - LOG_SEG_BITS
SEGS = 2**LOG_SEG_BITS
#: round(log2(e) * 2**LOG_FRAC): ADVANCE's dt in log2 units of the decay's exponent
LOG2E = round(math.log2(math.e) * 2**LOG_FRAC)
#: LOG2T[k] = round(log2(1 + k / 64) * 2**16), k = 0 .. 64
LOG2T = tuple(round(math.log2(1 + k / SEGS) * 2**LOG_FRAC) for k in range(SEGS + 1))
#: EXP2T[k] = round(2**(-k / 64) * 2**16), k = 0 .. 64
EXP2T = tuple(round(2 ** (-k / SEGS) * 2**FACTOR_FRAC) for k in range(SEGS + 1))
_EXP2T = np.array(EXP2T, dtype=np.int64)
#: a factor's exponent at or beyond this gives f = 0 (a unit may saturate X here)
X_ZERO = (FACTOR_FRAC + 2) << LOG_FRAC


def rnd(x, s: int):
    """Round half up, then shift right by s (identity for s = 0)."""
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def log2_fixed(a: int) -> int:
    """LOG2(a) for an integer a >= 1: log2(a) with LOG_FRAC fractional bits (§11.3)."""
    if isinstance(a, bool) or not isinstance(a, int) or a < 1:
        raise ValueError(f"log2_fixed takes an integer >= 1, got {a!r}")
    e = a.bit_length() - 1
    z = ((a >> (e - LOG_FRAC)) if e >= LOG_FRAC else (a << (LOG_FRAC - e))) & (2**LOG_FRAC - 1)
    idx, fr = z >> POS_BITS, z & (2**POS_BITS - 1)
    return (e << LOG_FRAC) + rnd(LOG2T[idx] * (2**POS_BITS - fr) + LOG2T[idx + 1] * fr, POS_BITS)


def exp2n(x: np.ndarray) -> np.ndarray:
    """EXP2N(X) = 2**(-X / 2**16) * 2**16 for int64 exponents X >= 0 (§11.3)."""
    x = np.minimum(np.asarray(x, dtype=np.int64), X_ZERO)
    n = x >> LOG_FRAC
    r = x & (2**LOG_FRAC - 1)
    idx, fr = r >> POS_BITS, r & (2**POS_BITS - 1)
    m = rnd(_EXP2T[idx] * (2**POS_BITS - fr) + _EXP2T[idx + 1] * fr, POS_BITS)
    half = np.where(n > 0, np.int64(1) << np.maximum(n - 1, 0), 0)
    return (m + half) >> n


def device_draws(cfg: ChipConfig, key: int, domain: int, tile: int) -> np.ndarray:
    """gauss(draw(key(device key, domain, tile), j * rows + i)) for the tile, shape (cols, rows)."""
    k = prng.op_key(key, domain, tile)
    idx = np.arange(cfg.cols * cfg.rows, dtype=np.int64)
    return prng.gauss(prng.draw(k, idx)).astype(np.int64).reshape(cfg.cols, cfg.rows)


def device_nu(cfg: ChipConfig, key: int, tile: int, s: Settings) -> np.ndarray:
    """nu_d = max(0, drift_nu + rnd(g * drift_nu_dtod, 8)) per device of a tile (§11.2)."""
    g = device_draws(cfg, key, DOMAIN_DRIFT, tile)
    return np.maximum(0, s.drift_nu + rnd(g * s.drift_nu_dtod, 8))


def device_rate(cfg: ChipConfig, key: int, tile: int, s: Settings) -> np.ndarray:
    """rt_d = max(0, rate + ((rate * rnd(g * decay_dtod, 8)) >> 16)) per device (§11.2), as an
    object array of Python ints (the product is wider than 64 bits)."""
    g = device_draws(cfg, key, DOMAIN_DECAY, tile)
    e = rnd(g * s.decay_dtod, 8).astype(object)
    rate = s.decay_rate
    return np.maximum(0, rate + ((rate * e) >> 16))


def age_step(dt: int, temperature: int) -> int:
    """How much an ADVANCE of dt ms at T ages a tile: rnd(dt * ACCEL[T], 16) ms at T0."""
    return rnd(dt * accel_code(temperature), ACCEL_FRAC)


def drift_log(age: int, new_age: int) -> int:
    """dL = LOG2(max(t0, a')) - LOG2(max(t0, a)): the tile's log2 age ratio (§11.3)."""
    return log2_fixed(max(DRIFT_T0_MS, new_age)) - log2_fixed(max(DRIFT_T0_MS, age))


def advance_tile(w: np.ndarray, nu: np.ndarray, rate: np.ndarray | None, dl: int,
                 dt: int) -> np.ndarray:
    """The states of one tile after an ADVANCE: w' = rnd(w * EXP2N(X), 16) (§11.3).

    ``nu``: nu_d per device; ``rate``: rt_d per device (None: no decay); ``dl``: the tile's dL.
    """
    x = rnd(nu.astype(np.int64) * dl, NU_FRAC)  # in LOG_FRAC units
    if rate is not None:
        xl = rnd(rate * (dt * LOG2E), RATE_FRAC)  # Python ints: saturate before int64
        x = x + np.minimum(xl, X_ZERO).astype(np.int64)
    f = exp2n(x)
    return rnd(np.asarray(w, dtype=np.int64) * f, FACTOR_FRAC)


def check_time(value: int, name: str) -> int:
    if value >= 2**TIME_BITS:
        raise ValueError(f"{name} would reach {value} ms, beyond the chip's {TIME_BITS}-bit time "
                         f"(2**{TIME_BITS} - 1 ms)")
    return value


def check_device_key(key: object) -> int:
    """The device key as an int, or a ValueError naming its range (§11.1)."""
    if isinstance(key, bool) or not isinstance(key, int | np.integer) or not (
            0 <= key < 2**SEED_BITS):
        raise ValueError(f"device key must be an integer in [0, 2**{SEED_BITS} - 1], "
                         f"got {key!r}")
    return int(key)


# ----- host values to setting codes -----
def drift_nu_code(nu: float) -> int:
    """The ``drift_nu`` code of a mean drift exponent nu (aihwkit's PCM: 0.05 ... 0.1)."""
    top = (2**NU_BITS - 1) / 2**NU_FRAC
    return round(check_float("drift_nu_mean", nu, 0.0, top) * 2**NU_FRAC)


def dtod_code(name: str, sigma: float) -> int:
    """The code of a device-to-device spread: sigma = code * GAUSS_STD / 2**24 (§11.1)."""
    scale = 2**24 / GAUSS_STD
    return round(check_float(name, sigma, 0.0, (2**NU_BITS - 1) / scale) * scale)


def decay_rate_code(lifetime_s: float) -> int:
    """The ``decay_rate`` code of a lifetime in seconds (0: no decay)."""
    try:
        v = float(lifetime_s)
    except (TypeError, ValueError):
        raise ValueError(f"lifetime must be a number of seconds >= 0, got {lifetime_s!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"lifetime must be a finite number of seconds >= 0 (0 = no decay), "
                         f"got {lifetime_s!r}")
    if v == 0:
        return 0
    code = round(2**RATE_FRAC / (v * 1000 / TIME_UNIT_MS))
    if not 1 <= code < 2**RATE_BITS:
        lo, hi = 2 * TIME_UNIT_MS / 1000, 2**RATE_FRAC * TIME_UNIT_MS / 1000
        raise ValueError(f"lifetime must be 0 (no decay) or between {lo:g} s and {hi:.4g} s, "
                         f"got {lifetime_s!r}")
    return code


# ----- temperature -----
def temperature_factors(t: float) -> dict[str, float]:
    """The float model of §11.4 at t kelvin: drift acceleration, conductance, step and read
    noise factors, each 1.0 at T_REF."""
    accel = math.exp(DRIFT_ACTIVATION_EV / K_BOLTZMANN_EV * (1 / T_REF - 1 / t))
    cg = 1 + ALPHA_G * (t - T_REF)
    return {"accel": accel, "conductance": cg, "step": 1 + ALPHA_S * (t - T_REF),
            "noise": math.sqrt(t / T_REF * cg)}


@functools.cache
def temperature_tables() -> dict[str, np.ndarray]:
    """ACCEL, CG, CS and CN indexed by T - T_MIN (§11.4), int64 arrays of T_MAX - T_MIN + 1."""
    rows = [temperature_factors(t) for t in range(T_MIN, T_MAX + 1)]
    tables = {"ACCEL": [round(r["accel"] * 2**ACCEL_FRAC) for r in rows]}
    for name, key in (("CG", "conductance"), ("CS", "step"), ("CN", "noise")):
        tables[name] = [round(r[key] * 2**TEMP_FRAC) for r in rows]
    out = {k: np.array(v, dtype=np.int64) for k, v in tables.items()}
    for v in out.values():
        v.flags.writeable = False
    return out


def _entry(name: str, temperature: int) -> int:
    return int(temperature_tables()[name][temperature - T_MIN])


def accel_code(temperature: int) -> int:
    """ACCEL[T]: the drift acceleration, ACCEL_FRAC fractional bits."""
    return _entry("ACCEL", temperature)


def scaled_gain(gain: int, temperature: int) -> int:
    """gain_T = rnd(gain * CG[T], 12): the ADC gain with the conductance factor (§11.4)."""
    return gain if temperature == T_REF else rnd(gain * _entry("CG", temperature), TEMP_FRAC)


def scaled_sigma(sigma: int, temperature: int) -> int:
    """sigma_T = rnd(sigma * CN[T], 12): the read noise with its factor of T (§11.4)."""
    return sigma if temperature == T_REF else rnd(sigma * _entry("CN", temperature), TEMP_FRAC)


def scaled_nodes(nodes: np.ndarray, temperature: int) -> np.ndarray:
    """T'[k] = rnd(T[k] * CS[T], 12): step-shape nodes with the step factor (§11.4)."""
    return rnd(np.asarray(nodes, dtype=np.int64) * _entry("CS", temperature), TEMP_FRAC)
