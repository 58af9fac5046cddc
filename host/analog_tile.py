"""`AnalogTile`: one block of a layer's weights on one tile of a `Device`, with its periphery.

The host does aihwkit's floating-point periphery around the integer device (docs/numerics.md §10),
per tile, as aihwkit does per tile of a mapped layer:

- noise management (abs-max): each input vector is divided by its max |x| so that it spans the
  DAC's full range, and the output is multiplied back;
- bound management (iterative): a vector whose output the device reports saturated is read again
  with its input halved, up to ``max_bm_rounds`` times (aihwkit's ``max_bm_res`` 0.25 with a 7-bit
  DAC allows 4);
- update management: x, d and the learning rate become per-row and per-column probability codes
  with E[dW] = -lr d x^T (aihwkit's ``update_management`` + ``update_bl_management``).

The digital bias and the sums over a layer's blocks belong to `ohmflow.host.layers.AnalogLinear`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ohmflow.host import periphery
from ohmflow.host.device import Device, TwinDevice


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


def stochastic_round(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers with E[result] = v: floor(v + u), u ~ U[0, 1)."""
    return np.floor(v + rng.random(v.shape)).astype(np.int64)


class AnalogTile:
    """The states of inputs x outputs ``n_in`` x ``n_out`` on ``tile`` of ``device``.

    Weights are device states with 1.0 = 2**w_frac. The tile's active window must already be
    (n_in, n_out) (`ohmflow.host.layers` sets every chip's windows from its `NetworkMap`). Tiles on
    one device share ``link_state`` (the BL last written, so an update sends SET only when BL
    changes); `refresh` re-reads the settings and the device map the scales depend on.
    """

    def __init__(self, device: Device, tile: int, n_in: int, n_out: int,
                 io: IOParams | None = None, update: UpdateParams | None = None,
                 link_state: dict | None = None):
        cfg = device.config
        if not 0 <= tile < cfg.tiles:
            raise ValueError(f"tile {tile} does not exist: config {cfg.name!r} has tiles "
                             f"0..{cfg.tiles - 1}")
        if not (1 <= n_in <= cfg.rows and 1 <= n_out <= cfg.cols):
            raise ValueError(f"a {n_in} -> {n_out} block does not fit config {cfg.name!r}: a "
                             f"tile holds at most {cfg.rows} inputs and {cfg.cols} outputs")
        self.device, self.tile, self.n_in, self.n_out = device, tile, n_in, n_out
        self.io = io or IOParams()
        self.up = update or UpdateParams()
        self.unit = 2.0**cfg.w_frac
        self.link_state = {} if link_state is None else link_state
        #: a factor on forward outputs: global drift compensation's (`ohmflow.host.drift`)
        self.out_scale = 1.0
        #: a twin that reads and updates in one compiled call with the periphery
        #: (`TwinDevice.managed_read`, `TwinDevice.managed_update`)
        self._fused = isinstance(device, TwinDevice) and device.fused
        self.refresh()

    def refresh(self) -> None:
        """Re-read the settings and device map the scales depend on (after changing either)."""
        s = self.device.settings()
        if s.shapes[self.tile] != (self.n_in, self.n_out):
            raise ValueError(f"tile {self.tile} is configured as {s.shapes[self.tile]}, the block "
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
    def codes_of(self, w: np.ndarray) -> np.ndarray:
        """Float weights (n_out, n_in) as the nearest state codes within the state format."""
        cfg = self.device.config
        return np.clip(np.rint(w * self.unit), cfg.w_min_code, cfg.w_max_code).astype(np.int64)

    def program(self, states: np.ndarray) -> None:
        """Write device states (n_out, n_in) (each clipped to its device's bounds)."""
        self.device.program(self.tile, states)

    def states(self) -> np.ndarray:
        """The device states (n_out, n_in), integers."""
        return self.device.read(self.tile)

    # ----- reads -----
    def _read(self, x: np.ndarray, transpose: bool, lsb: float) -> np.ndarray:
        """One managed read: NM scaling, DAC codes, device op, BM re-reads, output scaling."""
        x = np.asarray(x, dtype=np.float64)
        op = self.device.backward if transpose else self.device.forward
        if self._fused:  # the first pass in one compiled call (the same device op)
            out, sat, total, scale, inv = self.device.managed_read(
                self.tile, x, transpose, self.io.noise_management, self.in_max, lsb)
            if not total:
                return out
        else:
            codes, scale, inv = periphery.managed_dac_codes(x, self.io.noise_management,
                                                            self.in_max)
            # every vector at its scale (the BM factor of round 0 is 1: x * (inv / 1) is x * inv)
            y, sat = op(self.tile, codes)
            out = periphery.scale_rows(y, lsb, scale)
        rounds = self.io.max_bm_rounds if self.io.bound_management else 0
        redo = np.asarray(sat) > 0
        if rounds == 0 or not redo.any():
            return out
        todo = np.flatnonzero(redo)
        factor = np.ones(len(x))
        for r in range(1, rounds + 1):  # saturated vectors again with their input halved
            factor[todo] *= 2.0
            y, sat = op(self.tile, periphery.dac_codes(x[todo], inv[todo] / factor[todo],
                                                       self.in_max))
            out[todo] = y * (lsb * scale[todo] * factor[todo])[:, None]
            redo = np.asarray(sat) > 0
            if r == rounds or not redo.any():
                break
            todo = todo[redo]
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = W x for a batch x (B, n_in): one device forward call (more if BM re-reads)."""
        return self._read(x, False, self.fwd_lsb * self.out_scale)

    def backward(self, d: np.ndarray) -> np.ndarray:
        """dx = W^T d for a batch d (B, n_out), read through the transposed array."""
        return self._read(d, True, self.bwd_lsb)

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
        if not len(x):
            raise ValueError("an update needs at least one sample, got an empty batch")
        # codes sign(v) floor(min(c |v|, 1) p_max + u): x's uniforms drawn first, then d's
        ux = rng.random(x.shape)
        xc, dc, bl = periphery.update_codes(
            x, d, lr, self.dw_min, self.bl_max, self.up.update_bl_management,
            self.up.update_management, self.device.config.p_max, ux, rng.random(d.shape))
        return xc, dc, int(bl)

    def coded_update(self, x: np.ndarray, d: np.ndarray, lr: float,
                     rng: np.random.Generator) -> None:
        """`update_codes` then `apply_update` in one compiled call (a twin whose reads and updates
        are fused, `TwinDevice.coded_update`): the same uniform draws, device op, nonces and
        counters."""
        if not len(x):
            raise ValueError("an update needs at least one sample, got an empty batch")
        # x's uniforms then d's: one draw of both is the same stream as two
        u = rng.random(len(x) * (self.n_in + self.n_out))
        bl, n_live = self.device.coded_update(
            self.tile, x, d, lr, self.dw_min, self.bl_max, self.up.update_bl_management,
            self.up.update_management, u)
        if n_live:
            self.link_state["bl"] = bl

    def apply_update(self, xc: np.ndarray, dc: np.ndarray, bl: int) -> None:
        """Send the codes of `update_codes` (samples with no pulse on one side are skipped)."""
        live, n_live = periphery.live_samples(xc, dc)
        if not n_live:
            return
        if self.link_state.get("bl") != bl:  # BL is one setting for all tiles of a chip
            self.link_state["bl"] = self.device.configure(bl=bl).bl
        if self._fused:  # the live samples and the pulse update in one compiled call
            self.device.managed_update(self.tile, xc, dc, live, n_live)
        elif n_live == len(live):
            self.device.update(self.tile, xc, dc)
        else:
            self.device.update(self.tile, xc[live], dc[live])
