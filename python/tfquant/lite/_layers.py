"""The per-layer error report of the TFLite path (`LiteReport.layers`), measured on the held-out samples.

Two models run side by side, one held-out sample at a time:

* the local model: the float model in which each static unit has a quantized clone beside it,
  reading the float model's own tensors (quantized at the unit's input types by `tfl.quantize`)
  and read by nothing: a clone's error is its unit's alone ("local"). The float tensors are those
  of the float model, since the originals stay float;
* the twin (calibrated without the held-out samples, as the report's SQNR): each unit's output
  there against the float one is the error accumulated up to it.

The tensors read are made extra subgraph outputs (`export_flatbuffer_with_tensors`), so LiteRT keeps
its fast delegate; only a unit's tensors in the signature's own subgraph are read (not those in
control-flow bodies). Ranges are the calibrated ones (of the clone's quantized operands and result);
"clipped" counts the held-out values of a unit's activation inputs and output outside them.

Detectors (`tfquant.accuracy.detectors`, shared with the SavedModel path) look at: each unit's
activation inputs and output (outliers); each ADD and CONCATENATION's inputs (range mismatch); each
LOG, SQRT, RSQRT, DIV (divisor) and POW's sensitive input against its producer's calibrated range,
else the held-out values' (preprocessing).
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tfquant.accuracy import detectors
from tfquant.accuracy.layers import FLOAT, INT8, INT16, Finding, LayerError, LayerReport, OutputNoise, sqnr_db
from tfquant.dataset import validate_sample
from tfquant.lite import _litert
from tfquant.mlir import ir, name_of
from tfquant.passes._op_specs import TFL, ZERO_SENSITIVE
from tfquant.passes._quant import QuantParams, tensor_params
from tfquant.passes._spec import SPEC, is_static_unit
from tfquant.passes._tf_ops import create_op, defining_op, is_float, uses
from tfquant.passes._tfl import CONST, QCONST, builtin_name, io_names, tfl_constant, tfl_ops
from tfquant.passes._tfq import CalibrationPointOp
from tfquant.tflite_flatbuffer import export_flatbuffer_with_tensors

# The suffix of a clone's location (and output tensor name) in the local model.
LOCAL = "/tfq-local"
JOINING_OPS = ("tfl.add", "tfl.concatenation")
# The operands that a small value makes blow up (int8 could round it to zero).
PREPROCESSING_OPS: Mapping[str, tuple[int, ...]] = {**ZERO_SENSITIVE, "tfl.sqrt": (0,)}

TensorKey = tuple[Hashable, ...]


@dataclass(frozen=True)
class Unit:
    """A static unit of the model, as the report and the fallback name it."""
    index: int
    name: str         # its output tensor's name (its location)
    op_name: str      # "tfl.conv_2d"
    op_type: str      # "CONV_2D"


def static_units(module: ir.Module) -> list[Unit]:
    """The static units of a prepared module (after tfq-tfl-prepare-quantize), in graph order; a name
    given to two ops (in two subgraphs) counts once."""
    units: dict[str, Unit] = {}
    for op in tfl_ops(module.operation):
        name = name_of(op.location)
        if is_static_unit(op) and name and name not in units:
            units[name] = Unit(len(units), name, op.name, builtin_name(op))
    return list(units.values())


def add_local_clones(module: ir.Module, units: Iterable[Unit]) -> None:
    """Make a calibrated module (before tfq-apply-calibration-stats) the local model: each static unit
    named in `units` gets a clone right after it, reading the same calibration points and with a point
    of its own (the original's range) on its result, that alone keeps the spec; the originals stay float."""
    wanted = {unit.name for unit in units}
    for op in list(tfl_ops(module.operation)):
        name = name_of(op.location)
        if name not in wanted or not is_static_unit(op):
            continue
        wanted.discard(name)
        loc = ir.Location.name(name + LOCAL)
        with ir.InsertionPoint.after(op):
            clone = create_op(op.name, list(op.operands), [r.type for r in op.results],
                              {attr: op.attributes[attr] for attr in op.attributes}, loc)
            point = _point_reading(op.results[0])
            if point is not None:
                copy = CalibrationPointOp.build(clone.results[0], "watch", point.activation_bits, loc)
                if point.range is not None:
                    copy.set_range(*point.range)
        del op.attributes[SPEC]


def _point_reading(value: ir.Value) -> CalibrationPointOp | None:
    return next((CalibrationPointOp(user) for user in uses(value)
                 if user.name == CalibrationPointOp.OPERATION_NAME), None)


@dataclass
class _Port:
    """What the held-out samples showed of one float tensor a unit reads or writes."""
    tensor: str                          # the tensor's name
    range: tuple[float, float] | None    # its calibrated range at this unit
    step: float = 0.0                    # its quantization step there (within half a step is rounding)
    values: int = 0
    clipped: int = 0
    beyond: int = 0                      # beyond 1/OUTLIER_TAIL of the range's peak magnitude
    peak: float = 0.0                    # the largest |value|
    least: float = math.inf              # the smallest |value|
    low: float = math.inf
    high: float = -math.inf

    def calibrated(self, params: QuantParams | None) -> None:
        """Take the range and step of a quantized type (none for a float one)."""
        if params is not None:
            self.range = ((params.storage_min - params.zero_point) * params.scale,
                          (params.storage_max - params.zero_point) * params.scale)
            self.step = params.scale

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        if not values.size:
            return
        magnitude = np.abs(values)
        self.values += values.size
        self.peak = max(self.peak, float(magnitude.max()))
        self.least = min(self.least, float(magnitude.min()))
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))
        if self.range is not None:
            low, high = self.range
            self.clipped += int(np.count_nonzero((values < low - self.step / 2) | (values > high + self.step / 2)))
            self.beyond += int(np.count_nonzero(magnitude > max(abs(low), abs(high)) / detectors.OUTLIER_TAIL))


