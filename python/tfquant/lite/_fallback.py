"""Pieces of the TFLite path's fallback to an accuracy target (`target_sqnr`), independent of how a
model is built: a choice as unit rules, the outputs' noise on the held-out samples, and latency.

`tfquant.lite._convert` drives it: one sensitivity pass (each static unit alone quantized, at 8
and, with float fallback allowed, 16 bits: its noise at the outputs), then
`tfquant.accuracy.fallback.search` with an `evaluate` that builds the twin calibrated without the
held-out samples for a choice and measures its worst output SQNR on them.
"""
from __future__ import annotations

import re
import statistics as stats
import time
from collections.abc import Mapping, Sequence

import numpy as np

from tfquant.accuracy.fallback import Choice
from tfquant.accuracy.layers import FLOAT, INT16, OutputNoise, sqnr_db
from tfquant.dataset import validate_sample
from tfquant.lite import _litert
from tfquant.lite._layers import Unit
from tfquant.passes._spec import NO_QUANTIZE, STATIC

LATENCY_RUNS = 20


def choice_rules(choice: Choice, units: Sequence[Unit]) -> list[dict]:
    """The unit rules (tfq-tfl-prepare-quantize's `units`) that make each unit of `choice` what it
    says: 16-bit activations or float; INT8 units need none."""
    by_name = {unit.name: unit for unit in units}
    rules = []
    for name, kind in choice.items():
        if kind == INT16:
            rules.append({"node_name": re.escape(name), "op_type": by_name[name].op_type, "method": STATIC,
                          "activation_bits": 16})
        elif kind == FLOAT:
            rules.append({"node_name": re.escape(name), "op_type": by_name[name].op_type, "method": NO_QUANTIZE})
    return rules


def alone_rules(unit: Unit, bits: int) -> list[dict]:
    """The unit rules under which `unit` alone is quantized, at `bits`."""
    return [{"node_name": re.escape(unit.name), "op_type": unit.op_type, "method": STATIC, "activation_bits": bits},
            {"op_type": ".*", "method": NO_QUANTIZE}]


class HeldOut:
    """The float model's outputs on the held-out samples, against which a model's are measured."""

    def __init__(self, float_model: bytes, kept: Sequence[tuple[str, Mapping[str, np.ndarray]]]) -> None:
        float_signatures = _litert.signatures(_litert.interpreter(float_model))
        self.inputs = [(key, validate_sample(sample, float_signatures[key].input_specs, index, key))
                       for index, (key, sample) in enumerate(kept)]
        self.expected = [float_signatures[key].run(inputs) for key, inputs in self.inputs]

    def noise(self, model: bytes) -> dict[str, tuple[float, float]]:
        """(signal, noise) power of each float output ("<signature>/<name>") of `model`."""
        signatures = _litert.signatures(_litert.interpreter(model))
        noise = OutputNoise()
        for (key, inputs), expected in zip(self.inputs, self.expected):
            noise.add(key, expected, signatures[key].run(inputs))
        return noise.totals

    def worst_sqnr(self, model: bytes) -> float:
        """The lowest SQNR (dB) over the float outputs of `model`."""
        return min((sqnr_db(*totals) for totals in self.noise(model).values()), default=float("inf"))

    def total_noise(self, model: bytes) -> float:
        """The noise power over every float output, relative to each output's signal (outputs of
        different scales count alike)."""
        return sum(noise / signal if signal > 0 else noise for signal, noise in self.noise(model).values())

    def latency_s(self, model: bytes) -> float:
        """The median time of one run of `model` on the first held-out sample."""
        key, inputs = self.inputs[0]
        signature = _litert.signatures(_litert.interpreter(model))[key]
        signature.run(inputs)  # allocation
        times = []
        for _ in range(LATENCY_RUNS):
            start = time.perf_counter()
            signature.run(inputs)
            times.append(time.perf_counter() - start)
        return stats.median(times)
