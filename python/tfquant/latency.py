"""Latency-checked quantization (`optimize_for="latency"`): keep float the units int8 does not speed up.

After calibration (ranges known) and before the QUANTIZE stage, `check` quantizes a copy of the
module with the run's own QUANTIZE pipeline and, for each unit that became quantized (a
`tfq.quantized_op`, or a weight-only / float16 call), builds two micro-modules:

  * the float unit: its composite function called on its float weight and bias constants;
  * the int8 unit as it sits in the quantized model: the quantize of its input where its producer
    is float (an integer input where the producer is quantized too), the quantized op with its
    weight and bias, and the dequantize where a float op reads its result (an integer result
    where only quantized ops do),

lowers both with the run's LOWER pipeline (so every opset is measured as it will run), exports
each as a TensorFlow ConcreteFunction and times them on an input of the unit's input shape: the
batch dimension takes each of `batch_sizes` (the calibration batch size and 1); a unit whose input
has another dynamic dimension is not checked. A unit whose int8 form is not faster at every batch
size gets `no_quantize` and `leave_float(call, "int8 is slower here: 0.21 ms vs 0.12 ms float
(batch 1)")`, and the calibration points only it needed are removed, so its neighbours return or
take float as they would next to any float unit.

Keeping a unit float changes its neighbours' boundaries (a quantized layer after it must now
quantize its input), so the copy is quantized again and the units whose boundaries changed are
measured again, until no unit changes (at most `MAX_ROUNDS` rounds). Weight-only and float16 units
compute in float (their point is size, and grappler usually folds their weight's dequantize): they
stay narrow unless they are slower than float by more than `NARROW_TOLERANCE`. Units match between the copy and the module by their
enclosing function, node name (location) and their order among units of that name.

The measurement is injectable: `measure(float_run, int8_run, probe) -> (float_ms, int8_ms)`, where
each run is a zero-argument callable that runs the unit once on its input and `probe` (a `Probe`)
says which unit and batch size; tests inject timings, `time_units` measures.
"""
from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tfquant import pipeline
from tfquant.mlir import func, ir, name_of, walk_ops
from tfquant.passes._composite import analyze_composite, is_lifted_call, lifted_calls
from tfquant.passes._quant import storage_type_of, tensor_params
from tfquant.passes._spec import (FLOAT16, NO_QUANTIZE, STATIC, WEIGHT_ONLY, UnitSpec, float_reason,
                                  leave_float, set_unit_spec, unit_spec)
from tfquant.passes._tf_ops import callee_name, constant_value, create_op, defining_op, uses, weight_constant
from tfquant.passes._tfq import CalibrationPointOp, QuantizedOp

LATENCY = "latency"
# What `optimize_for` accepts (None: quantize every unit its spec quantizes).
OPTIMIZE_FOR = (LATENCY,)
MAX_ROUNDS = 3
# Weight-only and float16 units compute in float (their point is size; grappler usually folds the
# weight's dequantize into a float constant): kept narrow unless this much slower than float.
NARROW_TOLERANCE = 0.25

QUANTIZED = "quantized"
FLOAT = "float"
UNCHECKED = "unchecked"

_ENTRY = "tfq_latency_unit"
_INPUT = "input"
_OUTPUT = "output"
# Ops a weight, bias or axis operand may be computed by (constants and their quant casts).
_CONSTANT_OPS = frozenset({"tf.Const", "quant.scast", "quant.dcast", "quant.qcast", "tf.Cast"})


@dataclass(frozen=True)
class Probe:
    """What one measurement is of: a unit and the input shape it runs on."""
    op_type: str
    node_name: str
    function: str
    batch: int
    shape: tuple[int, ...]


Measure = Callable[[Callable[[], object], Callable[[], object], Probe], tuple[float, float]]


