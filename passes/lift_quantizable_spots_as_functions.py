"""tfq-lift-quantizable-spots-as-functions: outline each quantizable pattern into a composite function.

Rewrites, in every function that is not itself a composite function,

    %y = "tf.Conv2D"(%x, %w)            %y = "tf.PartitionedCall"(%x, %w, %b) {
    %z = "tf.BiasAdd"(%y, %b)      ->          f = @composite_conv2d_with_bias_and_relu6_fn_1,
    %r = "tf.Relu6"(%z)                        config = "", config_proto = "", executor_type = "",
                                               _tfl_quant_trait = "fully_quantizable"}

(plus the `Tin`/`Tout` type lists TensorFlow's PartitionedCall needs to be exported), where the
private function holds the original ops (with their locations) and the call takes the location of
the root op. Patterns, the longest that matches along single-use chains:
  * Conv2D, DepthwiseConv2dNative (NHWC), MatMul with a constant weight as operand 1, and
    BatchMatMulV2, Einsum (two operands) with a constant weight as either operand, each alone,
    `+ BiasAdd` (constant bias), `+ Relu|Relu6`, or `+ BiasAdd + Relu|Relu6`;
  * GatherV2 of a constant float table with a constant axis (an embedding lookup).
The activation (or for GatherV2 the table) must be f32. A weight (or table) may also be a tf.Const
fake-quantized by quantization-aware training, `quant.dcast(quant.qcast(tf.Const))` (from
tfq-convert-fake-quant-to-qdq): the call then takes the dcast's result, and the pair keeps the
trained quantized type for the quantize pass. The function's arguments are the root op's
activation operands (for GatherV2 the indices), the weight (table), the bias if any, then the
GatherV2 axis; weights and biases stay in the caller. The function records which operand
of its root op is the weight as `tfq.weight_operand` (BatchMatMulV2/Einsum may have it on the left).
Function names: `composite_<op>[_with_bias][_and_relu|_and_relu6]_fn_<N>` (`_with_relu` without bias),
with N counting the functions lifted in the module from 1, skipping names already taken.
"""
from __future__ import annotations

from dataclasses import dataclass

from tfquant.mlir import func, i64_attr, ir, module_funcs, symbol_table
from tfquant.pass_registry import register_pass
from tfquant.passes._composite import COMPOSITE_PREFIX, FULLY_QUANTIZABLE, KINDS, QUANT_TRAIT, WEIGHT_OPERAND
from tfquant.passes._op_specs import TF
from tfquant.passes._tf_ops import (constant_value, create_partitioned_call, defining_op, has_one_use, is_float32,
                                    string_attribute, uses, weight_constant)
from tfquant.passes._verify import reading, verify_ops



@dataclass(frozen=True)
class Spot:
    """One matched pattern: a root op, its weight operand and the BiasAdd / activation fused after it."""
    root: ir.Operation
    weight_index: int
    bias_add: ir.Operation | None
    activation: ir.Operation | None

    @property
    def ops(self) -> list[ir.Operation]:
        return [op for op in (self.root, self.bias_add, self.activation) if op is not None]

    @property
    def name_stem(self) -> str:
        fusions = (["bias"] if self.bias_add is not None else []) + \
                  ([TF.activations[self.activation.name].lower()] if self.activation is not None else [])
        suffix = "_with_" + "_and_".join(fusions) if fusions else ""
        return f"{COMPOSITE_PREFIX}{KINDS[self.root.name]}{suffix}_fn"

    def call_operands(self) -> list[ir.Value]:
        """Activations (GatherV2: indices), weight, bias, then the GatherV2 axis."""
        operands = list(self.root.operands)
        weight = operands[self.weight_index]
        if self.root.name == "tf.GatherV2":
            return [operands[1], weight, operands[2]]
        activations = [v for i, v in enumerate(operands) if i != self.weight_index]
        bias = [self.bias_add.operands[1]] if self.bias_add is not None else []
        return activations + [weight] + bias


@register_pass("tfq-lift-quantizable-spots-as-functions",
               "Outline conv/matmul/einsum/gather patterns (+bias, +relu) into composite functions")
