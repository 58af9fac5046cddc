"""SocketPort: frame-sized waits, pyserial-like reads, closed peers and bad URLs."""

import socket
import threading
import time

import pytest
from ohmflow.host.socket_port import SocketPort, parse_socket_url


@pytest.fixture
def pair():
    """A SocketPort connected to a server socket the test writes to."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = SocketPort(f"socket://127.0.0.1:{srv.getsockname()[1]}", 0.5, 1.0)
        peer, _ = srv.accept()
        yield port, peer
        port.close()
        peer.close()


def _send_in_pieces(peer, data: bytes, pieces: int, gap: float) -> threading.Thread:
    def run():
        step = -(-len(data) // pieces)
        for k in range(0, len(data), step):
            time.sleep(gap)
            peer.sendall(data[k : k + step])
    t = threading.Thread(target=run)
    t.start()
    return t


def test_read_some_returns_a_streamed_part_whole(pair):
    port, peer = pair
    data = bytes(range(256)) * 8
    t = _send_in_pieces(peer, data, 8, 0.01)
    got = port.read_some(len(data))
    t.join()
    assert got == data  # one wake-up for 8 pieces: the kernel held them until all had come


def test_read_some_after_a_timeout_returns_what_came(pair):
    port, peer = pair
    peer.sendall(b"abc")
    t0 = time.monotonic()
    assert port.read_some(10) == b"abc"
    assert 0.4 < time.monotonic() - t0 < 2.0
    assert port.read_some(1) == b""  # nothing more: empty after the timeout


def test_read_has_pyserial_semantics(pair):
    port, peer = pair
    peer.sendall(b"hello world")
    assert port.read(5) == b"hello"
    assert port.read(100) == b" world"  # fewer than asked once the timeout ends the wait


def test_writes_reach_the_peer(pair):
    port, peer = pair
    payload = b"x" * 100_000
    out = bytearray()
    t = threading.Thread(target=lambda: [out.extend(peer.recv(65536)) for _ in iter(
        lambda: len(out) < len(payload), False)])
    t.start()
    assert port.write(payload) == len(payload)
    t.join(5)
    assert bytes(out) == payload


def test_a_closed_peer_is_a_connection_error(pair):
    port, peer = pair
    peer.sendall(b"last")
    peer.close()
    assert port.read_some(100) == b"last"
    with pytest.raises(ConnectionError, match="closed the connection"):
        port.read_some(100)


def test_a_closed_port_says_so(pair):
    port, _ = pair
    port.close()
    with pytest.raises(ConnectionError, match="closed"):
        port.write(b"x")


@pytest.mark.parametrize("url", ["socket://127.0.0.1", "tcp://127.0.0.1:5", "socket://:5",
                                 "socket://127.0.0.1:5/x", "socket://127.0.0.1:5?logging=debug"])
def test_bad_urls_name_the_expected_form(url):
    with pytest.raises(ValueError, match="socket://HOST:PORT"):
        parse_socket_url(url)