@dataclass(frozen=True)
class UnitLatency:
    """One latency-checked unit: what it was kept as, and what was measured.

    `kept` is QUANTIZED, FLOAT or UNCHECKED (measurement impossible: `note` says why; the unit keeps
    its spec). `timings` holds (batch size, float ms, quantized ms) per batch size measured; `note`
    is the reason a unit kept float carries.
    """
    op_type: str
    node_name: str
    function: str
    kept: str
    timings: tuple[tuple[int, float, float], ...] = ()
    note: str = ""
    form: str = "int8"   # what the quantized form is: int8, weight-only or float16

    @property
    def gain(self) -> float | None:
        """The int8 form's speed-up over float (float ms / int8 ms) at its worst batch size."""
        ratios = [f / i if i > 0 else float("inf") for _, f, i in self.timings]
        return min(ratios) if ratios else None

    def __str__(self) -> str:
        measured = "; ".join(f"batch {b}: {i:.3f} ms {self.form} vs {f:.3f} ms float" for b, f, i in self.timings)
        if self.kept == UNCHECKED:
            return f"not checked: {self.op_type} {self.node_name}: {self.note}"
        gain = f"{self.gain:.2f}x" if self.gain is not None else "?"
        return f"kept {self.kept}: {self.op_type} {self.node_name}: {self.form} gain {gain} ({measured})"


class _Unmeasurable(Exception):
    """Why a unit cannot be measured."""


def check(module: ir.Module, options, *, calibrated: bool = True, batch_sizes: Sequence[int] = (1, 32),
          measure: Measure | None = None) -> list[UnitLatency]:
    """Measure each unit's int8 form against its float form; keep float where int8 is not faster.

    `module` is the calibrated module (contract step 3, ranges set) that the run's QUANTIZE stage
    will quantize next; `options` the run's resolved options (its stages come from
    `pipeline.build(options, calibrated)`). Modifies `module`: units kept float get `no_quantize`, a
    `tfq.float_reason` and lose the calibration points only they needed. Returns one entry per
    unit measured, in module order.
    """
    stages = {s.name: s.pipeline for s in pipeline.build(options, calibrated) if s.pipeline is not None}
    quantize, lower = stages[pipeline.QUANTIZE], stages[pipeline.LOWER]
    measure = measure if measure is not None else time_units  # looked up late: tests may patch it
    batch_sizes = tuple(sorted(set(batch_sizes)))
    results: dict[tuple, UnitLatency] = {}
    measured: dict[tuple, UnitLatency] = {}
    for _ in range(MAX_ROUNDS):
        calls = _keyed(lifted_calls(module.operation))
        copy = _copy(module)
        pipeline.run_pipeline(copy, quantize)
        units = _keyed(walk_ops(copy.operation, _is_unit_op))
        kept_float = []
        for key, unit in units.items():
            call = calls.get(key)
            if call is None or not _is_quantized_unit(unit):
                continue
            context = (key, _boundaries(unit))
            if context not in measured:
                measured[context] = _check_unit(call, unit, module, copy, lower, batch_sizes, measure)
            results[key] = measured[context]
            if results[key].kept == FLOAT:
                kept_float.append((call, results[key].note))
        del copy, units
        if not kept_float:
            break
        with module.context:
            for call, reason in kept_float:
                _keep_float(call, reason)
    order = list(_keyed(lifted_calls(module.operation)))
    return [results[key] for key in order if key in results]


# ----------------------------------------------------------------------------- units

def _enclosing_function(op: ir.Operation) -> str:
    parent = op.parent
    while parent is not None and parent.operation.name != "func.func":
        parent = parent.operation.parent
    return ir.StringAttr(parent.operation.attributes["sym_name"]).value if parent is not None else ""


def _keyed(ops: Sequence[ir.Operation]) -> dict[tuple[str, str, int], ir.Operation]:
    """Ops by (enclosing function, node name, how many ops of that function and name came before)."""
    keyed, seen = {}, Counter()
    for op in ops:
        base = (_enclosing_function(op), name_of(op.location))
        keyed[(*base, seen[base])] = op
        seen[base] += 1
    return keyed


