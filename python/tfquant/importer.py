"""SavedModel -> MLIR module: one func.func per signature, one generic tf.* op per graph node.

Reads the MetaGraphDef and the variables checkpoint (`tfquant.meta_graph`), never the Python
objects and never a frozen GraphDef. Each variable read becomes a `tf.Const` holding the
variable's value straight from the checkpoint, marked with the variable's name (`tfq.variable`)
so that export can keep it a variable. `If`/`While`/`Case` branches and bodies become private
functions; a variable they read is passed in as its value, its resource argument retyped.
Node names become op locations (without the inlined calls' `StatefulPartitionedCall/`
prefixes). Signature input and output names become argument and result attributes
(`tfq.input_name`, `tfq.output_name`), and each output's declared TensorSpec type
(`tfq.output_type`, with its dynamic dimensions), so that export restores the signature exactly.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, function_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.framework import function_def_to_graph

from tfquant import meta_graph as meta_graph_lib
from tfquant import tf_attrs
from tfquant.mlir import func, ir, new_context
from tfquant.passes._tf_ops import create_const

INPUT_NAME = "tfq.input_name"
OUTPUT_NAME = "tfq.output_name"
OUTPUT_TYPE = "tfq.output_type"
VARIABLE = "tfq.variable"
TAGS = "tfq.saved_model_tags"

# Ops that call functions with their operands; the type-list attribute that lists the operand
# types, and how many leading operands are not passed to the functions (If's condition).
_FUNCTIONAL_OPS = {
    "If": ("Tin", 1), "StatelessIf": ("Tin", 1), "Case": ("Tin", 1), "StatelessCase": ("Tin", 1),
    "While": ("T", 0), "StatelessWhile": ("T", 0),
    "PartitionedCall": ("Tin", 0), "StatefulPartitionedCall": ("Tin", 0),
}
_LOOPS = ("While", "StatelessWhile")
_INLINED_CALL_PREFIX = re.compile(r"^(?:(?:Stateful)?PartitionedCall(?:_\d+)?/)+")


def import_saved_model(path: str, signature_keys: Sequence[str] | None = None,
                       tags: Sequence[str] | None = None, context: ir.Context | None = None) -> ir.Module:
    """Import the signatures of the SavedModel at `path` as an MLIR module.

    `signature_keys` defaults to every signature of the MetaGraph with `tags` (default "serve").
    """
    tags = list(tags) if tags is not None else [tf.saved_model.SERVING]
    saved_model = meta_graph_lib.read_saved_model(path)
    meta_graph = meta_graph_lib.select_meta_graph(saved_model, path, tags)
    signatures = meta_graph_lib.select_signatures(meta_graph, path, signature_keys)
    checkpoint = meta_graph_lib.Checkpoint(path, meta_graph)
    ctx = context or new_context()
    with ctx, ir.Location.unknown():
        module = ir.Module.create()
        module.operation.attributes[TAGS] = ir.ArrayAttr.get([ir.StringAttr.get(t) for t in tags])
        library = _Library(module, checkpoint)
        for key, signature in signatures.items():
            _import_signature(module, library, key, signature, meta_graph)
    return module


def _import_signature(module: ir.Module, library: _Library, key: str, signature: meta_graph_pb2.SignatureDef,
                      meta_graph: meta_graph_pb2.MetaGraphDef) -> None:
    graph_def = meta_graph_lib.signature_graph(meta_graph, signature)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    input_keys = sorted(signature.inputs)
    output_keys = sorted(signature.outputs)
    inputs = [graph.get_tensor_by_name(signature.inputs[k].name) for k in input_keys]
    outputs = [graph.get_tensor_by_name(signature.outputs[k].name) for k in output_keys]
    arg_types = [_info_type(signature.inputs[k]) for k in input_keys]
    with ir.InsertionPoint(module.body):
        fn = func.FuncOp(key, (arg_types, []))
    fn.arg_attrs = ir.ArrayAttr.get([ir.DictAttr.get({INPUT_NAME: ir.StringAttr.get(k)}) for k in input_keys])
    fn.res_attrs = ir.ArrayAttr.get([
        ir.DictAttr.get({OUTPUT_NAME: ir.StringAttr.get(k),
                         OUTPUT_TYPE: ir.TypeAttr.get(_info_type(signature.outputs[k]))})
        for k in output_keys])
    library.functions.update({f.signature.name: f for f in graph_def.library.function})
    _GraphConverter(library, fn, variables=library.checkpoint).convert(graph, inputs, outputs)


def _info_type(info: meta_graph_pb2.TensorInfo) -> ir.Type:
    shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    return tf_attrs.tensor_type(tf.as_dtype(info.dtype), shape)


def _value_type(tensor: tf.Tensor) -> ir.Type:
    shape = tensor.shape.as_list() if tensor.shape.rank is not None else None
    return tf_attrs.tensor_type(tensor.dtype, shape)


class _Library:
    """Private functions imported so far: TensorFlow functions by name, with their argument types.

    A function whose resource arguments are bound to variables of different types at two call
    sites is imported once per binding (`name_1`, ...).
    """

    def __init__(self, module: ir.Module, checkpoint: meta_graph_lib.Checkpoint):
        self.module = module
        self.checkpoint = checkpoint
        self.functions: dict[str, function_pb2.FunctionDef] = {}
        self.imported: dict[tuple[str, bytes, tuple[str, ...]], str] = {}
        self.names: set[str] = set()

    def add(self, name: str, bound: dict[int, ir.Type]) -> str:
        """Import function `name` with argument i typed `bound[i]` (a variable's value); its symbol."""
        fdef = self.functions[name]
        key = (name, fdef.SerializeToString(deterministic=True), tuple(f"{i}:{t}" for i, t in sorted(bound.items())))
        if key in self.imported:
            return self.imported[key]
        symbol = name
        suffix = 0
        while symbol in self.names:
            suffix += 1
            symbol = f"{name}_{suffix}"
        self.names.add(symbol)
        self.imported[key] = symbol
        graph = function_def_to_graph.function_def_to_graph(fdef)
        arg_types = [bound.get(i, _value_type(t)) for i, t in enumerate(graph.inputs)]
        with ir.InsertionPoint(self.module.body):
            fn = func.FuncOp(symbol, (arg_types, []), visibility="private")
        _GraphConverter(self, fn, variables=None).convert(graph, graph.inputs, graph.outputs, bound=set(bound))
        return symbol


class _GraphConverter:
    """Fills one func.func with one generic op per node of a tf.Graph (in topological order).

    Variables: in a signature, a `VarHandleOp` / `VariableV2` node stands for its checkpoint
    value, created as a `tf.Const` where first read; in a function, a bound resource argument
    stands for the value its caller passes. `ReadVariableOp` and `Identity` of either are that
    value, `ResourceGather` a `GatherV2` of it, and a functional op passes the value on.
    """

    def __init__(self, library: _Library, fn: func.FuncOp, variables: meta_graph_lib.Checkpoint | None):
        self.library = library
        self.fn = fn
        self.variables = variables
        self.values: dict[str, ir.Value] = {}
        self.handles: dict[str, meta_graph_lib.Variable] = {}
        self.constants: dict[str, ir.Value] = {}

    def convert(self, graph: tf.Graph, inputs: Sequence[tf.Tensor], outputs: Sequence[tf.Tensor],
                bound: set[int] = frozenset()) -> None:
        block = self.fn.add_entry_block()
        self.values = {t.name: arg for t, arg in zip(inputs, block.arguments)}
        bound_names = {inputs[i].name for i in bound}
        feeds = {t.op.name for t in inputs}
        with ir.InsertionPoint(block):
            for op in graph.get_operations():
                if op.name in feeds or op.type == "NoOp":
                    continue
                self._convert_op(op, bound_names)
            returned = [self._value(t, op_for_error=None) for t in outputs]
            func.ReturnOp(returned)
        arg_types = [a.type for a in block.arguments]
        self.fn.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get(arg_types, [v.type for v in returned]))

    def _convert_op(self, op: tf.Operation, bound_names: set[str]) -> None:
        if op.type == "Placeholder":
            raise ValueError(f"node {op.name!r} is a Placeholder that is not a signature input")
        if op.type in meta_graph_lib.VARIABLE_OPS:
            self._add_variable(op)
            return
        sources = [self._variable_source(t, bound_names) for t in op.inputs]
        if op.type in ("ReadVariableOp", "Identity", "IdentityN") and all(s is not None for s in sources):
            self.values.update({out.name: s for out, s in zip(op.outputs, sources)})
            return
        if op.type == "IdentityN":  # grappler's stand-in for an inlined call's results
            self.values.update({out.name: self._value(t, op) for out, t in zip(op.outputs, op.inputs)})
            return
        if op.type == "ResourceGather" and sources[0] is not None:
            self._resource_gather(op, sources[0])
            return
        if op.type == "VariableShape" and sources[0] is not None:
            shape = np.asarray(ir.RankedTensorType(sources[0].type).shape, op.outputs[0].dtype.as_numpy_dtype)
            self.values[op.outputs[0].name] = create_const(shape, ir.Location.name(_node_name(op.name)))
            return
        passed = {i for i, s in enumerate(sources) if s is not None}
        if passed and op.type not in _FUNCTIONAL_OPS:
            raise ValueError(f"node {op.name!r} ({op.type}) uses a variable in a way tfquant cannot freeze: "
                             "only reads, gathers and passing it to If/While/Case/calls are supported")
        operands = [s if s is not None else self._value(t, op) for s, t in zip(sources, op.inputs)]
        self._create(op, op.type, operands, self._attributes(op, operands, passed))

    def _add_variable(self, op: tf.Operation) -> None:
        if self.variables is None:
            raise ValueError(f"node {op.name!r} creates a variable inside a function; tfquant cannot freeze it")
        variable = self.variables.variable(op.name)
        if op.type == "VarHandleOp":
            self.handles[op.outputs[0].name] = variable
        else:  # a TF1 reference variable is read by using it
            self.values[op.outputs[0].name] = self._constant(variable)

    def _variable_source(self, tensor: tf.Tensor, bound_names: set[str]) -> ir.Value | None:
        """The value a resource tensor stands for (a variable's constant or a bound argument), else None."""
        if tensor.name in self.handles:
            return self._constant(self.handles[tensor.name])
        if tensor.dtype == tf.resource and tensor.name in self.values and (
                tensor.name in bound_names or not _is_resource(self.values[tensor.name].type)):
            return self.values[tensor.name]
        return None

    def _constant(self, variable: meta_graph_lib.Variable) -> ir.Value:
        if variable.node not in self.constants:
            constant = create_const(self.variables.value(variable), ir.Location.name(variable.node))
            constant.owner.attributes[VARIABLE] = ir.StringAttr.get(variable.node)
            self.constants[variable.node] = constant
        return self.constants[variable.node]

    def _resource_gather(self, op: tf.Operation, table: ir.Value) -> None:
        """ResourceGather(variable, ids) -> GatherV2(value, ids, axis 0), as TF's freezing converter does."""
        axis = create_const(np.asarray(0, np.int32), ir.Location.name(_node_name(op.name) + "/axis"))
        ids = self._value(op.inputs[1], op)
        attrs = {"Tparams": ir.TypeAttr.get(tf_attrs.element_type(op.get_attr("dtype"))),
                 "Tindices": ir.TypeAttr.get(tf_attrs.element_type(op.inputs[1].dtype)),
                 "Taxis": ir.TypeAttr.get(tf_attrs.element_type(tf.int32)),
                 "batch_dims": tf_attrs.to_mlir_attr(op.node_def.attr["batch_dims"])}
        self._create(op, "GatherV2", [table, ids, axis], attrs)

    def _value(self, tensor: tf.Tensor, op_for_error: tf.Operation | None) -> ir.Value:
        if tensor.name not in self.values:
            user = f" (an input of node {op_for_error.name!r})" if op_for_error is not None else ""
            raise ValueError(f"tensor {tensor.name}{user} has no value: is it produced by a node tfquant skipped?")
        return self.values[tensor.name]

    def _attributes(self, op: tf.Operation, operands: list[ir.Value], passed: set[int]) -> dict[str, ir.Attribute]:
        """The node's attributes; a functional op's types and callees follow the variables it passes on."""
        node_attrs = {name: value for name, value in op.node_def.attr.items() if not name.startswith("_")}
        bound: dict[int, ir.Type] = {}
        if op.type in _FUNCTIONAL_OPS:
            types_attr, skipped = _FUNCTIONAL_OPS[op.type]
            bound = {i - skipped: operands[i].type for i in passed}
            if bound:
                node_attrs = _retyped(node_attrs, types_attr, op.type in _LOOPS, bound)
        attributes = {}
        for name, value in node_attrs.items():
            if value.WhichOneof("value") == "func":
                attributes[name] = ir.FlatSymbolRefAttr.get(self.library.add(value.func.name, bound))
            elif value.WhichOneof("value") == "list" and len(value.list.func):
                attributes[name] = ir.ArrayAttr.get([ir.FlatSymbolRefAttr.get(self.library.add(f.name, bound))
                                                     for f in value.list.func])
            else:
                attr = tf_attrs.to_mlir_attr(value)
                if attr is not None:
                    attributes[name] = attr
        return attributes

    def _create(self, op: tf.Operation, op_type: str, operands: list[ir.Value],
                attributes: dict[str, ir.Attribute]) -> None:
        result_types = [_value_type(t) for t in op.outputs]
        if op.type in _LOOPS:  # a loop returns the values it carries, variables included
            result_types = [v.type if _is_resource(r) else r for v, r in zip(operands, result_types)]
        created = ir.Operation.create("tf." + op_type, results=result_types, operands=operands,
                                      attributes=attributes, loc=ir.Location.name(_node_name(op.name)))
        self.values.update({t.name: r for t, r in zip(op.outputs, created.results)})


