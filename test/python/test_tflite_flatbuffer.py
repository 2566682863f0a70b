"""tfquant.tflite_flatbuffer: converted Keras models survive import + export unchanged.

Each model is converted once per module (float, full-integer int8, float16, 16x8, two signatures
with IF/WHILE subgraphs). A round trip must give a model the LiteRT interpreter runs with identical
outputs and identical signatures, and the same operators, options, tensors, quantization
parameters, buffers and metadata (compared on the unpacked flatbuffers, tensor indices aside).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils

from tfquant.mlir import CompileError, ir, module_funcs, name_of, new_context
from tfquant.passes._quant import tensor_params
from tfquant.passes._tfq import CalibrationPointOp
from tfquant.tflite_flatbuffer import (export_flatbuffer, export_flatbuffer_with_tensors, import_flatbuffer,
                                       options_of, set_option)

KINDS = ("float", "int8", "float16", "16x8", "signatures")


# --- models ------------------------------------------------------------------------------------------


def _cnn() -> tf.keras.Model:
    """Conv, depthwise, 1x1 conv, add, concat, reshape, dense, softmax; a dynamic batch."""
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((8, 8, 3), name="image")
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    y = tf.keras.layers.Conv2D(4, 1)(x)
    x = tf.keras.layers.Concatenate()([tf.keras.layers.Add()([x, y]), y])
    x = tf.keras.layers.Reshape((-1,))(x)
    return tf.keras.Model(image, tf.keras.layers.Softmax()(tf.keras.layers.Dense(5)(x)))


def _representative_dataset():
    rng = np.random.default_rng(0)
    for _ in range(8):
        yield [rng.normal(size=(1, 8, 8, 3)).astype(np.float32)]


def _convert_cnn(kind: str) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(_cnn())
    if kind != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "int8":
        converter.representative_dataset = _representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    elif kind == "16x8":
        converter.representative_dataset = _representative_dataset
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    elif kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _convert_signatures(directory: str) -> bytes:
    """Two signatures: "affine" (two inputs, two outputs) and "loop" (tf.cond and tf.while_loop)."""
    module = tf.Module()
    module.w = tf.Variable(np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                  tf.TensorSpec([None, 3], tf.float32, name="b")])
    def affine(x, b):
        y = tf.matmul(x, module.w)
        return {"sum": y + b, "product": y * b}

    @tf.function(input_signature=[tf.TensorSpec([2, 4], tf.float32, name="z")])
    def loop(z):
        y = tf.cond(tf.reduce_sum(z) > 0, lambda: z * 2.0, lambda: z - 1.0)
        _, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 0.5 + 1.0), [tf.constant(0), y])
        return {"out": tf.matmul(y, module.w)}

    module.affine, module.loop = affine, loop
    tf.saved_model.save(module, directory, signatures={"affine": affine, "loop": loop})
    return tf.lite.TFLiteConverter.from_saved_model(directory, signature_keys=["affine", "loop"]).convert()


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory):
    """`tflite_model(kind) -> bytes`, each kind converted once."""
    cache: dict[str, bytes] = {}

    def get(kind: str) -> bytes:
        if kind not in cache:
            cache[kind] = (_convert_signatures(str(tmp_path_factory.mktemp("signatures"))) if kind == "signatures"
                           else _convert_cnn(kind))
        return cache[kind]

    return get


def _round_trip(model: bytes) -> bytes:
    return export_flatbuffer(import_flatbuffer(model, new_context()))


# --- what must survive -----------------------------------------------------------------------------


def _plain(value: object) -> object:
    """Numpy arrays as lists, bytes as bytes: values that compare with ==."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _describe(model: bytes) -> dict:
    """Everything a TFLite model says, with tensors described in place of their indices."""
    flat = flatbuffer_utils.read_model_from_bytearray(model)

    def tensor(subgraph: schema.SubGraphT, index: int) -> tuple | None:
        if index < 0:
            return None
        t = subgraph.tensors[index]
        q = t.quantization
        scaled = q is not None and q.scale is not None and len(q.scale) > 0
        data = flat.buffers[t.buffer].data
        shape = _plain(t.shape) or []
        return (t.name, t.type, shape, _plain(t.shapeSignature) or shape,
                _plain(q.scale) if scaled else [], _plain(q.zeroPoint) if scaled else [],
                q.quantizedDimension if scaled else 0, bytes(data) if data is not None else b"", t.isVariable)

    def options(table: object | None) -> tuple | None:
        return None if table is None else (type(table).__name__, {k: _plain(v) for k, v in vars(table).items()})

    def operator(subgraph: schema.SubGraphT, op: schema.OperatorT) -> tuple:
        code = flat.operatorCodes[op.opcodeIndex]
        return (flatbuffer_utils.get_builtin_code_from_operator_code(code), code.customCode, code.version,
                options(op.builtinOptions), options(op.builtinOptions2), _plain(op.customOptions),
                op.customOptionsFormat, _plain(op.mutatingVariableInputs), [tensor(subgraph, i) for i in op.inputs],
                [tensor(subgraph, i) for i in op.outputs], [tensor(subgraph, i) for i in op.intermediates or []])

    return {
        "version": flat.version,
        "description": flat.description,
        "subgraphs": [(sg.name, [tensor(sg, i) for i in sg.inputs], [tensor(sg, i) for i in sg.outputs],
                       [operator(sg, op) for op in sg.operators]) for sg in flat.subgraphs],
        "signatures": [(s.signatureKey, s.subgraphIndex,
                        [(m.name, tensor(flat.subgraphs[s.subgraphIndex], m.tensorIndex)) for m in s.inputs],
                        [(m.name, tensor(flat.subgraphs[s.subgraphIndex], m.tensorIndex)) for m in s.outputs])
                       for s in flat.signatureDefs or []],
        "metadata": {m.name: bytes(flat.buffers[m.buffer].data) for m in flat.metadata or []},
    }


