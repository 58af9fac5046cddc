"""`SocketPort`: the byte link to an emulator server (``socket://HOST:PORT``) for `LinkDevice`.

pyserial's ``socket://`` port reads in a loop of ``select`` and ``recv`` calls, so a reply the
emulator streams out vector by vector (a FORWARD of 32 vectors arrives in about as many pieces)
wakes the reading thread once per piece, each time for a few Python calls. `SocketPort` offers
`read_some`: wait, with the GIL released, until a whole awaited frame's bytes are in the socket's
buffer (the kernel's ``SO_RCVLOWAT`` mark), then take them in one ``recv``: one wake-up per
frame part instead of one per piece. It also has the pyserial methods `LinkDevice` and the tests'
port wrappers use (``read``, ``write``, ``open``, ``close``).
"""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

__all__ = ["SocketPort", "parse_socket_url"]

#: the most bytes one wake-up waits for (far below the socket's receive buffer)
MAX_LOWAT = 1 << 14


def parse_socket_url(url: str) -> tuple[str, int]:
    """``socket://HOST:PORT`` as (host, port); ValueError naming the expected form otherwise."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (parts.scheme != "socket" or not parts.hostname or port is None or parts.path
            or parts.query or parts.fragment):
        raise ValueError(f"{url!r} is not a socket URL of the form socket://HOST:PORT")
    return parts.hostname, port


class SocketPort:
    """A TCP connection with pyserial's port interface and a frame-sized `read_some`.

    ``timeout`` bounds one `read` or `read_some` wait (seconds), ``write_timeout`` one `write`.
    A connection the peer closed raises `ConnectionError` (an `OSError`) on the next read.
    """

    def __init__(self, url: str, timeout: float, write_timeout: float):
        self.host, self.tcp_port = parse_socket_url(url)
        self.port = url  #: the URL (pyserial's attribute name)
        self.timeout = timeout
        self.write_timeout = write_timeout
        self._sock: socket.socket | None = None
        self._lowat = 1
        self.open()

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        """Connect (again): a new connection, nothing of the old one in flight."""
        self.close()
        sock = socket.create_connection((self.host, self.tcp_port), timeout=self.write_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)  # waits are select()s with their own timeouts
        self._sock, self._lowat = sock, 1

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()

    def _open_socket(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionError(f"{self.port}: the connection is closed")
        return self._sock

    def write(self, data: bytes) -> int:
        """Send all of ``data``; TimeoutError if the peer takes none for ``write_timeout``."""
        sock, view = self._open_socket(), memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            if not select.select([], [sock], [], self.write_timeout)[1]:
                raise TimeoutError(f"{self.port}: the peer took no bytes for "
                                   f"{self.write_timeout} s")
        return len(data)

    def read_some(self, want: int) -> bytes:
        """Wait up to ``timeout`` until ``want`` bytes (at most `MAX_LOWAT`) are buffered, then
        return all buffered bytes (fewer than ``want`` after a timeout; b"" if none came)."""
        sock = self._open_socket()
        lowat = max(1, min(int(want), MAX_LOWAT))
        if lowat != self._lowat:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            self._lowat = lowat
        ready, _, _ = select.select([sock], [], [], self.timeout)
        if not ready:  # a timeout: what did arrive is still returned
            return self._take(sock, wait=False)
        return self._take(sock, wait=True)

    def _take(self, sock: socket.socket, wait: bool) -> bytes:
        try:
            data = sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data and wait:
            raise ConnectionError(f"{self.port}: the peer closed the connection")
        return data

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes: as soon as ``size`` have come, or what came within ``timeout``
        (pyserial's semantics)."""
        out = bytearray()
        deadline = time.monotonic() + self.timeout
        sock = self._open_socket()
        if self._lowat != 1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            self._lowat = 1
        while len(out) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                data = sock.recv(size - len(out))
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise ConnectionError(f"{self.port}: the peer closed the connection")
            out += data
        return bytes(out)
