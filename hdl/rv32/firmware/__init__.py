"""The firmware of the ``rv32`` engine: generated header, compilation and the image in block RAM.

The firmware (C sources beside this file) runs the protocol (``docs/protocol.md``) and the
arithmetic (``docs/numerics.md``) on `ohmflow.hdl.rv32.core.RV32Core`. Everything it knows of the
chip comes from one generated header, ``chip.h`` (`chip_header`): the config's sizes and formats,
the protocol table's constants, field offsets and element widths, the run-time defaults, the
nominal device map, the INFO reply, the sqrt table and the address map of
`ohmflow.hdl.rv32.core_map`.

`build(cfg)` compiles it with Zig's clang for RV32I + Zmmul (the ``ziglang`` package from PyPI:
nothing to install on the system) and caches the result under ``$OHMFLOW_CACHE/firmware/<key>``
(default ``~/.cache/ohmflow``), keyed by the sources, the header, the flags and the compiler.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ohmflow.emulator import physics, prng
from ohmflow.emulator import protocol as P
from ohmflow.emulator.config import (
    ACCEL_FRAC,
    C2C_FRAC,
    C2C_SHIFT,
    DRIFT_T0_MS,
    FACTOR_FRAC,
    LOG_FRAC,
    NOISE_FRAC,
    NU_FRAC,
    PHYSICS_NAMES,
    RATE_BITS,
    RATE_FRAC,
    RINV_EXTRA,
    SETTING_NAMES,
    SHAPE_ENGINES,
    SHAPE_FRAC,
    SHAPE_MODES,
    SHAPE_NODES,
    SHAPE_POS_FRAC,
    SHAPE_SEGS,
    SLOPE_FRAC,
    SQRT_FRAC,
    T_MAX,
    T_MIN,
    T_REF,
    TEMP_FRAC,
    ChipConfig,
    Settings,
    get_config,
    has_time,
)
from ohmflow.emulator.fabrication import FIELDS, nominal
from ohmflow.emulator.twin import sqrt_table
from ohmflow.hdl.rv32 import core_map, crossbar_read

__all__ = ["Firmware", "FirmwareError", "SOURCES", "CFLAGS", "STACK_BYTES", "chip_header",
           "linker_script", "build", "cache_root"]

HERE = Path(__file__).resolve().parent
SOURCES = ("start.S", "link.c", "commands.c", "numerics.c", "physics.c", "memory.c")
#: RV32I + Zmmul, no compressed instructions; no C library, no builtins (memory.c has the two
#: functions the compiler calls); no unwind tables; warnings are errors
CFLAGS = ("-target", "riscv32-freestanding-none", "-mcpu=generic_rv32+zmmul", "-Os",
          "-ffreestanding", "-fno-builtin", "-fno-strict-aliasing", "-nostdlib", "-std=c11",
          "-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-Wall", "-Wextra", "-Werror",
          "-Wno-unused-parameter")
#: the stack at the top of the SPRAM
STACK_BYTES = 4096
#: the largest image the block RAM may hold (the SoC sizes its RAM to the image)
BRAM_MAX = 48 * 1024


class FirmwareError(RuntimeError):
    """The firmware could not be built for a config; the message says why."""


@dataclass(frozen=True)
class Firmware:
    """A built image: 32-bit words of the block RAM from address 0, and its needs."""

    words: tuple[int, ...]  #: the image (code, constants, data), little-endian words
    bram_bytes: int  #: block RAM the image needs, rounded up to 1 KiB
    spram_bytes: int  #: SPRAM used by buffers, device memory and the stack
    elf: Path  #: the linked program (for disassembly and debugging)


def cache_root() -> Path:
    base = os.environ.get("OHMFLOW_CACHE") or Path.home() / ".cache" / "ohmflow"
    return Path(base) / "firmware"


def _layout_defines(prefix: str, layout: tuple[P.Field, ...], cfg: ChipConfig) -> list[str]:
    """Offsets and widths of the leading fixed-size fields, and where the arrays start."""
    out, pos = [], 0
    for f in layout:
        width = P.kind_dtype(f.kind, cfg).itemsize
        if f.count is not None and not f.count.isdigit():
            for g in layout[layout.index(f):]:
                out.append(f"#define {prefix}_{g.name.upper()}_W "
                           f"{P.kind_dtype(g.kind, cfg).itemsize}")
            break
        out += [f"#define {prefix}_{f.name.upper()} {pos}", f"#define {prefix}_{f.name.upper()}_W "
                f"{width}"]
        pos += width * (1 if f.count is None else int(f.count))
    out.append(f"#define {prefix}_FIXED {pos}")
    return out


def _c_bytes(data: bytes) -> str:
    return ", ".join(f"0x{b:02x}" for b in data)


def _time_defines(cfg: ChipConfig, s: Settings) -> list[str]:
    """Time and temperature (numerics §11), if the config has them: formats, defaults and the
    tables of `emulator.physics` (log2, exp2 and the four factors of T)."""
    if not has_time(cfg):
        return ["", "#define HAVE_TIME 0  /* config.has_time */"]
    t = physics.temperature_tables()
    out = ["", "/* time and temperature (docs/numerics.md §11; config.has_time) */",
           "#define HAVE_TIME 1", f"#define T_MIN {T_MIN}", f"#define T_MAX {T_MAX}",
           f"#define T_REF {T_REF}", f"#define TEMP_FRAC {TEMP_FRAC}",
           f"#define ACCEL_FRAC {ACCEL_FRAC}", f"#define LOG_FRAC {LOG_FRAC}",
           f"#define POS_BITS {physics.POS_BITS}", f"#define FACTOR_FRAC {FACTOR_FRAC}",
           f"#define NU_FRAC {NU_FRAC}", f"#define RATE_FRAC {RATE_FRAC}",
           f"#define RATE_BITS {RATE_BITS}", f"#define DRIFT_T0_MS {DRIFT_T0_MS}ull",
           f"#define LOG2E {physics.LOG2E}ull", f"#define X_ZERO {physics.X_ZERO}u",
           f"#define DOMAIN_DRIFT {physics.DOMAIN_DRIFT}",
           f"#define DOMAIN_DECAY {physics.DOMAIN_DECAY}",
           f"#define SHAPE_BOTTOM {SHAPE_MODES.index('bottom')}"]
    out += [f"#define DEF_{n.upper()} {getattr(s, n)}ull" for n in PHYSICS_NAMES]
    out += [f"static const unsigned int LOG2T[{len(physics.LOG2T)}] = "
            f"{{{', '.join(map(str, physics.LOG2T))}}};",
            f"static const unsigned int EXP2T[{len(physics.EXP2T)}] = "
            f"{{{', '.join(map(str, physics.EXP2T))}}};",
            f"static const unsigned long long ACCEL_T[{len(t['ACCEL'])}] = "
            f"{{{', '.join(f'{int(v)}ull' for v in t['ACCEL'])}}};"]
    out += [f"static const unsigned short {n}_T[{len(t[n])}] = "
            f"{{{', '.join(str(int(v)) for v in t[n])}}};" for n in ("CG", "CS", "CN")]
    return out


def chip_header(cfg: ChipConfig | str) -> str:
    """The firmware's ``chip.h`` for ``cfg`` (ValueError if the engine cannot serve it)."""
    cfg = get_config(cfg)
    P.check_fits(cfg)
    if cfg.w_bits > 16 or cfg.step_bits > 16:
        raise ValueError(f"the rv32 engine stores states, bounds and steps in 16 bits; config "
                         f"{cfg.name!r} has w_bits {cfg.w_bits}, step_bits {cfg.step_bits}")
    widths = {k.name: P.kind_dtype(k.name, cfg).itemsize for k in P.TABLE.kinds}
    assert max(widths.values()) <= 4, widths  # ChipConfig's ranges keep every element in 32 bits
    nom = nominal(cfg)
    values = {}
    for name in FIELDS:
        a = getattr(nom, name)
        if (a != a.flat[0]).any():
            raise ValueError(f"the nominal map of {cfg.name!r} is not uniform in {name}")
        values[name] = int(a.flat[0])
    s = Settings.default(cfg)
    lines = [
        f"/* Generated by ohmflow.hdl.rv32.firmware for chip config {cfg.name!r}; do not edit. */",
        "#ifndef OHMFLOW_CHIP_H", "#define OHMFLOW_CHIP_H", "",
        "/* the chip config (emulator/config.py) */",
        f"#define TILES {cfg.tiles}", f"#define ROWS {cfg.rows}", f"#define COLS {cfg.cols}",
        f"#define MAX_LINES {max(cfg.rows, cfg.cols)}",
        f"#define IN_BITS {cfg.in_bits}", f"#define OUT_BITS {cfg.out_bits}",
        f"#define W_BITS {cfg.w_bits}", f"#define BL_MAX {cfg.bl_max}",
        f"#define P_MAX {cfg.p_max}", f"#define ACC_BITS {cfg.acc_bits}",
        f"#define CLOCK_HZ {cfg.clock_hz}ull",
        f"#define HAVE_CROSSBAR_READ {int(crossbar_read.fits(cfg))}"
        "  /* hdl/rv32/crossbar_read.py */",
        "",
        "/* fixed formats of the contract (docs/numerics.md §2) */",
        f"#define NOISE_FRAC {NOISE_FRAC}", f"#define SLOPE_FRAC {SLOPE_FRAC}",
        f"#define C2C_FRAC {C2C_FRAC}", f"#define C2C_SHIFT {C2C_SHIFT}",
        f"#define SQRT_FRAC {SQRT_FRAC}", "#define MAX_SHIFT 63",
        f"#define SHAPE_NODES {SHAPE_NODES}", f"#define SHAPE_SEGS {SHAPE_SEGS}",
        f"#define SHAPE_FRAC {SHAPE_FRAC}", f"#define SHAPE_POS_FRAC {SHAPE_POS_FRAC}",
        f"#define RINV_EXTRA {RINV_EXTRA}", f"#define N_SHAPE_MODES {len(SHAPE_MODES)}",
        f"#define SHAPE_CENTERED {SHAPE_MODES.index('centered')}",
        f"#define SHAPE_TABLES {int(cfg.engine in SHAPE_ENGINES)}"
        "  /* config.SHAPE_ENGINES: the engine interpolates step-shape tables */",
        *(f"#define DOMAIN_{d} {getattr(prng, f'DOMAIN_{d}')}"
          for d in ("FWD", "BWD", "ROW", "COL", "C2C")), "",
        "/* the protocol table (emulator/protocol.py) */",
        *(f"#define {k} {v}u" for k, v in P.constants(cfg).items()),
    ]
    for k in P.TABLE.kinds:
        lo, hi = P.kind_range(k.name, cfg)
        name = k.name.upper()
        lines += [f"#define {name}_LO ({lo}ll)", f"#define {name}_HI ({hi}ll)",
                  f"#define {name}_SIGNED {int(lo < 0)}"]
    for c in P.TABLE.commands:
        lines += _layout_defines(f"REQ_{c.name}", c.request, cfg)
        lines += _layout_defines(f"REP_{c.name}", c.reply, cfg)
    lines += ["", "/* counters, in COUNTERS order */"]
    lines += [f"#define C_{n.upper()} {k}" for k, n in enumerate(P.TABLE.counters)]
    lines += [f"#define N_COUNTERS {len(P.TABLE.counters)}", "",
              "/* run-time defaults (Settings.default) and the nominal map (§7.2) */"]
    for f in (*SETTING_NAMES, "seed"):
        lines.append(f"#define DEF_{f.upper()} {getattr(s, f)}u")
    lines += [f"#define NOMINAL_{n.upper()} ({v})" for n, v in values.items()]
    lines += _time_defines(cfg, s)
    info = P.encode_payload(P.command("INFO").reply, P.info_fields(cfg), cfg)
    sq = sqrt_table(cfg.bl_max)
    lines += ["", "/* the address map (hdl/rv32/core_map.py) */", *core_map.c_defines(), "",
              f"static const unsigned char INFO_REPLY[{len(info)}] = {{{_c_bytes(info)}}};",
              f"static const unsigned short SQRT_TABLE[{len(sq)}] = "
              f"{{{', '.join(str(int(v)) for v in sq)}}};", "", "#endif", ""]
    return "\n".join(lines)