@dataclass
class _UnitMeasure:
    unit: Unit
    output: _Port
    inputs: list[_Port]
    kept_as: str = INT8
    signal: float = 0.0
    local_noise: float = 0.0
    accumulated_noise: float = 0.0


@dataclass(frozen=True)
class _Sink:
    """A sensitive operand of a PREPROCESSING op."""
    op: str                 # the op's output tensor name
    op_type: str
    operand: int
    tensor: str             # the operand's tensor name
    producer: str | None    # the static unit writing it, if one does


@dataclass
class WatchedModel:
    """A flatbuffer whose tensors of interest are extra outputs: by key, (subgraph, tensor index) and
    the parameters that dequantize it (None: float)."""
    model: bytes
    tensors: dict[TensorKey, tuple[int, int]]
    params: dict[TensorKey, QuantParams | None] = field(default_factory=dict)


def watch_local(module: ir.Module, units: Iterable[Unit]) -> tuple[WatchedModel, dict[str, _UnitMeasure],
                                                                   list[_Sink]]:
    """The local model (quantized, float IO) with each unit's float inputs and output, its clone's
    output, and the sensitive operand of each PREPROCESSING op watched; the units' ports (ranges from
    the clones); and the PREPROCESSING ops' sensitive operands."""
    by_name = {unit.name: unit for unit in units}
    measures: dict[str, _UnitMeasure] = {}
    values: dict[TensorKey, ir.Value] = {}
    sinks = []
    for op in tfl_ops(module.operation):
        name = name_of(op.location)
        base = name.removesuffix(LOCAL)
        unit = by_name.get(base)
        if unit is not None and op.name == unit.op_name and name.endswith(LOCAL):
            measure = measures[base]
            values[("local", base)] = op.results[0]
            measure.output.calibrated(tensor_params(op.results[0].type))
            for port, index in zip(measure.inputs, _activation_indices(op)):
                port.calibrated(tensor_params(op.operands[index].type))
        elif unit is not None and op.name == unit.op_name and base not in measures and is_float(op.results[0]):
            inputs = []
            for index in _activation_indices(op):
                values[("in", base, len(inputs))] = op.operands[index]
                inputs.append(_Port(_tensor_name(op.operands[index]), None))
            values[("out", base)] = op.results[0]
            measures[base] = _UnitMeasure(unit, _Port(base, None), inputs)
        elif op.name in PREPROCESSING_OPS and not name.endswith(LOCAL):
            for index in PREPROCESSING_OPS[op.name]:
                if index < len(op.operands) and is_float(op.operands[index]) and tfl_constant(op.operands[index]) is None:
                    producer = defining_op(op.operands[index])
                    producing = name_of(producer.location) if producer is not None else None
                    values[("sink", name, index)] = op.operands[index]
                    sinks.append(_Sink(name, builtin_name(op), index, _tensor_name(op.operands[index]),
                                       producing if producing in by_name else None))
    return _watched(module, values), measures, sinks


