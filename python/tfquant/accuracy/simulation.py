"""Quantization simulated in TensorFlow on a calibrated module: the per-layer measurements.

After calibration the module holds lifted calls (units) and calibration points with ranges. A
`Simulation` traces each signature of it into TensorFlow twice in one graph:

* the float model, in which every unit is also computed a second time from its float inputs,
  quantized as the unit alone would be (its activation inputs fake-quantized at their points'
  ranges, its weight quantized and dequantized as tfq-quantize-composite-functions does): the
  unit's *local* error;
* the quantized model, in which each unit is int8, int16 or float as a variable `choice` says,
  every point quantizes at the widest width of the quantized units it feeds (a point only
  feeding float ops stays float: the real model returns float from the accumulator there), and
  each unit's bias may be corrected by a measured shift: the *accumulated* error.

The graph returns sums (signal, noise per unit, clipped and tail counts per point, the inputs'
extremes at the ops the detectors watch), not tensors, so a batch of a large model costs little
memory. A second function runs the quantized model alone: the model's output under a choice,
which the sensitivity pass and the fallback search call many times. Ranges, choices and bias
shifts are variables, so no choice retraces.

Units and points inside If/While branches are not simulated (they count as float); units whose
spec is not static are simulated as float.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfquant.accuracy import detectors
from tfquant.exporter import module_tracer, signature_output_names
from tfquant.mlir import enclosing_function_name, ir, name_of, symbol_table, walk_ops
from tfquant.passes._composite import call_composite, lifted_calls, op_type, weight_axis
from tfquant.passes._op_specs import TF, TF_ZERO_SENSITIVE
from tfquant.passes._points import CALIBRATION_POINT, calibration_points
from tfquant.passes._quant import dequantize_weight, quantize_weight, weight_params
from tfquant.passes._spec import STATIC, unit_spec
from tfquant.passes._tf_ops import callee_name, constant_value, defining_op, uses
from tfquant.passes._tfq import CalibrationPointOp

# Mark each simulated call with its unit index, and each watched op with its index, while the
# graph is traced (`collect` sets them, `unmark` removes them).
UNIT_INDEX = "tfq.unit_index"
WATCH_INDEX = "tfq.watch_index"
# Ops joining tensors, watched by the range-mismatch detector.
JOINS = ("tf.AddV2", "tf.Add", "tf.AddN", "tf.ConcatV2", "tf.Concat", "tf.Pack")


@dataclass
class Unit:
    """A static lifted call as the simulation sees it (plain data: op handles do not outlive passes)."""
    index: int
    signature: str
    name: str
    op_type: str
    callee: str
    bits: int                       # the spec's activation bits (8 or 16)
    weight_index: int
    bias_index: int | None
    activation_points: dict[int, int]   # call operand index -> point id
    output_point: int | None
    weight: np.ndarray
    weight_dequantized: np.ndarray
    channels: int                   # size of the output's last axis (the bias length)


@dataclass
class Point:
    id: int
    range: tuple[float, float]
    node: str                       # its location's name: the producer's node, or the input's
    consumers: list[int] = field(default_factory=list)   # units reading it as an activation
    producer: int | None = None


@dataclass
class Watched:
    """An op a detector watches: a zero-sensitive op's input, or a join's inputs."""
    key: str          # unique: "<signature>/<index>"
    op_name: str
    node: str
    operands: tuple[int, ...]
    upstream_units: tuple[int, ...]   # units whose outputs reach it through float ops


def collect(module: ir.Module, signatures: Sequence[str]) -> tuple[list[Unit], dict[int, Point], list[Watched]]:
    """The static units and calibrated points of `signatures`' own bodies, and the ops detectors watch,
    each marked with its index (`unmark` removes the marks)."""
    functions = symbol_table(module)
    points = {point.id: Point(point.id, point.range, name_of(point.location)) for point in calibration_points(module.operation)
              if point.range is not None and enclosing_function_name(point.operation) in signatures}
    units: list[Unit] = []
    for call in lifted_calls(module.operation):
        signature = enclosing_function_name(call)
        spec = unit_spec(call)
        composite = call_composite(call, functions)
        if signature not in signatures or composite is None or spec is None or spec.method != STATIC:
            continue
        activation_points = {index: _point_id(operand) for index, operand in enumerate(call.operands)
                             if _point_id(operand) in points}
        weight = constant_value(call.operands[composite.weight_index])
        if not activation_points or weight is None or weight.dtype != np.float32:
            continue
        params = weight_params(weight, weight_axis(composite, weight, spec.per_channel))
        output_point = next((_point_id(user.results[0]) for user in uses(call.results[0])
                             if user.name == CALIBRATION_POINT and _point_id(user.results[0]) in points), None)
        shape = ir.ShapedType(call.results[0].type)
        channels = shape.get_dim_size(shape.rank - 1) if shape.rank and not shape.is_dynamic_dim(shape.rank - 1) else 0
        unit = Unit(len(units), signature, name_of(call.location), op_type(composite), callee_name(call),
                    spec.activation_bits, composite.weight_index, composite.bias_index, activation_points,
                    output_point, weight, dequantize_weight(quantize_weight(weight, params), params).astype(np.float32),
                    channels)
        units.append(unit)
        call.attributes[UNIT_INDEX] = _index_attr(unit.index)
        if output_point is not None:
            points[output_point].producer = unit.index
    for point in calibration_points(module.operation):
        if point.id in points:
            points[point.id].consumers = _reading_units(point.results[0])
    return units, points, _watched(module, signatures)


def _reading_units(value: ir.Value) -> list[int]:
    """The units reading `value` as an activation, directly or through same-scale ops (which run on
    the integer storage when a quantized unit reads their result)."""
    found: list[int] = []
    for user in uses(value):
        unit = unit_index(user)
        if unit is not None:
            found.append(unit)
        elif (user.name in TF.same_scale or user.name == CALIBRATION_POINT) and len(user.results) == 1:
            found.extend(_reading_units(user.results[0]))
    return list(dict.fromkeys(found))


def _point_id(value: ir.Value) -> int | None:
    producer = defining_op(value)
    return CalibrationPointOp(producer).id if producer is not None and producer.name == CALIBRATION_POINT else None


def unmark(module: ir.Module) -> None:
    for op in walk_ops(module.operation, lambda op: UNIT_INDEX in op.attributes or WATCH_INDEX in op.attributes):
        for mark in (UNIT_INDEX, WATCH_INDEX):
            if mark in op.attributes:
                del op.attributes[mark]


def _index_attr(index: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), index)


def _mark(op: ir.Operation, mark: str) -> int | None:
    return ir.IntegerAttr(op.attributes[mark]).value if mark in op.attributes else None


def unit_index(op: ir.Operation) -> int | None:
    """The index of the unit a marked call is, None for any other op."""
    return _mark(op, UNIT_INDEX)


def _watched(module: ir.Module, signatures: Sequence[str]) -> list[Watched]:
    """The zero-sensitive ops and joins in the signatures' bodies, with the units upstream of each."""
    functions = symbol_table(module)
    watched = []
    for signature in signatures:
        block = functions[signature].regions[0].blocks[0]
        for index, op in enumerate(block.operations):
            op = op.operation
            if op.name in TF_ZERO_SENSITIVE:
                operands = tuple(i for i in TF_ZERO_SENSITIVE[op.name] if i < len(op.operands))
            elif op.name in JOINS:
                operands = tuple(i for i, v in enumerate(op.operands) if constant_value(v) is None
                                 and ir.ShapedType(v.type).element_type == ir.F32Type.get())
                if len(operands) < 2:
                    continue
            else:
                continue
            upstream = _upstream_units([op.operands[i] for i in operands])
            op.attributes[WATCH_INDEX] = _index_attr(len(watched))
            watched.append(Watched(f"{signature}/{index}", op.name, name_of(op.location), operands, upstream))
    return watched


