"""tfq-quantize-composite-functions on hand-written modules: the int8 weights, int32 biases and
scales it writes into the types of the inline `tfq.quantized_op` (Quantized IR v2) are checked
numerically against the float weights, for per-channel and per-tensor specs, 8- and 16-bit
activations and dynamic range."""
from __future__ import annotations

import numpy as np
import pytest

from tfquant.mlir import new_context, ops_named, parse_module
from tfquant.passes._quant import tensor_params
from tfquant.passes._tf_ops import constant_value, defining_op
from tfquant.passes._tfq import QuantizedOp
from tfquant.pipeline import run_pipeline

IN_SCALE, IN_ZP, OUT_SCALE, OUT_ZP = 0.0235, -7, 0.0417, -128
# 16-bit activations: symmetric, zero point 0, storage [-32767, 32767].
IN_SCALE_16, OUT_SCALE_16 = 9.1e-5, 1.7e-4


def _dense(array: np.ndarray) -> str:
    return "dense<" + np.array2string(array, separator=", ", threshold=1 << 20,
                                      floatmode="unique").replace("\n", "") + ">"


def _tensor(shape: tuple[int, ...], element: str) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + element + ">"


def _activation_type(scale: float, zero_point: int, bits: int) -> str:
    if bits == 16:
        return f"!quant.uniform<i16<-32767:32767>:f32, {scale!r}>"
    return f"!quant.uniform<i8:f32, {scale!r}:{zero_point}>"


