"""The TFLite quantization core end to end: TensorFlow's float flatbuffer in, each mode's quantized
flatbuffer out, run in the LiteRT interpreter and checked against the float model.

`quantize_flatbuffer` is what `tfquant.lite.TFLiteConverter.convert()` calls after TensorFlow's
float conversion; the API's own tests (test_lite_api.py) cover its settings and errors.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as fb

from tfquant.lite._convert import LiteQuantization, quantize_flatbuffer
from tfquant.lite._litert import interpreter, signatures, sqnr_db
from tfquant.mlir import CompileError
from tfquant.passes import _op_specs

SHAPE = (16, 16, 3)
OPS = {value: name for name, value in vars(fb.BuiltinOperator).items() if not name.startswith("_")}
TYPES = {value: name for name, value in vars(fb.TensorType).items() if not name.startswith("_")}


def _cnn() -> tf.keras.Model:
    """Conv+ReLU, depthwise, a residual add, max pool, concat, mean, dense, softmax."""
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input(SHAPE, name="image")
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    y = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.Add()([x, y])
    x = tf.keras.layers.MaxPooling2D()(x)
    x = tf.keras.layers.Concatenate()([x, tf.keras.layers.Conv2D(4, 1)(x)])
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(10)(x)
    return tf.keras.Model(image, tf.keras.layers.Softmax()(x))


def _samples(count: int, seed: int = 1) -> list[tuple[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    return [("serving_default", {"image": rng.uniform(-1, 1, (1, *SHAPE)).astype(np.float32)})
            for _ in range(count)]


@pytest.fixture(scope="module")
def keras_cnn() -> tf.keras.Model:
    return _cnn()


@pytest.fixture(scope="module")
def float_model(keras_cnn) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(keras_cnn).convert()


def _tensorflow_int8(keras_model: tf.keras.Model) -> bytes:
    """TensorFlow's converter's full-integer model of the same network and samples."""
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([inputs["image"]] for _, inputs in _samples(64))
    return converter.convert()


@pytest.fixture(scope="module")
def held_out() -> list[dict[str, np.ndarray]]:
    return [inputs for _, inputs in _samples(16, seed=7)]


def _model(buffer: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromPackedBuf(bytearray(buffer), 0)


def _ops(model: fb.ModelT) -> list[tuple[str, fb.OperatorT]]:
    def name(op):
        code = model.operatorCodes[op.opcodeIndex]
        return OPS[max(code.builtinCode, code.deprecatedBuiltinCode)]
    return [(name(op), op) for op in model.subgraphs[0].operators]


def _sqnr(float_model: bytes, model: bytes, inputs: list[dict[str, np.ndarray]]) -> float:
    expected = signatures(interpreter(float_model))["serving_default"]
    got = signatures(interpreter(model))["serving_default"]
    reference = [next(iter(expected.run(x).values())) for x in inputs]
    return sqnr_db(reference, [next(iter(got.run(x).values())) for x in inputs])


def _quantize(float_model: bytes, **settings) -> tuple[bytes, object]:
    samples = settings.pop("samples", _samples(64))
    return quantize_flatbuffer(float_model, LiteQuantization(**settings), samples)


def test_full_integer_with_float_io_is_close_to_float(keras_cnn, float_model, held_out):
    model, report = _quantize(float_model, method="static")
    assert _sqnr(float_model, model, held_out) > 30.0
    assert report.ops_quantized["CONV_2D"] == 2 and report.ops_quantized["FULLY_CONNECTED"] == 1
    assert report.held_out_samples == 8 and report.calibration_samples == 64
    assert report.sqnr_db["serving_default/" + next(iter(report.sqnr_db)).split("/")[1]] > 30.0
    names = [name for name, _ in _ops(_model(model))]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    assert len(model) <= 1.02 * len(_tensorflow_int8(keras_cnn))


def test_int8_spec_holds_on_every_conv_and_fully_connected(float_model):
    model = _model(_quantize(float_model, method="static", integer_only=True)[0])
    tensors = model.subgraphs[0].tensors
    checked = 0
    for name, op in _ops(model):
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        activation, weight = (tensors[i] for i in op.inputs[:2])
        w = weight.quantization
        assert TYPES[weight.type] == "INT8" and not np.any(w.zeroPoint)
        values = np.frombuffer(bytes(model.buffers[weight.buffer].data), np.int8)
        assert values.min() >= -127, f"{name} weight holds -128"
        if op.inputs[2] >= 0:  # TensorFlow's float conversion drops an all-zero dense bias
            bias = tensors[op.inputs[2]]
            assert TYPES[bias.type] == "INT32"
            np.testing.assert_allclose(bias.quantization.scale, activation.quantization.scale[0] * np.asarray(w.scale),
                                       rtol=1e-6)
            checked += 1
    assert checked == 3


def test_integer_only_with_int8_io_has_no_float_tensor(float_model, held_out):
    model, _ = _quantize(float_model, method="static", integer_only=True, input_type="int8", output_type="int8")
    parsed = _model(model)
    types = {TYPES[t.type] for t in parsed.subgraphs[0].tensors}
    assert types <= {"INT8", "INT32"}, types
    details = signatures(interpreter(model))["serving_default"]
    (image,), (output,) = details.inputs.values(), details.outputs.values()
    assert image["dtype"] == np.int8 and output["dtype"] == np.int8
    # Softmax's fixed output parameters.
    assert output["quantization"] == (1 / 256, -128)
    assert _sqnr(float_model, model, held_out) > 30.0


def test_uint8_io_requantizes_at_the_edges(float_model, held_out):
    model, _ = _quantize(float_model, method="static", integer_only=True, input_type="uint8", output_type="uint8")
    names = [name for name, _ in _ops(_model(model))]
    assert names[0] == "QUANTIZE" and names[-1] == "QUANTIZE"
    details = signatures(interpreter(model))["serving_default"]
    (image,), (output,) = details.inputs.values(), details.outputs.values()
    assert image["dtype"] == np.uint8 and output["dtype"] == np.uint8
    assert output["quantization"] == (1 / 256, 0)
    assert _sqnr(float_model, model, held_out) > 30.0


def test_16x8_has_int16_activations_and_int64_biases(float_model, held_out):
    model, _ = _quantize(float_model, method="static", activation_bits=16, integer_only=True)
    parsed = _model(model)
    tensors = parsed.subgraphs[0].tensors
    for name, op in _ops(parsed):
        if name == "CONV_2D":
            activation, _, bias = (tensors[i] for i in op.inputs[:3])
            assert TYPES[activation.type] == "INT16" and activation.quantization.zeroPoint[0] == 0
            assert TYPES[bias.type] == "INT64"
    int8 = _quantize(float_model, method="static")[0]
    assert _sqnr(float_model, model, held_out) > _sqnr(float_model, int8, held_out) + 6.0


def test_dynamic_range_keeps_float_activations(float_model, held_out):
    model, report = _quantize(float_model, method="dynamic_range", samples=None)
    parsed = _model(model)
    tensors = parsed.subgraphs[0].tensors
    # Only weights of at least 1024 elements are quantized (TensorFlow's rule): none in this model.
    assert not report.ops_quantized
    assert all(TYPES[t.type] != "INT8" for t in tensors)
    wide = tf.keras.Sequential([tf.keras.Input((64,)), tf.keras.layers.Dense(32)])
    wide_float = tf.lite.TFLiteConverter.from_keras_model(wide).convert()
    wide_model, wide_report = _quantize(wide_float, method="dynamic_range", samples=None)
    assert wide_report.ops_quantized == {"FULLY_CONNECTED": 1}
    (name, op), = _ops(_model(wide_model))
    assert op.builtinOptions.asymmetricQuantizeInputs
    x = np.random.default_rng(0).normal(size=(4, 64)).astype(np.float32)
    float_signature = signatures(interpreter(wide_float))["serving_default"]
    (name,) = float_signature.inputs
    got = signatures(interpreter(wide_model))["serving_default"].run({name: x})
    assert sqnr_db(float_signature.run({name: x}).values(), got.values()) > 30.0


def test_float16_halves_the_weights(keras_cnn, float_model, held_out):
    model, _ = _quantize(float_model, method="float16", samples=None)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_cnn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    assert len(model) <= 1.02 * len(converter.convert())
    assert "DEQUANTIZE" in {name for name, _ in _ops(_model(model))}
    assert _sqnr(float_model, model, held_out) > 60.0


@pytest.mark.parametrize("fill", ["zeros", "low", "high"])
def test_extreme_inputs_give_finite_outputs(float_model, fill):
    model, _ = _quantize(float_model, method="static", integer_only=True)
    value = {"zeros": 0.0, "low": -1.0, "high": 1.0}[fill]
    outputs = signatures(interpreter(model))["serving_default"].run({"image": np.full((1, *SHAPE), value, np.float32)})
    assert all(np.all(np.isfinite(v)) for v in outputs.values())


def _log_front_end() -> bytes:
    """log(x * x + eps) / (mean + eps): a silent input must not divide by zero."""
    x = tf.keras.Input((32,), name="audio")
    energy = tf.keras.layers.Dense(16)(x)
    power = tf.keras.layers.Lambda(lambda t: tf.math.log(t * t + 1e-6))(energy)
    mean = tf.keras.layers.Lambda(lambda t: tf.reduce_mean(tf.abs(t), axis=-1, keepdims=True) + 1e-3)(energy)
    normalized = tf.keras.layers.Lambda(lambda ts: ts[0] / ts[1])([power, mean])
    return tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(x, normalized)).convert()


def test_silent_input_does_not_divide_by_zero():
    float_model = _log_front_end()
    rng = np.random.default_rng(0)
    samples = [("serving_default", {"audio": rng.normal(size=(1, 32)).astype(np.float32)}) for _ in range(32)]
    model, report = quantize_flatbuffer(float_model, LiteQuantization("static"), samples)
    outputs = signatures(interpreter(model))["serving_default"].run({"audio": np.zeros((1, 32), np.float32)})
    assert all(np.all(np.isfinite(v)) for v in outputs.values())
    assert any("where int8 rounding could turn a small value into 0" in reason for _, _, reason in report.float_reasons)


def test_integer_only_refuses_an_op_it_cannot_quantize():
    float_model = _log_front_end()
    samples = [("serving_default", {"audio": np.ones((1, 32), np.float32)})]
    with pytest.raises(CompileError, match="LOG cannot be quantized .*integer-only mode leaves no op float"):
        quantize_flatbuffer(float_model, LiteQuantization("static", integer_only=True), samples)


def test_bad_datasets_are_errors_naming_the_problem(float_model):
    with pytest.raises(ValueError, match="has no samples"):
        quantize_flatbuffer(float_model, LiteQuantization("static"), [])
    with pytest.raises(ValueError, match="needs a representative dataset"):
        quantize_flatbuffer(float_model, LiteQuantization("static"), None)
    with pytest.raises(ValueError, match="input 'image' has shape"):
        quantize_flatbuffer(float_model, LiteQuantization("static"),
                            [("serving_default", {"image": np.zeros((1, 8, 8, 3), np.float32)})])
    with pytest.raises(ValueError, match="signature 'other'"):
        quantize_flatbuffer(float_model, LiteQuantization("static"),
                            [("other", {"image": np.zeros((1, *SHAPE), np.float32)})])


def test_qat_model_converts_with_its_trained_ranges_and_no_dataset(tmp_path):
    class Trained(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
        def __call__(self, x):
            x = tf.quantization.fake_quant_with_min_max_vars(x, -1.0, 1.0)
            w = tf.quantization.fake_quant_with_min_max_vars_per_channel(self.w, -2 * tf.ones(4), 2 * tf.ones(4),
                                                                         narrow_range=True)
            y = tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))
            return {"y": tf.quantization.fake_quant_with_min_max_vars(y, 0.0, 6.0)}

    module = Trained()
    tf.saved_model.save(module, str(tmp_path), signatures=module.__call__.get_concrete_function())
    float_model = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path)).convert()
    model, report = quantize_flatbuffer(float_model, LiteQuantization("static"), None)
    assert report.ops_quantized.get("CONV_2D") == 1 and report.calibration_samples == 0
    tensors = _model(model).subgraphs[0].tensors
    (_, conv), = [(n, op) for n, op in _ops(_model(model)) if n == "CONV_2D"]
    image, weight = tensors[conv.inputs[0]], tensors[conv.inputs[1]]
    np.testing.assert_allclose(image.quantization.scale, [2 / 255], rtol=1e-6)
    np.testing.assert_allclose(weight.quantization.scale, [4 / 254] * 4, rtol=1e-6)
    np.testing.assert_allclose(tensors[conv.outputs[0]].quantization.scale, [6 / 255], rtol=1e-6)


def test_dynamic_range_stores_embedding_tables_as_int8():
    tf.keras.utils.set_random_seed(0)
    tokens = tf.keras.Input((6,), dtype=tf.int32, name="tokens")
    x = tf.keras.layers.Embedding(512, 16)(tokens)
    model = tf.keras.Model(tokens, tf.keras.layers.Dense(4)(tf.keras.layers.Flatten()(x)))
    float_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    quantized, report = _quantize(float_model, method="dynamic_range", samples=None)
    assert report.ops_quantized.get("GATHER") == 1
    assert len(quantized) < 0.4 * len(float_model)
    ids = {"tokens": np.random.default_rng(0).integers(0, 512, (8, 6)).astype(np.int32)}
    expected = signatures(interpreter(float_model))["serving_default"].run(ids)
    got = signatures(interpreter(quantized))["serving_default"].run(ids)
    assert sqnr_db(expected.values(), got.values()) > 30.0


def test_integer_only_reads_shapes_of_quantized_tensors():
    """Flatten on a dynamic batch is SHAPE, STRIDED_SLICE, PACK and RESHAPE: SHAPE reads the int8 tensor."""
    tf.keras.utils.set_random_seed(0)  # a 4-channel random conv's SQNR ranges 17-33 dB with the seed (TF's alike)
    image = tf.keras.Input((6, 6, 2), name="image")
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(image)
    model = tf.keras.Model(image, tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(x)))
    float_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    rng = np.random.default_rng(0)
    samples = [("serving_default", {"image": rng.uniform(0, 1, (1, 6, 6, 2)).astype(np.float32)}) for _ in range(16)]
    quantized, _ = quantize_flatbuffer(float_model, LiteQuantization("static", integer_only=True), samples)
    assert "SHAPE" in {name for name, _ in _ops(_model(quantized))}
    inputs = [{"image": rng.uniform(0, 1, (1, 6, 6, 2)).astype(np.float32)} for _ in range(8)]
    assert _sqnr(float_model, quantized, inputs) > 25.0


def test_a_model_the_interpreter_refuses_is_an_error_not_an_output(monkeypatch):
    """The extreme-input check runs the quantized model: an op quantized to a form LiteRT cannot run
    (here forced: squared difference at 16 bits, which LiteRT has no kernel for) fails the conversion."""
    x = tf.keras.Input((8,), name="x")
    y = tf.keras.layers.Lambda(lambda t: tf.math.squared_difference(t, 0.5 * t))(tf.keras.layers.Dense(8)(x))
    float_model = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(x, y)).convert()
    rng = np.random.default_rng(0)
    samples = [("serving_default", {"x": rng.normal(size=(1, 8)).astype(np.float32)}) for _ in range(8)]
    model, report = quantize_flatbuffer(float_model, LiteQuantization("static", activation_bits=16), samples)
    assert any("no 16x8 kernel for SQUARED_DIFFERENCE" in reason for _, _, reason in report.float_reasons)
    forced = '[{"op_type": "SQUARED_DIFFERENCE", "method": "static", "activation_bits": 16}]'
    monkeypatch.setitem(_op_specs.TFL, "tfl.squared_difference", _op_specs.TflOp(activations=(0, 1)))
    with pytest.raises(CompileError, match="the quantized model fails to run .*SQUARED_DIFFERENCE"):
        quantize_flatbuffer(float_model, LiteQuantization("static", activation_bits=16), samples, units=forced)


@pytest.mark.parametrize("integer_only", [False, True])
def test_interface_is_tensorflows(keras_cnn, float_model, integer_only):
    """What a caller of the model sees (signature keys, input and output names, dtypes, shapes with
    their dynamic dimensions) is what TensorFlow's converter gives for the same settings."""
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_cnn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([inputs["image"]] for _, inputs in _samples(64))
    settings = {"method": "static"}
    if integer_only:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        settings.update(integer_only=True, input_type="int8", output_type="int8")
    theirs, ours = converter.convert(), _quantize(float_model, **settings)[0]

    def interface(model: bytes) -> dict:
        it = interpreter(model)
        seen = {}
        for key in it.get_signature_list():
            runner = it.get_signature_runner(key)
            seen[key] = {side: {name: (np.dtype(d["dtype"]), tuple(d["shape"]), tuple(d["shape_signature"]))
                                for name, d in details.items()}
                         for side, details in (("inputs", runner.get_input_details()),
                                               ("outputs", runner.get_output_details()))}
        return seen

    assert interface(ours) == interface(theirs)
