"""MLIR module -> TensorFlow: a SavedModel, or a ConcreteFunction to run a module directly.

Each generic `tf.X` op becomes the TensorFlow op X, built with `Graph.create_op` inside a
`tf.function`, so TensorFlow validates every node's attributes and shapes as it is built.
Private functions (If branches, While bodies) become traced functions of their own; the weights
stored as variables that they read are passed to them as resource arguments of the If or While.
Constants with more than `variable_threshold` elements are stored as variables, and so are the
largest others while the rest would hold more than `GRAPH_CONSTANT_BYTES`: a GraphDef may not
exceed 2 GB. With `keep_variables`, constants the importer read from a variable (`tfq.variable`)
and that no pass replaced are variables again, under their own names. For float models the
default (`VARIABLE_THRESHOLD`) is low, because grappler
does not fold variables at load time, so a round trip gives the original's outputs bit for bit:
with conv filters left as constants (MobileNetV2's 3x3x32 depthwise filters have 288 elements),
grappler folds the batch-norm multipliers into them and the outputs move by 6e-6 relative.
Each variable costs ~500 bytes of graph (handle, read, save and restore), so quantized models,
whose int8 weights are small, keep constants up to `LARGE_CONSTANT` elements in the graph.
A constant that two exported TensorFlow functions hold (two signatures reading one weight, each
quantized alike) is one variable past `SHARED_CONSTANT_BYTES`: as a graph constant it would be
stored once per function.
Each signature output keeps the TensorSpec the input model declared (`tfq.output_type`): a
`[None, None, 8]` output is not narrowed to the shape inference found.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.python.framework import op_def_registry

from tfquant import tf_attrs
from tfquant.importer import INPUT_NAME, OUTPUT_NAME, OUTPUT_TYPE, TAGS, VARIABLE
from tfquant.meta_graph import compact_saved_model
from tfquant.mlir import CompileError, ir, name_of, ops_named, symbol_table, walk_ops

VARIABLE_THRESHOLD = 256
CALL_OPS = ("tf.PartitionedCall", "tf.StatefulPartitionedCall")
LARGE_CONSTANT = 1 << 20
# Saving holds each byte of a graph constant ~4 times (graph, function library, SavedModel proto,
# serialized file): beyond this many bytes the largest constants are variables, stored once.
GRAPH_CONSTANT_BYTES = 1 << 26

# A variable costs ~500 bytes of graph; a constant shared by two functions and larger than this is one.
SHARED_CONSTANT_BYTES = 1024

# An op the exporter does not build itself: given the op and its input tensors, the hook
# returns its output tensors, or None to let the exporter build it as a TensorFlow op.
OpHook = Callable[[ir.Operation, list[tf.Tensor]], "list[tf.Tensor] | None"]


class _Module(tf.Module):
    """The root object of an exported SavedModel: it tracks the weight variables."""


def signature_names(module: ir.Module) -> list[str]:
    """The public functions of a module: one per signature."""
    return [name for name, fn in symbol_table(module).items() if not _is_private(fn)]


def signature_output_names(module: ir.Module, signature: str) -> list[str]:
    """The output names of a signature function, in result order."""
    return _arg_names(symbol_table(module)[signature], OUTPUT_NAME, signature)


def _is_private(fn: ir.Operation) -> bool:
    return "sym_visibility" in fn.attributes and ir.StringAttr(fn.attributes["sym_visibility"]).value == "private"


def _arg_names(fn: ir.Operation, attr_key: str, name: str) -> list[str]:
    key = "arg_attrs" if attr_key == INPUT_NAME else "res_attrs"
    if key not in fn.attributes:
        raise CompileError(f"function @{name} has no {attr_key} attributes: it is not a signature", fn.location)
    return [ir.StringAttr(ir.DictAttr(d)[attr_key]).value for d in ir.ArrayAttr(fn.attributes[key])]


def _declared_output_types(fn: ir.Operation) -> list[ir.Type | None]:
    """Each result's TensorSpec type as the input model declared it (None where not recorded)."""
    if "res_attrs" not in fn.attributes:
        return [None] * len(_function_type(fn).results)
    return [ir.TypeAttr(ir.DictAttr(d)[OUTPUT_TYPE]).value if OUTPUT_TYPE in ir.DictAttr(d) else None
            for d in ir.ArrayAttr(fn.attributes["res_attrs"])]


