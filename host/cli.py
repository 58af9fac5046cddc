"""The ``ohmflow`` command line: ``ohmflow train``, ``ohmflow info`` and the commands registered
in `COMMANDS`.

Bad input (a dataset with NaN, a network wider than the device, an unknown device model, a port
that does not exist, a corrupted checkpoint) ends in one line on stderr naming the problem and
what would work, with exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import importlib
import sys
from pathlib import Path

#: Subcommands: name -> (target, one-line help). The target, ``"module"`` or
#: ``"module:object"``, provides ``add_arguments(parser)`` and ``run(args) -> int``; it is
#: imported only when its command is used. Registering a command is one line here.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ohmflow.host.cli:Train", "train an MLP by analog SGD on a device"),
    "info": ("ohmflow.host.cli:Info", "print a device's INFO: its synthesized config"),
    "build": ("ohmflow.boards.build", "build (and program) a bitstream for an FPGA board"),
    "bench": ("ohmflow.host.bench", "measure simulator, emulator, training and link speeds"),
}

#: what the failures of user input raise; the CLI turns them into one line and exit code 2
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _load(target: str):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` is imported and given its arguments."""
    parser = argparse.ArgumentParser(
        prog="ohmflow", description="FPGA emulator of an analog in-memory-computing accelerator "
        "for training neural networks.")
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
        print(f"ohmflow {args.command}: interrupted", file=sys.stderr)
        return 130


# ----- shared helpers -----
def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="twin",
                   help="twin, verilator, or a serial port / pyserial URL (default: twin)")
    p.add_argument("--config", default=None,
                   help="chip config: a preset (default, icebreaker, tiny) or a .toml file")


def open_backend(backend: str, config: str, chips: int = 1):
    """`open_chips`, with a failure to reach the backend reported as one ValueError line."""
    from ohmflow.emulator.config import get_config
    from ohmflow.host.chips import open_chips
    from ohmflow.host.device import ConfigMismatch

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


# ----- ohmflow train -----
#: device-model options: CLI flag -> DeviceModel field (aihwkit names)
MODEL_PARAMS = ("dw_min", "dw_min_dtod", "dw_min_std", "up_down", "up_down_dtod", "w_max",
                "w_min", "w_max_dtod", "w_min_dtod", "gamma_up", "gamma_down", "gamma_up_dtod",
                "gamma_down_dtod")


def _widths(text: str) -> list[int]:
    try:
        w = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be integers, got {text!r}") from None
    if any(v < 1 for v in w):
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return w


