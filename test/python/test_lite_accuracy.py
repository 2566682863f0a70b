"""The TFLite path's accuracy tools: the per-layer report (LiteReport.layers), fallback to a target
SQNR (target_sqnr), and 16-bit activations per unit between int8 ones, run in LiteRT.

The main model reads an input whose feature 0 holds rare outliers (300 where the rest is ~N(0, 1))
in calibration only; the first dense layer ignores that feature (zero weights), so only its input
quantization suffers: it is the one layer to blame.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as fb

from tfquant.accuracy.layers import INT8, INT16, OUTLIERS, PREPROCESSING, RANGE_MISMATCH
from tfquant.lite import TFLiteConverter
from tfquant.lite import _convert
from tfquant.lite._convert import HOLD_OUT_EVERY, LiteQuantization, quantize_flatbuffer
from tfquant.lite._litert import interpreter, signatures, sqnr_db
from tfquant.mlir import CompileError

STATIC = LiteQuantization("static")
OUTLIER = 300.0


def _dense_chain() -> tf.keras.Model:
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((8,), name="x")
    first = tf.keras.layers.Dense(16, activation="relu", name="first")
    h = first(x)
    h = tf.keras.layers.Dense(16, activation="relu", name="second")(h)
    model = tf.keras.Model(x, tf.keras.layers.Dense(4, name="third")(h))
    kernel, bias = first.get_weights()
    kernel[0] = 0.0  # the outlier feature does not reach the output
    first.set_weights([kernel, bias + 0.1])  # a zero bias would not be written
    return model


def _samples(count: int = 256, seed: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Outliers in feature 0 of every 5th calibration sample; the held-out ones (every 8th) have none."""
    rng = np.random.default_rng(seed)
    samples = [("serving_default", {"x": rng.normal(size=(1, 8)).astype(np.float32)}) for _ in range(count)]
    for index in range(0, count, 5):
        if index % HOLD_OUT_EVERY != HOLD_OUT_EVERY - 1:
            samples[index][1]["x"][0, 0] = OUTLIER
    return samples


@pytest.fixture(scope="module")
def keras_chain() -> tf.keras.Model:
    return _dense_chain()


@pytest.fixture(scope="module")
def chain(keras_chain) -> bytes:
    return tf.lite.TFLiteConverter.from_keras_model(keras_chain).convert()


@pytest.fixture(scope="module")
def int8_chain(chain):
    return quantize_flatbuffer(chain, STATIC, _samples())


def _unit(report, scope: str):
    """A dense layer of the chain, by its Keras name (the last one's tensor is the model's output)."""
    return report.layers[["first", "second", "third"].index(scope)]


def _fresh_sqnr(float_model: bytes, model: bytes) -> float:
    """SQNR on samples neither calibration nor the held-out set saw (no outliers)."""
    expected = signatures(interpreter(float_model))["serving_default"]
    got = signatures(interpreter(model))["serving_default"]
    inputs = [{"x": x} for _, x in ((k, s["x"]) for k, s in _samples(40, seed=5)) if abs(x[0, 0]) < 10]
    return sqnr_db([expected.run(i)["output_0"] for i in inputs], [got.run(i)["output_0"] for i in inputs])


def test_report_ranks_the_layer_fed_outliers_first(chain, int8_chain):
    _, report = int8_chain
    layers = report.layers
    assert layers.path == "tflite" and layers.held_out_samples == 32
    assert [layer.op_type for layer in layers.layers] == ["FULLY_CONNECTED"] * 3
    assert [layer.index for layer in layers.layers] == [0, 1, 2]
    first = _unit(layers, "first")
    assert layers.ranked()[0] is first
    # The first unit reads the model's input: alone or in the model, its error is the same.
    assert first.local_sqnr_db == pytest.approx(first.accumulated_sqnr_db, abs=0.01)
    assert first.local_sqnr_db < _unit(layers, "second").local_sqnr_db - 10
    # Calibration saw the outliers: the input range reaches 300 at one int8 step of ~1.2.
    assert first.input_range[1] == pytest.approx(OUTLIER, rel=0.01)
    outliers = [f for f in layers.findings if f.kind == OUTLIERS and f.where == "x"]
    assert len(outliers) == 1 and outliers[0].units == (first.name,)
    # The model SQNR is the report's (one twin, calibrated without the held-out samples).
    assert layers.model_sqnr_db["serving_default/output_0"] == pytest.approx(report.sqnr_db["serving_default/output_0"])


