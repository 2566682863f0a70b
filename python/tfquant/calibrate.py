"""Calibration: run the instrumented module in TensorFlow and record a range per calibration point.

Each `tfq.calibration_point` of a signature function becomes extra outputs of that
signature's ConcreteFunction (graph mode): its histogram, binned in the graph, for the
histogram methods; its min and max otherwise. A point inside an If branch or a While body (a
private function the functional op calls) cannot be an output of the signature: its summary
goes to Python through a `tf.numpy_function` each time the branch or body runs, and the point's
value waits for it (a control dependency), so neither grappler nor the executor skips it. The
representative samples stream through in batches (one sample at a time for AVERAGE_MIN_MAX,
which averages per-sample ranges as TensorFlow does, and for models with If or While ops, whose
branch or trip count a joined batch could change), and one statistics collector per point
consumes the summaries: a point in a function called from two places, or from two signatures,
gets one range over all of them; a point in a branch no sample took gets none (its call stays
float). The chosen min/max are written onto the points as `min`/`max` attributes for
tfq-apply-calibration-stats.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfquant import calibration
from tfquant.dataset import Batch, InputSpecs, Sample, batches, error_summary
from tfquant.exporter import to_concrete_function
from tfquant.mlir import enclosing_function_name, ir, ops_named
from tfquant.passes._points import CALIBRATION_POINT, calibration_points

# Samples kept (inputs and float outputs) to measure the quantized model's SQNR afterwards.
KEPT_SAMPLES = 32


class InvalidSampleError(tf.errors.InvalidArgumentError, ValueError):
    """A representative sample TensorFlow's kernels refused (inputs whose batch sizes differ, ids
    outside an embedding table): the InvalidArgumentError TensorFlow raised, and a ValueError as
    every bad dataset is, so code catching either catches it."""


# With `hold_out`: every HOLD_OUT_EVERY-th sample, up to KEPT_SAMPLES per signature, is held out of
# calibration to measure the result on (the TFLite path holds out the same ones).
HOLD_OUT_EVERY = 8


@dataclass
class CalibrationRun:
    """What calibration saw: samples per signature, and a few kept to evaluate the result.

    Without hold-out, the kept samples are the first calibration samples; with it, they are the
    held-out samples (not calibrated on), and `fit_inputs` are the first calibration samples, for
    choices that must not look at the held-out ones. `collectors` are the statistics per point id;
    `histograms` also hold a histogram per point when asked for (the calibration-method search).
    """
    samples: dict[str, int] = field(default_factory=dict)
    kept_inputs: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    kept_samples: dict[str, int] = field(default_factory=dict)
    kept_outputs: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    held_out: bool = False
    fit_inputs: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    collectors: dict[int, "calibration.Collector"] = field(default_factory=dict)
    histograms: dict[int, "calibration.HistogramCollector"] = field(default_factory=dict)
    # Per signature: inputs filled with their calibration minimum, maximum and zero (where the range
    # holds it), as (what, inputs, the float model's outputs on them), to check the quantized model on.
    extremes: dict[str, list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]] = field(default_factory=dict)


def _point_id(op: ir.Operation) -> int:
    return ir.IntegerAttr(op.attributes["id"]).value


TAP = "tfq_calibration_"


def _binned(value: tf.Tensor, num_bins: int) -> dict[str, tf.Tensor]:
    """A batch's histogram as `HistogramCollector.update` bins it, computed in the graph.

    The bin width is the range over `num_bins` rounded up to a power of two, taken exactly from
    the float's exponent bits; bins start at the multiple of the width below the minimum.
    """
    flat = tf.reshape(tf.cast(value, tf.float32), [-1])
    low, high = tf.reduce_min(flat), tf.reduce_max(flat)
    bits = tf.bitcast((high - low) / num_bins, tf.int32)
    exponent = (tf.bitwise.right_shift(bits, 23) - 127
                + tf.cast(tf.bitwise.bitwise_and(bits, 0x7FFFFF) > 0, tf.int32))
    width = tf.bitcast(tf.bitwise.left_shift(exponent + 127, 23), tf.float32)
    lower = tf.floor(low / width) * width
    index = tf.clip_by_value(tf.cast((flat - lower) / width, tf.int32), 0, num_bins - 1)
    return {"": tf.stack([low, high, width, lower]),
            "_counts": tf.math.bincount(index, minlength=num_bins, maxlength=num_bins),
            "_size": tf.size(flat, out_type=tf.int64)}


# A point's summary: `_summary`'s tensors by suffix, as numpy arrays.
Summary = dict[str, np.ndarray]
# Receives the summaries of points inside branches and loop bodies, by point id, as they run.
Recorder = Callable[[int, Summary], None]


def _summary(value: tf.Tensor, num_bins: int | None) -> dict[str, tf.Tensor]:
    """What a point reports per run: its histogram (`num_bins`), or its [min, max]."""
    if num_bins:
        return _binned(value, num_bins)
    return {"": tf.stack([tf.reduce_min(value), tf.reduce_max(value)])}


def _instrumented_function(module: ir.Module, signature: str, num_bins: int | None, record: Recorder):
    """The signature with each of its calibration points' summary as extra outputs `tfq_calibration_<id>*`.

    Points in the functions it calls (If branches, While bodies) report to `record` instead.
    Summaries rather than values: copying every activation out of the graph and reducing it in
    numpy took most of the calibration time on MobileNetV2.
    """
    taps: dict[str, tf.Tensor] = {}
    # For each point of the signature itself: its summary's output names, by suffix.
    names: dict[int, dict[str, str]] = {}

    def hook(op: ir.Operation, inputs: list[tf.Tensor]):
        if op.name != CALIBRATION_POINT:
            return None
        point_id, summary = _point_id(op), _summary(inputs[0], num_bins)
        if enclosing_function_name(op) == signature:
            names[point_id] = {suffix: f"{TAP}{point_id}{suffix}" for suffix in summary}
            taps.update({names[point_id][suffix]: tensor for suffix, tensor in summary.items()})
            return [inputs[0]]
        return [_reported(inputs[0], point_id, summary, record)]

    with module.context:
        concrete = to_concrete_function(module, signature, hook, taps)
    return concrete, names


def _reported(value: tf.Tensor, point_id: int, summary: dict[str, tf.Tensor], record: Recorder) -> tf.Tensor:
    """`value`, once `summary` has been handed to `record` (stateful, so that it is never pruned)."""
    suffixes = list(summary)

    def report(*arrays: np.ndarray) -> np.ndarray:
        record(point_id, dict(zip(suffixes, arrays)))
        return np.zeros((), np.bool_)

    reported = tf.numpy_function(report, list(summary.values()), tf.bool, stateful=True,
                                 name=f"{TAP}{point_id}")
    with tf.control_dependencies([reported]):
        return tf.identity(value)


# Ops whose branch or trip count may depend on every row of a batch (tf.cond on reduce_sum(x) > 0).
CONTROL_FLOW_OPS = ("tf.If", "tf.StatelessIf", "tf.Case", "tf.StatelessCase", "tf.While", "tf.StatelessWhile")


def _has_control_flow(module: ir.Module) -> bool:
    """Whether samples must run one at a time: joined in a batch, they could take another branch
    than each alone (as TensorFlow's calibration runs them) and reach other points."""
    return bool(ops_named(module.operation, *CONTROL_FLOW_OPS))


def _feed(collector: calibration.Collector, summary: Summary) -> None:
    if isinstance(collector, calibration.HistogramCollector):
        low, high, width, lower = summary[""].tolist()
        collector.update_binned(low, high, width, lower, summary["_counts"], int(summary["_size"]))
    else:
        collector.update(summary[""])


class _Collectors:
    """One statistics collector per calibration point, fed from the signature's outputs and, for
    points in branches and loop bodies, from TensorFlow's threads (hence the lock). With
    `histograms` (summaries are then histograms), a histogram per point beside the method's own
    collector, which a min-max collector then takes the histograms' min and max from."""

    def __init__(self, calibration_options, histograms: bool = False) -> None:
        self.calibration_options = calibration_options
        self.by_point: dict[int, calibration.Collector] = {}
        self.histograms: dict[int, calibration.HistogramCollector] | None = {} if histograms else None
        # Set while held-out samples run: points in branches report then too, and must not count them.
        self.paused = False
        self._lock = threading.Lock()

    def record(self, point_id: int, summary: Summary) -> None:
        with self._lock:
            if self.paused:
                return
            if point_id not in self.by_point:
                self.by_point[point_id] = calibration.new_collector(self.calibration_options)
            collector = self.by_point[point_id]
            if self.histograms is None:
                _feed(collector, summary)
                return
            histogram = self.histograms.setdefault(point_id, calibration.HistogramCollector(SEARCH_BINS))
            _feed(histogram, summary)
            if isinstance(collector, calibration.HistogramCollector):
                _feed(collector, summary)
            else:
                collector.update(summary[""][:2])

    def record_outputs(self, results: Mapping[str, tf.Tensor], tap_names: Mapping[int, Mapping[str, str]]) -> None:
        """Feed the points of the signature itself, from its extra outputs."""
        for point_id, names in tap_names.items():
            self.record(point_id, {suffix: results[name].numpy() for suffix, name in names.items()})


def _run(concrete, inputs: Sample, input_names: Sequence[str]) -> dict[str, tf.Tensor]:
    """One call of the instrumented function.

    Positional, in the signature's input order: keyword arguments fail TensorFlow's structured
    binding first (it names the inputs args_0, ...), which formats every input tensor into an
    error message before the flat signature is tried; that took 10x the call itself.
    """
    return concrete(*[tf.constant(inputs[name]) for name in input_names])


def _run_batch(concrete, batch: Batch, input_names: Sequence[str], signature: str) -> dict[str, tf.Tensor]:
    """The function's results on `batch`; a TensorFlow error is raised again as one line naming
    the signature, the sample and its inputs (TensorFlow's own holds the traced Python stack)."""
    try:
        return _run(concrete, batch.inputs, input_names)
    except tf.errors.OpError as error:
        which, inputs, refusal = _refused_samples(concrete, batch, input_names, error)
        shapes = ", ".join(f"{name}: {array.dtype} {array.shape}" for name, array in inputs.items())
        message = (f"representative dataset {which} for signature '{signature}' (inputs {shapes}) "
                   f"fails in TensorFlow: {error_summary(refusal)}")
        kind = InvalidSampleError if isinstance(refusal, tf.errors.InvalidArgumentError) else type(refusal)
        raise kind(None, None, message) from refusal


def _refused_samples(concrete, batch: Batch, input_names: Sequence[str],
                     error: tf.errors.OpError) -> tuple[str, Sample, tf.errors.OpError]:
    """Which of a refused batch's samples TensorFlow refuses, their inputs and its error.

    A batch of several samples is run again one sample at a time: the first refused alone is
    the one to name; if none is, it is the batch as a whole.
    """
    if len(batch.samples) > 1:
        for offset, sample in enumerate(batch.samples):
            try:
                _run(concrete, sample, input_names)
            except tf.errors.OpError as refusal:
                return f"sample {batch.first + offset}", sample, refusal
    last = batch.first + len(batch.samples) - 1
    which = f"sample {batch.first}" if last == batch.first else f"samples {batch.first} to {last} (joined in one batch)"
    return which, batch.inputs, error


# Bins of the histograms the calibration-method search derives its candidate ranges from.
SEARCH_BINS = 2048


def calibrate(module: ir.Module, datasets: Mapping[str, Iterable], input_specs: Mapping[str, InputSpecs],
              calibration_options, batch_size: int = 32, progress: bool = True, hold_out: bool = False,
              histograms: bool = False) -> CalibrationRun:
    """Run every signature's samples through the module and set `min`/`max` on its calibration points.

    `hold_out` keeps every 8th sample (up to KEPT_SAMPLES) out of calibration, as the run's kept
    samples; `histograms` also collects a histogram per point (`run.histograms`).
    """
    if histograms and calibration.averages_per_sample(calibration_options):
        raise ValueError("the calibration-method search cannot start from CALIBRATION_METHOD_AVERAGE_MIN_MAX, "
                         "which averages per-sample ranges; use another calibration method")
    collectors = _Collectors(calibration_options, histograms)
    run = CalibrationRun(held_out=hold_out)
    num_bins = SEARCH_BINS if histograms else calibration.new_collector(calibration_options).num_bins \
        if calibration.needs_values(calibration_options) else None
    if calibration.averages_per_sample(calibration_options) or _has_control_flow(module):
        batch_size = 1
    for signature, samples in datasets.items():
        concrete, tap_names = _instrumented_function(module, signature, num_bins, collectors.record)
        # The order the function takes its inputs in, from the function itself.
        input_names = [spec.name for spec in concrete.structured_input_signature[0]]
        output_names = [k for k in concrete.structured_outputs if not k.startswith(TAP)]
        run.samples[signature] = 0
        run.kept_inputs[signature], run.kept_outputs[signature], run.fit_inputs[signature] = [], [], []
        run.kept_samples[signature] = 0
        held_out: list = []
        fitted = _without_held_out(samples, held_out) if hold_out else samples
        input_ranges: dict[str, tuple[float, float]] = {}
        # disable=None: no bar where stderr is not a terminal (a log, a pipe): there it is only noise.
        with tqdm(desc=f"calibrating {signature}", unit=" samples", disable=None if progress else True) as bar:
            for batch in batches(fitted, input_specs[signature], signature, batch_size):
                results = _run_batch(concrete, batch, input_names, signature)
                collectors.record_outputs(results, tap_names)
                _widen_input_ranges(input_ranges, batch.inputs)
                rows = batch_rows(batch.inputs)
                if run.samples[signature] < KEPT_SAMPLES:
                    kept = run.fit_inputs if hold_out else run.kept_inputs
                    kept[signature].append(batch.inputs)
                    if not hold_out:
                        run.kept_outputs[signature].append({k: results[k].numpy() for k in output_names})
                        run.kept_samples[signature] += rows
                run.samples[signature] += rows
                bar.update(rows)
        if run.samples[signature] == 0:
            raise ValueError(f"the representative dataset for signature '{signature}' has no samples")
        if hold_out:
            collectors.paused = True
            _keep_held_out(run, signature, held_out, concrete, input_names, output_names, input_specs[signature],
                           batch_size)
            for inputs in run.kept_inputs[signature]:
                _widen_input_ranges(input_ranges, inputs)
        collectors.paused = True
        run.extremes[signature] = _extremes(concrete, input_names, output_names, input_ranges,
                                            (run.kept_inputs[signature] or run.fit_inputs[signature])[0])
        collectors.paused = False
    run.collectors = collectors.by_point
    run.histograms = collectors.histograms or {}
    write_ranges(module, collectors.by_point, calibration_options)
    return run


def _widen_input_ranges(ranges: dict[str, tuple[float, float]], inputs: Mapping[str, np.ndarray]) -> None:
    """Each float input's (min, max) so far, widened by `inputs`."""
    for name, array in inputs.items():
        if array.dtype.kind == "f" and array.size:
            low, high = float(array.min()), float(array.max())
            if name in ranges:
                low, high = min(low, ranges[name][0]), max(high, ranges[name][1])
            ranges[name] = (low, high)


def _extremes(concrete, input_names: Sequence[str], output_names: Sequence[str],
              ranges: Mapping[str, tuple[float, float]], template: Mapping[str, np.ndarray]) -> list:
    """Every float input at its calibration minimum, at its maximum, and at zero where each range holds
    it (other inputs as in `template`, one row), with the float model's outputs on them."""
    extremes = []
    for what, values in extreme_fills(ranges).items():
        inputs = {name: (np.full_like(array[:1], values[name]) if name in values else array[:1]) if array.ndim
                  else np.full_like(array, values.get(name, array)) for name, array in template.items()}
        results = _run(concrete, inputs, input_names)
        extremes.append((what, inputs, {k: results[k].numpy() for k in output_names}))
    return extremes


def extreme_fills(ranges: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    """The value each input takes in each extreme a quantized model is checked on, by what it is: the
    calibration minimum, the maximum, and zero where every range holds it (a fill equal to one before
    it is left out)."""
    candidates = {"the calibration minimum": {n: low for n, (low, _) in ranges.items()},
                  "the calibration maximum": {n: high for n, (_, high) in ranges.items()}}
    if all(low <= 0.0 <= high for low, high in ranges.values()):
        candidates["zero"] = {name: 0.0 for name in ranges}
    fills: dict[str, dict[str, float]] = {}
    for what, values in candidates.items():
        if ranges and values not in fills.values():
            fills[what] = values
    return fills


def new_non_finite(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> str | None:
    """The first float output holding an Inf or NaN in `actual` where `expected` (the float model's) has none."""
    for name, reference in expected.items():
        value = np.asarray(actual[name])
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)) and np.all(np.isfinite(reference)):
            return name
    return None


def batch_rows(inputs: Mapping[str, np.ndarray]) -> int:
    """The rows of a batch of inputs (scalar inputs, a flag or a temperature, have no batch axis)."""
    return next((v.shape[0] for v in inputs.values() if v.ndim), 1)


def _without_held_out(samples: Iterable, held_out: list) -> Iterable:
    """The samples but every HOLD_OUT_EVERY-th (up to KEPT_SAMPLES), which go to `held_out` instead."""
    for index, sample in enumerate(samples):
        if index % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1 and len(held_out) < KEPT_SAMPLES:
            held_out.append(sample)
        else:
            yield sample


def _keep_held_out(run: CalibrationRun, signature: str, held_out: list, concrete, input_names: Sequence[str],
                   output_names: Sequence[str], specs: InputSpecs, batch_size: int) -> None:
    """The held-out samples become the run's kept samples, with the float model's outputs on them."""
    if not held_out:
        raise ValueError(f"the accuracy tools hold every {HOLD_OUT_EVERY}th sample out of calibration to measure "
                         f"the result on, and the representative dataset for signature '{signature}' has only "
                         f"{run.samples[signature]} samples: give at least {HOLD_OUT_EVERY}")
    for batch in batches(held_out, specs, signature, batch_size):
        results = _run_batch(concrete, batch, input_names, signature)
        run.kept_inputs[signature].append(batch.inputs)
        run.kept_outputs[signature].append({k: results[k].numpy() for k in output_names})
        run.kept_samples[signature] += batch_rows(batch.inputs)


def write_ranges(module: ir.Module, collectors: Mapping[int, calibration.Collector], calibration_options) -> None:
    """Set min/max on each point from its statistics; a point that saw no data keeps none
    (tfq-apply-calibration-stats removes it, and its call stays float)."""
    with module.context, ir.Location.unknown():
        f32 = ir.F32Type.get()
        for op in calibration_points(module.operation):
            collector = collectors.get(_point_id(op))
            if collector is None:
                continue
            low, high = calibration.compute_range(collector.statistics(), calibration_options)
            op.attributes["min"] = ir.FloatAttr.get(f32, low)
            op.attributes["max"] = ir.FloatAttr.get(f32, high)
