"""``ohmflow train``: its options, their checks, and the run (analog SGD beside the float
baseline, with checkpoints and a report). `ohmflow.host.cli` registers it."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
from pathlib import Path

from ohmflow.host import chip_range
from ohmflow.host.cli import add_backend_arguments, check_backend, open_backend


def _explicit_flags(args) -> set[str]:
    """The train options given on the command line, by TrainConfig/DeviceModel field name."""
    return {k for k, v in vars(args).items() if v is not None and not k.startswith("_")}


#: device-model options: CLI flag -> DeviceModel field (aihwkit names)
MODEL_PARAMS = ("dw_min", "dw_min_dtod", "dw_min_std", "up_down", "up_down_dtod", "w_max",
                "w_min", "w_max_dtod", "w_min_dtod", "gamma_up", "gamma_down", "gamma_up_dtod",
                "gamma_down_dtod", "A_up", "A_down", "a", "b", "pow_gamma", "pow_gamma_dtod",
                "pow_up_down", "pow_up_down_dtod")
#: list-valued device parameters (PiecewiseStep's nodes), comma- or space-separated
MODEL_LISTS = ("piecewise_up", "piecewise_down")
#: the TrainConfig fields of the time and temperature options (docs/numerics.md §11)
TIME_FLAGS = ("temperature", "drift_nu_mean", "drift_nu_dtod", "lifetime", "lifetime_dtod",
              "batch_time")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got "
                                         f"{text!r}") from None


def _widths(text: str) -> list[int]:
    try:
        w = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be integers, got {text!r}") from None
    if any(v < 1 for v in w):
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return w


# ----- ohmflow train: --device-preset / --device-config -----
def add_device_source_arguments(p: argparse.ArgumentParser) -> None:
    """The device a run starts from: one of aihwkit's presets or a device config file."""
    from ohmflow.emulator.presets import PRESETS

    usable = ", ".join(n for n, pr in PRESETS.items() if not pr.refused)
    g = p.add_argument_group(
        "device preset or device config (docs/devices.md)",
        "The device parameter flags below override single values of either (as aihwkit's "
        "ReRamSBPresetDevice(dw_min=...) does); --device-model conflicts with both.")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--device-preset", metavar="NAME",
                     help=f"one of aihwkit's device presets: {usable}; sets the device and "
                     "aihwkit's preset periphery (out_bound 20, out_noise 0.1, desired_bl 31) "
                     "unless --out-bound/--out-noise/--desired-bl are given")
    src.add_argument("--device-config", metavar="FILE",
                     help="a device config TOML, as written by ohmflow fit-device")


def device_source(args):
    """(DeviceModel or None, TrainConfig periphery fields) of --device-preset/--device-config."""
    from ohmflow.emulator.presets import get_preset, load_device_config

    preset = getattr(args, "device_preset", None)
    path = getattr(args, "device_config", None)
    if (preset or path) and args.device_model is not None:
        given = f"--device-preset {preset}" if preset else f"--device-config {path}"
        raise ValueError(f"--device-model conflicts with {given}, which sets the device model; "
                         "give one of them (parameter flags such as --dw-min may override "
                         "single values)")
    if preset:
        p = get_preset(preset)
        periphery = {"out_bound": p.out_bound, "out_noise": p.out_noise,
                     "desired_bl": p.desired_bl}
        return p.device, {k: v for k, v in periphery.items() if getattr(args, k) is None}
    if path:
        return load_device_config(Path(path).expanduser().resolve()), {}
    return None, {}


def device_source_fields(args) -> set[str]:
    """The TrainConfig fields --device-preset/--device-config set (for --resume's checks)."""
    if getattr(args, "device_preset", None):
        return {"device_model", "out_bound", "out_noise", "desired_bl"}
    if getattr(args, "device_config", None):
        return {"device_model"}
    return set()


