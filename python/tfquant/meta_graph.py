"""Reading a SavedModel the way TensorFlow's own quantizer does: its MetaGraphDef and checkpoint.

No Python object is rebuilt (`tf.saved_model.load` fails on object graphs that hold optimizer
slots and costs most of the import time on Keras models) and no GraphDef holds the weights
(protobuf caps one at 2 GB). A signature's graph is the part of the MetaGraph's graph its
outputs reach, with its function calls inlined by grappler; its variables stay `VarHandleOp` /
`VariableV2` nodes whose values `Checkpoint` reads one at a time from `variables/`, under the
keys the object graph binds them to (TF2, as TensorFlow's loader does) or the MetaGraph's
restore graph assigns them from (TF1 savers).

`compact_saved_model` rewrites a SavedModel `tf.saved_model.save` wrote without what no loader
reads (see there).

Errors are TensorFlow's classes for the same mistakes: `OSError` for a path without a readable
SavedModel or checkpoint, `RuntimeError` for tags that match no MetaGraph, `ValueError` for an
unknown signature key.
"""
from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from google.protobuf import message
from tensorflow.core.framework import function_pb2, graph_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2, trackable_object_graph_pb2
from tensorflow.python.framework import convert_to_constants
from tensorflow.python.framework import meta_graph as tf_meta_graph
from tensorflow.python.grappler import tf_optimizer
from tensorflow.python.saved_model import fingerprinting_utils, loader_impl

CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable")
_ASSIGN_OPS = ("AssignVariableOp", "Assign")


def read_saved_model(path: str) -> saved_model_pb2.SavedModel:
    """The SavedModel proto at `path`; OSError (as TensorFlow raises) when there is none."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"SavedModel path does not exist: {path}")
    if not tf.saved_model.contains_saved_model(path):
        raise OSError(f"SavedModel file does not exist at: {path}: no saved_model.pb or saved_model.pbtxt "
                      "in that directory")
    try:
        return loader_impl.parse_saved_model(path)
    except (message.DecodeError, OSError) as error:
        raise OSError(f"cannot parse the SavedModel at {path}: {error}") from error


def select_meta_graph(saved_model: saved_model_pb2.SavedModel, path: str,
                      tags: Sequence[str]) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraph whose tag set is `tags`; RuntimeError naming the tags present otherwise."""
    for meta_graph in saved_model.meta_graphs:
        if sorted(meta_graph.meta_info_def.tags) == sorted(tags):
            return meta_graph
    available = [list(mg.meta_info_def.tags) for mg in saved_model.meta_graphs]
    raise RuntimeError(f"MetaGraphDef associated with tags {list(tags)} could not be found in the SavedModel "
                       f"at {path}; it has MetaGraphs with tags {available}")