def test_clipped_counts_held_out_values_outside_the_calibrated_range(chain):
    samples = _samples()
    held_out = [s["x"] for i, (_, s) in enumerate(samples) if i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1]
    held_out[0][0, 1] = -50.0   # below every calibrated value of x
    held_out[1][0, 2] = -60.0
    _, report = quantize_flatbuffer(chain, STATIC, samples)
    first = _unit(report.layers, "first")
    low, high = first.input_range
    step = (high - low) / 255
    expected = sum(int(np.count_nonzero((x < low - step / 2) | (x > high + step / 2))) for x in held_out)
    assert expected == 2
    output_low, output_high = first.output_range
    assert first.clipped >= expected and first.values == 32 * (8 + 16)
    assert output_low == pytest.approx(0.0, abs=1e-6) and output_high > 0


def _joining_and_log_model() -> bytes:
    """An add of two branches 1000x apart, and a log of a square that reaches zero."""
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((8,), name="x")
    small = tf.keras.layers.Dense(8, name="small")(x)
    large = tf.keras.layers.Dense(8, name="large", kernel_initializer=tf.keras.initializers.Constant(100.0))(x)
    joined = tf.keras.layers.Add(name="join")([small, large])
    logged = tf.keras.layers.Lambda(lambda t: tf.math.log(t * t + 1e-6), name="logpow")(small)
    model = tf.keras.Model(x, [joined, logged])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def test_range_mismatch_and_preprocessing_findings():
    samples = _samples()
    for _, sample in samples:
        sample["x"][0, 0] = 0.0   # no outliers here
    samples[7][1]["x"][:] = 0.0   # a held-out silent input: the log reads exactly 0 + eps
    _, report = quantize_flatbuffer(_joining_and_log_model(), STATIC, samples)
    findings = {f.kind: f for f in report.layers.findings}
    add = next(layer for layer in report.layers.layers if layer.op_type == "ADD")
    assert findings[RANGE_MISMATCH].where == add.name and findings[RANGE_MISMATCH].units == (add.name,)
    ratio = float(re.search(r"differ (\d+)x", findings[RANGE_MISMATCH].message).group(1))
    assert 100 <= ratio < 3000   # a constant 100 kernel against a Glorot one of ~0.3
    # The log reads x*x + 1e-6, which the silent held-out sample makes 1e-6 exactly.
    preprocessing = findings[PREPROCESSING]
    assert preprocessing.message.startswith("LOG reads values as small as 1e-06; one int8 step of their range is ")


def test_fallback_meets_a_target_int8_misses_with_the_one_layer_to_blame(chain, int8_chain):
    int8_model, int8_report = int8_chain
    target = 25.0
    assert int8_report.sqnr_db["serving_default/output_0"] < target
    model, report = quantize_flatbuffer(chain, STATIC, _samples(), target_sqnr=target)
    layers = report.layers
    assert report.sqnr_db["serving_default/output_0"] >= target
    assert layers.target_sqnr_db == target
    assert {layer.name: layer.kept_as for layer in layers.layers} == {
        _unit(layers, "first").name: INT16, _unit(layers, "second").name: INT8, _unit(layers, "third").name: INT8}
    assert layers.baseline_sqnr_db == pytest.approx(int8_report.sqnr_db)
    assert layers.applied["fallback"] > 10
    # The cost is exact: the size of the model with that unit alone at 16 bits against all int8.
    alone, _ = quantize_flatbuffer(chain, STATIC, _samples(),
                                   units=[{"node_name": ".*/first_1/.*", "method": "static_range_int16x8"}])
    first = _unit(layers, "first")
    assert first.size_cost_bytes == len(alone) - len(int8_model) > 0
    assert len(model) == len(alone)
    assert first.latency_cost_s is not None and report.fallback_latency_s is not None
    assert "target" in first.reason
    assert _fresh_sqnr(chain, model) > _fresh_sqnr(chain, int8_model) + 10


def test_fallback_runs_the_extremes_check_on_the_shipped_model(chain, monkeypatch):
    checked = []
    original = _convert._check_extremes

    def recording(float_model, model, input_ranges):
        checked.append(model)
        original(float_model, model, input_ranges)

    monkeypatch.setattr(_convert, "_check_extremes", recording)
    model, _ = quantize_flatbuffer(chain, STATIC, _samples(), target_sqnr=25.0)
    assert checked == [model]