class Train:
    """``ohmflow train``: analog SGD beside the float baseline, with checkpoints and a report."""

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        from ohmflow.host.datasets import FILE_FORMATS

        p.formatter_class = argparse.RawDescriptionHelpFormatter
        p.epilog = "dataset files:\n" + "\n".join("  " + line for line in
                                                    FILE_FORMATS.splitlines())
        add_backend_arguments(p)
        p.add_argument("--chips", type=int, metavar="N",
                       help="chips the network is mapped onto (several twins, N Verilator "
                       "servers, or one board per port listed in --backend); default: as many "
                       "as the network needs on the twin, 1 (or the listed boards) otherwise")
        g = p.add_argument_group("network and data")
        g.add_argument("--dataset", help="digits (default), mnist1d, or a .npz/.csv file (see "
                       "below)")
        g.add_argument("--hidden", type=_widths, nargs="+", metavar="W",
                       help="hidden layer widths, e.g. --hidden 32 or --hidden 256 128 "
                       "(default 32); a layer larger than a tile is split over several tiles")
        g.add_argument("--max-input-size", type=int, metavar="N",
                       help="largest block of a layer's inputs on one tile (aihwkit's "
                       "MappingParameter; default: the tile's rows)")
        g.add_argument("--max-output-size", type=int, metavar="N",
                       help="largest block of a layer's outputs on one tile (default: the "
                       "tile's columns)")
        g.add_argument("--no-standardize", dest="no_standardize", action="store_true",
                       default=None, help="use the features as given (default: scale each to "
                       "zero mean and unit variance with the training split's statistics)")
        g = p.add_argument_group("device model (aihwkit names; defaults: aihwkit's)")
        g.add_argument("--device-model", help="ConstantStep (default), LinearStep or SoftBounds")
        for name in MODEL_PARAMS:
            g.add_argument("--" + name.replace("_", "-"), type=float, metavar="X")
        g.add_argument("--out-bound", type=float, help="ADC full scale (default 12)")
        g.add_argument("--out-noise", type=float, help="read noise, as aihwkit (default 0.06)")
        g.add_argument("--desired-bl", type=int, help="maximum pulse slots (default 31)")
        g.add_argument("--max-bm-rounds", type=int,
                       help="bound management: halvings of a saturated input (0: off; default 4)")
        Train.add_algorithm_arguments(p)
        g = p.add_argument_group("training")
        g.add_argument("--epochs", type=int, help="epochs in all (default 30)")
        g.add_argument("--lr", type=float, help="learning rate (default 0.1)")
        g.add_argument("--batch", type=int, help="batch size (default 32)")
        g.add_argument("--seed", type=int, help="run seed: init, shuffle, pulses (default 0)")
        g.add_argument("--fab-seed", type=int, help="fabrication seed (default: the run seed)")
        g.add_argument("--no-float", dest="no_float", action="store_true", default=None,
                       help="skip the float baseline")
        g = p.add_argument_group("output")
        g.add_argument("--out", help="run directory (default runs/<timestamp>)")
        g.add_argument("--resume", metavar="DIR",
                       help="continue the run checkpointed in DIR, bit-identically to a run that "
                       "never stopped (epoch boundaries are restart points; --epochs may grow)")
        g.add_argument("--no-progress", action="store_true", help="no progress bars")
        g.add_argument("--report", metavar="FILE",
                       help="write the hardware-cost projection as markdown (.md) or JSON "
                       "(.json), with a plot of time and energy by phase beside it (.png)")
        g.add_argument("--analog-profile", default="rpu",
                       help="analog technology profile for the printed projection "
                       "(host/profiles.toml: rpu, hermes; default rpu)")
        g.add_argument("--digital-profile", default="h100-bf16",
                       help="digital profile to compare with (h100-bf16, h100-int8)")

    # ----- training algorithms and device presets (ohmflow.host.algorithms) -----
    @staticmethod
    def add_algorithm_arguments(p: argparse.ArgumentParser) -> None:
        from ohmflow.host.algorithms import ALGORITHMS
        from ohmflow.host.algorithms.devices import DEVICE_PRESETS

        g = p.add_argument_group("training algorithm (docs/algorithms.md; aihwkit's names)")
        g.add_argument("--algorithm", metavar="NAME", help="update rule: " + ", ".join(
            f"{n} ({c.aihwkit.split(' ')[0]})" for n, c in ALGORITHMS.items()) + "; default sgd")
        g.add_argument("--algorithm-option", dest="algorithm_option", action="append",
                       metavar="KEY=VALUE", help="an option of the algorithm, e.g. "
                       "transfer_every=2 (repeat for several; names and defaults as aihwkit's)")
        g.add_argument("--device-preset", metavar="NAME", help="device parameter set: "
                       + ", ".join(DEVICE_PRESETS) + " (approximations of aihwkit's presets; "
                       "--dw-min etc. change single parameters of it)")

    @staticmethod
    def algorithm_from_args(args) -> dict:
        """TrainConfig fields of --algorithm and --algorithm-option (validated here)."""
        from ohmflow.host.algorithms import make_algorithm, parse_options

        if args.algorithm_option and args.algorithm is None:
            raise ValueError("--algorithm-option needs --algorithm NAME")
        if args.algorithm is None:
            return {}
        opts = parse_options(args.algorithm, args.algorithm_option or [])
        make_algorithm(args.algorithm, opts)
        return {"algorithm": args.algorithm, "algorithm_options": opts}

    @staticmethod
    def base_model(args):
        """The device model before single-parameter options: a preset or a model's defaults."""
        from ohmflow.emulator.config import DeviceModel
        from ohmflow.host.algorithms.devices import device_preset

        if args.device_preset is not None:
            if args.device_model is not None:
                raise ValueError("give --device-preset or --device-model, not both")
            return device_preset(args.device_preset)
        return DeviceModel(model=args.device_model or "ConstantStep")

    @staticmethod
    def config_from_args(args):
        """The TrainConfig the explicit options ask for (defaults elsewhere)."""
        from ohmflow.host.trainer import TrainConfig

        model = Train.base_model(args)
        changes = {k: getattr(args, k) for k in MODEL_PARAMS if getattr(args, k) is not None}
        model = model.replace(**changes)
        kw = {"device_model": dataclasses.asdict(model)}
        for name in ("dataset", "config", "out_bound", "out_noise", "desired_bl", "epochs", "lr",
                     "batch", "seed", "fab_seed", "max_bm_rounds", "max_input_size",
                     "max_output_size"):
            if getattr(args, name) is not None:
                kw[name] = getattr(args, name)
        if args.hidden is not None:
            kw["hidden"] = tuple(w for group in args.hidden for w in group)
        if args.no_float:
            kw["float_baseline"] = False
        if args.no_standardize:
            kw["standardize"] = False
        if kw.get("max_bm_rounds") == 0:
            kw["bound_management"] = False
            kw["max_bm_rounds"] = 0
        kw.update(Train.algorithm_from_args(args))
        return TrainConfig(**kw)

    @staticmethod
    def _explicit(args) -> set[str]:
        given = {k for k in ("dataset", "hidden", "config", "out_bound", "out_noise",
                             "desired_bl", "lr", "batch", "seed", "fab_seed", "max_bm_rounds",
                             "max_input_size", "max_output_size", "chips")
                 if getattr(args, k) is not None}
        if args.no_standardize:
            given.add("standardize")
        if args.device_model is not None or args.device_preset is not None or any(
                getattr(args, k) is not None for k in MODEL_PARAMS):
            given.add("device_model")
        if args.algorithm is not None:
            given.update(("algorithm", "algorithm_options"))
        if args.no_float:
            given.add("float_baseline")
        return given

    @staticmethod
    def run(args) -> int:
        from ohmflow.host import datasets, report
        from ohmflow.host.checkpoint import CheckpointError
        from ohmflow.host.checkpoint import load as load_ckpt
        from ohmflow.host.trainer import TrainConfig, Trainer

        log = print
        if args.resume:
            if args.out:
                raise ValueError("--resume DIR continues the run in DIR; drop --out")
            run_dir = Path(args.resume)
            meta, _ = load_ckpt(run_dir / "checkpoint.ohmckpt")
            try:
                stored = TrainConfig.from_dict(meta["train"])
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"checkpoint in {run_dir} has an unusable run config: "
                                      f"{e}") from None
            asked = Train.config_from_args(args)
            for k in sorted(Train._explicit(args)):
                if getattr(asked, k) != getattr(stored, k):
                    raise CheckpointError(
                        f"--{k.replace('_', '-')} differs from the checkpoint's run "
                        f"({getattr(asked, k)!r} vs {getattr(stored, k)!r}); --resume continues "
                        "the stored run (only --epochs and --backend may change)")
            dev = open_backend(args.backend, stored.config, stored.chips)
            with dev:
                trainer = Trainer.resume(run_dir, dev, epochs=args.epochs,
                                         progress=not args.no_progress, log=log)
                log(f"resuming {run_dir} after epoch {trainer.epoch} of {trainer.cfg.epochs}")
                return Train._finish(trainer, run_dir, report, args)
        cfg = Train.config_from_args(args)
        data = datasets.load(cfg.dataset)
        cfg = cfg.replace(chips=Train.chips_for(args, cfg, data))
        out = Path(args.out or Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
        if (out / "checkpoint.ohmckpt").exists():
            raise ValueError(f"{out} already holds a run; use --resume {out} or another --out")
        with open_backend(args.backend, cfg.config, cfg.chips) as dev:
            trainer = Trainer(cfg, dev, data, out_dir=out, progress=not args.no_progress, log=log)
            trainer.save()
            m = cfg.model
            inputs = ("standardized (training split's mean and std)" if cfg.standardize
                      else "as given (--no-standardize)")
            log(f"ohmflow train: {'-'.join(map(str, trainer.sizes))} MLP on {cfg.dataset} "
                f"({len(data.x_train)} train / {len(data.x_test)} test, inputs {inputs}), "
                f"backend {dev.backend()}, config {dev.config.name}: {trainer.map.describe()}; "
                f"{m.model} (dw_min {m.dw_min}), algorithm {cfg.algorithm} "
                f"{cfg.algorithm_options or ''}, lr {cfg.lr}, batch {cfg.batch}, seed "
                f"{cfg.seed}; run directory {out}")
            return Train._finish(trainer, out, report, args)

    @staticmethod
    def chips_for(args, cfg, data) -> int:
        """``--chips``, or the default: as many as the network needs on the twin, else one per
        listed board (refusing a network that does not fit with the mapper's message)."""
        from ohmflow.emulator.config import get_config
        from ohmflow.host.chips import backends_of
        from ohmflow.host.mapping import NetworkMap
        from ohmflow.host.mlp import network_arrays

        sizes = [data.features, *cfg.hidden, data.classes]
        shapes, names = network_arrays(sizes, cfg.algo)
        chips = args.chips
        if chips is not None and chips < 1:
            raise ValueError(f"--chips must be a positive integer, got {chips}")
        if chips is None:
            chips = None if args.backend == "twin" else len(backends_of(args.backend, None))
        return NetworkMap(get_config(cfg.config), shapes, chips, cfg.mapping, names).chips

    @staticmethod
    def _finish(trainer, out: Path, report, args) -> int:
        from ohmflow.host import projection

        if args.report and Path(args.report).suffix not in (".md", ".json"):
            raise ValueError(f"--report must name a .md or .json file, got {args.report!r}")
        analog = projection.project(trainer.ledger, args.analog_profile)
        digital = projection.project(trainer.ledger, args.digital_profile)
        if analog.kind != "analog" or digital.kind != "digital":
            raise ValueError(f"--analog-profile must name an analog and --digital-profile a "
                             f"digital profile; got {analog.kind} {analog.profile!r} and "
                             f"{digital.kind} {digital.profile!r}")
        trainer.run()
        text = report.write_run_report(out, trainer)
        print("\n" + text)
        analog = projection.project(trainer.ledger, args.analog_profile)
        digital = projection.project(trainer.ledger, args.digital_profile)
        print("\nprojected hardware cost of the training steps (docs/projection.md):")
        print(projection.format_projection(analog, digital, trainer.ledger))
        if args.report:
            names = dict.fromkeys([args.analog_profile, "rpu", "hermes", args.digital_profile])
            prs = [projection.project(trainer.ledger, n) for n in names]
            path = projection.write_report(args.report, trainer.ledger, prs)
            png = projection.plot_projection(path.with_suffix(".png"), prs)
            print(f"projection report: {path}, plot: {png}")
        sps = [h["analog_samples_per_s"] for h in trainer.history if h["analog_samples_per_s"]]
        if sps:
            print(f"\nanalog training speed: {sum(sps) / len(sps):,.0f} samples/s "
                  f"(mean over epochs); results in {out}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
