"""tfq-lower-to-onednn numerics: a hand-built quantized module (contract step 5 in `_quant.py`) lowered
to oneDNN's int8 kernels (_FusedQuantizedConv2D, _FusedQuantizedDepthwiseConv2D, _QuantizedMatMul)
computes what the same module lowered by tfq-lower-to-xla computes (to rounding: measured bit-exact
on every case here), per op, per channel and per tensor, with and without bias and fused relu /
relu6, with a requantized or a float output; what the kernels cannot express falls back to the XLA
form; without TensorFlow's oneDNN the pass refuses. The modules and cases are those of
test_uniform_quantized (imported, not copied)."""
from __future__ import annotations

import os
import subprocess
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from test_uniform_quantized import (CASES, Case, _const, _conv_attrs, _depthwise, _input,  # noqa: E402
                                    _lower_and_run, _module, _sqnr, _tensor)
from tfquant.exporter import to_concrete_function  # noqa: E402
from tfquant.mlir import new_context, parse_module  # noqa: E402
from tfquant.passes._quant import (QuantParams, bias_params, quantize_bias, quantize_weight,  # noqa: E402
                                   uniform_type_text, weight_params)
from tfquant.pipeline import run_pipeline  # noqa: E402

ONEDNN, XLA = "tfq-lower-to-onednn", "tfq-lower-to-xla"
CONV, DEPTHWISE, MATMUL = "_FusedQuantizedConv2D", "_FusedQuantizedDepthwiseConv2D", "_QuantizedMatMul"
KERNEL_OPS = {CONV, DEPTHWISE, MATMUL}

# More combinations of granularity, bias and activation than test_uniform_quantized's cases.
EXTRA = {
    "conv2d_per_tensor_relu6": Case("conv2d", (1, 8, 8, 4), (3, 3, 4, 5), _conv_attrs(1, "SAME"),
                                    lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), None, "", activation="RELU6"),
    "conv2d_no_bias_relu": Case("conv2d", (2, 7, 7, 3), (1, 1, 3, 6), _conv_attrs(1, "VALID"),
                                lambda x, w: tf.nn.conv2d(x, w, 1, "VALID"), 3, "", bias=False, activation="RELU"),
    "depthwise_per_tensor_relu": Case("depthwise_conv2d", (2, 8, 8, 3), (3, 3, 3, 2), _conv_attrs(2, "SAME"),
                                      _depthwise(2, "SAME"), None, "", activation="RELU"),
    "matmul_relu6": Case("matmul", (5, 16), (16, 8), "T = f32, transpose_a = false, transpose_b = false",
                         tf.matmul, 1, "", activation="RELU6"),
    "matmul_no_bias_per_tensor": Case("matmul", (3, 24), (24, 5), "T = f32, transpose_a = false, transpose_b = false",
                                      tf.matmul, None, "", bias=False),
    "matmul_transpose_a": Case("matmul", (16, 5), (16, 8), "T = f32, transpose_a = true, transpose_b = false",
                               lambda x, w: tf.matmul(x, w, transpose_a=True), 1, ""),
}
ALL = {**CASES, **EXTRA}
# The kernel each case runs on (a weight with batch dimensions of its own has no 2-D form: XLA's).
KERNEL = {"conv2d": CONV, "depthwise_conv2d": DEPTHWISE, "matmul": MATMUL, "batch_matmul": MATMUL, "einsum": MATMUL}
FALLBACK = {"batch_matmul_batched_weight": "XlaDotV2"}


def _expected_op(name: str) -> str:
    return FALLBACK.get(name, KERNEL[ALL[name].kind])


def _seed(name: str) -> int:
    return sorted(ALL).index(name)


def _non_negative_input(case: Case) -> np.ndarray:
    """A relu-like input: zero point -128 (no padding with the zero point, no compensation term)."""
    return np.random.default_rng(101).uniform(0.0, 2.0, case.x_shape).astype(np.float32)


def _symmetric_input(case: Case) -> np.ndarray:
    return np.random.default_rng(102).uniform(-2.0, 2.0, case.x_shape).astype(np.float32)


INPUTS = {"mixed": _input, "non_negative": _non_negative_input, "symmetric": _symmetric_input}