def _module(op_text: str, x_shape, w: np.ndarray, b: np.ndarray, y_shape, bits: int = 8, casts: bool = True) -> str:
    """One lifted call of `op_text` + BiasAdd between quant casts, as tfq-apply-calibration-stats leaves
    it (without the casts, as a method without calibration leaves it)."""
    xt, wt, bt, yt = _tensor(x_shape, "f32"), _tensor(w.shape, "f32"), _tensor(b.shape, "f32"), _tensor(y_shape, "f32")
    in_scale, out_scale = (IN_SCALE_16, OUT_SCALE_16) if bits == 16 else (IN_SCALE, OUT_SCALE)
    qin = _tensor(x_shape, _activation_type(in_scale, IN_ZP, bits))
    qout = _tensor(y_shape, _activation_type(out_scale, OUT_ZP, bits))
    before = f"""  %q = quant.qcast %x : {xt} to {qin}
  %d = quant.dcast %q : {qin} to {xt}
""" if casts else "  %d = \"tf.Identity\"(%x) {T = f32} : (" + xt + ") -> " + xt + "\n"
    after = f"""  %yq = quant.qcast %y : {yt} to {qout}
  %yd = quant.dcast %yq : {qout} to {yt}
""" if casts else "  %yd = \"tf.Identity\"(%y) {T = f32} : (" + yt + ") -> " + yt + "\n"
    return f"""
func.func @main(%x: {xt}) -> {yt} {{
  %w = "tf.Const"() {{value = {_dense(w)} : {wt}, dtype = f32}} : () -> {wt}
  %b = "tf.Const"() {{value = {_dense(b)} : {bt}, dtype = f32}} : () -> {bt}
{before}  %y = "tf.PartitionedCall"(%d, %w, %b) {{f = @composite_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"}} : ({xt}, {wt}, {bt}) -> {yt}
{after}  return %yd : {yt}
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


def _storage(value) -> np.ndarray:
    """The integer constant under the `quant.scast` that gives `value` its quant type."""
    scast = defining_op(value)
    assert scast is not None and scast.name == "quant.scast"
    return np.array(constant_value(scast.operands[0]))


def _quantize(text: str, per_channel: bool, method: str = "static") -> dict:
    """Run tfq-assign-quantization-spec (method, per-channel) then the pass; what the inline quantized
    op computes with: its kind, the parameters in its types, the int8 weight and the bias."""
    ctx = new_context()
    with ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, f"builtin.module(tfq-assign-quantization-spec{{method={method} "
                             f"per-channel={str(per_channel).lower()} min-weight-elements=1}},"
                             f"tfq-quantize-composite-functions{{float-output=false}})")
        assert not ops_named(module.operation, "tf.PartitionedCall")
        (op,) = ops_named(module.operation, "tfq.quantized_op")
        q_op = QuantizedOp(op)
        q_op.verify()
        bias_params = tensor_params(q_op.bias.type)
        return {
            "weight": _storage(q_op.weight),
            "bias": _storage(q_op.bias) if bias_params is not None else np.array(constant_value(q_op.bias)),
            "weight_params": q_op.weight_params,
            "bias_params": bias_params,
            "input": q_op.input_params,
            "output": q_op.output_params,
            "input_type": str(q_op.input.type),
            "result_type": str(op.results[0].type),
            "kind": q_op.kind,
        }


def _case_weights(case: str) -> tuple[np.ndarray, np.ndarray]:
    op_text, x_shape, w_shape, y_shape, channel_axis = CASES[case]
    rng = np.random.default_rng(0)
    # Channels with very different ranges, as after batch-norm folding.
    spread = np.logspace(-2, 1, w_shape[channel_axis]).reshape([-1 if a == channel_axis else 1
                                                                for a in range(len(w_shape))])
    w = (rng.standard_normal(w_shape) * spread).astype(np.float32)
    b = rng.standard_normal(y_shape[-1]).astype(np.float32)
    return w, b


def _check_weight(result: dict, case: str, w: np.ndarray, per_channel: bool) -> np.ndarray:
    """The int8 weight and its scales against the float weight; returns the scales per output channel."""
    channel_axis = CASES[case][4]
    channels = w.shape[channel_axis]
    params = result["weight_params"]
    assert result["weight"].dtype == np.int8 and result["weight"].shape == w.shape
    assert (params.storage_min, params.storage_max, params.storage_bits) == (-127, 127, 8)
    assert not any(params.zero_points)
    scales = np.asarray(params.scales)
    if per_channel:
        assert params.axis == channel_axis
        peaks = np.max(np.abs(np.moveaxis(w, channel_axis, 0).reshape(channels, -1)), axis=1)
        broadcast = scales.reshape([-1 if a == channel_axis else 1 for a in range(w.ndim)])
    else:
        assert params.axis is None and scales.size == 1
        peaks = np.array([np.max(np.abs(w))])
        broadcast = scales
    np.testing.assert_allclose(scales, peaks / 127, rtol=1e-6)
    assert np.all(np.abs(result["weight"]) <= 127)
    # Symmetric rounding: each dequantized weight is within half a step of the float weight.
    assert np.all(np.abs(result["weight"] * broadcast - w) <= broadcast / 2 * (1 + 1e-5))
    return scales if per_channel else np.full(channels, scales[0])


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_bias_and_scales(case: str, per_channel: bool, bits: int):
    op_text, x_shape, w_shape, y_shape, channel_axis = CASES[case]
    w, b = _case_weights(case)
    result = _quantize(_module(op_text, x_shape, w, b, y_shape, bits), per_channel)

    assert result["kind"] == ("conv2d" if case == "conv2d" else "matmul")
    in_scale, in_zp, out_scale, out_zp = (IN_SCALE_16, 0, OUT_SCALE_16, 0) if bits == 16 else \
        (IN_SCALE, IN_ZP, OUT_SCALE, OUT_ZP)
    storage = (-32767, 32767, 16) if bits == 16 else (-128, 127, 8)
    for params, scale, zero_point in ((result["input"], in_scale, in_zp), (result["output"], out_scale, out_zp)):
        assert params.axis is None
        assert (params.scale, params.zero_point) == pytest.approx((scale, zero_point))
        assert (params.storage_min, params.storage_max, params.storage_bits) == storage
    channel_scales = _check_weight(result, case, w, per_channel)
    # The bias: int32 at input scale x weight scale, per channel along axis 0 when the weight is.
    bias_params = result["bias_params"]
    assert result["bias"].dtype == np.int32 and bias_params.storage_bits == 32
    assert bias_params.axis == (0 if per_channel else None)
    bias_scales = in_scale * channel_scales
    np.testing.assert_allclose(np.broadcast_to(bias_params.scales, bias_scales.shape), bias_scales, rtol=1e-12)
    np.testing.assert_array_equal(result["bias"], np.round(b / bias_scales).astype(np.int32))


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_dynamic_range(case: str, per_channel: bool):
    """Dynamic range (no calibration, no quant casts): the f32 input stays, the weight is int8 as for
    static, the f32 bias is the float constant itself and the result is f32."""
    op_text, x_shape, w_shape, y_shape, channel_axis = CASES[case]
    w, b = _case_weights(case)
    result = _quantize(_module(op_text, x_shape, w, b, y_shape, casts=False), per_channel, method="dynamic_range")

    assert result["input"] is None and result["input_type"] == _tensor(x_shape, "f32")
    assert result["output"] is None and result["result_type"] == _tensor(y_shape, "f32")
    _check_weight(result, case, w, per_channel)
    assert result["bias_params"] is None
    np.testing.assert_array_equal(result["bias"], b)


def test_dead_channel_bias_fits_int32():
    # A channel whose weights folded to ~0 (batch norm with gamma ~ 0) keeps a real bias: its
    # weight scale is widened so the bias fits int32, instead of saturating it.
    from tfquant.passes._quant import (INT32_LIMIT, bias_params, quantize_bias, quantize_weight, weight_params,
                                       widen_for_bias)
    weight = np.array([[0.5, 1e-12], [-0.25, 0.0]], np.float32)
    bias = np.array([0.1, 3.0], np.float32)
    input_scale = 0.02
    narrow = weight_params(weight, 1)
    assert np.abs(bias[1] / (input_scale * narrow.scales[1])) > INT32_LIMIT
    wide = widen_for_bias(narrow, bias, input_scale)
    assert wide.scales[0] == narrow.scales[0] and wide.scales[1] > narrow.scales[1]
    q_bias = quantize_bias(bias, bias_params(input_scale, wide))
    np.testing.assert_allclose(q_bias * input_scale * np.array(wide.scales), bias, rtol=1e-6)
    assert np.all(np.abs(quantize_weight(weight, wide)) <= 127)
