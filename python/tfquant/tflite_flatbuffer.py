"""TFLite flatbuffer <-> MLIR module of generic `tfl.*` ops.

`import_flatbuffer(model, ctx)` reads a `.tflite` model; `export_flatbuffer(module)` writes one back;
`export_flatbuffer_with_tensors(module)` also says which tensor each `tfq.calibration_point` watches.
The module looks like this (the TFLite passes read and write exactly this):

    module attributes {tfl.schema_version = 3 : i32, tfl.description = "MLIR Converted.",
                       tfl.metadata = {min_runtime_version = dense<[...]> : tensor<16xui8>, ...}} {
      func.func @main(%arg0: tensor<?x28x28x1xf32> {tfl.name = "serving_default_image:0"})
          -> (tensor<?x10xf32> {tfl.name = "StatefulPartitionedCall:0"})
          attributes {tfl.signature_key = "serving_default", tfl.signature_inputs = ["image"],
                      tfl.signature_outputs = ["output_0"]} {
        %0 = "tfl.pseudo_const"() {value = dense<...> : tensor<16x3x3x1xf32>} : () -> tensor<16x3x3x1xf32>
               loc("sequential/conv2d/Conv2D")
        %1 = "tfl.conv_2d"(%arg0, %0, %2) {tfl.options = "Conv2DOptions", padding = 1 : i32, strideW = 1 : i32,
               ..., tfl.version = 1 : i32} : (...) -> tensor<?x26x26x16xf32> loc("sequential/conv2d/Relu")
        "func.return"(%1) : (tensor<?x26x26x16xf32>) -> ()
      }
    }

* Subgraphs: one `func.func` per subgraph, in subgraph order (WHILE/IF/CALL_ONCE options hold
  subgraph indices). Its name is the subgraph's name when that is non-empty and unique, else
  `subgraph_<i>`. Arguments are the subgraph inputs, results its outputs, each with `tfl.name`
  (the tensor name). A subgraph with a signature has `tfl.signature_key` and
  `tfl.signature_inputs` / `tfl.signature_outputs`: the signature's names in argument/result order.
* Operators: `tfl.<builtin name lowercased>` (`CONV_2D` -> `tfl.conv_2d`), operands its inputs in
  order; a missing optional input (-1) is `"tfl.no_value"() {value} : () -> none`, one per use.
  The builtin options become attributes named as the object API's fields (camelCase): int -> i32
  (i64 when it does not fit), float -> f32, bool -> BoolAttr, string -> StringAttr, int vector ->
  `array<i32: ...>` (i64 when it does not fit), float vector -> `array<f32: ...>`, bool vector ->
  `array<i1: ...>`; `tfl.options = "Conv2DOptions"` names the options table (`tfl.options2` for
  the second options union). `tfl.version` is the opcode version. Custom ops are `tfl.custom`
  with `custom_code`, `custom_options` (dense ui8) and `customOptionsFormat`. `options_of` and
  `set_option` read and write the option attributes as Python values.
* Values: result i of an op is its output tensor i. The op's location is `loc("<output 0's name>")`;
  an op with several outputs also has `tfl.result_names` (every output's name). Intermediate
  tensors (LSTM) are `tfl.intermediates = [{name = "...", type = tensor<...>}]`, the operator's
  `mutatingVariableInputs` `tfl.mutating_variable_inputs = array<i1: ...>`.
* Types: `tensor<d0x...xELT>` from `shapeSignature` (-1 -> `?`) or `shape`; a scalar is
  `tensor<ELT>`, an unranked tensor `tensor<*xELT>`. FLOAT32 f32, FLOAT16 f16, FLOAT64 f64,
  BFLOAT16 bf16, INT8 i8, UINT8 ui8, INT16 i16, UINT16 ui16, INT32 i32, UINT32 ui32, INT64 i64,
  UINT64 ui64, BOOL i1, INT4 i4, UINT4 ui4, INT2 i2, COMPLEX64 complex<f32>, COMPLEX128 complex<f64>,
  STRING !tf_type.string, RESOURCE !tf_type.resource, VARIANT !tf_type.variant, FLOAT8 f8E4M3FN/f8E5M2.
  A quantized tensor (non-empty scale) has a `!quant.uniform` element type (passes/_quant.py):
  `!quant.uniform<i8:f32, 0.5:-3>`, per axis when it has several scales or a non-zero
  quantized dimension. As MLIR's TFLite importer does, 8-bit constants get the narrow storage
  range (`i8<-127:127>`, `u8<1:255>`): TFLite's weights are narrow, and TFLite stores no range.
  Quantization min/max are dropped.
* Constants: a tensor no operator produces that has data is
  `"tfl.pseudo_const"() {value = dense<...>}`, quantized
  `"tfl.pseudo_qconst"() {qtype = tensor<..x!quant.uniform<..>>, value = dense<..> : tensor<..xi8>}`
  with the quantized result type; the element type of `value` is the tensor's storage type. One op
  per tensor, placed before its first use. ⚠ MLIR's quant types stop at 32-bit storage, so a 64-bit
  quantized constant (the 16x8 mode's biases) has an i32 `qtype` (`!quant.uniform<i32:f32, ...>`,
  its scales and zero points) and an i64 `value`, as passes/_tfl.py says. A variable tensor
  (`isVariable`, LSTM state) is a zero constant with `tfl.is_variable` and exports without data.
  Numeric, bf16 and packed int4/uint4/int2 constants are supported; string, complex and float8
  constants are refused.
* Module: `tfl.schema_version`, `tfl.description`, `tfl.metadata` (name -> the buffer's bytes).

Export reverses all of it: each function becomes the subgraph named as it is, each constant op
one buffer (buffer 0 stays the empty sentinel), opcodes are deduplicated on (builtin code, custom
code, version), a signature lists its names sorted (as TensorFlow's converter does), a result's
`tfl.name` names its tensor, and a `tfq.calibration_point` is dropped, its result standing for
its input's tensor. `quant.qcast` / `quant.dcast` and non-tfl ops are refused with a CompileError.
Buffers outside the flatbuffer (models over 2 GB) are read; writing over 2 GB is refused.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from tfquant.mlir import CompileError, func, ir, module_funcs, name_of, parse_type_cached
from tfquant.passes._points import CALIBRATION_POINT
from tfquant.passes._quant import QuantParams, parse_uniform, uniform_type_text
from tfquant.passes._tfl import (CONST, NO_VALUE, QCONST, SIGNATURE_INPUTS, SIGNATURE_KEY, SIGNATURE_OUTPUTS,
                                 VERSION)

__all__ = ["import_flatbuffer", "export_flatbuffer", "export_flatbuffer_with_tensors", "options_of", "set_option"]

SCHEMA_VERSION = "tfl.schema_version"
DESCRIPTION = "tfl.description"
METADATA = "tfl.metadata"
NAME = "tfl.name"
OPTIONS = "tfl.options"
OPTIONS2 = "tfl.options2"
RESULT_NAMES = "tfl.result_names"
INTERMEDIATES = "tfl.intermediates"
MUTATING_VARIABLE_INPUTS = "tfl.mutating_variable_inputs"
IS_VARIABLE = "tfl.is_variable"
CUSTOM_CODE = "custom_code"
CUSTOM_OPTIONS = "custom_options"
CUSTOM_OPTIONS_FORMAT = "customOptionsFormat"

_FILE_IDENTIFIER = b"TFL3"
_FLATBUFFER_LIMIT = 2 ** 31 - 2 ** 24  # a flatbuffer holds < 2 GB; keep room for everything but the weights
_UNION_OF = {OPTIONS: schema.BuiltinOptions, OPTIONS2: schema.BuiltinOptions2}
_RESERVED = frozenset({CUSTOM_CODE, CUSTOM_OPTIONS, CUSTOM_OPTIONS_FORMAT})  # bare, but not option fields

_T = schema.TensorType
_ELEMENT_TYPES = {
    _T.FLOAT32: "f32", _T.FLOAT16: "f16", _T.FLOAT64: "f64", _T.BFLOAT16: "bf16",
    _T.INT8: "i8", _T.UINT8: "ui8", _T.INT16: "i16", _T.UINT16: "ui16", _T.INT32: "i32", _T.UINT32: "ui32",
    _T.INT64: "i64", _T.UINT64: "ui64", _T.BOOL: "i1", _T.INT4: "i4", _T.UINT4: "ui4", _T.INT2: "i2",
    _T.COMPLEX64: "complex<f32>", _T.COMPLEX128: "complex<f64>", _T.STRING: "!tf_type.string",
    _T.RESOURCE: "!tf_type.resource", _T.VARIANT: "!tf_type.variant",
    _T.FLOAT8_E4M3FN: "f8E4M3FN", _T.FLOAT8_E5M2: "f8E5M2",
}
_TYPE_CODES = {text: code for code, text in _ELEMENT_TYPES.items()}
# Constant element types numpy holds as they are stored.
_NUMPY_TYPES = {
    "f32": np.float32, "f16": np.float16, "f64": np.float64, "i8": np.int8, "ui8": np.uint8, "i16": np.int16,
    "ui16": np.uint16, "i32": np.int32, "ui32": np.uint32, "i64": np.int64, "ui64": np.uint64, "i1": np.bool_,
}
# Integers TFLite packs several to a byte, lowest bits first; MLIR holds one per byte.
_PACKED_BITS = {"i4": 4, "ui4": 4, "i2": 2}
_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_INTEGER_ELEMENT = re.compile(r"(u?)i(\d+)$")


# --- the option attributes, for the passes ----------------------------------------------------------


def options_of(op: ir.Operation) -> dict[str, object]:
    """The op's builtin option fields (both unions) as Python values: int, float, bool, str or list."""
    return {name: _python_value(attr) for name, attr in op.attributes.items()
            if _is_option_name(name) and name not in _RESERVED}


