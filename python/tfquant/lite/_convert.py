"""Quantize a float TFLite flatbuffer: import it as tfl.* ops, run the TFLite passes, export it.

    float .tflite ──import──▶ tfl.* ops ──tfq-tfl-prepare-quantize──▶ calibration points
        ──calibrate in LiteRT (every intermediate tensor kept)──▶ ranges
        ──tfq-apply-calibration-stats, tfq-tfl-quantize, tfq-tfl-post-quantize, tfq-tfl-modify-io──▶ .tflite

`samples` come from the API layer already normalized: (signature key, {input name: array}).
Every 8th sample (up to 32) is held out of calibration; the report's SQNR is measured on those.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from tfquant.options import CalibrationOptions

from tfquant import calibration
from tfquant.calibrate import write_ranges
from tfquant.dataset import batches, validate_sample
from tfquant.lite import _litert
from tfquant.mlir import CompileError, describe_location, ir, module_funcs, new_context, ops_named
from tfquant.passes._points import calibration_points
from tfquant.passes._quant import tensor_params
from tfquant.passes._spec import float_reason
from tfquant.passes._tfl import STRUCTURAL_OPS, builtin_name, tfl_ops
from tfquant.pipeline import Pipeline, make_pipeline, run_pipeline
from tfquant.tflite_flatbuffer import export_flatbuffer, export_flatbuffer_with_tensors, import_flatbuffer

Sample = tuple[str, Mapping[str, np.ndarray]]
HOLD_OUT_EVERY = 8
HOLD_OUT_LIMIT = 32
BATCH_SIZE = 32


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
    sqnr_db: dict[str, float]            # per output "<signature>/<name>", on held-out samples
    float_bytes: int
    output_bytes: int
    seconds: float

    def __str__(self) -> str:
        lines = [f"TFLite {self.mode}", "-" * 40, f"{'Op type':<28}{'Quantized':>10}{'Float':>8}"]
        for name in sorted(set(self.ops_quantized) | set(self.ops_float)):
            lines.append(f"{name:<28}{self.ops_quantized.get(name, 0):>10}{self.ops_float.get(name, 0):>8}")
        for op, where, reason in self.float_reasons:
            lines.append(f"  float: {op} at {where}: {reason}")
        lines.append(f"calibration samples: {self.calibration_samples}")
        if self.sqnr_db:
            lines.append(f"SQNR against the float model on {self.held_out_samples} held-out samples:")
            lines.extend(f"  {name}: {value:.1f} dB" for name, value in self.sqnr_db.items())
        lines.append(f"size: {self.float_bytes / 1e3:.1f} kB float -> {self.output_bytes / 1e3:.1f} kB "
                     f"({self.output_bytes / max(self.float_bytes, 1):.3f}x), {self.seconds:.1f} s")
        return "\n".join(lines)


def quantize_flatbuffer(float_model: bytes, quantization: LiteQuantization, samples: Iterable[Sample] | None,
                        calibration_options: CalibrationOptions | None = None,
                        units: str = "[]") -> tuple[bytes, LiteReport]:
    """The quantized flatbuffer of `float_model` and what was done (see the module docstring)."""
    start = time.perf_counter()
    calibration_options = calibration_options or CalibrationOptions(
        calibration_method=CalibrationOptions.CALIBRATION_METHOD_MIN_MAX)
    kept: list[Sample] = []
    ctx = new_context()
    with ctx, ir.Location.unknown():
        module = import_flatbuffer(float_model, ctx)
        _run_passes(module, make_pipeline("tfq-tfl-convert-qdq", ("tfq-tfl-prepare-quantize", {
            "method": quantization.method, "activation-bits": quantization.activation_bits,
            "per-channel": quantization.per_channel, "units": units,
            "calibration-method": CalibrationOptions.CalibrationMethod.Name(calibration_options.calibration_method)})))
        calibrated = 0
        # A QAT model's trained ranges need no dataset: the ops without one stay float.
        trained = bool(ops_named(module.operation, "quant.qcast"))
        if calibration_points(module.operation) and (samples is not None or not trained):
            if samples is None:
                raise ValueError("full-integer quantization needs a representative dataset (or a model trained "
                                 "with fake-quant ops)")
            calibrated = _calibrate(module, _litert.held_out(samples, HOLD_OUT_EVERY, HOLD_OUT_LIMIT, kept),
                                    calibration_options)
        _set_input_ranges(module, quantization.input_ranges)
        _run_passes(module, make_pipeline("tfq-apply-calibration-stats", "tfq-tfl-quantize"))
        quantized, floats, reasons = _count_ops(module)
        _run_passes(module, make_pipeline(
            ("tfq-tfl-post-quantize", {"integer-only": quantization.integer_only}),
            ("tfq-tfl-modify-io", {"input-type": quantization.input_type, "output-type": quantization.output_type})))
        model = export_flatbuffer(module)
    report = LiteReport(quantized, floats, reasons, _mode_name(quantization), calibrated, len(kept),
                        _sqnr(float_model, model, kept), len(float_model), len(model), time.perf_counter() - start)
    return model, report


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


def _calibrate(module: ir.Module, samples: Iterable[Sample], calibration_options: CalibrationOptions) -> int:
    """Run `samples` through the float model in LiteRT and write each point's range; the number of
    samples run."""
    model, tensors = export_flatbuffer_with_tensors(module)
    it = _litert.interpreter(model, keep_all_tensors=True)
    by_key = _litert.signatures(it)
    collectors = {point: calibration.new_collector(calibration_options) for point in tensors}
    count = 0
    for key, group in itertools.groupby(samples, key=lambda sample: sample[0]):
        if key not in by_key:
            raise ValueError(f"the representative dataset names signature '{key}', which the model does not have; "
                             f"it has {', '.join(repr(k) for k in by_key)}")
        signature = by_key[key]
        for batch in batches((inputs for _, inputs in group), signature.input_specs, key, BATCH_SIZE):
            signature.run(batch.inputs)
            for point, (subgraph, index) in tensors.items():
                values = _tensor_or_none(signature, index, subgraph)
                if values is not None and values.size:
                    collectors[point].update(np.asarray(values, np.float32))
            count += len(batch.samples)
    if count == 0:
        raise ValueError("the representative dataset has no samples")
    write_ranges(module, {p: c for p, c in collectors.items() if c.statistics() is not None}, calibration_options)
    return count


def _tensor_or_none(signature: _litert.Signature, index: int, subgraph: int) -> np.ndarray | None:
    """A tensor's value after the run, None for one it did not compute (a branch not taken)."""
    try:
        return signature.tensor(index, subgraph)
    except ValueError:
        return None


