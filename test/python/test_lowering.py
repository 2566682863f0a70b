"""tfq-lower-to-xla / tfq-lower-to-tf numerics: a hand-built quantized module (contract step 5 in
passes/_quant.py: an inline `tfq.quantized_op` whose types carry the parameters), lowered and run in
TensorFlow, equals the quantized arithmetic computed in numpy (to one output step) and stays close
to the float computation (SQNR > 30 dB); with 8- and 16-bit activations and dynamic range."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfquant.exporter import to_concrete_function  # noqa: E402
from tfquant.mlir import new_context, ops_named, parse_module  # noqa: E402
from tfquant.passes._quant import (QuantParams, activation_params, bias_params, quantize_bias,  # noqa: E402
                                   quantize_weight, uniform_type_text, weight_params)
from tfquant.pipeline import run_pipeline  # noqa: E402

OPSETS = ("tfq-lower-to-xla", "tfq-lower-to-tf")


@dataclass(frozen=True)
class Case:
    """One quantized op: shapes, the float op's attributes (MLIR text) and a TF function computing it."""
    kind: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    op_attrs: str
    compute: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    weight_axis: int | None
    bias: bool = True
    activation: str = "NONE"


def _conv(strides, padding):
    return lambda x, w: tf.nn.conv2d(x, w, strides, padding)


def _conv_attrs(strides: int, padding: str) -> str:
    return (f'T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], '
            f'padding = "{padding}", strides = [1, {strides}, {strides}, 1], use_cudnn_on_gpu = true')


