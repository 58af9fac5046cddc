"""Tile mapping: the one place that knows where a layer lives.

A layer of ``n_in`` inputs and ``n_out`` outputs is split into a grid of blocks of at most
``max_input_size`` x ``max_output_size`` (aihwkit's `MappingParameter` names; default: the chip's
tile, ``rows`` x ``cols``). The splits are balanced as in aihwkit's mapped layers: ``n`` inputs
need ``ceil(n / max)`` blocks whose sizes differ by at most one. Block ``(r, c)`` holds the weights
of inputs ``i0:i1`` and outputs ``j0:j1``.

Blocks are placed on the tiles of one or several chips of one config, round robin: the g-th block
of the network (layers in order, then input block, then output block) goes to chip ``g % chips``,
tile ``g // chips``. So the blocks of a layer spread over all chips and are read at the same time,
and a network on one chip keeps layer k on tile k when every layer is one block.

Layers, trainer, checkpoints and the cost ledger ask a `NetworkMap`; none computes a position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ohmflow.emulator.config import PRESETS, ChipConfig

__all__ = ["Block", "LayerMap", "MappingParameter", "NetworkMap", "block_index", "layer_of",
           "split_sizes"]


@dataclass(frozen=True)
class MappingParameter:
    """Largest block of a layer on one tile, named as aihwkit's ``MappingParameter``.

    0 (the default) means the chip's tile: ``rows`` inputs, ``cols`` outputs.
    """

    max_input_size: int = 0
    max_output_size: int = 0

    def __post_init__(self) -> None:
        for name in ("max_input_size", "max_output_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer (0: the chip's tile), "
                                 f"got {v!r}")

    def limits(self, cfg: ChipConfig) -> tuple[int, int]:
        """(max inputs, max outputs) of a block on ``cfg``; refuses sizes the tile cannot hold."""
        lim = []
        for name, v, tile, what in (("max_input_size", self.max_input_size, cfg.rows, "rows"),
                                    ("max_output_size", self.max_output_size, cfg.cols, "cols")):
            if v > tile:
                raise ValueError(f"{name} {v} exceeds the tile of config {cfg.name!r} "
                                 f"({tile} {what}); use at most {tile} or 0 for the whole tile")
            lim.append(v or tile)
        return lim[0], lim[1]


def split_sizes(size: int, max_size: int) -> tuple[int, ...]:
    """``size`` split into ``ceil(size / max_size)`` parts whose lengths differ by at most one."""
    if size < 1 or max_size < 1:
        raise ValueError(f"cannot split {size} into parts of at most {max_size}")
    n = -(-size // max_size)
    base, extra = divmod(size, n)
    return tuple(base + (1 if k < extra else 0) for k in range(n))


def _bounds(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    out, s = [], 0
    for n in sizes:
        out.append((s, s + n))
        s += n
    return out


@dataclass(frozen=True)
class Block:
    """One tile's part of a layer: inputs ``i0:i1`` and outputs ``j0:j1`` on (chip, tile)."""

    layer: int
    row: int  #: input block index r
    col: int  #: output block index c
    chip: int
    tile: int
    i0: int
    i1: int
    j0: int
    j1: int
    name: str  #: ``layer{k}`` for a one-block layer, ``layer{k}.{r}.{c}`` otherwise

    @property
    def n_in(self) -> int:
        return self.i1 - self.i0

    @property
    def n_out(self) -> int:
        return self.j1 - self.j0

    @property
    def inputs(self) -> slice:
        return slice(self.i0, self.i1)

    @property
    def outputs(self) -> slice:
        return slice(self.j0, self.j1)


@dataclass(frozen=True)
class LayerMap:
    """The block grid of one layer: ``blocks`` in order (input block r, then output block c)."""

    index: int
    n_in: int
    n_out: int
    in_sizes: tuple[int, ...]
    out_sizes: tuple[int, ...]
    blocks: tuple[Block, ...]
    label: str | None = None  #: the array's name (None: ``layer{index}``)

    @property
    def grid(self) -> tuple[int, int]:
        """(input blocks, output blocks)."""
        return len(self.in_sizes), len(self.out_sizes)

    @property
    def name(self) -> str:
        return self.label or f"layer{self.index}"


def layer_of(block_name: str) -> str:
    """The layer a block name belongs to: ``layer1.0.2`` -> ``layer1``."""
    return block_name.split(".", 1)[0]


def block_index(block_name: str) -> tuple[int, int]:
    """(input block r, output block c) of a block named ``layer{k}.{r}.{c}``; (0, 0) otherwise."""
    parts = block_name.split(".")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return 0, 0


