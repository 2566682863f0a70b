"""The accuracy tools on the SavedModel path, between calibration and quantization.

Given the calibrated module and the calibration run (with samples held out of calibration), this
measures and decides, in simulation (`tfquant.accuracy.simulation`):

1. calibration-method search: per point, the range among min-max, percentiles and the MSE methods
   that gives the units reading it the least local error, on calibration samples; kept where the
   whole model gets better on them;
2. bias correction: each unit's mean output shift (quantized minus float, per channel, before its
   activation) on calibration samples, written as `tfq.bias_shift` for tfq-correct-bias; "auto"
   keeps it only where the model gets better on them;
3. fallback to a target SQNR: one sensitivity pass (each unit alone quantized, at 8 and 16 bits),
   then `accuracy.fallback.search` on the held-out samples; the choices become unit specs
   (16-bit activations or float, with the reason);
4. the per-layer report of the model so decided, on the held-out samples, with the detectors'
   findings.

Choices that must not see the held-out samples (1, 2) are made on calibration samples; the target
is checked on the held-out samples, as the report is.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfquant import calibration, latency
from tfquant.accuracy import fallback
from tfquant.accuracy.layers import FLOAT, INT8, INT16, Finding, LayerError, LayerReport, OutputNoise, sqnr_db
from tfquant.accuracy import detectors
from tfquant.accuracy.simulation import Simulation, unit_index, unmark
from tfquant.calibrate import CalibrationRun
from tfquant.mlir import clone_module, ir, walk_ops
from tfquant.options import DEFAULT_MAX_PERCENTILE, DEFAULT_MIN_PERCENTILE, CalibrationOptions, ResolvedOptions
from tfquant.passes._points import calibration_points
from tfquant.passes._op_specs import TF_ZERO_SENSITIVE
from tfquant.passes._spec import STATIC, UnitSpec, keep_float, set_unit_spec, unit_spec
from tfquant.passes._tfq import CalibrationPointOp

BIAS_SHIFT = "tfq.bias_shift"
MODES = ("auto", "on", "off")
_Method = CalibrationOptions.CalibrationMethod
# The candidate ranges of the calibration-method search beside min-max, by name, from each point's
# histogram: (method, (min percentile, max percentile) for the percentile method).
SEARCH_METHODS = {
    "percentile": (_Method.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, (DEFAULT_MIN_PERCENTILE, DEFAULT_MAX_PERCENTILE)),
    "percentile_99.99": (_Method.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, (0.01, 99.99)),
    "percentile_99.9": (_Method.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, (0.1, 99.9)),
    "mse_symmetric": (_Method.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC, None),
    "mse_max_frequency": (_Method.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY, None),
}


@dataclass(frozen=True)
class AccuracyOptions:
    """tfquant's accuracy keywords of `quantize_saved_model`."""
    report: bool = False
    target_sqnr: float | None = None
    calibration_search: bool = False
    bias_correction: str = "auto"
    equalize: str = "auto"

    def __post_init__(self) -> None:
        for name in ("bias_correction", "equalize"):
            if getattr(self, name) not in MODES:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, MODES))}, got {getattr(self, name)!r}")
        if self.target_sqnr is not None and not (isinstance(self.target_sqnr, (int, float))
                                                 and math.isfinite(self.target_sqnr)):
            raise ValueError(f"target_sqnr must be a finite number of dB, got {self.target_sqnr!r}")

    @property
    def active(self) -> bool:
        """Whether anything needs the simulation (and so samples held out of calibration)."""
        return (self.report or self.target_sqnr is not None or self.calibration_search
                or "on" in (self.bias_correction, self.equalize))


Batch = tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]   # signature, inputs, float outputs


