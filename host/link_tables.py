"""`LinkTables`: the `LinkDevice` methods of the chip's tables and time (numerics §11): the
device map, the step shape, the device key and the chip's clock of milliseconds.

A mixin of `ohmflow.host.link.LinkDevice`: it calls the link's ``_call``, ``_calls``,
``_per_frame`` and ``_window``.
"""

from __future__ import annotations

import numpy as np
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import SHAPE_ENGINES, SHAPE_MODES, ChipConfig
from ohmflow.emulator.fabrication import FIELDS, DeviceMap
from ohmflow.emulator.physics import check_device_key
from ohmflow.emulator.step_shape import StepShape
from ohmflow.host.device import DeviceError, has_time, time_refusal

__all__ = ["LinkTables"]


class LinkTables:
    """Device map, step shape and time over the framed protocol (a `LinkDevice` mixin)."""

    # ----- time (numerics §11), on an engine of config.TIME_ENGINES -----
    def _advance_ms(self, ms: int) -> int:
        if not has_time(self.config):
            raise DeviceError(time_refusal(self.config))
        return self._call("ADVANCE", dt=ms)["time"]

    def chip_time_ms(self) -> int:
        if not has_time(self.config):
            raise DeviceError(time_refusal(self.config))
        return self._call("GET_PHYSICS")["time"]

    def load_device_key(self, key: int) -> None:
        if not has_time(self.config):
            raise DeviceError(time_refusal(self.config))
        key = check_device_key(key)
        self._call("SET_PHYSICS", **P.physics_fields(self.settings(), key))
        self._device_key = key

    def _tiles(self, tile) -> list[int]:
        if tile is None:
            return list(range(self.config.tiles))
        self._window(tile)
        return [int(tile)]

    def load_device_map(self, dmap: DeviceMap, tile=None) -> None:
        tiles = self._tiles(tile)
        dmap.validate(self.config if tile is None else
                      ChipConfig(**{**self.config.to_dict(), "tiles": 1}))
        total, step = self.config.rows * self.config.cols, self._per_frame("LOAD_MAP", "k")
        for n, t in enumerate(tiles):
            flat = {f: getattr(dmap, f)[n].ravel() for f in FIELDS}
            parts = [{f: a[k0 : k0 + step] for f, a in flat.items()}
                     for k0 in range(0, total, step)]
            self._calls("LOAD_MAP", [dict(tile=t, k0=k0, k=p["su"].size, **p)
                                     for k0, p in zip(range(0, total, step), parts, strict=True)])

    def read_device_map(self, tile=None) -> DeviceMap:
        tiles = self._tiles(tile)
        c = self.config
        total, step = c.rows * c.cols, self._per_frame("READ_MAP", "k")
        out = {f: np.zeros((len(tiles), total), dtype=np.int64) for f in FIELDS}
        for n, t in enumerate(tiles):
            starts = range(0, total, step)
            replies = self._calls("READ_MAP", [dict(tile=t, k0=k0, k=min(step, total - k0))
                                               for k0 in starts])
            for k0, v in zip(starts, replies, strict=True):
                for f in FIELDS:
                    out[f][n, k0 : k0 + v["k"]] = v[f]
        return DeviceMap(**{f: a.reshape(len(tiles), c.cols, c.rows) for f, a in out.items()})

    def load_step_shape(self, shape: StepShape) -> None:
        if not isinstance(shape, StepShape):
            raise ValueError(f"a step shape must be a StepShape, got {type(shape).__name__}")
        shape.validate()
        if shape.mode != "linear" and self.config.engine not in SHAPE_ENGINES:
            raise DeviceError(
                f"this {self.config.engine}-engine chip holds the linear step shape only: "
                f"ExpStep, PowStep and PiecewiseStep devices run on the twin backend and the "
                f"{', '.join(SHAPE_ENGINES)} engine (docs/boards.md)")
        self._call("LOAD_SHAPE", mode=shape.code, up=shape.up, down=shape.down)

    def read_step_shape(self) -> StepShape:
        v = self._call("READ_SHAPE")
        if not 0 <= v["mode"] < len(SHAPE_MODES):
            raise DeviceError(f"{self.url}: READ_SHAPE reported mode {v['mode']}, none of "
                              f"{SHAPE_MODES}")
        return StepShape(SHAPE_MODES[v["mode"]], v["up"], v["down"])