def watch_twin(module: ir.Module, units: Iterable[Unit]) -> tuple[WatchedModel, dict[str, str]]:
    """The twin (quantized) with each unit's output watched, and what each unit is computed as."""
    by_name = {unit.name: unit for unit in units}
    values: dict[TensorKey, ir.Value] = {}
    kept_as = {}
    for op in tfl_ops(module.operation):
        name = name_of(op.location)
        unit = by_name.get(name)
        if unit is None or op.name != unit.op_name or ("twin", name) in values:
            continue
        values[("twin", name)] = op.results[0]
        params = tensor_params(op.results[0].type)
        kept_as[name] = FLOAT if params is None else INT16 if params.storage_bits == 16 else INT8
    return _watched(module, values), kept_as


def _watched(module: ir.Module, values: Mapping[TensorKey, ir.Value]) -> WatchedModel:
    """Export `module` with a point on each of `values` (its tensor becomes an extra output)."""
    keys = list(values)
    for index, key in enumerate(keys):
        value = values[key]
        producer = defining_op(value)
        if producer is None:
            block = value.owner
            insertion = ir.InsertionPoint(next(iter(block.operations)))
        else:
            insertion = ir.InsertionPoint.after(producer)
        with insertion, ir.Location.unknown():
            CalibrationPointOp.build(value, "watch", 8, ir.Location.unknown()).id = index
    params = {key: tensor_params(values[key].type) for key in keys}
    model, tensors = export_flatbuffer_with_tensors(module, points_as_outputs=True)
    return WatchedModel(model, {keys[index]: where for index, where in tensors.items()}, params)


def _activation_indices(op: ir.Operation) -> list[int]:
    """The operands of a unit quantized as activations, but constants."""
    table = TFL[op.name]
    indices = range(len(op.operands)) if table.activations is None else table.activations
    return [i for i in indices if i < len(op.operands) and not _is_constant(op.operands[i])]


def _is_constant(value: ir.Value) -> bool:
    producer = defining_op(value)
    return producer is not None and producer.name in (CONST, QCONST)


def _tensor_name(value: ir.Value) -> str:
    producer = defining_op(value)
    if producer is not None:
        return name_of(producer.location) or producer.name
    function = value.owner.owner
    return io_names(function)[value.arg_number]


def measure(local: WatchedModel, twin: WatchedModel, measures: dict[str, _UnitMeasure], kept_as: Mapping[str, str],
            sinks: list[_Sink], kept: list[tuple[str, Mapping[str, np.ndarray]]]
            ) -> LayerReport:
    """Run the held-out samples through both models and make the report (see the module docstring)."""
    local_signatures = _litert.watching_signatures(local.model, local.tensors)
    twin_signatures = _litert.watching_signatures(twin.model, twin.tensors)
    sink_ports = {(sink.op, sink.operand): _Port(sink.tensor, None) for sink in sinks}
    outputs = OutputNoise()
    for number, (key, sample) in enumerate(kept):
        inputs = validate_sample(sample, local_signatures[key].input_specs, number, key)
        expected = local_signatures[key].run(inputs)
        floats = _read(local_signatures[key], local)
        got = twin_signatures[key].run(inputs)
        accumulated = _read(twin_signatures[key], twin)
        outputs.add(key, expected, got)
        for name, unit in measures.items():
            _update(unit, floats, accumulated, name)
        for (op, index), port in sink_ports.items():
            if ("sink", op, index) in floats:
                port.update(floats[("sink", op, index)])
    for name, unit in measures.items():
        unit.kept_as = kept_as.get(name, FLOAT)
    layers = [_layer_error(unit) for unit in sorted(measures.values(), key=lambda m: m.unit.index)]
    findings = [*_outliers(measures.values()), *_mismatches(measures.values()),
                *_preprocessing(sinks, sink_ports, measures)]
    return LayerReport(layers, len(kept), outputs.sqnr_db(), findings,
                       path="tflite")


