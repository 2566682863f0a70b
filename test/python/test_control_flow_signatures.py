"""Control flow and several signatures (issue #9, "Control").

* Calibration reaches the points inside If/StatelessIf branches and While bodies: each gets the
  range of every value that reached it (over both call sites of a shared branch, over every loop
  iteration), with every calibration method; a point in a branch no sample took gets none.
* End to end, the convs and matmuls inside branches and loop bodies are quantized (their weights
  reach them through tfq-specialize-function-arguments, before the lift), a branch calibration
  never took stays float, and the outputs stay close to the float model's on inputs taking each branch.
* Several signatures in one call, each with its own dataset: a weight both read is stored once, as
  one int8 variable, with one per-channel scale.
"""
from __future__ import annotations

import os
from collections import Counter

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from test_quantize_e2e import (SERVING, checked_quantize, fresh_sqnr, int8_weights, options, random_samples,  # noqa: E402
                               run, sqnr_db, variables)

from tfquant import calibrate as calibrate_lib, calibration  # noqa: E402
from tfquant.exporter import export_saved_model, signature_input_specs  # noqa: E402
from tfquant.mlir import ir, new_context, ops_named  # noqa: E402
from tfquant.options import CalibrationOptions, QuantizationOptions, resolve_options  # noqa: E402
from tfquant.passes._points import CALIBRATION_POINT  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Calibration inside branches and loop bodies, on a module written by hand.

# x goes to point 0 (in the signature), then If(flag) and StatelessIf(flag) both call @doubled
# (point 1: it sees x, then 2x) or @negated (point 2), then a While runs @body three times
# (point 3: it sees y, 2y, 4y where y is what the conds returned).
MODULE = """
module {
  func.func @serving_default(%x: tensor<?x4xf32> {tfq.input_name = "x"}, %flag: tensor<i1> {tfq.input_name = "flag"})
      -> (tensor<?x4xf32> {tfq.output_name = "output_0"}) {
    %p = "tfq.calibration_point"(%x) {id = 0 : i64, method = "M"} : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %a = "tf.If"(%flag, %p) {Tcond = i1, Tin = [f32], Tout = [f32], then_branch = @doubled, else_branch = @negated,
        is_stateless = false, output_shapes = [#tf_type.shape<?x4>]} : (tensor<i1>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %b = "tf.StatelessIf"(%flag, %a) {Tcond = i1, Tin = [f32], Tout = [f32], then_branch = @doubled,
        else_branch = @negated, is_stateless = true, output_shapes = [#tf_type.shape<?x4>]}
        : (tensor<i1>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %zero = "tf.Const"() {dtype = i32, value = dense<0> : tensor<i32>} : () -> tensor<i32>
    %w:2 = "tf.While"(%zero, %b) {T = [i32, f32], body = @body, cond = @cond, is_stateless = false,
        parallel_iterations = 10 : i64, output_shapes = [#tf_type.shape<>, #tf_type.shape<?x4>]}
        : (tensor<i32>, tensor<?x4xf32>) -> (tensor<i32>, tensor<?x4xf32>)
    return %w#1 : tensor<?x4xf32>
  }
  func.func private @doubled(%v: tensor<?x4xf32>) -> tensor<?x4xf32> {
    %p = "tfq.calibration_point"(%v) {id = 1 : i64, method = "M"} : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %r = "tf.AddV2"(%p, %p) {T = f32} : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    return %r : tensor<?x4xf32>
  }
  func.func private @negated(%v: tensor<?x4xf32>) -> tensor<?x4xf32> {
    %p = "tfq.calibration_point"(%v) {id = 2 : i64, method = "M"} : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %r = "tf.Neg"(%p) {T = f32} : (tensor<?x4xf32>) -> tensor<?x4xf32>
    return %r : tensor<?x4xf32>
  }
  func.func private @body(%i: tensor<i32>, %v: tensor<?x4xf32>) -> (tensor<i32>, tensor<?x4xf32>) {
    %one = "tf.Const"() {dtype = i32, value = dense<1> : tensor<i32>} : () -> tensor<i32>
    %next = "tf.AddV2"(%i, %one) {T = i32} : (tensor<i32>, tensor<i32>) -> tensor<i32>
    %p = "tfq.calibration_point"(%v) {id = 3 : i64, method = "M"} : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %r = "tf.AddV2"(%p, %p) {T = f32} : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
    return %next, %r : tensor<i32>, tensor<?x4xf32>
  }
  func.func private @cond(%i: tensor<i32>, %v: tensor<?x4xf32>) -> tensor<i1> {
    %three = "tf.Const"() {dtype = i32, value = dense<3> : tensor<i32>} : () -> tensor<i32>
    %c = "tf.Less"(%i, %three) {T = i32} : (tensor<i32>, tensor<i32>) -> tensor<i1>
    return %c : tensor<i1>
  }
}
"""
METHODS = ("MIN_MAX", "AVERAGE_MIN_MAX", "HISTOGRAM_PERCENTILE", "HISTOGRAM_MSE_SYMMETRIC")


