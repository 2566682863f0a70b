"""SavedModel -> MLIR module: one func.func per signature, one generic tf.* op per graph node.

Variables are frozen into constants with TensorFlow's own converter, with control flow kept as
`If`/`While` ops whose branches and bodies become private functions. Node names become op
locations; signature input and output names become argument and result attributes
(`tfq.input_name`, `tfq.output_name`), so that export can restore the signature exactly.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf
from tensorflow.core.framework import function_pb2
from tensorflow.python.framework import convert_to_constants, function_def_to_graph
from tensorflow.python.saved_model import loader_impl

from tfquant import tf_attrs
from tfquant.mlir import func, ir, new_context

INPUT_NAME = "tfq.input_name"
OUTPUT_NAME = "tfq.output_name"
TAGS = "tfq.saved_model_tags"


def import_saved_model(path: str, signature_keys: Sequence[str] | None = None,
                       tags: Sequence[str] | None = None, context: ir.Context | None = None) -> ir.Module:
    """Import the signatures of the SavedModel at `path` as an MLIR module.

    `signature_keys` defaults to every signature of the MetaGraph with `tags` (default "serve").
    """
    tags = list(tags) if tags is not None else [tf.saved_model.SERVING]
    loaded = load_saved_model(path, tags)
    signatures = select_signatures(loaded, path, signature_keys)
    ctx = context or new_context()
    with ctx, ir.Location.unknown():
        module = ir.Module.create()
        module.operation.attributes[TAGS] = ir.ArrayAttr.get([ir.StringAttr.get(t) for t in tags])
        library = _Library(module)
        for key, function in signatures.items():
            _import_signature(module, library, key, function)
    return module


def load_saved_model(path: str, tags: Sequence[str]):
    """tf.saved_model.load with errors that name the path and the tags."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"SavedModel path does not exist: {path}")
    if not tf.saved_model.contains_saved_model(path):
        raise ValueError(f"{path} is not a SavedModel directory (no saved_model.pb or saved_model.pbtxt)")
    available = [list(mg.meta_info_def.tags) for mg in loader_impl.parse_saved_model(path).meta_graphs]
    if sorted(tags) not in [sorted(t) for t in available]:
        raise ValueError(f"SavedModel {path} has no MetaGraph with tags {list(tags)}; it has {available}")
    return tf.saved_model.load(path, tags=list(tags))


def select_signatures(loaded, path: str, signature_keys: Sequence[str] | None) -> dict:
    """The requested signatures of a loaded SavedModel, in the order asked for."""
    available = list(loaded.signatures.keys())
    if not available:
        raise ValueError(f"SavedModel {path} has no signatures")
    keys = list(signature_keys) if signature_keys else available
    unknown = [k for k in keys if k not in available]
    if unknown:
        raise ValueError(f"SavedModel {path} has no signature {unknown[0]!r}; its signatures are {available}")
    return {k: loaded.signatures[k] for k in keys}


class _Library:
    """Private functions imported so far, by TensorFlow function name."""

    def __init__(self, module: ir.Module):
        self.module = module
        self.imported: dict[str, bytes] = {}

    def add(self, fdef: function_pb2.FunctionDef, graph_library) -> None:
        name = fdef.signature.name
        serialized = fdef.SerializeToString(deterministic=True)
        if name in self.imported:
            if self.imported[name] != serialized:
                raise ValueError(f"two signatures define different functions named {name}")
            return
        self.imported[name] = serialized
        graph = function_def_to_graph.function_def_to_graph(fdef)
        arg_types = [_value_type(t) for t in graph.inputs]
        result_types = [_value_type(t) for t in graph.outputs]
        with ir.InsertionPoint(self.module.body):
            fn = func.FuncOp(name, (arg_types, result_types), visibility="private")
        _convert_graph(graph, graph.inputs, graph.outputs, fn, self, graph_library)