def select_signatures(meta_graph: meta_graph_pb2.MetaGraphDef, path: str,
                      signature_keys: Sequence[str] | None) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The requested SignatureDefs in the order asked for (default: all but the init op's)."""
    available = [k for k in meta_graph.signature_def if k != loader_impl.constants.INIT_OP_SIGNATURE_KEY]
    if not available:
        raise ValueError(f"SavedModel {path} has no signatures")
    keys = list(signature_keys) if signature_keys else available
    unknown = [k for k in keys if k not in available]
    if unknown:
        raise ValueError(f"SavedModel {path} has no signature {unknown[0]!r}; its signatures are {available}")
    return {k: meta_graph.signature_def[k] for k in keys}


def signature_graph(meta_graph: meta_graph_pb2.MetaGraphDef,
                    signature: meta_graph_pb2.SignatureDef) -> graph_pb2.GraphDef:
    """The nodes the signature's outputs reach, with every function call inlined.

    `If`/`While` stay functional ops (their branches and bodies stay in the library), and
    functions marked `api_implements` (Keras' fused RNN layers) are inlined like any other,
    as TensorFlow's freezing converter does.
    """
    inputs = [info.name for info in signature.inputs.values()]
    outputs = [info.name for info in signature.outputs.values()]
    graph = graph_pb2.GraphDef(versions=meta_graph.graph_def.versions)
    graph.node.extend(_fanin(meta_graph.graph_def, outputs, stop={_node_name(t) for t in inputs}))
    graph.library.CopyFrom(meta_graph.graph_def.library)
    graph = convert_to_constants.disable_lower_using_switch_merge(graph)
    for function in graph.library.function:
        function.attr.pop("api_implements", None)
    item = meta_graph_pb2.MetaGraphDef(graph_def=graph)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(inputs + outputs)
    item.collection_def["train_op"].CopyFrom(fetch)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.min_graph_nodes = -1
    rewrite.optimizers[:] = ["function", "dependency"]
    return tf_optimizer.OptimizeGraph(config, item)


def _node_name(tensor_or_input: str) -> str:
    return tensor_or_input.lstrip("^").split(":")[0]


def _fanin(graph: graph_pb2.GraphDef, tensors: Sequence[str], stop: set[str]) -> list:
    """The nodes of `graph` that `tensors` depend on (data and control edges), in graph order."""
    nodes = {node.name: node for node in graph.node}
    reached: set[str] = set()
    pending = [_node_name(t) for t in tensors]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        if name not in nodes:
            raise ValueError(f"the signature refers to node {name!r}, which the SavedModel's graph does not have")
        reached.add(name)
        if name not in stop:
            pending.extend(_node_name(i) for i in nodes[name].input)
    return [node for node in graph.node if node.name in reached]


@dataclass(frozen=True)
class Variable:
    """A variable of the MetaGraph: its graph node, checkpoint key, dtype and shape."""
    node: str
    key: str
    dtype: tf.DType
    shape: tuple[int, ...]


class Checkpoint:
    """The values of a MetaGraph's variables, read one at a time from its `variables/` checkpoint."""

    def __init__(self, path: str, meta_graph: meta_graph_pb2.MetaGraphDef):
        self.prefix = os.path.join(path, "variables", "variables")
        self.meta_graph = meta_graph
        self._reader = None
        self._keys: dict[str, str] | None = None

    def variable(self, node: str) -> Variable:
        """The variable a VarHandleOp / VariableV2 node names; its dtype and shape as stored."""
        keys = self._variable_keys()
        if node not in keys:
            raise ValueError(f"variable {node!r} is neither bound in the SavedModel's object graph nor restored by "
                             f"its restore graph, so it has no value in {self.prefix}")
        key = keys[node]
        dtypes, shapes = self._maps
        if key not in dtypes:
            raise OSError(f"the checkpoint {self.prefix} has no value for variable {node!r} (key {key!r})")
        return Variable(node, key, tf.as_dtype(dtypes[key]), tuple(shapes[key]))

    @functools.cached_property
    def _maps(self) -> tuple[dict, dict]:
        """The checkpoint's dtype and shape of every key (each map lists them all: built once)."""
        reader = self._open()
        return reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()

    def value(self, variable: Variable) -> np.ndarray:
        return self._read(variable.key, f"variable {variable.node!r}")

    def _read(self, key: str, what: str) -> np.ndarray:
        try:
            return self._open().get_tensor(key)
        except _READ_ERRORS as error:
            raise OSError(f"cannot read {what} (key {key!r}) from the checkpoint {self.prefix}: "
                          f"{str(error).splitlines()[0]}") from error

    def _open(self):
        if self._reader is None:
            try:
                self._reader = tf.train.load_checkpoint(self.prefix)
            except _READ_ERRORS as error:
                raise OSError(f"cannot read the SavedModel's variables checkpoint {self.prefix}: "
                              f"{str(error).splitlines()[0]}") from error
        return self._reader

    def _variable_keys(self) -> dict[str, str]:
        if self._keys is None:
            self._keys = {**_restored_keys(self.meta_graph), **self._object_graph_keys()}
        return self._keys

    def _object_graph_keys(self) -> dict[str, str]:
        """{variable node: checkpoint key} through the TF2 object graph.

        A call node passes the variables its function captures as its last inputs, in the order
        of the function's `bound_inputs` (object graph node ids); the checkpoint's own object
        graph numbers its nodes alike and names each variable's key. This is how TensorFlow's
        loader binds them too; Keras 3 SavedModels restore other handles than the signatures read.
        """
        object_graph = self.meta_graph.object_graph_def
        if not object_graph.nodes:
            return {}
        reader = self._open()
        if not reader.has_tensor(_OBJECT_GRAPH_KEY):
            return {}
        trackables = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
            self._read(_OBJECT_GRAPH_KEY, "the object graph"))
        if len(trackables.nodes) != len(object_graph.nodes):
            return {}
        keys = {}
        for node in self.meta_graph.graph_def.node:
            if node.op not in CALL_OPS or node.attr["f"].func.name not in object_graph.concrete_functions:
                continue
            bound = object_graph.concrete_functions[node.attr["f"].func.name].bound_inputs
            captured = list(node.input)[len(node.input) - len(bound):] if bound else []
            for handle, node_id in zip(captured, bound):
                attributes = [a for a in trackables.nodes[node_id].attributes if a.name == "VARIABLE_VALUE"]
                if object_graph.nodes[node_id].WhichOneof("kind") == "variable" and attributes:
                    keys[_node_name(handle)] = attributes[0].checkpoint_key
        return keys


