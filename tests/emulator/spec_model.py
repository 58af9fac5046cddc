"""An independent scalar model of docs/numerics.md, written from the document with Python ints.

It shares no code with the twin (only the config dataclasses for sizes), loops over every device
and slot, and is the second implementation the twin is checked against.
"""

from __future__ import annotations

import math

MASK = 0xFFFFFFFF
FWD, BWD, ROW, COL, C2C = 1, 2, 3, 4, 5


def lowbias32(x):
    x &= MASK
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK
    x ^= x >> 16
    return x


def key(seed, domain, nonce):
    return lowbias32(lowbias32(lowbias32(seed) ^ domain) ^ (nonce & MASK))


def draw(k, index):
    return lowbias32(k ^ index)


def gauss(r):
    return sum((r >> (8 * b)) & 255 for b in range(4)) - 510


def rnd(x, s):
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def clip(x, lo, hi):
    return min(max(x, lo), hi)


class SpecChip:
    """State and operations of one chip, per the document, one device at a time."""

    def __init__(self, cfg, settings, dmap, shape=None):
        self.cfg, self.s = cfg, settings
        # step-shape tables (§5.4): mode and node lists; "linear" means G = 1 (no table)
        self.shape = ("linear", None, None) if shape is None else (
            shape.mode, [int(v) for v in shape.up], [int(v) for v in shape.down])
        self.map = {f: getattr(dmap, f).tolist() for f in ("su", "sd", "ku", "kd", "wmax", "wmin")}
        self.w = [[[0] * cfg.rows for _ in range(cfg.cols)] for _ in range(cfg.tiles)]
        self.nonce = 0

    def program(self, t, w):
        for j, row in enumerate(w):
            for i, v in enumerate(row):
                self.w[t][j][i] = clip(int(v), self.map["wmin"][t][j][i], self.map["wmax"][t][j][i])

    def _adc(self, acc, gain, shift, sigma, domain):
        k = key(self.s.seed, domain, self.nonce)
        self.nonce = (self.nonce + 1) & MASK
        m = 2 ** (self.s.out_bits - 1) - 1
        out, sat = [], 0
        for idx, a in enumerate(acc):
            v = ((a * gain) >> (shift - 16)) + gauss(draw(k, idx)) * sigma + 2**15
            q = v >> 16
            y = clip(q, -m, m)
            sat += q != y
            out.append(y)
        return out, sat

    def forward(self, t, x):
        n_in, n_out = self.s.shapes[t]
        m = 2 ** (self.s.in_bits - 1) - 1
        xd = [clip(int(v), -m, m) for v in x]
        acc = [sum(self.w[t][j][i] * xd[i] for i in range(n_in)) for j in range(n_out)]
        return self._adc(acc, self.s.fwd_gain, self.s.fwd_shift, self.s.fwd_sigma, FWD)

    def backward(self, t, d):
        n_in, n_out = self.s.shapes[t]
        m = 2 ** (self.s.in_bits - 1) - 1
        dd = [clip(int(v), -m, m) for v in d]
        acc = [sum(self.w[t][j][i] * dd[j] for j in range(n_out)) for i in range(n_in)]
        return self._adc(acc, self.s.bwd_gain, self.s.bwd_shift, self.s.bwd_sigma, BWD)

    def _train(self, code, domain, line, nonce):
        k = key(self.s.seed, domain, nonce)
        bits = 0
        for slot in range(self.s.bl):
            word = draw(k, (line << 4) | (slot >> 2))
            if ((word >> (8 * (slot & 3))) & 255) < abs(code):
                bits |= 1 << slot
        return bits

    def _respond(self, t, j, i, n, up, nonce):
        mp = self.map
        w = self.w[t][j][i]
        s, k = (mp["su"][t][j][i], mp["ku"][t][j][i]) if up else (mp["sd"][t][j][i],
                                                                   mp["kd"][t][j][i])
        mode, t_up, t_down = self.shape
        if mode != "linear":
            lo, hi = mp["wmin"][t][j][i], mp["wmax"][t][j][i]
            wb = self.cfg.w_bits
            rinv = (1 << (wb + 13)) // (hi - lo)
            if mode == "bottom":
                pos = ((w - lo) * rinv) >> wb
            else:
                pos = ((w + (hi - lo)) * rinv) >> (wb + 1)
            idx = min(pos >> 6, 127)
            f = pos - 64 * idx
            tab = t_up if up else t_down
            g = rnd(tab[idx] * (64 - f) + tab[idx + 1] * f, 6)
            s = rnd(s * g, 12)
        step = max(0, s + rnd(k * w, 20))
        r = draw(key(self.s.seed, C2C, nonce), j * self.cfg.rows + i)
        e = rnd(gauss(r) * self.s.dw_std, 8)
        tt = rnd(e * math.isqrt(n << 16), 8)
        total = n * step + rnd(step * tt, 12)
        w = w + total if up else w - total
        self.w[t][j][i] = clip(w, mp["wmin"][t][j][i], mp["wmax"][t][j][i])

    def update(self, t, x, d):
        n_in, n_out = self.s.shapes[t]
        nonce = self.nonce
        self.nonce = (self.nonce + 1) & MASK
        rows = [self._train(x[i], ROW, i, nonce) for i in range(n_in)]
        cols = [self._train(d[j], COL, j, nonce) for j in range(n_out)]
        counts = [[0] * n_in for _ in range(n_out)]
        for j in range(n_out):
            for i in range(n_in):
                n = bin(rows[i] & cols[j]).count("1")
                counts[j][i] = n
                if n:
                    self._respond(t, j, i, n, (x[i] < 0) != (d[j] < 0), nonce)
        return counts

    def pulse(self, t, axis, index, counts):
        n_in, n_out = self.s.shapes[t]
        nonce = self.nonce
        self.nonce = (self.nonce + 1) & MASK
        for m, c in enumerate(counts):
            j, i = (m, index) if axis == "row" else (index, m)
            if c:
                self._respond(t, j, i, abs(int(c)), c > 0, nonce)
