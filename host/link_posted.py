"""Posted frames of a `LinkDevice` on a pipelined link: `Posting.posting` sends UPDATE and
COUNTERS frames without waiting for their replies; `PostedCounters` are the counters of a
posted COUNTERS frame, filled in when its reply is read."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Mapping

import serial
from ohmflow.emulator import protocol as P
from ohmflow.host.device import DeviceError

__all__ = ["WINDOW", "Posting", "PostedCounters", "counter_values", "ignore_reply"]

#: frames in flight on a pipelined link (their replies, at most 4 KB each, fit the buffers)
WINDOW = 4


class _Lost(Exception):
    """No usable reply (timeout, corrupt frame or a link-level error status)."""


def counter_values(reply: dict) -> dict[str, int]:
    """A COUNTERS reply as {counter name: value} (`P.TABLE.counters` order)."""
    return {k: int(x) for k, x in zip(P.TABLE.counters, reply["values"], strict=False)}


def ignore_reply(reply: dict) -> None:
    """The sink of a posted frame whose reply carries nothing the host needs (UPDATE)."""


class PostedCounters(Mapping):
    """A tile's counters whose COUNTERS frame is in flight: reading a value first reads the
    posted replies (``settle``). The values are those of the moment the device executed the
    frame, whenever they are read."""

    def __init__(self, settle: Callable[[], None]):
        self._settle = settle
        self._values: dict[str, int] | None = None

    def fill(self, reply: dict) -> None:
        """The sink of the posted COUNTERS frame."""
        self._values = counter_values(reply)

    def _get(self) -> dict[str, int]:
        if self._values is None:
            self._settle()
        if self._values is None:
            raise DeviceError("these counters were read by a posted COUNTERS frame whose reply "
                              "was lost (an error was raised for it)")
        return self._values

    def __getitem__(self, key: str) -> int:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"PostedCounters({self._values!r})"


class Posting:
    """`LinkDevice`'s posted frames (a mixin: it uses the link's ``_frame``, ``_send``,
    ``_await``, ``_decode``, ``_lost`` and its ``_posted`` queue)."""

    @contextlib.contextmanager
    def posting(self) -> Iterator[None]:
        """A block in which UPDATE frames and counter reads are posted on a `pipelined` link:
        sent without waiting for their replies, which are read while the next command's frame
        is already with the device (so the device computes while the host prepares the next
        command). A posted frame is never resent: a lost or refused posted reply raises
        `DeviceError` from the call that reads it, at the latest when the block ends. Counters
        read in the block (`tile_counters`) are filled in when their reply is read. Elsewhere
        (a serial line, or outside the block) every call waits for its reply."""
        if self._posting or not self.pipelined:
            yield
            return
        self._posting = True
        try:
            yield
        finally:
            self._posting = False
            self.settle()

    def _post(self, name: str, values: dict, sink: Callable[[dict], None]) -> None:
        """Send one frame whose reply `settle` reads later; at most `WINDOW` are in flight."""
        if len(self._posted) >= WINDOW:
            self.settle(len(self._posted) - WINDOW + 1)
        cmd = P.command(name)
        frame, seq, _ = self._frame(cmd, values)
        try:
            self._send(frame)
        except (serial.SerialException, OSError) as e:
            raise self._lost(name, seq, e) from None
        self._posted.append((cmd, seq, sink))

    def settle(self, n: int | None = None) -> None:
        """Read the replies of the posted frames (the first ``n``, or all) in order."""
        for _ in range(len(self._posted) if n is None else n):
            cmd, seq, sink = self._posted.popleft()
            try:
                status, data = self._await(cmd, seq, self.timeout)
                if P.is_link_status(status):
                    raise _Lost(f"device answered {P.status_name(status)}")
                sink(self._decode(cmd, seq, status, data))
            except BaseException as e:
                self._posted.clear()
                self._counters.clear()
                self._parser, self._events = P.FrameParser(), collections.deque()
                if isinstance(e, _Lost):
                    raise DeviceError(f"{self.url}: no valid reply to the posted {cmd.name} "
                                      f"(seq {seq}): {e}; a posted frame is not resent") from None
                if isinstance(e, (serial.SerialException, OSError)):
                    raise self._lost(cmd.name, seq, e) from None
                raise
