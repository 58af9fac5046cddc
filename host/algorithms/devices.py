"""Device parameter sets for the algorithm benchmarks: aihwkit's presets' device parameters.

The parameters come from `ohmflow.emulator.presets` (the presets without their periphery: the
benchmark keeps out_bound 12 and out_noise 0.06).

The device-physics presets of aihwkit use response models this chip does not have; these are the
closest `DeviceModel` parameter sets (ConstantStep, LinearStep, SoftBounds), with aihwkit's values
(``aihwkit.simulator.presets.devices``) where the model has the parameter:

- ``softbounds``: aihwkit's ``SoftBoundsDevice`` defaults (dw_min 0.001, bounds +-0.6, ...).
- ``reram-sb-like``: ``ReRamSBPresetDevice`` (loose SoftBounds fit of Gong et al., Nat. Commun.
  2018): dw_min 0.002, w_max 1.25, w_min -0.75, dw_min_dtod 0.3, up_down_dtod 0.01, w_max_dtod
  0.3/1.25, w_min_dtod 0.3/0.75, dw_min_std 3.75. Differences: aihwkit's cycle-to-cycle noise of
  this preset is additive (``mult_noise`` False) and it adds ``write_noise_std`` 56; here the noise
  is multiplicative on the step (docs/numerics.md §5.4) and there is no write noise.
- ``ecram-like``: ``EcRamPresetDevice`` (LinearStep fit of Tang et al., IEDM 2018): dw_min 0.002,
  w_max 1.1724, w_min -0.8276, gamma_up 0.1153, gamma_down 0.5085, dw_min_dtod 0.1, up_down_dtod
  0.01, w_max_dtod / w_min_dtod 0.05, gamma dtods 0.05, dw_min_std 0.3 (slopes relative to the
  mean bounds, as aihwkit's ``mean_bound_reference``).
"""

from __future__ import annotations

from ohmflow.emulator.config import DeviceModel
from ohmflow.emulator.presets import get_preset

#: the device parameters of aihwkit's presets, from the one preset table (emulator/presets.py)
DEVICE_PRESETS: dict[str, DeviceModel] = {
    "softbounds": DeviceModel.soft_bounds(),
    "reram-sb-like": get_preset("ReRamSBPreset").device,
    "ecram-like": get_preset("EcRamPreset").device,
}


def device_preset(name: str) -> DeviceModel:
    """The parameter set ``name``; an unknown name is refused with the known ones."""
    if name not in DEVICE_PRESETS:
        raise ValueError(f"unknown device preset {name!r}: expected one of "
                         f"{', '.join(DEVICE_PRESETS)}")
    return DEVICE_PRESETS[name]
