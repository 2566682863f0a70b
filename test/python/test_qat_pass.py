"""tfq-convert-fake-quant-to-qdq against TensorFlow's fake-quant kernels, and a QAT model through lifting.

The quantized types the pass builds must reproduce TensorFlow's fake quantization: dequantize(quantize(x))
with the scale and zero point read back from the type (as the later passes read them) equals what
tf.quantization.fake_quant_* computes, for every op kind, bit width and narrow range.
"""
from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import qat_models  # noqa: E402
import tfquant  # noqa: E402
from tfquant.mlir import ir, new_context, ops_named, parse_module, walk_ops  # noqa: E402
from tfquant.passes._quant import QuantParams, parse_uniform, uniform_type_text  # noqa: E402
from tfquant.passes._tf_ops import callee_name, defining_op  # noqa: E402
from tfquant.passes.convert_fake_quant_to_qdq import fake_quant_params  # noqa: E402
from tfquant.pipeline import run_pipeline  # noqa: E402

CONVERT = "builtin.module(tfq-convert-fake-quant-to-qdq)"
QAT_PIPELINE = ("builtin.module(tfq-convert-fake-quant-to-qdq,tfq-prepare-lifting,"
                "tfq-lift-quantizable-spots-as-functions)")

# (min, max, num_bits, narrow_range): ranges around, above and below zero, every storage width.
PER_TENSOR_CASES = [
    (-1.0, 1.0, 8, False), (-6.0, 6.0, 8, False), (0.5, 2.0, 8, False), (-2.0, -0.5, 8, False),
    (-0.3, 5.9, 8, True), (-1.0, 1.0, 4, True), (-2.5, 0.7, 4, False), (-1.0, 3.0, 2, False),
    (-3.7, 1.3, 16, False), (-3.7, 1.3, 16, True), (-1.0, 1.0, 12, False),
]


def _type_text(values: np.ndarray) -> str:
    return "tensor<" + "".join(f"{d}x" for d in values.shape) + "f32>"


def _dense(values: np.ndarray) -> str:
    """A dense attribute of a scalar or vector, each float printed exactly."""
    body = repr(float(values)) if values.ndim == 0 else "[" + ", ".join(repr(float(v)) for v in values) + "]"
    return f"dense<{body}> : {_type_text(values)}"


def _convert(op_text: str, range_values: tuple[np.ndarray, ...] = ()) -> QuantParams:
    """Run the pass on one fake-quant op of a (4, C) input; the QuantParams of the qcast it builds."""
    consts = "\n".join(f'  %r{i} = "tf.Const"() {{value = {_dense(v)}, dtype = f32}} : () -> {_type_text(v)}'
                       for i, v in enumerate(range_values))
    text = f"func.func @f(%x: tensor<4x3xf32>) -> tensor<4x3xf32> {{\n{consts}\n  {op_text}\n" \
           "  return %y : tensor<4x3xf32>\n}"
    module = parse_module(text, new_context())
    run_pipeline(module, CONVERT)
    (qcast,) = ops_named(module.operation, "quant.qcast")
    assert not ops_named(module.operation, "tf.FakeQuantWithMinMaxVars", "tf.FakeQuantWithMinMaxArgs",
                         "tf.FakeQuantWithMinMaxVarsPerChannel")
    return parse_uniform(ir.ShapedType(qcast.results[0].type).element_type)


