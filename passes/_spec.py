"""The quantization spec of one unit (a lifted call), as data on the call.

tfq-assign-quantization-spec writes it; the passes after it read it instead of assuming a
method. On the call it is one dictionary attribute:

    tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}

and a call left float carries the reason as `tfq.float_reason = "..."` (also emitted as a
remark at the call's location).
"""
from __future__ import annotations

from dataclasses import dataclass

from tfquant.mlir import CompileError, emit_remark, i64_attr, ir, str_attr

SPEC = "tfq.spec"
FLOAT_REASON = "tfq.float_reason"

STATIC = "static"                # int8 (or int16) activations from calibration, int8 weights
DYNAMIC_RANGE = "dynamic_range"  # int8 weights, activations quantized per batch at run time
WEIGHT_ONLY = "weight_only"      # int8 weights dequantized before use, float compute
FLOAT16 = "float16"              # float16 weights cast to float before use, float compute
NO_QUANTIZE = "no_quantize"
METHODS = (STATIC, DYNAMIC_RANGE, WEIGHT_ONLY, FLOAT16, NO_QUANTIZE)
# Methods whose activation ranges come from calibration (or from a QAT model's fake-quant ops).
CALIBRATED_METHODS = (STATIC,)
ACTIVATION_BITS = (8, 16)


@dataclass(frozen=True)
class UnitSpec:
    """What one unit becomes."""
    method: str
    activation_bits: int = 8
    per_channel: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown quantization method '{self.method}'; the methods are {', '.join(METHODS)}")
        if self.activation_bits not in ACTIVATION_BITS:
            raise ValueError(f"activation bits must be 8 or 16, got {self.activation_bits}")

    def to_attr(self) -> ir.DictAttr:
        return ir.DictAttr.get({"method": str_attr(self.method), "activation_bits": i64_attr(self.activation_bits),
                                "per_channel": ir.BoolAttr.get(self.per_channel)})

    @staticmethod
    def from_attr(attr: ir.Attribute) -> "UnitSpec":
        entries = {named.name: named.attr for named in ir.DictAttr(attr)}
        return UnitSpec(ir.StringAttr(entries["method"]).value, ir.IntegerAttr(entries["activation_bits"]).value,
                        ir.BoolAttr(entries["per_channel"]).value)


def unit_spec(call: ir.Operation) -> UnitSpec | None:
    """The spec on a lifted call, None before tfq-assign-quantization-spec ran; a CompileError at
    the call when it is malformed."""
    if SPEC not in call.attributes:
        return None
    try:
        return UnitSpec.from_attr(call.attributes[SPEC])
    except (ValueError, KeyError, TypeError) as error:
        detail = f"it has no '{error.args[0]}'" if isinstance(error, KeyError) else str(error)
        raise CompileError(f"malformed {SPEC} {call.attributes[SPEC]}: {detail}", call.location) from None


def set_unit_spec(call: ir.Operation, spec: UnitSpec) -> None:
    call.attributes[SPEC] = spec.to_attr()


def takes_ranges(call: ir.Operation) -> bool:
    """Whether a lifted call is quantized with calibrated (or trained) activation ranges: its spec's
    method is static, or it has no spec yet (static int8 then)."""
    spec = unit_spec(call)
    return spec is None or spec.method in CALIBRATED_METHODS


def narrows_weights(call: ir.Operation) -> bool:
    """Whether a lifted call computes in float on narrowed weights (weight-only int8 or float16)."""
    spec = unit_spec(call)
    return spec is not None and spec.method in (WEIGHT_ONLY, FLOAT16) and float_reason(call) is None


def checked_spec(method: str, activation_bits: int, per_channel: bool, loc: ir.Location) -> UnitSpec:
    """The UnitSpec of these values, or a CompileError at `loc` saying what is wrong with them."""
    try:
        return UnitSpec(method, activation_bits, per_channel)
    except ValueError as error:
        raise CompileError(str(error), loc) from None


def is_static_unit(op: ir.Operation) -> bool:
    """Whether `op` has a static spec and has not been left float."""
    spec = unit_spec(op)
    return spec is not None and spec.method == STATIC and float_reason(op) is None


def keep_float(op: ir.Operation, reason: str) -> None:
    """Give `op` the no_quantize spec, and record why (see leave_float)."""
    set_unit_spec(op, UnitSpec(NO_QUANTIZE))
    leave_float(op, reason)


def leave_float(call: ir.Operation, reason: str) -> None:
    """Record why `call` stays float, on the call and as a remark at its location."""
    call.attributes[FLOAT_REASON] = str_attr(reason)
    emit_remark(call.location, f"stays float: {reason}")


def float_reason(call: ir.Operation) -> str | None:
    return ir.StringAttr(call.attributes[FLOAT_REASON]).value if FLOAT_REASON in call.attributes else None
