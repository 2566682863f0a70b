"""The per-layer report's table, plot, JSON and model-explorer overlay, on hand-built report data, and
the overlay's keys against the graphs model-explorer builds for tiny real models."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from dacite import Config, from_dict
from matplotlib import image
from model_explorer.builtin_tf_mlir_adapter import BuiltinTfMlirAdapter
from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter
from model_explorer.node_data_builder import GraphNodeData, ModelNodeData

from tfquant import importer, tflite_flatbuffer
from tfquant.accuracy import render
from tfquant.accuracy.layers import FLOAT, INT16, OUTLIERS, RANGE_MISMATCH, Finding, LayerError, LayerReport
from tfquant.mlir import name_of, new_context, ops_named

LONG_NAME = "sequential/very_long_block_name_number_one/depthwise_conv2d_with_a_long_name/depthwise"


def _report(path: str = "saved_model", target: float | None = 20.0) -> LayerReport:
    """Five units: one error-free (local inf), one with no signal at the output (accumulated -inf),
    a 16-bit and a float fallback, the worst local SQNR on unit 3, then 1, then 4."""
    layers = [
        LayerError(0, "sequential/conv2d/Conv2D", "Conv2D", 38.25, 38.25, (-1.0, 1.0), (0.0, 6.0), 3, 4096),
        LayerError(1, LONG_NAME, "DepthwiseConv2dNative", 14.5, 20.125, (0.0, 6.0), (-30.0, 41.0), 410, 4096,
                   INT16, "fallback to meet the target", 2048, 0.0003, 6.0),
        LayerError(2, "sequential/dense/MatMul", "MatMul", math.inf, 19.0, (0.0, 6.0), (-3.0, 3.0)),
        LayerError(3, "sequential/dense_1/MatMul", "MatMul", 9.0, -math.inf, kept_as=FLOAT,
                   reason="non-finite values", size_cost_bytes=512, sensitivity_db=3.0),
        LayerError(4, "sequential/dense_2/MatMul", "MatMul", 25.0, 17.5),
    ]
    findings = [Finding(OUTLIERS, "sequential/conv2d/Conv2D", "activations 40x their 99.99th percentile",
                        ("sequential/conv2d/Conv2D",)),
                Finding(RANGE_MISMATCH, "x", "held-out inputs reach 3x the calibration range")]
    return LayerReport(layers, 64, model_sqnr_db={"output_0": 17.5, "output_1": 31.0}, findings=findings,
                       target_sqnr_db=target, baseline_sqnr_db={"output_0": 12.0},
                       applied={"bias_correction": 1.25}, rejected={"cross_layer_equalization": -0.375}, path=path)


def _row(text: str, name: str) -> list[str]:
    """The table row of the unit shown as `name`, split into its columns."""
    rows = [line for line in text.splitlines() if f" {name} " in line and line.split()[0].isdigit()]
    assert len(rows) == 1, (name, text)
    return rows[0].split()


def test_table_prints_every_unit_marks_the_worst_and_the_summary():
    text = render.table(_report())
    assert "on 64 samples held out of calibration" in text
    short = render.short_name(LONG_NAME, render.TABLE_NAME_WIDTH)
    assert short == "...ise_conv2d_with_a_long_name/depthwise" and len(short) == render.TABLE_NAME_WIDTH
    names = ["sequential/conv2d/Conv2D", short, "sequential/dense/MatMul", "sequential/dense_1/MatMul",
             "sequential/dense_2/MatMul"]
    rows = [_row(text, name) for name in names]
    assert [row[0] for row in rows] == ["0", "1", "2", "3", "4"]
    # Graph order in the text too.
    assert [text.index(f" {name} ") for name in names] == sorted(text.index(f" {name} ") for name in names)
    # local, accumulated: one decimal, infinities exact.
    assert [row[3:5] for row in rows] == [["38.2", "38.2"], ["14.5", "20.1"], ["inf", "19.0"], ["9.0", "-inf"],
                                          ["25.0", "17.5"]]
    # The three lowest local SQNRs, worst first: unit 3 (9.0), unit 1 (14.5), unit 4 (25.0); inf never.
    assert rows[3][5:7] == ["<<", "1"] and rows[1][5:7] == ["<<", "2"] and rows[4][5:7] == ["<<", "3"]
    assert "<<" not in rows[0] and "<<" not in rows[2]
    worst = text[text.index("Worst units"):].splitlines()[1:4]
    assert worst == ["  << 1  sequential/dense_1/MatMul: 9.0 dB", f"  << 2  {LONG_NAME}: 14.5 dB",
                     "  << 3  sequential/dense_2/MatMul: 25.0 dB"]
    # Ranges, clipped count and share (410 of 4096 = 10.01%), cost and what the unit was kept as.
    assert "[-30, 41]" in " ".join(rows[1]) and "410 (10.01%)" in " ".join(rows[1])
    assert "+6.0 +2.0 KiB, +0.30 ms" in " ".join(rows[1])
    assert " ".join(rows[1]).endswith("int16: fallback to meet the target")
    assert " ".join(rows[3]).endswith("+3.0 +512 B float: non-finite values")
    assert "3 (0.07%)" in " ".join(rows[0])
    assert "[outliers] sequential/conv2d/Conv2D: activations 40x their 99.99th percentile " \
           "(blames sequential/conv2d/Conv2D)" in text
    assert "[range-mismatch] x: held-out inputs reach 3x the calibration range\n" in text
    assert "  output_0: 12.0 -> 17.5\n  output_1: 31.0\n" in text   # no baseline for output_1
    assert "Applied: bias_correction (+1.2 dB)" in text and "Rejected: cross_layer_equalization (-0.4 dB)" in text
    assert text.rstrip().endswith("Target 20.0 dB: NOT met (lowest output output_0: 17.5 dB).")
    assert str(_report(target=17.5)).rstrip().endswith("Target 17.5 dB: met (lowest output output_0: 17.5 dB).")
    assert str(_report(target=None)).rstrip().endswith("Target: none.")
    # The fallback's verdict, where it gave one, is what the table says.
    judged = _report(target=17.5)
    judged.target_met = False
    assert judged.table().rstrip().endswith("Target 17.5 dB: NOT met (lowest output output_0: 17.5 dB).")


def test_table_leaves_out_columns_no_unit_has():
    report = LayerReport([LayerError(0, "dense/MatMul", "MatMul", 30.0, 30.0)], 1)
    text = report.table()
    assert "on 1 sample held out" in text
    header = text.splitlines()[2].split()
    assert header == ["#", "unit", "op", "local", "accum", "worst", "kept", "as"]
    assert "Model SQNR: not measured." in text and "Findings: none." in text
    report.target_sqnr_db = 25.0
    assert report.table().rstrip().endswith("Target 25.0 dB: not measured.")
    report.target_met = True
    assert report.table().rstrip().endswith("Target 25.0 dB: met.")


def test_plot_writes_a_png_sized_to_the_units(tmp_path):
    path = str(tmp_path / "report.png")
    _report().plot(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(path)
    assert pixels.shape == (480, 600, 4)          # 6 x 4.8 inches at 100 dpi: the narrowest plot
    assert pixels[..., :3].std() > 0.1            # something is drawn
    many = LayerReport([LayerError(i, f"block_{i}/conv/Conv2D", "Conv2D", 20.0 + i % 7, 18.0 + i % 5)
                        for i in range(30)], 8, {"out": 15.0})
    render.plot(many, path)                      # replaced in place
    assert image.imread(path).shape == (480, 1100, 4)   # 0.3 inch per unit + 2 inches
    assert os.listdir(tmp_path) == ["report.png"]  # no staging file left behind


def test_plot_of_only_infinite_sqnrs(tmp_path):
    report = LayerReport([LayerError(0, "a", "MatMul", math.inf, -math.inf)], 1)
    render.plot(report, str(tmp_path / "p.png"))
    assert image.imread(str(tmp_path / "p.png")).shape == (480, 600, 4)


def _load_graph_node_data(data: dict) -> GraphNodeData:
    """model-explorer's own GraphNodeData, built from our JSON as its server builds its dataclasses
    from JSON (dacite); strict: a key that is not a field of the schema is an error."""
    return from_dict(GraphNodeData, data, config=Config(strict=True))


@pytest.mark.parametrize("metric", ["local", "accumulated"])
def test_overlay_loads_as_model_explorer_node_data(tmp_path, metric):
    report = _report(path="tflite")
    path = str(tmp_path / f"{metric}.json")
    report.write_overlay(path, metric=metric)
    with open(path) as f:
        data = json.load(f)
    node_data = _load_graph_node_data(data)
    expected = {layer.name: (layer.local_sqnr_db if metric == "local" else layer.accumulated_sqnr_db)
                for layer in report.layers}
    expected = {name: max(-render.OVERLAY_INF_DB, min(render.OVERLAY_INF_DB, v)) for name, v in expected.items()}
    assert {key: result.value for key, result in node_data.results.items()} == expected
    assert list(node_data.results) == [layer.name for layer in report.layers]
    # Red up to 10 dB under the target (20 dB), green above it up to the largest value written.
    assert [(t.value, t.bgColor) for t in node_data.thresholds] == [
        (10.0, "#d32f2f"), (15.0, "#f57c00"), (20.0, "#fbc02d"), (render.OVERLAY_INF_DB, "#388e3c")]
    assert node_data.name == f"{metric} SQNR (dB)"
    # The package's own writer gives back what we wrote.
    written = json.loads(node_data.to_json_string())
    assert {key: written[key] for key in data} == data


def test_overlay_refuses_unknown_metric_and_saved_model_without_its_graph(tmp_path):
    with pytest.raises(ValueError, match="unknown overlay metric 'sensitivity'"):
        _report(path="tflite").write_overlay(str(tmp_path / "o.json"), metric="sensitivity")
    with pytest.raises(ValueError, match="pass model_path"):
        _report().write_overlay(str(tmp_path / "o.json"))
    assert not os.listdir(tmp_path)


def test_json_round_trip(tmp_path):
    report = _report()
    path = str(tmp_path / "report.json")
    report.write_json(path)
    with open(path) as f:
        text = f.read()
    assert "Infinity" not in text and "NaN" not in text
    data = json.loads(text)
    assert data == report.to_dict()
    assert data["layers"][2]["local_sqnr_db"] is None and data["layers"][3]["accumulated_sqnr_db"] is None
    assert data["layers"][1]["input_range"] == [0.0, 6.0] and data["layers"][1]["kept_as"] == INT16
    assert data["findings"][0]["units"] == ["sequential/conv2d/Conv2D"]
    assert data["held_out_samples"] == 64 and data["applied"] == {"bias_correction": 1.25}


# ------------------------------------------------------------- the overlay on model-explorer's graph

def _save_two_dense(path: str) -> None:
    """Two dense layers in Keras-like name scopes: MatMul + bias + Relu, then MatMul + bias."""
    rng = np.random.default_rng(7)
    module = tf.Module()
    module.w1 = tf.Variable(rng.normal(size=(4, 8)).astype(np.float32))
    module.w2 = tf.Variable(rng.normal(size=(8, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def serve(x):
        with tf.name_scope("model/dense"):
            y = tf.nn.relu(tf.matmul(x, module.w1) + 0.5)
        with tf.name_scope("model/dense_1"):
            return {"logits": tf.matmul(y, module.w2) - 0.25}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def _units(names: list[str], op_type: str, path: str) -> LayerReport:
    layers = [LayerError(i, name, op_type, 30.0 + 5 * i, 28.0 + 5 * i) for i, name in enumerate(names)]
    return LayerReport(layers, 4, {"logits": 27.0}, path=path)


def test_saved_model_overlay_keys_are_node_ids_of_model_explorers_graph(tmp_path):
    saved_model = str(tmp_path / "model")
    _save_two_dense(saved_model)
    # Unit names as the report gets them: the locations our importer gives the MatMuls.
    module = importer.import_saved_model(saved_model, context=new_context())
    names = [name_of(op.location) for op in ops_named(module.operation, "tf.MatMul")]
    del module
    assert names == ["model/dense/MatMul", "model/dense_1/MatMul"]
    report = _units(names, "MatMul", "saved_model")
    path = str(tmp_path / "overlay.json")
    report.write_overlay(path, model_path=saved_model)
    with open(path) as f:
        data = json.load(f)
    model_data = from_dict(ModelNodeData, {"graphsData": data}, config=Config(strict=True))
    graphs = {graph["id"]: graph for collection in BuiltinTfMlirAdapter().convert(saved_model, {})["graphCollections"]
              for graph in collection.graphs}
    (graph_id, node_data), = model_data.graphsData.items()
    nodes = {node["id"]: node for node in graphs[graph_id]["nodes"]}
    landed = {nodes[key]["namespace"]: (nodes[key]["label"], result.value) for key, result in node_data.results.items()}
    assert landed == {"model/dense/MatMul": ("MatMul", 30.0), "model/dense_1/MatMul": ("MatMul", 35.0)}
    # Keyed by ids, not names: model-explorer numbers the nodes.
    assert all(key.isdigit() for key in node_data.results)

    with pytest.raises(ValueError, match=r"1 of 3 units are not nodes of model-explorer's graph .*: model/gone/MatMul"):
        _units(names + ["model/gone/MatMul"], "MatMul", "saved_model").write_overlay(path, model_path=saved_model)


def test_tflite_overlay_keys_are_output_tensor_names_of_model_explorers_graph(tmp_path):
    saved_model = str(tmp_path / "model")
    _save_two_dense(saved_model)
    model_path = str(tmp_path / "model.tflite")
    with open(model_path, "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_saved_model(saved_model).convert())
    with open(model_path, "rb") as f:
        module = tflite_flatbuffer.import_flatbuffer(f.read(), new_context())
    names = [name_of(op.location) for op in ops_named(module.operation, "tfl.fully_connected")]
    del module
    assert len(names) == 2
    report = _units(names, "FULLY_CONNECTED", "tflite")
    graph, = [graph for collection in BuiltinTfliteFlatbufferAdapter().convert(model_path, {})["graphCollections"]
              for graph in collection.graphs]
    # What model-explorer maps node data keys to: each output tensor name to its node.
    tensor_to_node = {attr["value"]: node for node in graph["nodes"] for output in node["outputsMetadata"]
                      for attr in output["attrs"] if attr["key"] == "tensor_name"}

    portable = str(tmp_path / "portable.json")
    report.write_overlay(portable)
    with open(portable) as f:
        node_data = _load_graph_node_data(json.load(f))
    assert [tensor_to_node[key]["label"] for key in node_data.results] == ["fully_connected"] * 2
    assert [result.value for result in node_data.results.values()] == [30.0, 35.0]

    keyed = str(tmp_path / "keyed.json")
    report.write_overlay(keyed, model_path=model_path, metric="accumulated")
    with open(keyed) as f:
        data = json.load(f)
    model_data = from_dict(ModelNodeData, {"graphsData": data}, config=Config(strict=True))
    assert list(model_data.graphsData) == [graph["id"]]
    assert {key: result.value for key, result in model_data.graphsData[graph["id"]].results.items()} == {
        names[0]: 28.0, names[1]: 33.0}