CASES = {
    "conv2d_same": Case("conv2d", (2, 9, 9, 3), (3, 3, 3, 4), _conv_attrs(1, "SAME"), _conv(1, "SAME"), 3,
                        activation="RELU"),
    "conv2d_same_stride2": Case("conv2d", (2, 9, 9, 3), (3, 3, 3, 4), _conv_attrs(2, "SAME"), _conv(2, "SAME"), 3,
                                activation="RELU6"),
    "conv2d_valid_stride2": Case("conv2d", (2, 9, 9, 3), (3, 3, 3, 4), _conv_attrs(2, "VALID"),
                                 _conv(2, "VALID"), 3),
    # A squeeze-and-excite block's 1x1 convolution at batch 1: XlaConvV2 returns garbage for it.
    "conv2d_pointwise_batch1": Case("conv2d", (1, 1, 1, 32), (1, 1, 32, 8), _conv_attrs(1, "SAME"),
                                    _conv(1, "SAME"), 3),
    "depthwise_conv2d": Case("depthwise_conv2d", (2, 8, 8, 3), (3, 3, 3, 1), _conv_attrs(1, "SAME"),
                             lambda x, w: tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME"), 2, activation="RELU"),
    "depthwise_conv2d_multiplier": Case("depthwise_conv2d", (1, 7, 7, 2), (3, 3, 2, 3), _conv_attrs(2, "VALID"),
                                        lambda x, w: tf.nn.depthwise_conv2d(x, w, [1, 2, 2, 1], "VALID"), None),
    "matmul": Case("matmul", (5, 16), (16, 8), "T = f32, transpose_a = false, transpose_b = false",
                   tf.matmul, 1),
    "matmul_transpose_b": Case("matmul", (5, 16), (8, 16), "T = f32, transpose_a = false, transpose_b = true",
                               lambda x, w: tf.matmul(x, w, transpose_b=True), 0, activation="RELU"),
    "batch_matmul": Case("batch_matmul", (2, 5, 16), (16, 8), "T = f32, adj_x = false, adj_y = false",
                         tf.matmul, 1),
    "batch_matmul_batched_weight": Case("batch_matmul", (2, 5, 16), (2, 8, 16), "T = f32, adj_x = false, adj_y = true",
                                        lambda x, w: tf.matmul(x, w, adjoint_b=True), 1, bias=False),
    "einsum": Case("einsum", (2, 5, 16), (16, 8), 'N = 2 : i64, T = f32, equation = "abc,cd->abd"',
                   lambda x, w: tf.einsum("abc,cd->abd", x, w), 1),
    "einsum_heads": Case("einsum", (2, 5, 16), (16, 2, 4), 'N = 2 : i64, T = f32, equation = "btd,dnh->btnh"',
                         lambda x, w: tf.einsum("btd,dnh->btnh", x, w), 2),
    "einsum_transposed_output": Case("einsum", (2, 5, 16), (16, 8), 'N = 2 : i64, T = f32, equation = "abc,cd->adb"',
                                     lambda x, w: tf.einsum("abc,cd->adb", x, w), 1, bias=False),
}


def _shape(shape, dynamic_dims=()) -> str:
    return "x".join("?" if i in dynamic_dims else str(d) for i, d in enumerate(shape))


def _tensor(shape, element: str, dynamic_dims=()) -> str:
    return f"tensor<{_shape(shape, dynamic_dims)}x{element}>" if shape else f"tensor<{element}>"


def _dense(array: np.ndarray, element: str) -> str:
    return f"dense<{np.array2string(array, separator=', ', threshold=1 << 30).replace(chr(10), '')}> : " \
           f"{_tensor(array.shape, element)}"


def _const(name: str, array: np.ndarray, element: str) -> str:
    return (f'  %{name} = "tf.Const"() {{value = {_dense(array, element)}, dtype = {element}}} : () -> '
            f'{_tensor(array.shape, element)}\n')


def _module(case: Case, in_params: QuantParams | None, w_q: np.ndarray, w_params: QuantParams,
            bias: np.ndarray | None, out_params: QuantParams | None, y_shape) -> str:
    """The quantized module as tfq-quantize-composite-functions leaves it (Quantized IR v2): one
    inline `tfq.quantized_op` whose operand and result types carry every parameter.

    `in_params` None: dynamic range (f32 input, f32 bias, f32 result). Otherwise `bias` is the
    int32 storage of the bias at input scale x weight scale, and `out_params` None a float output.
    """
    x_f, y_f = _tensor(case.x_shape, "f32"), _tensor(y_shape, "f32")
    w_t = _tensor(w_q.shape, uniform_type_text(w_params))
    body = _const("wi", w_q, "i8") + f"  %w = quant.scast %wi : {_tensor(w_q.shape, 'i8')} to {w_t}\n"
    if in_params is None:
        x_operand, x_t = "%x", x_f
    else:
        x_operand, x_t = "%q", _tensor(case.x_shape, uniform_type_text(in_params))
        body = f"  %q = quant.qcast %x : {x_f} to {x_t}\n" + body
    operands, types = [x_operand, "%w"], [x_t, w_t]
    if bias is not None:
        if in_params is None:
            body += _const("b", bias, "f32")
            types.append(_tensor(bias.shape, "f32"))
        else:
            b_t = _tensor(bias.shape, uniform_type_text(bias_params(in_params.scale, w_params)))
            body += _const("bi", bias, "i32") + f"  %b = quant.scast %bi : {_tensor(bias.shape, 'i32')} to {b_t}\n"
            types.append(b_t)
        operands.append("%b")
    y_t = y_f if out_params is None else _tensor(y_shape, uniform_type_text(out_params))
    result = "%y" if out_params is None else "%r"
    dequantize = "" if out_params is None else f"  %r = quant.dcast %y : {y_t} to {y_f}\n"
    return f"""
func.func @main(%x: {x_f} {{tfq.input_name = "x"}}) -> ({y_f} {{tfq.output_name = "y"}}) {{
{body}  %y = "tfq.quantized_op"({", ".join(operands)}) {{kind = "{case.kind}", op_attrs = {{{case.op_attrs}}}, activation = "{case.activation}"}} : ({", ".join(types)}) -> {y_t}
{dequantize}  return {result} : {y_f}
}}
"""


def _quantize(x: np.ndarray, p: QuantParams) -> np.ndarray:
    return np.clip(np.round(x * np.float32(1.0 / p.scale)) + p.zero_point, p.storage_min, p.storage_max)


def _dequantize(q: np.ndarray, p: QuantParams) -> np.ndarray:
    return (q.astype(np.float32) - p.zero_point) * np.float32(p.scale)


def _activate(y: np.ndarray, activation: str) -> np.ndarray:
    if activation == "RELU":
        return np.maximum(y, 0)
    return np.clip(y, 0, 6) if activation == "RELU6" else y


def _case_module(name: str, x: np.ndarray, bits: int = 8, dynamic: bool = False) -> tuple[str, dict]:
    """The quantized module of a case on input `x` (static with `bits`-bit activations, or dynamic
    range), with what the numpy reference needs."""
    case = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    w = rng.normal(0.0, 0.5, case.w_shape).astype(np.float32)
    y_float = case.compute(x, w).numpy()
    bias = rng.normal(0.0, 0.5, y_float.shape[-1]).astype(np.float32) if case.bias else None
    w_params = weight_params(w, case.weight_axis)
    w_q = quantize_weight(w, w_params)
    if case.bias:
        y_float = y_float + bias
    y_float = _activate(y_float, case.activation)
    if dynamic:
        text = _module(case, None, w_q, w_params, bias, None, y_float.shape)
        return text, dict(y_float=y_float, w_params=w_params, w_q=w_q, bias=bias)
    in_params = activation_params(x.min(), x.max(), bits)
    bias_q = quantize_bias(bias, bias_params(in_params.scale, w_params)) if case.bias else None
    out_params = activation_params(y_float.min(), y_float.max(), bits)
    text = _module(case, in_params, w_q, w_params, bias_q, out_params, y_float.shape)
    return text, dict(y_float=y_float, in_params=in_params, w_params=w_params, w_q=w_q, bias_q=bias_q,
                      out_params=out_params)


def _lower_and_run(text: str, opset: str, x: np.ndarray) -> tuple[np.ndarray, str]:
    with new_context() as ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, [opset])
        lowered = str(module)
        assert not ops_named(module.operation, "tfq.quantized_op", "quant.qcast", "quant.dcast", "quant.scast")
        function = to_concrete_function(module, "main")
        return function(x=tf.constant(x))["y"].numpy(), lowered