_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
# What a damaged checkpoint makes TensorFlow's reader raise (a truncated data file: IndexError).
_READ_ERRORS = (tf.errors.OpError, ValueError, IndexError, RuntimeError, message.DecodeError)


def _restored_keys(meta_graph: meta_graph_pb2.MetaGraphDef) -> dict[str, str]:
    """{variable node: checkpoint key}, read off the MetaGraph's restore graph.

    TF2 SavedModels restore in a function (`__inference__traced_restore_N`) that a call node
    passes the variable handles to; TF1 savers assign from `RestoreV2` in the graph itself.
    Either way each assignment's target is a variable and its value `RestoreV2:i`, whose key
    is element i of the `tensor_names` constant.
    """
    graph = meta_graph.graph_def
    restore = _node_name(meta_graph.saver_def.restore_op_name) if meta_graph.HasField("saver_def") else ""
    nodes = {node.name: node for node in graph.node}
    if restore in nodes and nodes[restore].op in CALL_OPS:
        call = nodes[restore]
        library = {f.signature.name: f for f in graph.library.function}
        body = library[call.attr["f"].func.name]
        outer = {arg.name: _node_name(i) for arg, i in zip(body.signature.input_arg, call.input)}
        return _assigned_keys(_FunctionNodes(body), lambda name: outer.get(name, name), nodes)
    return _assigned_keys(_GraphNodes(graph), lambda name: name, nodes)


class _GraphNodes:
    """Nodes of a GraphDef, inputs written `node:index`."""

    def __init__(self, graph: graph_pb2.GraphDef):
        self.nodes = {node.name: node for node in graph.node}

    def source(self, input_name: str) -> tuple[str, int]:
        name, _, index = input_name.partition(":")
        return name, int(index or 0)


class _FunctionNodes:
    """Nodes of a FunctionDef, inputs written `node:output_arg:index` or `argument`."""

    def __init__(self, function: function_pb2.FunctionDef):
        self.nodes = {node.name: node for node in function.node_def}

    def source(self, input_name: str) -> tuple[str, int]:
        parts = input_name.split(":")
        return parts[0], int(parts[2]) if len(parts) == 3 else 0


def _assigned_keys(body: _GraphNodes | _FunctionNodes, outer_name, graph_nodes: dict) -> dict[str, str]:
    def through_identities(input_name: str) -> tuple[str, int]:
        name, index = body.source(input_name)
        while name in body.nodes and body.nodes[name].op == "Identity":
            name, index = body.source(body.nodes[name].input[0])
        return name, index

    @functools.cache
    def names_and_slices(restore: str) -> tuple[list[str], list[str]]:
        return (_string_constant(body, body.nodes[restore].input[1]),
                _string_constant(body, body.nodes[restore].input[2]))

    keys: dict[str, str] = {}
    for node in body.nodes.values():
        if node.op not in _ASSIGN_OPS:
            continue
        target, _ = through_identities(node.input[0])
        restore, index = through_identities(node.input[1])
        if restore not in body.nodes or body.nodes[restore].op != "RestoreV2":
            continue
        names, slices = names_and_slices(restore)
        variable = outer_name(target)
        if variable in graph_nodes and graph_nodes[variable].op in VARIABLE_OPS:
            if slices[index]:
                raise ValueError(f"variable {variable!r} is partitioned ({slices[index]}); "
                                 "tfquant reads whole variables only")
            keys[variable] = names[index]
    return keys