def _without_index(details: dict) -> dict:
    """Tensor details as comparable text, without the tensor index (an export numbers tensors anew)."""
    return {k: str(v) for k, v in details.items() if k != "index"}


def _feeds(runner, offset: float) -> dict[str, np.ndarray]:
    """Random inputs for a signature (a dynamic batch of 2), shifted by `offset` so both IF branches run."""
    rng = np.random.default_rng(7)
    feeds = {}
    for name, detail in runner.get_input_details().items():
        shape = [2 if d < 0 else d for d in detail["shape_signature"]]
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            feeds[name] = (rng.normal(size=shape) + offset).astype(dtype)
        else:
            feeds[name] = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, size=shape, dtype=dtype)
    return feeds


# --- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_keeps_the_model(tflite_model, kind):
    original = tflite_model(kind)
    exported = _round_trip(original)
    assert _describe(exported) == _describe(original)

    before, after = Interpreter(model_content=original), Interpreter(model_content=exported)
    assert after.get_signature_list() == before.get_signature_list()
    for key in before.get_signature_list():
        expected, actual = before.get_signature_runner(key), after.get_signature_runner(key)
        for getter in ("get_input_details", "get_output_details"):
            assert ({n: _without_index(d) for n, d in getattr(actual, getter)().items()} ==
                    {n: _without_index(d) for n, d in getattr(expected, getter)().items()})
        for offset in (3.0, -3.0):
            feeds = _feeds(expected, offset)
            want, got = expected(**feeds), actual(**feeds)
            assert want.keys() == got.keys()
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
    # Every tensor, by name: type, shapes and quantization parameters.
    assert ({d["name"]: _without_index(d) for d in after.get_tensor_details()} ==
            {d["name"]: _without_index(d) for d in before.get_tensor_details()})


