"""``ohmflow.nn``: analog layers and analog SGD in ordinary PyTorch code (``ohmflow[torch]``).

Build a model from `AnalogLinear` / `AnalogConv2d` and torch's own modules (or convert one with
`convert_to_analog`), put it on chips with `place` (a `Device` or `Chips`: twin, verilator, a
board), and train it with `AnalogSGD`. A layer's ``algorithm`` (`TTv2`, `MixedPrecision`, ... or
their ``ohmflow train --algorithm`` names) chooses its update rule; `record_costs` records the
device calls in a `CostLedger`. See docs/api.md.
"""

from ohmflow.host.algorithms import AGAD, ALGORITHMS, Algorithm, CTTv2, MixedPrecision, TTv1, TTv2
from ohmflow.host.analog_tile import IOParams, UpdateParams
from ohmflow.host.ledger import CostLedger
from ohmflow.host.mapping import MappingParameter
from ohmflow.nn.functional import softmax_cross_entropy
from ohmflow.nn.layers import AnalogConv2d, AnalogLayer, AnalogLinear, analog_layer_of, as_algorithm
from ohmflow.nn.optim import AnalogSGD
from ohmflow.nn.placement import (
    analog_layers,
    convert_to_analog,
    place,
    prepare_chips,
    record_costs,
    start_epoch,
)

__all__ = [
    "AGAD", "ALGORITHMS", "Algorithm", "AnalogConv2d", "AnalogLayer", "AnalogLinear", "AnalogSGD",
    "CTTv2", "CostLedger", "IOParams", "MappingParameter", "MixedPrecision", "TTv1", "TTv2",
    "UpdateParams", "analog_layer_of", "analog_layers", "as_algorithm", "convert_to_analog",
    "place", "prepare_chips", "record_costs", "softmax_cross_entropy", "start_epoch",
]
