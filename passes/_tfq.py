"""tfquant's own ops, `tfq.quantized_op` and `tfq.calibration_point`, as typed op classes.

Each class is the one definition of its op: how it is built, what its accessors read and what
its verifier requires. They are registered with the `tfq` namespace, so iterating a block yields
them, and `QuantizedOp(op)` views any generic op handle of that name.

    %y = "tfq.quantized_op"(%x, %w[, %b]) {kind = "conv2d", op_attrs = {...}, activation = "NONE"}

  computes the float op of `kind` (attributes `op_attrs`) with its fused bias and activation on
  quantized operands. Every parameter is in the types: `%x` is a per-tensor `!quant.uniform`
  (static range) or f32 (dynamic range: quantized per batch at run time); `%w` a `!quant.uniform`
  weight, per tensor or per axis; `%b` a `!quant.uniform<i32...>` bias at scale input x weight
  scale (f32 with a dynamic-range input); the result a per-tensor `!quant.uniform` or f32 (the
  accumulator dequantized: float output). A gather takes (table, indices, axis) and its result
  has the table's type.

    %y = "tfq.calibration_point"(%x) {id = N : i64, method = "...", activation_bits = 8 : i64}

  records the range of `%x` during calibration (same type in and out); calibration sets
  `min`/`max` (f32) on it.
"""
from __future__ import annotations

from collections.abc import Sequence

from iree.compiler.dialects._ods_common import _cext

from tfquant._pydialects.tfq import _Dialect
from tfquant.mlir import CompileError, i64_attr, ir, str_attr
from tfquant.passes import _op_specs
from tfquant.passes._quant import QuantParams, tensor_params
from tfquant.passes._tf_ops import create_op, is_float
from tfquant.passes._verify import (DICT, FLOAT, INT, STRING, TF_OPS, OpSpec, at_least, check_attributes, check_count,
                                    check_ranks, exactly, verify)

ACTIVATIONS = ("NONE", *_op_specs.TF.activations.values())


@_cext.register_operation(_Dialect)
class QuantizedOp(ir.OpView):
    """A float op of `kind` on quantized operands (see the module docstring)."""
    OPERATION_NAME = "tfq.quantized_op"
    _ODS_REGIONS = (0, True)
    SPEC = OpSpec(at_least(2), required={"kind": STRING, "op_attrs": DICT, "activation": STRING})

    @staticmethod
    def build(kind: str, op_attrs: dict[str, ir.Attribute], activation: str, operands: Sequence[ir.Value],
              result_type: ir.Type, loc: ir.Location) -> "QuantizedOp":
        """A new op at the current insertion point."""
        op = create_op(QuantizedOp.OPERATION_NAME, operands, [result_type],
                       {"kind": str_attr(kind), "op_attrs": ir.DictAttr.get(op_attrs),
                        "activation": str_attr(activation)}, loc)
        return QuantizedOp(op)

    @property
    def kind(self) -> str:
        return ir.StringAttr(self.operation.attributes["kind"]).value

    @property
    def op_attrs(self) -> dict[str, ir.Attribute]:
        """The float op's own attributes (strides, padding, transpose_b, equation, ...)."""
        return {named.name: named.attr for named in ir.DictAttr(self.operation.attributes["op_attrs"])}

    @property
    def activation(self) -> str:
        return ir.StringAttr(self.operation.attributes["activation"]).value

    @property
    def is_gather(self) -> bool:
        return self.kind == "gather"

    @property
    def input(self) -> ir.Value:
        """The activation (gather: the indices)."""
        return self.operation.operands[1 if self.is_gather else 0]

    @property
    def weight(self) -> ir.Value:
        """The weight (gather: the table)."""
        return self.operation.operands[0 if self.is_gather else 1]

    @property
    def bias(self) -> ir.Value | None:
        return self.operation.operands[2] if not self.is_gather and len(self.operation.operands) > 2 else None

    @property
    def input_params(self) -> QuantParams | None:
        """The activation's parameters; None for a dynamic-range input (and for a gather)."""
        return None if self.is_gather else tensor_params(self.input.type)

    @property
    def weight_params(self) -> QuantParams:
        return tensor_params(self.weight.type)

    @property
    def output_params(self) -> QuantParams | None:
        """The result's parameters; None for a float output."""
        return tensor_params(self.operation.results[0].type)

    @property
    def is_dynamic(self) -> bool:
        return not self.is_gather and self.input_params is None

    def verify(self) -> None:
        """Raise a CompileError at the op unless it is well formed (see the module docstring)."""
        op, what = self.operation, f"'{self.OPERATION_NAME}' op"
        verify(op, self.SPEC)
        kinds = _op_specs.TF.kinds.values()
        if self.kind not in kinds:
            raise CompileError(f"{what} has unknown kind '{self.kind}'; the kinds are {', '.join(kinds)}", op.location)
        what = f"{what} of kind {self.kind}"
        float_spec = TF_OPS[_op_specs.TF.op_for_kind(self.kind)]
        check_count(op, "operand", len(op.operands), exactly(3) if self.is_gather else range(2, 4), what)
        check_ranks(op, float_spec.ranks, what)
        check_attributes(self.op_attrs, float_spec, f"{what}: op_attrs", op.location)
        if self.activation not in ACTIVATIONS:
            raise CompileError(f"{what} has unknown activation '{self.activation}'; the activations are "
                               f"{', '.join(ACTIVATIONS)}", op.location)
        self._verify_types(what)

    def _verify_types(self, what: str) -> None:
        def fail(message: str) -> CompileError:
            return CompileError(f"{what}: {message}", self.operation.location)

        weight = self.weight_params
        if weight is None:
            raise fail(f"the weight must have a !quant.uniform type, got {self.weight.type}")
        output = self.output_params
        if self.is_gather:
            if ir.ShapedType(self.operation.results[0].type).element_type != ir.ShapedType(self.weight.type).element_type:
                raise fail("a gather's result must have its table's element type")
            return
        if self.input_params is None and not is_float(self.input):
            raise fail(f"the input must be f32 or !quant.uniform, got {self.input.type}")
        if self.input_params is not None and self.input_params.axis is not None:
            raise fail("the input must be quantized per tensor")
        if output is not None and (output.axis is not None or self.is_dynamic):
            raise fail("the result must be f32 or quantized per tensor (f32 with a dynamic-range input)")
        if output is None and not is_float(self.operation.results[0]):
            raise fail(f"the result must be f32 or !quant.uniform, got {self.operation.results[0].type}")
        bias = self.bias
        if bias is not None:
            bias_params = tensor_params(bias.type)
            if self.is_dynamic and bias_params is not None:
                raise fail("with a dynamic-range input the bias must be f32")
            if not self.is_dynamic and (bias_params is None or bias_params.storage_bits != 32):
                raise fail(f"the bias must be !quant.uniform<i32...>, got {bias.type}")