def _is_unit_op(op: ir.Operation) -> bool:
    """A lifted call, or the quantized op that replaced one."""
    return op.name == QuantizedOp.OPERATION_NAME or (op.name == "tf.PartitionedCall" and is_lifted_call(op))


def _is_quantized_unit(op: ir.Operation) -> bool:
    """A quantized op, or a weight-only / float16 call whose weight was made narrow."""
    if op.name == QuantizedOp.OPERATION_NAME:
        return True
    spec = unit_spec(op)
    return spec is not None and spec.method in (WEIGHT_ONLY, FLOAT16) and float_reason(op) is None


def _boundaries(unit: ir.Operation) -> tuple[str, str]:
    """How a quantized unit meets its neighbours: (its input, its result), each "quantize" /
    "dequantize" (a cast at the boundary), "integer" (a quantized neighbour) or "float"."""
    if unit.name != QuantizedOp.OPERATION_NAME:
        return "float", "float"
    value = QuantizedOp(unit).input
    producer = defining_op(value)
    source = "quantize" if producer is not None and producer.name == "quant.qcast" else \
        "integer" if tensor_params(value.type) is not None else "float"
    result = unit.results[0]
    if tensor_params(result.type) is None:
        return source, "float"
    return source, "dequantize" if any(u.name == "quant.dcast" for u in uses(result)) else "integer"


def _op_type(call: ir.Operation, functions: dict[str, ir.Operation]) -> str:
    composite = analyze_composite(functions[callee_name(call)]) if callee_name(call) in functions else None
    return composite.main.name.partition(".")[2] if composite is not None else "call"


def _keep_float(call: ir.Operation, reason: str) -> None:
    """Make `call` a float unit, and drop the calibration points no quantized unit needs any more."""
    spec = unit_spec(call) or UnitSpec(STATIC)
    set_unit_spec(call, UnitSpec(NO_QUANTIZE, spec.activation_bits, spec.per_channel))
    leave_float(call, reason)
    points = [defining_op(v) for v in call.operands]
    points += [u for r in call.results for u in uses(r)]
    for point in points:
        if point is None or point.name != CalibrationPointOp.OPERATION_NAME:
            continue
        # As tfq-insert-calibration-stats would have placed them had the call been float from the
        # start: a point stays where a quantized call reads it or writes it.
        neighbours = uses(point.results[0]) + [defining_op(point.operands[0])]
        if not any(_needs_ranges(u) for u in neighbours if u is not None):
            point.results[0].replace_all_uses_with(point.operands[0])
            point.erase()


def _needs_ranges(op: ir.Operation) -> bool:
    """Whether `op` is a lifted call still to be quantized with calibrated ranges."""
    if op.name != "tf.PartitionedCall" or not is_lifted_call(op) or float_reason(op) is not None:
        return False
    spec = unit_spec(op)
    return spec is None or spec.method == STATIC


def _copy(module: ir.Module) -> ir.Module:
    """An independent copy of `module` in its context."""
    return ir.Module.parse(_bytecode(module), module.context)


def _bytecode(module: ir.Module) -> bytes:
    import io
    buffer = io.BytesIO()
    module.operation.write_bytecode(buffer)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- micro-modules

