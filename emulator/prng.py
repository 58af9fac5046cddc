"""The chip's random numbers: a counter-based generator, exactly reproducible in numpy and gateware.

Every random number is ``draw(key, index) = lowbias32(key ^ index)`` where the 32-bit key mixes the
seed, a domain (what the number is for) and a nonce (which vector or sample of the run); see
docs/numerics.md §6. No state advances per draw, so any lane of the gateware and any element of a
numpy array can compute its number independently, and the order of evaluation never matters.

lowbias32 is C. Wellons' 32-bit integer hash (hash-prospector, 2018): two xorshift-multiply rounds.
"""

from __future__ import annotations

import functools

import numpy as np

M1 = 0x7FEB352D
M2 = 0x846CA68B
MASK32 = 0xFFFFFFFF

#: domains: what a random number is for (docs/numerics.md §6.2)
DOMAIN_FWD = 1  #: forward read noise, index = output column j
DOMAIN_BWD = 2  #: backward read noise, index = input row i
DOMAIN_ROW = 3  #: update pulse trains of rows, index = (i << 4) | slot group
DOMAIN_COL = 4  #: update pulse trains of columns, index = (j << 4) | slot group
DOMAIN_C2C = 5  #: cycle-to-cycle step noise, index = j * rows + i

_U32 = np.uint32


def lowbias32(x: int) -> int:
    """The hash on one Python integer (taken modulo 2**32)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * M1) & MASK32
    x ^= x >> 15
    x = (x * M2) & MASK32
    x ^= x >> 16
    return x


def lowbias32_np(x: np.ndarray) -> np.ndarray:
    """The hash on a uint32 array (a new array)."""
    x = np.asarray(x, dtype=_U32)
    x = x ^ (x >> _U32(16))
    x *= _U32(M1)
    x ^= x >> _U32(15)
    x *= _U32(M2)
    x ^= x >> _U32(16)
    return x


def op_key(seed: int, domain: int, nonce: int) -> int:
    """key = lowbias32(lowbias32(lowbias32(seed) ^ domain) ^ nonce)."""
    return lowbias32(lowbias32(lowbias32(seed) ^ domain) ^ (nonce & MASK32))


def draw(key: int, index: np.ndarray | int) -> np.ndarray:
    """Random uint32 words for the given indices under one key."""
    return lowbias32_np(np.asarray(index, dtype=_U32) ^ _U32(key & MASK32))


def draw_keys(keys: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Random words with a key per row: ``keys[:, None] ^ index`` broadcast."""
    return lowbias32_np(np.asarray(keys, dtype=_U32)[:, None] ^ np.asarray(index, dtype=_U32))


def gauss(words: np.ndarray) -> np.ndarray:
    """Irwin-Hall approximation of a Gaussian: the sum of the 4 bytes of each word, minus 510.

    Integer in [-510, 510], mean 0, standard deviation sqrt(21845) ~= 147.80 (`GAUSS_STD`).
    """
    w = np.asarray(words, dtype=_U32)
    pairs = (w & _U32(0x00FF00FF)) + ((w >> _U32(8)) & _U32(0x00FF00FF))  # two 16-bit sums
    total = (pairs + (pairs >> _U32(16))) & _U32(0xFFFF)
    return total.astype(np.int64) - 510


@functools.lru_cache(maxsize=64)
@functools.lru_cache(maxsize=256)
def domain_base(seed: int, domain: int) -> int:
    """lowbias32(lowbias32(seed) ^ domain): the part of every key of a domain the nonce leaves
    (remembered: every device call asks for the bases of its seed)."""
    return lowbias32(lowbias32(seed) ^ domain)


def nonce_keys(seed: int, domain: int, nonce0: int, count: int) -> np.ndarray:
    """Keys for nonces ``nonce0 .. nonce0+count-1`` (one per vector or sample), as uint32."""
    base = domain_base(seed, domain)
    nonces = (np.arange(count, dtype=np.uint64) + np.uint64(nonce0)) & np.uint64(MASK32)
    return lowbias32_np(nonces.astype(_U32) ^ _U32(base))
