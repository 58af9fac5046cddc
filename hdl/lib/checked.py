"""Components whose constructors refuse bad arguments before the object exists.

Amaranth warns about an elaboratable that was created and never elaborated, and an object whose
``__init__`` raised is one. A class that lists `Checked` first runs its argument checks in
``__new__`` instead: nothing is created when they fail, so the error is the only message.
"""

from __future__ import annotations

__all__ = ["Checked"]


class Checked:
    """Mixin for an `Elaboratable`: ``check`` receives the constructor's arguments and raises
    (``ValueError``, ``TypeError``) on any it refuses, before the object is created."""

    def __new__(cls, *args, src_loc_at: int = 0, **kwargs):
        cls.check(*args, **kwargs)
        return super().__new__(cls, *args, src_loc_at=src_loc_at + 1, **kwargs)

    @classmethod
    def check(cls, *args, **kwargs) -> None:
        """Raise if the constructor's arguments cannot make a component; the default accepts."""
