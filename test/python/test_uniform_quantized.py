"""tfq-lower-to-uniform-quantized numerics: a hand-built quantized module (contract step 5 in
`_quant.py`) lowered to TensorFlow's UniformQuantized* ops computes what the same module lowered by
tfq-lower-to-tf computes (to one output step: the kernels requantize with a fixed-point multiplier,
rounding half up, where tfq-lower-to-tf rounds an f32 product half to even), and stays close to
the float computation; the lowered graph holds the UniformQuantized ops the kernels accept."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from test_lowering import _const, _tensor  # noqa: E402
from tfquant.exporter import to_concrete_function  # noqa: E402
from tfquant.mlir import new_context, ops_named, parse_module  # noqa: E402
from tfquant.options import OpSet, QuantizationMethod, QuantizationOptions  # noqa: E402
from tfquant.passes._quant import (QuantParams, activation_params, bias_params, quantize_bias,  # noqa: E402
                                   quantize_weight, uniform_type_text, weight_params)
from tfquant.passes._tf_ops import defining_op  # noqa: E402
from tfquant.pipeline import run_pipeline  # noqa: E402

UNIFORM = "tfq-lower-to-uniform-quantized"


@dataclass(frozen=True)
class Case:
    """One quantized op: shapes, the float op's attributes (MLIR text) and a TF function computing it."""
    kind: str
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    op_attrs: str
    compute: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    weight_axis: int | None
    product_op: str
    bias: bool = True
    activation: str = "NONE"
    dynamic_dims: tuple[int, ...] = ()  # dims of the input and the result typed `?` in the module


def _conv_attrs(strides: int, padding: str) -> str:
    return (f'T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], '
            f'padding = "{padding}", strides = [1, {strides}, {strides}, 1], use_cudnn_on_gpu = true')


def _conv(strides: int, padding: str):
    return lambda x, w: tf.nn.conv2d(x, w, strides, padding)


def _depthwise(strides: int, padding: str):
    return lambda x, w: tf.nn.depthwise_conv2d(x, w, [1, strides, strides, 1], padding)