def _function_type(fn: ir.Operation) -> ir.FunctionType:
    return ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)


class _Builder:
    """Builds TensorFlow graph ops for the functions of one module."""

    def __init__(self, functions: dict[str, ir.Operation], variables: _Weights | None, hook: OpHook | None):
        self.functions = functions
        self.variables = variables
        self.hook = hook
        self.traced: dict[tuple, tf.types.experimental.ConcreteFunction] = {}
        # Inside a traced function: the variable handles it takes as arguments, by weight key
        # (None in a signature's function, which captures the variables themselves).
        self.handles: dict[object, tf.Tensor] | None = None
        self._reads: dict[str, list[object]] = {}
        # One node per constant value in each graph: lowering gives every layer its own copies of
        # the same zero points and clamp bounds, which TensorFlow's quantizer stores once.
        self._constants: dict[tuple[tf.Graph, ir.Attribute], tf.Tensor] = {}

    def build(self, name: str, args: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """Emit the ops of function `name` into the current graph; returns its results."""
        fn = self.functions[name]
        block = fn.regions[0].blocks[0]
        env: dict[ir.Value, tf.Tensor] = dict(zip(block.arguments, args))
        graph = tf.compat.v1.get_default_graph()
        for op in block.operations:
            op = op.operation
            if op.name == "func.return":
                return [env[v] for v in op.operands]
            inputs = [env[v] for v in op.operands]
            try:
                outputs = self._emit(op, inputs, graph)
            except (ValueError, TypeError, KeyError, RuntimeError, tf.errors.OpError) as error:
                if isinstance(error, CompileError):
                    raise
                raise CompileError(f"cannot build {op.name}: {error}", op.location) from error
            env.update(zip(op.results, outputs))
        raise CompileError(f"function @{name} has no return", fn.location)

    def _emit(self, op: ir.Operation, inputs: list[tf.Tensor], graph: tf.Graph) -> list[tf.Tensor]:
        if self.hook is not None:
            hooked = self.hook(op, inputs)
            if hooked is not None:
                return hooked
        if not op.name.startswith("tf."):
            raise CompileError(f"op {op.name} has no TensorFlow equivalent", op.location)
        callee = ir.FlatSymbolRefAttr(op.attributes["f"]).value if op.name in CALL_OPS else None
        if callee in self.functions:
            # Inlined rather than traced as a function of its own: tracing each composite function
            # costs ~25 ms, and a flat graph lets grappler fuse conv + bias + relu.
            return self.build(callee, inputs)
        op_type = op.name[3:]
        node_name = _node_name(op)
        if op_type == "Const":
            return [self._constant(op, node_name, graph)]
        op_def = op_def_registry.get(op_type)
        if op_def is None:
            raise CompileError(f"unknown TensorFlow op {op_type}", op.location)
        attr_types = {a.name: a.type for a in op_def.attr}
        function_attrs = [n for n, t in attr_types.items() if t in ("func", "list(func)") and n in op.attributes]
        # The stored weights the functions this op calls read, passed to them as handles.
        keys = self._keys_read([s for n in function_attrs for s in _symbols(op.attributes[n])])
        attrs = {}
        for attr_name, attr in op.attributes.items():
            if attr_name not in attr_types:
                continue
            if attr_name in function_attrs:
                attr = self._traced_functions(attr, graph, keys, returns_handles=_returns_handles(op_type, attr_name))
            attrs[attr_name] = tf_attrs.to_attr_value(attr, attr_types[attr_name])
        if keys:
            inputs = inputs + [self._handle(key) for key in keys]
            _pass_handles(op_type, attrs, len(keys), op.location)
        created = graph.create_op(op_type, inputs, name=node_name, attrs=attrs)
        return list(created.outputs)[:len(op.results)]

    def _constant(self, op: ir.Operation, node_name: str, graph: tf.Graph) -> tf.Tensor:
        value_attr = op.attributes["value"]
        if isinstance(value_attr, ir.OpaqueAttr):
            proto = tf_attrs.to_attr_value(value_attr, "tensor").tensor
            return tf.constant(tf.make_ndarray(proto), name=node_name)
        stored = self.variables.stored.get(self.variables.key(op)) if self.variables is not None else None
        if stored is not None:
            if self.handles is None:
                return stored.read_value()
            return tf.raw_ops.ReadVariableOp(resource=self.handles[self.variables.key(op)], dtype=stored.dtype)
        if (graph, value_attr) not in self._constants:
            dtype = tf_attrs.dtype_of(ir.ShapedType(value_attr.type).element_type)
            self._constants[graph, value_attr] = tf.constant(np.asarray(value_attr), dtype=dtype, name=node_name)
        return self._constants[graph, value_attr]

    def _traced_functions(self, attr: ir.Attribute, graph: tf.Graph, keys: list[object],
                          returns_handles: bool) -> ir.Attribute:
        """Trace the private functions an attribute names; returns the attribute with their TF names."""
        if isinstance(attr, ir.ArrayAttr):
            return ir.ArrayAttr.get([self._traced_functions(a, graph, keys, returns_handles) for a in attr])
        concrete = self._trace(ir.FlatSymbolRefAttr(attr).value, keys, returns_handles)
        concrete.add_to_graph(graph)
        return ir.FlatSymbolRefAttr.get(concrete.function_def.signature.name)

    def _trace(self, name: str, keys: list[object], returns_handles: bool):
        """Function `name` as a TensorFlow function taking, after its arguments, a handle per
        weight of `keys` (and returning them after its results, if `returns_handles`: a loop body).

        Handles rather than captured variables: a function that captures one takes it as an extra
        input that an If or While built with create_op would not pass.
        """
        cache_key = (name, tuple(keys), returns_handles)
        if cache_key not in self.traced:
            fn_type = _function_type(self.functions[name])
            specs = [tf_attrs.tensor_spec(t) for t in fn_type.inputs] + [tf.TensorSpec([], tf.resource)] * len(keys)
            arity = len(fn_type.inputs)

            def body(*args):
                outer, self.handles = self.handles, dict(zip(keys, args[arity:]))
                try:
                    results = self.build(name, args[:arity])
                finally:
                    self.handles = outer
                return results + list(args[arity:]) if returns_handles else results

            self.traced[cache_key] = tf.function(body, input_signature=specs, autograph=False).get_concrete_function()
        return self.traced[cache_key]

    def _keys_read(self, names: list[str]) -> list[object]:
        """The stored weights that the functions `names` read, with the functions they call."""
        keys: list[object] = []
        for name in names:
            if name not in self.functions or self.variables is None:
                continue
            if name not in self._reads:
                members, traced = _inlined_closure(self.functions, name)
                own = [self.variables.key(op) for fn in members for op in ops_named(fn, "tf.Const")]
                self._reads[name] = [k for k in own if k in self.variables.stored] + self._keys_read(traced)
            keys += self._reads[name]
        return list(dict.fromkeys(keys))

    def _handle(self, key: object) -> tf.Tensor:
        """The handle of a stored weight, in the function being built."""
        return self.variables.stored[key].handle if self.handles is None else self.handles[key]


# Functional ops whose functions take the op's operands: the attribute listing the operand types.
# Loops (While) also list them as results, and their body returns them.
_OPERAND_TYPES = {"If": "Tin", "StatelessIf": "Tin", "Case": "Tin", "StatelessCase": "Tin",
                  "While": "T", "StatelessWhile": "T"}
_LOOPS = ("While", "StatelessWhile")


def _returns_handles(op_type: str, attr_name: str) -> bool:
    return op_type in _LOOPS and attr_name == "body"


def _pass_handles(op_type: str, attrs: dict, count: int, location: ir.Location) -> None:
    """Add `count` resource operands to the type attributes of a functional op (for a loop, also
    as scalar-shaped results)."""
    if op_type not in _OPERAND_TYPES:
        raise CompileError(f"{op_type} calls functions that read variables; only "
                           f"{', '.join(_OPERAND_TYPES)} can pass them", location)
    attrs[_OPERAND_TYPES[op_type]].list.type.extend([types_pb2.DT_RESOURCE] * count)
    if op_type in _LOOPS and "output_shapes" in attrs:
        attrs["output_shapes"].list.shape.extend([tensor_shape_pb2.TensorShapeProto()] * count)


_INVALID_NODE_CHARS = re.compile(r"[^A-Za-z0-9_.\-/]")


def _node_name(op: ir.Operation) -> str:
    name = _INVALID_NODE_CHARS.sub("_", name_of(op.location)).lstrip("_-/") or op.name.split(".", 1)[1]
    return name


class _Weights:
    """The variables an export stores its weights in, created before tracing.

    (A tf.function that creates variables is traced twice.) Keyed by value (attributes are
    uniqued per context), not by node name: the frozen weights of different signatures share
    node names; a kept variable is keyed by its own name, so that two variables holding equal
    values stay two variables. (Variables, not captured eager constants, for functions that are
    only run too: `tf.constant` of a numpy array holds twice its size.) With `exported`, the
    signatures an export writes, a constant that two of the functions it traces hold is a variable.
    """

    def __init__(self, module: ir.Module, threshold: int | None, keep_variables: bool = False,
                 exported: Sequence[str] = ()):
        self.keep_variables = keep_variables
        self.stored: dict[object, tf.Variable] = {}
        candidates: dict[object, ir.Operation] = {}
        for op in ops_named(module.operation, "tf.Const"):
            value_attr = op.attributes["value"]
            if isinstance(value_attr, ir.DenseElementsAttr) and ir.ShapedType(value_attr.type).has_static_shape:
                candidates.setdefault(self.key(op), op)
        shared = self._shared_keys(symbol_table(module), exported)
        for key in self._stored_keys(candidates, threshold, shared):
            op = candidates[key]
            array = np.asarray(op.attributes["value"])
            dtype = tf_attrs.dtype_of(ir.ShapedType(op.attributes["value"].type).element_type)
            name = ir.StringAttr(key).value if isinstance(key, ir.StringAttr) else _node_name(op)
            with tf.init_scope():
                self.stored[key] = tf.Variable(array.astype(dtype.as_numpy_dtype, copy=False), trainable=False,
                                               name=_variable_name(name))

    def key(self, op: ir.Operation) -> object:
        if self.keep_variables and VARIABLE in op.attributes:
            return op.attributes[VARIABLE]
        return op.attributes["value"]

    def _shared_keys(self, functions: dict[str, ir.Operation], exported: Sequence[str]) -> set[object]:
        """The constants that more than one of the TensorFlow functions exporting `exported` holds."""
        holders: dict[object, int] = {}
        for members in _traced_units(functions, exported).values():
            for key in {self.key(op) for fn in members for op in ops_named(fn, "tf.Const")}:
                holders[key] = holders.get(key, 0) + 1
        return {key for key, count in holders.items() if count > 1}

    @staticmethod
    def _stored_keys(candidates: dict[object, ir.Operation], threshold: int | None, shared: set[object]) -> list[object]:
        """Kept variables, constants over `threshold` elements, constants several functions hold,
        then the largest while the rest is too big."""
        def nbytes(key: object) -> int:
            return np.asarray(candidates[key].attributes["value"]).nbytes

        def size(key: object) -> int:
            return int(np.prod(ir.ShapedType(candidates[key].attributes["value"].type).shape))

        stored = [k for k in candidates if isinstance(k, ir.StringAttr) or (threshold is not None and size(k) > threshold)
                  or (k in shared and nbytes(k) > SHARED_CONSTANT_BYTES)]
        chosen = set(stored)
        in_graph = sorted((k for k in candidates if k not in chosen), key=nbytes, reverse=True)
        graph_bytes = sum(nbytes(k) for k in in_graph)
        for key in in_graph:
            if graph_bytes <= GRAPH_CONSTANT_BYTES:
                break
            stored.append(key)
            graph_bytes -= nbytes(key)
        return stored


def _traced_units(functions: dict[str, ir.Operation], roots: Sequence[str]) -> dict[str, list[ir.Operation]]:
    """Each TensorFlow function an export of the signatures `roots` traces (the signatures, the If
    branches and While bodies they reach) with the func.funcs whose ops it holds: itself and the
    functions it calls through PartitionedCall, which `_Builder` inlines."""
    units: dict[str, list[ir.Operation]] = {}
    pending = list(roots)
    while pending:
        root = pending.pop()
        if root in units:
            continue
        units[root], traced = _inlined_closure(functions, root)
        pending += traced
    return units


def _inlined_closure(functions: dict[str, ir.Operation], root: str) -> tuple[list[ir.Operation], list[str]]:
    """The functions inlined into `root`'s TensorFlow function (itself included), and the functions
    their ops name otherwise (branches, bodies: traced as functions of their own)."""
    members: dict[str, ir.Operation] = {}
    traced: list[str] = []
    pending = [root]
    while pending:
        name = pending.pop()
        if name in members:
            continue
        members[name] = functions[name]
        for op in walk_ops(functions[name], _names_symbols):
            for attr_name, attr in op.attributes.items():
                inlined = op.name in CALL_OPS and attr_name == "f"
                named = [n for n in _symbols(attr) if n in functions]
                (pending if inlined else traced).extend(named)
    return list(members.values()), traced


def _names_symbols(op: ir.Operation) -> bool:
    return any(_symbols(attr) for _, attr in op.attributes.items())


def _symbols(attr: ir.Attribute) -> list[str]:
    """The symbols a function attribute (a symbol, or a list of them) names."""
    if isinstance(attr, ir.FlatSymbolRefAttr):
        return [attr.value]
    if isinstance(attr, ir.ArrayAttr):
        return [name for element in attr for name in _symbols(element)]
    return []


def _variable_name(node_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node_name)


def _signature_function(builder: _Builder, fn: ir.Operation, name: str,
                        extra_outputs: dict[str, tf.Tensor] | None = None):
    output_names = _arg_names(fn, OUTPUT_NAME, name)
    output_types = _declared_output_types(fn)
    specs = _input_specs(fn, name)

    def body(*args):
        results = builder.build(name, args)
        outputs = {key: _with_declared_shape(t, declared, key)
                   for key, t, declared in zip(output_names, results, output_types)}
        return {**outputs, **(extra_outputs or {})}

    return tf.function(body, input_signature=specs, autograph=False)


def _input_specs(fn: ir.Operation, name: str) -> list[tf.TensorSpec]:
    return [tf_attrs.tensor_spec(t, n) for t, n in zip(_function_type(fn).inputs, _arg_names(fn, INPUT_NAME, name))]


def _with_declared_shape(tensor: tf.Tensor, declared: ir.Type | None, key: str) -> tf.Tensor:
    """The output tensor, typed with the shape the input model's signature declared.

    PlaceholderWithDefault passes its input through (grappler makes it an Identity) and has the
    shape of its attribute, wider or narrower than what shape inference found for the input.
    """
    found = tensor.shape.as_list() if tensor.shape.rank is not None else None
    shape = tf_attrs.shape_of(declared) if declared is not None else found
    if shape == found:
        return tf.identity(tensor, name=_variable_name(key))
    return tf.raw_ops.PlaceholderWithDefault(input=tensor, shape=shape, name=_variable_name(key))


def to_concrete_function(module: ir.Module, signature: str, hook: OpHook | None = None,
                         extra_outputs: dict[str, tf.Tensor] | None = None):
    """A ConcreteFunction that runs `signature` of `module` in TensorFlow.

    Takes the signature's inputs (positionally, in its input signature's order: keywords first
    fail TensorFlow's structured binding, which is slow); returns a dict keyed by its outputs,
    plus whatever `hook` put into `extra_outputs` while the function was traced.
    Constants over `LARGE_CONSTANT` elements are variables, not graph constants, so that a model
    past 2 GB runs too.
    """
    fn, builder = _running_builder(module, signature, hook)
    return _signature_function(builder, fn, signature, extra_outputs).get_concrete_function()


def module_tracer(module: ir.Module, signature: str, hook: OpHook | None = None):
    """`(input_specs, build)`: the signature's input TensorSpecs, and `build(name, args)`, which emits
    function `name` of `module` into the graph being traced (calls inlined, `hook` consulted for each
    op) and returns its results. For tracing the module more than once into one tf.function."""
    fn, builder = _running_builder(module, signature, hook)
    return _input_specs(fn, signature), builder.build


def _running_builder(module: ir.Module, signature: str, hook: OpHook | None) -> tuple[ir.Operation, _Builder]:
    """The signature's function and a builder for running it (large constants as variables)."""
    functions = symbol_table(module)
    if signature not in functions:
        raise ValueError(f"module has no function @{signature}; it has {signature_names(module)}")
    return functions[signature], _Builder(functions, _Weights(module, LARGE_CONSTANT), hook)


def export_saved_model(module: ir.Module, output_dir: str, signature_keys: Sequence[str] | None = None,
                       tags: Sequence[str] | None = None, variable_threshold: int | None = VARIABLE_THRESHOLD,
                       keep_variables: bool = False) -> None:
    """Write the signatures of `module` (default: all public functions) as a SavedModel.

    Signature keys, input and output names, dtypes and shapes are those the importer recorded.
    `variable_threshold=None` keeps every constant in the graph while they fit (no checkpoint);
    `keep_variables` makes the constants read from variables variables again.
    """
    keys = list(signature_keys) if signature_keys else signature_names(module)
    functions = symbol_table(module)
    unknown = [k for k in keys if k not in functions]
    if unknown:
        raise ValueError(f"module has no signature function @{unknown[0]}; it has {signature_names(module)}")
    if tags is None:
        tags = ([ir.StringAttr(t).value for t in ir.ArrayAttr(module.operation.attributes[TAGS])]
                if TAGS in module.operation.attributes else [tf.saved_model.SERVING])
    root = _Module()
    variables = _Weights(module, variable_threshold, keep_variables, exported=keys)
    builder = _Builder(functions, variables, None)
    signatures = {}
    # Tracing If/While branches builds symbol attributes, which need the module's context.
    with module.context:
        for key in keys:
            function = _signature_function(builder, functions[key], key)
            signatures[key] = function.get_concrete_function()
    root.weights = list(variables.stored.values())
    os.makedirs(output_dir, exist_ok=True)
    tf.saved_model.save(root, output_dir, signatures=signatures,
                        options=tf.saved_model.SaveOptions(save_debug_info=False))
    compact_saved_model(output_dir, tags, has_variables=bool(variables.stored))


def evaluate(ops: Sequence[ir.Operation], fetches: Sequence[ir.Value]) -> list[np.ndarray]:
    """Run `ops` (in order) in TensorFlow and return the values of `fetches`.

    Operands not produced by `ops` must be defined by tf.Const ops. Used to fold constants.
    """
    builder = _Builder({}, None, None)
    graph = tf.Graph()
    env: dict[ir.Value, tf.Tensor] = {}
    with graph.as_default():
        def tensor(value: ir.Value) -> tf.Tensor:
            if value not in env:
                env[value] = builder._emit(value.owner.operation, [], graph)[0]
            return env[value]
        for op in ops:
            env.update(zip(op.results, builder._emit(op, [tensor(v) for v in op.operands], graph)))
        fetched = [env[v] for v in fetches]
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(fetched)


def signature_input_specs(module: ir.Module) -> dict[str, dict[str, tuple[np.dtype, tuple[int | None, ...] | None]]]:
    """{signature: {input name: (numpy dtype, shape)}} of a module's signature functions."""
    functions = symbol_table(module)
    specs = {}
    for name in signature_names(module):
        fn = functions[name]
        types = _function_type(fn).inputs
        specs[name] = {}
        for input_name, value_type in zip(_arg_names(fn, INPUT_NAME, name), types):
            shape = tf_attrs.shape_of(value_type)
            dtype = tf_attrs.dtype_of(ir.ShapedType(value_type).element_type).as_numpy_dtype
            specs[name][input_name] = (np.dtype(dtype), tuple(shape) if shape is not None else None)
    return specs
