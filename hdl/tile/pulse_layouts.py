"""Modes and payload layouts shared by the pulse engine's parts (`PulseEngine`, `TrainBuilder`,
`CoincidenceScan`, `DrawShaper`), derived from `ChipConfig`."""

from __future__ import annotations

from amaranth.lib import data, enum
from ohmflow.emulator.config import ChipConfig
from ohmflow.hdl.tile.layouts import Geometry

__all__ = ["PulseLayouts", "PulseMode"]


class PulseMode(enum.Enum, shape=2):
    RANDOM = 0  #: stochastic update sample
    ROW = 1  #: deterministic counts on devices (j, index), one count per column j
    COL = 2  #: deterministic counts on devices (index, i), one count per row i


class PulseLayouts:
    """Widths and layouts of one config's pulse engine.

    Attributes
    ----------
    start: one sample's parameters (mode, tile, active shape, addressed line, the three keys).
    train: one line's stored train (``bl_max`` slots) and its sign.
    row_word, col_word: a word of the row-train memory (L trains, lane l = row kL+l) and of the
        column-train memory (one train, column ``{jq, jr}``).
    train_tag: what travels with a train-group hash through `Lowbias32`.
    draw_tag: what travels with a scan beat's L device draws through `Lowbias32`.
    hash_tag: the hash's tag, either of the two (``draw`` tells which).
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.geom = g = Geometry(cfg)
        L, B = cfg.lanes, cfg.bl_max
        nmax = max(cfg.rows, cfg.cols)
        #: hash groups of four slots in a train, and hash rounds of L groups per line
        self.groups_max = -(-B // 4)
        self.rounds_max = -(-self.groups_max // L)
        self.start = data.StructLayout({
            "mode": PulseMode, "tile": g.index_shape(g.tile_bits),
            "n_in": range(cfg.rows + 1), "n_out": range(cfg.cols + 1), "index": range(max(2, nmax)),
            "key_row": 32, "key_col": 32, "key_c2c": 32,
        })
        self.train = data.StructLayout({"slots": B, "neg": 1})
        self.row_word = data.ArrayLayout(self.train, L)
        self.col_word = self.train
        self.row_depth = max(2, g.iq)
        self.col_depth = max(2, g.jq << g.r_bits)
        self.train_tag = data.StructLayout({
            "axis": 1, "q": g.index_shape(g.q_bits), "r": g.index_shape(g.r_bits),
            "round": range(max(2, self.rounds_max)), "last": 1, "absc": 9, "neg": 1})
        self.draw_tag = data.StructLayout({
            "jq": g.index_shape(g.jq_bits), "jr": g.index_shape(g.r_bits),
            "chunk": g.index_shape(g.iq_bits), "n": data.ArrayLayout(g.n_shape, L), "up": L})
        self.hash_tag = data.StructLayout({"draw": 1, "train": self.train_tag,
                                           "dev": self.draw_tag})
        self.words = data.ArrayLayout(32, L)
        #: a hash request or result of either kind
        self.train_hash = data.StructLayout({"word": self.words, "tag": self.train_tag})
        self.draw_hash = data.StructLayout({"word": self.words, "tag": self.draw_tag})

    def row_write(self) -> data.StructLayout:
        """A write of the row-train memory: address, word, per-lane enables."""
        return data.StructLayout({"addr": range(self.row_depth), "data": self.row_word,
                                  "en": self.cfg.lanes})

    def col_write(self) -> data.StructLayout:
        """A write of the column-train memory."""
        return data.StructLayout({"addr": range(self.col_depth), "data": self.col_word, "en": 1})
