"""tfq-assign-quantization-spec: give each lifted call the spec of what it becomes.

Sets `tfq.spec = {method, activation_bits, per_channel}` (`_spec.UnitSpec`) on every lifted call
(`_tfl_quant_trait = "fully_quantizable"`): the top-level method and bits, unless a unit-wise spec
matches the call, in which case the first matching one's. A unit-wise spec is a JSON list (the
`units` option) of objects with any of `op_type`, `node_name`, `func_name` (regular expressions,
each matching in full, all given ones must match) and `method` / `activation_bits`:

    op_type    the quantizable op's type without its dialect ("Conv2D", "MatMul", "Einsum")
    node_name  the op's node name in the model ("model/dense_1/MatMul")
    func_name  the function holding the call (the signature key, or an If/While branch's name)

A call left float gets method "no_quantize", `tfq.float_reason` and a remark saying why: its
pattern has no quantized form, a unit-wise spec excluded it, or its weight has fewer elements
than `min-weight-elements` (for the weight-only and dynamic-range methods, as TensorFlow's
`min_num_elements_for_weights`). A unit-wise spec that matches no call is a Python warning naming it.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass

import numpy as np

from tfquant.mlir import CompileError, enclosing_function_name, ir, name_of, symbol_table
from tfquant.pass_registry import PassOption, register_pass
from tfquant.passes._spec import (DYNAMIC_RANGE, METHODS, NO_QUANTIZE, WEIGHT_ONLY, UnitSpec, checked_spec, keep_float,
                                  set_unit_spec)
from tfquant.passes._tf_ops import weight_constant
from tfquant.passes._composite import Composite, call_composite, lifted_calls, op_type

# Methods whose weights below `min-weight-elements` elements stay float (TensorFlow's rule).
SIZE_LIMITED_METHODS = (DYNAMIC_RANGE, WEIGHT_ONLY)
DEFAULT_MIN_WEIGHT_ELEMENTS = 1024
UNIT_KEYS = ("op_type", "node_name", "func_name")


@dataclass(frozen=True)
class UnitRule:
    """One unit-wise spec: the calls it matches and the spec it gives them."""
    index: int
    patterns: dict[str, str]
    method: str
    activation_bits: int | None

    def matches(self, names: dict[str, str]) -> bool:
        return all(re.fullmatch(pattern, names[key]) is not None for key, pattern in self.patterns.items())

    def describe(self) -> str:
        where = ", ".join(f"{key}={pattern!r}" for key, pattern in self.patterns.items())
        return f"unit-wise quantization spec {self.index} ({where})"


@register_pass("tfq-assign-quantization-spec",
               "Give each lifted call its quantization spec (method, activation bits, per-channel) from the "
               "top-level method and the unit-wise specs; calls left float get a remark saying why",
               options=(PassOption("method", str, "static", "the top-level method", choices=METHODS),
                        PassOption("activation-bits", int, 8, "activation bits of the static method (8 or 16)"),
                        PassOption("per-channel", bool, True, "quantize weights per output channel"),
                        PassOption("min-weight-elements", int, DEFAULT_MIN_WEIGHT_ELEMENTS,
                                   "weight-only and dynamic-range weights with fewer elements stay float"),
                        PassOption("units", str, "[]", "unit-wise specs, as a JSON list (see the pass's docs)")))
def assign_quantization_spec(module_op: ir.Operation, method: str, activation_bits: int, per_channel: bool,
                             min_weight_elements: int, units: str) -> None:
    rules = parse_unit_rules(units, module_op.location)
    top_level = checked_spec(method, activation_bits, per_channel, module_op.location)
    functions = symbol_table(module_op)
    matched: set[int] = set()
    for call in lifted_calls(module_op):
        composite = call_composite(call, functions)
        if composite is None:
            keep_float(call, "no quantized form for this pattern")
            continue
        rule = next((r for r in rules if r.matches(_unit_names(call, composite))), None)
        spec = top_level
        if rule is not None:
            matched.add(rule.index)
            spec = checked_spec(rule.method, rule.activation_bits or activation_bits, per_channel, call.location)
        set_unit_spec(call, spec)
        reason = _float_reason(spec, rule, call, composite, min_weight_elements)
        if reason is not None:
            keep_float(call, reason)
    for rule in rules:
        if rule.index not in matched:
            warnings.warn(f"{rule.describe()} matches no quantizable op", stacklevel=2)


def _float_reason(spec: UnitSpec, rule: UnitRule | None, call: ir.Operation, composite: Composite,
                  min_weight_elements: int) -> str | None:
    if spec.method == NO_QUANTIZE:
        return f"excluded by {rule.describe()}" if rule is not None else "the method is no_quantize"
    if spec.method in SIZE_LIMITED_METHODS:
        weight = weight_constant(call.operands[composite.weight_index])
        size = int(np.prod(weight.shape)) if weight is not None else 0
        if size < min_weight_elements:
            return (f"its weight has {size} elements, fewer than min_num_elements_for_weights "
                    f"({min_weight_elements})")
    return None


def _unit_names(call: ir.Operation, composite: Composite) -> dict[str, str]:
    """What unit-wise specs match a call on: its op type, node name and enclosing function."""
    return {"op_type": op_type(composite), "node_name": name_of(call.location),
            "func_name": enclosing_function_name(call)}


def parse_unit_rules(text: str, loc: ir.Location) -> list[UnitRule]:
    """The `units` option: a JSON list of {op_type?, node_name?, func_name?, method, activation_bits?}."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise CompileError(f"unit-wise specs are not valid JSON: {error}", loc) from None
    if not isinstance(entries, list):
        raise CompileError("unit-wise specs must be a JSON list", loc)
    rules = []
    for index, entry in enumerate(entries):
        patterns = {key: entry[key] for key in UNIT_KEYS if isinstance(entry, dict) and entry.get(key)}
        if not patterns:
            raise CompileError(f"unit-wise spec {index} names no op_type, node_name or func_name", loc)
        unknown = set(entry) - {*UNIT_KEYS, "method", "activation_bits"}
        if unknown:
            raise CompileError(f"unit-wise spec {index} has unknown key '{sorted(unknown)[0]}'", loc)
        for key, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise CompileError(f"unit-wise spec {index}: {key} {pattern!r} is not a regular expression: "
                                   f"{error}", loc) from None
        rules.append(UnitRule(index, patterns, entry.get("method", NO_QUANTIZE), entry.get("activation_bits")))
        checked_spec(rules[-1].method, rules[-1].activation_bits or 8, True, loc)
    return rules
