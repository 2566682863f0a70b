"""Reading and building tfl.* ops, shared by the TFLite passes.

The IR contract of the TFLite path (`tfquant.tflite_flatbuffer` reads and writes it):

* One `func.func` per subgraph; a subgraph with a signature has `tfl.signature_key` and
  `tfl.signature_inputs` / `tfl.signature_outputs` (the signature's names, in argument/result order).
* One generic op per operator, `tfl.<builtin name lowercased>` ("tfl.conv_2d"), its builtin options
  as attributes named as the schema's object API fields (`fusedActivationFunction = 1 : i32`),
  `tfl.options = "Conv2DOptions"`, `tfl.version` its opcode version; its location the name of its
  first output tensor. A missing optional operand is `"tfl.no_value"() : () -> none`.
* Constants are `"tfl.pseudo_const"() {value = dense<...>}`, quantized constants
  `"tfl.pseudo_qconst"() {qtype = tensor<..x!quant.uniform<..>>, value = dense<..> : tensor<..xi8>}`;
  the element type of `value` is the tensor's storage type. MLIR's quant types stop at 32 bits, so a
  64-bit quantized constant (16x8 biases) has a `qtype` of i32 storage and an i64 `value`.
* Quantized tensors have `!quant.uniform` element types (see passes/_quant.py).

The passes, in order:
1. tfq-tfl-prepare-quantize: `tfq.spec` on every op of the `tfl` table (passes/_op_specs.py), a
   `tfq.float_reason` and remark on the rest; for static specs, a `tfq.calibration_point` on every
   float activation operand and result. Calibration (LiteRT) writes the ranges,
   tfq-apply-calibration-stats turns them into `quant.qcast`/`quant.dcast` pairs.
2. tfq-tfl-quantize: each unit becomes the same tfl op on quantized operands and results (weights
   and biases `tfl.pseudo_qconst`), its float result replaced by `quant.dcast` of the new one;
   dynamic-range units get int8 weights (hybrid kernels), float16 units float16 weights behind a
   `tfl.dequantize`.
3. tfq-tfl-post-quantize: the remaining qcast/dcast pairs become `tfl.quantize` (quantize or
   requantize) and `tfl.dequantize` ops, or vanish; integer-only mode refuses any float op left.
4. tfq-tfl-modify-io: int8/uint8/int16 inputs and outputs in place of float ones.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tfquant.mlir import ir, module_funcs
from tfquant.passes._tf_ops import create_op, defining_op

CONST = "tfl.pseudo_const"
QCONST = "tfl.pseudo_qconst"
NO_VALUE = "tfl.no_value"
QUANTIZE = "tfl.quantize"
DEQUANTIZE = "tfl.dequantize"
VERSION = "tfl.version"
SIGNATURE_KEY = "tfl.signature_key"
SIGNATURE_INPUTS = "tfl.signature_inputs"
SIGNATURE_OUTPUTS = "tfl.signature_outputs"
# Ops that carry no computation to quantize.
STRUCTURAL_OPS = frozenset({CONST, QCONST, NO_VALUE, QUANTIZE, DEQUANTIZE})


def builtin_name(op: ir.Operation) -> str:
    """The op's TFLite builtin name: "tfl.conv_2d" -> "CONV_2D"."""
    return op.name.removeprefix("tfl.").upper()


def tfl_constant(value: ir.Value) -> np.ndarray | None:
    """The numpy value of a float or integer `tfl.pseudo_const` (read-only view), else None."""
    op = defining_op(value)
    if op is None or op.name != CONST:
        return None
    return np.asarray(ir.DenseElementsAttr(op.attributes["value"]))


def create_tfl_const(array: np.ndarray, loc: ir.Location) -> ir.Value:
    """A `tfl.pseudo_const` holding `array`, at the current insertion point."""
    array = np.require(array, requirements="C")
    attr = ir.DenseElementsAttr.get(array, signless=array.dtype.kind != "u")
    return create_op(CONST, [], [attr.type], {"value": attr}, loc).result


def create_tfl_qconst(storage: np.ndarray, quantized_type: ir.Type, loc: ir.Location) -> ir.Value:
    """A `tfl.pseudo_qconst` of `quantized_type` holding the integer `storage` values."""
    storage = np.require(storage, requirements="C")
    attr = ir.DenseElementsAttr.get(storage, signless=storage.dtype.kind != "u")
    return create_op(QCONST, [], [quantized_type], {"qtype": ir.TypeAttr.get(quantized_type), "value": attr},
                     loc).result


def set_version(op: ir.Operation, version: int) -> None:
    """Raise the op's opcode version to at least `version` (quantized kernels need newer versions)."""
    current = ir.IntegerAttr(op.attributes[VERSION]).value if VERSION in op.attributes else 1
    op.attributes[VERSION] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32), max(current, version))


def tfl_ops(module_op: ir.Operation) -> Iterator[ir.Operation]:
    """Every tfl op in the module's functions, in block order (a def before its uses)."""
    for function in module_funcs(module_op):
        for block in function.regions[0].blocks:
            for op in list(block.operations):
                if op.operation.name.startswith("tfl."):
                    yield op.operation


def io_names(function: ir.Operation, outputs: bool = False) -> list[str]:
    """The names of a function's inputs (or outputs), in argument (result) order: its signature's,
    else its tensors' (`tfl.name`), else "input 0", "input 1", ..."""
    kind = "output" if outputs else "input"
    signature = SIGNATURE_OUTPUTS if outputs else SIGNATURE_INPUTS
    if signature in function.attributes:
        return [ir.StringAttr(name).value for name in ir.ArrayAttr(function.attributes[signature])]
    function_type = ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value)
    count = len(function_type.results if outputs else function_type.inputs)
    attributes = "res_attrs" if outputs else "arg_attrs"
    if attributes not in function.attributes:
        return [f"{kind} {index}" for index in range(count)]
    per_value = [ir.DictAttr(a) for a in ir.ArrayAttr(function.attributes[attributes])]
    return [ir.StringAttr(a["tfl.name"]).value if "tfl.name" in a else f"{kind} {index}"
            for index, a in enumerate(per_value)]


def signature_functions(module_op: ir.Operation) -> list[ir.Operation]:
    """The functions a user calls: those with a signature, else the first (subgraph 0)."""
    functions = module_funcs(module_op)
    signed = [f for f in functions if SIGNATURE_KEY in f.attributes]
    return signed or functions[:1]
