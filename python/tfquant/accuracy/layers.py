"""The per-layer error report as data, shared by the SavedModel and TFLite paths.

A `LayerError` is one quantizable unit (a lifted call on the SavedModel path, a tfl op on the
TFLite path) with what it costs in accuracy: the SQNR of its output against the float model's
when it alone is quantized (local) and in the whole quantized model (accumulated), the ranges
calibration chose for it, how many held-out values fall outside them, and what it was kept as.
A `Finding` is a detector's diagnosis of a likely cause. `LayerReport` gathers them with the
model's SQNR on the held-out samples; `tfquant.accuracy.render` prints, plots and exports it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

# What a unit is computed as in the model that was written.
INT8 = "int8"
INT16 = "int16"     # int8 weights, 16-bit activations
FLOAT = "float"

# Detector kinds, as the report names them.
OUTLIERS = "outliers"
RANGE_MISMATCH = "range-mismatch"
PREPROCESSING = "preprocessing"
NON_FINITE = "non-finite"


@dataclass(frozen=True)
class Finding:
    """A likely cause of error: `kind` (one of the detector kinds), the node it is about (`where`,
    a node name or tensor name), the units it blames, and a sentence saying what was seen."""
    kind: str
    where: str
    message: str
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerError:
    """One quantizable unit, in graph order (`index`)."""
    index: int
    name: str                      # node name (SavedModel) or output tensor name (TFLite)
    op_type: str                   # "Conv2D", "MatMul", ... or TFLite's "CONV_2D", ...
    local_sqnr_db: float           # its output, it alone quantized, against float (inf: no error)
    accumulated_sqnr_db: float     # its output in the quantized model against float
    input_range: tuple[float, float] | None = None
    output_range: tuple[float, float] | None = None
    clipped: int = 0               # held-out activation values outside its ranges
    values: int = 0                # held-out activation values counted
    kept_as: str = INT8
    reason: str | None = None      # why it is not int8 (fallback, or left float)
    # What falling back cost: the model's size in bytes and latency in seconds (None: not measured).
    size_cost_bytes: int = 0
    latency_cost_s: float | None = None
    # SQNR gain of the model output when this unit alone is kept float (the sensitivity ranking).
    sensitivity_db: float | None = None

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / self.values if self.values else 0.0


@dataclass
class LayerReport:
    """Every unit's error, the detectors' findings and the model's SQNR, measured on samples held out
    of calibration (`held_out_samples` of them)."""
    layers: list[LayerError]
    held_out_samples: int
    model_sqnr_db: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    target_sqnr_db: float | None = None
    target_met: bool | None = None     # None: no target was set
    # What the model measured before the accuracy tools changed it (all units int8, default ranges).
    baseline_sqnr_db: dict[str, float] = field(default_factory=dict)
    # The tools that were applied, each with its measured effect in dB: {"bias_correction": 1.2}.
    applied: dict[str, float] = field(default_factory=dict)
    # The tools that were measured and not applied because they did not help, with their effect.
    rejected: dict[str, float] = field(default_factory=dict)
    path: str = "saved_model"      # "saved_model" | "tflite"

    def ranked(self) -> list[LayerError]:
        """The units from the most to the least error they bring: lowest local SQNR first."""
        return sorted(self.layers, key=lambda layer: (layer.local_sqnr_db, layer.index))

    def fallen_back(self) -> list[LayerError]:
        return [layer for layer in self.layers if layer.kept_as != INT8]

    def to_dict(self) -> dict:
        """The report as JSON-ready data (infinities as None)."""
        return _finite(asdict(self))

    def table(self) -> str:
        from tfquant.accuracy.render import table
        return table(self)

    def plot(self, path: str) -> None:
        """A PNG of the local and accumulated SQNR by unit (`tfquant.accuracy.render.plot`)."""
        from tfquant.accuracy.render import plot
        plot(self, path)

    def write_json(self, path: str) -> None:
        from tfquant.accuracy.render import write_json
        write_json(self, path)

    def write_overlay(self, path: str, model_path: str | None = None, metric: str = "local") -> None:
        """model-explorer node data coloring each unit by its SQNR (`tfquant.accuracy.render.write_overlay`)."""
        from tfquant.accuracy.render import write_overlay
        write_overlay(self, path, model_path, metric)

    def __str__(self) -> str:
        return self.table()


def sqnr_db(signal: float, noise: float) -> float:
    """10·log10(signal/noise); inf for no noise, -inf for no signal or a noise that is not finite
    (an Inf or NaN the float model does not give)."""
    if not math.isfinite(noise) or not math.isfinite(signal):
        return -math.inf
    if noise <= 0:
        return math.inf
    if signal <= 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


class OutputNoise:
    """Signal and noise power of each float output ("<signature>/<name>") of a quantized model against
    the float model's, summed over runs; `sqnr_db()` per output."""

    def __init__(self) -> None:
        self.totals: dict[str, tuple[float, float]] = {}

    def add(self, signature: str, expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> None:
        """One run's outputs: the float model's (`expected`; only float ones count) and the quantized one's."""
        for name, value in expected.items():
            if np.asarray(value).dtype.kind == "f":
                self.add_pair(f"{signature}/{name}", value, actual[name])

    def add_pair(self, key: str, reference: np.ndarray, approximation: np.ndarray) -> None:
        reference = np.asarray(reference, np.float64)
        signal, noise = self.totals.get(key, (0.0, 0.0))
        self.totals[key] = (signal + float(np.sum(np.square(reference))),
                            noise + float(np.sum(np.square(reference - np.asarray(approximation, np.float64)))))

    def sqnr_db(self) -> dict[str, float]:
        return {key: sqnr_db(signal, noise) for key, (signal, noise) in self.totals.items()}


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