def test_float_model_ir(tflite_model):
    ctx = new_context()
    module = import_flatbuffer(tflite_model("float"), ctx)
    attributes = module.operation.attributes
    assert ir.IntegerAttr(attributes["tfl.schema_version"]).value == 3
    assert ir.StringAttr(attributes["tfl.description"]).value == "MLIR Converted."
    assert str(ir.DictAttr(attributes["tfl.metadata"])["min_runtime_version"].type) == "tensor<16xui8>"
    [main] = module_funcs(module)
    assert ir.StringAttr(main.attributes["sym_name"]).value == "main"
    assert ir.StringAttr(main.attributes["tfl.signature_key"]).value == "serving_default"
    assert [ir.StringAttr(s).value for s in main.attributes["tfl.signature_inputs"]] == ["image"]
    assert [ir.StringAttr(s).value for s in main.attributes["tfl.signature_outputs"]] == ["output_0"]
    assert str(main.attributes["arg_attrs"]) == '[{tfl.name = "serving_default_image:0"}]'
    assert str(main.attributes["function_type"]) == "(tensor<?x8x8x3xf32>) -> tensor<?x5xf32>"
    ops = [op.operation for op in main.regions[0].blocks[0].operations]
    conv = next(op for op in ops if op.name == "tfl.conv_2d")
    assert options_of(conv) == {"padding": 1, "strideW": 1, "strideH": 1, "fusedActivationFunction": 1,
                                "dilationWFactor": 1, "dilationHFactor": 1, "quantizedBiasType": 0}
    assert ir.StringAttr(conv.attributes["tfl.options"]).value == "Conv2DOptions"
    assert str(conv.attributes["padding"]) == "1 : i32"
    assert ir.IntegerAttr(conv.attributes["tfl.version"]).value == 1
    # Keras numbers its layer names per process ("functional_7_1/conv2d_6_1"), so only their form is fixed.
    assert re.fullmatch(r"(functional\w*)/(conv2d\w*)/Relu;\1/\2/convolution", name_of(conv.location))
    assert str(conv.operands[0].type) == "tensor<?x8x8x3xf32>" and str(conv.results[0].type) == "tensor<?x6x6x4xf32>"
    weight = conv.operands[1].owner.operation
    assert weight.name == "tfl.pseudo_const" and str(weight.results[0].type) == "tensor<4x3x3x3xf32>"
    assert np.asarray(weight.attributes["value"]).dtype == np.float32
    dense = next(op for op in ops if op.name == "tfl.fully_connected")
    assert str(dense.operands[2].owner.operation).endswith('= "tfl.no_value"() {value} : () -> none')
    # Every use comes after its definition; each constant is one op.
    assert module.operation.verify()
    names = [name_of(op.location) for op in ops if op.name == "tfl.pseudo_const"]
    assert len(names) == len(set(names))


def test_quantized_model_ir(tflite_model):
    ctx = new_context()
    module = import_flatbuffer(tflite_model("int8"), ctx)
    ops = [op.operation for op in module_funcs(module)[0].regions[0].blocks[0].operations]
    conv = next(op for op in ops if op.name == "tfl.conv_2d")
    weight, bias = (conv.operands[i].owner.operation for i in (1, 2))
    assert weight.name == bias.name == "tfl.pseudo_qconst"
    # Per-axis int8 weights, narrow as TFLite's weights are; the storage is the value's type.
    assert str(weight.results[0].type).startswith("tensor<4x3x3x3x!quant.uniform<i8<-127:127>:f32:0, {")
    assert ir.TypeAttr(weight.attributes["qtype"]).value == weight.results[0].type
    assert str(weight.attributes["value"].type) == "tensor<4x3x3x3xi8>"
    assert str(bias.results[0].type).startswith("tensor<4x!quant.uniform<i32:f32:0, {")
    assert str(conv.operands[0].type).startswith("tensor<?x8x8x3x!quant.uniform<i8:f32, ")


def test_64_bit_bias_has_an_i32_quant_type_and_i64_values(tflite_model):
    """MLIR's quant types stop at 32 bits: the 16x8 mode's int64 biases carry their scales in an i32
    quant type; their `value` holds the int64 storage, and export writes an INT64 tensor from it."""
    ctx = new_context()
    module = import_flatbuffer(tflite_model("16x8"), ctx)
    ops = [op.operation for op in module_funcs(module)[0].regions[0].blocks[0].operations]
    conv = next(op for op in ops if op.name == "tfl.conv_2d")
    bias = conv.operands[2]
    assert str(bias.type).startswith("tensor<4x!quant.uniform<i32:f32:0, {")
    assert ir.TypeAttr(bias.owner.operation.attributes["qtype"]).value == bias.type
    assert str(bias.owner.operation.attributes["value"].type) == "tensor<4xi64>"
    params = tensor_params(bias.type)
    assert (len(params.scales), params.zero_points, params.axis) == (4, (0,) * 4, 0)
    assert tensor_params(conv.operands[0].type).storage_bits == 16