class _Measure:
    """Runs the simulation over a set of batches."""

    def __init__(self, sim: Simulation, batches: Sequence[Batch]):
        self.sim = sim
        self.batches = batches

    def model_sqnr(self, bits: Mapping[int, int] | None = None) -> dict[str, float]:
        """Each float output's SQNR with units at `bits` (default: their spec's bits)."""
        self.sim.set_choice(bits or {})
        noise = OutputNoise()
        for signature, inputs, expected in self.batches:
            noise.add(signature, expected, self.sim.quantized_outputs(signature, inputs))
        return noise.sqnr_db()

    def worst(self, bits: Mapping[int, int] | None = None) -> float:
        return min(self.model_sqnr(bits).values(), default=math.inf)

    def sums(self, bits: Mapping[int, int] | None = None) -> dict[str, np.ndarray]:
        """The analysis sums over every batch."""
        self.sim.set_choice(bits or {})
        total: dict[str, np.ndarray] = {}
        for signature, inputs, _ in self.batches:
            for key, value in self.sim.analyze(signature, inputs).items():
                total[key] = total[key] + value if key in total else value.astype(np.float64)
        return total


def improve(module: ir.Module, run: CalibrationRun, options: AccuracyOptions, signatures: Sequence[str],
            sixteen_bit: bool = True, sim: Simulation | None = None,
            quantization: ResolvedOptions | None = None) -> LayerReport:
    """Apply the accuracy tools to the calibrated `module` (see the module docstring); the report.
    `sixteen_bit`: whether the opset has 16-bit activations for the fallback to use; `sim`: the
    module's simulation if one was made already (its marks are removed here, in any case);
    `quantization`: the run's resolved options, to measure what each fallen-back unit costs in latency
    (`tfquant.latency.form_costs`; not measured without them)."""
    try:
        sim = sim or Simulation(module, signatures)
        held_out = _Measure(sim, _held_out_batches(run, signatures))
        fit = _Measure(sim, _float_batches(sim, run, signatures))
        baseline = held_out.model_sqnr()
        scores = _Scores(fit.worst(), min(baseline.values(), default=math.inf))
        applied: dict[str, float] = {}
        rejected: dict[str, float] = {}
        if options.calibration_search and run.histograms:
            _search_ranges(module, sim, fit, held_out, run, scores, applied, rejected)
        if options.bias_correction != "off":
            _correct_biases(module, sim, fit, held_out, options.bias_correction == "on", scores, applied, rejected)
        bits: dict[int, int] = {}
        reasons: dict[int, str] = {}
        met = None
        costs: dict[int, float] = {}
        if options.target_sqnr is not None:
            bits, reasons, met = _fall_back(sim, held_out, options.target_sqnr, sixteen_bit)
            fallen_back = [unit.index for unit in sim.units if bits.get(unit.index, unit.bits) != unit.bits]
            int8_module = clone_module(module) if quantization is not None and fallen_back else None
            _apply_choice(module, sim, bits, reasons)
            if int8_module is not None:
                costs = _latency_costs(int8_module, module, quantization, fallen_back)
        report = _report(sim, held_out, sum(run.kept_samples.get(s, 0) for s in signatures), bits, reasons, costs)
        report.baseline_sqnr_db = baseline
        report.applied, report.rejected = applied, rejected
        report.target_sqnr_db = options.target_sqnr
        report.target_met = met
        return report
    finally:
        if sim is not None:
            sim.close()
        unmark(module)


@dataclass
class _Scores:
    """The simulated model's worst output SQNR as the tools stand: on calibration samples (what they
    decide on) and on the held-out samples (what the report says they did)."""
    fit: float
    held_out: float

    def decide(self, name: str, fit: float, held_out: float, keep: bool, applied: dict, rejected: dict) -> bool:
        """Record a tool's effect on the held-out samples; keep it (and its scores) if `keep` or it helped."""
        keep = keep or fit > self.fit
        (applied if keep else rejected)[name] = held_out - self.held_out
        if keep:
            self.fit, self.held_out = fit, held_out
        return keep