def _fake_quant_with_type(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """dequantize(quantize(x)) for the type's parameters (per channel along the last axis)."""
    scales, zero_points = np.asarray(params.scales, np.float64), np.asarray(params.zero_points, np.float64)
    scaled = x / scales
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # halves away from zero, as TensorFlow
    q = np.clip(rounded + zero_points, params.storage_min, params.storage_max)
    return (q - zero_points) * scales


def _assert_matches_tensorflow(x: np.ndarray, ours: np.ndarray, theirs: np.ndarray, params: QuantParams) -> None:
    """Equal to float rounding. A value halfway between two levels may round either way: TensorFlow
    computes in float32 in units of levels from the bottom of the range, so "halfway" is as wide as
    float32's precision at the number of levels (about 0.008 of a level at 16 bits)."""
    scales = np.asarray(params.scales)
    float_error = 1e-5 * np.maximum(1.0, np.abs(theirs))
    exact = np.abs(ours - theirs) <= float_error
    fraction = np.abs(x / scales) % 1.0
    tie_width = 1e-3 + 2 * (params.storage_max - params.storage_min) * np.finfo(np.float32).eps
    at_tie = np.abs(fraction - 0.5) < tie_width
    assert np.all(exact | at_tie), (x[~(exact | at_tie)], ours[~(exact | at_tie)], theirs[~(exact | at_tie)])
    assert np.all(np.abs(ours - theirs) <= scales + float_error)


def _inputs(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Values across and beyond each channel's range, of shape (4000, C)."""
    rng = np.random.default_rng(7)
    span = np.maximum(high - low, 1e-3)
    return (low - 0.3 * span + rng.random((4000, len(low))) * 1.6 * span).astype(np.float32)


@pytest.mark.parametrize("op", ["vars", "args"])
@pytest.mark.parametrize("low,high,num_bits,narrow", PER_TENSOR_CASES)
def test_per_tensor_matches_tensorflow(op, low, high, num_bits, narrow):
    attrs = f"narrow_range = {str(narrow).lower()}, num_bits = {num_bits} : i64"
    if op == "vars":
        params = _convert(f'%y = "tf.FakeQuantWithMinMaxVars"(%x, %r0, %r1) {{{attrs}}} : '
                          "(tensor<4x3xf32>, tensor<f32>, tensor<f32>) -> tensor<4x3xf32>",
                          (np.array(low, np.float32), np.array(high, np.float32)))
        theirs = tf.quantization.fake_quant_with_min_max_vars
    else:
        params = _convert(f'%y = "tf.FakeQuantWithMinMaxArgs"(%x) {{min = {low} : f32, max = {high} : f32, {attrs}}} : '
                          "(tensor<4x3xf32>) -> tensor<4x3xf32>")
        theirs = tf.quantization.fake_quant_with_min_max_args
    assert params.axis is None
    x = _inputs(np.array([low], np.float32), np.array([high], np.float32))
    expected = theirs(x, low, high, num_bits=num_bits, narrow_range=narrow).numpy()
    _assert_matches_tensorflow(x, _fake_quant_with_type(x, params), expected, params)


@pytest.mark.parametrize("num_bits,narrow", [(8, True), (8, False), (5, True), (16, False)])
def test_per_channel_matches_tensorflow(num_bits, narrow):
    low = np.array([-1.3, 0.2, -0.004], np.float32)
    high = np.array([0.9, 3.1, 0.02], np.float32)
    params = _convert(f'%y = "tf.FakeQuantWithMinMaxVarsPerChannel"(%x, %r0, %r1) '
                      f"{{narrow_range = {str(narrow).lower()}, num_bits = {num_bits} : i64}} : "
                      "(tensor<4x3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<4x3xf32>", (low, high))
    assert params.axis == 1 and len(params.scales) == 3
    x = _inputs(low, high)
    expected = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        x, low, high, num_bits=num_bits, narrow_range=narrow).numpy()
    _assert_matches_tensorflow(x, _fake_quant_with_type(x, params), expected, params)


@pytest.mark.parametrize("num_bits", range(2, 17))
@pytest.mark.parametrize("narrow", [False, True])
@pytest.mark.parametrize("axis", [None, 2])
def test_types_round_trip(num_bits, narrow, axis):
    """Every type the pass builds reads back through parse_uniform as the parameters it was built from."""
    low, high = np.array([-1.7, 0.0, -0.25], np.float32), np.array([0.3, 4.0, 0.0], np.float32)
    if axis is None:
        low, high = low[:1], high[:1]
    params = fake_quant_params(low, high, num_bits, narrow, axis)
    assert params.storage_max == 2 ** (num_bits - 1) - 1
    assert params.storage_min == -params.storage_max - (0 if narrow else 1)
    with new_context():
        parsed = ir.Type.parse(uniform_type_text(params))
    assert parse_uniform(parsed) == params


@pytest.fixture(scope="module")
def qat_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("qat") / "qat_conv_dense")
    return path, qat_models.build_qat_conv_dense(path)


def _weight_qcast(call: ir.Operation) -> ir.Operation:
    """The quant.qcast of a tf.Const behind a lifted call's weight operand, which must be a quant.dcast."""
    # A lifted call takes its one activation (GatherV2: the indices) first, then the weight.
    dcast = defining_op(call.operands[1])
    assert dcast is not None and dcast.name == "quant.dcast"
    qcast = defining_op(dcast.operands[0])
    assert qcast is not None and qcast.name == "quant.qcast"
    assert defining_op(qcast.operands[0]).name == "tf.Const"
    return qcast


def test_qat_model_lifts_with_trained_weight_types(qat_model):
    path, info = qat_model
    module = tfquant.import_saved_model(path)
    run_pipeline(module, QAT_PIPELINE)
    module_op = module.operation
    assert not walk_ops(module_op, lambda op: op.name.startswith("tf.FakeQuant"))
    calls = ops_named(module_op, "tf.PartitionedCall")
    assert len(calls) == 2
    # The dense layer's AddV2 bias stays outside until tfq-prepare-lifting turns it into a BiasAdd
    # above a QAT weight too: either name is right here.
    conv_call, dense_call = (next(c for c in calls if callee_name(c).startswith(stem))
                             for stem in ("composite_conv2d_with_bias_and_relu_fn", "composite_matmul"))

    conv_qcast = _weight_qcast(conv_call)
    conv_params = parse_uniform(ir.ShapedType(conv_qcast.results[0].type).element_type)
    assert (conv_params.axis, len(conv_params.scales)) == (3, 4)
    # Symmetric trained ranges in narrow range give zero points of 0, as post-training weights have.
    assert (conv_params.storage_min, conv_params.storage_max, conv_params.zero_points) == (-127, 127, (0,) * 4)
    # The per-channel weight type reproduces the model's own fake quantization of the kernel.
    kernel = np.asarray(defining_op(conv_qcast.operands[0]).attributes["value"])
    expected = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, *info["kernel_range"], narrow_range=True).numpy()
    _assert_matches_tensorflow(kernel, _fake_quant_with_type(kernel, conv_params), expected, conv_params)

    dense_qcast = _weight_qcast(dense_call)
    dense_params = parse_uniform(ir.ShapedType(dense_qcast.results[0].type).element_type)
    assert (dense_params.axis, dense_params.storage_min, dense_params.storage_max, dense_params.zero_points) == \
        (None, -127, 127, (0,))
    # Input, conv output and dense output keep their activation pairs; two weights have theirs.
    assert len(ops_named(module_op, "quant.qcast")) == len(ops_named(module_op, "quant.dcast")) == 5