def _assert_matches_xla(actual: np.ndarray, expected: np.ndarray, step: float) -> None:
    """Equal to rounding: at most one output step apart, and only on rounding ties."""
    assert np.max(np.abs(actual - expected)) <= step * 1.001
    assert np.mean(np.abs(actual - expected) > step / 2) < 0.01


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("input_kind", sorted(INPUTS))
def test_static_op_matches_xla_lowering(name: str, input_kind: str):
    case = ALL[name]
    x = INPUTS[input_kind](case)
    quantized = _module(case, x, _seed(name))
    expected, _, _ = _lower_and_run(quantized.text, XLA, x)
    actual, lowered, graph_ops = _lower_and_run(quantized.text, ONEDNN, x)
    _assert_matches_xla(actual, expected, quantized.out_params.scale)
    assert _sqnr(quantized.y_float, actual) > 30.0
    assert _expected_op(name) in graph_ops, graph_ops
    assert f'"tf.{_expected_op(name)}"' in lowered
    if name not in FALLBACK:  # the product, bias, activation and requantize in one kernel
        assert not graph_ops & {"XlaConvV2", "XlaDotV2", "DepthwiseConv2dNative"}
        assert "Requantize" in lowered


@pytest.mark.parametrize("name", sorted(ALL))
def test_float_output_matches_xla_lowering(name: str):
    """A float output comes out of the kernel's Dequantize fusion (matmul) or its exact int32
    accumulator times s_in x s_w (conv, depthwise)."""
    case = ALL[name]
    x = _input(case)
    quantized = _module(case, x, _seed(name), float_output=True)
    expected, _, _ = _lower_and_run(quantized.text, XLA, x)
    actual, lowered, graph_ops = _lower_and_run(quantized.text, ONEDNN, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert _expected_op(name) in graph_ops
    if name not in FALLBACK:
        assert "Requantize" not in lowered
        if case.kind in ("matmul", "batch_matmul", "einsum"):
            assert '"Dequantize"' in lowered



@pytest.mark.parametrize("name, params", [("conv2d_same_relu", (0.02, -100)),  # relu at storage -100: Maximum
                                          ("conv2d_same_stride2_relu6", (0.1, -128)),  # 6.0 at -68: Minimum
                                          ("depthwise_per_channel", (0.1, -20)),  # both
                                          ("matmul_transpose_b_per_tensor", (0.02, -100))])  # fused relu
def test_activation_range_inside_the_output_range(name: str, params: tuple[float, int]):
    """Output parameters wider than the activation's range (a QAT or user-given range): the conv's
    saturation no longer is the relu / relu6, a clip on the int8 output is."""
    case = ALL[name]
    x = _input(case)
    quantized = _module(case, x, _seed(name))
    out = quantized.out_params
    text = quantized.text.replace(uniform_type_text(out), uniform_type_text(QuantParams((params[0],), (params[1],))))
    assert text != quantized.text
    expected, _, _ = _lower_and_run(text, XLA, x)
    actual, lowered, _ = _lower_and_run(text, ONEDNN, x)
    _assert_matches_xla(actual, expected, params[0])
    if case.kind != "matmul":
        assert '"tf.Minimum"' in lowered or '"tf.Maximum"' in lowered


@pytest.mark.parametrize("kind", ["conv2d", "depthwise_conv2d", "matmul"])
def test_batch_size_changes_between_calls(kind: str):
    """A dynamic batch: the kernels cache the reordered weight and the bias from the first call;
    calls at other batch sizes after it compute the same as the XLA form."""
    case = {"conv2d": Case("conv2d", (2, 9, 9, 8), (3, 3, 8, 16), _conv_attrs(1, "SAME"),
                           lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), 3, "", activation="RELU", dynamic_dims=(0,)),
            "depthwise_conv2d": Case("depthwise_conv2d", (2, 9, 9, 8), (3, 3, 8, 1), _conv_attrs(1, "SAME"),
                                     _depthwise(1, "SAME"), 2, "", activation="RELU", dynamic_dims=(0,)),
            "matmul": Case("matmul", (5, 64), (64, 32), "T = f32, transpose_a = false, transpose_b = false", tf.matmul,
                           1, "", activation="RELU", dynamic_dims=(0,))}[kind]
    quantized = _module(case, _input(case), 0)
    rng = np.random.default_rng(1)
    batches = [rng.uniform(-1.0, 3.0, (b, *case.x_shape[1:])).astype(np.float32) for b in (1, 32, 1, 7)]
    results = {}
    for opset in (XLA, ONEDNN):
        with new_context() as ctx:
            module = parse_module(quantized.text, ctx)
            run_pipeline(module, [opset])
            function = to_concrete_function(module, "main")
            results[opset] = [function(x=tf.constant(x))["y"].numpy() for x in batches]
    for expected, actual in zip(results[XLA], results[ONEDNN]):
        _assert_matches_xla(actual, expected, quantized.out_params.scale)

