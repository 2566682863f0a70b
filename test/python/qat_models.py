"""Tiny SavedModels as quantization-aware training leaves them: fake-quant ops with trained ranges.

Built like `models.py` (seeded numpy values in tf.Variables, saved in about a second); the
ranges are variables too, holding the values training would have left in them, so the importer
turns each into a constant. Each builder is `build_<name>(path) -> dict` with the keys `models.py`
documents, plus `"expected"`: the model's own outputs (fake quantization included) on the inputs,
and the trained ranges a test checks (`"kernel_range"`: the conv weight's per-channel (min, max)).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models import SERVING, _result, _rng, _save, _var  # noqa: E402


def _range_var(value) -> tf.Variable:
    return tf.Variable(np.asarray(value, np.float32))


def build_qat_conv_dense(path: str) -> dict:
    """Conv2D + BiasAdd + Relu, then a dense layer, fake-quantized as a QAT-trained model is:

    * the input: FakeQuantWithMinMaxVars (8 bits);
    * the conv weight: FakeQuantWithMinMaxVarsPerChannel over its 4 output channels, symmetric and
      narrow range as tfmot's default scheme trains weights ([-max|w|, max|w|] per channel);
    * the conv output (after Relu) and the dense output: FakeQuantWithMinMaxVars;
    * the dense weight: FakeQuantWithMinMaxArgs (a fixed symmetric range in attributes, narrow range).
    """
    rng = _rng(11)
    m = tf.Module()
    m.kernel = _var(rng, (3, 3, 3, 4))
    m.bias = _var(rng, (4,), 0.1)
    m.dense = _var(rng, (4 * 4 * 4, 5), 0.2)
    m.dense_bias = _var(rng, (5,), 0.1)
    kernel_peak = np.abs(m.kernel.numpy()).reshape(-1, 4).max(0)
    m.input_min, m.input_max = _range_var(-2.5), _range_var(2.75)
    m.kernel_min, m.kernel_max = _range_var(-kernel_peak), _range_var(kernel_peak)
    m.conv_min, m.conv_max = _range_var(0.0), _range_var(5.5)
    m.output_min, m.output_max = _range_var(-9.0), _range_var(7.0)
    dense_range = float(np.abs(m.dense.numpy()).max())

    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3], tf.float32, name="x")])
    def serve(x):
        x = tf.quantization.fake_quant_with_min_max_vars(x, m.input_min, m.input_max)
        kernel = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            m.kernel, m.kernel_min, m.kernel_max, narrow_range=True)
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), m.bias))
        y = tf.quantization.fake_quant_with_min_max_vars(y, m.conv_min, m.conv_max)
        dense = tf.quantization.fake_quant_with_min_max_args(m.dense, -dense_range, dense_range, narrow_range=True)
        y = tf.matmul(tf.reshape(y, [-1, 4 * 4 * 4]), dense) + m.dense_bias
        return {"output_0": tf.quantization.fake_quant_with_min_max_vars(y, m.output_min, m.output_max)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    inputs = {"x": _rng(111).normal(size=(2, 4, 4, 3)).astype(np.float32)}
    expected = {k: v.numpy() for k, v in serve(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    return _result(inputs, expected=expected, kernel_range=(-kernel_peak, kernel_peak))


QAT_MODELS = {
    "qat_conv_dense": build_qat_conv_dense,
}