def lift_quantizable_spots_as_functions(module_op: ir.Operation) -> None:
    verify_ops(module_op, reading(*KINDS, TF.bias_add))
    names = _NameGenerator(set(symbol_table(module_op)))
    module_body = module_op.regions[0].blocks[0]
    for fn in module_funcs(module_op):
        if string_attribute(fn, "sym_name").startswith(COMPOSITE_PREFIX) or not fn.regions[0].blocks:
            continue
        block = fn.regions[0].blocks[0]
        for spot in [s for s in map(match_spot, list(block.operations)) if s is not None]:
            _outline(spot, names.next(spot.name_stem), module_body)


class _NameGenerator:
    """`<stem>_<N>` with one counter for the module, skipping symbols that exist."""

    def __init__(self, taken: set[str]):
        self.taken = taken
        self.count = 0

    def next(self, stem: str) -> str:
        while True:
            self.count += 1
            name = f"{stem}_{self.count}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def match_spot(op: ir.OpView | ir.Operation) -> Spot | None:
    """The longest quantizable pattern rooted at `op`, or None."""
    op = op.operation
    if op.name not in KINDS:
        return None
    if op.name == "tf.GatherV2":
        return _match_gather(op)
    formats = TF.quantizable[op.name].data_formats
    if formats is not None and string_attribute(op, "data_format", formats[0]) not in formats:
        return None
    if len(op.operands) != 2:
        return None
    weight_index = _weight_index(op)
    if weight_index is None or not is_float32(op.operands[1 - weight_index]):
        return None
    bias_add = _fused_user(op.results[0], (TF.bias_add,))
    if bias_add is not None and not _is_bias_add(bias_add, op.results[0]):
        bias_add = None
    last = bias_add or op
    activation = _fused_user(last.results[0], tuple(TF.activations))
    return Spot(op, weight_index, bias_add, activation)


def _weight_index(op: ir.Operation) -> int | None:
    """Which operand is the constant float weight; the other must not be a constant."""
    for index in TF.quantizable[op.name].weight_operands:
        weight, other = op.operands[index], op.operands[1 - index]
        if _is_weight(weight) and weight_constant(other) is None:
            return index
    return None


def _is_weight(value: ir.Value) -> bool:
    """A float32 constant: a tf.Const, or one with its trained type (a QAT weight, dcast(qcast(tf.Const)))."""
    return weight_constant(value) is not None and is_float32(value)


def _is_float32_const(value: ir.Value) -> bool:
    return constant_value(value) is not None and is_float32(value)


def _match_gather(op: ir.Operation) -> Spot | None:
    table, _, axis = op.operands
    if not _is_weight(table) or constant_value(axis) is None:
        return None
    return Spot(op, 0, None, None)


def _fused_user(value: ir.Value, names: tuple[str, ...]) -> ir.Operation | None:
    """The single user of `value` if it is one of `names` (fusing a value with other users would lose it)."""
    if not has_one_use(value):
        return None
    user = uses(value)[0]
    return user if user.name in names else None


def _is_bias_add(op: ir.Operation, value: ir.Value) -> bool:
    return (op.operands[0] == value and _is_float32_const(op.operands[1])
            and string_attribute(op, "data_format", "NHWC") == "NHWC")


def _outline(spot: Spot, name: str, module_body: ir.Block) -> None:
    """Move the spot's ops into a new private function `name` and call it where they were."""
    operands = spot.call_operands()
    last = spot.ops[-1]
    result = last.results[0]
    with ir.InsertionPoint(last):
        call = create_partitioned_call(name, operands, [result.type], spot.root.location,
                                       {QUANT_TRAIT: ir.StringAttr.get(FULLY_QUANTIZABLE)})
    result.replace_all_uses_with(call.result)

    with ir.InsertionPoint(module_body):
        fn = func.FuncOp(name, ir.FunctionType.get([v.type for v in operands], [result.type]),
                         visibility="private", loc=spot.root.location)
    fn.attributes[WEIGHT_OPERAND] = i64_attr(spot.weight_index)
    body = fn.add_entry_block(arg_locs=[ir.Location.unknown()] * len(operands))
    for op in spot.ops:
        body.append(op)
        # Operands from the caller become the function's arguments; values of the chain stay as they are.
        for index, value in enumerate(op.operands):
            if defining_op(value) is None or defining_op(value) not in spot.ops:
                op.operands[index] = body.arguments[_index_of(value, operands)]
    with ir.InsertionPoint(body):
        func.ReturnOp([result], loc=last.location)


def _index_of(value: ir.Value, values: list[ir.Value]) -> int:
    for index, candidate in enumerate(values):
        if candidate == value:
            return index
    raise ValueError(f"{value} is not an operand of the lifted call")