def _sqnr(reference: np.ndarray, actual: np.ndarray) -> float:
    noise = np.sum((reference - actual) ** 2)
    return float(10 * np.log10(np.sum(reference ** 2) / max(noise, 1e-30)))


def _channel_scales(name: str, w_params: QuantParams, ndim: int) -> np.ndarray:
    """The weight scales shaped to broadcast along the output's channel axis (a scalar per tensor)."""
    case = CASES[name]
    scales = np.asarray(w_params.scales)
    if case.kind == "depthwise_conv2d" and w_params.axis is not None:
        scales = np.repeat(scales, case.w_shape[3])
    if scales.size == 1:
        return scales.reshape([])
    shape = [1] * ndim
    shape[1 if name == "einsum_transposed_output" else ndim - 1] = -1
    return scales.reshape(shape)


PRODUCT_OPS = {"tfq-lower-to-xla": {"conv2d": "tf.XlaConvV2", "depthwise_conv2d": "tf.DepthwiseConv2dNative",
                                    "matmul": "tf.XlaDotV2", "batch_matmul": "tf.XlaDotV2", "einsum": "tf.XlaDotV2"},
               # Depthwise runs as an exact f32 DepthwiseConv2dNative on both opsets.
               "tfq-lower-to-tf": {"conv2d": "tf.Conv2D", "depthwise_conv2d": "tf.DepthwiseConv2dNative",
                                   "matmul": "tf.MatMul", "batch_matmul": "tf.BatchMatMulV2", "einsum": "tf.Einsum"}}


def _product_op(case: Case, opset: str, bits: int) -> str:
    """The op computing a case's product: 16-bit inputs compute on the float op in f32 on every
    opset (XLA's int16 kernels are slow); XLA computes a 1x1 convolution as a dot."""
    if bits == 16:
        return PRODUCT_OPS["tfq-lower-to-tf"][case.kind]
    if opset == "tfq-lower-to-xla" and case.kind == "conv2d" and case.w_shape[:2] == (1, 1):
        return "tf.XlaDotV2"
    return PRODUCT_OPS[opset][case.kind]