def fit_sqnr(sim: Simulation, run: CalibrationRun) -> tuple[float, float]:
    """The simulated model's worst output SQNR on the calibration samples kept for decisions, and on the
    held-out samples (for comparing two preparations of a model, e.g. with and without equalization)."""
    return (_Measure(sim, _float_batches(sim, run, sim.signatures)).worst(),
            _Measure(sim, _held_out_batches(run, sim.signatures)).worst())


def _held_out_batches(run: CalibrationRun, signatures: Sequence[str]) -> list[Batch]:
    return [(s, i, o) for s in signatures for i, o in zip(run.kept_inputs.get(s, ()), run.kept_outputs.get(s, ()))]


def _float_batches(sim: Simulation, run: CalibrationRun, signatures: Sequence[str]) -> list[Batch]:
    """The calibration samples kept for decisions, with the float model's outputs on them."""
    batches = []
    floats = {unit.index: 0 for unit in sim.units}
    sim.set_choice(floats)
    for signature in signatures:
        for inputs in run.fit_inputs.get(signature, ()):
            batches.append((signature, inputs, sim.quantized_outputs(signature, inputs)))
    return batches


# 1. Calibration-method search.

def _search_ranges(module: ir.Module, sim: Simulation, fit: _Measure, held_out: _Measure, run: CalibrationRun,
                   scores: _Scores, applied: dict[str, float], rejected: dict[str, float]) -> None:
    default = {point_id: point.range for point_id, point in sim.points.items()}
    candidates = {"default": default, **_candidate_ranges(sim, run)}
    local_error: dict[str, dict[int, float]] = {}
    for name, ranges in candidates.items():
        sim.set_ranges(ranges)
        sums = fit.sums()
        local_error[name] = {unit.index: _local_ratio(sums, unit.index) for unit in sim.units
                             if f"unit{unit.index}" in sums}
    chosen = {}
    for point_id, point in sim.points.items():
        errors = {name: sum(local_error[name].get(u, 0.0) for u in point.consumers) for name in candidates}
        best = min(errors, key=lambda name: (errors[name], name != "default"))
        chosen[point_id] = candidates[best][point_id]
    sim.set_ranges(chosen)
    if scores.decide("calibration_search", fit.worst(), held_out.worst(), False, applied, rejected):
        _write_ranges(module, chosen)
        for point_id, point in sim.points.items():
            point.range = chosen[point_id]
    else:
        sim.set_ranges(default)


def _candidate_ranges(sim: Simulation, run: CalibrationRun) -> dict[str, dict[int, tuple[float, float]]]:
    """Per search method, each point's range from its histogram (the point's own range where it has none)."""
    candidates: dict[str, dict[int, tuple[float, float]]] = {"min_max": {}}
    for name in SEARCH_METHODS:
        candidates[name] = {}
    for point_id, point in sim.points.items():
        histogram = run.histograms.get(point_id)
        statistics = histogram.statistics() if histogram is not None else None
        hist = statistics.histogram_statistics if statistics is not None else None
        candidates["min_max"][point_id] = point.range if hist is None else (
            float(hist.lower_bound), float(hist.lower_bound + hist.bin_width * len(hist.hist_freq)))
        for name, (method, percentiles) in SEARCH_METHODS.items():
            candidates[name][point_id] = point.range if statistics is None else calibration.compute_range(
                statistics, _options(method, percentiles))
    return candidates


def _options(method: int, percentiles: tuple[float, float] | None) -> CalibrationOptions:
    options = CalibrationOptions(calibration_method=method)
    if percentiles is not None:
        options.calibration_parameters.min_percentile, options.calibration_parameters.max_percentile = percentiles
    return options


def _write_ranges(module: ir.Module, ranges: Mapping[int, tuple[float, float]]) -> None:
    with module.context, ir.Location.unknown():
        for point in calibration_points(module.operation):
            if point.id in ranges:
                point.set_range(*ranges[point.id])


def _local_ratio(sums: Mapping[str, np.ndarray], unit: int) -> float:
    """A unit's local noise (it alone quantized) over its output's signal."""
    signal, local_noise = sums[f"unit{unit}"][:2]
    return local_noise / signal if signal > 0 else 0.0