def _calibration_options(method: str) -> CalibrationOptions:
    proto = QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=CalibrationOptions.CalibrationMethod.Value("CALIBRATION_METHOD_" + method)))
    return resolve_options(proto).calibration_options


def _calibrated_ranges(samples: list[dict], calibration_options) -> dict[int, tuple[float, float] | None]:
    """Each point's (min, max) after calibrating MODULE on `samples`, None where it has none."""
    with new_context():
        module = ir.Module.parse(MODULE)
        calibrate_lib.calibrate(module, {SERVING: samples}, signature_input_specs(module), calibration_options,
                                progress=False)
        ranges = {}
        for op in ops_named(module.operation, CALIBRATION_POINT):
            bounds = [ir.FloatAttr(op.attributes[k]).value for k in ("min", "max") if k in op.attributes]
            ranges[ir.IntegerAttr(op.attributes["id"]).value] = tuple(bounds) or None
        return ranges


def _expected_range(values: list[np.ndarray], calibration_options) -> tuple[float, float]:
    """The range a collector fed `values` in this order chooses."""
    collector = calibration.new_collector(calibration_options)
    for value in values:
        collector.update(value)
    return calibration.compute_range(collector.statistics(), calibration_options)


@pytest.mark.parametrize("method", METHODS)
def test_points_in_branches_and_loop_bodies_are_calibrated(method):
    rng = np.random.default_rng(0)
    samples = [{"x": rng.normal(size=(2, 4)).astype(np.float32), "flag": np.bool_(True)} for _ in range(4)]
    calibration_options = _calibration_options(method)
    ranges = _calibrated_ranges(samples, calibration_options)
    # What reached each point, in the order it ran: per sample, x; x and 2x; 4x, 8x, 16x.
    reached = {0: [s["x"] for s in samples],
               1: [v for s in samples for v in (s["x"], 2 * s["x"])],
               3: [v for s in samples for v in (4 * s["x"], 8 * s["x"], 16 * s["x"])]}
    for point, values in reached.items():
        np.testing.assert_allclose(ranges[point], _expected_range(values, calibration_options), rtol=1e-5,
                                   err_msg=f"point {point}")
    assert ranges[2] is None  # @negated never ran: its calls stay float
    # The range is over every iteration, not the first one's: 16x is wider than x.
    assert ranges[3][1] - ranges[3][0] > 8 * (ranges[0][1] - ranges[0][0])