def set_option(op: ir.Operation, name: str, value: object) -> None:
    """Set option field `name` of the op's `tfl.options` / `tfl.options2` table (None removes it).

    Raises ValueError when neither table has that field, so a misspelling fails here, not at export.
    """
    tables = [ir.StringAttr(op.attributes[key]).value for key in (OPTIONS, OPTIONS2) if key in op.attributes]
    if not any(name in vars(getattr(schema, table + "T")()) for table in tables):
        raise ValueError(f"'{op.name}' has no option field {name!r} (its options: {tables or 'none'})")
    if value is None:
        if name in op.attributes:
            del op.attributes[name]
    else:
        with op.context:
            op.attributes[name] = _attribute(value)


def _is_option_name(name: str) -> bool:
    """Option fields are bare camelCase names; every other attribute has a dialect prefix."""
    return "." not in name


def _attribute(value: object) -> ir.Attribute:
    """An option value (what the object API unpacks) as an attribute."""
    if isinstance(value, (bool, np.bool_)):
        return ir.BoolAttr.get(bool(value))
    if isinstance(value, (int, np.integer)):
        return _int_attr(int(value))
    if isinstance(value, (float, np.floating)):
        return ir.FloatAttr.get_f32(float(value))
    if isinstance(value, (bytes, str)):
        return ir.StringAttr.get(value.decode() if isinstance(value, bytes) else value)
    array = np.asarray(value)
    if array.dtype == np.bool_:
        return ir.DenseBoolArrayAttr.get(array.tolist())
    if array.dtype.kind == "f" and array.size:
        return ir.DenseF32ArrayAttr.get(array.tolist())
    ints = array.astype(np.int64).tolist()  # an empty vector unpacks as float64: call it ints
    return (ir.DenseI32ArrayAttr if all(_fits_i32(v) for v in ints) else ir.DenseI64ArrayAttr).get(ints)


