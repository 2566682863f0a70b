"""Quantization options: TensorFlow's protos, TF's defaults (per-channel aside) and our refusals."""
from __future__ import annotations

import pytest
import tensorflow as tf
from tensorflow.compiler.mlir.quantization.tensorflow.python import quantize_model

from tfquant.options import (
    CalibrationOptions,
    DebuggerConfig,
    OpSet,
    QuantizationComponentSpec,
    QuantizationMethod,
    QuantizationOptions,
    RepresentativeDatasetFile,
    UnitWiseQuantizationSpec,
    check_supported,
    resolve_options,
)

Preset = QuantizationMethod.PresetMethod
Calib = CalibrationOptions.CalibrationMethod
Component = QuantizationComponentSpec.QuantizationComponent
TensorType = QuantizationComponentSpec.TensorType


def spec(component: int, tensor_type: int) -> QuantizationComponentSpec:
    return QuantizationComponentSpec(quantization_component=component, tensor_type=tensor_type)


def test_defaults():
    resolved = resolve_options(None)
    assert resolved.method == "static_range_int8"
    assert resolved.opset == "XLA"
    assert resolved.per_channel is True
    assert resolved.tags == ("serve",)
    assert resolved.signature_keys == ("serving_default",)
    assert resolved.min_num_elements_for_weights == 1024
    assert resolved.calibration_method == "CALIBRATION_METHOD_MIN_MAX"
    assert resolved.calibration_options.calibration_method == Calib.CALIBRATION_METHOD_MIN_MAX
    assert dict(resolved.representative_datasets) == {}
    assert resolved.proto.freeze_all_variables is True
    assert [(s.quantization_component, s.tensor_type)
            for s in resolved.proto.quantization_method.quantization_component_specs] == [
        (Component.COMPONENT_ACTIVATION, TensorType.TENSORTYPE_INT_8),
        (Component.COMPONENT_WEIGHT, TensorType.TENSORTYPE_INT_8),
        (Component.COMPONENT_BIAS, TensorType.TENSORTYPE_INT_32)]
    check_supported(resolved)


@pytest.mark.parametrize("given, expected", [(None, True), (True, True), (False, False)])
def test_per_channel_unless_explicitly_false(given, expected):
    options = QuantizationOptions() if given is None else QuantizationOptions(enable_per_channel_quantization=given)
    assert resolve_options(options).per_channel is expected


def test_tensorflows_own_classes_are_accepted():
    experimental = tf.quantization.experimental
    assert QuantizationOptions is experimental.QuantizationOptions
    assert QuantizationMethod is experimental.QuantizationMethod
    assert QuantizationComponentSpec is experimental.QuantizationComponentSpec
    assert UnitWiseQuantizationSpec is experimental.UnitWiseQuantizationSpec
    assert CalibrationOptions is QuantizationOptions().calibration_options.__class__
    options = experimental.QuantizationOptions(
        quantization_method=experimental.QuantizationMethod(
            preset_method=experimental.QuantizationMethod.PresetMethod.METHOD_STATIC_RANGE_INT8),
        op_set=OpSet.TF, signature_keys=["a", "b"], tags=["serve", "gpu"], min_num_elements_for_weights=16)
    resolved = resolve_options(options)
    assert (resolved.opset, resolved.signature_keys, resolved.tags, resolved.min_num_elements_for_weights) == (
        "TF", ("a", "b"), ("serve", "gpu"), 16)


def test_the_callers_options_are_not_modified():
    options = QuantizationOptions(signature_keys=["x"])
    resolved = resolve_options(options)
    assert options == QuantizationOptions(signature_keys=["x"])
    assert resolved.proto is not options


TF_CASES = {
    "default": QuantizationOptions(),
    "tf_opset_per_tensor": QuantizationOptions(op_set=OpSet.TF, enable_per_channel_quantization=False),
    "percentile": QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE)),
    "percentile_given": QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE,
        calibration_parameters={"num_bins": 128, "min_percentile": 1.0, "max_percentile": 98.0})),
    "mse_symmetric": QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC), signature_keys=["a", "b"]),
    "weight_only": QuantizationOptions(quantization_method=QuantizationMethod(
        preset_method=Preset.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8)),
    "dynamic_range": QuantizationOptions(quantization_method=QuantizationMethod(
        preset_method=Preset.METHOD_DYNAMIC_RANGE_INT8), enable_per_channel_quantization=False),
    "no_quantize": QuantizationOptions(quantization_method=QuantizationMethod(
        preset_method=Preset.METHOD_NO_QUANTIZE), enable_per_channel_quantization=False),
    "unit_wise_no_quantize": QuantizationOptions(unit_wise_quantization_specs=[UnitWiseQuantizationSpec(
        unit=[UnitWiseQuantizationSpec.QuantizationUnit(op_type="MatMul")],
        quantization_method=QuantizationMethod(preset_method=Preset.METHOD_NO_QUANTIZE))]),
    "debugger": QuantizationOptions(debugger_config=DebuggerConfig(
        debugger_type=DebuggerConfig.DebuggerType.DEBUGGER_TYPE_INT_PER_LAYER)),
}