def test_signatures_and_control_flow_subgraphs(tflite_model):
    ctx = new_context()
    module = import_flatbuffer(tflite_model("signatures"), ctx)
    functions = module_funcs(module)
    names = [ir.StringAttr(f.attributes["sym_name"]).value for f in functions]
    assert names[:2] == ["affine", "loop"] and len(names) == 6
    affine = functions[0]
    # Names in argument / result order, though the SignatureDef lists them sorted.
    assert [ir.StringAttr(s).value for s in affine.attributes["tfl.signature_inputs"]] == ["b", "x"]
    assert [ir.StringAttr(s).value for s in affine.attributes["tfl.signature_outputs"]] == ["sum", "product"]
    assert all("tfl.signature_key" not in f.attributes for f in functions[2:])
    ops = [op.operation for op in functions[1].regions[0].blocks[0].operations]
    branch = next(op for op in ops if op.name == "tfl.if")
    loop = next(op for op in ops if op.name == "tfl.while")
    branches = {options_of(branch)["thenSubgraphIndex"], options_of(branch)["elseSubgraphIndex"]}
    assert {names[i].split("_")[1] for i in branches} == {"true", "false"}
    assert (names[options_of(loop)["condSubgraphIndex"]], names[options_of(loop)["bodySubgraphIndex"]]) == \
        ("while_cond", "while_body")
    assert len(loop.results) == 2 and len(list(loop.attributes["tfl.result_names"])) == 2


def test_options_helpers_edit_what_export_writes(tflite_model):
    ctx = new_context()
    module = import_flatbuffer(tflite_model("float"), ctx)
    ops = [op.operation for op in module_funcs(module)[0].regions[0].blocks[0].operations]
    conv = next(op for op in ops if op.name == "tfl.conv_2d")
    set_option(conv, "fusedActivationFunction", schema.ActivationFunctionType.RELU6)
    set_option(conv, "dilationHFactor", None)  # back to the schema's default
    assert str(conv.attributes["fusedActivationFunction"]) == "3 : i32" and "dilationHFactor" not in conv.attributes
    with pytest.raises(ValueError, match="no option field 'fusedActivation'"):
        set_option(conv, "fusedActivation", 1)
    conv.attributes["tfl.version"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(32, ctx), 2)
    flat = flatbuffer_utils.read_model_from_bytearray(export_flatbuffer(module))
    convs = [op for op in flat.subgraphs[0].operators
             if flat.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.CONV_2D]
    first, second = convs
    assert first.builtinOptions.fusedActivationFunction == schema.ActivationFunctionType.RELU6
    assert first.builtinOptions.dilationHFactor == 1
    # Opcodes are deduplicated on (code, custom code, version): two CONV_2D versions, two opcodes.
    assert {flat.operatorCodes[op.opcodeIndex].version for op in convs} == {1, 2}
    assert first.opcodeIndex != second.opcodeIndex


# --- calibration points ------------------------------------------------------------------------------


def _add_points(function: ir.Operation) -> dict[int, str]:
    """A calibration point on the input and on each float op result; id -> the watched tensor's name."""
    block = function.regions[0].blocks[0]
    watched: dict[int, str] = {}
    targets: list[tuple[ir.Value, ir.InsertionPoint, str]] = [
        (block.arguments[0], ir.InsertionPoint(block.operations[0]), "serving_default_image:0")]
    for op in block.operations:
        op = op.operation
        if op.name in ("tfl.conv_2d", "tfl.depthwise_conv_2d", "tfl.add", "tfl.softmax"):
            targets.append((op.results[0], ir.InsertionPoint.after(op), name_of(op.location)))
    for point_id, (value, where, name) in enumerate(targets):
        with where:
            point = CalibrationPointOp.build(value, "min_max", 8, ir.Location.name(f"point{point_id}"))
        point.id = point_id
        value.replace_all_uses_except(point.result, point.operation)
        watched[point_id] = name
    return watched


def test_calibration_points_map_to_the_tensors_they_watch(tflite_model):
    original = tflite_model("float")
    ctx = new_context()
    module = import_flatbuffer(original, ctx)
    with ctx:
        watched = _add_points(module_funcs(module)[0])
    exported, tensors = export_flatbuffer_with_tensors(module)
    assert export_flatbuffer(module) == exported
    assert _describe(exported) == _describe(original)  # the points leave no trace
    assert sorted(tensors) == sorted(watched) and {sg for sg, _ in tensors.values()} == {0}

    image = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype(np.float32)
    values = {}
    for name, model in (("original", original), ("exported", exported)):
        interpreter = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
        interpreter.get_signature_runner("serving_default")(image=image)
        values[name] = interpreter
    by_name = {d["name"]: d["index"] for d in values["original"].get_tensor_details()}
    for point_id, (_, index) in tensors.items():
        assert values["exported"].get_tensor_details()[index]["name"] == watched[point_id]
        np.testing.assert_array_equal(values["exported"].get_tensor(index),
                                      values["original"].get_tensor(by_name[watched[point_id]]))
    np.testing.assert_array_equal(values["exported"].get_tensor(tensors[0][1]), image)