# Two layers: the first's int8 output feeds the second's kernel directly (no Bitcast pair), the
# second returns float. Requantize with an asymmetric output and relu6 fused; input zero point 10.
CHAIN = """
func.func @main(%x: tensor<4x8xi8> {tfq.input_name = "x"}) -> (tensor<4x2xf32> {tfq.output_name = "y"}) {
  %xq = quant.scast %x : tensor<4x8xi8> to tensor<4x8x!quant.uniform<i8:f32, 5.000000e-02:10>>
  %w = "tf.Const"() {value = dense<[[1, -2, 3], [4, 5, -6], [-7, 8, 9], [10, -11, 12], [13, 14, -15], [-16, 17, 18], [19, -20, 21], [22, 23, -24]]> : tensor<8x3xi8>, dtype = i8} : () -> tensor<8x3xi8>
  %wq = quant.scast %w : tensor<8x3xi8> to tensor<8x3x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02}>>
  %b = "tf.Const"() {value = dense<[100, -200, 300]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %bq = quant.scast %b : tensor<3xi32> to tensor<3x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>>
  %h = "tfq.quantized_op"(%xq, %wq, %bq) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "RELU6"} : (tensor<4x8x!quant.uniform<i8:f32, 5.000000e-02:10>>, tensor<8x3x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02}>>, tensor<3x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>>) -> tensor<4x3x!quant.uniform<i8:f32, 2.000000e-02:-100>>
  %w2 = "tf.Const"() {value = dense<[[5, -7, 9], [-3, 2, 1]]> : tensor<2x3xi8>, dtype = i8} : () -> tensor<2x3xi8>
  %w2q = quant.scast %w2 : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%h, %w2q) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}, activation = "NONE"} : (tensor<4x3x!quant.uniform<i8:f32, 2.000000e-02:-100>>, tensor<2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}
"""


def test_layers_chain_on_int8():
    x = np.random.default_rng(7).integers(-128, 128, (4, 8)).astype(np.int8)
    expected, _, _ = _lower_and_run(CHAIN, XLA, x)
    actual, lowered, graph_ops = _lower_and_run(CHAIN, ONEDNN, x)  # asserts no Bitcast of a Bitcast
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert lowered.count('"tf._QuantizedMatMul"') == 2 and lowered.count('"tf.Bitcast"') == 3  # x, two weights
    assert not graph_ops & {"Cast", "Round", "ClipByValue"}  # no quantize arithmetic between the layers


def _cnn_chain() -> str:
    """conv (relu) -> depthwise (relu6 on [0, 6]) -> conv (float out), each relu output with zero point
    -128: the kernels pass it to each other as quint8."""
    rng = np.random.default_rng(3)
    x_p, h_p = QuantParams((0.02,), (-128,)), QuantParams((0.05,), (-128,))
    d_p = QuantParams((6.0 / 255,), (-128,))
    text, value, value_type = "", "%xq", _tensor((1, 12, 12, 8), uniform_type_text(x_p))
    layers = [("conv2d", (3, 3, 8, 16), 3, "RELU", h_p), ("depthwise_conv2d", (3, 3, 16, 1), 2, "RELU6", d_p),
              ("conv2d", (1, 1, 16, 4), 3, "NONE", None)]
    in_p = x_p
    for i, (kind, w_shape, axis, activation, out_p) in enumerate(layers):
        w = rng.normal(0.0, 0.3, w_shape).astype(np.float32)
        w_p = weight_params(w, axis)
        channels = w_shape[2] * w_shape[3] if kind == "depthwise_conv2d" else w_shape[3]
        b_p = bias_params(in_p.scale, w_p)
        bias = quantize_bias(rng.normal(0.0, 0.3, channels), b_p)
        w_t, b_t = _tensor(w_shape, uniform_type_text(w_p)), _tensor((channels,), uniform_type_text(b_p))
        y_shape = (1, 12, 12, channels)
        y_t = _tensor(y_shape, "f32" if out_p is None else uniform_type_text(out_p))
        text += (_const(f"w{i}", quantize_weight(w, w_p), "i8") +
                 f"  %w{i}q = quant.scast %w{i} : {_tensor(w_shape, 'i8')} to {w_t}\n" + _const(f"b{i}", bias, "i32") +
                 f"  %b{i}q = quant.scast %b{i} : {_tensor((channels,), 'i32')} to {b_t}\n" +
                 f'  %y{i} = "tfq.quantized_op"({value}, %w{i}q, %b{i}q) {{kind = "{kind}", op_attrs = {{'
                 f'{_conv_attrs(1, "SAME")}}}, activation = "{activation}"}} : ({value_type}, {w_t}, {b_t}) -> {y_t}\n')
        value, value_type, in_p = f"%y{i}", y_t, out_p
    x_f, y_f = _tensor((1, 12, 12, 8), "f32"), _tensor((1, 12, 12, 4), "f32")
    return (f'func.func @main(%x: {x_f} {{tfq.input_name = "x"}}) -> ({y_f} {{tfq.output_name = "y"}}) {{\n'
            f"  %xq = quant.qcast %x : {x_f} to {_tensor((1, 12, 12, 8), uniform_type_text(x_p))}\n"
            f"{text}  return %y2 : {y_f}\n}}\n")