def _set_input_ranges(module: ir.Module, input_ranges: Mapping[str, tuple[float, float]]) -> None:
    """A legacy input range (TF1's quantized_input_stats) replaces its input's calibrated one."""
    for function in module_funcs(module):
        names = _signature_input_names(function)
        for point in calibration_points(module.operation):
            argument = point.operands[0]
            if isinstance(argument, ir.BlockArgument) and argument.owner.owner == function:
                name = names[argument.arg_number]
                if name in input_ranges:
                    point.set_range(*input_ranges[name])


def _signature_input_names(function: ir.Operation) -> list[str]:
    if "tfl.signature_inputs" in function.attributes:
        return [ir.StringAttr(a).value for a in ir.ArrayAttr(function.attributes["tfl.signature_inputs"])]
    arguments = function.regions[0].blocks[0].arguments
    return [ir.StringAttr(ir.DictAttr(ir.ArrayAttr(function.attributes["arg_attrs"])[i])["tfl.name"]).value
            if "arg_attrs" in function.attributes else f"input {i}" for i in range(len(arguments))]


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
        if op.name in STRUCTURAL_OPS:
            continue
        values = [*op.operands, *op.results]
        is_quantized = any(tensor_params(v.type) is not None for v in values)
        computes_on_floats = any(_is_float_tensor(v) for v in values)
        if is_quantized:
            quantized[builtin_name(op)] = quantized.get(builtin_name(op), 0) + 1
        elif computes_on_floats:
            floats[builtin_name(op)] = floats.get(builtin_name(op), 0) + 1
    return quantized, floats, reasons


def _is_float_tensor(value: ir.Value) -> bool:
    return isinstance(value.type, ir.ShapedType) and isinstance(ir.ShapedType(value.type).element_type, ir.FloatType)


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
    pairs: dict[str, tuple[list, list]] = {}
    for index, (key, sample) in enumerate(kept):
        inputs = validate_sample(sample, float_signatures[key].input_specs, index, key)
        expected, got = float_signatures[key].run(inputs), signatures[key].run(inputs)
        for name, value in expected.items():
            if np.asarray(value).dtype.kind == "f":
                reference, approximation = pairs.setdefault(f"{key}/{name}", ([], []))
                reference.append(value)
                approximation.append(got[name])
    return {name: _litert.sqnr_db(*lists) for name, lists in pairs.items()}