# --- hand-made models: what converters rarely write -------------------------------------------------


def _pack(flat: schema.ModelT) -> bytes:
    return bytes(flatbuffer_utils.convert_object_to_bytearray(flat))


def _tensor(name: str, tensor_type: int, shape: list[int], buffer: int = 0) -> schema.TensorT:
    tensor = schema.TensorT()
    tensor.name, tensor.type, tensor.shape, tensor.buffer, tensor.hasRank = name, tensor_type, shape, buffer, True
    return tensor


def _operator(flat: schema.ModelT, subgraph: schema.SubGraphT, builtin: int, inputs: list[int],
              output: schema.TensorT, custom_code: str | None = None) -> schema.OperatorT:
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.customCode = builtin, min(builtin, 127), custom_code
    flat.operatorCodes.append(code)
    subgraph.tensors.append(output)
    subgraph.outputs.append(len(subgraph.tensors) - 1)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = len(flat.operatorCodes) - 1, inputs, [len(subgraph.tensors) - 1]
    subgraph.operators.append(op)
    return op


def _hand_made_model() -> bytes:
    """Constants of many types (packed int4, bf16, ...) as subgraph outputs, and operators with what
    converters rarely write: a custom op, the second options union (int64 vectors), string options,
    a float-vector option, a resource tensor. Never run, only round-tripped."""
    rng = np.random.default_rng(5)
    T = schema.TensorType
    constants = [
        ("i4_odd", T.INT4, [5], np.array([0x21, 0xF3, 0x08], np.uint8)),        # 1, 2, 3, -1, -8
        ("i4_big", T.INT4, [300], rng.integers(0, 256, 150, dtype=np.uint8)),    # printed as hex by MLIR
        ("bf16_small", T.BFLOAT16, [4], np.array([0x3FC0, 0x7FC0, 0xFF80, 0x3DCD], np.uint16)),
        ("bf16_big", T.BFLOAT16, [2, 100], rng.integers(0, 2 ** 16, 200, dtype=np.uint16)),
        ("bool", T.BOOL, [3], np.array([1, 0, 1], np.uint8)),
        ("u8", T.UINT8, [2, 2], np.array([0, 1, 254, 255], np.uint8)),
        ("i16", T.INT16, [3], np.array([-32768, 0, 32767], np.int16)),
        ("f16_scalar", T.FLOAT16, [], np.array(1.5, np.float16)),
        ("splat", T.FLOAT32, [2, 3], np.full(6, 0.25, np.float32)),
        ("empty", T.INT32, [0], np.zeros(0, np.int32)),
    ]
    flat = schema.ModelT()
    flat.version = 3
    flat.buffers = [schema.BufferT()]
    subgraph = schema.SubGraphT()
    subgraph.name, subgraph.inputs, subgraph.operators, subgraph.tensors = "constants", [], [], []
    for name, tensor_type, shape, data in constants:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data.tobytes(), np.uint8)
        flat.buffers.append(buffer)
        subgraph.tensors.append(_tensor(name, tensor_type, shape, len(flat.buffers) - 1))
    subgraph.outputs = list(range(len(constants)))
    flat.subgraphs = [subgraph]
    flat.operatorCodes = []
    B = schema.BuiltinOperator
    custom = _operator(flat, subgraph, B.CUSTOM, [5], _tensor("custom_out", T.FLOAT32, [2, 2]), "TfqTestOp")
    custom.customOptions = np.array([1, 2, 3], np.uint8)
    transpose = _operator(flat, subgraph, B.STABLEHLO_TRANSPOSE, [5], _tensor("transpose_out", T.UINT8, [2, 2]))
    transpose.builtinOptions2Type = schema.BuiltinOptions2.StablehloTransposeOptions
    transpose.builtinOptions2 = schema.StablehloTransposeOptionsT()
    transpose.builtinOptions2.permutation = np.array([1, 0], np.int64)
    handle = _operator(flat, subgraph, B.VAR_HANDLE, [], _tensor("handle", T.RESOURCE, []))
    handle.builtinOptionsType = schema.BuiltinOptions.VarHandleOptions
    handle.builtinOptions = schema.VarHandleOptionsT()
    handle.builtinOptions.container, handle.builtinOptions.sharedName = b"", b"state/variable"
    bucketize = _operator(flat, subgraph, B.BUCKETIZE, [8], _tensor("buckets", T.INT32, [2, 3]))
    bucketize.builtinOptionsType = schema.BuiltinOptions.BucketizeOptions
    bucketize.builtinOptions = schema.BucketizeOptionsT()
    bucketize.builtinOptions.boundaries = np.array([-0.5, 0.125, 2.0], np.float32)
    return _pack(flat)


