"""What export_saved_model writes beyond the graph it builds (issue #12, "equal or smaller size").

* Equal constants (every layer's clamp bounds and zero points) are one node per function.
* Without variables, no saver: its functions and graph nodes are gone, and the model still loads
  with TF2's loader and with a TF1 session (the C++ loader's path); with variables it stays.
* Only returned nodes keep `_output_shapes`; the loaded signature's outputs keep their shapes.
* The fingerprint is that of the rewritten file.
"""
from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import fingerprint_pb2  # noqa: E402
from tensorflow.python.saved_model import loader_impl  # noqa: E402
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting  # noqa: E402

from tfquant.exporter import export_saved_model  # noqa: E402
from tfquant.mlir import ir, new_context  # noqa: E402

SERVING = "serving_default"

# clip(clip(x, -1, 1) @ w, -1, 1): the second clip's bounds repeat the first's.
MODULE = """
module {
  func.func @serving_default(%x: tensor<?x4xf32> {tfq.input_name = "x"}) -> (tensor<?x4xf32> {tfq.output_name = "output_0"}) {
    %lo = "tf.Const"() {dtype = f32, value = dense<-1.0> : tensor<f32>} : () -> tensor<f32> loc("first/min")
    %hi = "tf.Const"() {dtype = f32, value = dense<1.0> : tensor<f32>} : () -> tensor<f32> loc("first/max")
    %a = "tf.ClipByValue"(%x, %lo, %hi) {T = f32} : (tensor<?x4xf32>, tensor<f32>, tensor<f32>) -> tensor<?x4xf32>
    %w = "tf.Const"() {dtype = f32, value = dense<[[0.5, 1.0, -2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, -1.0, 0.25, 3.0], [2.0, 0.0, 0.0, -0.5]]> : tensor<4x4xf32>} : () -> tensor<4x4xf32>
    %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x4xf32>, tensor<4x4xf32>) -> tensor<?x4xf32>
    %lo2 = "tf.Const"() {dtype = f32, value = dense<-1.0> : tensor<f32>} : () -> tensor<f32> loc("second/min")
    %hi2 = "tf.Const"() {dtype = f32, value = dense<1.0> : tensor<f32>} : () -> tensor<f32> loc("second/max")
    %b = "tf.ClipByValue"(%m, %lo2, %hi2) {T = f32} : (tensor<?x4xf32>, tensor<f32>, tensor<f32>) -> tensor<?x4xf32>
    return %b : tensor<?x4xf32>
  }
}
"""
WEIGHT = np.array([[0.5, 1.0, -2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, -1.0, 0.25, 3.0], [2.0, 0.0, 0.0, -0.5]],
                  np.float32)
X = np.array([[0.25, -3.0, 0.5, 2.0], [-0.75, 0.1, 0.9, -0.2], [1.5, 1.5, -1.5, 0.0]], np.float32)
EXPECTED = np.clip(np.clip(X, -1, 1) @ WEIGHT, -1, 1)


def _export(path: str, variable_threshold: int | None) -> None:
    with new_context():
        export_saved_model(ir.Module.parse(MODULE), path, variable_threshold=variable_threshold)


def _meta_graph(path: str):
    return loader_impl.parse_saved_model(path).meta_graphs[0]


def _body(meta_graph):
    """The function holding the signature's ops (the one that has the MatMul)."""
    [body] = [f for f in meta_graph.graph_def.library.function if any(n.op == "MatMul" for n in f.node_def)]
    return body


def _session_outputs(path: str) -> np.ndarray:
    """The signature run as the C++ loader runs it: restore through the saver_def if any, then the graph."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.load(session, [tf.saved_model.SERVING], path)
        signature = meta_graph.signature_def[SERVING]
        return session.run(signature.outputs["output_0"].name, {signature.inputs["x"].name: X})


def test_equal_constants_are_one_node(tmp_path):
    out = str(tmp_path / "m")
    _export(out, variable_threshold=None)
    scalars = [tf.make_ndarray(n.attr["value"].tensor) for n in _body(_meta_graph(out)).node_def
               if n.op == "Const" and not n.attr["value"].tensor.tensor_shape.dim]
    assert sorted(float(v) for v in scalars) == [-1.0, 1.0]
    np.testing.assert_array_equal(tf.saved_model.load(out).signatures[SERVING](x=tf.constant(X))["output_0"],
                                  EXPECTED)


def test_without_variables_the_saver_is_gone_and_every_loader_runs_it(tmp_path):
    out = str(tmp_path / "m")
    _export(out, variable_threshold=None)
    meta_graph = _meta_graph(out)
    assert not meta_graph.HasField("saver_def")
    assert [f.signature.name for f in meta_graph.graph_def.library.function if "traced_" in f.signature.name] == []
    ops = {op.name for op in meta_graph.meta_info_def.stripped_op_list.op}
    assert not ops & {"SaveV2", "RestoreV2", "MergeV2Checkpoints"}
    assert {"ClipByValue", "MatMul"} <= ops
    assert {n.op for n in meta_graph.graph_def.node} == {"Placeholder", "PartitionedCall", "NoOp"}
    np.testing.assert_array_equal(tf.saved_model.load(out).signatures[SERVING](x=tf.constant(X))["output_0"],
                                  EXPECTED)
    np.testing.assert_array_equal(_session_outputs(out), EXPECTED)


def test_with_variables_the_saver_stays_and_restores_them(tmp_path):
    out = str(tmp_path / "m")
    _export(out, variable_threshold=8)
    meta_graph = _meta_graph(out)
    assert meta_graph.HasField("saver_def")
    loaded = tf.saved_model.load(out)
    assert [v.shape.as_list() for v in loaded.signatures[SERVING].variables] == [[4, 4]]
    np.testing.assert_array_equal(loaded.signatures[SERVING](x=tf.constant(X))["output_0"], EXPECTED)
    np.testing.assert_array_equal(_session_outputs(out), EXPECTED)


def test_only_returned_nodes_keep_their_shapes(tmp_path):
    out = str(tmp_path / "m")
    _export(out, variable_threshold=None)
    body = _body(_meta_graph(out))
    returned = {tensor.split(":")[0] for tensor in body.ret.values()}
    assert {n.name for n in body.node_def if "_output_shapes" in n.attr} == returned
    signature = tf.saved_model.load(out).signatures[SERVING]
    assert signature.structured_outputs["output_0"].shape.as_list() == [None, 4]


def test_the_fingerprint_is_the_rewritten_files(tmp_path):
    out = str(tmp_path / "m")
    _export(out, variable_threshold=None)
    with open(os.path.join(out, "fingerprint.pb"), "rb") as f:
        written = fingerprint_pb2.FingerprintDef.FromString(f.read())
    fresh = fingerprint_pb2.FingerprintDef.FromString(fingerprinting.CreateFingerprintDef(out))
    assert written.saved_model_checksum == fresh.saved_model_checksum != 0
