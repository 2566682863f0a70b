"""The pass registry and pipelines: strings that parse back to the same pipeline, typed options,
errors naming the closest pass, and the stages the options map to."""
import pytest

from tfquant import options as options_lib
from tfquant.mlir import new_context, ops_named, parse_module
from tfquant.pass_registry import registered_passes
from tfquant.pipeline import (CALIBRATE, LOWER, PRE_CALIBRATION, QUANTIZE, build, make_pipeline, parse_pipeline,
                              run_pipeline)


def test_every_pass_is_registered_with_a_summary():
    passes = registered_passes()
    for name in ("tfq-prepare-lifting", "tfq-lift-quantizable-spots-as-functions", "tfq-insert-calibration-stats",
                 "tfq-apply-calibration-stats", "tfq-quantize-composite-functions", "tfq-lower-to-xla",
                 "tfq-lower-to-tf", "tfq-inline", "tfq-optimize"):
        assert name in passes and passes[name].summary


@pytest.mark.parametrize("text", [
    "builtin.module(tfq-prepare-lifting,cse,symbol-dce)",
    "builtin.module(tfq-assign-quantization-spec{per-channel=false min-weight-elements=4},canonicalize{max-iterations=3})",
    "builtin.module(tfq-insert-calibration-stats{method=CALIBRATION_METHOD_HISTOGRAM_PERCENTILE},func.func(cse))",
])
def test_pipeline_string_parses_back_to_the_same_pipeline(text):
    pipeline = parse_pipeline(text)
    assert str(pipeline) == text
    assert parse_pipeline(str(pipeline)) == pipeline


def test_options_are_typed():
    pipeline = parse_pipeline("builtin.module(tfq-assign-quantization-spec{per-channel=false})")
    assert pipeline.passes[0].options == {"per-channel": False}
    with pytest.raises(ValueError, match="invalid value 'maybe' for option 'per-channel'.*expected bool"):
        parse_pipeline("builtin.module(tfq-assign-quantization-spec{per-channel=maybe})")
    with pytest.raises(ValueError, match="has no option 'bogus'"):
        make_pipeline(("tfq-quantize-composite-functions", {"bogus": 1}))


def test_unknown_pass_names_the_closest():
    with pytest.raises(ValueError, match=r"unknown pass 'tfq-prepare-lifitng'; did you mean tfq-prepare-lifting"):
        parse_pipeline("builtin.module(tfq-prepare-lifitng)")
    with pytest.raises(ValueError, match="unknown pass 'no-such-pass'"):
        parse_pipeline("builtin.module(no-such-pass)")


def test_run_pipeline_mixes_our_passes_and_upstream_ones():
    ctx = new_context()
    module = parse_module("""
      func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
        %0 = "tf.Identity"(%x) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
        return %0 : tensor<2xf32>
      }
      func.func private @dead() { return }""", ctx)
    run_pipeline(module, "builtin.module(tfq-prepare-lifting,symbol-dce)")
    assert not ops_named(module.operation, "tf.Identity")
    assert "@dead" not in str(module)


@pytest.mark.parametrize("opset, lowering", [("XLA", "tfq-lower-to-xla"), ("TF", "tfq-lower-to-tf")])
def test_stages_follow_the_options(opset, lowering):
    proto = options_lib.QuantizationOptions(op_set=options_lib.OpSet.Value(opset),
                                            enable_per_channel_quantization=False)
    proto.calibration_options.calibration_method = (
        options_lib.CalibrationOptions.CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC)
    resolved = options_lib.resolve_options(proto)
    stages = build(resolved)
    assert [stage.name for stage in stages] == [PRE_CALIBRATION, CALIBRATE, QUANTIZE, LOWER]
    assert stages[1].pipeline is None
    assert str(stages[0].pipeline) == (
        "builtin.module(tfq-specialize-function-arguments,tfq-convert-fake-quant-to-qdq,tfq-prepare-lifting,"
        "tfq-lift-quantizable-spots-as-functions,"
        "tfq-assign-quantization-spec{method=static activation-bits=8 per-channel=false min-weight-elements=1024 "
        "units=[]},tfq-insert-calibration-stats{method=CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC})")
    assert str(stages[2].pipeline) == (
        "builtin.module(tfq-apply-calibration-stats,tfq-correct-bias,tfq-quantize-weights,"
        "tfq-quantize-composite-functions)")
    assert str(stages[3].pipeline) == (
        f"builtin.module(tfq-optimize,{lowering},tfq-inline,tfq-optimize,symbol-dce)")
    equalized = build(resolved, equalize=True)[0].pipeline
    assert "tfq-lift-quantizable-spots-as-functions,tfq-equalize-cross-layer,tfq-assign-quantization-spec" in str(equalized)


@pytest.mark.parametrize("method, unit_method", [("dynamic_range_int8", "dynamic_range"),
                                                 ("weight_only_float16", "float16")])
def test_methods_without_ranges_have_no_calibration_stage(method, unit_method):
    resolved = options_lib.resolve_options(None, method, [{"op_type": "MatMul", "method": "no_quantize"}])
    stages = build(resolved, calibrate=resolved.calibrated)
    assert [stage.name for stage in stages] == [PRE_CALIBRATION, QUANTIZE, LOWER]
    assert f"method={unit_method} " in str(stages[0].pipeline)
    assert "tfq-insert-calibration-stats" not in str(stages[0].pipeline)
    assert "tfq-apply-calibration-stats" not in str(stages[1].pipeline)
    # The unit-wise rules travel as JSON in the pass option and parse back to the same pipeline.
    assert "units='[{\"op_type\":\"MatMul\",\"method\":\"no_quantize\",\"activation_bits\":8}]'" in str(stages[0].pipeline)
    assert parse_pipeline(str(stages[0].pipeline)) == stages[0].pipeline
