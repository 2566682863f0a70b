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
size is to stay float: `no_quantize` and `leave_float(call, "int8 is slower here: 0.21 ms vs 0.12
ms float (batch 1)")`, and the calibration points only it needed are removed, so its neighbours
return or take float as they would next to any float unit.

Keeping a unit float changes its neighbours' boundaries (a quantized layer after it must now
quantize its input), so the working copy is quantized again and the units whose boundaries changed
are measured again, until no unit changes (at most `MAX_ROUNDS` rounds). Weight-only and float16
units compute in float (their point is size, and grappler usually folds their weight's
dequantize): they stay narrow unless they are slower than float by more than `NARROW_TOLERANCE`.

Units timed alone miss what happens between them: on MobileNetV2 with the ONEDNN opset the
micro-modules made int8 look slower at batch 32 (their integer results leave through a u8 -> i8
conversion that a chain of oneDNN layers never pays; grappler fuses across units), while the whole
int8 model is 1.9x faster than float. So the whole model is then timed (`_check_model`) as the
per-unit decisions leave it (CHECKED), with every unit quantized (ALL_QUANTIZED) and float
(ALL_FLOAT), on a calibration batch and its first row; the fastest of the first two that is not
slower than float at any batch size is kept, float everywhere if neither is.

Units match between copies by their enclosing function, node name (location) and their order
among units of that name. The measurement is injectable: `measure(float_run, int8_run, probe) ->
(float_ms, int8_ms)`, where each run is a zero-argument callable that runs the unit (or the model)
once on its input and `probe` (a `Probe`; op_type MODEL and the candidate's name for the whole
model) says what and at which batch size; tests inject timings, `time_units` measures.

