"""An independent scalar model of docs/numerics.md, written from the document with Python ints.

It shares no code with the twin (only the config dataclasses for sizes), loops over every device
and slot, and is the second implementation the twin is checked against.
"""

from __future__ import annotations

import math

MASK = 0xFFFFFFFF
FWD, BWD, ROW, COL, C2C, DRIFT, DECAY = 1, 2, 3, 4, 5, 6, 7
T0_MS, T_REF, T_MIN = 20000, 300, 200


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


def temperature_codes(temp):
    """§11.4's codes at ``temp`` kelvin, from the document's formulas and numbers."""
    accel = math.exp(1.0 / 8.617333262e-5 * (1 / 300 - 1 / temp))
    cg = 1 + 0.002 * (temp - 300)
    return {"ACCEL": round(accel * 2**16), "CG": round(cg * 4096),
            "CS": round((1 + 0.001 * (temp - 300)) * 4096),
            "CN": round(math.sqrt(temp / 300 * cg) * 4096)}


LOG2T = [round(math.log2(1 + k / 64) * 65536) for k in range(65)]
EXP2T = [round(2 ** (-k / 64) * 65536) for k in range(65)]


def log2_fixed(a):
    """§11.3's LOG2 of an integer a >= 1."""
    e = a.bit_length() - 1
    z = ((a >> (e - 16)) if e >= 16 else (a << (16 - e))) & 0xFFFF
    idx, fr = z >> 10, z & 1023
    return (e << 16) + rnd(LOG2T[idx] * (1024 - fr) + LOG2T[idx + 1] * fr, 10)


def exp2n(x):
    """§11.3's EXP2N of an exponent x >= 0."""
    n, r = x >> 16, x & 0xFFFF
    idx, fr = r >> 10, r & 1023
    return rnd(rnd(EXP2T[idx] * (1024 - fr) + EXP2T[idx + 1] * fr, 10), n)


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
        self.time, self.ages, self.device_key = 0, [0] * cfg.tiles, 0

    def program(self, t, w):
        self.ages[t] = 0
        for j, row in enumerate(w):
            for i, v in enumerate(row):
                self.w[t][j][i] = clip(int(v), self.map["wmin"][t][j][i], self.map["wmax"][t][j][i])

    def _adc(self, acc, gain, shift, sigma, domain):
        k = key(self.s.seed, domain, self.nonce)
        self.nonce = (self.nonce + 1) & MASK
        c = temperature_codes(self.s.temperature)
        gain, sigma = rnd(gain * c["CG"], 12), rnd(sigma * c["CN"], 12)
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
        if self.s.temperature != T_REF:  # §11.4: nodes scaled, the linear mode a constant table
            cs = temperature_codes(self.s.temperature)["CS"]
            if mode == "linear":
                mode, t_up, t_down = "bottom", [4096] * 129, [4096] * 129
            t_up, t_down = [rnd(v * cs, 12) for v in t_up], [rnd(v * cs, 12) for v in t_down]
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

    def advance(self, dt):
        """§11.3, one device at a time."""
        s, c = self.s, temperature_codes(self.s.temperature)
        step = rnd(dt * c["ACCEL"], 16)
        for t in range(self.cfg.tiles):
            a, a2 = self.ages[t], self.ages[t] + step
            dl = log2_fixed(max(T0_MS, a2)) - log2_fixed(max(T0_MS, a))
            kn, kl = key(self.device_key, DRIFT, t), key(self.device_key, DECAY, t)
            for j in range(self.cfg.cols):
                for i in range(self.cfg.rows):
                    k = j * self.cfg.rows + i
                    nu = max(0, s.drift_nu + rnd(gauss(draw(kn, k)) * s.drift_nu_dtod, 8))
                    e = rnd(gauss(draw(kl, k)) * s.decay_dtod, 8)
                    rt = max(0, s.decay_rate + ((s.decay_rate * e) >> 16))
                    x = rnd(nu * dl, 16) + rnd(rt * dt * 94548, 48)
                    self.w[t][j][i] = rnd(self.w[t][j][i] * exp2n(x), 16)
            self.ages[t] = a2
        self.time += dt
        return self.time
