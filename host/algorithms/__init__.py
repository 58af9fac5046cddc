"""Training algorithms: per-layer update rules on the chip's primitives (docs/algorithms.md).

``ALGORITHMS`` maps the names ``ohmflow train --algorithm`` accepts to their option classes;
`make_algorithm` validates a name and its options (aihwkit's names) in one place.
"""

from __future__ import annotations

import dataclasses

from ohmflow.host.algorithms.base import COUNTER_NAMES, Algorithm, UpdateRule
from ohmflow.host.algorithms.mixed_precision import MixedPrecision
from ohmflow.host.algorithms.transfer import AGAD, CTTv2, TTv1, TTv2

ALGORITHMS: dict[str, type[Algorithm]] = {
    c.name: c for c in (Algorithm, TTv1, TTv2, CTTv2, AGAD, MixedPrecision)
}

__all__ = ["ALGORITHMS", "COUNTER_NAMES", "Algorithm", "UpdateRule", "make_algorithm",
           "parse_options"]


def make_algorithm(name: str = "sgd", options: dict | None = None) -> Algorithm:
    """The algorithm ``name`` with ``options``; an unknown name or option raises ValueError."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}: expected one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name].from_options(dict(options or {}))


def parse_options(name: str, items: list[str]) -> dict:
    """``KEY=VALUE`` strings as typed options of algorithm ``name`` (bool: true/false)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}: expected one of {', '.join(ALGORITHMS)}")
    cls = ALGORITHMS[name]
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"an algorithm option must be KEY=VALUE, got {item!r}")
        if key not in defaults:
            have = ", ".join(defaults) or "none"
            raise ValueError(f"algorithm {name!r} has no option {key!r}; its options: {have}")
        kind = cls.limits.get(key, (type(defaults[key]),))[0]
        text = text.strip()
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            elif kind is int:
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            raise ValueError(f"option {key} of {name!r} must be {kind.__name__}, got "
                             f"{text!r}") from None
        out[key] = value
    return out