def _read(signature: _litert.Signature, watched: WatchedModel) -> dict[TensorKey, np.ndarray]:
    """The watched tensors of the signature's subgraph after a run, dequantized (copies: the views die here)."""
    values = {}
    for key, (subgraph, index) in watched.tensors.items():
        if subgraph != signature.subgraph:
            continue
        value = np.array(signature.tensor(index, subgraph))
        params = watched.params.get(key)
        if params is not None:
            value = (value.astype(np.float64) - params.zero_point) * params.scale
        values[key] = value
    return values


def _update(unit: _UnitMeasure, floats: Mapping[TensorKey, np.ndarray], accumulated: Mapping[TensorKey, np.ndarray],
            name: str) -> None:
    if ("out", name) not in floats:
        return
    reference = np.asarray(floats[("out", name)], np.float64)
    unit.output.update(reference)
    for number, port in enumerate(unit.inputs):
        port.update(floats[("in", name, number)])
    unit.signal += float(np.sum(reference ** 2))
    if ("local", name) in floats:
        unit.local_noise += float(np.sum((reference - floats[("local", name)]) ** 2))
    if ("twin", name) in accumulated:
        unit.accumulated_noise += float(np.sum((reference - accumulated[("twin", name)]) ** 2))


def _layer_error(unit: _UnitMeasure) -> LayerError:
    ports = [unit.output, *unit.inputs]
    return LayerError(
        unit.unit.index, unit.unit.name, unit.unit.op_type,
        sqnr_db(unit.signal, unit.local_noise), sqnr_db(unit.signal, unit.accumulated_noise),
        unit.inputs[0].range if unit.inputs else None, unit.output.range,
        sum(port.clipped for port in ports), sum(port.values for port in ports), unit.kept_as)


def _outliers(units: Iterable[_UnitMeasure]) -> list[Finding]:
    """One OUTLIERS finding per tensor whose range some unit's port finds dominated by a few values."""
    blamed: dict[str, list[str]] = {}
    ports: dict[str, _Port] = {}
    for unit in units:
        for port in (*unit.inputs, unit.output):
            if port.range is not None and detectors.outliers(port.tensor, port.range, port.beyond, port.values, ()):
                names = blamed.setdefault(port.tensor, [])
                if unit.unit.name not in names:
                    names.append(unit.unit.name)
                ports[port.tensor] = port
    return [detectors.outliers(tensor, ports[tensor].range, ports[tensor].beyond, ports[tensor].values, names)
            for tensor, names in blamed.items()]


def _mismatches(units: Iterable[_UnitMeasure]) -> list[Finding]:
    findings = []
    for unit in units:
        if unit.unit.op_name in JOINING_OPS:
            findings.append(detectors.range_mismatch(unit.unit.name, unit.unit.op_type,
                                                     [port.peak for port in unit.inputs if port.values],
                                                     (unit.unit.name,)))
    return [finding for finding in findings if finding is not None]


def _preprocessing(sinks: list[_Sink], ports: Mapping[tuple[str, int], _Port],
                   measures: Mapping[str, _UnitMeasure]) -> list[Finding]:
    findings = []
    for sink in sinks:
        port = ports[(sink.op, sink.operand)]
        if not port.values:
            continue
        calibrated = measures[sink.producer].output.range if sink.producer in measures else None
        findings.append(detectors.preprocessing(sink.op, sink.op_type, port.least,
                                                calibrated or (port.low, port.high),
                                                (sink.producer,) if sink.producer else ()))
    return [finding for finding in findings if finding is not None]