@pytest.mark.parametrize("case", sorted(TF_CASES))
def test_defaults_are_tensorflows(case):
    options = TF_CASES[case]
    expected = QuantizationOptions()
    expected.CopyFrom(options)
    # TF's per-tensor default is our one difference; compare on TF's terms.
    if not options.HasField("enable_per_channel_quantization"):
        expected.enable_per_channel_quantization = True
    quantize_model._populate_quantization_options_default_values(expected)
    assert resolve_options(options).proto == expected


def test_histogram_defaults():
    percentile = resolve_options(QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE)))
    params = percentile.calibration_options.calibration_parameters
    assert percentile.calibration_method == "CALIBRATION_METHOD_HISTOGRAM_PERCENTILE"
    assert (params.num_bins, params.min_percentile, params.max_percentile) == (
        512, pytest.approx(0.001), pytest.approx(99.999))
    for method in (Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE, Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY,
                   Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC):
        resolved = resolve_options(QuantizationOptions(calibration_options=CalibrationOptions(calibration_method=method)))
        assert resolved.calibration_options.calibration_parameters.num_bins == 512
    average = resolve_options(QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_AVERAGE_MIN_MAX)))
    assert average.calibration_method == "CALIBRATION_METHOD_AVERAGE_MIN_MAX"
    assert average.calibration_options.calibration_parameters.num_bins == 0


def test_representative_dataset_files_are_passed_on():
    options = QuantizationOptions(representative_datasets={
        "serving_default": RepresentativeDatasetFile(tfrecord_file_path="/data/calib.tfrecord")})
    datasets = resolve_options(options).representative_datasets
    assert list(datasets) == ["serving_default"]
    assert datasets["serving_default"].tfrecord_file_path == "/data/calib.tfrecord"


UNSUPPORTED = [
    (QuantizationOptions(op_set=OpSet.STABLEHLO), "op set STABLEHLO is not supported"),
    (QuantizationOptions(quantization_method=QuantizationMethod(quantization_component_specs=[
        spec(Component.COMPONENT_WEIGHT, TensorType.TENSORTYPE_INT_4)])),
     "tensor type TENSORTYPE_INT_4 for COMPONENT_WEIGHT is not supported yet"),
    (QuantizationOptions(quantization_method=QuantizationMethod(quantization_component_specs=[
        spec(Component.COMPONENT_ACTIVATION, TensorType.TENSORTYPE_INT_4)])),
     "tensor type TENSORTYPE_INT_4 for COMPONENT_ACTIVATION is not supported yet"),
    (TF_CASES["debugger"], r"debugger_config \(DEBUGGER_TYPE_INT_PER_LAYER\) is not supported yet"),
]


@pytest.mark.parametrize("options, message", UNSUPPORTED, ids=[m.split(" is ")[0] for _, m in UNSUPPORTED])
def test_not_supported_yet(options, message):
    resolved = resolve_options(options)
    with pytest.raises(ValueError, match=message):
        check_supported(resolved)


def test_supported_opsets():
    for opset in (OpSet.XLA, OpSet.TF):
        check_supported(resolve_options(QuantizationOptions(op_set=opset)))