def linker_script() -> str:
    """Code and constants in block RAM from 0 (read only); variables (zeroed at start, none
    initialized: the SPRAM has no power-up contents), buffers, device memory and the stack in
    SPRAM."""
    spram_end = core_map.SPRAM_BASE + core_map.SPRAM_BYTES
    return f"""/* Generated by ohmflow.hdl.rv32.firmware; do not edit. */
ENTRY(_start)
MEMORY {{
    BRAM (rwx) : ORIGIN = 0x{core_map.BRAM_BASE:08x}, LENGTH = {BRAM_MAX}
    SPRAM (rw) : ORIGIN = 0x{core_map.SPRAM_BASE:08x}, LENGTH = {core_map.SPRAM_BYTES}
}}
SECTIONS {{
    .text : {{ *(.text.start) *(.text .text.*) }} > BRAM
    .rodata : {{ *(.rodata .rodata.* .srodata .srodata.*) }} > BRAM
    .data : {{ *(.data .data.* .sdata .sdata.*) }} > SPRAM
    .bss (NOLOAD) : ALIGN(8) {{
        __bss_start = .;
        *(.bss .bss.* .sbss .sbss.* COMMON)
        . = ALIGN(4);
        __bss_end = .;
    }} > SPRAM
    .spram (NOLOAD) : ALIGN(8) {{ *(.spram .spram.*) __spram_end = .; }} > SPRAM
    /DISCARD/ : {{ *(.eh_frame .eh_frame_hdr .comment) }}
    __stack_top = 0x{spram_end:08x};
    ASSERT(__spram_end <= __stack_top - {STACK_BYTES},
           "the SPRAM cannot hold the buffers, the devices and the stack of this config")
}}
"""