def test_a_branch_taken_by_some_samples_sees_only_those():
    rng = np.random.default_rng(1)
    taken = {"x": rng.normal(size=(3, 4)).astype(np.float32), "flag": np.bool_(False)}
    other = {"x": 10 * rng.normal(size=(3, 4)).astype(np.float32), "flag": np.bool_(True)}
    ranges = _calibrated_ranges([taken, other], _calibration_options("MIN_MAX"))
    # @negated ran twice on the first sample only: x, then -x.
    both = np.concatenate([taken["x"], -taken["x"]])
    np.testing.assert_allclose(ranges[2], (both.min(), both.max()), rtol=1e-6)
    doubled = np.concatenate([other["x"], 2 * other["x"]])
    np.testing.assert_allclose(ranges[1], (doubled.min(), doubled.max()), rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# End to end: convs and matmuls inside branches and loop bodies.

# SQNR floor on fresh inputs taking each branch (measured 38.4-41.5 dB).
COND_FLOOR_DB = 35.0
# Per trip count: each trip adds a quantized matmul's noise (measured n=1 36.4 dB, n=3 28.8 dB).
WHILE_FLOOR_DB = {0: float("inf"), 1: 33.0, 3: 25.0}


def _called_function_ops(loaded, signature: str, attr: str) -> list[Counter]:
    """Op types of each function that a node of the signature's graph names in `attr`
    (then_branch, else_branch, body), as the exported SavedModel holds them."""
    library = {f.signature.name: f for f in loaded.signatures[signature].graph.as_graph_def().library.function}
    names = [node.attr[attr].func.name for f in library.values() for node in f.node_def if attr in node.attr]
    return [Counter(node.op for node in library[name].node_def) for name in names]


def _sqnr_by_branch(float_model, quantized_model, samples: list[dict]) -> dict[bool, float]:
    """SQNR of the quantized model per branch taken (the sign of the batch's sum picks it)."""
    pairs: dict[bool, list] = {True: [], False: []}
    for inputs in samples:
        pairs[bool(inputs["x"].sum() > 0)].append((run(float_model, SERVING, inputs)["output_0"],
                                                   run(quantized_model, SERVING, inputs)["output_0"]))
    assert all(pairs.values()), "every branch needs samples"
    return {branch: sqnr_db(p) for branch, p in pairs.items()}


@pytest.mark.parametrize("name, op_type, quantized_op", [("cond_conv", "Conv2D", "XlaConvV2"),
                                                         ("cond_dense", "MatMul", "XlaDotV2")])
def test_cond_branches_are_quantized(model_dir, tmp_path, name, op_type, quantized_op):
    model = model_dir(name)
    # The sign of each sample's sum picks its branch: about half each way. Ranges from fewer rows
    # clip the fresh inputs' activations (16 rows: 18 dB).
    loaded = checked_quantize(model, str(tmp_path / "out"), None, random_samples(model, 32, seed=0, rows=8))
    layers = loaded.quantization_report.quantized_layers[op_type]
    assert layers[0] == layers[1] >= 2, layers
    for attr in ("then_branch", "else_branch"):
        (ops,) = _called_function_ops(loaded, SERVING, attr)
        assert ops[quantized_op] == 1 and ops[op_type] == 0, (attr, ops)
    sqnr = _sqnr_by_branch(tf.saved_model.load(model), loaded, random_samples(model, 16, seed=1, rows=2))
    assert min(sqnr.values()) >= COND_FLOOR_DB, sqnr


def test_while_body_is_quantized(model_dir, tmp_path):
    model = model_dir("while")
    samples = [{"x": s["x"], "n": np.int32(3)} for s in random_samples(model, 16, seed=0, rows=8)]
    loaded = checked_quantize(model, str(tmp_path / "out"), None, samples)
    assert loaded.quantization_report.quantized_layers == {"MatMul": (1, 1)}
    (body,) = _called_function_ops(loaded, SERVING, "body")
    assert body["XlaDotV2"] == 1 and body["MatMul"] == 0, body
    reference = tf.saved_model.load(model)
    for n, floor_db in WHILE_FLOOR_DB.items():
        fresh = [{"x": s["x"], "n": np.int32(n)} for s in random_samples(model, 4, seed=1, rows=2)]
        pairs = [(run(reference, SERVING, s)["output_0"], run(loaded, SERVING, s)["output_0"]) for s in fresh]
        assert sqnr_db(pairs) >= floor_db, n


def test_branch_calibration_never_took_stays_float(model_dir, tmp_path):
    model = model_dir("cond_conv")
    # Positive inputs only: every sample takes the true branch.
    samples = [{"x": np.abs(s["x"]) + 0.1} for s in random_samples(model, 8, seed=0, rows=4)]
    loaded = checked_quantize(model, str(tmp_path / "out"), None, samples)
    assert loaded.quantization_report.quantized_layers == {"Conv2D": (1, 2)}
    (taken,), (untaken,) = (_called_function_ops(loaded, SERVING, a) for a in ("then_branch", "else_branch"))
    assert taken["XlaConvV2"] == 1 and taken["Conv2D"] == 0, taken
    assert untaken["Conv2D"] == 1 and not [op for op in untaken if op.startswith("Xla")], untaken
    # Inputs taking the untaken branch run its float conv on the float input: the float model's outputs.
    reference = tf.saved_model.load(model)
    for s in random_samples(model, 2, seed=1, rows=2):
        negative = {"x": -np.abs(s["x"]) - 0.1}
        np.testing.assert_allclose(run(loaded, SERVING, negative)["output_0"],
                                   run(reference, SERVING, negative)["output_0"], rtol=1e-5, atol=1e-5)


def test_float_weights_in_untaken_branches_stay_assignable_variables(model_dir, tmp_path):
    """Without freezing, a weight inside a branch that stays float is the model's variable again,
    which the exported If passes to its branch."""
    model = model_dir("cond_conv")
    unfrozen = options()
    unfrozen.freeze_all_variables = False
    samples = [{"x": np.abs(s["x"]) + 0.1} for s in random_samples(model, 8, seed=0, rows=4)]
    loaded = checked_quantize(model, str(tmp_path / "out"), unfrozen, samples)
    (weight,) = [v for v in loaded.signatures[SERVING].variables if v.dtype == tf.float32]
    assert weight.shape == (3, 3, 3, 4)
    negative = {"x": -np.abs(model.inputs["x"]) - 0.1}
    np.testing.assert_allclose(run(loaded, SERVING, negative)["output_0"],
                               run(tf.saved_model.load(model), SERVING, negative)["output_0"], rtol=1e-5, atol=1e-5)
    weight.assign(tf.zeros_like(weight))
    np.testing.assert_array_equal(run(loaded, SERVING, negative)["output_0"], -1.0)  # conv of zeros, minus 1


# A weight stored as a variable inside an If branch and a While body (past the variable threshold).
BRANCH_WEIGHTS = """
module {
  func.func @serving_default(%x: tensor<?x4xf32> {tfq.input_name = "x"}, %flag: tensor<i1> {tfq.input_name = "flag"})
      -> (tensor<?x4xf32> {tfq.output_name = "output_0"}) {
    %a = "tf.If"(%flag, %x) {Tcond = i1, Tin = [f32], Tout = [f32], then_branch = @scaled, else_branch = @shifted,
        output_shapes = [#tf_type.shape<?x4>]} : (tensor<i1>, tensor<?x4xf32>) -> tensor<?x4xf32>
    %zero = "tf.Const"() {dtype = i32, value = dense<0> : tensor<i32>} : () -> tensor<i32>
    %w:2 = "tf.While"(%zero, %a) {T = [i32, f32], body = @body, cond = @cond, parallel_iterations = 10 : i64,
        output_shapes = [#tf_type.shape<>, #tf_type.shape<?x4>]} : (tensor<i32>, tensor<?x4xf32>) -> (tensor<i32>, tensor<?x4xf32>)
    return %w#1 : tensor<?x4xf32>
  }
  func.func private @scaled(%v: tensor<?x4xf32>) -> tensor<?x4xf32> {
    %w = "tf.Const"() {dtype = f32, value = dense<0.5> : tensor<4x4xf32>} : () -> tensor<4x4xf32>
    %r = "tf.MatMul"(%v, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
    return %r : tensor<?x4xf32>
  }
  func.func private @shifted(%v: tensor<?x4xf32>) -> tensor<?x4xf32> {
    %one = "tf.Const"() {dtype = f32, value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
    %r = "tf.AddV2"(%v, %one) {T = f32} : (tensor<?x4xf32>, tensor<f32>) -> tensor<?x4xf32>
    return %r : tensor<?x4xf32>
  }
  func.func private @body(%i: tensor<i32>, %v: tensor<?x4xf32>) -> (tensor<i32>, tensor<?x4xf32>) {
    %one = "tf.Const"() {dtype = i32, value = dense<1> : tensor<i32>} : () -> tensor<i32>
    %next = "tf.AddV2"(%i, %one) {T = i32} : (tensor<i32>, tensor<i32>) -> tensor<i32>
    %w = "tf.Const"() {dtype = f32, value = dense<0.25> : tensor<4x4xf32>} : () -> tensor<4x4xf32>
    %r = "tf.MatMul"(%v, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
    return %next, %r : tensor<i32>, tensor<?x4xf32>
  }
  func.func private @cond(%i: tensor<i32>, %v: tensor<?x4xf32>) -> tensor<i1> {
    %two = "tf.Const"() {dtype = i32, value = dense<2> : tensor<i32>} : () -> tensor<i32>
    %c = "tf.Less"(%i, %two) {T = i32} : (tensor<i32>, tensor<i32>) -> tensor<i1>
    return %c : tensor<i1>
  }
}
"""


def test_variables_read_in_branches_and_loop_bodies_are_passed_to_them(tmp_path):
    out = str(tmp_path / "out")
    with new_context():
        export_saved_model(ir.Module.parse(BRANCH_WEIGHTS), out, variable_threshold=8)
    loaded = tf.saved_model.load(out)
    assert sorted(v.shape.as_list() for v in loaded.signatures[SERVING].variables) == [[4, 4], [4, 4]]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    # Two trips through the body: each multiplies by 0.25 * ones(4, 4), i.e. sums the row / 4.
    for flag, branch in ((True, x @ np.full((4, 4), 0.5, np.float32)), (False, x + 1)):
        expected = branch @ np.full((4, 4), 0.25, np.float32) @ np.full((4, 4), 0.25, np.float32)
        np.testing.assert_allclose(run(loaded, SERVING, {"x": x, "flag": np.bool_(flag)})["output_0"], expected,
                                   rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Several signatures in one call, sharing a weight.

WEIGHT_ELEMENTS = 256 * 256


def _dequantize_scales(loaded, signature: str) -> np.ndarray:
    """The float32 per-output-channel rescale constant (input scale x weight scales) of a signature."""
    library = loaded.signatures[signature].graph.as_graph_def().library.function
    found = [tf.make_ndarray(node.attr["value"].tensor) for f in library for node in f.node_def
             if node.op == "Const" and node.attr["value"].tensor.dtype == tf.float32.as_datatype_enum
             and [d.size for d in node.attr["value"].tensor.tensor_shape.dim] == [256]]
    assert len(found) == 1, len(found)
    return found[0]


def test_signatures_sharing_a_weight_store_it_once(model_dir, tmp_path):
    model = model_dir("shared_weight")
    keys = list(model.signatures)
    datasets = {key: random_samples(model, 4, seed=i, signature=key) for i, key in enumerate(keys)}
    both_dir, single_dir = str(tmp_path / "both"), str(tmp_path / "single")
    both = checked_quantize(model, both_dir, options(signature_keys=keys), datasets)
    single = checked_quantize(model, single_dir, options(signature_keys=[SERVING]), datasets[SERVING])
    assert both.quantization_report.calibration_samples == {key: 4 for key in keys}
    reference = tf.saved_model.load(model)
    for key in keys:
        sqnr = fresh_sqnr(reference, both, model, signature=key)
        assert min(sqnr.values()) >= 30.0, (key, sqnr)  # measured 34.5 and 33.3 dB
    # One int8 copy of the weight, a variable both signatures read.
    assert [w.shape for w in int8_weights(both_dir) if w.size == WEIGHT_ELEMENTS] == [(256, 256)]
    assert [w.shape for w in variables(both_dir) if w.dtype == np.int8] == [(256, 256)]
    # The second signature adds its graph, not a second weight (measured: 78.3 kB alone, 87.8 kB both).
    both_bytes, single_bytes = (both.quantization_report.output_bytes, single.quantization_report.output_bytes)
    assert both_bytes - single_bytes < WEIGHT_ELEMENTS // 4, (both_bytes, single_bytes)
    # One per-channel weight scale: the signatures' rescales differ only by their input scales.
    ratio = _dequantize_scales(both, SERVING) / _dequantize_scales(both, "scores")
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