def _upstream_units(values: Sequence[ir.Value]) -> tuple[int, ...]:
    """The units whose results reach `values` through ops that are not units (nearest first)."""
    found: list[int] = []
    seen: set = set()
    pending = list(values)
    while pending:
        producer = defining_op(pending.pop())
        if producer is None or producer in seen:
            continue
        seen.add(producer)
        unit = unit_index(producer)
        if unit is not None:
            found.append(unit)
        else:
            pending.extend(producer.operands)
    return tuple(dict.fromkeys(found))


def fake_quant(x: tf.Tensor, low: tf.Tensor, high: tf.Tensor, bits: tf.Tensor) -> tf.Tensor:
    """`x` quantized and dequantized as `_quant.activation_params(low, high, bits)` says: int8
    asymmetric with 0.0 exact, int16 symmetric; `bits` 0 leaves it float. TensorFlow's fused
    fake-quant kernels (one op each: a large model has hundreds of points to trace)."""
    low, high = tf.minimum(low, 0.0), tf.maximum(high, 0.0)
    high = tf.maximum(high, low + 1e-9)
    int8 = tf.quantization.fake_quant_with_min_max_vars(x, low, high, num_bits=8)
    peak = tf.maximum(-low, high)
    int16 = tf.quantization.fake_quant_with_min_max_vars(x, -peak, peak, num_bits=16, narrow_range=True)
    return tf.where(tf.equal(bits, 0), x, tf.where(tf.equal(bits, 16), int16, int8))


