"""``ohmflow.nn``: analog layers and analog SGD in ordinary PyTorch code (``ohmflow[torch]``).

Build a model from `AnalogLinear` / `AnalogConv2d` and torch's own modules (or convert one with
`convert_to_analog`), put it on chips with `place` (a `Device` or `Chips`: twin, verilator, a
board), and train it with `AnalogSGD`. See docs/api.md.
"""

from ohmflow.host.analog_tile import IOParams, UpdateParams
from ohmflow.host.mapping import MappingParameter
from ohmflow.nn.functional import softmax_cross_entropy
from ohmflow.nn.layers import AnalogConv2d, AnalogLayer, AnalogLinear, analog_layer_of
from ohmflow.nn.optim import AnalogSGD
from ohmflow.nn.placement import (
    analog_layers,
    convert_to_analog,
    place,
    prepare_chips,
    start_epoch,
)

__all__ = [
    "AnalogConv2d", "AnalogLayer", "AnalogLinear", "AnalogSGD", "IOParams", "MappingParameter",
    "UpdateParams", "analog_layer_of", "analog_layers", "convert_to_analog", "place",
    "prepare_chips", "softmax_cross_entropy", "start_epoch",
]