def _string_constant(body: _GraphNodes | _FunctionNodes, input_name: str) -> list[str]:
    name, _ = body.source(input_name)
    tensor = tf.make_ndarray(body.nodes[name].attr["value"].tensor)
    return [s.decode() for s in np.ravel(tensor)]


def copy_assets(path: str, output_dir: str) -> None:
    """Copy the SavedModel's `assets/` and `assets.extra/` directories to `output_dir`."""
    for name in ("assets", "assets.extra"):
        source = os.path.join(path, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(output_dir, name), dirs_exist_ok=True)


def compact_saved_model(path: str, tags: Sequence[str], has_variables: bool) -> None:
    """Rewrite the `saved_model.pb` that `tf.saved_model.save` wrote at `path` with the MetaGraph
    tags `tags` (it always writes "serve") and without what no loader reads; its fingerprint anew.

    Without variables (`has_variables` false), the saver (`saver_def`, its save and restore
    functions and the graph nodes calling them): the C++ and TF1 loaders restore only through a
    `saver_def`, TF2's through the `variables/` checkpoint, which stays. In every function, the
    `_output_shapes` of nodes that return nothing: loading a function infers them again, as tracing
    did (they are set on the inferred shapes, and a traced tf.function holds none); those of the
    returned nodes and of ops whose shapes inference cannot see (variable reads, calls) stay.
    On a small model the two are a third of the file.
    """
    file_name = os.path.join(path, "saved_model.pb")
    saved_model = loader_impl.parse_saved_model(path)
    for meta_graph in saved_model.meta_graphs:
        del meta_graph.meta_info_def.tags[:]
        meta_graph.meta_info_def.tags.extend(tags)
        if not has_variables and meta_graph.HasField("saver_def"):
            _drop_saver(meta_graph)
        for function in meta_graph.graph_def.library.function:
            _drop_inferred_shapes(function)
        meta_graph.meta_info_def.stripped_op_list.CopyFrom(
            tf_meta_graph.stripped_op_list_for_graph(meta_graph.graph_def))
    with open(file_name, "wb") as f:
        f.write(saved_model.SerializeToString())
    fingerprinting_utils.write_fingerprint(path)


def _drop_saver(meta_graph: meta_graph_pb2.MetaGraphDef) -> None:
    """Remove the saver: its save and restore calls, their functions and the inputs only they read."""
    saver = meta_graph.saver_def
    graph = meta_graph.graph_def
    nodes = {node.name: node for node in graph.node}
    calls = {_node_name(saver.save_tensor_name), _node_name(saver.restore_op_name)}
    functions = {nodes[call].attr["f"].func.name for call in calls}
    inputs = {_node_name(i) for call in calls for i in nodes[call].input}
    read_elsewhere = {_node_name(i) for node in graph.node if node.name not in calls for i in node.input}
    dropped = calls | (inputs - read_elsewhere)
    kept_nodes = [node for node in graph.node if node.name not in dropped]
    kept_functions = [f for f in graph.library.function if f.signature.name not in functions]
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.library.function[:]
    graph.library.function.extend(kept_functions)
    meta_graph.ClearField("saver_def")


# Ops whose output shapes loading cannot infer from their inputs: a read's shape is the variable's,
# a call's its function's.
_SHAPES_NOT_INFERRED = ("ReadVariableOp",) + CALL_OPS


def _drop_inferred_shapes(function: function_pb2.FunctionDef) -> None:
    returned = {_node_name(tensor) for tensor in function.ret.values()}
    for node in function.node_def:
        if node.name not in returned and node.op not in _SHAPES_NOT_INFERRED:
            node.attr.pop("_output_shapes", None)