_FLOAT, _QUANTIZED, _SHADOW = "float", "quantized", "shadow"


class Simulation:
    """The traced functions for one calibrated module (see the module docstring)."""

    def __init__(self, module: ir.Module, signatures: Sequence[str]):
        """Marks the module's units (`unmark` removes the marks: after the last run, since functions
        are traced when first run)."""
        self._module = module
        with module.context:
            self.units, self.points, self.watched = collect(module, signatures)
        self.signatures = list(signatures)
        self.choice = tf.Variable(np.array([u.bits for u in self.units] or [0], np.int32), trainable=False)
        # Points in id order: the rows of the range variable.
        self._point_order = sorted(self.points)
        self.point_index = {point_id: i for i, point_id in enumerate(self._point_order)}
        ranges = [self.points[p].range for p in self._point_order] or [(0.0, 0.0)]
        self.ranges = tf.Variable(np.array(ranges, np.float32), trainable=False)
        self.bias_on = tf.Variable(0.0, trainable=False)
        offsets = np.cumsum([0] + [u.channels if u.bias_index is not None else 0 for u in self.units])
        self.bias_offsets = offsets
        self.bias_shift = tf.Variable(np.zeros(max(int(offsets[-1]), 1), np.float32), trainable=False)
        # Per point: the units reading it (padded with len(units), which reads as float) and its producer.
        width = max([len(p.consumers) for p in self.points.values()] + [1])
        sentinel = len(self.units)
        points = [self.points[i] for i in self._point_order]
        self._readers = np.array([p.consumers + [sentinel] * (width - len(p.consumers)) for p in points]
                                 or [[sentinel]], np.int32)
        self._producers = np.array([sentinel if p.producer is None else p.producer for p in points] or [sentinel],
                                   np.int32)
        self._analysis: dict[str, tuple] = {}
        self._quantized: dict[str, tuple] = {}

    def close(self) -> None:
        """Remove the module's marks and let it go (TensorFlow may keep the traced functions, which
        hold this object, alive)."""
        if self._module is not None:
            unmark(self._module)
        self._module = None
        self._analysis.clear()
        self._quantized.clear()

    # The values chosen per run.
    def set_choice(self, bits_by_unit: Mapping[int, int]) -> None:
        """Each unit's activation bits (0: float); units not named take their spec's bits."""
        self.choice.assign(np.array([bits_by_unit.get(u.index, u.bits) for u in self.units] or [0], np.int32))

    def set_ranges(self, ranges: Mapping[int, tuple[float, float]]) -> None:
        self.ranges.assign(np.array([ranges[p] for p in self._point_order] or [(0.0, 0.0)], np.float32))

    def set_bias_shift(self, shifts: Mapping[int, np.ndarray] | None) -> None:
        """Per-unit output shifts to subtract from the biases in the quantized model (None: none)."""
        flat = np.zeros(self.bias_shift.shape, np.float32)
        for unit, shift in (shifts or {}).items():
            flat[self.bias_offsets[unit]:self.bias_offsets[unit + 1]] = shift
        self.bias_shift.assign(flat)
        self.bias_on.assign(1.0 if shifts else 0.0)

    def analyze(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The sums of one batch (keys: see `_sums`)."""
        if signature not in self._analysis:
            self._analysis[signature] = self._trace(signature, analysis=True)
        return self._call(self._analysis[signature], inputs)

    def quantized_outputs(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The simulated quantized model's outputs on one batch, under the current choice."""
        if signature not in self._quantized:
            self._quantized[signature] = self._trace(signature, analysis=False)
        return self._call(self._quantized[signature], inputs)

    @staticmethod
    def _call(traced: tuple, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        function, names = traced
        return {k: v.numpy() for k, v in function(*[tf.constant(inputs[n]) for n in names]).items()}

    # Tracing.
    def _trace(self, signature: str, analysis: bool):
        state = _TraceState()
        module = self._module
        with module.context:
            specs, build = module_tracer(module, signature, lambda op, inputs: self._hook(state, build, op, inputs))
            output_names = signature_output_names(module, signature)

        def body(*args):
            state.point_bits = self._point_bits()
            if not analysis:
                state.mode = _QUANTIZED
                return dict(zip(output_names, build(signature, args)))
            state.mode = _FLOAT
            build(signature, args)
            state.mode = _QUANTIZED
            build(signature, args)
            return self._sums(state)

        with module.context:
            function = tf.function(body, input_signature=specs, autograph=False).get_concrete_function()
        return function, [spec.name for spec in specs]

    def _hook(self, state: "_TraceState", build, op: ir.Operation, inputs: list[tf.Tensor]):
        if op.name == CALIBRATION_POINT:
            return self._point(state, op, inputs[0])
        if UNIT_INDEX in op.attributes:
            return self._unit(state, build, self.units[unit_index(op)], inputs)
        if op.name == TF.bias_add and state.inside is not None:
            result = tf.nn.bias_add(inputs[0], inputs[1])
            state.pre_activation[(state.inside, state.mode)] = result
            return [result]
        if WATCH_INDEX in op.attributes and state.mode == _FLOAT and state.inside is None:
            self._watch(state, self.watched[_mark(op, WATCH_INDEX)], inputs)
        return None

    def _point(self, state: "_TraceState", op: ir.Operation, value: tf.Tensor) -> list[tf.Tensor]:
        point_id = CalibrationPointOp(op).id
        if point_id not in self.points:
            return [value]
        index = self.point_index[point_id]
        low, high = self.ranges[index, 0], self.ranges[index, 1]
        if state.mode == _FLOAT:
            state.point_values[(point_id, _FLOAT)] = value
            tail = tf.maximum(tf.abs(low), tf.abs(high)) / detectors.OUTLIER_TAIL
            state.point_stats[point_id] = tf.stack([
                tf.reduce_sum(tf.cast((value < low) | (value > high), tf.float32)),
                tf.cast(tf.size(value), tf.float32),
                tf.reduce_sum(tf.cast(tf.abs(value) > tail, tf.float32))])
            return [value]
        quantized = fake_quant(value, low, high, state.point_bits[index])
        state.point_values[(point_id, _QUANTIZED)] = quantized
        return [quantized]

    def _point_bits(self) -> tf.Tensor:
        """Each point's width: the widest of the quantized units reading it (with its producer's, if
        any reads it), 0 where none does."""
        choice = tf.concat([self.choice, [0]], 0)
        readers = tf.reduce_max(tf.gather(choice, self._readers), axis=1)
        return tf.where(readers > 0, tf.maximum(readers, tf.gather(choice, self._producers)), 0)

    def _unit(self, state: "_TraceState", build, unit: Unit, inputs: list[tf.Tensor]) -> list[tf.Tensor]:
        if state.mode == _FLOAT:
            floats = self._inlined(state, build, unit, inputs)
            shadow_inputs = list(inputs)
            for operand, point_id in unit.activation_points.items():
                index = self.point_index[point_id]
                shadow_inputs[operand] = fake_quant(inputs[operand], self.ranges[index, 0], self.ranges[index, 1],
                                                    tf.constant(unit.bits))
            shadow_inputs[unit.weight_index] = tf.constant(unit.weight_dequantized)
            state.mode = _SHADOW
            state.outputs[(unit.index, _SHADOW)] = self._inlined(state, build, unit, shadow_inputs)[0]
            state.mode = _FLOAT
            state.outputs[(unit.index, _FLOAT)] = floats[0]
            return floats
        quantized = self.choice[unit.index] > 0
        unit_inputs = list(inputs)
        unit_inputs[unit.weight_index] = tf.where(quantized, tf.constant(unit.weight_dequantized), inputs[unit.weight_index])
        if unit.bias_index is not None and unit.channels:
            shift = self.bias_shift[int(self.bias_offsets[unit.index]):int(self.bias_offsets[unit.index + 1])]
            unit_inputs[unit.bias_index] = inputs[unit.bias_index] - shift * self.bias_on * tf.cast(quantized, tf.float32)
        results = self._inlined(state, build, unit, unit_inputs)
        state.outputs[(unit.index, _QUANTIZED)] = results[0]
        return results

    @staticmethod
    def _inlined(state: "_TraceState", build, unit: Unit, inputs: list[tf.Tensor]) -> list[tf.Tensor]:
        state.inside = unit.index
        try:
            return build(unit.callee, inputs)
        finally:
            state.inside = None

    @staticmethod
    def _watch(state: "_TraceState", watched: Watched, inputs: list[tf.Tensor]) -> None:
        # Per operand: the smallest and largest magnitude it takes.
        state.watch_stats[watched.key] = tf.stack([
            tf.stack([tf.reduce_min(tf.abs(tf.cast(inputs[i], tf.float32))),
                      tf.reduce_max(tf.abs(tf.cast(inputs[i], tf.float32)))]) for i in watched.operands])

    def _sums(self, state: "_TraceState") -> dict[str, tf.Tensor]:
        sums: dict[str, tf.Tensor] = {}
        for unit in self.units:
            if (unit.index, _FLOAT) not in state.outputs:
                continue
            reference = state.outputs[(unit.index, _FLOAT)]
            seen_float = state.point_values.get((unit.output_point, _FLOAT), reference)
            seen_quantized = state.point_values.get((unit.output_point, _QUANTIZED),
                                                    state.outputs[(unit.index, _QUANTIZED)])
            sums[f"unit{unit.index}"] = tf.stack([
                _sum_squares(reference), _sum_squares(state.outputs[(unit.index, _SHADOW)] - reference),
                _sum_squares(seen_float), _sum_squares(seen_quantized - seen_float)])
            pre_float = state.pre_activation.get((unit.index, _FLOAT))
            pre_shadow = state.pre_activation.get((unit.index, _SHADOW))
            if pre_float is not None and pre_shadow is not None and unit.channels:
                difference = tf.reshape(pre_shadow - pre_float, [-1, unit.channels])
                sums[f"shift{unit.index}"] = tf.concat([tf.reduce_sum(difference, 0),
                                                       [tf.cast(tf.shape(difference)[0], tf.float32)]], 0)
        for point_id, stats in state.point_stats.items():
            sums[f"point{point_id}"] = stats
        for key, stats in state.watch_stats.items():
            sums[f"watch{key}"] = stats
        return sums


def _sum_squares(value: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.square(tf.cast(value, tf.float64)))


@dataclass
class _TraceState:
    mode: str = _FLOAT
    point_bits: tf.Tensor | None = None
    inside: int | None = None
    outputs: dict = field(default_factory=dict)
    pre_activation: dict = field(default_factory=dict)
    point_values: dict = field(default_factory=dict)
    point_stats: dict = field(default_factory=dict)
    watch_stats: dict = field(default_factory=dict)