INVALID = [
    (QuantizationOptions(op_set=9), "unknown op_set value 9; known values are OP_SET_UNSPECIFIED, TF, XLA"),
    (QuantizationOptions(quantization_method=QuantizationMethod(preset_method=17)),
     "unknown quantization_method.preset_method value 17"),
    (QuantizationOptions(quantization_method=QuantizationMethod(quantization_component_specs=[
        spec(Component.COMPONENT_WEIGHT, 7)])),
     r"unknown quantization_method.quantization_component_specs\[0\].tensor_type value 7"),
    (QuantizationOptions(calibration_options=CalibrationOptions(calibration_method=42)),
     "unknown calibration_options.calibration_method value 42"),
    (QuantizationOptions(enable_legacy_weight_only=True), "Legacy weight-only is deprecated"),
    (QuantizationOptions(op_set=OpSet.TF, quantization_method=QuantizationMethod(
        preset_method=Preset.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8)), "opset does not support weight-only"),
    (QuantizationOptions(op_set=OpSet.STABLEHLO, quantization_method=QuantizationMethod(
        preset_method=Preset.METHOD_DYNAMIC_RANGE_INT8)), "StableHLO quantized opset currently only supports"),
    (QuantizationOptions(quantization_method=QuantizationMethod(quantization_component_specs=[
        spec(Component.COMPONENT_BIAS, TensorType.TENSORTYPE_INT_8)])),
     "COMPONENT_BIAS cannot be TENSORTYPE_INT_8: only int32 precision is supported for bias"),
    (QuantizationOptions(quantization_method=QuantizationMethod(quantization_component_specs=[
        spec(Component.COMPONENT_WEIGHT, TensorType.TENSORTYPE_INT_32)])),
     "COMPONENT_WEIGHT cannot be TENSORTYPE_INT_32"),
    (QuantizationOptions(quantization_method=QuantizationMethod(quantization_component_specs=[
        spec(Component.COMPONENT_UNSPECIFIED, TensorType.TENSORTYPE_INT_8)])), "has no quantization_component"),
    (QuantizationOptions(quantization_method=QuantizationMethod(
        preset_method=Preset.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8, quantization_component_specs=[
            spec(Component.COMPONENT_ACTIVATION, TensorType.TENSORTYPE_INT_8)])),
     "METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8 takes 1 component specs, got COMPONENT_WEIGHT, COMPONENT_ACTIVATION"),
    (QuantizationOptions(min_num_elements_for_weights=-1), "min_num_elements_for_weights must not be negative"),
    (QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE,
        calibration_parameters={"min_percentile": 60, "max_percentile": 40})),
     "min_percentile=60, max_percentile=40"),
    (QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC),
        quantization_method=QuantizationMethod(quantization_component_specs=[
            spec(Component.COMPONENT_ACTIVATION, TensorType.TENSORTYPE_INT_4)])),
     "Only TENSORTYPE_INT_8 is supported for HISTOGRAM_MSE calibration methods"),
    (QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC, calibration_parameters={"num_bins": -3})),
     r"calibration_options.calibration_parameters.num_bins must be at least 2 for "
     r"CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC, got -3"),
    (QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY, calibration_parameters={"num_bins": 1})),
     r"num_bins must be at least 2 for CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY, got 1"),
    (QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, calibration_parameters={"num_bins": -1})),
     r"num_bins must be at least 1 for CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, got -1"),
    (QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, calibration_parameters={"max_percentile": 150})),
     r"must satisfy 0 <= min_percentile < max_percentile <= 100, got min_percentile=0.001, max_percentile=150"),
    (QuantizationOptions(signature_keys=["serving_default", "other", "serving_default"]),
     "signature_keys lists signature 'serving_default' more than once"),
    (QuantizationOptions(debugger_config=DebuggerConfig()), "debugger type was not specified"),
    (QuantizationOptions(debugger_config=DebuggerConfig(
        debugger_type=DebuggerConfig.DebuggerType.DEBUGGER_TYPE_WHOLE_MODEL)),
     "unquantized_dump_model_path was not specified"),
    (QuantizationOptions(unit_wise_quantization_specs=[UnitWiseQuantizationSpec()]),
     "must contain at least one unit"),
    (QuantizationOptions(representative_datasets={"serving_default": RepresentativeDatasetFile()}),
     r"representative_datasets\['serving_default'\] has no tfrecord_file_path"),
]


@pytest.mark.parametrize("options, message", INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_invalid_options(options, message):
    with pytest.raises(ValueError, match=message):
        resolve_options(options)


def test_smallest_histograms_each_method_can_use():
    """One bin gives a percentile range; the MSE methods need two bins to choose a range between."""
    for method, num_bins in ((Calib.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, 1),
                             (Calib.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE, 2)):
        resolved = resolve_options(QuantizationOptions(calibration_options=CalibrationOptions(
            calibration_method=method, calibration_parameters={"num_bins": num_bins})))
        assert resolved.calibration_options.calibration_parameters.num_bins == num_bins


def test_methods_without_a_histogram_ignore_num_bins():
    """As TensorFlow does: min/max methods never read calibration_parameters."""
    resolved = resolve_options(QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=Calib.CALIBRATION_METHOD_MIN_MAX, calibration_parameters={"num_bins": -3})))
    assert resolved.calibration_method == "CALIBRATION_METHOD_MIN_MAX"


def test_not_an_options_proto():
    with pytest.raises(TypeError, match="must be a QuantizationOptions proto, got dict"):
        resolve_options({"op_set": "XLA"})
