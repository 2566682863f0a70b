"""tfq-equalize-cross-layer keeps a model's numerics and equalizes its weight ranges, which raises the
SQNR of static int8 quantization; tfq-correct-bias reduces a measured mean output shift.

The passes are not in `pipeline.build`'s stages yet, so `_quantize` runs those stages as
`quantize_saved_model` does, with the pass spliced in where it belongs.
"""
from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfquant  # noqa: E402
from tfquant import calibrate, dataset, options as options_lib, pipeline  # noqa: E402
from tfquant.accuracy.layers import sqnr_db  # noqa: E402
from tfquant.exporter import signature_input_specs, to_concrete_function  # noqa: E402
from tfquant.importer import import_saved_model  # noqa: E402
from tfquant.mlir import ir, symbol_table  # noqa: E402
from tfquant.passes._composite import lifted_calls  # noqa: E402
from tfquant.passes.correct_bias import BIAS_SHIFT  # noqa: E402
from tfquant.passes.equalize_cross_layer import channel_ranges, layer  # noqa: E402

SERVING = "serving_default"
LIFT = "tfq-prepare-lifting,tfq-lift-quantizable-spots-as-functions"
EQUALIZE = "tfq-equalize-cross-layer"


def _save(module: tf.Module, serve, path: str) -> str:
    module.serve = serve
    tf.saved_model.save(module, path, signatures={SERVING: serve})
    return path


def _variable(array: np.ndarray) -> tf.Variable:
    return tf.Variable(array.astype(np.float32))


def build_mlp(path: str, channel_factors: np.ndarray | None = None) -> str:
    """MatMul+bias+Relu -> MatMul+bias+Relu -> MatMul+bias, 8 -> 16 -> 12 -> 4. With
    `channel_factors`, the first layer's 16 output channels are scaled by them and the second
    layer's input channels by their inverses: the same function, badly scaled channels."""
    rng = np.random.default_rng(7)
    w1, b1 = rng.normal(0, 0.5, (8, 16)), rng.normal(0, 0.1, 16)
    w2 = rng.normal(0, 0.5, (16, 12))
    if channel_factors is not None:
        w1, b1, w2 = w1 * channel_factors, b1 * channel_factors, w2 / channel_factors[:, None]
    m = tf.Module()
    m.w1, m.b1, m.w2 = _variable(w1), _variable(b1), _variable(w2)
    m.b2, m.w3, m.b3 = _variable(rng.normal(0, 0.1, 12)), _variable(rng.normal(0, 0.5, (12, 4))), \
        _variable(rng.normal(0, 0.1, 4))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def serve(x):
        h = tf.nn.relu(tf.matmul(x, m.w1) + m.b1)
        h = tf.nn.relu(tf.matmul(h, m.w2) + m.b2)
        return {"output_0": tf.matmul(h, m.w3) + m.b3}

    return _save(m, serve, path)


def build_convs(path: str) -> str:
    """Conv2D 3x3 + bias + Relu -> depthwise 3x3 + bias + Relu -> Conv2D 1x1, 3 -> 8 -> 8 -> 5 channels."""
    rng = np.random.default_rng(8)
    m = tf.Module()
    m.k1, m.b1 = _variable(rng.normal(0, 0.5, (3, 3, 3, 8)) * np.geomspace(0.1, 10, 8)), _variable(rng.normal(0, 0.1, 8))
    m.dw, m.b2 = _variable(rng.normal(0, 0.5, (3, 3, 8, 1))), _variable(rng.normal(0, 0.1, 8))
    m.k3 = _variable(rng.normal(0, 0.5, (1, 1, 8, 5)))

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 3], tf.float32, name="x")])
    def serve(x):
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, m.k1, 1, "SAME"), m.b1))
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.depthwise_conv2d(h, m.dw, [1, 1, 1, 1], "SAME"), m.b2))
        return {"output_0": tf.nn.conv2d(h, m.k3, 1, "VALID")}

    return _save(m, serve, path)


def build_matmul_bias(path: str) -> str:
    """One MatMul + bias, 16 -> 8."""
    rng = np.random.default_rng(9)
    m = tf.Module()
    m.w, m.b = _variable(rng.normal(0, 0.5, (16, 8))), _variable(rng.normal(0, 0.1, 8))

    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.matmul(x, m.w) + m.b}

    return _save(m, serve, path)


def _run(module: ir.Module, inputs: np.ndarray) -> np.ndarray:
    with module.context:
        function = to_concrete_function(module, SERVING)
    return function(tf.constant(inputs))["output_0"].numpy()


def _run_saved(model, inputs: np.ndarray) -> np.ndarray:
    return model.signatures[SERVING](x=tf.constant(inputs))["output_0"].numpy()


