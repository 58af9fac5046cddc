"""What a chip config can represent, checked before a training run starts.

The fabrication sampler turns device parameters into integer codes (docs/numerics.md §7): a
weight of 1.0 is ``2**w_frac`` state units, states lie in ``[w_min_code, w_max_code]``, steps in
``[0, step_max]`` units, and a pulse train has at most ``bl_max`` slots. A mean parameter that
falls outside those ranges would be clipped for every device, so `check` refuses it instead,
naming the option, the chip's limit and the config that sets it.
"""

from __future__ import annotations

#: option name on the command line, for a TrainConfig / DeviceModel field
FLAG = {"w_max": "--w-max", "w_min": "--w-min", "dw_min": "--dw-min", "desired_bl": "--desired-bl"}


def limits(chip) -> dict[str, tuple[float, float]]:
    """The representable range of each checked parameter, in the parameter's own units."""
    unit = 2.0**chip.w_frac
    return {
        "w_max": (1 / unit, chip.w_max_code / unit),
        "w_min": (chip.w_min_code / unit, -1 / unit),
        # one state LSB at least, as the contract's representation check has it
        # (ohmflow.emulator.presets.representation_notes)
        "dw_min": (1 / unit, chip.step_max / unit),
        "desired_bl": (1, chip.bl_max),
    }


def check(cfg, chip, given: set[str] | None = None) -> None:
    """Raise ValueError if ``cfg`` (a TrainConfig) asks for what ``chip`` cannot represent.

    ``given`` names the options set explicitly (used only to word the message: an option the user
    did not give is a default that the chip config cannot hold).
    """
    from ohmflow.emulator.config import Settings

    used = Settings.default(chip)
    if (chip.in_bits, chip.out_bits) != (used.in_bits, used.out_bits):
        raise ValueError(
            f"chip config {chip.name!r} has a {chip.in_bits}-bit DAC and a {chip.out_bits}-bit "
            f"ADC, but training drives them at {used.in_bits} and {used.out_bits} bits "
            "(aihwkit's inp_res and out_res), so the extra bits would go unused; set in_bits = "
            f"{used.in_bits} and out_bits = {used.out_bits} in the config")
    model = cfg.model
    values = {"w_max": model.w_max, "w_min": model.w_min, "dw_min": model.dw_min,
              "desired_bl": cfg.desired_bl}
    for name, (lo, hi) in limits(chip).items():
        v = values[name]
        if lo <= v <= hi:
            continue
        side = "above the largest" if v > hi else "below the smallest"
        bound = hi if v > hi else lo
        what = {"w_max": "weight a device holds", "w_min": "weight a device holds",
                "dw_min": "step a device takes",
                "desired_bl": "pulse train the chip draws (bl_max)"}[name]
        why = "" if given is None or name in given else " (the default; set it explicitly)"
        fmt = "{:d}" if name == "desired_bl" else "{:.6g}"
        raise ValueError(
            f"{FLAG[name]} {fmt.format(v)}{why} is {side} {what} on chip config "
            f"{chip.name!r}: {fmt.format(bound)} (w_bits {chip.w_bits}, w_frac {chip.w_frac}, "
            f"step_bits {chip.step_bits}, bl_max {chip.bl_max}); use a value in "
            f"[{fmt.format(lo)}, {fmt.format(hi)}] or a config that holds it")
