"""Several chips of one config, driven at once.

`Chips` holds one `Device` per chip and one worker thread per chip: the jobs of one chip run in
order on its worker, jobs of different chips at the same time. A link device waits on its socket
or serial port with the GIL released, so N emulator servers (one process each) compute on N cores
while the host waits for all of them. Devices that compute in the host's own thread holding the
GIL (`Device.concurrent` false: the twin) gain nothing from a thread, so their jobs run in the
calling thread, in job order, without a hand-off per job.

Jobs whose results are not needed (pulse updates) may be `post`-ed inside an `overlapped` block:
they go to the chips' workers at once and the block's end waits for them, so a chip starts a
block's update while the host still computes the next block's codes, and goes on to the next
layer's update without waiting for the other chips. Each chip's jobs keep their order, so every
chip receives the same commands in the same order as with `run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from contextlib import contextmanager
from typing import TypeVar

from ohmflow.emulator.config import ChipConfig, get_config
from ohmflow.host.device import Device

T = TypeVar("T")

__all__ = ["Chips", "as_chips", "open_chips"]


class Chips:
    """Devices of one config (chip 0, 1, ...) with a worker thread each when there are several
    and they compute concurrently (`Device.concurrent`).

    ``owned``: closing the set closes the devices (those opened by `open_chips`).
    """

    def __init__(self, devices: Sequence[Device], owned: bool = True):
        if not devices:
            raise ValueError("a chip set needs at least one device")
        fp = devices[0].config.fingerprint()
        for k, d in enumerate(devices):
            if d.config.fingerprint() != fp:
                raise ValueError(f"chip {k} has config {d.config.name!r}, chip 0 "
                                 f"{devices[0].config.name!r}: the chips of a network must share "
                                 "one config")
        self.devices = list(devices)
        self.owned = owned
        threads = len(devices) > 1 and any(d.concurrent for d in devices)
        self._workers = ([ThreadPoolExecutor(1, thread_name_prefix=f"chip{k}")
                          for k in range(len(devices))] if threads else None)
        #: futures of jobs posted inside an `overlapped` block (None outside one)
        self._posted: list[Future] | None = None

    @property
    def config(self) -> ChipConfig:
        return self.devices[0].config

    @property
    def inline(self) -> bool:
        """Jobs run in the calling thread, in job order (one chip, or chips that compute
        holding the GIL)."""
        return self._workers is None

    def __len__(self) -> int:
        return len(self.devices)

    def __getitem__(self, k: int) -> Device:
        return self.devices[k]

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices)

    def run(self, jobs: Iterable[tuple[int, Callable[[], T]]]) -> list[T]:
        """Run ``(chip, fn)`` jobs: in order per chip, chips at once; results in job order.

        ``jobs`` may be a generator: each job starts as soon as it is produced. Every job is
        waited for; the first failure (in job order) is then raised.
        """
        if self._workers is None:
            if len(self.devices) == 1:
                return [fn() for _, fn in jobs]
            return _run_inline(jobs)
        futures = self._submit(jobs)
        _raise_first([f.exception() for f in futures])
        return [f.result() for f in futures]

    def post(self, jobs: Iterable[tuple[int, Callable[[], object]]]) -> None:
        """Run jobs whose results are not needed: inside `overlapped` on the workers without
        waiting (the block's end waits for them), otherwise as `run`."""
        if self._workers is None or self._posted is None:
            self.run(jobs)
            return
        self._posted.extend(self._submit(jobs))

    @contextmanager
    def overlapped(self) -> Iterator[None]:
        """A block whose `post`-ed jobs are waited for at its end; the first failure among them
        (in posting order) is then raised, unless the block itself raised. Nested blocks belong
        to the outermost."""
        if self._posted is not None:
            yield
            return
        self._posted = []
        try:
            yield
        except BaseException:
            wait_all(self._posted)
            raise
        finally:
            posted, self._posted = self._posted, None
        _raise_first([f.exception() for f in posted])

    def _submit(self, jobs: Iterable[tuple[int, Callable[[], T]]]) -> list[Future]:
        """Queue jobs on their chips' workers; if producing a job fails, the queued ones are
        waited for before the failure is raised."""
        futures: list[Future] = []
        try:
            for chip, fn in jobs:
                futures.append(self._workers[chip].submit(fn))
        except BaseException:
            wait_all(futures)
            raise
        return futures

    def each(self, fn: Callable[[Device], T]) -> list[T]:
        """``fn(device)`` on every chip at once; results by chip."""
        return self.run([(k, (lambda d=d: fn(d))) for k, d in enumerate(self.devices)])

    def backend(self) -> str:
        """The backend name of the chips (``twin``, ``verilator``, ...)."""
        return self.devices[0].info().backend

    def close(self) -> None:
        if self._workers is not None:
            for w in self._workers:
                w.shutdown(wait=True)
            self._workers = None
        if self.owned:
            errors = []
            for d in self.devices:
                try:
                    d.close()
                except Exception as e:  # close every chip, then report the first failure
                    errors.append(e)
            if errors:
                raise errors[0]

    def __enter__(self) -> Chips:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _raise_first(errors: list[BaseException | None]) -> None:
    for e in errors:
        if e is not None:
            raise e


def _run_inline(jobs: Iterable[tuple[int, Callable[[], T]]]) -> list[T]:
    """`Chips.run` in the calling thread: every job runs, then the first failure is raised."""
    results, error = [], None
    for _, fn in jobs:
        try:
            results.append(fn())
        except Exception as e:  # the other chips' jobs still run, as on worker threads
            results.append(None)
            error = error or e
    if error is not None:
        raise error
    return results


def as_chips(device: Device | Chips) -> Chips:
    """A `Chips` for a device or a chip set (a single device is wrapped, not owned)."""
    if isinstance(device, Chips):
        return device
    if isinstance(device, Device):
        return Chips([device], owned=False)
    raise TypeError(f"expected a Device or Chips, got {type(device).__name__}")


def backends_of(backend: str, chips: int | None) -> list[str]:
    """One backend string per chip: ``twin``/``verilator`` repeated, or a list of ports/URLs."""
    parts = [p.strip() for p in backend.split(",")]
    if any(not p for p in parts):
        raise ValueError(f"--backend {backend!r} has an empty entry; give a comma-separated list "
                         "of serial ports or URLs, one per chip")
    if len(parts) > 1:
        if chips is not None and chips != len(parts):
            raise ValueError(f"--backend names {len(parts)} boards but --chips is {chips}; one "
                             "port or URL per chip")
        if any(p in ("twin", "verilator") for p in parts):
            raise ValueError("a list of backends names boards (serial ports or URLs); for several "
                             "twin or verilator chips use --chips N")
        return parts
    if backend not in ("twin", "verilator") and chips not in (None, 1):
        raise ValueError(f"--chips {chips} needs one board each: give --backend a comma-separated "
                         "list of serial ports or URLs")
    return [backend] * (chips or 1)


def open_chips(backend: str, config: ChipConfig | str, chips: int = 1) -> Chips:
    """Open ``chips`` devices of ``config`` on ``backend`` (verilator servers start at once)."""
    from ohmflow.host.device import open_device

    cfg = get_config(config)
    specs = backends_of(backend, chips)
    opened: list[Device | None] = [None] * len(specs)

    def start(k: int) -> None:
        opened[k] = open_device(specs[k], cfg)

    try:
        if len(specs) > 1 and specs[0] != "twin":
            with ThreadPoolExecutor(len(specs)) as pool:
                for f in [pool.submit(start, k) for k in range(len(specs))]:
                    f.result()
        else:
            for k in range(len(specs)):
                start(k)
    except BaseException:
        for d in opened:
            if d is not None:
                d.close()
        raise
    return Chips(opened)