def test_integer_only_falls_back_to_16_bits_and_refuses_a_target_it_cannot_meet(chain):
    integer_only = LiteQuantization("static", integer_only=True)
    _, report = quantize_flatbuffer(chain, integer_only, _samples(), target_sqnr=25.0)
    assert not report.ops_float
    assert [layer.kept_as for layer in report.layers.layers] == [INT16, INT8, INT8]
    with pytest.raises(CompileError, match="integer-only quantization cannot meet the 200 dB target"):
        quantize_flatbuffer(chain, integer_only, _samples(), target_sqnr=200.0)
    # An int8 input cannot feed 16-bit activations without its coarse int8 step: nothing helps.
    int8_io = LiteQuantization("static", integer_only=True, input_type="int8", output_type="int8")
    with pytest.raises(CompileError, match="cannot meet the 25 dB target"):
        quantize_flatbuffer(chain, int8_io, _samples(), target_sqnr=25.0)


def _tensor_types(model: bytes) -> list[tuple[str, list[int], list[int]]]:
    """(op, input tensor types, output tensor types) of each op of subgraph 0."""
    flat = fb.ModelT.InitFromPackedBuf(bytearray(model), 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    graph = flat.subgraphs[0]
    ops = []
    for op in graph.operators:
        code = flat.operatorCodes[op.opcodeIndex]
        ops.append((names[max(code.builtinCode, code.deprecatedBuiltinCode)],
                    [graph.tensors[i].type for i in op.inputs if i >= 0], [graph.tensors[i].type for i in op.outputs]))
    return ops


def test_a_16_bit_unit_between_int8_ones_runs_in_litert(chain, int8_chain):
    int8_model, _ = int8_chain
    model, _ = quantize_flatbuffer(chain, STATIC, _samples(),
                                   units=[{"node_name": ".*/first_1/.*", "method": "static_range_int16x8"}])
    ops = _tensor_types(model)
    T = fb.TensorType
    connected = [(inputs, outputs) for name, inputs, outputs in ops if name == "FULLY_CONNECTED"]
    # int16 activations, int8 weights and an int64 bias; then int8 layers.
    assert connected[0] == ([T.INT16, T.INT8, T.INT64], [T.INT16])
    assert connected[1][0][:2] == [T.INT8, T.INT8] and connected[1][1] == [T.INT8]
    assert ("QUANTIZE", [T.INT16], [T.INT8]) in ops and ("QUANTIZE", [T.FLOAT32], [T.INT16]) in ops
    got = signatures(interpreter(model))["serving_default"].run({"x": _samples(1)[0][1]["x"]})["output_0"]
    assert np.all(np.isfinite(got))
    assert _fresh_sqnr(chain, model) > _fresh_sqnr(chain, int8_model) + 10


def test_int8_to_int16_and_back_requantize_in_litert(chain, int8_chain):
    """The middle layer at 16 bits: LiteRT's QUANTIZE takes int8 to int16 before it and back after;
    its int8 neighbours bound the error, so the SQNR stays that of all int8 within 0.5 dB."""
    int8_model, _ = int8_chain
    model, _ = quantize_flatbuffer(chain, STATIC, _samples(),
                                   units=[{"node_name": ".*/second_1/.*", "method": "static_range_int16x8"}])
    T = fb.TensorType
    ops = _tensor_types(model)
    assert [op for op in ops if op[0] == "QUANTIZE"] == [
        ("QUANTIZE", [T.FLOAT32], [T.INT8]), ("QUANTIZE", [T.INT8], [T.INT16]), ("QUANTIZE", [T.INT16], [T.INT8])]
    assert abs(_fresh_sqnr(chain, model) - _fresh_sqnr(chain, int8_model)) < 0.5


def test_converter_target_and_layer_report(keras_chain):
    converter = TFLiteConverter.from_keras_model(keras_chain)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s["x"]] for _, s in _samples())
    converter.target_sqnr = 25.0
    converter.convert()
    layers = converter.quantization_report.layers
    assert layers.target_sqnr_db == 25.0
    assert [layer.kept_as for layer in layers.fallen_back()] == [INT16]
    assert min(layers.model_sqnr_db.values()) >= 25.0
