"""Float references of the training algorithms (ideal arrays: exact reads, exact steps of dw).

Written from the algorithms' definitions (docs/algorithms.md), independently of
`ohmflow.host.algorithms`: weights, fast arrays and buffers are float matrices, a column read is
the column itself and n pulses move a weight by exactly n * dw (clipped to the device bounds).
"""

import numpy as np
from ohmflow.host.mlp import softmax_xent


class FloatAlgorithmMLP:
    def __init__(self, params, name: str, opts: dict, dw: float, bound: float, seed: int = 0):
        self.name, self.o, self.dw, self.bound = name, opts, dw, bound
        self.W = [w.copy() for w, _ in params]
        self.b = [b.copy() for _, b in params]
        self.rng = np.random.default_rng(seed)
        self.A = [np.zeros_like(w) for w in self.W]
        self.H = [np.zeros_like(w) for w in self.W]
        self.chop = [np.ones(w.shape[1]) for w in self.W]
        self.reads = [np.zeros(w.shape[1], dtype=int) for w in self.W]
        self.macc = [np.zeros_like(w) for w in self.W]
        self.wacc = [np.zeros(w.shape[1]) for w in self.W]
        self.mprev = [None for _ in self.W]
        self.prev_ok = [np.zeros(w.shape[1], dtype=bool) for w in self.W]
        self.ptr = [0 for _ in self.W]
        self.credit = [0.0 for _ in self.W]

    def logits(self, x):
        h = x
        for k, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            h = h @ w.T + b
            if k < len(self.W) - 1:
                h = np.maximum(h, 0)
        return h

    def clip(self, w):
        return np.clip(w, -self.bound, self.bound)

    def train_batch(self, x, y, lr):
        acts = [x]
        for k, (w, b) in enumerate(zip(self.W, self.b, strict=True)):
            h = acts[-1] @ w.T + b
            acts.append(np.maximum(h, 0) if k < len(self.W) - 1 else h)
        loss, g, _ = softmax_xent(acts[-1], y)
        ds = [g]
        for k in range(len(self.W) - 1, 0, -1):
            g = (g @ self.W[k]) * (acts[k] > 0)
            ds.append(g)
        for k, d in enumerate(reversed(ds)):
            self.step(k, acts[k], d, lr)
            self.b[k] -= lr * d.sum(axis=0)
        return loss

    def step(self, k, x, d, lr):
        o, n = self.o, self.name
        if n == "sgd":
            self.W[k] = self.clip(self.W[k] - lr * d.T @ x)
            return
        if n == "mixed-precision":
            self.H[k] -= lr * d.T @ x
            p = np.clip(np.trunc(self.H[k] / self.dw), -63, 63)
            self.W[k] = self.clip(self.W[k] + p * self.dw)
            self.H[k] -= p * self.dw
            return
        chopped = n in ("c-ttv2", "agad")
        fast = o.get("fast_lr", 1.0) * (lr if not chopped else 1.0)
        tr = o.get("transfer_lr", 1.0) * lr
        xc = x * self.chop[k] if chopped else x
        self.A[k] = self.clip(self.A[k] - fast * d.T @ xc)
        per_batch = not chopped
        every = o.get("transfer_every", 1.0)
        self.credit[k] += (1.0 if per_batch else len(x)) / every
        events = int(np.floor(self.credit[k] + 1e-12))
        self.credit[k] -= events
        n_in = self.W[k].shape[1]
        for _ in range(events * o.get("n_reads_per_transfer", 1)):
            i = self.ptr[k]
            self.ptr[k] = (i + 1) % n_in
            self.column(k, i, self.A[k][:, i].copy(), tr)

    def column(self, k, i, v, tr):
        o, n, dw = self.o, self.name, self.dw
        bl = o.get("transfer_bl", 31 if n == "ttv1" else 1)
        if n == "ttv1":
            c = np.clip(np.floor(tr * v / dw + self.rng.random(v.shape)), -bl, bl)
            self.W[k][:, i] = self.clip(self.W[k][:, i] + c * dw)
            return
        period = max(2, round(1 / o.get("in_chop_prob", 0.1)))
        h = self.H[k][:, i]
        if n == "agad":
            t = self.reads[k][i]
            wt = 1 + (o.get("tail_weightening", 5.0) - 1) * t / max(period - 1, 1)
            self.macc[k][:, i] += wt * v
            self.wacc[k][i] += wt
            self.reads[k][i] += 1
            if self.reads[k][i] < period:
                return
            self.reads[k][i] = 0
            m = self.macc[k][:, i] / self.wacc[k][i]
            if self.prev_ok[k][i]:
                h += self.chop[k][i] * tr * (m - self.mprev[k][:, i]) / dw
                self.send(k, i, h, bl)
            if self.mprev[k] is None:
                self.mprev[k] = np.zeros_like(self.W[k])
            self.mprev[k][:, i] = m
            self.prev_ok[k][i] = True
            self.macc[k][:, i] = 0
            self.wacc[k][i] = 0
            self.chop[k][i] *= -1
            return
        h += self.chop[k][i] * tr * v / dw
        self.send(k, i, h, bl)
        if n == "c-ttv2" and self.rng.random() < o.get("in_chop_prob", 0.1):
            self.chop[k][i] *= -1

    def send(self, k, i, h, bl):
        c = np.clip(np.trunc(h), -bl, bl)
        self.W[k][:, i] = self.clip(self.W[k][:, i] + c * self.dw)
        mom = self.o.get("momentum", 0.1 if self.name == "ttv2" else 0.0)
        h[c != 0] *= mom
