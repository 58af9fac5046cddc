"""Global drift compensation on the host, as aihwkit's ``GlobalDriftCompensation`` for inference.

After programming, every tile reads a fixed probe input (all ones, aihwkit's
``get_readout_tensor``) and keeps the abs-sum of its outputs (``readout``, at least 1e-4); after
time has passed, `GlobalDriftCompensation.compensate` reads the probe again and scales the tile's
forward outputs by reference / now. Drift that shrinks every device alike (docs/numerics.md §11
with no device-to-device spread) is then undone up to read noise; the spread of ν is not.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ohmflow.host.analog_tile import AnalogTile

#: aihwkit's lower clamp of a readout, so a tile read as all zeros does not divide by zero
MIN_READOUT = 1e-4


def readout(tile: AnalogTile) -> float:
    """The abs-sum of a tile's forward outputs for the all-ones probe, without compensation."""
    scale, tile.out_scale = tile.out_scale, 1.0
    try:
        y = tile.forward(np.ones((1, tile.n_in)))
    finally:
        tile.out_scale = scale
    return max(float(np.abs(y).sum()), MIN_READOUT)


class GlobalDriftCompensation:
    """One compensation factor per tile, from probe reads before and after drift."""

    def __init__(self, tiles: Iterable[AnalogTile]):
        self.tiles = list(tiles)
        if not self.tiles:
            raise ValueError("drift compensation needs at least one tile")
        self.reference: list[float] | None = None

    @classmethod
    def of_layers(cls, layers) -> GlobalDriftCompensation:
        """For every tile of analog layers (objects with ``tiles``, e.g. ``AnalogMLP.layers``)."""
        return cls(t for layer in layers for t in layer.tiles)

    def calibrate(self) -> list[float]:
        """Read the probe right after programming: the reference; factors back to 1."""
        for t in self.tiles:
            t.out_scale = 1.0
        self.reference = [readout(t) for t in self.tiles]
        return list(self.reference)

    def compensate(self) -> list[float]:
        """Read the probe now and scale each tile's forward outputs by reference / now."""
        if self.reference is None:
            raise ValueError("drift compensation must be calibrated (after programming) before "
                             "it can compensate")
        factors = [ref / readout(t) for ref, t in zip(self.reference, self.tiles, strict=True)]
        for t, f in zip(self.tiles, factors, strict=True):
            t.out_scale = f
        return factors

    def reset(self) -> None:
        """Every tile's outputs unscaled again."""
        for t in self.tiles:
            t.out_scale = 1.0