def test_rare_constants_and_operators_round_trip():
    original = _hand_made_model()
    ctx = new_context()
    module = import_flatbuffer(original, ctx)
    function = module_funcs(module)[0]
    types = [str(t) for t in ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value).results]
    assert types == ["tensor<5xi4>", "tensor<300xi4>", "tensor<4xbf16>", "tensor<2x100xbf16>", "tensor<3xi1>",
                     "tensor<2x2xui8>", "tensor<3xi16>", "tensor<f16>", "tensor<2x3xf32>", "tensor<0xi32>",
                     "tensor<2x2xf32>", "tensor<2x2xui8>", "tensor<!tf_type.resource>", "tensor<2x3xi32>"]
    text = str(module)
    assert "dense<[1, 2, 3, -1, -8]> : tensor<5xi4>" in text
    assert ('{customOptionsFormat = 0 : i32, custom_code = "TfqTestOp", custom_options = dense<[1, 2, 3]> : '
            'tensor<3xui8>, tfl.version = 1 : i32} : (tensor<2x2xui8>) -> tensor<2x2xf32>') in text
    ops = {op.operation.name: op.operation for op in function.regions[0].blocks[0].operations}
    assert options_of(ops["tfl.stablehlo_transpose"]) == {"permutation": [1, 0]}
    assert ir.StringAttr(ops["tfl.stablehlo_transpose"].attributes["tfl.options2"]).value == \
        "StablehloTransposeOptions"
    assert options_of(ops["tfl.var_handle"]) == {"container": "", "sharedName": "state/variable"}
    assert options_of(ops["tfl.bucketize"]) == {"boundaries": [-0.5, 0.125, 2.0]}
    assert _describe(export_flatbuffer(module)) == _describe(original)


def _with_variable_bias_and_intermediate(model: bytes) -> bytes:
    """The float CNN with its dense layer's missing bias replaced by a variable tensor (zeros at run
    time, marked as mutated) and an int16-quantized intermediate tensor on its first convolution."""
    flat = flatbuffer_utils.read_model_from_bytearray(model)
    subgraph = flat.subgraphs[0]
    codes = [flatbuffer_utils.get_builtin_code_from_operator_code(flat.operatorCodes[op.opcodeIndex])
             for op in subgraph.operators]
    dense = subgraph.operators[codes.index(schema.BuiltinOperator.FULLY_CONNECTED)]
    variable = _tensor("dense_bias_variable", schema.TensorType.FLOAT32, [5])
    variable.isVariable = True
    intermediate = _tensor("conv_intermediate", schema.TensorType.INT16, [])
    intermediate.quantization = schema.QuantizationParametersT()
    intermediate.quantization.scale = np.array([0.5], np.float32)
    intermediate.quantization.zeroPoint = np.array([0], np.int64)
    subgraph.tensors += [variable, intermediate]
    dense.inputs = [*dense.inputs[:2], len(subgraph.tensors) - 2]
    dense.mutatingVariableInputs = [False, False, True]
    subgraph.operators[codes.index(schema.BuiltinOperator.CONV_2D)].intermediates = [len(subgraph.tensors) - 1]
    return _pack(flat)