def test_relu_outputs_pass_between_kernels_as_quint8():
    text = _cnn_chain()
    x = np.random.default_rng(8).uniform(0.0, 4.0, (1, 12, 12, 8)).astype(np.float32)
    expected, _, _ = _lower_and_run(text, XLA, x)
    actual, lowered, graph_ops = _lower_and_run(text, ONEDNN, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert {CONV, DEPTHWISE} <= graph_ops
    # The input's quantize writes quint8 (QuantizeV2): no sign flip anywhere, no padding.
    assert '"tf.BitwiseXor"' not in lowered and "tf.PadV2" not in lowered and "QuantizeV2" in graph_ops
    assert lowered.count("Tinput = !tf_type.quint8") == 3


@pytest.mark.parametrize("name", ["conv2d_same_relu", "matmul", "depthwise_per_channel"])
def test_dynamic_range_falls_back_to_xla_form(name: str):
    """An f32 input quantized per batch at run time has no oneDNN form here: XLA's, unchanged."""
    case = CASES[name]
    x = _input(case)
    quantized = _module(case, x, _seed(name), dynamic=True)
    expected, _, _ = _lower_and_run(quantized.text, XLA, x)
    actual, _, graph_ops = _lower_and_run(quantized.text, ONEDNN, x)
    np.testing.assert_array_equal(actual, expected)
    assert not graph_ops & KERNEL_OPS




@pytest.mark.parametrize("zero_point", [-128, -5])
def test_quantize_and_dequantize_casts(zero_point: int):
    """qcast / dcast with zero point -128: QuantizeV2 / Dequantize on quint8 (SCALED, [0, 255 s]),
    the same values as tfq-lower-to-xla's TF ops (rounding ties apart); any other: those TF ops."""
    t = f"tensor<4x300x!quant.uniform<i8:f32, 3.700000e-02:{zero_point}>>"
    text = f"""
func.func @main(%x: tensor<4x300xf32> {{tfq.input_name = "x"}}) -> (tensor<4x300xf32> {{tfq.output_name = "y"}}) {{
  %q = quant.qcast %x : tensor<4x300xf32> to {t}
  %y = quant.dcast %q : {t} to tensor<4x300xf32>
  return %y : tensor<4x300xf32>
}}
"""
    x = np.random.default_rng(9).normal(1.0, 4.0, (4, 300)).astype(np.float32)
    with new_context() as ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, [ONEDNN])
        function = to_concrete_function(module, "main")
        ops = {node.op for node in function.graph.as_graph_def().node}
        actual = function(x=tf.constant(x))["y"].numpy()
    expected, _, _ = _lower_and_run(text, XLA, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
    assert ({"QuantizeV2", "Dequantize"} <= ops) == (zero_point == -128)
    assert "BitwiseXor" not in ops  # the quantize's flip to int8 and the dequantize's back cancel

@pytest.mark.parametrize("name", ["conv2d_same", "matmul"])
def test_16_bit_activations_fall_back_to_xla_form(name: str):
    """No int16 oneDNN kernels here: 16-bit activations are lowered as tfq-lower-to-xla lowers them."""
    from test_lowering import CASES as LOWERING_CASES, _case_module
    x = np.random.default_rng(5).uniform(-1.0, 3.0, LOWERING_CASES[name].x_shape).astype(np.float32)
    text, _ = _case_module(name, x, bits=16)
    expected, _, _ = _lower_and_run(text, XLA, x)
    actual, _, graph_ops = _lower_and_run(text, ONEDNN, x)
    np.testing.assert_array_equal(actual, expected)
    assert not graph_ops & KERNEL_OPS

def test_refused_without_onednn(tmp_path):
    """TF_ENABLE_ONEDNN_OPTS=0: a CompileError naming the opset, never a model."""
    case = CASES["conv2d_same_relu"]
    source = tmp_path / "conv.mlir"
    source.write_text(_module(case, _input(case), 0).text)
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    opt = os.path.join(os.path.dirname(sys.executable), "tfquant-opt")
    result = subprocess.run([opt, str(source), f"-{ONEDNN}"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert "the ONEDNN opset needs TensorFlow's oneDNN kernels" in result.stderr
    assert "TF_ENABLE_ONEDNN_OPTS=0" in result.stderr
    assert "_FusedQuantizedConv2D" not in result.stdout


def test_no_quantized_op_needs_no_onednn(tmp_path):
    """A module with nothing to lower is not refused (the check runs only where a kernel is needed)."""
    source = tmp_path / "float.mlir"
    source.write_text('func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n  return %x : tensor<2xf32>\n}\n')
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    opt = os.path.join(os.path.dirname(sys.executable), "tfquant-opt")
    result = subprocess.run([opt, str(source), f"-{ONEDNN}"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr


def test_exported_function_runs_the_kernels():
    """The kernels are in the exported graph as built (names without a leading underscore)."""
    case = CASES["conv2d_same_relu"]
    x = _input(case)
    with new_context() as ctx:
        module = parse_module(_module(case, x, 0).text, ctx)
        run_pipeline(module, [ONEDNN])
        function = to_concrete_function(module, "main")
        nodes = {node.name: node.op for node in function.graph.as_graph_def().node}
    assert CONV in nodes.values()
    assert not any(name.startswith("_") for name in nodes)



@pytest.mark.parametrize("name", ["conv2d_same_relu", "depthwise_per_channel", "einsum_heads"])
def test_weights_stored_as_variables(tmp_path, name: str):
    """The exporter stores weights as variables (here every one): the kernels take them with
    is_filter_const / is_weight_const (the weight never changes) and compute the same."""
    from tfquant.exporter import export_saved_model
    case = CASES[name]
    x = _input(case)
    text = _module(case, x, _seed(name)).text
    expected, _, _ = _lower_and_run(text, ONEDNN, x)
    with new_context() as ctx:
        module = parse_module(text, ctx)
        run_pipeline(module, [ONEDNN])
        export_saved_model(module, str(tmp_path / "m"), signature_keys=["main"], variable_threshold=0)
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert loaded.signatures["main"](x=tf.constant(x))["y"].numpy().tolist() == expected.tolist()
    assert any(v.dtype == tf.int8 for v in loaded.weights)  # the int8 weight, a variable


# ----------------------------------------------------------------------------------------------
# End to end: quantize_saved_model with opset="ONEDNN".

from test_quantize_e2e import (EXPECTED, SERVING, calibration_dataset, checked_quantize, fresh_sqnr,  # noqa: E402
                               graph_nodes)
from tfquant.options import QuantizationMethod, QuantizationOptions  # noqa: E402

E2E_KERNELS = {"conv_bn": {CONV}, "depthwise": {DEPTHWISE}, "matmul": {MATMUL}, "einsum": {MATMUL}}


@pytest.mark.parametrize("name", sorted(E2E_KERNELS))
def test_static_model_runs_onednn_kernels(model_dir, tmp_path, name: str):
    """Static int8 through the ONEDNN opset: as close to float as the XLA opset's floor, every
    product a oneDNN kernel, no float product and no XLA op left."""
    model = model_dir(name)
    out = str(tmp_path / "out")
    options = QuantizationOptions()
    options.quantization_method.preset_method = QuantizationMethod.PresetMethod.Value("METHOD_STATIC_RANGE_INT8")
    loaded = checked_quantize(model, out, options, calibration_dataset(model)[SERVING], opset="ONEDNN")
    measured = fresh_sqnr(tf.saved_model.load(model), loaded, model)
    assert min(measured.values()) >= EXPECTED[name].floor_db, measured
    ops = {node.op for node in graph_nodes(out)}
    assert E2E_KERNELS[name] <= ops, ops
    assert not ops & {"Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "Einsum"}, ops
    assert not any(op.startswith("Xla") for op in ops), ops