def _int_attr(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(32 if _fits_i32(value) else 64), value)


def _fits_i32(value: int) -> bool:
    return -2 ** 31 <= value < 2 ** 31


def _python_value(attr: ir.Attribute) -> object:
    """An option attribute's Python value (the inverse of `_attribute`)."""
    if isinstance(attr, (ir.BoolAttr, ir.IntegerAttr, ir.FloatAttr, ir.StringAttr)):
        return attr.value
    if isinstance(attr, (ir.DenseI32ArrayAttr, ir.DenseI64ArrayAttr, ir.DenseF32ArrayAttr, ir.DenseBoolArrayAttr)):
        return list(attr)
    raise ValueError(f"not an option attribute: {attr}")


# --- import ----------------------------------------------------------------------------------------


def import_flatbuffer(model: bytes, ctx: ir.Context) -> ir.Module:
    """The TFLite model `model` as a module of `tfl.*` ops in `ctx` (see the module docstring).

    Raises ValueError for bytes that are not a TFLite flatbuffer, CompileError (at the tensor or
    op) for a feature this importer does not keep (sparse tensors, external weight files, ...).
    """
    flat = _read_model(model)
    with ctx, ir.Location.unknown():
        module = ir.Module.create()
        _set_module_attributes(module.operation, flat)
        signatures = _signatures_by_subgraph(flat)
        for index, (subgraph, name) in enumerate(zip(flat.subgraphs, _function_names(flat.subgraphs))):
            with ir.InsertionPoint(module.body):
                _SubgraphImporter(flat, subgraph, ctx).build(name, signatures.get(index))
    return module


def _read_model(model: bytes) -> schema.ModelT:
    if len(model) < 8 or bytes(model[4:8]) != _FILE_IDENTIFIER:
        raise ValueError(f"not a TFLite flatbuffer: the file identifier (bytes 4-8) is {bytes(model[4:8])!r}, "
                         f"not {_FILE_IDENTIFIER!r}")
    try:
        # Also reads buffers and custom options stored after the flatbuffer (models over 2 GB).
        return flatbuffer_utils.read_model_from_bytearray(model)
    except Exception as error:  # a corrupt offset surfaces as whatever the reader tripped on
        raise ValueError(f"corrupt TFLite flatbuffer: {type(error).__name__}: {error}") from error


def _set_module_attributes(module_op: ir.Operation, flat: schema.ModelT) -> None:
    module_op.attributes[SCHEMA_VERSION] = _int_attr(flat.version)
    if flat.description is not None:
        module_op.attributes[DESCRIPTION] = ir.StringAttr.get(flat.description.decode())
    if flat.metadata:
        module_op.attributes[METADATA] = ir.DictAttr.get({
            entry.name.decode(): _bytes_attr(flat.buffers[entry.buffer].data) for entry in flat.metadata})


def _bytes_attr(data: np.ndarray | bytes | None) -> ir.DenseElementsAttr:
    return ir.DenseElementsAttr.get(np.frombuffer(data if data is not None else b"", np.uint8), signless=False)


def _signatures_by_subgraph(flat: schema.ModelT) -> dict[int, schema.SignatureDefT]:
    signatures: dict[int, schema.SignatureDefT] = {}
    for signature in flat.signatureDefs or []:
        if signature.subgraphIndex in signatures:
            raise ValueError(f"subgraph {signature.subgraphIndex} has two signatures "
                             f"({signatures[signature.subgraphIndex].signatureKey.decode()!r} and "
                             f"{signature.signatureKey.decode()!r}); tfquant keeps one per subgraph")
        signatures[signature.subgraphIndex] = signature
    return signatures


def _function_names(subgraphs: Sequence[schema.SubGraphT]) -> list[str]:
    """The subgraphs' names where non-empty and unique, else `subgraph_<i>`."""
    names: list[str] = []
    for index, subgraph in enumerate(subgraphs):
        name = subgraph.name.decode() if subgraph.name else ""
        if not name or name in names:
            name = f"subgraph_{index}"
            while name in names:
                name += "_"
        names.append(name)
    return names


def _signature_names(maps: Sequence[schema.TensorMapT], tensor_indices: Sequence[int], what: str) -> list[str]:
    """The signature's name for each of `tensor_indices` (a subgraph's inputs or outputs), in order."""
    names: dict[int, list[str]] = {}
    for entry in maps or []:
        names.setdefault(int(entry.tensorIndex), []).append(entry.name.decode())
    ordered = [names[index].pop(0) if names.get(index) else None for index in tensor_indices]
    if None in ordered or any(names.values()):
        raise ValueError(f"the signature's {what} are not exactly the subgraph's {what}; tfquant cannot keep it")
    return ordered


