"""``ohmflow sweep SPEC.toml``: a grid or list of ``ohmflow train`` runs, resumable, locally or on
Ray.

A spec's keys are ``ohmflow train`` option names (``lr``, ``device-model``, ``dw-min``,
``backend``, ``config``, ``dataset``, ``seed``, ...; dashes or underscores), so every train
option is sweepable. Tables::

    [sweep]          out = "sweeps/name"   (default: sweeps/<spec file stem>), jobs = 2
    [fixed]          options every run gets: epochs = 1, hidden = 8, no-float = true
    [grid]           options swept as a cartesian product: lr = [0.03, 0.1], seed = [0, 1, 2]
    [[runs]]         optional explicit option sets; each is combined with the whole grid

Each run is ``ohmflow train ARGS --out <sweep>/runs/<id>`` in a worker process (a local process
pool, or Ray tasks with ``--ray auto|ADDRESS``); ``<id>`` is a hash of its arguments, so a
changed spec never mistakes one run for another. Run again, a sweep skips the runs whose
``summary.json`` exists and resumes the others from their checkpoints (``--resume``). The
results table (``results.csv``, ``results.md``) and plots (``acc_vs_<option>.png``) are written
from the run folders; `ohmflow.host.sweep_report` makes them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import itertools
import json
import os
import sys
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path

#: train options a sweep sets itself, per run
MANAGED = ("out", "resume", "no-progress")
SPEC_TABLES = ("sweep", "fixed", "grid", "runs")
SWEEP_KEYS = ("out", "jobs")


class SpecError(ValueError):
    """A sweep spec that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: its options (spec keys -> values) and its train arguments."""

    options: dict
    args: tuple[str, ...]
    id: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(json.dumps(self.args).encode()).hexdigest()[:10]
        object.__setattr__(self, "id", digest)


@dataclass(frozen=True)
class Spec:
    path: Path
    out: Path
    jobs: int
    swept: tuple[str, ...]  #: option names that take more than one value
    runs: tuple[Run, ...]


class _Parser(argparse.ArgumentParser):
    """The ``ohmflow train`` parser, raising instead of exiting."""

    def error(self, message):
        raise ValueError(message)


def train_parser() -> argparse.ArgumentParser:
    from ohmflow.host.train_command import Train

    p = _Parser(prog="ohmflow train", add_help=False)
    Train.add_arguments(p)
    return p


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def to_args(options: dict) -> list[str]:
    """``ohmflow train`` arguments of a run's options (``true``: a bare flag; a list: values)."""
    args: list[str] = []
    for key, value in options.items():
        if value is False:
            continue
        args.append(_flag(key))
        if value is True:
            continue
        values = value if isinstance(value, list) else [value]
        args += [str(v) for v in values]
    return args