def _frozen_graph(function) -> tuple[tf.Graph, dict]:
    """The signature's graph with every variable read replaced by a constant; and its functions.

    Uses the converter behind `convert_variables_to_constants_v2` without wrapping its result
    in a new ConcreteFunction, which would import and prune the whole graph a second time.
    """
    converter_data = convert_to_constants._FunctionConverterDataInEager(  # noqa: SLF001
        func=function, lower_control_flow=False, aggressive_inlining=False)
    graph_def, _ = convert_to_constants._replace_variables_by_constants(converter_data=converter_data)  # noqa: SLF001
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph, {f.signature.name: f for f in graph_def.library.function}


def _inlined_call_prefixes(function) -> tuple[str, ...]:
    """Name prefixes that inlining the signature's call ops gave its nodes ("StatefulPartitionedCall/").

    Stripped from node names so that ops are named as in the model's own function (shorter
    names, also in the exported graph).
    """
    return tuple(op.name + "/" for op in function.graph.get_operations()
                 if op.type in ("StatefulPartitionedCall", "PartitionedCall"))


def _import_signature(module: ir.Module, library: _Library, key: str, function) -> None:
    graph, graph_library = _frozen_graph(function)
    input_specs = tf.nest.flatten(function.structured_input_signature)
    output_keys = sorted(function.structured_outputs.keys())
    inputs = [graph.get_tensor_by_name(t.name) for t in function.inputs[:len(input_specs)]]
    outputs = [graph.get_tensor_by_name(t.name) for t in function.outputs]
    arg_types = [tf_attrs.tensor_type(s.dtype, s.shape.as_list() if s.shape.rank is not None else None)
                 for s in input_specs]
    result_types = [_value_type(t) for t in outputs]
    with ir.InsertionPoint(module.body):
        fn = func.FuncOp(key, (arg_types, result_types))
    fn.arg_attrs = ir.ArrayAttr.get([ir.DictAttr.get({INPUT_NAME: ir.StringAttr.get(s.name)}) for s in input_specs])
    fn.res_attrs = ir.ArrayAttr.get([ir.DictAttr.get({OUTPUT_NAME: ir.StringAttr.get(k)}) for k in output_keys])
    _convert_graph(graph, inputs, outputs, fn, library, graph_library, _inlined_call_prefixes(function))


def _value_type(tensor: tf.Tensor) -> ir.Type:
    shape = tensor.shape.as_list() if tensor.shape.rank is not None else None
    return tf_attrs.tensor_type(tensor.dtype, shape)


def _convert_graph(graph: tf.Graph, inputs: Sequence[tf.Tensor], outputs: Sequence[tf.Tensor],
                   fn: func.FuncOp, library: _Library, graph_library: dict, strip: tuple[str, ...] = ()) -> None:
    """Fill `fn` with one generic op per node of `graph` (already in topological order)."""
    block = fn.add_entry_block()
    values: dict[str, ir.Value] = {t.name: arg for t, arg in zip(inputs, block.arguments)}
    feeds = {t.op.name for t in inputs}
    with ir.InsertionPoint(block):
        for op in graph.get_operations():
            if op.name in feeds or op.type == "NoOp":
                continue
            if op.type == "Placeholder":
                raise ValueError(f"node {op.name!r} is a Placeholder that is not a signature input")
            attributes = {}
            for attr_name, value in op.node_def.attr.items():
                if attr_name.startswith("_"):
                    continue
                attr = tf_attrs.to_mlir_attr(value)
                if attr is None:
                    continue
                attributes[attr_name] = attr
                for callee in _called_functions(value):
                    library.add(graph_library[callee], graph_library)
            created = ir.Operation.create(
                "tf." + op.type,
                results=[_value_type(t) for t in op.outputs],
                operands=[values[t.name] for t in op.inputs],
                attributes=attributes,
                loc=ir.Location.name(_strip_prefix(op.name, strip)))
            for tensor, result in zip(op.outputs, created.results):
                values[tensor.name] = result
        func.ReturnOp([values[t.name] for t in outputs])


def _strip_prefix(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _called_functions(value) -> list[str]:
    kind = value.WhichOneof("value")
    if kind == "func":
        return [value.func.name]
    if kind == "list":
        return [f.name for f in value.list.func]
    return []