CONV, DOT = "tf.UniformQuantizedConvolution", "tf.UniformQuantizedDot"
CASES = {
    "conv2d_same_relu": Case("conv2d", (2, 9, 9, 3), (3, 3, 3, 4), _conv_attrs(1, "SAME"), _conv(1, "SAME"), 3, CONV,
                             activation="RELU"),
    "conv2d_same_stride2_relu6": Case("conv2d", (2, 8, 8, 3), (3, 3, 3, 4), _conv_attrs(2, "SAME"), _conv(2, "SAME"),
                                      3, CONV, activation="RELU6"),
    "conv2d_valid_per_tensor_no_bias": Case("conv2d", (1, 9, 9, 3), (3, 3, 3, 4), _conv_attrs(2, "VALID"),
                                            _conv(2, "VALID"), None, CONV, bias=False),
    "conv2d_explicit_dilated": Case(
        "conv2d", (1, 9, 9, 3), (3, 3, 3, 4),
        'T = f32, data_format = "NHWC", dilations = [1, 2, 2, 1], explicit_paddings = [0, 0, 1, 2, 0, 1, 0, 0], '
        'padding = "EXPLICIT", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true',
        lambda x, w: tf.nn.conv2d(x, w, 1, [[0, 0], [1, 2], [0, 1], [0, 0]], dilations=2), 3, CONV),
    "depthwise_per_channel": Case("depthwise_conv2d", (2, 8, 8, 3), (3, 3, 3, 1), _conv_attrs(1, "SAME"),
                                  _depthwise(1, "SAME"), 2, CONV, activation="RELU6"),
    # Per channel along the multiplier: output channel c * 3 + m has scale s[m].
    "depthwise_multiplier": Case("depthwise_conv2d", (1, 7, 7, 2), (3, 3, 2, 3), _conv_attrs(2, "VALID"),
                                 _depthwise(2, "VALID"), 3, CONV, bias=False),
    "matmul": Case("matmul", (5, 16), (16, 8), "T = f32, transpose_a = false, transpose_b = false", tf.matmul, 1,
                   DOT),
    "matmul_transpose_b_per_tensor": Case("matmul", (5, 16), (8, 16),
                                          "T = f32, transpose_a = false, transpose_b = true",
                                          lambda x, w: tf.matmul(x, w, transpose_b=True), None, DOT,
                                          activation="RELU"),
    "batch_matmul": Case("batch_matmul", (2, 5, 16), (16, 8), "T = f32, adj_x = false, adj_y = false", tf.matmul, 1,
                         DOT),
    "einsum_heads": Case("einsum", (2, 5, 16), (16, 2, 4), 'N = 2 : i64, T = f32, equation = "btd,dnh->btnh"',
                         lambda x, w: tf.einsum("btd,dnh->btnh", x, w), 2, DOT),
    # Batch and time both dynamic: the product's reshape back reads the run-time shape.
    "einsum_two_dynamic_dims": Case("einsum", (2, 5, 16), (16, 2, 4),
                                    'N = 2 : i64, T = f32, equation = "btd,dnh->btnh"',
                                    lambda x, w: tf.einsum("btd,dnh->btnh", x, w), 2, DOT, dynamic_dims=(0, 1)),
    "einsum_transposed_output": Case("einsum", (2, 5, 16), (16, 8), 'N = 2 : i64, T = f32, equation = "abc,cd->adb"',
                                     lambda x, w: tf.einsum("abc,cd->adb", x, w), 1, DOT, bias=False),
    # A weight with batch dimensions of its own: no 2-D dot expresses it, so int32 TF ops compute it.
    "batch_matmul_batched_weight": Case("batch_matmul", (2, 5, 16), (2, 8, 16), "T = f32, adj_x = false, adj_y = true",
                                        lambda x, w: tf.matmul(x, w, adjoint_b=True), 1, "tf.BatchMatMulV2",
                                        bias=False),
}


def _scast(name: str, storage: str, params: QuantParams, shape) -> str:
    quantized = _tensor(shape, uniform_type_text(params))
    return f"  %{name}q = quant.scast %{name} : {_tensor(shape, storage)} to {quantized}\n"


@dataclass
class Quantized:
    """A case's quantized module and the parameters it was built with."""
    text: str
    y_float: np.ndarray
    out_params: QuantParams | None


def _module(case: Case, x: np.ndarray, seed: int, dynamic: bool = False, float_output: bool = False) -> Quantized:
    """The module as tfq-quantize-composite-functions leaves it: qcast input (or f32 for dynamic
    range), scast int8 weight and int32 bias (f32 for dynamic range), dcast output (or f32)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.5, case.w_shape).astype(np.float32)
    y_float = case.compute(x, w).numpy()
    bias = rng.normal(0.0, 0.5, y_float.shape[-1]).astype(np.float32) if case.bias else None
    in_params = activation_params(x.min(), x.max())
    w_params = weight_params(w, case.weight_axis)
    body = _const("w", quantize_weight(w, w_params), "i8") + _scast("w", "i8", w_params, case.w_shape)
    dyn = case.dynamic_dims
    x_f, y_f = _tensor(case.x_shape, "f32", dyn), _tensor(y_float.shape, "f32", dyn)
    operands, types = ["%xq", "%wq"], [_tensor(case.x_shape, uniform_type_text(in_params), dyn),
                                       _tensor(case.w_shape, uniform_type_text(w_params))]
    if dynamic:
        operands[0], types[0] = "%x", x_f
    else:
        body += f"  %xq = quant.qcast %x : {x_f} to {types[0]}\n"
    if bias is not None:
        y_float = y_float + bias
        if dynamic:
            body += _const("b", bias, "f32")
            operands.append("%b")
            types.append(_tensor(bias.shape, "f32"))
        else:
            b_params = bias_params(in_params.scale, w_params)
            body += _const("b", quantize_bias(bias, b_params), "i32") + _scast("b", "i32", b_params, bias.shape)
            operands.append("%bq")
            types.append(_tensor(bias.shape, uniform_type_text(b_params)))
    y_float = np.maximum(y_float, 0) if case.activation == "RELU" else \
        np.clip(y_float, 0, 6) if case.activation == "RELU6" else y_float
    out_params = None if dynamic or float_output else activation_params(y_float.min(), y_float.max())
    y_type = y_f if out_params is None else _tensor(y_float.shape, uniform_type_text(out_params), dyn)
    body += (f'  %y = "tfq.quantized_op"({", ".join(operands)}) {{kind = "{case.kind}", '
             f'op_attrs = {{{case.op_attrs}}}, activation = "{case.activation}"}} : ({", ".join(types)}) -> {y_type}\n')
    result = "%y"
    if out_params is not None:
        body += f"  %r = quant.dcast %y : {y_type} to {y_f}\n"
        result = "%r"
    text = f"""