`form_costs` measures the same way what the accuracy tools' fallback costs: each fallen-back unit's
chosen form (float, or 16-bit activations) against its int8 form, each as it sits in its quantized
model (the SavedModel report's `latency_cost_s`).
"""
from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from tfquant import pipeline
from tfquant.mlir import enclosing_function_name, func, ir, name_of, walk_ops
from tfquant.passes._composite import call_composite, is_lifted_call, lifted_calls, op_type
from tfquant.passes._quant import storage_type_of, tensor_params
from tfquant.passes._spec import (NO_QUANTIZE, STATIC, UnitSpec, float_reason, leave_float, narrows_weights,
                                  set_unit_spec, takes_ranges, unit_spec)
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
        if not self.timings:
            return f"kept {self.kept}: {self.op_type} {self.node_name}: {self.note}"
        gain = f"{self.gain:.2f}x" if self.gain is not None else "?"
        return f"kept {self.kept}: {self.op_type} {self.node_name}: {self.form} gain {gain} ({measured})"


class _Unmeasurable(Exception):
    """Why a unit cannot be measured."""


@dataclass
class LatencyCheck:
    """What a latency check measured and decided.

    `units`: each quantized unit's measurement (`UnitLatency`), in module order. `model`: the whole
    model's latency per (signature, batch size) for each candidate measured against float
    ({candidate: (float ms, candidate ms)}); `chosen` is the candidate kept (CHECKED, ALL_QUANTIZED
    or ALL_FLOAT; "" when the model was not measured) and `note` why.
    """
    units: list[UnitLatency] = field(default_factory=list)
    batch_sizes: tuple[int, ...] = ()
    model: list[tuple[str, int, dict[str, tuple[float, float]]]] = field(default_factory=list)
    chosen: str = ""
    note: str = ""

    def lines(self) -> list[str]:
        """The report's lines."""
        kept = Counter(u.kept for u in self.units)
        batches = " and ".join(str(b) for b in self.batch_sizes)
        lines = [f"latency check at batch {batches}: {kept[QUANTIZED]} units kept quantized, {kept[FLOAT]} kept float"
                 + (f", {kept[UNCHECKED]} not checked" if kept[UNCHECKED] else "")
                 + (f"; {self.note}" if self.note else "")]
        for signature, batch, candidates in self.model:
            measured = ", ".join(
                f"{name} {ms:.2f} ms vs {float_ms:.2f} ms float ({float_ms / ms if ms else float('inf'):.2f}x)"
                for name, (float_ms, ms) in candidates.items())
            lines.append(f"  model '{signature}' at batch {batch}: {measured}")
        lines += [f"  {unit}" for unit in self.units]
        return lines


# Whole-model candidates: the units kept as the per-unit check decided, every unit as its spec
# says, every unit float.
CHECKED = "per-unit"
ALL_QUANTIZED = "all quantized"
ALL_FLOAT = "all float"
MODEL = "model"


def check(module: ir.Module, options, *, calibrated: bool = True, batch_sizes: Sequence[int] = (1, 32),
          measure: Measure | None = None, samples: dict[str, dict[str, np.ndarray]] | None = None,
          check_model: bool = True) -> LatencyCheck:
    """Measure each unit's int8 form against its float form; keep float where int8 is not faster.

    `module` is the calibrated module (contract step 3, ranges set) that the run's QUANTIZE stage
    will quantize next; `options` the run's resolved options (its stages come from
    `pipeline.build(options, calibrated)`). Then, with `check_model`, the whole model is timed as
    the per-unit decisions leave it, with every unit quantized, and float, on `samples` (one batch of
    inputs per signature; by default made up from the signatures' input specs) and on its first
    row, and the fastest of the first two that is not slower than float at any batch size is kept
    (float everywhere if neither is). Modifies `module`: units kept float get `no_quantize`, a
    `tfq.float_reason` and lose the calibration points only they needed.
    """
    quantize, lower = _quantize_and_lower(options, calibrated)
    measure = measure if measure is not None else time_units  # looked up late: tests may patch it
    result = LatencyCheck(batch_sizes=tuple(sorted(set(batch_sizes))))
    units, decisions = _check_units(module, quantize, lower, result.batch_sizes, measure)
    if check_model and any(u.kept != UNCHECKED for u in units.values()):
        try:
            units, decisions = _check_model(module, quantize + lower, units, decisions, result, measure, samples)
        except Exception as error:  # the per-unit decisions stand; say why the model was not timed
            detail = " ".join(str(error).split())
            result.model, result.chosen = [], ""
            result.note = f"the model could not be timed ({type(error).__name__}: {detail[:200]})"
    order = list(_keyed(lifted_calls(module.operation)))
    result.units = [units[key] for key in order if key in units]
    calls = _keyed(lifted_calls(module.operation))
    with module.context:
        for key, reason in decisions.items():
            _keep_float(calls[key], reason)
    return result


def form_costs(int8_module: ir.Module, chosen_module: ir.Module, options, keys: Sequence[tuple],
               batch_size: int = 1, measure: Measure | None = None) -> dict[tuple, float]:
    """Seconds each unit of `keys` takes in its form in `chosen_module` (float, or quantized as its spec
    there says, e.g. 16-bit activations) minus its form in `int8_module` (positive: slower), at
    `batch_size`: the accuracy tools' latency cost of a unit that fell back.

    `int8_module` is a calibrated module before the fallback's choices, `chosen_module` the same after
    them; `options` the run's resolved options (the QUANTIZE and LOWER pipelines); `keys` as
    `unit_keys` makes them. Each unit is measured as `check` measures units (micro-modules of the
    unit as it sits in each quantized model, lowered and timed), with `measure(chosen_run, int8_run,
    probe) -> (chosen ms, int8 ms)`. A unit that cannot be measured (no quantized form in
    `int8_module`, dynamic dimensions besides the batch) gets no entry. Neither module is modified.
    """
    quantize, lower = _quantize_and_lower(options, calibrated=True)
    measure = measure if measure is not None else time_units  # looked up late: tests may patch it
    quantized = {}
    for name, module in (("int8", int8_module), ("chosen", chosen_module)):
        quantized[name] = _copy(module)
        pipeline.run_pipeline(quantized[name], quantize)
    int8_units = _keyed(walk_ops(quantized["int8"].operation, _is_unit_op))
    chosen_units = _keyed(walk_ops(quantized["chosen"].operation, _is_unit_op))
    calls = _keyed(lifted_calls(chosen_module.operation))
    functions = _functions(chosen_module)
    int8_functions, chosen_functions = _functions(quantized["int8"]), _functions(quantized["chosen"])
    costs = {}
    for key in keys:
        call = calls[key]
        composite = call_composite(call, functions)
        try:
            if composite is None or not _is_quantized_unit(int8_units[key]):
                raise _Unmeasurable("it has no quantized form")
            int8_micro = _int8_micro(int8_units[key], composite.input_index, int8_functions, call.context)
            chosen = chosen_units[key]
            chosen_micro = _int8_micro(chosen, composite.input_index, chosen_functions, call.context) \
                if _is_quantized_unit(chosen) else _float_micro(call, composite.input_index, functions, call.context)
            (_, chosen_ms, int8_ms), = _time_forms(call, composite, chosen_micro, int8_micro, lower, (batch_size,),
                                                   measure)
        except _Unmeasurable:
            continue
        except Exception as error:  # the cost is information: a unit that cannot be timed is not an error
            detail = " ".join(str(error).split())
            warnings.warn(f"the latency cost of {key[1]} was not measured ({type(error).__name__}: {detail[:200]})",
                          stacklevel=2)
            continue
        costs[key] = (chosen_ms - int8_ms) / 1e3
    return costs


def unit_keys(module: ir.Module) -> dict[tuple[str, str, int], ir.Operation]:
    """`module`'s lifted calls by the key units match by between copies (see `form_costs`)."""
    return _keyed(lifted_calls(module.operation))


def _quantize_and_lower(options, calibrated: bool) -> tuple[pipeline.Pipeline, pipeline.Pipeline]:
    """The run's QUANTIZE and LOWER pipelines."""
    stages = {s.name: s.pipeline for s in pipeline.build(options, calibrated) if s.pipeline is not None}
    return stages[pipeline.QUANTIZE], stages[pipeline.LOWER]


def _check_units(module: ir.Module, quantize: pipeline.Pipeline, lower: pipeline.Pipeline,
                 batch_sizes: Sequence[int], measure: Measure) -> tuple[dict[tuple, UnitLatency], dict[tuple, str]]:
    """Per-unit measurements on a working copy of `module`, in rounds until no unit changes; the
    units measured and the reasons of those to keep float, by key."""
    work = _copy(module)
    results: dict[tuple, UnitLatency] = {}
    decisions: dict[tuple, str] = {}
    measured: dict[tuple, UnitLatency] = {}
    for _ in range(MAX_ROUNDS):
        calls = _keyed(lifted_calls(work.operation))
        copy = _copy(work)
        pipeline.run_pipeline(copy, quantize)
        kept_float = []
        for key, unit in _keyed(walk_ops(copy.operation, _is_unit_op)).items():
            call = calls.get(key)
            if call is None or not _is_quantized_unit(unit):
                continue
            context = (key, _boundaries(unit))
            if context not in measured:
                measured[context] = _check_unit(call, unit, work, copy, lower, batch_sizes, measure)
            results[key] = measured[context]
            if results[key].kept == FLOAT:
                kept_float.append((key, call, results[key].note))
        del copy
        if not kept_float:
            break
        with work.context:
            for key, call, reason in kept_float:
                _keep_float(call, reason)
                decisions[key] = reason
    return results, decisions


def _check_model(module: ir.Module, stages: pipeline.Pipeline, units: dict[tuple, UnitLatency],
                 decisions: dict[tuple, str], result: LatencyCheck, measure: Measure,
                 samples: dict[str, dict[str, np.ndarray]] | None) -> tuple[dict[tuple, UnitLatency], dict[tuple, str]]:
    """Time the whole model per candidate against float; the units and decisions of the one kept."""
    from tfquant.exporter import signature_input_specs, signature_names
    signatures = signature_names(module)
    specs = signature_input_specs(module)
    samples = samples or _made_up_samples(specs, max(result.batch_sizes))
    if samples is None or any(s not in samples for s in signatures):
        result.note = "the model was not timed (no inputs to time it on)"
        return units, decisions
    every_unit = {key: "" for key in units}
    # The per-unit decisions first: they win a tie. Unless they make every unit float (the float model itself).
    candidates = {CHECKED: decisions} if decisions and len(decisions) < len(every_unit) else {}
    candidates[ALL_QUANTIZED] = {}
    modules = {name: _quantized_copy(module, float_keys, stages) for name, float_keys in candidates.items()}
    modules[ALL_FLOAT] = _quantized_copy(module, every_unit, stages)
    functions = {name: {s: _Lazy(m, s) for s in signatures} for name, m in modules.items()}
    scores: dict[str, float] = {name: 0.0 for name in candidates}
    slower: dict[str, tuple] = {}
    for signature in signatures:
        for batch, inputs in _batches(samples[signature], specs[signature]):
            measured = {}
            for name in candidates:
                probe = Probe(MODEL, name, signature, batch, next(iter(inputs.values())).shape if inputs else ())
                float_ms, ms = measure(functions[ALL_FLOAT][signature].runner(inputs),
                                       functions[name][signature].runner(inputs), probe)
                measured[name] = (float(float_ms), float(ms))
                scores[name] += ms / float_ms if float_ms > 0 else float("inf")
                if ms > float_ms and name not in slower:
                    slower[name] = (batch, float_ms, ms)
            result.model.append((signature, batch, measured))
    del functions, modules
    qualified = [name for name in candidates if name not in slower]
    if not qualified:
        batch, float_ms, ms = slower[CHECKED if CHECKED in slower else ALL_QUANTIZED]
        reason = f"the model is slower quantized: {ms:.2f} ms vs {float_ms:.2f} ms float (batch {batch})"
        result.chosen, result.note = ALL_FLOAT, f"kept float everywhere: {reason}"
        return ({key: replace(u, kept=FLOAT, note=u.note if u.kept == FLOAT else reason) for key, u in units.items()},
                {key: decisions.get(key, reason) for key in units})
    result.chosen = min(qualified, key=lambda name: scores[name])
    if result.chosen == ALL_QUANTIZED and decisions:
        result.note = "every unit kept quantized: the model is fastest so (per-unit float decisions undone)"
        return ({key: replace(u, kept=QUANTIZED, note="kept quantized with the whole model") if u.kept == FLOAT else u
                 for key, u in units.items()}, {})
    result.note = f"kept as the per-unit check decided ({result.chosen})" if decisions else ""
    return units, decisions


def _quantized_copy(module: ir.Module, float_keys: dict[tuple, str], stages: pipeline.Pipeline) -> ir.Module:
    """A copy of `module` with the units of `float_keys` float, quantized and lowered."""
    copy = _copy(module)
    calls = _keyed(lifted_calls(copy.operation))
    with copy.context:
        for key in float_keys:
            _keep_float(calls[key], float_keys[key] or "latency check")
    pipeline.run_pipeline(copy, stages)
    return copy


def _made_up_samples(specs, batch: int) -> dict[str, dict[str, np.ndarray]] | None:
    """A batch per signature from its input specs: normal floats, zeros for other dtypes (ids, flags);
    None when an input has an unknown dimension besides the first."""
    rng = np.random.default_rng(0)
    samples = {}
    for signature, inputs in specs.items():
        samples[signature] = {}
        for name, (dtype, shape) in inputs.items():
            if shape is None or None in shape[1:]:
                return None
            dims = tuple(batch if (i == 0 and d is None) else d for i, d in enumerate(shape))
            samples[signature][name] = rng.standard_normal(dims).astype(dtype) if dtype.kind == "f" else \
                np.zeros(dims, dtype)
    return samples


def _batches(inputs: dict[str, np.ndarray], specs: dict[str, tuple]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """(batch size, inputs): the first row of the inputs with a batch dimension (unknown first
    dimension), then the whole batch."""
    batched = [name for name, (_, shape) in specs.items() if shape and shape[0] is None and name in inputs]
    rows = inputs[batched[0]].shape[0] if batched else 1
    result = []
    if rows > 1:
        result.append((1, {k: v[:1] if k in batched else v for k, v in inputs.items()}))
    result.append((rows, inputs))
    return result


# ----------------------------------------------------------------------------- units

def _keyed(ops: Sequence[ir.Operation]) -> dict[tuple[str, str, int], ir.Operation]:
    """Ops by (enclosing function, node name, how many ops of that function and name came before)."""
    keyed, seen = {}, Counter()
    for op in ops:
        base = (enclosing_function_name(op), name_of(op.location))
        keyed[(*base, seen[base])] = op
        seen[base] += 1
    return keyed


def _is_unit_op(op: ir.Operation) -> bool:
    """A lifted call, or the quantized op that replaced one."""
    return op.name == QuantizedOp.OPERATION_NAME or (op.name == "tf.PartitionedCall" and is_lifted_call(op))


def _is_quantized_unit(op: ir.Operation) -> bool:
    """A quantized op, or a weight-only / float16 call whose weight was made narrow."""
    return op.name == QuantizedOp.OPERATION_NAME or narrows_weights(op)


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
    return op.name == "tf.PartitionedCall" and is_lifted_call(op) and float_reason(op) is None and takes_ranges(op)


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
    composite = call_composite(call, functions)
    unit_type = op_type(composite)
    node_name, function = name_of(call.location) or str(call.location), enclosing_function_name(call)
    try:
        if composite is None:
            raise _Unmeasurable("its pattern has no quantized form")
        float_module = _float_micro(call, composite.input_index, functions, module.context)
        int8_module = _int8_micro(unit, composite.input_index, _functions(copy), module.context)
        timings = _time_forms(call, composite, float_module, int8_module, lower, batch_sizes, measure)
    except _Unmeasurable as reason:
        return UnitLatency(unit_type, node_name, function, UNCHECKED, note=str(reason))
    except Exception as error:  # a unit that cannot be measured keeps its spec; say why
        detail = " ".join(str(error).split())
        return UnitLatency(unit_type, node_name, function, UNCHECKED,
                           note=f"could not be measured ({type(error).__name__}: {detail[:200]})")
    narrow = unit.name != QuantizedOp.OPERATION_NAME
    form = unit_spec(unit).method.replace("_", "-") if narrow else "int8"
    slower = [(b, f, i) for b, f, i in timings if (i > f * (1 + NARROW_TOLERANCE) if narrow else i >= f)]
    if not slower:
        return UnitLatency(unit_type, node_name, function, QUANTIZED, timings, form=form)
    batch, float_ms, int8_ms = min(slower, key=lambda t: t[1] / t[2] if t[2] else float("inf"))
    verdict = "slower" if int8_ms > float_ms else "no faster"
    reason = f"{form} is {verdict} here: {int8_ms:.2f} ms vs {float_ms:.2f} ms float (batch {batch})"
    return UnitLatency(unit_type, node_name, function, FLOAT, timings, reason, form)


def _time_forms(call: ir.Operation, composite, first: ir.Module, second: ir.Module, lower: pipeline.Pipeline,
                batch_sizes: Sequence[int], measure: Measure) -> tuple[tuple[int, float, float], ...]:
    """(batch size, first ms, second ms) per batch size: two micro-modules of `call`'s unit lowered with
    `lower` and timed by `measure` on inputs of the unit's input shape."""
    shapes = _shapes(call.operands[composite.input_index].type, batch_sizes)
    for micro in (first, second):
        pipeline.run_pipeline(micro, lower)
    first_fn, second_fn = _Lazy(first), _Lazy(second)
    rows = _gather_rows(call, composite)
    node_name, function = name_of(call.location) or str(call.location), enclosing_function_name(call)
    timings = []
    for shape in shapes:
        probe = Probe(op_type(composite), node_name, function, shape[0] if shape else 1, shape)
        first_ms, second_ms = measure(first_fn.runner(_sample(first_fn.arg_type, shape, rows)),
                                      second_fn.runner(_sample(second_fn.arg_type, shape, rows)), probe)
        timings.append((probe.batch, float(first_ms), float(second_ms)))
    return tuple(timings)


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
    """A module function's ConcreteFunction, traced on first use (an injected measure may never run it)."""

    def __init__(self, module: ir.Module, name: str = _ENTRY):
        self.module = module
        self.name = name
        self.arg_type = _functions(module)[name].regions[0].blocks[0].arguments[0].type if name == _ENTRY else None
        self._function = None

    def runner(self, value) -> Callable[[], object]:
        """Runs the function on `value`: an array (one input), or {input name: array}."""
        tensors = None

        def run():
            nonlocal tensors
            import tensorflow as tf
            if self._function is None:
                from tfquant.exporter import to_concrete_function
                with self.module.context:  # tracing If/While branches builds symbol attributes
                    self._function = to_concrete_function(self.module, self.name)
            if tensors is None:
                if isinstance(value, dict):
                    names = [ir.StringAttr(ir.DictAttr(d)["tfq.input_name"]).value
                             for d in ir.ArrayAttr(_functions(self.module)[self.name].attributes["arg_attrs"])]
                    tensors = [tf.constant(value[n]) for n in names]
                else:
                    tensors = [tf.constant(value)]
            return self._function(*tensors)
        return run


# ----------------------------------------------------------------------------- timing

def time_units(float_run: Callable[[], object], int8_run: Callable[[], object], probe: Probe, *,
               budget_ms: float = 10.0, min_runs: int = 5, max_runs: int = 25) -> tuple[float, float]:
    """(float ms, int8 ms): the fastest of interleaved runs after warm-up, in about `budget_ms` per
    form (at least `min_runs` runs each, whatever they cost), less the fastest call of an empty
    function (~0.1 ms here: paid once per model, not once per unit).

    The fastest run, not the median: another process's bursts only ever add time, and a few runs
    of a large unit cannot average them out.
    """
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
    overhead = min(times[2])
    return max(min(times[0]) - overhead, 0.0), max(min(times[1]) - overhead, 0.0)


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
