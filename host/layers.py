"""`AnalogLinear`: a fully connected layer whose weights live on one tile of a `Device`.

The host does aihwkit's floating-point periphery around the integer device (docs/numerics.md §10):

- noise management (abs-max): each input vector is divided by its max |x| so that it spans the
  DAC's full range, and the output is multiplied back;
- bound management (iterative): a vector whose output the device reports saturated is read again
  with its input halved, up to ``max_bm_rounds`` times (aihwkit's ``max_bm_res`` 0.25 with a 7-bit
  DAC allows 4);
- update management: x, d and the learning rate become per-row and per-column probability codes
  with E[dW] = -lr d x^T (aihwkit's ``update_management`` + ``update_bl_management``);
- a digital bias, kept in float on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ohmflow.host.device import Device


@dataclass(frozen=True)
class IOParams:
    """Host-side read management, named as aihwkit's ``IOParameters``."""

    noise_management: bool = True  #: abs-max scaling of every vector to the DAC range
    bound_management: bool = True  #: iterative halving of saturated vectors
    max_bm_rounds: int = 4  #: at most this many halvings (input scale 1/16)


@dataclass(frozen=True)
class UpdateParams:
    """Pulse update management, named as aihwkit's ``UpdateParameters``."""

    desired_bl: int = 31  #: maximum pulse slots per update
    update_management: bool = True  #: balance row and column probabilities
    update_bl_management: bool = True  #: use as few slots as the largest update needs


def fits(device: Device, sizes: list[int] | tuple[int, ...]) -> None:
    """Refuse a network that does not fit the device: one tile per layer, widths within a tile."""
    cfg = device.config
    layers = len(sizes) - 1
    if layers < 1:
        raise ValueError("a network needs at least an input and an output size")
    if layers > cfg.tiles:
        raise ValueError(f"{layers} layers need {layers} tiles but config {cfg.name!r} has "
                         f"{cfg.tiles}; use at most {cfg.tiles - 1} hidden layer(s)")
    for k in range(layers):
        n_in, n_out = sizes[k], sizes[k + 1]
        if n_in > cfg.rows or n_out > cfg.cols:
            raise ValueError(f"layer {k + 1} ({n_in} -> {n_out}) does not fit config "
                             f"{cfg.name!r}: a tile holds at most {cfg.rows} inputs and "
                             f"{cfg.cols} outputs")