def _pair_ranges(module: ir.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """(output channel ranges of unit i, input channel ranges of unit i + 1) for consecutive lifted calls."""
    functions = symbol_table(module.operation)
    layers = [layer(call, functions) for call in lifted_calls(module.operation)]
    return [(channel_ranges(a.weight, a.out_axis), channel_ranges(b.weight, b.in_axis))
            for a, b in zip(layers, layers[1:])]


@pytest.mark.parametrize("build, shape", [(build_mlp, (5, 8)), (build_convs, (2, 6, 6, 3))])
def test_equalization_keeps_float_outputs_and_equalizes_ranges(tmp_path, build, shape):
    path = build(str(tmp_path / "model"))
    inputs = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    plain, equalized = import_saved_model(path), import_saved_model(path)
    pipeline.run_pipeline(plain, f"builtin.module({LIFT})")
    pipeline.run_pipeline(equalized, f"builtin.module({LIFT},{EQUALIZE})")
    expected, actual = _run(plain, inputs), _run(equalized, inputs)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    before, after = _pair_ranges(plain), _pair_ranges(equalized)
    assert len(after) == 2
    assert not np.allclose(*before[-1], rtol=0.1)
    # The last pair is equalized last: exactly equal; the first, changed since by the second's
    # scaling of their shared unit, is close after the second sweep.
    np.testing.assert_allclose(*after[-1], rtol=1e-5)
    spread = [np.ptp(np.log(r1 / r2)) for r1, r2 in before[:1] + after[:1]]
    assert spread[1] < 0.1 * spread[0]


def _splice(stage_pipeline: pipeline.Pipeline, after: str, name: str) -> pipeline.Pipeline:
    """`stage_pipeline` with pass `name` right after pass `after`."""
    passes = stage_pipeline.passes
    index = next(i for i, p in enumerate(passes) if p.name == after) + 1
    return pipeline.Pipeline(passes[:index] + pipeline.make_pipeline(name).passes + passes[index:])


def _quantize(path: str, samples: list[dict], inputs: np.ndarray, *, equalize: bool = False,
              bias_shift: np.ndarray | None = None, options=None) -> np.ndarray:
    """The output on `inputs` of the model static int8 quantization makes, driven stage by stage as
    `quantize_saved_model` drives it, with tfq-equalize-cross-layer right after lifting and, given a
    `bias_shift` for the one lifted call, tfq-correct-bias right after the calibrated ranges are applied."""
    resolved = options_lib.resolve_options(options)
    module = import_saved_model(path, resolved.signature_keys, resolved.tags)
    specs = signature_input_specs(module)
    datasets = dataset.normalize_dataset(samples, resolved.signature_keys, specs, resolved.representative_datasets)
    for stage in pipeline.build(resolved, calibrate=True):
        if stage.pipeline is None:
            calibrate.calibrate(module, datasets, specs, resolved.calibration_options, progress=False)
            continue
        stage_pipeline = stage.pipeline
        if stage.name == pipeline.PRE_CALIBRATION and equalize:
            stage_pipeline = _splice(stage_pipeline, "tfq-lift-quantizable-spots-as-functions", EQUALIZE)
        if stage.name == pipeline.QUANTIZE and bias_shift is not None:
            (call,) = lifted_calls(module.operation)
            with module.context:
                call.attributes[BIAS_SHIFT] = ir.DenseElementsAttr.get(bias_shift.astype(np.float32))
            stage_pipeline = _splice(stage_pipeline, "tfq-apply-calibration-stats", "tfq-correct-bias")
        pipeline.run_pipeline(module, stage_pipeline)
    return _run(module, inputs)


def _sqnr(expected: np.ndarray, actual: np.ndarray) -> float:
    return sqnr_db(float(np.sum(np.square(expected, dtype=np.float64))),
                   float(np.sum(np.square(actual - expected, dtype=np.float64))))


def _per_tensor_options():
    options = tfquant.QuantizationOptions()
    options.enable_per_channel_quantization = False
    return options


@pytest.mark.parametrize("per_channel", [True, False])
def test_equalization_raises_int8_sqnr_of_badly_scaled_channels(tmp_path, per_channel):
    """The first layer's channels are scaled by 1e-2..1e2 (compensated in the second): per-tensor
    activation ranges (and per-tensor weights) lose the small channels unless equalized."""
    factors = np.geomspace(1e-2, 1e2, 16)[np.random.default_rng(1).permutation(16)]
    path = build_mlp(str(tmp_path / "mlp"), factors)
    rng = np.random.default_rng(2)
    samples = [{"x": rng.normal(size=(8, 8)).astype(np.float32)} for _ in range(8)]
    inputs = rng.normal(size=(64, 8)).astype(np.float32)
    expected = _run_saved(tf.saved_model.load(path), inputs)
    options = None if per_channel else _per_tensor_options()
    plain = _sqnr(expected, _quantize(path, samples, inputs, options=options))
    equalized = _sqnr(expected, _quantize(path, samples, inputs, equalize=True, options=options))
    print(f"int8 SQNR, {'per-channel' if per_channel else 'per-tensor'} weights: "
          f"{plain:.2f} dB without equalization, {equalized:.2f} dB with")
    assert equalized > plain + 6


def test_bias_correction_reduces_a_measured_mean_shift(tmp_path):
    path = build_matmul_bias(str(tmp_path / "model"))
    rng = np.random.default_rng(3)
    # Inputs with a non-zero mean: rounding a weight then shifts the output's mean.
    samples = [{"x": rng.normal(1.0, 0.5, size=(16, 16)).astype(np.float32)} for _ in range(8)]
    inputs = rng.normal(1.0, 0.5, size=(256, 16)).astype(np.float32)
    expected = _run_saved(tf.saved_model.load(path), inputs)
    quantized = tfquant.quantize_saved_model(path, str(tmp_path / "int8"), representative_dataset=samples,
                                             verbose=False)
    measured = np.mean(_run_saved(quantized, inputs) - expected, axis=0)
    # The driver quantizes exactly as quantize_saved_model does: the shift it corrects is the one measured.
    np.testing.assert_allclose(_quantize(path, samples, inputs), _run_saved(quantized, inputs), rtol=1e-6, atol=1e-6)
    held_out = rng.normal(1.0, 0.5, size=(256, 16)).astype(np.float32)
    expected_held_out = _run_saved(tf.saved_model.load(path), held_out)
    before = np.abs(np.mean(_run_saved(quantized, held_out) - expected_held_out, axis=0))
    after = np.abs(np.mean(_quantize(path, samples, held_out, bias_shift=measured) - expected_held_out, axis=0))
    print(f"mean |output shift| on held-out inputs: {before.mean():.2e} before correction, {after.mean():.2e} after")
    assert after.mean() < 0.5 * before.mean()