class NetworkMap:
    """Layers of the given shapes mapped onto ``chips`` chips of ``config``.

    ``shapes`` is one ``(n_in, n_out)`` per layer. ``chips=None`` takes as few chips as hold the
    network; a number of chips that cannot hold it raises one ValueError naming the tiles needed
    and the ``--chips`` / config that would do. ``names`` (optional, one per array) name the
    arrays in block names and ledger entries (default ``layer{k}``), e.g. ``layer0.A`` for an
    algorithm's extra array.
    """

    def __init__(self, config: ChipConfig, shapes, chips: int | None = 1,
                 mapping: MappingParameter | None = None, names: list[str] | None = None):
        self.config = config
        self.mapping = mapping or MappingParameter()
        max_in, max_out = self.mapping.limits(config)
        shapes = [(int(a), int(b)) for a, b in shapes]
        if not shapes:
            raise ValueError("a network needs at least one layer")
        for k, (a, b) in enumerate(shapes):
            if a < 1 or b < 1:
                raise ValueError(f"layer {k} must have at least one input and output, got "
                                 f"{a} -> {b}")
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != len(shapes) or len(set(names)) != len(names) or not all(names):
                raise ValueError(f"names must be {len(shapes)} distinct non-empty strings, one "
                                 f"per array, got {names!r}")
        self.names = names
        grids = [(split_sizes(a, max_in), split_sizes(b, max_out)) for a, b in shapes]
        need = sum(len(i) * len(o) for i, o in grids)
        self.tiles_needed = need
        if chips is None:
            chips = max(1, -(-need // config.tiles))
        if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
            raise ValueError(f"chips must be a positive integer, got {chips!r}")
        if need > chips * config.tiles:
            raise ValueError(self._too_big(shapes, grids, need, chips))
        self.chips = chips
        layers, g = [], 0
        for k, ((a, b), (ins, outs)) in enumerate(zip(shapes, grids, strict=True)):
            blocks = []
            one = len(ins) * len(outs) == 1
            for r, (i0, i1) in enumerate(_bounds(ins)):
                for c, (j0, j1) in enumerate(_bounds(outs)):
                    base = f"layer{k}" if names is None else names[k]
                    name = base if one else f"{base}.{r}.{c}"
                    blocks.append(Block(k, r, c, g % chips, g // chips, i0, i1, j0, j1, name))
                    g += 1
            layers.append(LayerMap(k, a, b, ins, outs, tuple(blocks),
                                   None if names is None else names[k]))
        self.layers: tuple[LayerMap, ...] = tuple(layers)

    def _too_big(self, shapes, grids, need: int, chips: int) -> str:
        cfg = self.config
        sizes = "-".join(str(s) for s in [shapes[0][0], *(b for _, b in shapes)])
        what = f"the {sizes} network needs"
        per = ", ".join(f"layer {k}: {len(i)}x{len(o)}" for k, (i, o) in enumerate(grids))
        chain = all(b == a for (_, b), (a, _) in zip(shapes, shapes[1:], strict=False))
        if self.names is not None or not chain:  # not a chain of layers: name each array
            names = self.names or [f"layer{k}" for k in range(len(shapes))]
            what = "the network's arrays (" + ", ".join(
                f"{n} {a}x{b}" for n, (a, b) in zip(names, shapes, strict=True)) + ") need"
            per = ", ".join(f"{n}: {len(i)}x{len(o)}" for n, (i, o) in
                            zip(names, grids, strict=True))
        fits = [n for n, p in PRESETS.items() if p.tiles >= self._need_on(p, shapes)]
        alt = f", or a config that holds it on one chip ({', '.join(fits)})" if fits else ""
        return (f"{what} {need} tiles of {cfg.rows}x{cfg.cols} ({per} blocks) "
                f"but {chips} chip(s) of config {cfg.name!r} have {chips * cfg.tiles}: use "
                f"--chips {math.ceil(need / cfg.tiles)} or more{alt}")

    def _need_on(self, cfg: ChipConfig, shapes) -> int:
        """Tiles the same layers need on ``cfg`` with the default mapping (whole tiles)."""
        return sum(len(split_sizes(a, cfg.rows)) * len(split_sizes(b, cfg.cols))
                   for a, b in shapes)

    @property
    def blocks(self) -> tuple[Block, ...]:
        """Every block of the network, in placement order."""
        return tuple(b for lm in self.layers for b in lm.blocks)

    def chip_shapes(self, chip: int) -> tuple[tuple[int, int], ...]:
        """The window ``(n_in, n_out)`` of every tile of ``chip`` (an unused tile: the whole)."""
        cfg = self.config
        shapes = [(cfg.rows, cfg.cols)] * cfg.tiles
        for b in self.blocks:
            if b.chip == chip:
                shapes[b.tile] = (b.n_in, b.n_out)
        return tuple(shapes)

    def utilisation(self) -> float:
        """Share of the used tiles' devices that hold weights."""
        used = sum(b.n_in * b.n_out for b in self.blocks)
        return used / (len(self.blocks) * self.config.rows * self.config.cols)

    def describe(self) -> str:
        """One line: blocks per layer, tiles and chips."""
        per = ", ".join(("" if self.names is None else f"{lm.name} ") + f"{lm.n_in}x{lm.n_out} "
                        f"in {lm.grid[0]}x{lm.grid[1]}" for lm in self.layers)
        return (f"{len(self.blocks)} tile(s) of {self.config.rows}x{self.config.cols} on "
                f"{self.chips} chip(s) ({per} blocks)")

    def to_dict(self) -> dict:
        d = {"chips": self.chips, "max_input_size": self.mapping.max_input_size,
             "max_output_size": self.mapping.max_output_size,
             "shapes": [[lm.n_in, lm.n_out] for lm in self.layers]}
        if self.names is not None:
            d["names"] = list(self.names)
        return d
