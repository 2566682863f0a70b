"""Every quantization method end to end, on the opsets it supports, and unit-wise specs.

Each test quantizes a small model built in the session, runs the result against the float model
(or, for a QAT model, against the model's own fake-quantized outputs) and checks what the exported
graph holds: the op families each method promises and the weights' stored dtypes and sizes.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from test_quantize_e2e import (SERVING, calibration_dataset, checked_quantize, fresh_sqnr, graph_nodes,
                               int8_weights, product_ops, run, stored_tensors)
from tfquant.options import OpSet, QuantizationMethod, QuantizationOptions, UnitWiseQuantizationSpec

Preset = QuantizationMethod.PresetMethod
FAKE_QUANT_OPS = {"FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel", "FakeQuantWithMinMaxArgs"}


def options(opset: str = "XLA", preset=None, **fields) -> QuantizationOptions:
    proto = QuantizationOptions(op_set=OpSet.Value(opset), **fields)
    if preset is not None:
        proto.quantization_method.preset_method = preset
    return proto


def float_model(model):
    return tf.saved_model.load(model)


def op_types(saved_model_dir: str) -> set[str]:
    return {node.op for node in graph_nodes(saved_model_dir)}


def float_weight_elements(saved_model_dir: str, dtype) -> int:
    """Elements of the stored tensors of `dtype` with at least 1024 elements (weights, not scalars)."""
    return sum(t.size for t in stored_tensors(saved_model_dir) if t.dtype == dtype and t.size >= 1024)


# ---------------------------------------------------------------------------------------------
# Dynamic range

@pytest.mark.parametrize("opset", ["XLA", "TF", "UNIFORM_QUANTIZED"])
def test_dynamic_range_needs_no_dataset(model_dir, tmp_path, opset):
    model = model_dir("wide_channels")
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, options(opset, Preset.METHOD_DYNAMIC_RANGE_INT8))
    assert loaded.quantization_report.quantized_layers == {"MatMul": (1, 1)}
    assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 35
    (weight,) = int8_weights(out)
    assert weight.shape == (256, 256)
    assert float_weight_elements(out, np.float32) == 0
    if opset == "UNIFORM_QUANTIZED":
        assert "UniformQuantizedDotHybrid" in op_types(out)
    else:  # the activation is quantized per batch at run time: its range comes from the batch
        assert {"Min", "Max", "Round"} <= op_types(out)
        assert product_ops(out) == {("XlaDotV2" if opset == "XLA" else "MatMul", "int8" if opset == "XLA"
                                     else "int32"): 1}


def test_dynamic_range_keeps_small_weights_float(model_dir, tmp_path):
    """TensorFlow's rule: weights under min_num_elements_for_weights (1024 by default) stay float."""
    model = model_dir("matmul")  # 16x32 and 32x4 weights
    loaded = checked_quantize(model, str(tmp_path / "small"), options(preset=Preset.METHOD_DYNAMIC_RANGE_INT8))
    report = loaded.quantization_report
    assert report.quantized_layers == {"MatMul": (0, 2)}
    assert [u.reason for u in report.float_units] == [
        "its weight has 512 elements, fewer than min_num_elements_for_weights (1024)",
        "its weight has 128 elements, fewer than min_num_elements_for_weights (1024)"]
    loaded = checked_quantize(model, str(tmp_path / "all"), options(preset=Preset.METHOD_DYNAMIC_RANGE_INT8,
                                                                     min_num_elements_for_weights=1))
    assert loaded.quantization_report.quantized_layers == {"MatMul": (2, 2)}
    assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 30


def test_dynamic_range_conv_and_depthwise(model_dir, tmp_path):
    for name in ("conv_bn", "depthwise"):
        model = model_dir(name)
        loaded = checked_quantize(model, str(tmp_path / name), options(preset=Preset.METHOD_DYNAMIC_RANGE_INT8,
                                                                       min_num_elements_for_weights=1))
        assert all(q == total for q, total in loaded.quantization_report.quantized_layers.values())
        assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 30


def test_a_dataset_for_a_method_that_needs_none_is_a_warning(model_dir, tmp_path):
    model = model_dir("wide_channels")
    with pytest.warns(UserWarning, match="method dynamic_range_int8 needs no representative dataset"):
        checked_quantize(model, str(tmp_path / "out"), options(preset=Preset.METHOD_DYNAMIC_RANGE_INT8),
                         calibration_dataset(model))