class _SubgraphImporter:
    """Builds one func.func from one subgraph: operators in order, each constant before its first use."""

    def __init__(self, flat: schema.ModelT, subgraph: schema.SubGraphT, ctx: ir.Context):
        self.flat = flat
        self.subgraph = subgraph
        self.ctx = ctx
        self.tensors: list[schema.TensorT] = subgraph.tensors or []
        self.produced = {int(i) for op in subgraph.operators or [] for i in op.outputs}
        self.intermediates = {int(i) for op in subgraph.operators or [] for i in op.intermediates or []}
        self.inputs = [int(i) for i in subgraph.inputs or []]
        self.outputs = [int(i) for i in subgraph.outputs or []]
        self.values: dict[int, ir.Value] = {}

    def build(self, name: str, signature: schema.SignatureDefT | None) -> None:
        arg_types = [self._type(i) for i in self.inputs]
        result_types = [self._type(i) for i in self.outputs]
        function = func.FuncOp(name, (arg_types, result_types))
        function.arg_attrs = ir.ArrayAttr.get([self._name_dict(i) for i in self.inputs])
        function.res_attrs = ir.ArrayAttr.get([self._name_dict(i) for i in self.outputs])
        if signature is not None:
            function.attributes[SIGNATURE_KEY] = ir.StringAttr.get(signature.signatureKey.decode())
            function.attributes[SIGNATURE_INPUTS] = _strings(_signature_names(signature.inputs, self.inputs, "inputs"))
            function.attributes[SIGNATURE_OUTPUTS] = _strings(
                _signature_names(signature.outputs, self.outputs, "outputs"))
        block = function.add_entry_block()
        self.values.update({index: arg for index, arg in zip(self.inputs, block.arguments)})
        with ir.InsertionPoint(block):
            for operator in self.subgraph.operators or []:
                self._operator(operator)
            func.ReturnOp([self._value(i) for i in self.outputs])

    def _name(self, index: int) -> str:
        name = self.tensors[index].name
        return name.decode() if name else ""

    def _name_dict(self, index: int) -> ir.DictAttr:
        return ir.DictAttr.get({NAME: ir.StringAttr.get(self._name(index))})

    def _loc(self, index: int) -> ir.Location:
        return ir.Location.name(self._name(index))

    def _is_constant(self, index: int) -> bool:
        return index not in self.produced and index not in self.inputs and index not in self.intermediates

    def _params(self, index: int) -> QuantParams | None:
        """The tensor's quantization, or None; 8-bit constants narrow (see the module docstring)."""
        tensor = self.tensors[index]
        quantization = tensor.quantization
        if quantization is None or quantization.scale is None or not len(quantization.scale):
            return None
        if quantization.details is not None:
            raise CompileError(f"tensor {self._name(index)!r} has custom quantization details; tfquant cannot keep "
                               "them", self._loc(index))
        storage = _INTEGER_ELEMENT.match(_ELEMENT_TYPES[tensor.type])
        if storage is None:
            raise CompileError(f"tensor {self._name(index)!r} of type {flatbuffer_utils.type_to_name(tensor.type)} "
                               "has quantization scales; only integer tensors can be quantized", self._loc(index))
        signed, bits = not storage.group(1), int(storage.group(2))
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        if bits == 8 and self._is_constant(index):
            low += 1
        scales = tuple(float(s) for s in quantization.scale)
        zero_points = [int(z) for z in quantization.zeroPoint] if quantization.zeroPoint is not None else [0]
        if len(zero_points) == 1:
            zero_points *= len(scales)
        axis = int(quantization.quantizedDimension)
        per_axis = len(scales) > 1 or axis != 0
        return QuantParams(scales, tuple(zero_points), axis if per_axis else None, low, high, bits, signed)

    def _element_type(self, index: int, params: QuantParams | None) -> ir.Type:
        """The tensor's element type; its `!quant.uniform` one when quantized (64-bit: an i32 one)."""
        if params is None:
            return parse_type_cached(_ELEMENT_TYPES[self.tensors[index].type], self.ctx)
        if params.storage_bits > 32:
            if not self._is_constant(index):
                raise CompileError(f"tensor {self._name(index)!r} is quantized with {params.storage_bits}-bit "
                                   "storage: MLIR's quant types stop at 32 bits (only such constants are supported)",
                                   self._loc(index))
            params = replace(params, storage_bits=32, storage_min=-2 ** 31, storage_max=2 ** 31 - 1)
        return parse_type_cached(uniform_type_text(params), self.ctx)

    def _dims(self, index: int) -> list[int] | None:
        """The tensor's dimensions (-1 dynamic), [] for a scalar, None when unranked."""
        tensor = self.tensors[index]
        if tensor.shapeSignature is not None and len(tensor.shapeSignature):
            return [int(d) for d in tensor.shapeSignature]
        if tensor.shape is not None and len(tensor.shape):
            return [int(d) for d in tensor.shape]
        # An empty shape is a scalar when the tensor says it has a rank; older models leave hasRank
        # unset, and their constants with empty shapes are scalars.
        return [] if tensor.hasRank or self._is_constant(index) else None

    def _type(self, index: int) -> ir.Type:
        self._check_supported(index)
        element = self._element_type(index, self._params(index))
        dims = self._dims(index)
        if dims is None:
            return ir.UnrankedTensorType.get(element)
        return ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size() if d < 0 else d for d in dims], element)

    def _check_supported(self, index: int) -> None:
        tensor = self.tensors[index]
        unsupported = ("of an unknown type" if tensor.type not in _ELEMENT_TYPES else
                       "sparse" if tensor.sparsity is not None else
                       "stored in an external weight file" if tensor.externalBuffer else
                       "a variant with subtypes" if tensor.variantTensors else None)
        if unsupported:
            raise CompileError(f"tensor {self._name(index)!r} is {unsupported}; tfquant does not support that",
                               self._loc(index))

    def _value(self, index: int) -> ir.Value:
        """The value of tensor `index`; a constant is created (at the insertion point) on first use."""
        if index not in self.values:
            if not self._is_constant(index):
                raise ValueError(f"tensor {self._name(index)!r} is used before the operator that produces it")
            self.values[index] = self._constant(index)
        return self.values[index]

    def _constant(self, index: int) -> ir.Value:
        tensor = self.tensors[index]
        value_type = self._type(index)
        params = self._params(index)
        # The data's type: the value's, or the storage integers of a `!quant.uniform` value.
        storage_type = ir.RankedTensorType.get(ir.RankedTensorType(value_type).shape,
                                               parse_type_cached(_ELEMENT_TYPES[tensor.type], self.ctx))
        attributes: dict[str, ir.Attribute] = {}
        if tensor.isVariable:
            if not storage_type.has_static_shape:
                raise CompileError(f"variable tensor {self._name(index)!r} has a dynamic shape", self._loc(index))
            attributes[IS_VARIABLE] = ir.UnitAttr.get()
            attributes["value"] = ir.DenseElementsAttr.get_splat(
                storage_type, _zero_attr(ir.ShapedType(storage_type).element_type))
        else:
            attributes["value"] = self._dense(index, storage_type)
        if params is not None:
            attributes["qtype"] = ir.TypeAttr.get(value_type)
        return ir.Operation.create(CONST if params is None else QCONST, results=[value_type], attributes=attributes,
                                   loc=self._loc(index)).result

    def _dense(self, index: int, storage_type: ir.RankedTensorType) -> ir.DenseElementsAttr:
        """The tensor's buffer as a dense attribute of `storage_type` (built from numpy: no per-element work)."""
        data = self.flat.buffers[self.tensors[index].buffer].data
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        element = str(storage_type.element_type)
        shape = list(storage_type.shape)
        count = int(np.prod(shape, dtype=np.int64))
        try:
            if element in _NUMPY_TYPES:
                dtype = np.dtype(_NUMPY_TYPES[element])
                # Unaligned data (possible in a hand-made file) cannot go to MLIR as it is: copy it.
                array = np.require(raw.view(dtype), requirements="AC").reshape(shape)
                return ir.DenseElementsAttr.get(array, signless=dtype.kind != "u")
            if element in _PACKED_BITS:
                array = _unpack_bits(raw, _PACKED_BITS[element], element.startswith("i"), count)
                return ir.DenseElementsAttr.get(array.reshape(shape), type=storage_type.element_type, shape=shape)
            if element == "bf16":
                array = np.require(raw.view(np.uint16), requirements="AC").reshape(shape)
                return ir.DenseElementsAttr.get(array, type=storage_type.element_type, shape=shape)
        except ValueError as error:  # a view or reshape of a buffer of the wrong size
            raise CompileError(f"constant {self._name(index)!r} has {raw.size} bytes of data, which does not fit "
                               f"{storage_type}: {error}", self._loc(index)) from error
        raise CompileError(f"constant {self._name(index)!r} of type {element} is not supported (tfquant reads "
                           "numeric, bf16 and packed int4/int2 constants)", self._loc(index))

    def _operator(self, operator: schema.OperatorT) -> None:
        code = self.flat.operatorCodes[operator.opcodeIndex]
        builtin = flatbuffer_utils.get_builtin_code_from_operator_code(code)
        outputs = [int(i) for i in operator.outputs]
        loc = self._loc(outputs[0]) if outputs else ir.Location.unknown()
        if builtin not in _BUILTIN_NAMES:
            raise CompileError(f"builtin operator code {builtin} is newer than tfquant's TFLite schema", loc)
        name = "tfl." + _BUILTIN_NAMES[builtin].lower()
        if -1 in outputs:
            raise CompileError(f"'{name}' has an omitted output; tfquant cannot keep it", loc)
        attributes = {VERSION: _int_attr(code.version)}
        for key, options in ((OPTIONS, operator.builtinOptions), (OPTIONS2, operator.builtinOptions2)):
            if options is not None:
                attributes[key] = ir.StringAttr.get(type(options).__name__.removesuffix("T"))
                attributes.update({field: _attribute(value) for field, value in vars(options).items()
                                   if value is not None})
        if builtin == schema.BuiltinOperator.CUSTOM:
            attributes[CUSTOM_CODE] = ir.StringAttr.get((code.customCode or b"").decode())
        if builtin == schema.BuiltinOperator.CUSTOM or operator.customOptionsFormat:
            attributes[CUSTOM_OPTIONS_FORMAT] = _int_attr(operator.customOptionsFormat)
        if operator.customOptions is not None:
            attributes[CUSTOM_OPTIONS] = _bytes_attr(operator.customOptions)
        if operator.intermediates is not None and len(operator.intermediates):
            attributes[INTERMEDIATES] = ir.ArrayAttr.get([
                ir.DictAttr.get({"name": ir.StringAttr.get(self._name(int(i))),
                                 "type": ir.TypeAttr.get(self._type(int(i)))})
                for i in operator.intermediates])
        if operator.mutatingVariableInputs is not None and len(operator.mutatingVariableInputs):
            attributes[MUTATING_VARIABLE_INPUTS] = ir.DenseBoolArrayAttr.get(
                [bool(m) for m in operator.mutatingVariableInputs])
        if len(outputs) > 1:
            attributes[RESULT_NAMES] = _strings([self._name(i) for i in outputs])
        operands = [self._value(int(i)) if i >= 0 else _no_value(loc) for i in operator.inputs]
        created = ir.Operation.create(name, results=[self._type(i) for i in outputs], operands=operands,
                                      attributes=attributes, loc=loc)
        self.values.update(zip(outputs, created.results))


