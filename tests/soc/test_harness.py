"""The C++ emulator harness and its build cache, with a byte-stream echo design."""

import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import serial
from amaranth.back import verilog
from ohmflow.emulator.config import get_config
from ohmflow.sim import verilator_server

from .echo import Echo

MASK = 0x5A


def echo_verilog(mask: int) -> str:
    return verilog.convert(Echo(mask), name="top", emit_src=False)


@pytest.fixture(scope="session")
def echo_exe():
    return verilator_server.build_verilog(echo_verilog(MASK))


@pytest.fixture
def server(echo_exe):
    proc, port = verilator_server.start(echo_exe)
    yield proc, port
    verilator_server.stop(proc)


def expected(data: bytes) -> bytes:
    return bytes(b ^ MASK for b in data)


def connect(port: int) -> serial.SerialBase:
    return serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=10)


def test_echo_random_chunks(server):
    proc, port = server
    rng = random.Random(4)
    link = connect(port)
    try:
        for _ in range(40):
            data = rng.randbytes(rng.choice([1, 7, 300, 5000]))
            link.write(data)
            assert link.read(len(data)) == expected(data)
    finally:
        link.close()
    st = verilator_server.stats(proc)
    assert st["rx"] == st["tx"] > 0
    assert st["cycles"] >= st["rx"]


def test_back_pressure(server):
    """A client that writes 2 MB before reading: the harness stalls the design, loses nothing."""
    _proc, port = server
    data = random.Random(5).randbytes(2_000_000)
    link = connect(port)
    try:
        writer = threading.Thread(target=link.write, args=(data,), daemon=True)
        writer.start()
        time.sleep(0.5)  # let every buffer on the way fill up
        got = link.read(len(data))
        writer.join(10)
        assert not writer.is_alive()
        assert got == expected(data)
    finally:
        link.close()


def test_reconnect_and_idle(server):
    proc, port = server
    for n in (3, 1000):
        link = connect(port)
        try:
            data = os.urandom(n)
            link.write(data)
            assert link.read(n) == expected(data)
        finally:
            link.close()
    a = verilator_server.stats(proc)
    time.sleep(0.3)
    b = verilator_server.stats(proc)
    assert b["cycles"] == a["cycles"], "an idle model must not be clocked"
    assert b["wall_s"] - b["busy_s"] > a["wall_s"] - a["busy_s"]


def test_given_port_and_stop(echo_exe):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    proc, port = verilator_server.start(echo_exe, port=free)
    try:
        assert port == free
        link = connect(port)
        link.write(b"ohm")
        assert link.read(3) == expected(b"ohm")
        link.close()
    finally:
        final = verilator_server.stop(proc)
    assert proc.returncode == 0
    assert final is not None and final["rx"] == 3


def test_build_cache(echo_exe):
    t = time.monotonic()
    assert verilator_server.build_verilog(echo_verilog(MASK)) == echo_exe
    assert time.monotonic() - t < 5.0, "a cached build must not recompile"
    assert not list(echo_exe.parent.rglob("*.gch")), "precompiled headers must be deleted"
    other = verilator_server.build_verilog(echo_verilog(0x00))
    assert other != echo_exe and other.exists()
    v = echo_verilog(MASK)
    flags = verilator_server.VERILATOR_FLAGS
    assert verilator_server._key(v, flags) != verilator_server._key(v, ("-O2",))


def test_soc_verilog_is_cached_on_disk(tmp_path, monkeypatch):
    """The emulator's Verilog is elaborated once per config and sources, then read back."""
    monkeypatch.setenv("OHMFLOW_CACHE", str(tmp_path))
    monkeypatch.setattr(verilator_server, "_VERILOG_MEMO", {})
    v = verilator_server.soc_verilog("tiny")
    files = list((tmp_path / "emulator" / "verilog").glob("*.v"))
    assert [f.read_text() for f in files] == [v]
    verilator_server._VERILOG_MEMO.clear()
    monkeypatch.setattr(verilog, "convert", lambda *a, **k: pytest.fail("elaborated again"))
    assert verilator_server.soc_verilog("tiny") == v
    assert verilator_server._verilog_key(get_config("tiny")) != verilator_server._verilog_key(
        get_config("default"))