def test_variable_tensors_and_intermediates_round_trip(tflite_model):
    original = _with_variable_bias_and_intermediate(tflite_model("float"))
    ctx = new_context()
    module = import_flatbuffer(original, ctx)
    text = str(module)
    assert '"tfl.pseudo_const"() {tfl.is_variable, value = dense<0.000000e+00> : tensor<5xf32>}' in text
    assert 'tfl.intermediates = [{name = "conv_intermediate", type = tensor<!quant.uniform<i16:f32, 5.000000e-01>>}]' \
        in text
    exported = export_flatbuffer(module)
    assert _describe(exported) == _describe(original)
    image = np.random.default_rng(4).normal(size=(1, 8, 8, 3)).astype(np.float32)
    outputs = [Interpreter(model_content=m).get_signature_runner()(image=image) for m in (original, exported)]
    np.testing.assert_array_equal(outputs[1]["output_0"], outputs[0]["output_0"])


def _with_buffer_after_the_flatbuffer(model: bytes) -> bytes:
    """`model` with its largest buffer stored after the flatbuffer (by offset and size), as
    converters write models over 2 GB."""
    flat = flatbuffer_utils.read_model_from_bytearray(model)
    largest = max(flat.buffers, key=lambda b: 0 if b.data is None else len(b.data))
    data = bytes(largest.data)
    largest.data, largest.offset, largest.size = None, 1, len(data)  # a placeholder offset, to size the file
    offset = -(-len(_pack(flat)) // 16) * 16
    largest.offset = offset
    packed = _pack(flat)
    return packed + bytes(offset - len(packed)) + data


def test_reads_buffers_stored_after_the_flatbuffer(tflite_model):
    original = tflite_model("float")
    external = _with_buffer_after_the_flatbuffer(original)
    exported = _round_trip(external)
    assert _describe(exported) == _describe(original)
    image = np.random.default_rng(6).normal(size=(1, 8, 8, 3)).astype(np.float32)
    outputs = [Interpreter(model_content=m).get_signature_runner()(image=image) for m in (external, exported)]
    np.testing.assert_array_equal(outputs[1]["output_0"], outputs[0]["output_0"])


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    (b"garbage bytes, not a model", "not a TFLite flatbuffer"),
    (b"\x10\x00\x00\x00TFL3" + b"\xff" * 24, "corrupt TFLite flatbuffer"),
])
def test_bad_bytes_raise_value_error(data, message):
    with pytest.raises(ValueError, match=message):
        import_flatbuffer(data, new_context())


def test_sparse_tensors_are_refused(tflite_model):
    flat = flatbuffer_utils.read_model_from_bytearray(tflite_model("float"))
    subgraph = flat.subgraphs[0]
    weight = subgraph.tensors[subgraph.operators[0].inputs[1]]
    weight.sparsity = schema.SparsityParametersT()
    weight.sparsity.traversalOrder = [0, 1, 2, 3]
    with pytest.raises(CompileError, match=f"tensor '{weight.name.decode()}' is sparse"):
        import_flatbuffer(_pack(flat), new_context())


def test_quant_casts_and_foreign_ops_are_refused(tflite_model):
    ctx = new_context()
    module = import_flatbuffer(tflite_model("float"), ctx)
    ops = [op.operation for op in module_funcs(module)[0].regions[0].blocks[0].operations]
    softmax = next(op for op in ops if op.name == "tfl.softmax")
    quantized = ir.Type.parse("tensor<?x5x!quant.uniform<i8:f32, 0.00390625:-128>>", ctx)
    with ir.InsertionPoint.after(softmax), ir.Location.name("left_over_qcast", context=ctx):
        qcast = ir.Operation.create("quant.qcast", results=[quantized], operands=[softmax.results[0]])
        dcast = ir.Operation.create("quant.dcast", results=[softmax.results[0].type], operands=[qcast.results[0]])
    softmax.results[0].replace_all_uses_except(dcast.results[0], qcast)
    with pytest.raises(CompileError, match=r"'quant.qcast' cannot be written .*tfl.quantize") as error:
        export_flatbuffer(module)
    assert str(error.value).startswith('loc("left_over_qcast"): error:')
    dcast.results[0].replace_all_uses_with(softmax.results[0])
    dcast.erase()
    qcast.erase()
    with ir.InsertionPoint.after(softmax), ir.Location.name("relu", context=ctx):
        ir.Operation.create("tf.Relu", results=[softmax.results[0].type], operands=[softmax.results[0]])
    with pytest.raises(CompileError, match="'tf.Relu' cannot be written to a TFLite flatbuffer"):
        export_flatbuffer(module)