def _no_value(loc: ir.Location) -> ir.Value:
    return ir.Operation.create(NO_VALUE, results=[ir.NoneType.get()], attributes={"value": ir.UnitAttr.get()},
                               loc=loc).result


def _zero_attr(element: ir.Type) -> ir.Attribute:
    if isinstance(element, ir.FloatType):
        return ir.FloatAttr.get(element, 0.0)
    return ir.IntegerAttr.get(element, 0)


def _strings(values: Sequence[str]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.StringAttr.get(v) for v in values])


def _unpack_bits(raw: np.ndarray, bits: int, signed: bool, count: int) -> np.ndarray:
    """`count` `bits`-wide integers packed low bits first into `raw`, one per byte (sign-extended)."""
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    values = ((raw[:, None] >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].astype(np.uint8)
    if len(values) != count:
        raise ValueError(f"{len(raw)} bytes hold fewer than {count} {bits}-bit values")
    if not signed:
        return values
    return np.where(values >= 1 << (bits - 1), values.astype(np.int16) - (1 << bits), values).astype(np.int8)


def _pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """`values` (one per byte) packed `8 // bits` to a byte, low bits first (the inverse of `_unpack_bits`)."""
    per_byte = 8 // bits
    padded = np.zeros(-(-len(values) // per_byte) * per_byte, np.uint8)
    padded[:len(values)] = values.astype(np.uint8) & ((1 << bits) - 1)
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    return np.bitwise_or.reduce(padded.reshape(-1, per_byte) << shifts, axis=1).astype(np.uint8)


# --- export ----------------------------------------------------------------------------------------


def export_flatbuffer(module: ir.Module) -> bytes:
    """The module (see the module docstring) as a TFLite flatbuffer; calibration points are dropped."""
    return export_flatbuffer_with_tensors(module)[0]


def export_flatbuffer_with_tensors(module: ir.Module, points_as_outputs: bool = False
                                   ) -> tuple[bytes, dict[int, tuple[int, int]]]:
    """The flatbuffer, and for each `tfq.calibration_point` id the (subgraph index, tensor index) of
    the tensor it watches (its input's: the point itself is dropped).

    With `points_as_outputs`, each watched tensor of a subgraph with a signature is also an output
    of that subgraph: LiteRT then keeps its value after a run and still hands the graph to its fast
    delegate, where `experimental_preserve_all_tensors` turns the delegate off (EfficientNet-B0
    calibrates 40x slower with it). Tensors in other subgraphs (control-flow bodies, whose outputs
    are fixed by their callers) are not.
    """
    exporter = _ModelExporter()
    flat = exporter.export(module.operation)
    if points_as_outputs:
        signed = {signature.subgraphIndex for signature in flat.signatureDefs or []}
        for subgraph, tensor in exporter.points.values():
            outputs = flat.subgraphs[subgraph].outputs
            if subgraph in signed and tensor not in list(outputs):
                flat.subgraphs[subgraph].outputs = np.append(outputs, np.int32(tensor)).astype(np.int32)
    total = sum(len(b.data) for b in flat.buffers if b.data is not None)
    if total > _FLATBUFFER_LIMIT:
        raise ValueError(f"the model holds {total / 2 ** 30:.2f} GB of constants; tfquant writes TFLite "
                         "flatbuffers up to 2 GB only")
    # flatbuffer_utils.convert_object_to_bytearray, with the builder sized for the weights up front:
    # growing from 1 kB copied the whole buffer 17 times (0.2 s of 0.45 s for ResNet50).
    builder = flatbuffers.Builder(min(total + 2 ** 20, flatbuffers.Builder.MAX_BUFFER_SIZE))
    builder.Finish(flat.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(memoryview(builder.Bytes)[builder.Head():]), exporter.points


class _ModelExporter:
    """Model-wide state of an export: buffers, deduplicated opcodes, calibration point tensors."""

    def __init__(self):
        self.buffers: list[schema.BufferT] = [schema.BufferT()]
        self.opcodes: dict[tuple[int, str | None, int], int] = {}
        self.points: dict[int, tuple[int, int]] = {}

    def export(self, module_op: ir.Operation) -> schema.ModelT:
        flat = schema.ModelT()
        attributes = module_op.attributes
        flat.version = ir.IntegerAttr(attributes[SCHEMA_VERSION]).value if SCHEMA_VERSION in attributes else 3
        if DESCRIPTION in attributes:
            flat.description = ir.StringAttr(attributes[DESCRIPTION]).value
        functions = module_funcs(module_op)
        flat.subgraphs = [_SubgraphExporter(self, index).export(function) for index, function in enumerate(functions)]
        flat.signatureDefs = [_signature_def(index, function, subgraph)
                              for index, (function, subgraph) in enumerate(zip(functions, flat.subgraphs))
                              if SIGNATURE_KEY in function.attributes]
        if METADATA in attributes:
            flat.metadata = []
            for named in ir.DictAttr(attributes[METADATA]):
                entry = schema.MetadataT()
                entry.name = named.name
                entry.buffer = self.add_buffer(_attribute_bytes(named.attr))
                flat.metadata.append(entry)
        flat.buffers = self.buffers
        flat.operatorCodes = [_opcode(*key) for key in self.opcodes]
        return flat

    def add_buffer(self, data: np.ndarray) -> int:
        buffer = schema.BufferT()
        buffer.data = data
        self.buffers.append(buffer)
        return len(self.buffers) - 1

    def opcode_index(self, builtin: int, custom_code: str | None, version: int) -> int:
        return self.opcodes.setdefault((builtin, custom_code, version), len(self.opcodes))


def _opcode(builtin: int, custom_code: str | None, version: int) -> schema.OperatorCodeT:
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    # Codes past 127 live only in builtinCode; the old byte field says "look there".
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.customCode = custom_code
    code.version = version
    return code


def _signature_def(index: int, function: ir.Operation, subgraph: schema.SubGraphT) -> schema.SignatureDefT:
    signature = schema.SignatureDefT()
    signature.signatureKey = ir.StringAttr(function.attributes[SIGNATURE_KEY]).value
    signature.subgraphIndex = index
    signature.inputs = _tensor_maps(function, SIGNATURE_INPUTS, subgraph.inputs)
    signature.outputs = _tensor_maps(function, SIGNATURE_OUTPUTS, subgraph.outputs)
    return signature


def _tensor_maps(function: ir.Operation, key: str, tensor_indices: Sequence[int]) -> list[schema.TensorMapT]:
    """The signature's name -> tensor entries, sorted by name as TensorFlow's converter writes them."""
    names = [ir.StringAttr(n).value for n in ir.ArrayAttr(function.attributes[key])]
    if len(names) != len(tensor_indices):
        raise CompileError(f"{key} of @{ir.StringAttr(function.attributes['sym_name']).value} has {len(names)} "
                           f"names for {len(tensor_indices)} tensors", function.location)
    maps = []
    for name, index in sorted(zip(names, tensor_indices)):
        entry = schema.TensorMapT()
        entry.name = name
        entry.tensorIndex = index
        maps.append(entry)
    return maps


def _attribute_bytes(attr: ir.Attribute) -> np.ndarray:
    """A numeric dense attribute's data as uint8 (a view where MLIR's storage allows)."""
    array = np.ascontiguousarray(np.asarray(attr))  # a splat reads as a stride-0 view: materialize it
    return array.reshape(-1).view(np.uint8)


def _storage_of(attr: ir.DenseElementsAttr, element: str, count: int) -> np.ndarray:
    """The values of a constant the bindings cannot hand to numpy (sub-byte ints, bf16): one per
    element, int8/uint8 or bf16 bits as uint16. Read from the printed attribute: hex bytes as MLIR
    stores them past 100 elements, else decimal (bf16 specials printed as hex literals)."""
    text = str(attr)
    body = text[len("dense<"):text.rindex("> : ")]
    if element == "bf16":
        if body.startswith('"0x'):
            values = np.frombuffer(bytes.fromhex(body[3:-1]), np.uint16)
        else:
            values = np.array([int(t, 16) if t.startswith("0x") else _bf16_bits(float(t))
                               for t in re.findall(r"[^\s\[\],]+", body)], np.uint16)
    else:
        dtype = np.dtype(np.int8 if element.startswith("i") else np.uint8)
        if body.startswith('"0x'):
            values = np.frombuffer(bytes.fromhex(body[3:-1]), dtype)
        else:
            values = np.array([int(t) for t in re.findall(r"-?\d+", body)]).astype(dtype)
    return np.broadcast_to(values, (count,)) if len(values) == 1 else values  # a splat prints one value


def _bf16_bits(value: float) -> int:
    """The bf16 nearest `value` (ties to even), as bits."""
    bits = int(np.array(value, np.float32).view(np.uint32))
    return (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16


class _SubgraphExporter:
    """One func.func -> one SubGraphT: a tensor per argument, constant and result."""

    def __init__(self, model: _ModelExporter, index: int):
        self.model = model
        self.index = index
        self.tensors: list[schema.TensorT] = []
        self.indices: dict[ir.Value, int] = {}

    def export(self, function: ir.Operation) -> schema.SubGraphT:
        subgraph = schema.SubGraphT()
        subgraph.name = ir.StringAttr(function.attributes["sym_name"]).value
        block = function.regions[0].blocks[0]
        arg_names = _names_of(function, "arg_attrs", len(block.arguments))
        subgraph.inputs = [self._add_tensor(arg.type, name, function.location)
                           for arg, name in zip(block.arguments, arg_names)]
        self.indices.update(zip(block.arguments, subgraph.inputs))
        subgraph.operators = []
        for op in block.operations:
            op = op.operation
            if op.name == "func.return":
                subgraph.outputs = [self.indices[v] for v in op.operands]
                self._name_outputs(subgraph.outputs, subgraph.inputs,
                                   _names_of(function, "res_attrs", len(subgraph.outputs)))
            elif op.name == CALIBRATION_POINT:
                watched = self.indices[op.operands[0]]
                self.indices[op.results[0]] = watched
                self.model.points[ir.IntegerAttr(op.attributes["id"]).value] = (self.index, watched)
            elif op.name == NO_VALUE:
                self.indices[op.results[0]] = -1
            elif op.name in (CONST, QCONST):
                self._constant(op)
            elif op.name.startswith("tfl."):
                subgraph.operators.append(self._operator(op))
            else:
                hint = (" (tfq-tfl-post-quantize turns them into tfl.quantize / tfl.dequantize)"
                        if op.name.startswith("quant.") else "")
                raise CompileError(f"'{op.name}' cannot be written to a TFLite flatbuffer{hint}", op.location)
        subgraph.tensors = self.tensors
        return subgraph

    def _name_outputs(self, outputs: Sequence[int], inputs: Sequence[int], names: list[str | None]) -> None:
        """An output's `tfl.name` names its tensor (a pass may have put a new op at the end), but an
        input returned as it is keeps the input's name."""
        for index, name in zip(outputs, names):
            if name and index not in inputs:
                self.tensors[index].name = name

    def _add_tensor(self, value_type: ir.Type, name: str | None, loc: ir.Location, buffer: int = 0,
                    storage: str | None = None) -> int:
        """A tensor of `value_type`; `storage` (a constant's data type) overrides a quantized type's
        storage, which MLIR cannot make 64 bits wide."""
        tensor = schema.TensorT()
        tensor.name = name or f"tensor_{len(self.tensors)}"
        tensor.buffer = buffer
        if isinstance(value_type, ir.RankedTensorType):
            dims = list(value_type.shape)
            dynamic = [ir.ShapedType.is_dynamic_size(d) for d in dims]
            tensor.shape = [1 if d else n for n, d in zip(dims, dynamic)]
            if any(dynamic):
                tensor.shapeSignature = [-1 if d else n for n, d in zip(dims, dynamic)]
            tensor.hasRank = True
        elif isinstance(value_type, ir.UnrankedTensorType):
            tensor.shape = []
        else:
            raise CompileError(f"a TFLite tensor must have a tensor type, not {value_type}", loc)
        element = ir.ShapedType(value_type).element_type
        params = parse_uniform(element)
        if params is not None:
            text = storage or f"{'i' if params.signed else 'ui'}{params.storage_bits}"
            quantization = schema.QuantizationParametersT()
            quantization.scale = np.array(params.scales, np.float32)
            quantization.zeroPoint = np.array(params.zero_points, np.int64)
            quantization.quantizedDimension = params.axis or 0
            tensor.quantization = quantization
        else:
            text = re.sub(r"^si(\d)", r"i\1", str(element))
            text = re.sub(r"^(!tf_type\.(?:resource|variant))<.*", r"\1", text)
        if text not in _TYPE_CODES:
            raise CompileError(f"element type {element} has no TFLite tensor type", loc)
        tensor.type = _TYPE_CODES[text]
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def _constant(self, op: ir.Operation) -> None:
        """One tensor and one buffer; a variable tensor has no data (TFLite refuses a variable with a buffer)."""
        result = op.results[0]
        variable = IS_VARIABLE in op.attributes
        buffer = 0 if variable else self.model.add_buffer(_constant_bytes(op))
        storage = str(ir.DenseElementsAttr(op.attributes["value"]).type.element_type)
        index = self._add_tensor(result.type, name_of(op.location), op.location, buffer, storage)
        self.tensors[index].isVariable = variable
        self.indices[result] = index

    def _operator(self, op: ir.Operation) -> schema.OperatorT:
        attributes = op.attributes
        builtin_name = op.name.removeprefix("tfl.").upper()
        builtin = getattr(schema.BuiltinOperator, builtin_name, None)
        if builtin is None:
            raise CompileError(f"'{op.name}' is not a TFLite builtin operator", op.location)
        custom_code = ir.StringAttr(attributes[CUSTOM_CODE]).value if CUSTOM_CODE in attributes else None
        version = ir.IntegerAttr(attributes[VERSION]).value if VERSION in attributes else 1
        operator = schema.OperatorT()
        operator.opcodeIndex = self.model.opcode_index(builtin, custom_code, version)
        operator.inputs = [self.indices[v] for v in op.operands]
        names = _result_names(op)
        operator.outputs = [self._add_tensor(r.type, name, op.location) for r, name in zip(op.results, names)]
        self.indices.update(zip(op.results, operator.outputs))
        _set_options(operator, op)
        if CUSTOM_OPTIONS in attributes:
            operator.customOptions = _attribute_bytes(attributes[CUSTOM_OPTIONS])
        if CUSTOM_OPTIONS_FORMAT in attributes:
            operator.customOptionsFormat = ir.IntegerAttr(attributes[CUSTOM_OPTIONS_FORMAT]).value
        if INTERMEDIATES in attributes:
            operator.intermediates = [
                self._add_tensor(ir.TypeAttr(entry["type"]).value, ir.StringAttr(entry["name"]).value, op.location)
                for entry in map(ir.DictAttr, ir.ArrayAttr(attributes[INTERMEDIATES]))]
        if MUTATING_VARIABLE_INPUTS in attributes:
            operator.mutatingVariableInputs = list(ir.DenseBoolArrayAttr(attributes[MUTATING_VARIABLE_INPUTS]))
        return operator


def _names_of(function: ir.Operation, key: str, count: int) -> list[str | None]:
    """The `tfl.name` of each argument or result of `function` (None where it has none)."""
    if key not in function.attributes:
        return [None] * count
    return [ir.StringAttr(d[NAME]).value if NAME in d else None
            for d in map(ir.DictAttr, ir.ArrayAttr(function.attributes[key]))]


def _result_names(op: ir.Operation) -> list[str]:
    """The names of the op's output tensors: `tfl.result_names`, else its location's name for the
    first and `<name>:<i>` for the others ("" lets the exporter make one up)."""
    if RESULT_NAMES in op.attributes:
        names = [ir.StringAttr(n).value for n in ir.ArrayAttr(op.attributes[RESULT_NAMES])]
        if len(names) == len(op.results):
            return names
    name = name_of(op.location)
    return [name] + [f"{name}:{i}" if name else "" for i in range(1, len(op.results))]


def _set_options(operator: schema.OperatorT, op: ir.Operation) -> None:
    """Rebuild the options tables named by `tfl.options` / `tfl.options2` from the bare attributes."""
    tables: dict[str, tuple[str, object]] = {}  # tfl.options / tfl.options2 -> (table name, OptionsT)
    for key, union in _UNION_OF.items():
        if key in op.attributes:
            table = ir.StringAttr(op.attributes[key]).value
            if not hasattr(union, table):
                raise CompileError(f"'{op.name}' has {key} = {table!r}, which is not a TFLite options table",
                                   op.location)
            tables[key] = table, getattr(schema, table + "T")()
    for name, attr in op.attributes.items():
        if not _is_option_name(name) or name in _RESERVED:
            continue
        target = next((options for _, options in tables.values() if name in vars(options)), None)
        if target is None:
            raise CompileError(f"'{op.name}' has attribute '{name}', which is not a field of its options "
                               f"({', '.join(table for table, _ in tables.values()) or 'none'})", op.location)
        setattr(target, name, _python_value(attr))
    if OPTIONS in tables:
        table, operator.builtinOptions = tables[OPTIONS]
        operator.builtinOptionsType = getattr(schema.BuiltinOptions, table)
    if OPTIONS2 in tables:
        table, operator.builtinOptions2 = tables[OPTIONS2]
        operator.builtinOptions2Type = getattr(schema.BuiltinOptions2, table)


def _constant_bytes(op: ir.Operation) -> np.ndarray:
    """A constant's buffer: its values as TFLite stores them."""
    value = ir.DenseElementsAttr(op.attributes["value"])
    element = str(value.type.element_type)
    count = int(np.prod(value.type.shape, dtype=np.int64))
    if element in _NUMPY_TYPES:
        return _attribute_bytes(value)
    if element in _PACKED_BITS:
        return _pack_bits(_storage_of(value, element, count), _PACKED_BITS[element])
    if element == "bf16":
        return np.ascontiguousarray(_storage_of(value, element, count)).view(np.uint8)
    raise CompileError(f"constant of type {value.type} cannot be written to a TFLite flatbuffer", op.location)