def _check_unit(call: ir.Operation, unit: ir.Operation, module: ir.Module, copy: ir.Module,
                lower: pipeline.Pipeline, batch_sizes: Sequence[int], measure: Measure) -> UnitLatency:
    functions = _functions(module)
    op_type = _op_type(call, functions)
    node_name, function = name_of(call.location) or str(call.location), _enclosing_function(call)
    composite = analyze_composite(functions[callee_name(call)])
    try:
        if composite is None:
            raise _Unmeasurable("its pattern has no quantized form")
        activation = call.operands[composite.input_index]
        shapes = _shapes(activation.type, batch_sizes)
        float_module = _float_micro(call, composite.input_index, functions, module.context)
        int8_module = _int8_micro(unit, composite.input_index, _functions(copy), module.context)
        for micro in (float_module, int8_module):
            pipeline.run_pipeline(micro, lower)
        float_fn, int8_fn = _Lazy(float_module), _Lazy(int8_module)
        rows = _gather_rows(call, composite)
        timings = []
        for shape in shapes:
            probe = Probe(op_type, node_name, function, shape[0] if shape else 1, shape)
            float_runner = float_fn.runner(_sample(float_fn.arg_type, shape, rows))
            int8_runner = int8_fn.runner(_sample(int8_fn.arg_type, shape, rows))
            float_ms, int8_ms = measure(float_runner, int8_runner, probe)
            timings.append((probe.batch, float(float_ms), float(int8_ms)))
    except _Unmeasurable as reason:
        return UnitLatency(op_type, node_name, function, UNCHECKED, note=str(reason))
    except Exception as error:  # a unit that cannot be measured keeps its spec; say why
        detail = " ".join(str(error).split())
        return UnitLatency(op_type, node_name, function, UNCHECKED,
                           note=f"could not be measured ({type(error).__name__}: {detail[:200]})")
    narrow = unit.name != QuantizedOp.OPERATION_NAME
    form = unit_spec(unit).method.replace("_", "-") if narrow else "int8"
    slower = [(b, f, i) for b, f, i in timings if (i > f * (1 + NARROW_TOLERANCE) if narrow else i >= f)]
    if not slower:
        return UnitLatency(op_type, node_name, function, QUANTIZED, tuple(timings), form=form)
    batch, float_ms, int8_ms = min(slower, key=lambda t: t[1] / t[2] if t[2] else float("inf"))
    verdict = "slower" if int8_ms > float_ms else "no faster"
    reason = f"{form} is {verdict} here: {int8_ms:.2f} ms vs {float_ms:.2f} ms float (batch {batch})"
    return UnitLatency(op_type, node_name, function, FLOAT, tuple(timings), reason, form)


def _functions(module: ir.Module) -> dict[str, ir.Operation]:
    return {ir.StringAttr(op.attributes["sym_name"]).value: op.operation
            for op in module.body.operations if op.operation.name == "func.func"}