def stochastic_round(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers with E[result] = v: floor(v + u), u ~ U[0, 1)."""
    return np.floor(v + rng.random(v.shape)).astype(np.int64)


class AnalogLinear:
    """y = W x + b with W on ``tile`` of ``device`` (states, 1.0 = 2**w_frac) and b in float.

    Creating the layer sets the tile's active window to (n_in, n_out). Layers on one device
    share ``link_state`` (the BL last written, so an update sends SET only when BL changes);
    `refresh` re-reads it from the device.
    """

    def __init__(self, device: Device, tile: int, n_in: int, n_out: int,
                 io: IOParams | None = None, update: UpdateParams | None = None,
                 link_state: dict | None = None):
        fits(device, [n_in, n_out])
        cfg = device.config
        if not 0 <= tile < cfg.tiles:
            raise ValueError(f"tile {tile} does not exist: config {cfg.name!r} has tiles "
                             f"0..{cfg.tiles - 1}")
        self.device, self.tile, self.n_in, self.n_out = device, tile, n_in, n_out
        self.io = io or IOParams()
        self.up = update or UpdateParams()
        shapes = list(device.settings().shapes)
        shapes[tile] = (n_in, n_out)
        device.configure(shapes=tuple(shapes))
        self.bias = np.zeros(n_out)
        self.unit = 2.0**cfg.w_frac
        self.link_state = {} if link_state is None else link_state
        self.refresh()

    def refresh(self) -> None:
        """Re-read the settings and device map the scales depend on (after changing either)."""
        s = self.device.settings()
        if s.shapes[self.tile] != (self.n_in, self.n_out):
            raise ValueError(f"tile {self.tile} is configured as {s.shapes[self.tile]}, the layer "
                             f"needs {(self.n_in, self.n_out)}")
        self.in_max = 2 ** (s.in_bits - 1) - 1
        per_unit = self.in_max * self.unit
        self.fwd_lsb = 2.0**s.fwd_shift / (s.fwd_gain * per_unit) if s.fwd_gain else math.inf
        self.bwd_lsb = 2.0**s.bwd_shift / (s.bwd_gain * per_unit) if s.bwd_gain else math.inf
        dm = self.device.read_device_map(self.tile)
        win = (0, slice(0, self.n_out), slice(0, self.n_in))
        steps = (dm.su[win].astype(float) + dm.sd[win]) / 2
        #: mean step per pulse (weight units): aihwkit's weight granularity, measured on the map
        self.dw_min = float(steps.mean()) / self.unit
        if self.dw_min <= 0:
            raise ValueError(f"tile {self.tile}: the device map has no nonzero steps")
        self.bl_max = min(self.up.desired_bl, self.device.config.bl_max)
        self.link_state["bl"] = s.bl

    # ----- weights -----
    def set_weights(self, w: np.ndarray, b: np.ndarray | None = None) -> None:
        """Program float weights (n_out, n_in) as device states (each clipped to its bounds)."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.n_out, self.n_in) or not np.isfinite(w).all():
            raise ValueError(f"weights must be finite, shape {(self.n_out, self.n_in)}, got "
                             f"{w.shape}")
        cfg = self.device.config
        codes = np.clip(np.rint(w * self.unit), cfg.w_min_code, cfg.w_max_code).astype(np.int64)
        self.device.program(self.tile, codes)
        if b is not None:
            self.bias = np.array(b, dtype=np.float64).reshape(self.n_out)

    def states(self) -> np.ndarray:
        """The device states (n_out, n_in), integers."""
        return self.device.read(self.tile)

    def weights(self) -> np.ndarray:
        """The weights the device holds, in float units."""
        return self.states() / self.unit

    # ----- reads -----
    def _read(self, op, x: np.ndarray, lsb: float) -> np.ndarray:
        """One managed read: NM scaling, DAC codes, device op, BM re-reads, output scaling."""
        x = np.asarray(x, dtype=np.float64)
        if self.io.noise_management:
            scale = np.abs(x).max(axis=1)
        else:
            scale = np.ones(len(x))
        inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
        out = None
        todo = np.arange(len(x))
        factor = np.ones(len(x))
        rounds = self.io.max_bm_rounds if self.io.bound_management else 0
        for r in range(rounds + 1):
            xs = x[todo] * (inv[todo] / factor[todo])[:, None]
            codes = np.rint(np.clip(xs, -1.0, 1.0) * self.in_max).astype(np.int64)
            y, sat = op(self.tile, codes)
            y = y * (lsb * scale[todo] * factor[todo])[:, None]
            if out is None:
                out = y
            else:
                out[todo] = y
            redo = np.asarray(sat) > 0
            if r == rounds or not redo.any():
                break
            todo = todo[redo]
            factor[todo] *= 2.0
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = W x + b for a batch x (B, n_in): one device forward call (more if BM re-reads)."""
        return self._read(self.device.forward, x, self.fwd_lsb) + self.bias

    def backward(self, d: np.ndarray) -> np.ndarray:
        """dx = W^T d for a batch d (B, n_out), read through the transposed array."""
        return self._read(self.device.backward, d, self.bwd_lsb)

    # ----- update -----
    def update_codes(self, x: np.ndarray, d: np.ndarray, lr: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """Probability codes (B, n_in), (B, n_out) and the pulse-train length BL for the batch.

        Per sample: BL_b = ceil(lr |x|max |d|max / dw_min) (at most ``desired_bl``); the batch
        uses BL = max BL_b, since BL is one device setting. Probabilities are c_x |x| and
        c_d |d| with c_x c_d = lr / (dw_min BL) and c_x |x|max = c_d |d|max, clipped to 1, and
        stochastically rounded to codes, so E[n_ji] = BL p_i q_j and E[dW] = -lr d x^T while no
        probability clips.
        """
        g = self.dw_min
        reg = g * g
        xm = np.maximum(np.abs(x).max(axis=1), reg)
        dm = np.maximum(np.abs(d).max(axis=1), reg)
        if self.up.update_bl_management:
            need = np.ceil(lr * xm * dm / g)
            bl = int(min(max(need.max(), 1.0), self.bl_max))
        else:
            bl = self.bl_max
        a = math.sqrt(lr / (g * bl))
        if self.up.update_management:
            cx, cd = a * np.sqrt(dm / xm), a * np.sqrt(xm / dm)
        else:
            cx = cd = np.full(len(x), a)
        pm = self.device.config.p_max
        px = np.minimum(cx[:, None] * np.abs(x), 1.0) * pm
        pd = np.minimum(cd[:, None] * np.abs(d), 1.0) * pm
        xc = np.sign(x).astype(np.int64) * stochastic_round(px, rng)
        dc = np.sign(d).astype(np.int64) * stochastic_round(pd, rng)
        return xc, dc, bl

    def update(self, x: np.ndarray, d: np.ndarray, lr: float, rng: np.random.Generator) -> None:
        """W += -lr d^T x in expectation (summed over the batch), by stochastic pulses.

        ``rng`` draws the stochastic rounding of the codes; samples whose codes are all zero on
        one side are not sent. The bias is not touched (see `update_bias`).
        """
        x = np.asarray(x, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        if lr <= 0:
            return
        xc, dc, bl = self.update_codes(x, d, lr, rng)
        live = (xc != 0).any(axis=1) & (dc != 0).any(axis=1)
        if not live.any():
            return
        if self.link_state.get("bl") != bl:  # BL is one setting for all tiles
            self.link_state["bl"] = self.device.configure(bl=bl).bl
        self.device.update(self.tile, xc[live], dc[live])

    def update_bias(self, d: np.ndarray, lr: float) -> None:
        """Digital SGD on the bias: b -= lr * sum_b d."""
        self.bias -= lr * np.asarray(d).sum(axis=0)
