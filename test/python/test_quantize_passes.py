"""tfq-quantize-composite-functions on hand-written modules: the int8 weights, int32 biases and
scales it writes are checked numerically against the float weights and the quant types."""
from __future__ import annotations

import numpy as np
import pytest

from tfquant.mlir import new_context, ops_named, parse_module
from tfquant.passes._tf_ops import constant_value
from tfquant.pipeline import run_pipeline

IN_SCALE, IN_ZP, OUT_SCALE, OUT_ZP = 0.0235, -7, 0.0417, -128


def _dense(array: np.ndarray) -> str:
    return "dense<" + np.array2string(array, separator=", ", threshold=1 << 20,
                                      floatmode="unique").replace("\n", "") + ">"


def _tensor(shape: tuple[int, ...], element: str) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + element + ">"


def _module(op_text: str, x_shape, w: np.ndarray, b: np.ndarray, y_shape) -> str:
    """One lifted call of `op_text` + BiasAdd between quant casts, as tfq-apply-calibration-stats leaves it."""
    xt, wt, bt, yt = _tensor(x_shape, "f32"), _tensor(w.shape, "f32"), _tensor(b.shape, "f32"), _tensor(y_shape, "f32")
    qin = _tensor(x_shape, f"!quant.uniform<i8:f32, {IN_SCALE!r}:{IN_ZP}>")
    qout = _tensor(y_shape, f"!quant.uniform<i8:f32, {OUT_SCALE!r}:{OUT_ZP}>")
    return f"""
func.func @main(%x: {xt}) -> {yt} {{
  %w = "tf.Const"() {{value = {_dense(w)} : {wt}, dtype = f32}} : () -> {wt}
  %b = "tf.Const"() {{value = {_dense(b)} : {bt}, dtype = f32}} : () -> {bt}
  %q = quant.qcast %x : {xt} to {qin}
  %d = quant.dcast %q : {qin} to {xt}
  %y = "tf.PartitionedCall"(%d, %w, %b) {{f = @composite_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"}} : ({xt}, {wt}, {bt}) -> {yt}
  %yq = quant.qcast %y : {yt} to {qout}
  %yd = quant.dcast %yq : {qout} to {yt}
  return %yd : {yt}
}}
func.func private @composite_fn_1(%a: {xt}, %w: {wt}, %b: {bt}) -> {yt} {{
  %0 = {op_text.format(x=xt, w=wt, y=yt)}
  %1 = "tf.BiasAdd"(%0, %b) {{T = f32, data_format = "NHWC"}} : ({yt}, {bt}) -> {yt}
  return %1 : {yt}
}}
"""


CONV = ('"tf.Conv2D"(%a, %w) {{T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], '
        'padding = "VALID", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}} : ({x}, {w}) -> {y}')
MATMUL_T = '"tf.MatMul"(%a, %w) {{T = f32, transpose_a = false, transpose_b = true}} : ({x}, {w}) -> {y}'
# name -> (op text, activation shape, weight shape, output shape, per-channel weight axis)
CASES = {
    "conv2d": (CONV, (1, 4, 4, 3), (2, 2, 3, 5), (1, 3, 3, 5), 3),
    "matmul_transpose_b": (MATMUL_T, (2, 6), (4, 6), (2, 4), 0),
}


def _quantize(text: str, per_channel: bool) -> dict:
    """Run the pass; the quantized op's attributes and the int8 weight / int32 bias its call takes."""
    ctx = new_context()
    with ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, f"builtin.module(tfq-quantize-composite-functions"
                             f"{{per-channel={str(per_channel).lower()} float-output=false}})")
        (q_op,) = ops_named(module.operation, "tfq.quantized_op")
        (call,) = ops_named(module.operation, "tf.PartitionedCall")
        attrs = q_op.attributes
        return {
            "weight": np.array(constant_value(call.operands[1])),
            "bias": np.array(constant_value(call.operands[2])),
            "weight_scales": np.array(attrs["weight_scales"]).reshape(-1),
            "weight_axis": attrs["weight_axis"].value,
            "input": (attrs["input_scale"].value, attrs["input_zero_point"].value),
            "output": (attrs["output_scale"].value, attrs["output_zero_point"].value),
            "kind": str(call.attributes["_tfq_kind"]),
        }


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_bias_and_scales(case: str, per_channel: bool):
    op_text, x_shape, w_shape, y_shape, channel_axis = CASES[case]
    rng = np.random.default_rng(0)
    # Channels with very different ranges, as after batch-norm folding.
    channels = w_shape[channel_axis]
    spread = np.logspace(-2, 1, channels).reshape([-1 if a == channel_axis else 1 for a in range(len(w_shape))])
    w = (rng.standard_normal(w_shape) * spread).astype(np.float32)
    b = rng.standard_normal(y_shape[-1]).astype(np.float32)
    result = _quantize(_module(op_text, x_shape, w, b, y_shape), per_channel)

    assert result["kind"] == ('"conv2d"' if case == "conv2d" else '"matmul"')
    assert result["weight"].dtype == np.int8 and result["weight"].shape == w.shape
    assert result["bias"].dtype == np.int32
    assert result["input"] == pytest.approx((IN_SCALE, IN_ZP)) and result["output"] == pytest.approx((OUT_SCALE, OUT_ZP))
    scales = result["weight_scales"]
    if per_channel:
        assert result["weight_axis"] == channel_axis
        peaks = np.max(np.abs(np.moveaxis(w, channel_axis, 0).reshape(channels, -1)), axis=1)
        broadcast = scales.reshape([-1 if a == channel_axis else 1 for a in range(w.ndim)])
    else:
        assert result["weight_axis"] == -1
        peaks = np.array([np.max(np.abs(w))])
        broadcast = scales
    np.testing.assert_allclose(scales, peaks / 127, rtol=1e-6)
    assert np.all(np.abs(result["weight"]) <= 127)
    # Symmetric rounding: each dequantized weight is within half a step of the float weight.
    assert np.all(np.abs(result["weight"] * broadcast - w) <= broadcast / 2 * (1 + 1e-5))
    bias_scales = IN_SCALE * (scales if per_channel else np.full(channels, scales[0]))
    np.testing.assert_array_equal(result["bias"], np.round(b / bias_scales).astype(np.int32))


def test_dead_channel_bias_fits_int32():
    # A channel whose weights folded to ~0 (batch norm with gamma ~ 0) keeps a real bias: its
    # weight scale is widened so the bias fits int32, instead of saturating it.
    from tfquant.passes._quant import INT32_LIMIT, quantize_bias, quantize_weight, weight_params, widen_for_bias
    weight = np.array([[0.5, 1e-12], [-0.25, 0.0]], np.float32)
    bias = np.array([0.1, 3.0], np.float32)
    input_scale = 0.02
    narrow = weight_params(weight, 1)
    assert np.abs(bias[1] / (input_scale * narrow.scales[1])) > INT32_LIMIT
    wide = widen_for_bias(narrow, bias, input_scale)
    assert wide.scales[0] == narrow.scales[0] and wide.scales[1] > narrow.scales[1]
    q_bias = quantize_bias(bias, input_scale, wide.scales)
    np.testing.assert_allclose(q_bias * input_scale * np.array(wide.scales), bias, rtol=1e-6)
    assert np.all(np.abs(quantize_weight(weight, wide)) <= 127)
