"""Training checkpoints: one file, complete or absent, checked before anything is loaded.

Layout: a header line ``OHMFLOW-CKPT <version> <sha256 hex> <payload bytes>\\n`` and a payload,
an ``.npz`` archive (no pickles) of named integer/float arrays plus one JSON document ``meta``.
`save` writes a temporary file, fsyncs it, renames it over the target and fsyncs the directory;
`load` refuses a wrong magic, an unknown version, a truncated payload or a checksum mismatch with
a `CheckpointError` before returning anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

MAGIC = b"OHMFLOW-CKPT"
VERSION = 1
FILENAME = "checkpoint.ohmckpt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, corrupted, or from a different run."""


def save(path: str | Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (JSON-able) and ``arrays`` atomically to ``path``."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta, sort_keys=True)),
             **{k: np.asarray(v) for k, v in arrays.items()})
    payload = buf.getvalue()
    header = b"%s %d %s %d\n" % (MAGIC, VERSION, hashlib.sha256(payload).hexdigest().encode(),
                                 len(payload))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a checkpoint; returns (meta, arrays) or raises `CheckpointError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    head, sep, payload = data.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 4 or parts[0] != MAGIC:
        raise CheckpointError(f"{path} is not an ohmflow checkpoint (bad header)")
    try:
        version, digest, size = int(parts[1]), parts[2].decode("ascii"), int(parts[3])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} is not an ohmflow checkpoint (bad header)") from None
    if version != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version}; this ohmflow "
                              f"reads version {VERSION}")
    if len(payload) != size:
        raise CheckpointError(f"{path} is truncated or padded: payload of {len(payload)} bytes, "
                              f"header says {size}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{path} is corrupted: SHA-256 checksum mismatch")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (ValueError, KeyError, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: checksum matches but the payload is unreadable ({e})") \
            from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: metadata is not a JSON object")
    return meta, arrays