func.func @main(%x: {x_f} {{tfq.input_name = "x"}}) -> ({y_f} {{tfq.output_name = "y"}}) {{
{body}  return {result} : {y_f}
}}
"""
    return Quantized(text, y_float, out_params)


def _lower_and_run(text: str, opset: str, x: np.ndarray, feed: str = "x") -> tuple[np.ndarray, str]:
    with new_context() as ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, [opset])
        lowered = str(module)
        assert not ops_named(module.operation, "tfq.quantized_op", "quant.qcast", "quant.dcast", "quant.scast")
        # The storage converts to qint8 and back once: no Bitcast reads a Bitcast.
        assert not [op for op in ops_named(module.operation, "tf.Bitcast")
                    if defining_op(op.operands[0]) is not None and defining_op(op.operands[0]).name == "tf.Bitcast"]
        function = to_concrete_function(module, "main")
        graph_ops = {node.op for node in function.graph.as_graph_def().node}
        return function(**{feed: tf.constant(x)})["y"].numpy(), lowered, graph_ops


def _sqnr(reference: np.ndarray, actual: np.ndarray) -> float:
    noise = np.sum((reference - actual) ** 2)
    return float(10 * np.log10(np.sum(reference ** 2) / max(noise, 1e-30)))


def _input(case: Case) -> np.ndarray:
    return np.random.default_rng(100).uniform(-1.0, 3.0, case.x_shape).astype(np.float32)  # non-zero zero point


@pytest.mark.parametrize("name", sorted(CASES))
def test_static_op_matches_int32_lowering(name: str):
    case = CASES[name]
    x = _input(case)
    quantized = _module(case, x, sorted(CASES).index(name))
    expected, _, _ = _lower_and_run(quantized.text, "tfq-lower-to-tf", x)
    actual, lowered, graph_ops = _lower_and_run(quantized.text, UNIFORM, x)
    step = quantized.out_params.scale
    assert np.max(np.abs(actual - expected)) <= step * 1.001
    assert np.mean(np.abs(actual - expected) > step / 2) < 0.02  # rounding ties only
    assert _sqnr(quantized.y_float, actual) > 30.0
    assert f'"{case.product_op}"' in lowered
    assert case.product_op[3:] in graph_ops


@pytest.mark.parametrize("name", ["conv2d_same_relu", "depthwise_per_channel", "matmul", "einsum_heads"])
def test_float_output_matches_int32_lowering(name: str):
    case = CASES[name]
    x = _input(case)
    quantized = _module(case, x, sorted(CASES).index(name), float_output=True)
    expected, _, _ = _lower_and_run(quantized.text, "tfq-lower-to-tf", x)
    actual, lowered, _ = _lower_and_run(quantized.text, UNIFORM, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert '"tf.UniformDequantize"' in lowered and '"tf.UniformRequantize"' not in lowered


HYBRID = {"conv2d_same_relu": "tf.UniformQuantizedConvolutionHybrid",
          "depthwise_multiplier": "tf.UniformQuantizedConvolutionHybrid",
          "matmul": "tf.UniformQuantizedDotHybrid", "einsum_heads": "tf.UniformQuantizedDotHybrid",
          "einsum_two_dynamic_dims": "tf.UniformQuantizedDotHybrid"}


@pytest.mark.parametrize("name", sorted(HYBRID))
def test_dynamic_range_runs_hybrid_ops(name: str):
    """f32 input: the Hybrid kernels quantize it per batch row (asymmetric), tfq-lower-to-tf per
    batch (symmetric); both stay close to the float result."""
    case = CASES[name]
    x = _input(case)
    quantized = _module(case, x, sorted(CASES).index(name), dynamic=True)
    actual, lowered, graph_ops = _lower_and_run(quantized.text, UNIFORM, x)
    assert f'"{HYBRID[name]}"' in lowered and HYBRID[name][3:] in graph_ops
    assert _sqnr(quantized.y_float, actual) > 30.0
    expected, _, _ = _lower_and_run(quantized.text, "tfq-lower-to-tf", x)
    assert _sqnr(expected, actual) > 30.0


# ----------------------------------------------------------------------------------------------
# End to end: quantize_saved_model with op_set=UNIFORM_QUANTIZED.

from test_quantize_e2e import (EXPECTED, SERVING, calibration_dataset, checked_quantize, fresh_sqnr,  # noqa: E402
                               graph_nodes)

E2E_MODELS = ("conv_bn", "depthwise", "matmul", "einsum", "embedding")
FLOAT_PRODUCTS = {"Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "Einsum"}


def _uniform_options(method: str) -> QuantizationOptions:
    # Every weight quantized: dynamic range leaves weights under 1024 elements float by default.
    options = QuantizationOptions(op_set=OpSet.UNIFORM_QUANTIZED, min_num_elements_for_weights=1)
    options.quantization_method.preset_method = QuantizationMethod.PresetMethod.Value(method)
    return options


@pytest.mark.parametrize("name", E2E_MODELS)
def test_static_model_runs_uniform_quantized_ops(model_dir, tmp_path, name: str):
    """Static int8: as close to float as the XLA and TF opsets (their floors), every product a
    UniformQuantized op (embedding: the gather stays a GatherV2 on the int8 table)."""
    model = model_dir(name)
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, _uniform_options("METHOD_STATIC_RANGE_INT8"),
                              calibration_dataset(model)[SERVING])
    measured = fresh_sqnr(tf.saved_model.load(model), loaded, model)
    assert min(measured.values()) >= EXPECTED[name].floor_db, measured
    ops = {node.op for node in graph_nodes(out)}
    assert ops & {"UniformQuantizedConvolution", "UniformQuantizedDot"}, ops
    assert {"UniformQuantize", "UniformDequantize"} <= ops
    assert not ops & FLOAT_PRODUCTS and not any(op.startswith("Xla") for op in ops), ops


HYBRID_MODELS = {"conv_bn": "UniformQuantizedConvolutionHybrid", "depthwise": "UniformQuantizedConvolutionHybrid",
                 "matmul": "UniformQuantizedDotHybrid", "einsum": "UniformQuantizedDotHybrid"}


@pytest.mark.parametrize("name", sorted(HYBRID_MODELS))
def test_dynamic_range_model_runs_hybrid_ops(model_dir, tmp_path, name: str):
    """Dynamic range: the Hybrid kernels quantize activations per batch at run time; no calibration."""
    model = model_dir(name)
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, _uniform_options("METHOD_DYNAMIC_RANGE_INT8"))
    measured = fresh_sqnr(tf.saved_model.load(model), loaded, model)
    assert min(measured.values()) >= 34.5, measured  # measured 37.6 (matmul) to 45.6 dB (einsum)
    ops = {node.op for node in graph_nodes(out)}
    assert HYBRID_MODELS[name] in ops, ops
    assert not ops & FLOAT_PRODUCTS and not any(op.startswith("Xla") for op in ops), ops