# ---------------------------------------------------------------------------------------------
# Weight-only int8 and float16

def test_weight_only_int8_stores_int8_and_computes_in_float(model_dir, tmp_path):
    model = model_dir("wide_channels")
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, options(preset=Preset.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8))
    assert loaded.quantization_report.quantized_layers == {"MatMul": (1, 1)}
    assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 38
    assert product_ops(out) == {("MatMul", "float32"): 1}
    assert [w.shape for w in int8_weights(out)] == [(256, 256)]
    assert float_weight_elements(out, np.float32) == 0
    assert loaded.quantization_report.output_bytes < 0.3 * loaded.quantization_report.input_bytes


@pytest.mark.parametrize("opset", ["XLA", "TF", "UNIFORM_QUANTIZED"])
def test_float16_weights_halve_the_size(model_dir, tmp_path, opset):
    model = model_dir("wide_channels")
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, options(opset), method="weight_only_float16")
    report = loaded.quantization_report
    assert report.method == "weight_only_float16"
    assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 60
    assert float_weight_elements(out, np.float16) == 256 * 256
    assert float_weight_elements(out, np.float32) == 0
    assert product_ops(out) == {("MatMul", "float32"): 1}
    assert report.output_bytes < 0.52 * report.input_bytes


def test_weight_only_on_the_tf_opset_is_refused_as_tensorflow_does(model_dir, tmp_path):
    with pytest.raises(ValueError, match="TF/Uniform quantized opset does not support weight-only"):
        checked_quantize(model_dir("wide_channels"), str(tmp_path / "out"),
                         options("TF", Preset.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8))


# ---------------------------------------------------------------------------------------------
# 16-bit activations

@pytest.mark.parametrize("opset", ["XLA", "TF"])
def test_int16_activations_are_more_accurate_than_int8(model_dir, tmp_path, opset):
    model = model_dir("conv_bn")
    data = calibration_dataset(model)
    int8 = checked_quantize(model, str(tmp_path / "int8"), options(opset), data)
    int16 = checked_quantize(model, str(tmp_path / "int16"), options(opset), data, method="static_range_int16x8")
    reference = float_model(model)
    sqnr8, sqnr16 = fresh_sqnr(reference, int8, model)["output_0"], fresh_sqnr(reference, int16, model)["output_0"]
    assert sqnr16 > sqnr8 + 3
    assert all(q == total for q, total in int16.quantization_report.quantized_layers.values())
    # The activations between layers are 16-bit integers: int16 casts and clips in the graph.
    nodes = graph_nodes(str(tmp_path / "int16"))
    assert any(n.op == "Cast" and n.attr["DstT"].type == types_pb2.DT_INT16 for n in nodes)


def test_int16_activations_on_uniform_quantized_are_refused(model_dir, tmp_path):
    with pytest.raises(ValueError, match="16-bit activations .* not supported on the UNIFORM_QUANTIZED"):
        checked_quantize(model_dir("conv_bn"), str(tmp_path / "out"), options("UNIFORM_QUANTIZED"),
                         calibration_dataset(model_dir("conv_bn")), method="static_range_int16x8")


# ---------------------------------------------------------------------------------------------
# QAT

@pytest.mark.parametrize("opset", ["XLA", "TF", "UNIFORM_QUANTIZED"])
def test_qat_model_quantizes_with_its_trained_ranges_and_no_dataset(model_dir, tmp_path, opset):
    model = model_dir("qat_conv_dense")
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, options(opset))
    report = loaded.quantization_report
    assert report.quantized_layers == {"Conv2D": (1, 1), "MatMul": (1, 1)}
    assert report.calibration_samples == {}
    assert not op_types(out) & FAKE_QUANT_OPS
    # The model computes what training simulated: within one step of its output fake quant.
    actual = run(loaded, SERVING, model.inputs)["output_0"]
    output_step = 16.0 / 255
    assert np.max(np.abs(actual - model.info["expected"]["output_0"])) <= output_step
    # The conv weight keeps its trained per-channel scales: each channel's peak is 127.
    conv = next(w for w in int8_weights(out) if w.ndim == 4)
    assert np.all(np.abs(conv).reshape(-1, 4).max(axis=0) == 127)


def test_static_without_dataset_or_fake_quant_is_an_error(model_dir, tmp_path):
    with pytest.raises(ValueError, match="give a representative dataset, or a model trained with fake-quant ops"):
        checked_quantize(model_dir("matmul"), str(tmp_path / "out"), options())