@_cext.register_operation(_Dialect)
class CalibrationPointOp(ir.OpView):
    """Records the range of its operand during calibration (see the module docstring)."""
    OPERATION_NAME = "tfq.calibration_point"
    _ODS_REGIONS = (0, True)
    SPEC = OpSpec(exactly(1), float_operands=(0,), required={"id": INT, "method": STRING},
                  optional={"min": FLOAT, "max": FLOAT, "activation_bits": INT})

    @staticmethod
    def build(value: ir.Value, method: str, activation_bits: int, loc: ir.Location) -> "CalibrationPointOp":
        # The id is a placeholder: points are numbered in walk order once all are in place.
        op = create_op(CalibrationPointOp.OPERATION_NAME, [value], [value.type],
                       {"id": i64_attr(-1), "method": str_attr(method),
                        "activation_bits": i64_attr(activation_bits)}, loc)
        return CalibrationPointOp(op)

    @property
    def id(self) -> int:
        return ir.IntegerAttr(self.operation.attributes["id"]).value

    @id.setter
    def id(self, value: int) -> None:
        self.operation.attributes["id"] = i64_attr(value)

    @property
    def activation_bits(self) -> int:
        attrs = self.operation.attributes
        return ir.IntegerAttr(attrs["activation_bits"]).value if "activation_bits" in attrs else 8

    @activation_bits.setter
    def activation_bits(self, bits: int) -> None:
        self.operation.attributes["activation_bits"] = i64_attr(bits)

    @property
    def range(self) -> tuple[float, float] | None:
        """The calibrated (min, max), None before calibration or where no data reached the point."""
        attrs = self.operation.attributes
        if "min" not in attrs or "max" not in attrs:
            return None
        return ir.FloatAttr(attrs["min"]).value, ir.FloatAttr(attrs["max"]).value

    def set_range(self, low: float, high: float) -> None:
        f32 = ir.F32Type.get(self.operation.context)
        self.operation.attributes["min"] = ir.FloatAttr.get(f32, low)
        self.operation.attributes["max"] = ir.FloatAttr.get(f32, high)

    def clear_range(self) -> None:
        """Forget the range: the point then quantizes nothing (tfq-apply-calibration-stats removes it)."""
        for bound in ("min", "max"):
            if bound in self.operation.attributes:
                del self.operation.attributes[bound]

    def verify(self) -> None:
        verify(self.operation, self.SPEC)
        if self.activation_bits not in (8, 16):
            raise CompileError(f"'{self.OPERATION_NAME}' op activation_bits must be 8 or 16, got "
                               f"{self.activation_bits}", self.operation.location)
