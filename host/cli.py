"""The ``ohmflow`` command line: ``ohmflow info`` here, ``ohmflow train`` in
`ohmflow.host.train_command`, and the other commands registered in `COMMANDS`.

Bad input (a dataset with NaN, a network wider than the device, an unknown device model, a port
that does not exist, a corrupted checkpoint) ends in one line on stderr naming the problem and
what would work, with exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path

#: Subcommands: name -> (target, one-line help). The target, ``"module"`` or
#: ``"module:object"``, provides ``add_arguments(parser)`` and ``run(args) -> int``; it is
#: imported only when its command is used. Registering a command is one line here.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ohmflow.host.train_command:Train", "train an MLP by analog SGD on a device"),
    "info": ("ohmflow.host.cli:Info", "print a device's INFO: its synthesized config"),
    "build": ("ohmflow.boards.build", "build (and program) a bitstream for an FPGA board"),
    "bench": ("ohmflow.host.bench", "measure simulator, emulator, training and link speeds"),
    "fit-device": ("ohmflow.host.device_fit",
                   "fit a device model to a measured pulse response (CSV) and write its config"),
    "project": ("ohmflow.host.projection_sweep",
                "projected training time and energy as networks grow"),
    "sweep": ("ohmflow.host.sweep", "run a grid of train runs (local processes or Ray), resumable"),
    "sim": ("ohmflow.sim.testbenches", "run the cocotb testbenches under Verilator"),
}

#: what the failures of user input raise; the CLI turns them into one line and exit code 2
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _load(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ohmflow")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` is imported and given its arguments."""
    parser = argparse.ArgumentParser(
        prog="ohmflow", description="FPGA emulator of an analog in-memory-computing accelerator "
        "for training neural networks.")
    parser.add_argument("--version", action="version", version=f"ohmflow {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (target, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == chosen:
            cmd = _load(target)
            cmd.add_arguments(p)
            p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from ohmflow.host.device import DeviceError

    try:
        return int(args._run(args) or 0)
    except (*USER_ERRORS, DeviceError) as e:
        msg = str(e) or type(e).__name__
        print(f"ohmflow {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "_resume_hint", None)
        print(f"ohmflow {args.command}: interrupted" + (f"; {hint}" if hint else ""),
              file=sys.stderr)
        return 130


# ----- shared helpers -----
def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="twin",
                   help="twin, verilator, or a serial port / pyserial URL (default: twin)")
    p.add_argument("--config", default=None,
                   help="chip config: a preset (default, icebreaker, tiny) or a .toml file")


#: the backends named by a word; anything else is a serial port or a pyserial URL
BACKENDS = ("twin", "verilator")


def check_backend(backend: str) -> None:
    """Refuse a ``--backend`` that is no backend name, serial port or URL (or a comma-separated
    list of ports and URLs, one per chip), naming the nearest."""
    import difflib

    if "," in backend:
        for part in backend.split(","):
            check_backend(part.strip())
        return
    if backend in BACKENDS or "://" in backend or "/" in backend or "\\" in backend:
        if backend.startswith("/dev/") and not Path(backend).exists():
            from serial.tools import list_ports

            ports = ", ".join(p.device for p in list_ports.comports()) or "none"
            raise ValueError(f"serial port {backend} does not exist (serial ports on this "
                             f"machine: {ports}); use --backend twin, --backend verilator or a "
                             "pyserial URL such as socket://127.0.0.1:PORT")
        return
    if backend.upper().startswith("COM") and backend[3:].isdigit():
        return
    near = difflib.get_close_matches(backend.lower(), BACKENDS, n=1, cutoff=0.5)
    hint = f"did you mean --backend {near[0]}? " if near else ""
    raise ValueError(f"unknown backend {backend!r}: {hint}use twin, verilator, a serial port "
                     "(e.g. /dev/ttyUSB0) or a pyserial URL (e.g. socket://127.0.0.1:PORT)")


def open_backend(backend: str, config: str, chips: int = 1):
    """`open_chips`, with a failure to reach the backend reported as one ValueError line."""
    from ohmflow.emulator.config import get_config
    from ohmflow.host.chips import open_chips
    from ohmflow.host.device import ConfigMismatch

    check_backend(backend)
    cfg = get_config(config)
    try:
        return open_chips(backend, cfg, chips)
    except ConfigMismatch:
        raise
    except ImportError as e:
        raise ValueError(f"backend {backend!r} needs the link backends, which failed to import "
                         f"({e}); use --backend twin") from None
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise ValueError(f"cannot open backend {backend!r}: {reason}; use twin, verilator, an "
                         "existing serial port (e.g. /dev/ttyUSB0) or a pyserial URL "
                         "(socket://HOST:PORT)") from None


# ----- ohmflow info -----
class Info:
    """``ohmflow info``: the device's INFO reply and its current settings."""

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_backend_arguments(p)

    @staticmethod
    def run(args) -> int:
        with open_backend(args.backend, args.config or "default") as chips:
            dev = chips[0]
            info = dev.info()
            c = info.config
            print(f"backend           {info.backend}")
            print(f"contract version  {info.version}")
            print(f"fingerprint       0x{info.fingerprint:08x}")
            for k, v in c.to_dict().items():
                print(f"{k:<17} {v}")
            print(f"{'devices':<17} {c.devices} per tile, {c.devices * c.tiles} in all")
            s = dataclasses.asdict(dev.settings())
            s["shapes"] = " ".join(f"{a}x{b}" for a, b in s["shapes"])
            print("settings          " + ", ".join(f"{k}={v}" for k, v in s.items()))
        return 0


if __name__ == "__main__":
    sys.exit(main())