def _zig() -> list[str]:
    return [sys.executable, "-m", "ziglang"]


def _compiler_version() -> str:
    try:
        return importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        raise FirmwareError("the rv32 engine's firmware needs the ziglang package (its C "
                            "compiler): pip install ziglang, or run ./run once") from None


def _key(header: str, script: str) -> str:
    h = hashlib.sha256()
    for part in (header, script, "\0".join(CFLAGS), _compiler_version(),
                 *((HERE / s).read_text() for s in (*SOURCES, "firmware.h"))):
        h.update(part.encode())
        h.update(b"\0\0")
    return h.hexdigest()[:20]


def _load(elf: Path) -> tuple[bytes, int, int]:
    """The block-RAM image, the block RAM used (with .bss) and the SPRAM used, from the ELF's
    program headers."""
    data = elf.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[18] != 243:  # ELF32, EM_RISCV
        raise FirmwareError(f"{elf} is not a 32-bit RISC-V ELF file")
    phoff, = struct.unpack_from("<I", data, 28)
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    image = bytearray()
    bram_end, spram_end = 0, 0
    for k in range(phnum):
        p_type, off, vaddr, _pa, filesz, memsz, _fl, _al = struct.unpack_from(
            "<8I", data, phoff + k * phentsize)
        if p_type != 1 or memsz == 0:  # PT_LOAD only
            continue
        if vaddr >= core_map.SPRAM_BASE:
            if filesz:
                raise FirmwareError("the firmware has initialized variables; the SPRAM that "
                                    "holds variables has no power-up contents: initialize "
                                    "them in code, or make them const")
            spram_end = max(spram_end, vaddr + memsz - core_map.SPRAM_BASE)
            continue
        if len(image) < vaddr + filesz:
            image.extend(bytes(vaddr + filesz - len(image)))
        image[vaddr:vaddr + filesz] = data[off:off + filesz]
        bram_end = max(bram_end, vaddr + memsz)
    image.extend(bytes(-len(image) % 4))
    return bytes(image), -(-bram_end // 1024) * 1024, spram_end + STACK_BYTES


def build(cfg: ChipConfig | str, *, cache: Path | None = None) -> Firmware:
    """Compile the firmware for ``cfg`` (cached); FirmwareError with the compiler's message if
    it fails, ValueError if the config does not suit the engine."""
    cfg = get_config(cfg)
    header, script = chip_header(cfg), linker_script()
    root = cache or cache_root()
    out = root / _key(header, script)
    elf = out / "firmware.elf"
    if not elf.exists():
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f"{out.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builds of one key build once
            if not elf.exists():
                t0 = time.monotonic()
                print(f"ohmflow: compiling the rv32 firmware for {cfg.name}, once for these "
                      f"sources (a few seconds; cache: {out})", file=sys.stderr, flush=True)
                _compile(header, script, out)
                print(f"ohmflow: firmware compiled in {time.monotonic() - t0:.1f} s",
                      file=sys.stderr, flush=True)
    image, bram, spram = _load(elf)
    words = struct.unpack(f"<{len(image) // 4}I", image)
    return Firmware(words=words, bram_bytes=bram, spram_bytes=spram, elf=elf)


def _compile(header: str, script: str, out: Path) -> None:
    t = Path(tempfile.mkdtemp(prefix=f"{out.name}.", dir=out.parent))
    try:
        (t / "chip.h").write_text(header)
        (t / "link.ld").write_text(script)
        cmd = [*_zig(), "cc", *CFLAGS, "-I", str(t), "-I", str(HERE), "-T", str(t / "link.ld"),
               "-o", str(t / "firmware.elf"), *(str(HERE / s) for s in SOURCES)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        (t / "build.log").write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
        if r.returncode:
            raise FirmwareError(f"the firmware did not compile:\n{r.stdout}{r.stderr}")
        t.rename(out)  # atomic: a folder named by the key is a finished build
    finally:
        shutil.rmtree(t, ignore_errors=True)