def _shapes(value_type: ir.Type, batch_sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """The input shapes to measure at: the batch dimension (the first, when dynamic) at each batch size."""
    if not isinstance(value_type, ir.RankedTensorType):
        raise _Unmeasurable("its input has an unknown rank")
    dims = list(ir.RankedTensorType(value_type).shape)
    dynamic = ir.ShapedType.get_dynamic_size()
    if dynamic in dims[1:]:
        raise _Unmeasurable(f"its input {value_type} has dynamic dimensions besides the batch")
    if dims and dims[0] == dynamic:
        return [tuple([b, *dims[1:]]) for b in batch_sizes]
    return [tuple(dims)]


def _gather_rows(call: ir.Operation, composite) -> int | None:
    """A gather's table size along its axis (indices are drawn below it); None for other kinds."""
    if composite.kind != "gather":
        return None
    table = weight_constant(call.operands[composite.weight_index])
    axis = constant_value(call.operands[composite.axis_index])
    if table is None or axis is None:
        raise _Unmeasurable("its table or axis is not a constant")
    return int(table.shape[int(axis) % table.ndim])


def _new_entry(module: ir.Module, arg_type: ir.Type, result_type: ir.Type) -> tuple[ir.Operation, ir.Block]:
    """The micro-module's public function, named for `to_concrete_function`."""
    with ir.InsertionPoint(module.body):
        fn = func.FuncOp(_ENTRY, ([arg_type], [result_type]))
    fn.arg_attrs = ir.ArrayAttr.get([ir.DictAttr.get({"tfq.input_name": ir.StringAttr.get(_INPUT)})])
    fn.res_attrs = ir.ArrayAttr.get([ir.DictAttr.get({"tfq.output_name": ir.StringAttr.get(_OUTPUT)})])
    return fn, fn.add_entry_block()


def _clone_constant(value: ir.Value, mapping: dict, ip: ir.InsertionPoint) -> ir.Value:
    """`value`'s constant computation cloned at `ip` (its tf.Const and quant casts)."""
    if value in mapping:
        return mapping[value]
    op = defining_op(value)
    if op is None or op.name not in _CONSTANT_OPS:
        raise _Unmeasurable(f"an operand besides its input is not a constant ({op.name if op else 'an argument'})")
    operands = [_clone_constant(v, mapping, ip) for v in op.operands]
    clone = op.clone(ip=ip)
    for index, operand in enumerate(operands):
        clone.operands[index] = operand
    mapping.update(zip(op.results, clone.results))
    return mapping[value]


def _clone_unit(op: ir.Operation, input_index: int, arg_value: ir.Value, functions: dict[str, ir.Operation],
                micro: ir.Module, ip: ir.InsertionPoint) -> ir.Operation:
    """`op` cloned at `ip` on `arg_value` and clones of its constant operands; a call's callee is
    cloned into `micro` too."""
    mapping: dict = {}
    operands = [arg_value if i == input_index else _clone_constant(v, mapping, ip) for i, v in enumerate(op.operands)]
    clone = op.clone(ip=ip)
    for index, operand in enumerate(operands):
        clone.operands[index] = operand
    if op.name == "tf.PartitionedCall":
        functions[callee_name(op)].clone(ip=ir.InsertionPoint(micro.body))
    return clone


def _float_micro(call: ir.Operation, input_index: int, functions: dict[str, ir.Operation],
                 context: ir.Context) -> ir.Module:
    """The float unit: its composite function on its float constants, from a float input."""
    with context, call.location:
        micro = ir.Module.create()
        activation = call.operands[input_index]
        _, block = _new_entry(micro, activation.type, call.results[0].type)
        ip = ir.InsertionPoint(block)
        clone = _clone_unit(call, input_index, block.arguments[0], functions, micro, ip)
        with ip:
            func.ReturnOp([clone.results[0]])
    return micro


def _int8_micro(unit: ir.Operation, input_index: int, functions: dict[str, ir.Operation],
                context: ir.Context) -> ir.Module:
    """The int8 unit with the casts it has in the quantized model at its boundaries."""
    if unit.name == QuantizedOp.OPERATION_NAME:
        input_index = 1 if QuantizedOp(unit).is_gather else 0
    activation = unit.operands[input_index]
    producer = defining_op(activation)
    loc = unit.location
    with context, loc:
        micro = ir.Module.create()
        if producer is not None and producer.name == "quant.qcast":
            arg_type, cast = producer.operands[0].type, "quant.qcast"   # a float producer: quantize here
        elif tensor_params(activation.type) is not None:
            arg_type, cast = storage_type_of(activation.type), "quant.scast"  # a quantized producer
        else:
            arg_type, cast = activation.type, None
        result = unit.results[0]
        dequantized = next((u for u in uses(result) if u.name == "quant.dcast"), None)
        if tensor_params(result.type) is None:
            result_type, out_cast = result.type, None
        elif dequantized is not None:
            result_type, out_cast = dequantized.results[0].type, "quant.dcast"  # a float consumer
        else:
            result_type, out_cast = storage_type_of(result.type), "quant.scast"  # only quantized consumers
        _, block = _new_entry(micro, arg_type, result_type)
        ip = ir.InsertionPoint(block)
        with ip:
            value = block.arguments[0]
            if cast is not None:
                value = create_op(cast, [value], [activation.type], {}, loc).result
        clone = _clone_unit(unit, input_index, value, functions, micro, ip)
        with ip:
            value = clone.results[0]
            if out_cast is not None:
                value = create_op(out_cast, [value], [result_type], {}, loc).result
            func.ReturnOp([value])
    return micro


def _sample(arg_type: ir.Type, shape: tuple[int, ...], rows: int | None) -> np.ndarray:
    """An input for a micro-module's argument: normal floats, integers over the storage range, or
    indices below `rows` for a gather."""
    from tfquant import tf_attrs
    dtype = np.dtype(tf_attrs.dtype_of(ir.ShapedType(arg_type).element_type).as_numpy_dtype)
    rng = np.random.default_rng(0)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if rows is not None:
        return rng.integers(0, rows, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)


class _Lazy:
    """A micro-module's ConcreteFunction, traced on first use (an injected measure may never run it)."""

    def __init__(self, micro: ir.Module):
        self.micro = micro
        self.arg_type = _functions(micro)[_ENTRY].regions[0].blocks[0].arguments[0].type
        self._function = None

    def runner(self, value: np.ndarray) -> Callable[[], object]:
        tensor = None

        def run():
            nonlocal tensor
            import tensorflow as tf
            if self._function is None:
                from tfquant.exporter import to_concrete_function
                self._function = to_concrete_function(self.micro, _ENTRY)
            if tensor is None:
                tensor = tf.constant(value)
            return self._function(tensor)
        return run


# ----------------------------------------------------------------------------- timing

def time_units(float_run: Callable[[], object], int8_run: Callable[[], object], probe: Probe, *,
               budget_ms: float = 10.0, min_runs: int = 3, max_runs: int = 25) -> tuple[float, float]:
    """(float ms, int8 ms): medians of interleaved runs after warm-up, in about `budget_ms` per
    form (at least `min_runs` runs each, whatever they cost), less the median cost of calling an
    empty function (~0.2 ms here: paid once per model, not once per unit)."""
    empty = _empty_run()
    for run in (float_run, int8_run, float_run, int8_run, empty):  # the first call traces and optimizes
        run()
    started = time.perf_counter()
    float_run()
    int8_run()
    pair_ms = (time.perf_counter() - started) * 1e3
    runs = max(min_runs, min(max_runs, int(2 * budget_ms / max(pair_ms, 1e-3))))
    times: dict[int, list[float]] = {0: [], 1: [], 2: []}
    order = [(0, float_run), (1, int8_run), (2, empty)]
    for index in range(runs):
        for which, run in (order if index % 2 == 0 else order[::-1]):
            started = time.perf_counter()
            run()
            times[which].append((time.perf_counter() - started) * 1e3)
    overhead = statistics.median(times[2])
    return max(statistics.median(times[0]) - overhead, 0.0), max(statistics.median(times[1]) - overhead, 0.0)


_EMPTY: list = []


def _empty_run() -> Callable[[], object]:
    """A call of an empty ConcreteFunction: what calling any function costs."""
    if not _EMPTY:
        import tensorflow as tf
        function = tf.function(lambda x: tf.identity(x), autograph=False).get_concrete_function(
            tf.TensorSpec([], tf.float32))
        value = tf.constant(0.0)
        _EMPTY.append(lambda: function(value))
    return _EMPTY[0]


def describe(units: Sequence[UnitLatency], batch_sizes: Sequence[int]) -> list[str]:
    """The report's lines for a latency check."""
    kept = Counter(u.kept for u in units)
    batches = " and ".join(str(b) for b in sorted(set(batch_sizes)))
    lines = [f"latency check at batch {batches}: {kept[QUANTIZED]} units kept quantized (int8 faster), "
             f"{kept[FLOAT]} kept float (int8 not faster)" + (f", {kept[UNCHECKED]} not checked" if kept[UNCHECKED]
                                                              else "")]
    lines += [f"  {unit}" for unit in units]
    return lines