def device_notes(args, cfg) -> list[str]:
    """What a preset approximates and what the run's chip config does to its device (raises
    ValueError if the chip cannot hold the device at all)."""
    from ohmflow.emulator.config import get_config
    from ohmflow.emulator.presets import get_preset, representation_notes

    notes = []
    if getattr(args, "device_preset", None):
        p = get_preset(args.device_preset)
        notes += [f"{p.name} approximates aihwkit's {p.aihwkit_device}: {a}"
                  for a in p.approximations]
    return notes + representation_notes(get_config(cfg.config), cfg.model)


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
        add_device_source_arguments(p)
        g = p.add_argument_group("device model (aihwkit names; defaults: aihwkit's)")
        g.add_argument("--device-model", help="ConstantStep (default), LinearStep, SoftBounds, "
                       "ExpStep, PowStep or PiecewiseStep (the last three: the twin and the rv32 "
                       "engine, not the tile engine)")
        for name in MODEL_PARAMS:
            flag = {"a": "exp-a", "b": "exp-b"}.get(name, name.replace("_", "-"))
            g.add_argument("--" + flag, dest=name, type=float, metavar="X",
                           help={"a": "ExpStep's a", "b": "ExpStep's b"}.get(name))
        for name in MODEL_LISTS:
            g.add_argument("--" + name.replace("_", "-"), type=_floats, metavar="X,X,...",
                           help="PiecewiseStep's node values")
        g.add_argument("--out-bound", type=float, help="ADC full scale (default 12)")
        g.add_argument("--out-noise", type=float, help="read noise, as aihwkit (default 0.06)")
        g.add_argument("--desired-bl", type=int, help="maximum pulse slots (default 31)")
        g.add_argument("--max-bm-rounds", type=int,
                       help="bound management: halvings of a saturated input (0: off; default 4)")
        Train.add_algorithm_arguments(p)
        g = p.add_argument_group("time and temperature (docs/numerics.md §11; the twin backend)")
        g.add_argument("--temperature", type=int, metavar="K",
                       help="chip temperature in kelvin, 200 ... 450 (default 300: the reference, "
                       "no effect)")
        g.add_argument("--drift-nu", dest="drift_nu_mean", type=float, metavar="NU",
                       help="mean drift exponent: w(t) = w(t0) (t/t0)^-nu, t0 = 20 s after "
                       "programming (aihwkit's PCM: 0.05 ... 0.1; default 0: no drift)")
        g.add_argument("--drift-nu-dtod", type=float, metavar="SIGMA",
                       help="device-to-device standard deviation of nu (default 0)")
        g.add_argument("--lifetime", type=float, metavar="SECONDS",
                       help="decay toward 0 with this lifetime (capacitor-like devices; default "
                       "0: no decay)")
        g.add_argument("--lifetime-dtod", type=float, metavar="SIGMA",
                       help="relative device-to-device spread of the decay rate (default 0)")
        g.add_argument("--batch-time", type=float, metavar="SECONDS",
                       help="simulated time of one batch, advanced after each when drift or "
                       "decay is on (default 0.001)")
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
        g.add_argument("--digital-profile", default="h100-bf16-measured",
                       help="digital profile to compare with (h100-bf16-measured: 40 %% of peak "
                       "and 2 us a kernel, default; h100-bf16: peak; h100-int8[-measured])")

    @staticmethod
    def validate(args):
        """Check every option before a run folder is written; raises one ValueError naming the
        option and what would work. Returns the new run's TrainConfig (None for --resume)."""
        from ohmflow.emulator.config import SHAPE_ENGINES, get_config, has_time
        from ohmflow.host import projection
        from ohmflow.host.chips import backends_of

        check_backend(args.backend)
        if args.report and Path(args.report).suffix not in (".md", ".json"):
            raise ValueError(f"--report must name a .md or .json file, got {args.report!r}")
        for opt, name, kind in (("--analog-profile", args.analog_profile, "analog"),
                                ("--digital-profile", args.digital_profile, "digital")):
            try:
                profile = projection.get_profile(name)
            except ValueError as e:
                raise ValueError(f"{opt}: {e}") from None
            if profile.kind != kind:
                article = "an" if kind == "analog" else "a"
                raise ValueError(f"{opt} must name {article} {kind} profile, got the "
                                 f"{profile.kind} profile {name!r}")
        if args.epochs is not None and args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        if args.resume:
            if not (Path(args.resume) / "checkpoint.ohmckpt").exists():
                raise ValueError(f"--resume {args.resume}: no checkpoint.ohmckpt there; name the "
                                 "run directory of an earlier ohmflow train")
            return None
        if args.chips is not None and args.chips < 1:
            raise ValueError(f"--chips must be a positive integer, got {args.chips}")
        backends_of(args.backend, args.chips)
        cfg = Train.config_from_args(args)
        chip = get_config(cfg.config)
        if (cfg.model.is_table and chip.engine not in SHAPE_ENGINES
                and any(b.strip() != "twin" for b in args.backend.split(","))):
            raise ValueError(
                f"the {cfg.model.model} device model needs the chip's step-shape tables, which "
                f"the {chip.engine} engine of config {chip.name!r} does not hold (docs/boards.md):"
                f" use --backend twin, a config of the {' or '.join(SHAPE_ENGINES)} engine "
                f"(--config icebreaker), or a ConstantStep, LinearStep or SoftBounds device")
        physics = [n for n in TIME_FLAGS if getattr(args, n) is not None]
        if (physics and not has_time(chip)
                and any(b.strip() != "twin" for b in args.backend.split(","))):
            flags = ", ".join("--" + n.replace("_mean", "").replace("_", "-") for n in physics)
            raise ValueError(f"{flags}: the {chip.engine} engine of config {chip.name!r} has no "
                             f"chip time or temperature (config.TIME_ENGINES, TIME_UNFIT); use "
                             f"--backend twin")
        chip_range.check(cfg, get_config(cfg.config), _explicit_flags(args))
        p = Path(cfg.dataset)  # dataset names are checked where they are loaded (datasets)
        if p.suffix in (".npz", ".csv") and not p.is_file():
            raise ValueError(f"dataset file {p} does not exist")
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"--out {args.out} is a file; name a directory")
        return cfg

    # ----- training algorithms and device presets (ohmflow.host.algorithms) -----
    @staticmethod
    def add_algorithm_arguments(p: argparse.ArgumentParser) -> None:
        from ohmflow.host.algorithms import ALGORITHMS

        g = p.add_argument_group("training algorithm (docs/algorithms.md; aihwkit's names)")
        g.add_argument("--algorithm", metavar="NAME", help="update rule: " + ", ".join(
            f"{n} ({c.aihwkit.split(' ')[0]})" for n, c in ALGORITHMS.items()) + "; default sgd")
        g.add_argument("--algorithm-option", dest="algorithm_option", action="append",
                       metavar="KEY=VALUE", help="an option of the algorithm, e.g. "
                       "transfer_every=2 (repeat for several; names and defaults as aihwkit's)")

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
    def config_from_args(args):
        """The TrainConfig the explicit options ask for (defaults elsewhere)."""
        from ohmflow.emulator.config import DeviceModel
        from ohmflow.host.trainer import TrainConfig

        base, periphery = device_source(args)
        model = base or DeviceModel(model=args.device_model or "ConstantStep")
        changes = {k: getattr(args, k) for k in MODEL_PARAMS + MODEL_LISTS
                   if getattr(args, k) is not None}
        model = model.replace(**changes)
        kw = {"device_model": dataclasses.asdict(model), **periphery}
        for name in ("dataset", "config", "out_bound", "out_noise", "desired_bl", "epochs", "lr",
                     "batch", "seed", "fab_seed", "max_bm_rounds", "max_input_size",
                     "max_output_size", *TIME_FLAGS):
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
                             "max_input_size", "max_output_size", "chips", *TIME_FLAGS)
                 if getattr(args, k) is not None}
        if args.no_standardize:
            given.add("standardize")
        if args.device_model is not None or args.device_preset is not None or any(
                getattr(args, k) is not None for k in MODEL_PARAMS + MODEL_LISTS):
            given.add("device_model")
        given |= device_source_fields(args)
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
        Train.validate(args)
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
            args._resume_hint = f"continue with: ohmflow train --resume {run_dir}"
            dev = open_backend(args.backend, stored.config, stored.chips)
            with dev:
                trainer = Trainer.resume(run_dir, dev, epochs=args.epochs,
                                         progress=not args.no_progress, log=log)
                log(f"resuming {run_dir} after epoch {trainer.epoch} of {trainer.cfg.epochs}")
                return Train._finish(trainer, run_dir, report, args)
        cfg = Train.config_from_args(args)
        notes = device_notes(args, cfg)
        data = datasets.load(cfg.dataset)
        cfg = cfg.replace(chips=Train.chips_for(args, cfg, data))
        out = Path(args.out or Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
        if (out / "checkpoint.ohmckpt").exists():
            raise ValueError(f"{out} already holds a run; use --resume {out} or another --out")
        args._resume_hint = f"continue with: ohmflow train --resume {out}"
        with open_backend(args.backend, cfg.config, cfg.chips) as dev:
            trainer = Trainer(cfg, dev, data, out_dir=out, progress=not args.no_progress, log=log)
            trainer.save()
            m = cfg.model
            inputs = ("standardized (training split's mean and std)" if cfg.standardize
                      else "as given (--no-standardize)")
            log(f"ohmflow train: {'-'.join(map(str, trainer.sizes))} MLP on {cfg.dataset} "
                f"({len(data.x_train)} train / {len(data.x_test)} test, inputs {inputs}), "
                f"backend {dev.backend()}, config {dev.config.name}: {trainer.map.describe()}; "
                f"{Train.device_label(args, m)}, algorithm {cfg.algorithm} "
                f"{cfg.algorithm_options or ''}, lr {cfg.lr}, batch {cfg.batch}, seed "
                f"{cfg.seed}; run directory {out}")
            for note in notes:
                log(f"device: {note}")
            return Train._finish(trainer, out, report, args)

    @staticmethod
    def device_label(args, m) -> str:
        """The device as the start line names it."""
        label = f"{m.model} (dw_min {m.dw_min})"
        if getattr(args, "device_preset", None):
            return f"{args.device_preset}: {label}"
        if getattr(args, "device_config", None):
            return f"device config {args.device_config}: {label}"
        return label

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
        if chips is None:
            chips = None if args.backend == "twin" else len(backends_of(args.backend, None))
        return NetworkMap(get_config(cfg.config), shapes, chips, cfg.mapping, names).chips

    @staticmethod
    def _finish(trainer, out: Path, report, args) -> int:
        from ohmflow.host import projection

        first = trainer.epoch
        trainer.run()
        text = report.write_run_report(out, trainer)
        print("\n" + text)
        analog = projection.project(trainer.ledger, args.analog_profile)
        digital = projection.project(trainer.ledger, args.digital_profile)
        print("\nprojected hardware cost of the training steps (docs/projection.md):")
        print(projection.format_projection(analog, digital, trainer.ledger))
        print("regime: " + projection.regime_sentence(trainer.ledger, analog, digital))
        if args.report:
            names = dict.fromkeys([args.analog_profile, "rpu", "hermes", args.digital_profile,
                                   "h100-bf16"])
            prs = [projection.project(trainer.ledger, n) for n in names]
            path = projection.write_report(args.report, trainer.ledger, prs)
            png = projection.plot_projection(path.with_suffix(".png"), prs)
            print(f"projection report: {path}, plot: {png}")
        sps = [h["analog_samples_per_s"] for h in trainer.history[first:]
               if h["analog_samples_per_s"]]
        if sps:
            done = (f"epoch {first + 1}" if first + 1 == trainer.epoch else
                    f"epochs {first + 1}-{trainer.epoch}")
            span = f"{done}, this session" if first else "mean over epochs"
            print(f"\nanalog training speed on backend {trainer.device.info().backend}: "
                  f"{sum(sps) / len(sps):,.0f} samples/s ({span}); results in {out}")
        return 0