# 2. Bias correction.

def _correct_biases(module: ir.Module, sim: Simulation, fit: _Measure, held_out: _Measure, forced: bool,
                    scores: _Scores, applied: dict[str, float], rejected: dict[str, float]) -> None:
    sums = fit.sums()
    shifts = {}
    for unit in sim.units:
        totals = sums.get(f"shift{unit.index}")
        if totals is not None and unit.bias_index is not None and totals[-1] > 0:
            shifts[unit.index] = (totals[:-1] / totals[-1]).astype(np.float32)
    if not shifts:
        return
    sim.set_bias_shift(shifts)
    if scores.decide("bias_correction", fit.worst(), held_out.worst(), forced, applied, rejected):
        _write_shifts(module, shifts)
    else:
        sim.set_bias_shift(None)


def _write_shifts(module: ir.Module, shifts: Mapping[int, np.ndarray]) -> None:
    calls = _marked_calls(module)
    with module.context, ir.Location.unknown():
        for index, shift in shifts.items():
            calls[index].attributes[BIAS_SHIFT] = ir.DenseElementsAttr.get(shift.astype(np.float32))


def _marked_calls(module: ir.Module) -> dict[int, ir.Operation]:
    return {unit_index(op): op for op in walk_ops(module.operation, lambda op: unit_index(op) is not None)}


# 3. Fallback to a target.

def _fall_back(sim: Simulation, held_out: _Measure, target: float,
               sixteen_bit: bool) -> tuple[dict[int, int], dict[int, str], bool]:
    """Each unit's bits (0: float) meeting `target` on the held-out samples, why each fell back, and
    whether the target was met."""
    floats = {unit.index: 0 for unit in sim.units}
    sensitivities = [fallback.Sensitivity(str(unit.index), unit.index,
                                          _noise(held_out, {**floats, unit.index: 8}),
                                          _noise(held_out, {**floats, unit.index: 16}) if sixteen_bit else None)
                     for unit in sim.units]

    def evaluate(choice: Mapping[str, str]) -> float:
        return held_out.worst(_bits(sim, choice))

    result = fallback.search(sensitivities, evaluate, target)
    reasons = {int(unit): reason for unit, reason in result.reasons.items()}
    if not result.met:
        reasons = {int(unit): f"{reason}; the target was not met ({result.sqnr_db:.1f} dB with every unit "
                   "tried)" for unit, reason in result.reasons.items()}
    return _bits(sim, result.choice), reasons, result.met


def _noise(measure: _Measure, bits: Mapping[int, int]) -> float:
    """The model's worst relative output noise (noise over signal) with units at `bits`."""
    return 10 ** (-measure.worst(bits) / 10)


def _bits(sim: Simulation, choice: Mapping[str, str]) -> dict[int, int]:
    widths = {INT8: None, INT16: 16, FLOAT: 0}
    bits = {}
    for unit in sim.units:
        width = widths[choice.get(str(unit.index), INT8)]
        bits[unit.index] = unit.bits if width is None else width
    return bits


def _latency_costs(int8_module: ir.Module, chosen_module: ir.Module, quantization: ResolvedOptions,
                   units: Sequence[int]) -> dict[int, float]:
    """Seconds each of `units` costs at batch 1 in its chosen form over its spec's (positive: slower)."""
    keys = {unit_index(call): key for key, call in latency.unit_keys(chosen_module).items()
            if unit_index(call) is not None}
    costs = latency.form_costs(int8_module, chosen_module, quantization, [keys[unit] for unit in units])
    return {unit: costs[keys[unit]] for unit in units if keys[unit] in costs}