def _check_static(name: str, opset: str, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower a static case with `bits`-bit activations; it must equal the quantized arithmetic in
    numpy to one output step. Returns (float result, lowered result)."""
    case = CASES[name]
    x = np.random.default_rng(100).uniform(-1.0, 3.0, case.x_shape).astype(np.float32)  # non-zero zero point
    text, ref = _case_module(name, x, bits)
    in_params, w_params, w_q, bias_q, out_params, y_float = (
        ref["in_params"], ref["w_params"], ref["w_q"], ref["bias_q"], ref["out_params"], ref["y_float"])

    # The quantized arithmetic in numpy: exact integer product (float64), f32 rescale.
    x_q = _quantize(x, in_params)
    acc = case.compute(tf.constant(x_q - in_params.zero_point, tf.float64), tf.constant(w_q, tf.float64)).numpy()
    if case.bias:
        acc = acc + bias_q
    multiplier = (in_params.scale * _channel_scales(name, w_params, acc.ndim) / out_params.scale).astype(np.float32)
    rescaled = np.round(acc.astype(np.float32) * multiplier) + out_params.zero_point
    low, high = out_params.storage_min, out_params.storage_max
    if case.activation in ("RELU", "RELU6"):
        low = out_params.zero_point
    if case.activation == "RELU6":
        high = min(high, out_params.zero_point + round(6 / out_params.scale))
    expected = _dequantize(np.clip(rescaled, low, high), out_params)

    actual, lowered = _lower_and_run(text, opset, x)

    assert "!quant" not in lowered
    assert np.max(np.abs(actual - expected)) <= out_params.scale * 1.001
    assert _sqnr(y_float, actual) > 30.0
    product = _product_op(case, opset, bits)
    assert f'"{product}"' in lowered
    if bits == 16 and case.kind != "depthwise_conv2d":
        assert "T = f32" in lowered.split(f'"{product}"')[1].split("\n")[0]
    return y_float, actual


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_lowered_op_matches_quantized_arithmetic(name: str, opset: str):
    _check_static(name, opset, 8)


SIXTEEN_BIT_CASES = ("conv2d_same", "conv2d_valid_stride2", "matmul", "matmul_transpose_b", "batch_matmul", "einsum",
                     "depthwise_conv2d")


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", SIXTEEN_BIT_CASES)
def test_16bit_activations(name: str, opset: str):
    """i16 symmetric activations (int8 weights): the integer arithmetic to one i16 output step, and
    closer to float than 8 bits are, the int8 weights then being the main error."""
    y_float, actual = _check_static(name, opset, 16)
    assert _sqnr(y_float, actual) > 38.0
    x = np.random.default_rng(100).uniform(-1.0, 3.0, CASES[name].x_shape).astype(np.float32)
    text8, _ = _case_module(name, x, 8)
    actual8, _ = _lower_and_run(text8, opset, x)
    assert _sqnr(y_float, actual) > _sqnr(y_float, actual8)


DYNAMIC_CASES = ("conv2d_same", "conv2d_same_stride2", "conv2d_valid_stride2", "matmul", "matmul_transpose_b",
                 "batch_matmul", "einsum", "einsum_transposed_output", "depthwise_conv2d")


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", DYNAMIC_CASES)
def test_dynamic_range(name: str, opset: str):
    """Dynamic range: the f32 input quantized per batch at run time (asymmetric int8: scale
    (max - min) / 255 over a range holding 0, zero point round(-128 - min / scale)), the int32
    product of the centered input with the int8 weight, then f32: acc x input scale x weight
    scale + the f32 bias and the activation. Equal to that arithmetic in numpy (up to f32
    rounding) and close to float math; depthwise keeps the f32 input (its product is f32 anyway)."""
    case = CASES[name]
    x = np.random.default_rng(101).uniform(-1.0, 3.0, case.x_shape).astype(np.float32)
    text, ref = _case_module(name, x, dynamic=True)
    w_params, w_q, bias, y_float = ref["w_params"], ref["w_q"], ref["bias"], ref["y_float"]

    if case.kind == "depthwise_conv2d":
        x_q, x_scale = x.astype(np.float64), np.float32(1.0)
    else:
        low, high = np.float32(min(x.min(), 0.0)), np.float32(max(x.max(), 0.0))
        x_scale = np.float32(max(high - low, 1e-30)) * np.float32(1 / 255)
        inverse = np.float32(1.0) / x_scale
        zero_point = np.round(np.float32(-128.0) - low * inverse)
        # The centered values: zero padding of the convolutions stays the real 0.0.
        x_q = np.clip(np.round(x * inverse) + zero_point, -128, 127) - zero_point
    acc = case.compute(tf.constant(x_q, tf.float64), tf.constant(w_q, tf.float64)).numpy()
    expected = acc.astype(np.float32) * (_channel_scales(name, w_params, acc.ndim).astype(np.float32) * x_scale)
    if case.bias:
        expected = expected + bias
    expected = _activate(expected, case.activation)

    actual, lowered = _lower_and_run(text, opset, x)

    assert "!quant" not in lowered
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert _sqnr(y_float, actual) > 30.0
    assert f'"{_product_op(case, opset, 8)}"' in lowered
    if case.kind != "depthwise_conv2d":
        assert all(f'"tf.{op}"' in lowered for op in ("Min", "Max", "RealDiv", "Round"))
        assert "preferred_element_type = i32" in lowered if opset == "tfq-lower-to-xla" else "T = i32" in lowered


def _gather_module(table_q: np.ndarray, params: QuantParams, indices_shape, y_shape) -> str:
    """A gather on an int8 table as v2 has it: the result takes the table's element type."""
    t_i8, t_q = _tensor(table_q.shape, "i8"), _tensor(table_q.shape, uniform_type_text(params))
    y_q, y_f = _tensor(y_shape, uniform_type_text(params)), _tensor(y_shape, "f32")
    i_t = _tensor(indices_shape, "i32")
    return f"""
func.func @main(%i: {i_t} {{tfq.input_name = "i"}}) -> ({y_f} {{tfq.output_name = "y"}}) {{
{_const("ti", table_q, "i8")}  %t = quant.scast %ti : {t_i8} to {t_q}
  %axis = "tf.Const"() {{value = dense<0> : tensor<i32>, dtype = i32}} : () -> tensor<i32>
  %y = "tfq.quantized_op"(%t, %i, %axis) {{kind = "gather", op_attrs = {{Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}}, activation = "NONE"}} : ({t_q}, {i_t}, tensor<i32>) -> {y_q}
  %r = quant.dcast %y : {y_q} to {y_f}
  return %r : {y_f}
}}
"""


@pytest.mark.parametrize("opset", OPSETS)
def test_gather_on_int8_table(opset: str):
    rng = np.random.default_rng(7)
    table = rng.normal(0.0, 1.0, (10, 6)).astype(np.float32)
    indices = np.array([[3, 0], [9, 3]], np.int32)
    params = weight_params(table, None)
    table_q = quantize_weight(table, params)
    out_params = params
    text = _gather_module(table_q, params, indices.shape, (2, 2, 6))
    with new_context() as ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, [opset])
        assert "!quant" not in str(module)
        actual = to_concrete_function(module, "main")(i=tf.constant(indices))["y"].numpy()
    np.testing.assert_allclose(actual, _dequantize(table_q[indices], out_params), rtol=0, atol=1e-7)
    assert _sqnr(table[indices], actual) > 30.0


def test_string_attribute_bytes_round_trip():
    """XlaConvV2/XlaDotV2 hold serialized protos in string attributes: any bytes must survive import/export."""
    from tfquant import tf_attrs
    from tensorflow.core.framework import attr_value_pb2
    raw = b"\x00\x08\xff\x80proto"
    with new_context():
        attr = tf_attrs.to_mlir_attr(attr_value_pb2.AttrValue(s=raw))
        assert tf_attrs.to_attr_value(attr, "string").s == raw


def test_lowered_xla_module_exports_as_saved_model(tmp_path):
    """The lowered module is plain TF: it saves, reloads and computes what the ConcreteFunction does."""
    from tfquant.exporter import export_saved_model
    x = np.random.default_rng(5).uniform(-1.0, 3.0, CASES["conv2d_same"].x_shape).astype(np.float32)
    text, _ = _case_module("conv2d_same", x)
    with new_context() as ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, ["tfq-lower-to-xla"])
        expected = to_concrete_function(module, "main")(x=tf.constant(x))["y"].numpy()
        export_saved_model(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    np.testing.assert_array_equal(loaded.signatures["main"](x=tf.constant(x))["y"].numpy(), expected)
