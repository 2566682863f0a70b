"""What a lifted composite function computes: its kind, fused bias and activation, and the roles
of its call's operands; and the weight axis a per-channel quantization of it runs along.

Read from the function's body (main op, optional BiasAdd, optional Relu/Relu6), not its name;
what each op is comes from the op-spec table (`_op_specs.TF`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfquant.mlir import ir, ops_named, str_attr
from tfquant.passes._op_specs import TF
from tfquant.passes._tf_ops import callee_name, string_attribute

KINDS = TF.kinds

COMPOSITE_PREFIX = "composite_"
WEIGHT_OPERAND = "tfq.weight_operand"
# Marks the calls tfq-lift-quantizable-spots-as-functions makes.
QUANT_TRAIT = "_tfl_quant_trait"
FULLY_QUANTIZABLE = "fully_quantizable"


def is_lifted_call(op: ir.Operation) -> bool:
    """Whether `op` is a call of a composite function made by the lifting pass."""
    return string_attribute(op, QUANT_TRAIT) == FULLY_QUANTIZABLE


def lifted_calls(module_op: ir.Operation) -> list[ir.Operation]:
    """The calls made by tfq-lift-quantizable-spots-as-functions, in walk order."""
    return [op for op in ops_named(module_op, "tf.PartitionedCall") if is_lifted_call(op)]


@dataclass(frozen=True)
class Composite:
    """What a composite function computes, as indices into its call's operands."""
    kind: str
    main: ir.Operation           # the float op inside the composite function
    input_index: int             # the activation (gather: the indices)
    weight_index: int            # the constant weight (gather: the table)
    bias_index: int | None
    axis_index: int | None       # gather only
    activation: str
    op_attrs: dict[str, ir.Attribute]   # the main op's attributes, for (activation, weight) operand order


def _arg_index(value: ir.Value) -> int | None:
    """The position of a block argument, None for an op result."""
    return ir.BlockArgument(value).arg_number if isinstance(value.owner, ir.Block) else None


def analyze_composite(function: ir.Operation) -> Composite | None:
    """The composite's kind, fusions and operand roles; None unless its body is `op[, BiasAdd][, Relu|Relu6]`."""
    body = [op.operation for op in function.regions[0].blocks[0].operations]
    ops, terminator = body[:-1], body[-1]
    if not ops or ops[0].name not in KINDS or len(terminator.operands) != 1:
        return None
    main, kind = ops[0], KINDS[ops[0].name]
    roles = [_arg_index(v) for v in main.operands]
    if None in roles or len(roles) != (3 if kind == "gather" else 2):
        return None
    last, rest, bias_index, activation = main, ops[1:], None, "NONE"
    if rest and kind != "gather" and rest[0].name == TF.bias_add and rest[0].operands[0] == last.results[0]:
        bias_index = _arg_index(rest[0].operands[1])
        if bias_index is None:
            return None
        last, rest = rest[0], rest[1:]
    if rest and kind != "gather" and rest[0].name in TF.activations and rest[0].operands[0] == last.results[0]:
        activation = TF.activations[rest[0].name]
        last, rest = rest[0], rest[1:]
    if rest or terminator.operands[0] != last.results[0]:
        return None
    op_attrs = {name: main.attributes[name] for name in main.attributes}
    if kind == "gather":
        return Composite(kind, main, roles[1], roles[0], None, roles[2], activation, op_attrs)
    if weight_operand(function) == 0:
        # tfq.quantized_op takes (activation, weight): an einsum swaps its equation's terms; a
        # BatchMatMulV2 with the weight on the left has no such form and stays float.
        if kind != "einsum":
            return None
        op_attrs["equation"] = str_attr(_swap_einsum_terms(string_attribute(main, "equation")))
        roles.reverse()
    return Composite(kind, main, roles[0], roles[1], bias_index, None, activation, op_attrs)


def call_composite(call: ir.Operation, functions: dict[str, ir.Operation]) -> Composite | None:
    """What the composite function a lifted call calls computes; None for a callee not in `functions`
    or one with no quantized form."""
    callee = callee_name(call)
    return analyze_composite(functions[callee]) if callee in functions else None


def op_type(composite: Composite | None) -> str:
    """The TensorFlow op type a composite computes ("Conv2D"; "call" when it has no quantized form)."""
    return composite.main.name.partition(".")[2] if composite is not None else "call"


def weight_operand(function: ir.Operation) -> int:
    """Which operand of the main op is the weight, as the lifting pass recorded it (default 1)."""
    attr = function.attributes[WEIGHT_OPERAND] if WEIGHT_OPERAND in function.attributes else None
    return ir.IntegerAttr(attr).value if attr is not None else 1


def _swap_einsum_terms(equation: str) -> str:
    inputs, _, output = equation.replace(" ", "").partition("->")
    lhs, _, rhs = inputs.partition(",")
    return f"{rhs},{lhs}->{output}"


def attribute_values(attrs: dict[str, ir.Attribute]) -> dict[str, object]:
    """The bool and string attributes of an op as Python values, as the op-spec table reads them."""
    values: dict[str, object] = {}
    for name, attr in attrs.items():
        if isinstance(attr, ir.BoolAttr):
            values[name] = ir.BoolAttr(attr).value
        elif isinstance(attr, ir.StringAttr):
            values[name] = ir.StringAttr(attr).value
    return values


def weight_axis(composite: Composite, weight: np.ndarray, per_channel: bool) -> int | None:
    """The weight's output-channel axis for per-channel quantization, None for per tensor."""
    if not per_channel:
        return None
    quantizable = TF.quantizable[composite.main.name]
    return quantizable.channel_axis(attribute_values(composite.op_attrs), weight.shape)
