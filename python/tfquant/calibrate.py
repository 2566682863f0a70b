"""Calibration: run the instrumented module in TensorFlow and record a range per calibration point.

Each `tfq.calibration_point` of a signature function becomes an extra output of that
signature's ConcreteFunction (graph mode): its values for the histogram methods, its min and max
otherwise. The representative samples stream through it in batches (one sample at a time for
AVERAGE_MIN_MAX, which averages per-sample ranges as TensorFlow does), and one statistics
collector per point consumes the outputs. The chosen min/max are
written onto the points as `min`/`max` attributes for tfq-apply-calibration-stats.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfquant import calibration
from tfquant.dataset import InputSpecs, batches
from tfquant.exporter import to_concrete_function
from tfquant.mlir import ir, ops_named

POINT = "tfq.calibration_point"
# Samples kept (inputs and float outputs) to measure the quantized model's SQNR afterwards.
KEPT_SAMPLES = 32


@dataclass
class CalibrationRun:
    """What calibration saw: samples per signature, and a few kept to evaluate the result."""
    samples: dict[str, int] = field(default_factory=dict)
    kept_inputs: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    kept_outputs: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    uncalibrated_points: int = 0


def _point_id(op: ir.Operation) -> int:
    return ir.IntegerAttr(op.attributes["id"]).value


def _enclosing_function(op: ir.Operation) -> str:
    parent = op.parent
    while parent is not None and parent.operation.name != "func.func":
        parent = parent.operation.parent
    return ir.StringAttr(parent.operation.attributes["sym_name"]).value if parent is not None else ""


def _instrumented_function(module: ir.Module, signature: str, full_values: bool):
    """The signature with each calibration point's values as an extra output.

    Unless `full_values`, a point outputs just [min, max]: copying every activation out of the
    graph and reducing it in numpy took most of the calibration time on MobileNetV2.
    """
    taps: dict[str, tf.Tensor] = {}

    def hook(op: ir.Operation, inputs: list[tf.Tensor]):
        if op.name != POINT:
            return None
        if _enclosing_function(op) == signature:
            value = inputs[0]
            taps[f"tfq_calibration_{_point_id(op)}"] = (
                tf.identity(value) if full_values else tf.stack([tf.reduce_min(value), tf.reduce_max(value)]))
        return [inputs[0]]

    with module.context:
        concrete = to_concrete_function(module, signature, hook, taps)
    return concrete, {int(name.rsplit("_", 1)[1]): name for name in taps}


def calibrate(module: ir.Module, datasets: Mapping[str, Iterable], input_specs: Mapping[str, InputSpecs],
              calibration_options, batch_size: int = 32, progress: bool = True) -> CalibrationRun:
    """Run every signature's samples through the module and set `min`/`max` on its calibration points."""
    collectors: dict[int, calibration.Collector] = {}
    run = CalibrationRun()
    full_values = calibration.needs_values(calibration_options)
    if calibration.averages_per_sample(calibration_options):
        batch_size = 1
    for signature, samples in datasets.items():
        concrete, tap_names = _instrumented_function(module, signature, full_values)
        output_names = [k for k in concrete.structured_outputs if not k.startswith("tfq_calibration_")]
        run.samples[signature] = 0
        run.kept_inputs[signature], run.kept_outputs[signature] = [], []
        # disable=None: no bar where stderr is not a terminal (a log, a pipe): there it is only noise.
        with tqdm(desc=f"calibrating {signature}", unit=" samples", disable=None if progress else True) as bar:
            for batch in batches(samples, input_specs[signature], signature, batch_size):
                results = concrete(**{k: tf.constant(v) for k, v in batch.items()})
                for point_id, name in tap_names.items():
                    if point_id not in collectors:
                        collectors[point_id] = calibration.new_collector(calibration_options)
                    collectors[point_id].update(results[name].numpy())
                # Scalar inputs (a flag, a temperature) have no batch axis to count rows on.
                rows = next((v.shape[0] for v in batch.values() if v.ndim), 1)
                if run.samples[signature] < KEPT_SAMPLES:
                    run.kept_inputs[signature].append(batch)
                    run.kept_outputs[signature].append({k: results[k].numpy() for k in output_names})
                run.samples[signature] += rows
                bar.update(rows)
        if run.samples[signature] == 0:
            raise ValueError(f"the representative dataset for signature '{signature}' has no samples")
    run.uncalibrated_points = _write_ranges(module, collectors, calibration_options)
    return run


def _write_ranges(module: ir.Module, collectors: Mapping[int, calibration.Collector], calibration_options) -> int:
    """Set min/max on each point from its statistics; returns how many points saw no data."""
    missing = 0
    with module.context, ir.Location.unknown():
        f32 = ir.F32Type.get()
        for op in ops_named(module.operation, POINT):
            collector = collectors.get(_point_id(op))
            if collector is None:
                missing += 1
                continue
            low, high = calibration.compute_range(collector.statistics(), calibration_options)
            op.attributes["min"] = ir.FloatAttr.get(f32, low)
            op.attributes["max"] = ir.FloatAttr.get(f32, high)
    return missing
