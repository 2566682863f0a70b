"""`quantize_saved_model`: the same call as `tf.quantization.experimental.quantize_saved_model`.

Import the signatures, run the stages the method needs (`pipeline.build`): the pre-calibration
passes, calibration on the representative dataset where ranges are needed, quantization and the
lowering to the requested opset; export, and measure what was done (quantized layers per op
type, the units left float and why, SQNR against the float model on the calibration samples).
The output is written to a temporary directory beside the target and moved into place, so
a failure leaves nothing half-written; the input model is only read.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import os
import secrets
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfquant import calibrate, dataset, latency, options as options_lib, pipeline
from tfquant.accuracy.layers import LayerReport, OutputNoise
from tfquant.accuracy.saved_model import AccuracyOptions, fit_sqnr, improve
from tfquant.accuracy.simulation import Simulation
from tfquant.exporter import LARGE_CONSTANT, export_saved_model, signature_input_specs
from tfquant.importer import import_saved_model
from tfquant.meta_graph import copy_assets
from tfquant.mlir import CompileError, clone_module, ir, name_of, ops_named, symbol_table, walk_ops
from tfquant.passes._composite import KINDS, call_composite, lifted_calls, op_type
from tfquant.passes._spec import float_reason, narrows_weights
from tfquant.passes._tfq import QuantizedOp
from tfquant.passes.convert_fake_quant_to_qdq import FAKE_QUANT_OPS

# Op types as TensorFlow's summary names them, by the kind our composite functions carry.
OP_TYPES = {kind: op_name[len("tf."):] for op_name, kind in KINDS.items()}


@dataclass(frozen=True)
class FloatUnit:
    """A quantizable unit left float, and why."""
    op_type: str
    node_name: str
    reason: str


@dataclass
class QuantizationReport:
    """What a quantization run did, as data; `str()` is the summary tfquant prints.

    `sqnr_db` runs the quantized model on kept calibration samples, so it is measured when
    first read (printing the report reads it), not as part of quantizing.
    """
    quantized_layers: dict[str, tuple[int, int]]
    calibration_samples: dict[str, int]
    method: str
    opset: str
    per_channel: bool
    calibration_method: str
    input_bytes: int
    output_bytes: int
    seconds: float
    pipelines: list[str] = field(default_factory=list)
    float_units: list[FloatUnit] = field(default_factory=list)
    sqnr_samples: dict[str, int] = field(default_factory=dict)
    # With optimize_for="latency": what the latency check measured and decided (tfquant.latency:
    # each quantized unit's int8 and float latency and what it was kept as, the whole model's).
    optimize_for: str | None = None
    latency: latency.LatencyCheck | None = None
    # With the accuracy tools: the per-layer report (on samples held out of calibration); `show_layers`
    # prints its table with the summary (report=True).
    layers: LayerReport | None = None
    show_layers: bool = False
    measure_sqnr: Callable[[], dict[str, float]] = field(default=dict, repr=False, compare=False)

    @functools.cached_property
    def sqnr_db(self) -> dict[str, float]:
        """SQNR (dB) of each float output of the quantized model against the float model."""
        return self.measure_sqnr()

    def __str__(self) -> str:
        lines = ["Number of quantized layers in the model", "-" * 40, f"{'Op type':<28}{'Count':>12}"]
        for op_type, (quantized, total) in sorted(self.quantized_layers.items()):
            lines.append(f"{op_type:<28}{f'{quantized}/{total}':>12}")
        lines.append("-" * 40)
        for unit in self.float_units:
            lines.append(f"left float: {unit.op_type} {unit.node_name}: {unit.reason}")
        if self.latency is not None:
            lines.extend(self.latency.lines())
        if self.layers is not None and self.show_layers:
            lines.append(self.layers.table())
        calibration = f", calibration {self.calibration_method}" if self.calibration_samples else ""
        lines.append(f"method {self.method}, opset {self.opset}, "
                     f"{'per-channel' if self.per_channel else 'per-tensor'} weights{calibration}")
        for signature, samples in self.calibration_samples.items():
            lines.append(f"calibrated signature '{signature}' on {samples} samples")
        kind = "held-out" if self.layers is not None else "calibration"
        for name, value in self.sqnr_db.items():
            samples = self.sqnr_samples.get(name.split("/", 1)[0], 0)
            lines.append(f"SQNR vs float on {samples} {kind} samples, {name}: {value:.2f} dB")
        lines.append(f"size {self.input_bytes / 1e3:.1f} kB -> {self.output_bytes / 1e3:.1f} kB "
                     f"({self.input_bytes / max(self.output_bytes, 1):.2f}x smaller), {self.seconds:.2f} s")
        return "\n".join(lines)


def quantize_saved_model(saved_model_path: str, output_directory: str | None = None,
                         quantization_options=None, representative_dataset=None, *,
                         overwrite_output_directory: bool = False, verbose: bool = True,
                         dump_ir: str | None = None, method: str | None = None, units=(),
                         opset: str | None = None, optimize_for: str | None = None, report: bool = False,
                         target_sqnr: float | None = None, calibration_search: bool = False,
                         bias_correction: str = "auto", equalize: str = "auto"):
    """Quantize a float SavedModel; returns the loaded quantized SavedModel, as TensorFlow's does.

    The returned object also carries `quantization_report` (a QuantizationReport). `verbose`
    prints the report and a calibration progress bar; `dump_ir` names a directory that receives,
    per stage, the module before it, its pipeline string and the module after each pass.
    tfquant's own options: `method` names a method of `tfquant.options.METHODS`, including
    "static_range_int16x8" (int8 weights, 16-bit activations) and "weight_only_float16";
    `units` are unit-wise specs that may name them, e.g.
    `[{"node_name": ".*/attention/.*", "method": "static_range_int16x8"}]`; `opset="ONEDNN"`
    lowers to oneDNN's fused int8 kernels (a TensorFlow built with oneDNN runs the output).
    `optimize_for="latency"` measures each quantized unit's int8 form against its float form (on
    this machine, at the calibration batch size and at 1) and keeps float those where int8 is not
    faster, then times the whole model so decided, all quantized and float, and keeps the fastest
    not slower than float (`tfquant.latency`); the report's `latency` lists every unit measured
    with its gain, and the model's times.

    The accuracy tools (`tfquant.accuracy`) hold every 8th representative sample (up to 32) out of
    calibration and measure on them: `report=True` prints the per-layer error report (the report's
    `layers`); `target_sqnr` (dB) keeps the most sensitive units at 16-bit activations or float until
    the model meets it on the held-out samples; `calibration_search=True` picks each activation's
    range among min-max, percentile and MSE; `bias_correction` and `equalize` (cross-layer
    equalization) are "auto" (applied where they help, when any tool runs), "on" or "off".
    """
    started = time.perf_counter()
    if optimize_for is not None and optimize_for not in latency.OPTIMIZE_FOR:
        raise ValueError(f"optimize_for must be None or {' or '.join(map(repr, latency.OPTIMIZE_FOR))}, "
                         f"got {optimize_for!r}")
    resolved = options_lib.resolve_options(quantization_options, method, units, opset)
    options_lib.check_supported(resolved)
    accuracy = AccuracyOptions(report, target_sqnr, calibration_search, bias_correction, equalize)
    output_directory = _checked_output_directory(saved_model_path, output_directory, overwrite_output_directory)
    module = import_saved_model(saved_model_path, resolved.signature_keys, resolved.tags)
    input_bytes = directory_bytes(saved_model_path)
    input_specs = signature_input_specs(module)
    calibrate_ranges = _needs_calibration(module, resolved, representative_dataset)
    if accuracy.active and not (calibrate_ranges and resolved.unit_method == "static"):
        raise ValueError("the accuracy tools (report, target_sqnr, calibration_search, bias_correction or equalize "
                         "'on') measure a static-range quantization against samples held out of calibration: use "
                         "a static-range method and give a representative dataset")
    datasets = dataset.normalize_dataset(representative_dataset, resolved.signature_keys, input_specs,
                                         resolved.representative_datasets) if calibrate_ranges else {}
    stages = pipeline.build(resolved, calibrate_ranges, equalize=accuracy.equalize == "on")
    # "auto" equalization is tried on a copy, calibrated too, where the samples can be read twice.
    unequalized = clone_module(module) if accuracy.active and accuracy.equalize == "auto" and not any(
        samples.one_shot for samples in datasets.values()) else None
    run = calibrate.CalibrationRun()
    layer_report = None
    latency_check = None
    dumped = 0  # dumps are numbered by pass stage: 0_pre_calibration, 1_quantize, 2_lower for every method
    for stage in stages:
        if stage.pipeline is None:
            run = _calibrate(module, datasets, input_specs, resolved, accuracy, verbose)
            if accuracy.active:
                sim, equalization = None, None
                if unequalized is not None:
                    module, run, sim, equalization = _equalized_if_better(module, run, unequalized, datasets,
                                                                          input_specs, resolved, accuracy, verbose)
                layer_report = improve(module, run, accuracy, resolved.signature_keys,
                                       sixteen_bit=resolved.opset != "UNIFORM_QUANTIZED", sim=sim,
                                       quantization=resolved)
                if equalization is not None:
                    (layer_report.applied if equalization[0] else layer_report.rejected)["equalize"] = equalization[1]
            if input_bytes > _LARGE_MODEL_BYTES:
                gc.collect()  # the instrumented function's graphs are cycles holding a copy of every large weight
            continue
        if stage.name == pipeline.QUANTIZE and optimize_for == latency.LATENCY:
            latency_check = latency.check(module, resolved, calibrated=calibrate_ranges,
                                          batch_sizes=(1, _calibration_batch_size(run)),
                                          samples=_calibration_batches(run))
        pipeline.run_pipeline(module, stage.pipeline, dump_dir=_stage_dir(dump_ir, dumped, stage.name))
        dumped += 1
        if stage.name == pipeline.PRE_CALIBRATION:
            totals = _quantizable_layers(module)
        elif stage.name == pipeline.QUANTIZE:
            quantized, float_units = _quantized_layers(module), _float_units(module)
    loaded = None

    def load_and_check(path: str) -> None:
        # The loaded model's functions are the ones the user (and the SQNR measurement) calls: checking
        # them costs a few one-row runs, not another instantiation of the graph.
        nonlocal loaded
        loaded = tf.saved_model.load(path, tags=list(resolved.tags))
        _check_extremes(loaded.signatures, run)

    with _staging_directory(output_directory, load_and_check) as staging:
        _export(module, saved_model_path, staging, resolved)
    output_directory = output_directory or staging
    report = QuantizationReport(
        quantized_layers={OP_TYPES[k]: (quantized.get(k, 0), total) for k, total in totals.items()},
        calibration_samples=dict(run.samples),
        method=resolved.method, opset=resolved.opset, per_channel=resolved.per_channel,
        calibration_method=resolved.calibration_method,
        input_bytes=input_bytes, output_bytes=directory_bytes(output_directory),
        seconds=time.perf_counter() - started, pipelines=[str(s.pipeline) for s in stages if s.pipeline],
        float_units=float_units, sqnr_samples=dict(run.kept_samples), optimize_for=optimize_for,
        latency=latency_check, layers=layer_report, show_layers=report,
        measure_sqnr=functools.partial(_sqnr, loaded, run))
    loaded.quantization_report = report
    if verbose:
        print(report)
    return loaded


def _needs_calibration(module: ir.Module, resolved: options_lib.ResolvedOptions, representative_dataset) -> bool:
    """Whether to calibrate: some unit needs ranges and no fake-quant op (QAT) gives them.

    A model with fake-quant ops and no dataset is quantized with its trained ranges; a method
    that needs no ranges ignores a dataset, with a warning.
    """
    has_dataset = representative_dataset is not None or bool(resolved.representative_datasets)
    if not resolved.calibrated:
        if has_dataset:
            warnings.warn(f"method {resolved.method} needs no representative dataset; the one given is not used",
                          stacklevel=3)
        return False
    if has_dataset:
        return True
    if walk_ops(module.operation, lambda op: op.name in FAKE_QUANT_OPS):
        return False
    raise ValueError(f"method {resolved.method} needs activation ranges: give a representative dataset, or a "
                     "model trained with fake-quant ops (quantization-aware training), which has none")


def _calibrate(module: ir.Module, datasets, input_specs, resolved: options_lib.ResolvedOptions,
               accuracy: AccuracyOptions, verbose: bool) -> calibrate.CalibrationRun:
    return calibrate.calibrate(module, datasets, input_specs, resolved.calibration_options, progress=verbose,
                               hold_out=accuracy.active, histograms=accuracy.calibration_search)


def _equalized_if_better(module: ir.Module, run: calibrate.CalibrationRun, unequalized: ir.Module, datasets,
                         input_specs, resolved: options_lib.ResolvedOptions, accuracy: AccuracyOptions, verbose: bool
                         ) -> tuple[ir.Module, calibrate.CalibrationRun, Simulation, tuple[bool, float]]:
    """The calibrated module with cross-layer equalization if that gives the model a higher SQNR on
    calibration samples than `module` does, its run and simulation; whether it did, and the gain on
    the held-out samples."""
    prepare = pipeline.build(resolved, True, equalize=True)[0]
    pipeline.run_pipeline(unequalized, prepare.pipeline)
    equalized, equalized_run = unequalized, _calibrate(unequalized, datasets, input_specs, resolved, accuracy, verbose)
    plain_sim, equalized_sim = Simulation(module, resolved.signature_keys), Simulation(equalized, resolved.signature_keys)
    (plain_fit, plain_held), (equalized_fit, equalized_held) = fit_sqnr(plain_sim, run), fit_sqnr(equalized_sim,
                                                                                                 equalized_run)
    gain = equalized_held - plain_held
    if equalized_fit > plain_fit:
        plain_sim.close()
        return equalized, equalized_run, equalized_sim, (True, gain)
    equalized_sim.close()
    return module, run, plain_sim, (False, gain)


def _check_extremes(functions: Mapping[str, object], run: calibrate.CalibrationRun) -> None:
    """Run the quantized model's signature functions on each input at its calibration minimum, maximum
    and zero: an Inf or NaN the float model does not give there is an error now, not in the user's
    hands."""
    for signature, extremes in run.extremes.items():
        function = functions[signature]
        for what, inputs, expected in extremes:
            actual = function(**{name: tf.constant(value) for name, value in inputs.items()})
            name = calibrate.new_non_finite(expected, {name: value.numpy() for name, value in actual.items()})
            if name is not None:
                raise CompileError(f"the quantized model returns Inf or NaN in output '{name}' of signature "
                                   f"'{signature}' with every input at {what}, where the float model does not")


def _calibration_batch_size(run: calibrate.CalibrationRun) -> int:
    """The rows of the largest batch calibration ran (its batch size: the shape the model will
    likely serve), or the default calibration batch size when nothing was calibrated."""
    rows = [calibrate.batch_rows(batch) for batches in run.kept_inputs.values() for batch in batches]
    return max(rows, default=DEFAULT_LATENCY_BATCH)


def _calibration_batches(run: calibrate.CalibrationRun) -> dict[str, dict[str, np.ndarray]] | None:
    """The first batch calibration ran per signature (the latency check times the model on it)."""
    batches = {signature: batches[0] for signature, batches in run.kept_inputs.items() if batches}
    return batches or None


# The batch size latency is checked at (beside 1) when no calibration ran: calibration's default.
DEFAULT_LATENCY_BATCH = 32

# Past this size, memory freed as soon as possible matters more than the 0.2 s a collection takes.
_LARGE_MODEL_BYTES = 1 << 28


def _export(module: ir.Module, saved_model_path: str, output_dir: str, resolved: options_lib.ResolvedOptions) -> None:
    """Write the quantized SavedModel with the input's signatures, tags and assets.

    `freeze_all_variables` (TensorFlow's default) keeps every constant in the graph, so the
    output has no variables while it fits in a GraphDef; without it, the weights no pass
    replaced stay the input's variables, and large constants become variables too.
    """
    freeze = resolved.proto.freeze_all_variables
    export_saved_model(module, output_dir, list(resolved.signature_keys), list(resolved.tags),
                       variable_threshold=None if freeze else LARGE_CONSTANT, keep_variables=not freeze)
    copy_assets(saved_model_path, output_dir)


def _stage_dir(dump_ir: str | None, index: int, name: str) -> str | None:
    return None if dump_ir is None else os.path.join(dump_ir, f"{index}_{name}")


def _quantizable_layers(module: ir.Module) -> Counter:
    """Quantizable ops per kind in the lifted module (lifted or not)."""
    return Counter(KINDS[op.name] for op in walk_ops(module.operation, lambda op: op.name in KINDS))


def _quantized_layers(module: ir.Module) -> Counter:
    """Quantized units per kind: tfq.quantized_ops, and the calls computing with narrow weights."""
    kinds = Counter(QuantizedOp(op).kind for op in ops_named(module.operation, QuantizedOp.OPERATION_NAME))
    functions = symbol_table(module.operation)
    for call in lifted_calls(module.operation):
        if narrows_weights(call):
            kinds[call_composite(call, functions).kind] += 1
    return kinds


def _float_units(module: ir.Module) -> list[FloatUnit]:
    """The lifted calls left float, with the reason each carries."""
    functions = symbol_table(module.operation)
    units = []
    for call in lifted_calls(module.operation):
        reason = float_reason(call)
        if reason is not None:
            units.append(FloatUnit(op_type(call_composite(call, functions)), name_of(call.location), reason))
    return units


def _sqnr(loaded, run: calibrate.CalibrationRun) -> dict[str, float]:
    """SQNR (dB) of each float output of the quantized model against the float model."""
    noise = OutputNoise()
    for signature, batches in run.kept_inputs.items():
        function = loaded.signatures[signature]
        for batch, expected in zip(batches, run.kept_outputs[signature]):
            actual = function(**{k: tf.constant(v) for k, v in batch.items()})
            noise.add(signature, expected, {name: value.numpy() for name, value in actual.items()})
    return noise.sqnr_db()


def directory_bytes(path: str) -> int:
    """Total size of the files under `path`."""
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _checked_output_directory(input_path: str, output_directory: str | None, overwrite: bool) -> str | None:
    if output_directory is None:
        return None
    # TensorFlow writes into the working directory then; the output would land beside it here.
    if not output_directory:
        raise ValueError("output_directory is an empty string: name a directory, or pass None to write "
                         "the model to a new temporary directory")
    source = os.path.realpath(input_path)
    target = os.path.realpath(output_directory)
    if target == source or target.startswith(source + os.sep) or source.startswith(target + os.sep):
        raise ValueError(f"the output directory {output_directory} must not be, contain or lie inside "
                         f"the input SavedModel {input_path}")
    if os.path.exists(target) and not os.path.isdir(target):
        raise FileExistsError(f"output path {output_directory} exists and is not a directory")
    if os.path.isdir(target) and os.listdir(target) and not overwrite:
        raise FileExistsError(f"output directory {output_directory} is not empty; "
                              "pass overwrite_output_directory=True (--overwrite on the command line) to replace it")
    return output_directory


@contextlib.contextmanager
def _staging_directory(output_directory: str | None, check: Callable[[str], None]) -> Iterator[str]:
    """A fresh directory beside `output_directory` that replaces it only if the body succeeds and
    `check(output_directory)` then passes; otherwise the previous content is back in place.

    Without an output directory, a new temporary directory that is the output if the body and the
    check succeed (created this late so that a failed call leaves no temporary directory behind).
    """
    parent = None if output_directory is None else os.path.dirname(os.path.abspath(output_directory))
    if parent is None:
        # Private, as TensorFlow's temporary output is.
        staging = tempfile.mkdtemp(prefix="tfquant_")
    else:
        os.makedirs(parent, exist_ok=True)
        staging = _new_directory(parent, ".tfquant-staging-")
    try:
        yield staging
        if output_directory is None:
            check(staging)
            return
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = None
    if os.path.exists(output_directory):
        previous = tempfile.mkdtemp(prefix=".tfquant-previous-", dir=parent)
        os.rename(output_directory, os.path.join(previous, "old"))
    os.rename(staging, output_directory)
    try:
        check(output_directory)
    except BaseException:
        shutil.rmtree(output_directory, ignore_errors=True)
        if previous is not None:
            os.rename(os.path.join(previous, "old"), output_directory)
        raise
    finally:
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)


def _new_directory(parent: str, prefix: str) -> str:
    """A new directory `parent/prefix<random>` with the mode a plain mkdir gives under the umask.

    Not tempfile.mkdtemp: its 0700 would keep the model from a server running as another user.
    """
    path = os.path.join(parent, prefix + secrets.token_hex(8))
    os.mkdir(path)
    return path