def _apply_choice(module: ir.Module, sim: Simulation, bits: Mapping[int, int], reasons: Mapping[int, str]) -> None:
    """Unit specs and points' widths for the fallback's choice."""
    calls = _marked_calls(module)
    with module.context, ir.Location.unknown():
        for unit in sim.units:
            width = bits.get(unit.index, unit.bits)
            if width == unit.bits:
                continue
            call = calls[unit.index]
            if width == 0:
                keep_float(call, reasons.get(unit.index, "fallback"))
            else:
                spec = unit_spec(call)
                set_unit_spec(call, UnitSpec(STATIC, width, spec.per_channel if spec else True))
        for point in calibration_points(module.operation):
            _set_point_bits(point, sim, bits)


def _set_point_bits(point: CalibrationPointOp, sim: Simulation, bits: Mapping[int, int]) -> None:
    """The point's width for the units now reading it; a point no quantized unit reads loses its range
    (tfq-apply-calibration-stats then removes it): rounding a float unit's output for float ops
    would only add error."""
    info = sim.points.get(point.id)
    if info is None:
        return
    readers = [bits.get(u, sim.units[u].bits) for u in info.consumers]
    if info.producer is not None and any(readers):
        readers.append(bits.get(info.producer, sim.units[info.producer].bits))
    widest = max(readers, default=0)
    if widest:
        point.activation_bits = widest
    else:
        point.clear_range()


# 4. The report.

def _report(sim: Simulation, held_out: _Measure, held_out_samples: int, bits: Mapping[int, int],
            reasons: Mapping[int, str], latency_costs: Mapping[int, float]) -> LayerReport:
    sums = held_out.sums(bits)
    layers = []
    for unit in sim.units:
        if f"unit{unit.index}" not in sums:
            continue
        signal, local_noise, seen_signal, accumulated_noise = sums[f"unit{unit.index}"]
        unit_points = [*unit.activation_points.values(), *([unit.output_point] if unit.output_point is not None else [])]
        clipped = sum(int(sums[f"point{p}"][0]) for p in unit_points if f"point{p}" in sums)
        values = sum(int(sums[f"point{p}"][1]) for p in unit_points if f"point{p}" in sums)
        width = bits.get(unit.index, unit.bits)
        kept_as = FLOAT if width == 0 else INT16 if width == 16 else INT8
        first_input = next(iter(unit.activation_points.values()))
        layers.append(LayerError(
            index=unit.index, name=unit.name, op_type=unit.op_type,
            local_sqnr_db=sqnr_db(signal, local_noise), accumulated_sqnr_db=sqnr_db(seen_signal, accumulated_noise),
            input_range=sim.points[first_input].range,
            output_range=sim.points[unit.output_point].range if unit.output_point is not None else None,
            clipped=clipped, values=values, kept_as=kept_as, reason=reasons.get(unit.index),
            size_cost_bytes=3 * unit.weight.size if kept_as == FLOAT else 0,
            latency_cost_s=latency_costs.get(unit.index)))
    return LayerReport(layers, held_out_samples, model_sqnr_db=held_out.model_sqnr(bits),
                       findings=_findings(sim, sums), path="saved_model")


def _findings(sim: Simulation, sums: Mapping[str, np.ndarray]) -> list[Finding]:
    findings = []
    for point_id, point in sim.points.items():
        stats = sums.get(f"point{point_id}")
        if stats is not None and point.consumers:
            findings.append(detectors.outliers(point.node, point.range, stats[2], stats[1],
                                               [sim.units[u].name for u in point.consumers]))
    for watched in sim.watched:
        stats = sums.get(f"watch{watched.key}")
        if stats is None:
            continue
        blamed = [sim.units[u].name for u in watched.upstream_units]
        op_type = watched.op_name[len("tf."):]
        if watched.op_name in TF_ZERO_SENSITIVE:
            smallest, largest = stats[0]
            if blamed:   # with no quantized unit before it, nothing rounds its input
                findings.append(detectors.preprocessing(watched.node, op_type, smallest, (0.0, largest), blamed))
        else:
            findings.append(detectors.range_mismatch(watched.node, op_type, [float(peak) for _, peak in stats],
                                                     blamed))
    return [finding for finding in findings if finding is not None]
