"""Quantize a float TFLite flatbuffer: import it as tfl.* ops, run the TFLite passes, export it.

    float .tflite ──import──▶ tfl.* ops ──tfq-tfl-prepare-quantize──▶ calibration points
        ──calibrate in LiteRT (each watched tensor an extra output)──▶ ranges
        ──tfq-apply-calibration-stats, tfq-tfl-quantize, tfq-tfl-post-quantize, tfq-tfl-modify-io──▶ .tflite

`samples` come from the API layer already normalized: (signature key, {input name: array}).
The model is calibrated on every sample; the report's SQNR is that of a twin calibrated without
every 8th sample (up to 32), measured on those held-out samples.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm
from tfquant.options import METHODS as OPTION_METHODS
from tfquant.options import CalibrationOptions

from tfquant import calibration
from tfquant.calibrate import extreme_fills, new_non_finite, write_ranges
from tfquant.dataset import batches, validate_sample
from tfquant.accuracy.fallback import FallbackResult, Sensitivity, search
from tfquant.accuracy.layers import FLOAT, INT16, LayerReport, OutputNoise, sqnr_db
from tfquant.lite import _fallback, _layers, _litert
from tfquant.mlir import CompileError, describe_location, ir, module_funcs, new_context, ops_named
from tfquant.passes._op_specs import SHAPE_READERS, TFL
from tfquant.passes._points import CALIBRATION_POINT, calibration_points
from tfquant.passes._quant import tensor_params
from tfquant.passes._spec import STATIC, float_reason
from tfquant.passes._tf_ops import is_float
from tfquant.passes._tfl import STRUCTURAL_OPS, builtin_name, io_names, tfl_ops
from tfquant.pipeline import Pipeline, make_pipeline, run_pipeline
from tfquant.tflite_flatbuffer import export_flatbuffer, export_flatbuffer_with_tensors, import_flatbuffer

Sample = tuple[str, Mapping[str, np.ndarray]]
HOLD_OUT_EVERY = 8
HOLD_OUT_LIMIT = 32
BATCH_SIZE = 32
# What the watched tensors of one calibration batch may take: every one is kept at once, and an
# EfficientNet-B0 keeps ~100 MB of them per 224x224 image (32 of them took 30 s in page faults).
BATCH_BYTES = 256 << 20


@dataclass(frozen=True)
class LiteQuantization:
    """What the converter's settings ask for, in tfquant's terms (passes/_spec.py method names)."""
    method: str                      # "static" | "dynamic_range" | "float16" | "no_quantize"
    activation_bits: int = 8         # 16: the 16x8 mode
    integer_only: bool = False       # no float op may remain between input and output
    input_type: str = "float32"      # "float32" | "int8" | "uint8" | "int16"
    output_type: str = "float32"
    # Legacy TF1 `quantized_input_stats`, as a real range per input name (mean/std_dev converted).
    input_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    per_channel: bool = True


@dataclass
class LiteReport:
    """What a conversion did; `str()` is the summary the command line prints."""
    ops_quantized: dict[str, int]        # builtin op name -> count quantized
    ops_float: dict[str, int]            # builtin op name -> count left float
    float_reasons: list[tuple[str, str, str]]  # (op name, location, why it stayed float)
    mode: str
    calibration_samples: int
    held_out_samples: int
    float_bytes: int
    output_bytes: int
    seconds: float
    measure_sqnr: Callable[[], dict[str, float]] = field(default=dict, repr=False, compare=False)
    # With a target: the shipped model's LiteRT latency minus that of the all-int8 one (batch 1).
    fallback_latency_s: float | None = None
    measure_layers: Callable[[], LayerReport] = field(default=lambda: LayerReport([], 0, path="tflite"),
                                                      repr=False, compare=False)

    @functools.cached_property
    def sqnr_db(self) -> dict[str, float]:
        """SQNR (dB) of each float output ("<signature>/<name>") against the float model, on the held-out
        samples, of a twin calibrated without them; measured when first read, not as part of converting."""
        return self.measure_sqnr()

    @functools.cached_property
    def layers(self) -> LayerReport:
        """Each static unit's error (local and accumulated SQNR, ranges, clipping) and the detectors'
        findings, on the held-out samples, of the twin the SQNR is measured on (tfquant.lite._layers);
        measured when first read."""
        return self.measure_layers()

    def __str__(self) -> str:
        lines = [f"TFLite {self.mode}", "-" * 40, f"{'Op type':<28}{'Quantized':>10}{'Float':>8}"]
        for name in sorted(set(self.ops_quantized) | set(self.ops_float)):
            lines.append(f"{name:<28}{self.ops_quantized.get(name, 0):>10}{self.ops_float.get(name, 0):>8}")
        for op, where, reason in self.float_reasons:
            lines.append(f"  float: {op} at {where}: {reason}")
        lines.append(f"calibration samples: {self.calibration_samples}")
        if self.fallback_latency_s is not None:
            lines.append(f"fallback to the accuracy target: {self.fallback_latency_s * 1e3:+.2f} ms per run against "
                         f"all int8 (the units and their costs: .layers)")
        if self.sqnr_db:
            lines.append(f"SQNR against the float model on {self.held_out_samples} held-out samples:")
            lines.extend(f"  {name}: {value:.1f} dB" for name, value in self.sqnr_db.items())
        lines.append(f"size: {self.float_bytes / 1e3:.1f} kB float -> {self.output_bytes / 1e3:.1f} kB "
                     f"({self.output_bytes / max(self.float_bytes, 1):.3f}x), {self.seconds:.1f} s")
        return "\n".join(lines)


def quantize_flatbuffer(float_model: bytes, quantization: LiteQuantization, samples: Iterable[Sample] | None,
                        calibration_options: CalibrationOptions | None = None,
                        units: str | Sequence[Mapping[str, object]] = "[]",
                        target_sqnr: float | None = None) -> tuple[bytes, LiteReport]:
    """The quantized flatbuffer of `float_model` and what was done (see the module docstring).

    The model is calibrated on every sample. The report's SQNR is that of a second model calibrated
    without the held-out samples (every 8th, up to 32), measured on them: an honest estimate of how
    the model does on inputs it was not calibrated on.

    `units` are unit-wise rules ({"op_type"/"node_name"/"func_name": regex, "method": ...,
    "activation_bits": 8 | 16}; the method also by tfquant.options' names, "static_range_int16x8" for
    16-bit activations with int8 weights), as a list or its JSON. With `target_sqnr` (dB), units fall
    back to 16-bit activations or float, fewest first, until the held-out SQNR of every float output
    meets it (see `_fall_back`); the report's `layers` say which and what each cost.
    """
    start = time.perf_counter()
    calibration_options = calibration_options or CalibrationOptions(
        calibration_method=CalibrationOptions.CALIBRATION_METHOD_MIN_MAX)
    units = _unit_rules(units)
    kept: list[Sample] = []
    statistics = None
    outcome = None
    with new_context() as ctx, ir.Location.unknown():
        module = _prepared(float_model, quantization, units, calibration_options, ctx)
        if _needs_calibration(module, samples):
            statistics = _calibrate(module, samples, kept, calibration_options)
        _write_ranges(module, statistics.merged(calibration_options) if statistics else {}, quantization,
                      calibration_options)
        model, (quantized_ops, floats, reasons) = _finished(module, quantization)
    if target_sqnr is not None:
        outcome = _fall_back(float_model, quantization, units, calibration_options, statistics, kept, target_sqnr,
                             model)
        model, (quantized_ops, floats, reasons) = outcome.model, outcome.counts
    if statistics is not None:
        _check_extremes(float_model, model, statistics.input_ranges)
    shipped_units = outcome.units if outcome else units
    report = LiteReport(quantized_ops, floats, reasons, _mode_name(quantization),
                        statistics.samples if statistics else 0, len(kept), len(float_model), len(model),
                        time.perf_counter() - start,
                        functools.partial(_held_out_sqnr, float_model, quantization, shipped_units,
                                          calibration_options, statistics, kept),
                        outcome.latency_change_s if outcome else None,
                        functools.partial(_layer_report, float_model, quantization, units, calibration_options,
                                          statistics, kept, outcome))
    return model, report


def _unit_rules(units: str | Sequence[Mapping[str, object]]) -> str:
    """The unit rules as tfq-tfl-prepare-quantize takes them (JSON, its method names): a method named
    as tfquant.options names them ("static_range_int16x8") becomes its method and activation bits."""
    try:
        rules = json.loads(units) if isinstance(units, str) else list(units)
    except ValueError:
        return units  # tfq-tfl-prepare-quantize says what is wrong with it
    if not isinstance(rules, list):
        return units
    converted = []
    for rule in rules:
        if isinstance(rule, Mapping) and rule.get("method") in OPTION_METHODS:
            method, bits = OPTION_METHODS[rule["method"]]
            rule = {**rule, "method": method, "activation_bits": rule.get("activation_bits") or bits}
        converted.append(rule)
    return json.dumps(converted)


@dataclass
class _FallbackOutcome:
    """What the fallback to a target chose and what it cost."""
    result: FallbackResult
    units: str                           # the shipped model's unit rules (the choice's, then the user's)
    model: bytes
    counts: tuple
    target_db: float
    baseline_sqnr_db: dict[str, float]   # the all-int8 twin's, per output
    costs: dict[str, tuple[int, float]]  # unit -> (size in bytes, latency in s) of its fallback alone
    latency_change_s: float              # the shipped model's against the all-int8 one


def _fall_back(float_model: bytes, quantization: LiteQuantization, units: str,
               calibration_options: CalibrationOptions, statistics: "_Statistics | None", kept: list[Sample],
               target_db: float, int8_model: bytes) -> _FallbackOutcome:
    """Move the fewest units to 16-bit activations or float for the worst float output to meet
    `target_db` on the held-out samples (tfquant.accuracy.fallback.search; the twins it measures are
    calibrated without them), then ship the choice calibrated on every sample, re-checked there (the
    search continues from it if it misses).

    Integer-only mode has no float: a unit that would fall back to float takes 16-bit activations,
    and a target that 16-bit activations cannot meet is a CompileError. A choice the settings cannot
    build (16-bit activations reading an int8 model input) counts as missing the target. Otherwise an
    unmet target (a float op that no unit rule can change) is a warning, and the report says so.
    """
    if statistics is None or quantization.method != STATIC:
        raise ValueError("target_sqnr needs full-integer quantization with a representative dataset")
    if not kept:
        raise ValueError(f"target_sqnr needs samples held out of calibration: the representative dataset has "
                         f"fewer than {HOLD_OUT_EVERY}")
    twins = _Twins(float_model, quantization, units, calibration_options, _fallback.HeldOut(float_model, kept))
    everything = statistics.merged(calibration_options)
    sensitivities = _sensitivities(twins, statistics.calibration)
    result = search(sensitivities, twins.evaluator(statistics.calibration), target_db)
    shipped = twins.evaluator(everything)
    if result.met and shipped(result.choice) < target_db:
        first = result
        result = search(sensitivities, shipped, target_db, start=first.choice)
        result = dataclasses.replace(result, reasons={**first.reasons, **result.reasons})
    if not result.met and quantization.integer_only:
        raise CompileError(f"integer-only quantization cannot meet the {target_db:g} dB target: with 16-bit "
                           f"activations where they help, the held-out SQNR is {result.sqnr_db:.1f} dB; allow "
                           f"float ops or lower the target")
    if not result.met:
        warnings.warn(f"the {target_db:g} dB target is not met: {result.sqnr_db:.1f} dB with every unit that "
                      f"can fall back to float at float", stacklevel=3)
    result = dataclasses.replace(result, choice=twins.allowed(result.choice))
    model, (quantized_ops, floats, reasons) = twins.built(twins.rules(result.choice), everything)
    # A unit the fallback left float says why in its words, not as the unit rule that did it
    # (`where` is describe_location's, of the unit's name location).
    by_location = {f'loc("{name}")': why for name, why in result.reasons.items()}
    reasons = [(op, where, by_location.get(where, reason)) for op, where, reason in reasons]
    int8_latency = twins.held_out.latency_s(int8_model)
    costs = {}
    for name, kind in result.choice.items():
        alone = twins.built(twins.rules({name: kind}), everything)[0]
        costs[name] = (len(alone) - len(int8_model), twins.held_out.latency_s(alone) - int8_latency)
    baseline = twins.held_out.noise(twins.built([], statistics.calibration)[0])
    return _FallbackOutcome(result, json.dumps([*twins.rules(result.choice), *json.loads(units)]), model,
                            (quantized_ops, floats, reasons), target_db,
                            {name: sqnr_db(*totals) for name, totals in baseline.items()}, costs,
                            twins.held_out.latency_s(model) - int8_latency)


class _Twins:
    """Models of one float model and calibration that differ in what some units are computed as."""

    def __init__(self, float_model: bytes, quantization: LiteQuantization, units: str,
                 calibration_options: CalibrationOptions, held_out: _fallback.HeldOut) -> None:
        self.float_model, self.quantization, self.units = float_model, quantization, units
        self.calibration_options, self.held_out = calibration_options, held_out
        with new_context() as ctx, ir.Location.unknown():
            self.found = _layers.static_units(_prepared(float_model, quantization, units, calibration_options, ctx))

    def allowed(self, choice: Mapping[str, str]) -> dict[str, str]:
        """`choice` as the mode allows it: integer-only has 16-bit activations where float was asked."""
        return {name: INT16 if self.quantization.integer_only and kind == FLOAT else kind
                for name, kind in choice.items()}

    def rules(self, choice: Mapping[str, str]) -> list[dict]:
        return _fallback.choice_rules(self.allowed(choice), self.found)

    def built(self, rules: list[dict], collectors: Mapping[ValueKey, calibration.Collector],
              quantization: LiteQuantization | None = None, users_rules: bool = True) -> tuple[bytes, tuple]:
        """The flatbuffer (and op counts) with `rules` (before the user's) and the ranges of `collectors`."""
        quantization = quantization or self.quantization
        rules = [*rules, *json.loads(self.units)] if users_rules else rules
        with new_context() as ctx, ir.Location.unknown():
            module = calibrated(self.float_model, quantization, json.dumps(rules), self.calibration_options,
                                collectors, ctx)
            return _finished(module, quantization)

    def evaluator(self, collectors: Mapping[ValueKey, calibration.Collector]) -> Callable[[Mapping[str, str]], float]:
        """The worst held-out SQNR of the model of a choice (each choice built once); -inf for a choice
        the settings do not allow (16-bit activations reading an int8 input)."""
        @functools.cache
        def measured(choice: frozenset) -> float:
            try:
                model = self.built(self.rules(dict(choice)), collectors)[0]
            except CompileError:
                return -math.inf
            return self.held_out.worst_sqnr(model)
        return lambda choice: measured(frozenset(choice.items()))


def _sensitivities(twins: _Twins, collectors: Mapping[ValueKey, calibration.Collector]) -> list[Sensitivity]:
    """Each unit's noise at the outputs when it alone is quantized, at 8 bits and (where a 16x8
    kernel exists and the model's activations are 8-bit) at 16; built with float ops and IO allowed."""
    quantization = twins.quantization
    relaxed = dataclasses.replace(quantization, integer_only=False, input_type="float32", output_type="float32")

    def noise(unit: _layers.Unit, bits: int) -> float:
        alone = twins.built(_fallback.alone_rules(unit, bits), collectors, relaxed, users_rules=False)[0]
        return twins.held_out.total_noise(alone)

    return [Sensitivity(unit.name, unit.index, noise(unit, quantization.activation_bits),
                        noise(unit, 16) if quantization.activation_bits == 8 and TFL[unit.op_name].int16 else None)
            for unit in twins.found]


def _held_out_sqnr(float_model: bytes, quantization: LiteQuantization, units: str,
                   calibration_options: CalibrationOptions, statistics: "_Statistics | None",
                   kept: list[Sample]) -> dict[str, float]:
    """The SQNR on the held-out samples of the model calibrated without them."""
    if statistics is None or not kept:
        return {}
    with new_context() as ctx, ir.Location.unknown():
        module = calibrated(float_model, quantization, units, calibration_options, statistics.calibration, ctx)
        twin = _finished(module, quantization)[0]
    return _sqnr(float_model, twin, kept)


def _layer_report(float_model: bytes, quantization: LiteQuantization, units: str,
                  calibration_options: CalibrationOptions, statistics: "_Statistics | None",
                  kept: list[Sample], outcome: _FallbackOutcome | None = None) -> LayerReport:
    """The per-layer report on the held-out samples (see tfquant.lite._layers), of the twin calibrated
    without them (with the fallback's choice, if any); local errors (each unit alone at the model's
    width) from a local model of the same calibration; the fallback's reasons and costs."""
    if statistics is None or not kept or quantization.method != STATIC:
        return LayerReport([], len(kept), path="tflite")
    with new_context() as ctx, ir.Location.unknown():
        module = calibrated(float_model, quantization, units, calibration_options, statistics.calibration, ctx)
        units_found = _layers.static_units(module)
        _layers.add_local_clones(module, units_found)
        quantized(module, dataclasses.replace(quantization, integer_only=False), integer_io=False)
        local, measures, sinks = _layers.watch_local(module, units_found)
    with new_context() as ctx, ir.Location.unknown():
        module = calibrated(float_model, quantization, outcome.units if outcome else units, calibration_options,
                            statistics.calibration, ctx)
        quantized(module, quantization)
        twin, kept_as = _layers.watch_twin(module, units_found)
    report = _layers.measure(local, twin, measures, kept_as, sinks, kept)
    if outcome is not None:
        _add_fallback(report, outcome)
    return report


def _add_fallback(report: LayerReport, outcome: _FallbackOutcome) -> None:
    """The fallback's target, baseline, reasons and costs in the report."""
    report.target_sqnr_db = outcome.target_db
    report.baseline_sqnr_db = outcome.baseline_sqnr_db
    report.applied["fallback"] = (min(report.model_sqnr_db.values(), default=math.inf)
                                  - min(outcome.baseline_sqnr_db.values(), default=math.inf))
    for position, layer in enumerate(report.layers):
        if layer.name in outcome.result.choice:
            size, latency = outcome.costs[layer.name]
            report.layers[position] = dataclasses.replace(
                layer, reason=outcome.result.reasons.get(layer.name), size_cost_bytes=size, latency_cost_s=latency)


def _check_extremes(float_model: bytes, model: bytes, input_ranges: Mapping[str, Mapping[str, tuple]]) -> None:
    """Run the quantized model on each input filled with its calibration minimum, its maximum and
    zero (where the range holds it): a kernel that refuses its operands, or an Inf or NaN where the
    float model has none, is an error now rather than in the user's hands."""
    float_signatures = _litert.signatures(_litert.interpreter(float_model))
    signatures = _litert.signatures(_litert.interpreter(model))
    for key, ranges in input_ranges.items():
        specs = float_signatures[key].input_specs
        for what, values in extreme_fills(ranges).items():
            inputs = {name: np.full([d or 1 for d in specs[name][1]], values[name], specs[name][0]) for name in specs}
            failure = _extreme_failure(float_signatures[key], signatures[key], inputs)
            if failure is not None:
                raise CompileError(f"the quantized model {failure} on signature '{key}' with every input at {what}")


def _extreme_failure(float_signature: _litert.Signature, signature: _litert.Signature,
                     inputs: Mapping[str, np.ndarray]) -> str | None:
    try:
        got = signature.run(inputs)
    except RuntimeError as error:
        return f"fails to run ({str(error).splitlines()[0]})"
    name = new_non_finite(float_signature.run(inputs), got)
    return None if name is None else f"returns Inf or NaN in output '{name}' where the float model does not"


def _prepared(float_model: bytes, quantization: LiteQuantization, units: str,
              calibration_options: CalibrationOptions, ctx: ir.Context) -> ir.Module:
    """The float model as tfl.* ops with its specs and calibration points."""
    module = import_flatbuffer(float_model, ctx)
    _run_passes(module, make_pipeline("tfq-tfl-convert-qdq", ("tfq-tfl-prepare-quantize", {
        "method": quantization.method, "activation-bits": quantization.activation_bits,
        "per-channel": quantization.per_channel, "units": units,
        "calibration-method": CalibrationOptions.CalibrationMethod.Name(calibration_options.calibration_method)})))
    return module


def _needs_calibration(module: ir.Module, samples: Iterable[Sample] | None) -> bool:
    """Whether calibration points need a dataset; a QAT model's trained ranges need none (the ops
    without a range then stay float)."""
    if not calibration_points(module.operation):
        return False
    if samples is None and not ops_named(module.operation, "quant.qcast"):
        raise ValueError("full-integer quantization needs a representative dataset (or a model trained with "
                         "fake-quant ops)")
    return samples is not None


def _write_ranges(module: ir.Module, collectors: Mapping[ValueKey, calibration.Collector],
                  quantization: LiteQuantization, calibration_options: CalibrationOptions) -> None:
    keys = _value_keys(module)
    write_ranges(module, {point: collectors[key] for point, key in keys.items() if key in collectors},
                 calibration_options)
    _set_input_ranges(module, quantization.input_ranges)


def _finished(module: ir.Module, quantization: LiteQuantization) -> tuple[bytes, tuple]:
    """The quantized flatbuffer of a calibrated module, and its op counts (see _count_ops)."""
    counts = quantized(module, quantization)
    return export_flatbuffer(module), counts


def quantized(module: ir.Module, quantization: LiteQuantization, integer_io: bool = True) -> tuple:
    """Quantize a calibrated module in place (without `integer_io`, its inputs and outputs stay float
    whatever the settings); its op counts (see _count_ops)."""
    _run_passes(module, make_pipeline("tfq-apply-calibration-stats", "tfq-tfl-quantize"))
    counts = _count_ops(module)
    _run_passes(module, make_pipeline(("tfq-tfl-post-quantize", {"integer-only": quantization.integer_only})))
    if integer_io:
        _run_passes(module, make_pipeline(("tfq-tfl-modify-io", {"input-type": quantization.input_type,
                                                                 "output-type": quantization.output_type})))
    return counts


def calibrated(float_model: bytes, quantization: LiteQuantization, units: str,
               calibration_options: CalibrationOptions, collectors: Mapping[ValueKey, calibration.Collector],
               ctx: ir.Context) -> ir.Module:
    """The float model as tfl.* ops with its specs and the ranges of `collectors`."""
    module = _prepared(float_model, quantization, units, calibration_options, ctx)
    _write_ranges(module, collectors, quantization, calibration_options)
    return module


def _run_passes(module: ir.Module, pipeline: Pipeline) -> None:
    """Run `pipeline`; a pass's error becomes a CompileError saying where ("<op name>: error: ...")."""
    failure = None
    try:
        run_pipeline(module, pipeline)
    except ir.MLIRError as error:
        # Text only, raised outside the handler: the diagnostics' locations would keep the context alive.
        failure = "; ".join(f"{describe_location(d.location)}: {d.message}" for d in error.error_diagnostics) \
            or str(error)
    if failure is not None:
        raise CompileError(failure)


# A calibrated value, as (index of its producer among the module's tfl ops, result number), or
# (-1, function index, argument number) for an argument: the same in every module prepared from one
# float model whatever the unit rules, so one calibration serves every twin the accuracy tools build.
ValueKey = tuple[int, int, int]


@dataclass
class _Statistics:
    """Each calibrated value's statistics over the calibration samples and over the held-out ones."""
    calibration: dict[ValueKey, calibration.Collector]
    held_out: dict[ValueKey, calibration.Collector]
    samples: int
    # signature -> input name -> the (min, max) of its values over every sample.
    input_ranges: dict[str, dict[str, tuple[float, float]]]

    def merged(self, calibration_options: CalibrationOptions) -> dict[ValueKey, calibration.Collector]:
        merged = {}
        for point in self.calibration.keys() | self.held_out.keys():
            merged[point] = calibration.new_collector(calibration_options)
            for part in (self.calibration, self.held_out):
                if point in part:
                    merged[point].merge(part[point])
        return merged


def _calibrate(module: ir.Module, samples: Iterable[Sample], kept: list[Sample],
               calibration_options: CalibrationOptions) -> _Statistics:
    """Run `samples` through the float model in LiteRT, each point's tensor an extra output, and
    collect each point's statistics; the held-out samples go to `kept` and their own statistics."""
    model, tensors = export_flatbuffer_with_tensors(module, points_as_outputs=True)
    by_key = _litert.watching_signatures(model, tensors)
    batch_size = _batch_size(module)
    input_ranges: dict[str, dict[str, tuple[float, float]]] = {}
    main, count = _collect(by_key, tensors, _litert.held_out(samples, HOLD_OUT_EVERY, HOLD_OUT_LIMIT, kept),
                           calibration_options, batch_size, input_ranges, "calibrating")
    held, held_count = _collect(by_key, tensors, kept, calibration_options, batch_size, input_ranges,
                                "calibrating held-out samples of")
    if count + held_count == 0:
        raise ValueError("the representative dataset has no samples")
    keys = _value_keys(module)
    return _Statistics({keys[point]: c for point, c in main.items()}, {keys[point]: c for point, c in held.items()},
                       count + held_count, input_ranges)


def _value_keys(module: ir.Module) -> dict[int, ValueKey]:
    """The ValueKey of the value each calibration point watches, by point id (a point chained after
    another, at another width, watches the same value)."""
    functions = module_funcs(module)
    index = {op: i for i, op in enumerate(tfl_ops(module.operation))}
    keys = {}
    for point in calibration_points(module.operation):
        value = point.operands[0]
        while isinstance(value, ir.OpResult) and value.owner.name == CALIBRATION_POINT:
            value = value.owner.operands[0]
        if isinstance(value, ir.BlockArgument):
            keys[point.id] = (-1, functions.index(value.owner.owner), value.arg_number)
        else:
            keys[point.id] = (index[value.owner.operation], value.result_number, 0)
    return keys


def _batch_size(module: ir.Module) -> int:
    """Samples per calibration batch: up to BATCH_SIZE, as many as keep the watched tensors of one
    batch within BATCH_BYTES (a dynamic dimension other than the batch counts as 1)."""
    per_sample = 0
    for point in calibration_points(module.operation):
        shape = ir.ShapedType(point.operands[0].type)
        dims = shape.shape[1:] if shape.has_rank else []
        per_sample += 4 * int(np.prod([d if d >= 0 else 1 for d in dims]))
    return max(1, min(BATCH_SIZE, BATCH_BYTES // max(per_sample, 1)))


def _collect(by_key: Mapping[str, _litert.Signature], tensors: Mapping[int, tuple[int, int]],
             samples: Iterable[Sample], calibration_options: CalibrationOptions, batch_size: int,
             input_ranges: dict[str, dict[str, tuple[float, float]]], what: str
             ) -> tuple[dict[int, calibration.Collector], int]:
    """Each point's statistics over `samples` (points no sample reached have none), and their number;
    `input_ranges` takes in each input's range."""
    collectors: dict[int, calibration.Collector] = {}
    count = 0
    for key, group in itertools.groupby(samples, key=lambda sample: sample[0]):
        if key not in by_key:
            raise ValueError(f"the representative dataset names signature '{key}', which the model does not have; "
                             f"it has {', '.join(repr(k) for k in by_key)}")
        signature = by_key[key]
        # The SavedModel path's bar; disable=None: none where stderr is not a terminal (a log, a pipe).
        with tqdm(desc=f"{what} {key}", unit=" samples", disable=None) as bar:
            for batch in batches((inputs for _, inputs in group), signature.input_specs, key, batch_size):
                signature.run(batch.inputs)
                _update(collectors, signature, tensors, calibration_options)
                ranges = input_ranges.setdefault(key, {})
                for name, value in batch.inputs.items():
                    low, high = ranges.get(name, (np.inf, -np.inf))
                    ranges[name] = (min(low, float(np.min(value))), max(high, float(np.max(value))))
                count += len(batch.samples)
                bar.update(len(batch.samples))
    return collectors, count


def _update(collectors: dict[int, calibration.Collector], signature: _litert.Signature,
            tensors: Mapping[int, tuple[int, int]], calibration_options: CalibrationOptions) -> None:
    """Feed each point's tensor of the last run to its collector. A function of its own: the views
    into the interpreter die with it, and LiteRT refuses to resize inputs while one lives."""
    for point, (subgraph, index) in tensors.items():
        values = _tensor_or_none(signature, index, subgraph)
        if values is not None and values.size:
            collectors.setdefault(point, calibration.new_collector(calibration_options)).update(
                np.asarray(values, np.float32))


def _tensor_or_none(signature: _litert.Signature, index: int, subgraph: int) -> np.ndarray | None:
    """A tensor's value after the run, None for one it did not compute (a branch not taken)."""
    try:
        return signature.tensor(index, subgraph)
    except ValueError:
        return None


def _set_input_ranges(module: ir.Module, input_ranges: Mapping[str, tuple[float, float]]) -> None:
    """A legacy input range (TF1's quantized_input_stats) replaces its input's calibrated one."""
    for function in module_funcs(module):
        names = io_names(function)
        for point in calibration_points(module.operation):
            argument = point.operands[0]
            if isinstance(argument, ir.BlockArgument) and argument.owner.owner == function:
                name = names[argument.arg_number]
                if name in input_ranges:
                    point.set_range(*input_ranges[name])


def _count_ops(module: ir.Module) -> tuple[dict[str, int], dict[str, int], list[tuple[str, str, str]]]:
    """Per builtin op name, how many compute on quantized values (or read quantized weights) and how
    many stay float; and each unit left float with the reason."""
    quantized: dict[str, int] = {}
    floats: dict[str, int] = {}
    reasons = []
    for op in tfl_ops(module.operation):
        reason = float_reason(op)
        if reason is not None:
            reasons.append((builtin_name(op), describe_location(op.location), reason))
        if op.name in STRUCTURAL_OPS or op.name in SHAPE_READERS:
            continue
        values = [*op.operands, *op.results]
        is_quantized = any(tensor_params(v.type) is not None for v in values)
        computes_on_floats = any(is_float(v) for v in values)
        if is_quantized:
            quantized[builtin_name(op)] = quantized.get(builtin_name(op), 0) + 1
        elif computes_on_floats:
            floats[builtin_name(op)] = floats.get(builtin_name(op), 0) + 1
    return quantized, floats, reasons


def _mode_name(quantization: LiteQuantization) -> str:
    if quantization.method == "static":
        bits = "16x8" if quantization.activation_bits == 16 else "int8"
        return f"{bits} {'integer only' if quantization.integer_only else 'with float fallback'}" + (
            f" ({quantization.input_type} in, {quantization.output_type} out)"
            if (quantization.input_type, quantization.output_type) != ("float32", "float32") else "")
    return {"dynamic_range": "dynamic range", "float16": "float16 weights"}.get(quantization.method,
                                                                                  quantization.method)


def _sqnr(float_model: bytes, model: bytes, kept: list[Sample]) -> dict[str, float]:
    """SQNR of each output of `model` against `float_model` on the held-out samples."""
    if not kept:
        return {}
    float_signatures = _litert.signatures(_litert.interpreter(float_model))
    signatures = _litert.signatures(_litert.interpreter(model))
    noise = OutputNoise()
    for index, (key, sample) in enumerate(kept):
        inputs = validate_sample(sample, float_signatures[key].input_specs, index, key)
        noise.add(key, float_signatures[key].run(inputs), signatures[key].run(inputs))
    return noise.sqnr_db()