def _retyped(node_attrs: dict, types_attr: str, is_loop: bool, bound: dict[int, ir.Type]) -> dict:
    """`node_attrs` with the bound operands' entries of the type list (and a loop's shapes) retyped."""
    node_attrs = dict(node_attrs)
    types = attr_value_pb2.AttrValue()
    types.CopyFrom(node_attrs[types_attr])
    for i, value_type in bound.items():
        types.list.type[i] = tf_attrs.dtype_of(ir.ShapedType(value_type).element_type).as_datatype_enum
    node_attrs[types_attr] = types
    if is_loop and "output_shapes" in node_attrs:
        shapes = attr_value_pb2.AttrValue()
        shapes.CopyFrom(node_attrs["output_shapes"])
        for i, value_type in bound.items():
            if i < len(shapes.list.shape):
                shapes.list.shape[i].CopyFrom(tf.TensorShape(tf_attrs.shape_of(value_type)).as_proto())
        node_attrs["output_shapes"] = shapes
    return node_attrs


def _is_resource(value_type: ir.Type) -> bool:
    return tf_attrs.dtype_of(ir.ShapedType(value_type).element_type) == tf.resource


def _node_name(name: str) -> str:
    """The node name as in the model's own function, without the prefixes of inlined calls."""
    return _INLINED_CALL_PREFIX.sub("", name) or name
