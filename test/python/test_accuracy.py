"""The accuracy tools on the SavedModel path, end to end: per-layer report, detectors, fallback to a
target (16-bit activations or float), calibration-method search, bias correction, equalization,
and the check on the calibration extremes."""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from tfquant import QuantizationOptions, quantize_saved_model
from tfquant.accuracy.layers import FLOAT, INT8, INT16, OUTLIERS
from tfquant.mlir import CompileError
from tfquant.tools import cli

SERVING = "serving_default"


def _save(module: tf.Module, function, path: str) -> str:
    module.serve = function
    tf.saved_model.save(module, path, signatures={SERVING: function})
    return path


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory) -> str:
    """x -> a_layer (MatMul + Relu) -> + spikes -> b_layer (MatMul) -> c_layer (MatMul).

    A few samples (x0 = 6) add a spike of 400 to channel 0 of what b_layer reads: its input range is
    set by them, and its other values get a handful of int8 steps. b_layer ignores channel 0 (a zero
    weight row), so the spike does not reach its output, and clipping it costs nothing.
    """
    rng = np.random.default_rng(0)
    m = tf.Module()
    m.wa = tf.constant(rng.normal(0, 0.5, (8, 16)).astype(np.float32))
    wb = rng.normal(0, 0.5, (16, 16)).astype(np.float32)
    wb[0] = 0.0
    m.wb = tf.constant(wb)
    m.wc = tf.constant(rng.normal(0, 0.5, (16, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def serve(x):
        h = tf.nn.relu(tf.linalg.matmul(x, m.wa, name="a_layer"))
        spikes = tf.pad(tf.nn.relu(x[:, :1] - 4.0) * 200.0, [[0, 0], [0, 15]])
        y = tf.linalg.matmul(h + spikes, m.wb, name="b_layer")
        return {"output_0": tf.linalg.matmul(y, m.wc, name="c_layer")}

    return _save(m, serve, str(tmp_path_factory.mktemp("outliers") / "model"))


def _outlier_samples(count: int = 256) -> list[dict[str, np.ndarray]]:
    x = np.random.default_rng(1).normal(size=(count, 8)).astype(np.float32)
    x[[i for i in (3, 100, 200) if i < count], 0] = 6.0   # none held out (every 8th from index 7 is)
    return [{"x": x[i:i + 1]} for i in range(count)]


def _quantize(path: str, tmp_path, **kwargs):
    return quantize_saved_model(path, str(tmp_path / "out"), representative_dataset=_outlier_samples(),
                                verbose=False, **kwargs)


def _layer(report, name: str):
    return next(layer for layer in report.layers if layer.name.endswith(name))


def test_report_names_the_layer_fed_outliers_first(outlier_model, tmp_path):
    loaded = _quantize(outlier_model, tmp_path, report=True)
    layers = loaded.quantization_report.layers
    assert [layer.name.rsplit("/", 1)[-1] for layer in layers.layers] == ["a_layer", "b_layer", "c_layer"]
    assert layers.ranked()[0].name.endswith("b_layer")
    assert layers.held_out_samples == 32
    b = _layer(layers, "b_layer")
    assert b.local_sqnr_db < _layer(layers, "a_layer").local_sqnr_db - 10
    assert b.input_range[1] > 300   # the spikes set it
    outliers = [finding for finding in layers.findings if finding.kind == OUTLIERS]
    assert any(any(unit.endswith("b_layer") for unit in finding.units) for finding in outliers)
    # The report's SQNR is the real model's, on the held-out samples, and close to the simulation's.
    real = loaded.quantization_report.sqnr_db[f"{SERVING}/output_0"]
    assert abs(real - layers.model_sqnr_db[f"{SERVING}/output_0"]) < 1.0
    assert "held-out" in str(loaded.quantization_report)


def test_fallback_meets_a_target_int8_misses_with_only_the_needed_unit_at_16_bits(outlier_model, tmp_path):
    target = 25.0   # b_layer at 16 bits gives 28 dB; the model needs a_layer at 16 bits too for 35
    loaded = _quantize(outlier_model, tmp_path, target_sqnr=target)
    report = loaded.quantization_report
    layers = report.layers
    assert layers.baseline_sqnr_db[f"{SERVING}/output_0"] < target - 10
    assert layers.target_met
    kept = {layer.name.rsplit("/", 1)[-1]: layer.kept_as for layer in layers.layers}
    assert kept == {"a_layer": INT8, "b_layer": INT16, "c_layer": INT8}
    assert "target" in _layer(layers, "b_layer").reason
    # The model written meets the target too, measured in TensorFlow on the held-out samples.
    assert report.sqnr_db[f"{SERVING}/output_0"] >= target
    # 16-bit activations cost no weight bytes.
    assert _layer(layers, "b_layer").size_cost_bytes == 0


def test_a_target_only_float_meets_keeps_every_unit_float(outlier_model, tmp_path):
    loaded = _quantize(outlier_model, tmp_path, target_sqnr=200.0, bias_correction="off", equalize="off")
    layers = loaded.quantization_report.layers
    assert layers.target_met
    assert all(layer.kept_as == FLOAT for layer in layers.layers)
    assert all("to meet the 200 dB target" in layer.reason for layer in layers.layers)
    # Every unit float: the model written is the float model.
    assert loaded.quantization_report.sqnr_db[f"{SERVING}/output_0"] > 100
    float_units = loaded.quantization_report.float_units
    assert {unit.node_name.rsplit("/", 1)[-1] for unit in float_units} == {"a_layer", "b_layer", "c_layer"}
    assert all("to meet the 200 dB target" in unit.reason for unit in float_units)
    assert _layer(layers, "a_layer").size_cost_bytes == 3 * 8 * 16


def test_calibration_search_clips_the_spikes_nothing_needs(outlier_model, tmp_path):
    plain = _quantize(outlier_model, tmp_path / "plain", report=True, bias_correction="off", equalize="off")
    searched = _quantize(outlier_model, tmp_path / "searched", calibration_search=True, bias_correction="off",
                         equalize="off")
    layers = searched.quantization_report.layers
    assert layers.applied["calibration_search"] > 10
    assert _layer(layers, "b_layer").input_range[1] < 50     # an MSE or percentile range, not the spikes'
    before = plain.quantization_report.sqnr_db[f"{SERVING}/output_0"]
    after = searched.quantization_report.sqnr_db[f"{SERVING}/output_0"]
    assert after > before + 10


@pytest.fixture(scope="module")
def biased_model(tmp_path_factory) -> str:
    """A MatMul whose small weights all round down with per-tensor int8: a systematic output shift."""
    rng = np.random.default_rng(2)
    w = rng.uniform(0.0, 0.0035, (64, 8)).astype(np.float32)
    w[0, 0] = 1.0   # sets the per-tensor scale to 1/127: the others round to 0
    m = tf.Module()
    m.w = tf.constant(w)
    m.b = tf.constant(np.zeros(8, np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.nn.bias_add(tf.linalg.matmul(x, m.w), m.b)}

    return _save(m, serve, str(tmp_path_factory.mktemp("biased") / "model"))


def _mean_shift(loaded, path: str, x: np.ndarray) -> float:
    reference = tf.saved_model.load(path).signatures[SERVING](x=tf.constant(x))["output_0"].numpy()
    actual = loaded.signatures[SERVING](x=tf.constant(x))["output_0"].numpy()
    return float(np.abs((actual - reference).mean(axis=0)).mean())


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_bias_correction_reduces_the_measured_mean_shift(biased_model, tmp_path, mode):
    x = np.random.default_rng(3).uniform(0, 1, (320, 64)).astype(np.float32)
    samples = [{"x": x[i:i + 1]} for i in range(256)]
    options = QuantizationOptions(enable_per_channel_quantization=False)
    shifted = quantize_saved_model(biased_model, str(tmp_path / "plain"), options, samples, verbose=False,
                                   report=True, bias_correction="off", equalize="off")
    corrected = quantize_saved_model(biased_model, str(tmp_path / "corrected"), options, samples, verbose=False,
                                     report=True, bias_correction=mode, equalize="off")
    unseen = x[256:]
    before, after = _mean_shift(shifted, biased_model, unseen), _mean_shift(corrected, biased_model, unseen)
    assert before > 0.05
    assert after < before / 10
    assert corrected.quantization_report.layers.applied["bias_correction"] > 3.0


@pytest.fixture(scope="module")
def reciprocal_model(tmp_path_factory) -> str:
    """b_layer's output, also read by a quantized c_layer, goes into a Reciprocal: at x = 0 it is 1e-4,
    which its int8 range [0, 1] rounds to 0."""
    m = tf.Module()
    m.w = tf.constant([[1.0]])
    m.b = tf.constant([1e-4])
    m.wc = tf.constant([[2.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def serve(x):
        y = tf.nn.bias_add(tf.linalg.matmul(x, m.w), m.b)
        return {"c": tf.linalg.matmul(y, m.wc), "r": tf.math.reciprocal(y)}

    return _save(m, serve, str(tmp_path_factory.mktemp("reciprocal") / "model"))


def test_a_model_giving_inf_on_the_calibration_extremes_is_not_written(reciprocal_model, tmp_path):
    samples = [{"x": np.array([[v]], np.float32)} for v in np.linspace(0.0, 1.0, 16)]
    out = tmp_path / "out"
    with pytest.raises(CompileError, match=r"returns Inf or NaN in output 'r' of signature 'serving_default' "
                                           r"with every input at the calibration minimum"):
        quantize_saved_model(reciprocal_model, str(out), representative_dataset=samples, verbose=False)
    assert not out.exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tfquant")]


def test_a_refused_model_leaves_the_previous_output_in_place(reciprocal_model, tmp_path):
    samples = [{"x": np.array([[v]], np.float32)} for v in np.linspace(0.0, 1.0, 16)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the previous model")
    with pytest.raises(CompileError, match="Inf or NaN"):
        quantize_saved_model(reciprocal_model, str(out), representative_dataset=samples, verbose=False,
                             overwrite_output_directory=True)
    assert os.listdir(out) == ["keep.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_the_fallback_fixes_what_the_extremes_check_refuses(reciprocal_model, tmp_path):
    samples = [{"x": np.array([[v]], np.float32)} for v in np.linspace(0.0, 1.0, 16)]
    loaded = quantize_saved_model(reciprocal_model, str(tmp_path / "out"), representative_dataset=samples,
                                  verbose=False, target_sqnr=30.0)
    layers = loaded.quantization_report.layers
    assert layers.target_met
    assert [layer.kept_as for layer in layers.layers] != [INT8, INT8]
    r = loaded.signatures[SERVING](x=tf.zeros([1, 1]))["r"].numpy()
    assert np.isfinite(r).all()


def test_equalization_on_fixes_badly_scaled_channels(tmp_path):
    rng = np.random.default_rng(4)
    scales = np.logspace(-2, 2, 16).astype(np.float32)
    m = tf.Module()
    m.w1 = tf.constant(rng.normal(0, 0.5, (8, 16)).astype(np.float32) * scales)
    m.w2 = tf.constant(rng.normal(0, 0.5, (16, 4)).astype(np.float32) / scales[:, None])

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.linalg.matmul(tf.nn.relu(tf.linalg.matmul(x, m.w1)), m.w2)}

    path = _save(m, serve, str(tmp_path / "model"))
    x = rng.normal(size=(128, 8)).astype(np.float32)
    samples = [{"x": x[i:i + 1]} for i in range(128)]
    sqnr = {}
    for mode in ("off", "on"):
        loaded = quantize_saved_model(path, str(tmp_path / mode), representative_dataset=samples, verbose=False,
                                      report=True, equalize=mode, bias_correction="off")
        sqnr[mode] = loaded.quantization_report.sqnr_db[f"{SERVING}/output_0"]
    assert sqnr["on"] > sqnr["off"] + 10


def test_the_accuracy_tools_need_enough_samples_and_a_static_method(outlier_model, tmp_path):
    with pytest.raises(ValueError, match=r"hold every 8th sample out .* has only 4 samples: give at least 8"):
        quantize_saved_model(outlier_model, str(tmp_path / "a"), representative_dataset=_outlier_samples(4),
                             verbose=False, report=True)
    with pytest.raises(ValueError, match="use a static-range method"):
        quantize_saved_model(outlier_model, str(tmp_path / "b"), method="dynamic_range_int8", verbose=False,
                             target_sqnr=30.0)
    with pytest.raises(ValueError, match="bias_correction must be one of"):
        quantize_saved_model(outlier_model, str(tmp_path / "c"), representative_dataset=_outlier_samples(),
                             verbose=False, bias_correction="yes")
    assert not os.listdir(tmp_path)


def test_report_command_prints_the_table_and_writes_the_files(outlier_model, tmp_path, capsys):
    data = tmp_path / "samples.npz"
    np.savez(data, x=np.concatenate([sample["x"] for sample in _outlier_samples()]))
    plot, report_json = tmp_path / "sqnr.png", tmp_path / "layers.json"
    code = cli.main(["report", outlier_model, "--calibration-data", str(data), "--plot", str(plot),
                     "--report-json", str(report_json)])
    out = capsys.readouterr().out
    assert code == 0
    assert "held out of calibration" in out and "b_layer" in out and "[outliers]" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"b_layer"' in report_json.read_text() or "b_layer" in report_json.read_text()
    assert sorted(os.listdir(tmp_path)) == ["layers.json", "samples.npz", "sqnr.png"]


def test_quantize_command_target_sqnr_error_is_one_line(outlier_model, tmp_path, capsys):
    code = cli.main(["quantize", outlier_model, str(tmp_path / "out"), "--method", "dynamic_range_int8",
                     "--target-sqnr", "30"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("tfquant: error: the accuracy tools") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
