"""TensorFlow dtypes, shapes and AttrValues <-> MLIR types and attributes.

The importer and the exporter share these so that a round trip is exact: every AttrValue
kind maps to one MLIR attribute kind, and the OpDef's attr type resolves the cases the MLIR
attribute alone leaves open (an empty list, an int that is really a dtype).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, tensor_shape_pb2
from tensorflow.python.framework import tensor_util

from tfquant.mlir import ir

_ELEMENT_TYPES: dict[tf.DType, str] = {
    tf.float32: "f32", tf.float16: "f16", tf.float64: "f64", tf.bfloat16: "bf16",
    tf.int8: "i8", tf.int16: "i16", tf.int32: "i32", tf.int64: "i64",
    tf.uint8: "ui8", tf.uint16: "ui16", tf.uint32: "ui32", tf.uint64: "ui64", tf.bool: "i1",
    tf.string: "!tf_type.string", tf.resource: "!tf_type.resource", tf.variant: "!tf_type.variant",
    tf.qint8: "!tf_type.qint8", tf.quint8: "!tf_type.quint8", tf.qint32: "!tf_type.qint32",
    tf.qint16: "!tf_type.qint16", tf.quint16: "!tf_type.quint16",
    tf.complex64: "complex<f32>", tf.complex128: "complex<f64>",
}
_DTYPES: dict[str, tf.DType] = {text: dtype for dtype, text in _ELEMENT_TYPES.items()}


def element_type(dtype: tf.DType) -> ir.Type:
    """The MLIR element type of a TensorFlow dtype (`tf.float32` -> f32)."""
    dtype = tf.as_dtype(dtype).base_dtype
    if dtype not in _ELEMENT_TYPES:
        raise ValueError(f"dtype {dtype.name} has no MLIR element type in tfquant")
    return ir.Type.parse(_ELEMENT_TYPES[dtype])


def dtype_of(element: ir.Type) -> tf.DType:
    """The TensorFlow dtype of an MLIR element type (f32 -> `tf.float32`)."""
    text = str(element)
    if text not in _DTYPES:
        raise ValueError(f"MLIR type {text} has no TensorFlow dtype")
    return _DTYPES[text]


def tensor_type(dtype: tf.DType, shape: list[int | None] | None) -> ir.Type:
    """`tensor<?x3xf32>` for (float32, [None, 3]); `tensor<*xf32>` when the rank is unknown."""
    element = element_type(dtype)
    if shape is None:
        return ir.UnrankedTensorType.get(element)
    dims = [ir.ShapedType.get_dynamic_size() if d is None or d < 0 else int(d) for d in shape]
    return ir.RankedTensorType.get(dims, element)


def shape_of(value_type: ir.Type) -> list[int | None] | None:
    """The TensorFlow shape of a tensor type: None for unknown rank, None for dynamic dims."""
    if isinstance(value_type, ir.UnrankedTensorType):
        return None
    ranked = ir.RankedTensorType(value_type)
    dynamic = ir.ShapedType.get_dynamic_size()
    return [None if d == dynamic else d for d in ranked.shape]


def tensor_spec(value_type: ir.Type, name: str | None = None) -> tf.TensorSpec:
    """The tf.TensorSpec of a tensor type."""
    return tf.TensorSpec(shape_of(value_type), dtype_of(ir.ShapedType(value_type).element_type), name=name)


def _shape_attr(shape: tensor_shape_pb2.TensorShapeProto) -> ir.Attribute:
    if shape.unknown_rank:
        text = "*"
    else:
        text = "x".join("?" if d.size < 0 else str(d.size) for d in shape.dim)
    return ir.OpaqueAttr.get("tf_type", f"shape<{text}>".encode(), ir.NoneType.get())


def _shape_proto(attr: ir.Attribute) -> tensor_shape_pb2.TensorShapeProto:
    text = ir.OpaqueAttr(attr).data.decode()
    body = text[len("shape<"):-1]
    if body == "*":
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    dims = [] if body == "" else [-1 if d == "?" else int(d) for d in body.split("x")]
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def dense_attr(array: np.ndarray) -> ir.Attribute:
    """A dense elements attribute holding `array` (unsigned ints keep their ui type)."""
    array = np.require(array, requirements="C")
    if array.dtype == object or array.dtype.kind in "SU":
        raise ValueError("string tensors are stored as tensor protos")
    return ir.DenseElementsAttr.get(array, signless=array.dtype.kind != "u")


def _tensor_attr(proto) -> ir.Attribute:
    if proto.dtype in (tf.string.as_datatype_enum, tf.variant.as_datatype_enum, tf.resource.as_datatype_enum):
        return ir.OpaqueAttr.get("tf_type", b"tensor_proto<" + proto.SerializeToString().hex().encode() + b">",
                                 ir.NoneType.get())
    return dense_attr(tensor_util.MakeNdarray(proto))


def _tensor_proto(attr: ir.Attribute):
    if isinstance(attr, ir.OpaqueAttr):
        from tensorflow.core.framework import tensor_pb2
        data = attr.data.decode()
        return tensor_pb2.TensorProto.FromString(bytes.fromhex(data[len("tensor_proto<"):-1]))
    array = np.asarray(attr)
    element = str(ir.ShapedType(attr.type).element_type)
    return tensor_util.make_tensor_proto(array.astype(dtype_of(ir.Type.parse(element)).as_numpy_dtype, copy=False))


def to_mlir_attr(value: attr_value_pb2.AttrValue) -> ir.Attribute | None:
    """The MLIR attribute for one AttrValue; None for kinds a graph node does not carry."""
    kind = value.WhichOneof("value")
    if kind == "list":
        for field in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            items = getattr(value.list, field)
            if len(items):
                return ir.ArrayAttr.get([to_mlir_attr(attr_value_pb2.AttrValue(**{field: v})) for v in items])
        return ir.ArrayAttr.get([])
    if kind == "type":
        return ir.TypeAttr.get(element_type(tf.as_dtype(value.type)))
    if kind == "shape":
        return _shape_attr(value.shape)
    if kind == "tensor":
        return _tensor_attr(value.tensor)
    if kind == "func":
        return ir.FlatSymbolRefAttr.get(value.func.name)
    if kind == "s":
        # Raw bytes: a str holding surrogate escapes cannot make a StringAttr (serialized protos).
        return ir.StringAttr.get(value.s)
    if kind == "i":
        return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value.i)
    if kind == "f":
        return ir.FloatAttr.get(ir.F32Type.get(), value.f)
    if kind == "b":
        return ir.BoolAttr.get(value.b)
    return None


def to_attr_value(attr: ir.Attribute, attr_type: str) -> attr_value_pb2.AttrValue:
    """The AttrValue for an MLIR attribute; `attr_type` is the OpDef's ("list(int)", "type", ...)."""
    if attr_type.startswith("list("):
        element_type_name = attr_type[5:-1]
        items = [to_attr_value(a, element_type_name) for a in ir.ArrayAttr(attr)]
        field = {"string": "s", "int": "i", "float": "f", "bool": "b", "type": "type", "shape": "shape",
                 "tensor": "tensor", "func": "func"}[element_type_name]
        value = attr_value_pb2.AttrValue()
        getattr(value.list, field).extend([getattr(item, field) for item in items])
        return value
    if attr_type == "type":
        return attr_value_pb2.AttrValue(type=dtype_of(ir.TypeAttr(attr).value).as_datatype_enum)
    if attr_type == "shape":
        return attr_value_pb2.AttrValue(shape=_shape_proto(attr))
    if attr_type == "tensor":
        return attr_value_pb2.AttrValue(tensor=_tensor_proto(attr))
    if attr_type == "func":
        return attr_value_pb2.AttrValue(func=attr_value_pb2.NameAttrList(name=ir.FlatSymbolRefAttr(attr).value))
    if attr_type == "string":
        # value_bytes: `.value` fails on bytes that are not UTF-8 (serialized protos).
        return attr_value_pb2.AttrValue(s=ir.StringAttr(attr).value_bytes)
    if attr_type == "int":
        return attr_value_pb2.AttrValue(i=ir.IntegerAttr(attr).value)
    if attr_type == "float":
        return attr_value_pb2.AttrValue(f=ir.FloatAttr(attr).value)
    if attr_type == "bool":
        return attr_value_pb2.AttrValue(b=ir.BoolAttr(attr).value)
    raise ValueError(f"attribute type {attr_type} is not supported")