def load_spec(path: str | Path, out: str | Path | None = None) -> Spec:
    """Read, expand and validate a spec: every run's arguments are parsed by ``ohmflow train``'s
    parser and checked by `ohmflow.host.train_command.Train.validate` before anything runs."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise SpecError(f"cannot read sweep spec {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"sweep spec {path} is not valid TOML: {e}") from None
    unknown = sorted(set(raw) - set(SPEC_TABLES))
    if unknown:
        raise SpecError(f"sweep spec {path}: unknown table(s) {unknown}; use "
                        f"{', '.join(SPEC_TABLES)}")
    meta = raw.get("sweep", {})
    fixed = raw.get("fixed", {})
    grid = raw.get("grid", {})
    listed = raw.get("runs", [{}]) or [{}]
    for name, table in (("sweep", meta), ("fixed", fixed), ("grid", grid)):
        if not isinstance(table, dict):
            raise SpecError(f"sweep spec {path}: [{name}] must be a table")
    if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
        raise SpecError(f"sweep spec {path}: runs must be an array of tables ([[runs]])")
    bad = sorted(set(meta) - set(SWEEP_KEYS))
    if bad:
        raise SpecError(f"sweep spec {path}: unknown [sweep] key(s) {bad}; use "
                        f"{', '.join(SWEEP_KEYS)}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"sweep spec {path}: grid option {key!r} must be a non-empty array, "
                            f"got {values!r}")
    jobs = meta.get("jobs", os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SpecError(f"sweep spec {path}: [sweep] jobs must be an integer >= 1, got {jobs!r}")
    keys = [k for k in grid]
    runs = []
    for extra in listed:
        for combo in itertools.product(*(grid[k] for k in keys)):
            runs.append({**fixed, **extra, **dict(zip(keys, combo, strict=True))})
    names = {k.replace("_", "-") for r in runs for k in r}
    for m in MANAGED:
        if m in names:
            raise SpecError(f"sweep spec {path}: option {m!r} is set by the sweep for each run; "
                            "remove it")
    parser = train_parser()
    checked: list[Run] = []
    seen: dict[str, int] = {}
    for n, options in enumerate(runs):
        args = tuple(to_args(options))
        _validate(parser, args, f"sweep spec {path}, run {n + 1} ({' '.join(args)})")
        run = Run(options, args)
        if run.id in seen:
            raise SpecError(f"sweep spec {path}: runs {seen[run.id] + 1} and {n + 1} are the same "
                            f"run ({' '.join(args)})")
        seen[run.id] = n
        checked.append(run)
    swept = [k for k in dict.fromkeys(k for r in runs for k in r)
             if len({json.dumps(r.get(k)) for r in runs}) > 1]
    folder = Path(out) if out is not None else Path(meta.get("out", Path("sweeps") / path.stem))
    return Spec(path, folder, jobs, tuple(swept), tuple(checked))


def _validate(parser: argparse.ArgumentParser, args: tuple[str, ...], where: str) -> None:
    from ohmflow.host.train_command import Train

    try:
        ns = parser.parse_args(list(args))
        Train.validate(ns)
    except ValueError as e:
        raise SpecError(f"{where}: {e}") from None


# ----------------------------------------------------------------------------------- one run
def status(run_dir: Path) -> str:
    """``done`` (summary written), ``partial`` (a checkpoint to resume) or ``new``."""
    if (run_dir / "summary.json").exists():
        return "done"
    if (run_dir / "checkpoint.ohmckpt").exists():
        return "partial"
    return "new"


def run_one(args: tuple[str, ...], run_dir: str, cwd: str | None = None) -> dict:
    """Run (or resume) one training run through ``ohmflow train``; never raises.

    ``cwd``: the directory relative paths in ``args`` are taken from (a Ray worker starts in its
    own). Returns ``{"rc", "error", "resumed"}``; the run's output goes to ``train.log`` in its
    folder.
    """
    from ohmflow.host import cli

    if cwd is not None:
        os.chdir(cwd)
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    resumed = status(folder) == "partial"
    where = ["--resume", str(folder)] if resumed else ["--out", str(folder)]
    argv = ["train", *args, *where, "--no-progress"]
    err = io.StringIO()
    with open(folder / "train.log", "a") as log:
        log.write(f"$ ohmflow {' '.join(argv)}\n")
        log.flush()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(err):
                rc = cli.main(argv)
        except BaseException:  # noqa: BLE001 - a crashed run is reported, never lost
            err.write(traceback.format_exc())
            rc = 1
        log.write(err.getvalue())
    error = ""
    if rc != 0:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        error = lines[-1] if lines else f"ohmflow train exited with code {rc}"
        (folder / "error.txt").write_text(err.getvalue() or error + "\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            (folder / "error.txt").unlink()
    return {"rc": rc, "error": error, "resumed": resumed}


# ----------------------------------------------------------------------------------- executors
def _local(todo, spec: Spec, jobs: int, done_cb) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if jobs == 1:
        for run in todo:
            done_cb(run, run_one(run.args, str(spec.out / "runs" / run.id)))
        return
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, run.args, str(spec.out / "runs" / run.id)): run
                   for run in todo}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 - a dead worker is a failed run
                result = {"rc": 1, "error": f"worker failed: {type(e).__name__}: {e}",
                          "resumed": False}
            done_cb(futures[fut], result)


def _ray(todo, spec: Spec, address: str, done_cb) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'ohmflow[ray]'") from None
    started = not ray.is_initialized()
    if started:
        opts = {"include_dashboard": False, "log_to_driver": False}
        try:
            ray.init(address=address, **opts)
        except ConnectionError:
            if address != "auto":
                raise ValueError(f"--ray {address}: no Ray cluster answers there") from None
            ray.init(**opts)  # no cluster running on this machine: start a local one
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_one)
        cwd = os.getcwd()
        refs = {task.remote(run.args, str((spec.out / "runs" / run.id).resolve()), cwd): run
                for run in todo}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                result = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - a lost task is a failed run
                result = {"rc": 1, "error": f"Ray task failed: {type(e).__name__}: {e}",
                          "resumed": False}
            done_cb(refs[ready[0]], result)
    finally:
        if started:
            ray.shutdown()


def run_sweep(spec: Spec, *, jobs: int | None = None, ray_address: str | None = None,
              progress: bool = True, log=print) -> list[dict]:
    """Run the runs of ``spec`` that are not done; write the table and plots; return the rows."""
    from ohmflow.host import sweep_report

    spec.out.mkdir(parents=True, exist_ok=True)
    (spec.out / "spec.toml").write_text(spec.path.read_text())
    outcome: dict[str, dict] = {}
    todo = []
    for run in spec.runs:
        if status(spec.out / "runs" / run.id) == "done":
            outcome[run.id] = {"rc": 0, "error": "", "resumed": False, "skipped": True}
        else:
            todo.append(run)
    n_partial = sum(status(spec.out / "runs" / r.id) == "partial" for r in todo)
    where = f"Ray ({ray_address})" if ray_address else f"{jobs or spec.jobs} local process(es)"
    log(f"ohmflow sweep: {len(spec.runs)} runs in {spec.out}: {len(spec.runs) - len(todo)} done "
        f"(skipped), {n_partial} to resume, {len(todo) - n_partial} new; on {where}")
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="runs", unit="run", dynamic_ncols=True, file=sys.stderr)

    def done(run: Run, result: dict) -> None:
        outcome[run.id] = result
        if result["rc"] != 0:
            log(f"run {run.id} failed: {result['error']}")
        if bar is not None:
            bar.update(1)

    try:
        if todo and ray_address:
            _ray(todo, spec, ray_address, done)
        elif todo:
            _local(todo, spec, jobs or spec.jobs, done)
    finally:
        if bar is not None:
            bar.close()
    rows = sweep_report.collect(spec, outcome)
    paths = sweep_report.write(spec, rows)
    failed = [r for r in rows if r["status"] == "failed"]
    log(f"results: {', '.join(str(p) for p in paths)}")
    if failed:
        log(f"{len(failed)} of {len(rows)} runs failed (errors in the table and in "
            "runs/<id>/error.txt); run the sweep again to retry them")
    return rows


# ----------------------------------------------------------------------------------- command
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep: [fixed], [grid], [[runs]] of "
                   "ohmflow train options (see docs/sweeps.md)")
    p.add_argument("--out", help="sweep folder (default: the spec's [sweep] out, or "
                   "sweeps/<spec name>)")
    p.add_argument("--jobs", type=int, help="local worker processes (default: the spec's, or "
                   "the number of cores)")
    p.add_argument("--ray", metavar="ADDRESS", help="run on Ray: 'auto' (a running cluster, or "
                   "a new local one) or a cluster address such as ray://HOST:10001")
    p.add_argument("--dry-run", action="store_true", help="list the runs and stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.ray is not None and args.jobs is not None:
        raise ValueError("--jobs sets local worker processes; Ray schedules its own (drop one)")
    spec = load_spec(args.spec, args.out)
    if args.dry_run:
        for r in spec.runs:
            print(f"{r.id}  {status(spec.out / 'runs' / r.id):<7}  {' '.join(r.args)}")
        return 0
    args._resume_hint = (f"run `ohmflow sweep {args.spec}` again (same --out): finished runs "
                         "are skipped, interrupted ones resume from their checkpoints")
    rows = run_sweep(spec, jobs=args.jobs, ray_address=args.ray,
                     progress=not args.no_progress)
    return 1 if any(r["status"] == "failed" for r in rows) else 0