# ---------------------------------------------------------------------------------------------
# Unit-wise specs

def unit_spec(preset, **unit) -> UnitWiseQuantizationSpec:
    return UnitWiseQuantizationSpec(unit=[UnitWiseQuantizationSpec.QuantizationUnit(**unit)],
                                    quantization_method=QuantizationMethod(preset_method=preset))


@pytest.mark.parametrize("opset", ["XLA", "TF", "UNIFORM_QUANTIZED"])
@pytest.mark.parametrize("key", ["op_type", "node_name"])
def test_unit_wise_no_quantize_on_every_opset(model_dir, tmp_path, opset, key):
    """TensorFlow ignores unit-wise specs on the TF opset; tfquant honours them on every opset."""
    model = model_dir("matmul")
    unit = {"op_type": "MatMul"} if key == "op_type" else {"node_name": ".*MatMul_1"}
    loaded = checked_quantize(model, str(tmp_path / "out"),
                              options(opset, unit_wise_quantization_specs=[unit_spec(Preset.METHOD_NO_QUANTIZE,
                                                                                     **unit)]),
                              calibration_dataset(model))
    report = loaded.quantization_report
    left = 2 if key == "op_type" else 1
    assert report.quantized_layers == {"MatMul": (2 - left, 2)}
    assert len(report.float_units) == left
    assert all(u.reason.startswith("excluded by unit-wise quantization spec 0") for u in report.float_units)
    assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 30


def test_unit_wise_specs_mix_methods_in_one_model(model_dir, tmp_path):
    """One layer dynamic range, one 16-bit, the rest static int8: each as its spec says."""
    model = model_dir("conv_bn")
    out = str(tmp_path / "out")
    loaded = checked_quantize(model, out, options(min_num_elements_for_weights=1), calibration_dataset(model),
                              units=[{"node_name": ".*conv2d_1.*|.*Conv2D_1", "method": "dynamic_range_int8"},
                                     {"op_type": "Conv2D", "method": "static_range_int16x8"}])
    assert loaded.quantization_report.quantized_layers == {"Conv2D": (2, 2)}
    types = op_types(out)
    assert "Min" in types  # the dynamic-range layer's run-time range
    assert any(n.op == "Cast" and n.attr["DstT"].type == types_pb2.DT_INT16 for n in graph_nodes(out))
    assert fresh_sqnr(float_model(model), loaded, model)["output_0"] > 30


def test_unit_wise_spec_by_function_name(model_dir, tmp_path):
    """func_name matches the function holding the unit: here the signature's, so every unit."""
    model = model_dir("matmul")
    loaded = checked_quantize(model, str(tmp_path / "out"), options(), calibration_dataset(model),
                              units=[{"func_name": "serving_default", "method": "no_quantize"}])
    assert loaded.quantization_report.quantized_layers == {"MatMul": (0, 2)}


def test_a_unit_wise_spec_matching_nothing_is_a_warning(model_dir, tmp_path):
    model = model_dir("matmul")
    with pytest.warns(UserWarning, match=r"unit-wise quantization spec 0 \(op_type='Conv2D'\) matches no"):
        checked_quantize(model, str(tmp_path / "out"),
                         options(unit_wise_quantization_specs=[unit_spec(Preset.METHOD_NO_QUANTIZE,
                                                                         op_type="Conv2D")]),
                         calibration_dataset(model))


@pytest.mark.parametrize("units, message", [
    ([{"op_type": "MatMul", "method": "int3"}], "units\\[0\\] has unknown method 'int3'"),
    ([{"method": "no_quantize"}], "names no op_type, node_name or func_name"),
    ([{"op_name": "MatMul"}], "unknown key 'op_name'"),
])
def test_bad_unit_specs_are_value_errors(model_dir, tmp_path, units, message):
    with pytest.raises(ValueError, match=message):
        checked_quantize(model_dir("matmul"), str(tmp_path / "out"), options(), None, units=units)


def test_method_keyword_and_preset_must_agree(model_dir, tmp_path):
    with pytest.raises(ValueError, match="contradicts quantization_method.preset_method"):
        checked_quantize(model_dir("matmul"), str(tmp_path / "out"), options(preset=Preset.METHOD_DYNAMIC_RANGE_INT8),
                         None, method="weight_only_float16")
