"""Lifting quantizable spots keeps a model's numerics; calibration points go on lifted activations.

Each model is imported, prepared and lifted; the lifted module, with its composite functions
traced as tf.functions by the exporter, must compute what the float model computes.
"""
from __future__ import annotations

import os
import re

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfquant  # noqa: E402
from conftest import keep_context  # noqa: E402
from tfquant.exporter import to_concrete_function  # noqa: E402
from tfquant.mlir import ir, name_of, ops_named, symbol_table  # noqa: E402
from tfquant.passes._points import calibration_points  # noqa: E402
from tfquant.pipeline import run_pipeline  # noqa: E402

LIFT = "builtin.module(tfq-prepare-lifting,tfq-lift-quantizable-spots-as-functions)"

# The composite functions each model lifts to (names without their _N suffix), each with a part of
# the node name its call's location must carry (the root op's).
EXPECTED = {
    "conv_bn": [("composite_conv2d_with_bias_and_relu6_fn", "Conv2D"), ("composite_conv2d_with_bias_fn", "Conv2D")],
    "matmul": [("composite_matmul_with_bias_and_relu_fn", "MatMul")] * 2,
    "depthwise": [("composite_depthwise_conv2d_with_bias_and_relu6_fn", "depthwise")],
    "embedding": [("composite_gather_fn", "Gather"), ("composite_matmul_fn", "MatMul")],
    "batch_matmul": [("composite_batch_matmul_fn", "BatchMatMulV2")],
    "einsum": [("composite_einsum_fn", "Einsum")],
}


def _run(module: ir.Module, inputs: dict, hook=None) -> dict[str, np.ndarray]:
    with module.context:
        function = to_concrete_function(module, "serving_default", hook)
    return {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _stem(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


@pytest.fixture(scope="module")
def lifted(model_dir):
    """`lifted(name) -> (module, float outputs of the imported model)`, cached."""
    cache = {}

    def get(name: str):
        if name not in cache:
            path = model_dir(name)
            module = tfquant.import_saved_model(path)
            keep_context(module)
            reference = _run(module, path.inputs)
            run_pipeline(module, LIFT)
            cache[name] = (module, reference)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lifted_functions_and_numerics(lifted, model_dir, name):
    module, reference = lifted(name)
    functions = symbol_table(module)
    assert sorted(_stem(n) for n in functions if n.startswith("composite_")) == sorted(s for s, _ in EXPECTED[name])
    calls = ops_named(functions["serving_default"], "tf.PartitionedCall")
    # The call keeps the root op's node name, so errors and dumps still point at the model.
    found = [(_stem(ir.FlatSymbolRefAttr(c.attributes["f"]).value), name_of(c.location)) for c in calls]
    assert len(found) == len(EXPECTED[name])
    for (stem, location), (expected_stem, part) in zip(found, EXPECTED[name]):
        assert stem == expected_stem and part in location, (stem, location)
    for call in calls:
        assert ir.StringAttr(call.attributes["_tfl_quant_trait"]).value == "fully_quantizable"
    outputs = _run(module, model_dir(name).inputs)
    for key, expected in reference.items():
        np.testing.assert_allclose(outputs[key], expected, rtol=1e-5, atol=1e-5)


def test_composite_bodies_hold_the_float_ops(lifted):
    module, _ = lifted("conv_bn")
    functions = symbol_table(module)
    body = [op.operation.name for op in
            functions[next(n for n in functions if "relu6" in n)].regions[0].blocks[0].operations]
    assert body == ["tf.Conv2D", "tf.BiasAdd", "tf.Relu6", "func.return"]
    # Weights stay constants of the caller, passed to the call.
    for call in ops_named(functions["serving_default"], "tf.PartitionedCall"):
        assert [op.owner.name for op in list(call.operands)[1:]] == ["tf.Const", "tf.Const"]


def test_calibration_points_insert_and_apply(lifted, model_dir):
    """Points sit on the matmul chain's activations, the module still runs with them passed through,
    and applying ranges turns the calibrated ones into qcast/dcast pairs."""
    module, reference = lifted("matmul")
    module = ir.Module.parse(str(module), module.context)  # a copy: the fixture's module is shared
    run_pipeline(module, "builtin.module(tfq-insert-calibration-stats)")
    points = calibration_points(module.operation)
    # The input, the value between the two calls (one point for both), the output.
    assert [ir.IntegerAttr(p.attributes["id"]).value for p in points] == [0, 1, 2]
    for call in ops_named(module.operation, "tf.PartitionedCall"):
        assert call.operands[0].owner.name == "tfq.calibration_point"

    def pass_through(op, inputs):
        return [tf.identity(inputs[0])] if op.name == "tfq.calibration_point" else None

    outputs = _run(module, model_dir("matmul").inputs, pass_through)
    np.testing.assert_allclose(outputs["output_0"], reference["output_0"], rtol=1e-5, atol=1e-5)

    with module.context:
        for point in points[:2]:  # the last point stays uncalibrated: it is removed
            point.attributes["min"] = ir.FloatAttr.get_f32(-1.0)
            point.attributes["max"] = ir.FloatAttr.get_f32(1.0)
    run_pipeline(module, "builtin.module(tfq-apply-calibration-stats)")
    assert not calibration_points(module.operation)
    qcasts = ops_named(module.operation, "quant.qcast")
    assert len(qcasts) == len(ops_named(module.operation, "quant.dcast")) == 2
    assert "!quant.uniform<i8:f32, 0.0078431372549019607>" in str(qcasts[0].results[0].type)