def test_bad_verilog_reports_the_error(tmp_path, capsys):
    with pytest.raises(RuntimeError, match="Verilator build failed"):
        verilator_server.build_verilog("module top(input clk); wire x = ; endmodule\n",
                                       cache=tmp_path)
    assert "building the Verilator emulator" in capsys.readouterr().err  # said before it failed
    assert not list(tmp_path.glob("build-*")), "a failed build leaves no folder behind"


def test_orphaned_server_exits(echo_exe):
    """A server whose parent process dies stops by itself (once idle), even when the parent is
    gone before the server has started (``--parent`` names it)."""
    script = ("import os, subprocess, sys; p = subprocess.Popen([sys.argv[1], '--port', '0', "
              "'--parent', str(os.getpid())], stdout=subprocess.DEVNULL, "
              "stderr=subprocess.DEVNULL); print(p.pid, flush=True)")
    out = subprocess.run([sys.executable, "-c", script, str(echo_exe)], capture_output=True,
                         text=True, timeout=30, check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, 15)
    raise AssertionError("the orphaned emulator server kept running")


@pytest.mark.slow  # four Verilator builds, never cached
def test_profile_guided_build(tmp_path, capsys):
    """The workload drives the instrumented executable (the echo works there too); the final
    build uses its profile; a failing workload still yields a working executable, said so."""
    seen = []

    def train(exe):
        proc, port = verilator_server.start(exe)
        try:
            link = connect(port)
            data = bytes(range(256)) * 20
            link.write(data)
            seen.append(link.read(len(data)) == expected(data))
            link.close()
        finally:
            verilator_server.stop(proc)

    exe = verilator_server.build_verilog(echo_verilog(MASK), cache=tmp_path, train=train)
    assert seen == [True]
    err = capsys.readouterr().err  # a first build says what it does and how long it took
    assert "building the Verilator emulator (profile-guided)" in err and str(exe.parent) in err
    assert re.search(r"emulator built in \d+ s", err)
    lines = (exe.parent / "command.txt").read_text().splitlines()
    assert "-fprofile-generate=" in lines[0] and "-fprofile-use=" in lines[1]
    assert exe != verilator_server.build_verilog(echo_verilog(MASK), cache=tmp_path), "keyed apart"

    def broken(exe):
        raise RuntimeError("workload broke")

    other = verilator_server.build_verilog(echo_verilog(0x11), cache=tmp_path / "b", train=broken)
    note = (other.parent / "command.txt").read_text()
    assert "workload failed (workload broke)" in note and "-fprofile-use=" not in note
    proc, port = verilator_server.start(other)
    try:
        link = connect(port)
        link.write(b"\x00\x11")
        assert link.read(2) == b"\x11\x00"
        link.close()
    finally:
        verilator_server.stop(proc)
    assert not list(tmp_path.rglob("*.gcda")), "profiles are deleted with the object folder"


def test_the_profile_guided_step_is_switched_by_the_environment(monkeypatch):
    """``OHMFLOW_EMULATOR_PGO``: 1 or unset builds profile-guided, 0 plain, anything else is
    refused, naming the variable and its values."""
    seen = []
    monkeypatch.setattr(verilator_server, "soc_verilog", lambda cfg: f"// {cfg.name}")
    monkeypatch.setattr(verilator_server, "build_verilog",
                        lambda text, train=None: seen.append((text, train is not None)))
    for value, guided in (("1", True), (" 0 ", False), (None, True)):
        if value is None:
            monkeypatch.delenv(verilator_server.PGO_ENV)
        else:
            monkeypatch.setenv(verilator_server.PGO_ENV, value)
        assert verilator_server.profile_guided() is guided
        verilator_server.build("tiny")
        assert seen.pop() == ("// tiny", guided)
    monkeypatch.setenv(verilator_server.PGO_ENV, "yes")
    with pytest.raises(ValueError, match=r"OHMFLOW_EMULATOR_PGO must be 0 .* or 1 .*got 'yes'"):
        verilator_server.build("tiny")
    assert seen == []


def test_the_chip_profile_workload_runs_on_a_built_chip():
    """The profile-guided build's workload (INFO, FORWARD, UPDATE frames) is answered OK by a
    chip's emulator; a refused frame or a timeout would raise."""
    exe = verilator_server.build("tiny")
    verilator_server._profile_workload(get_config("tiny"))(exe)
