"""The latency cost of each unit the accuracy fallback moved out of int8, on the SavedModel path
(tfquant.latency.form_costs through quantize_saved_model's target_sqnr), measured for real."""
from __future__ import annotations

import math

from test_accuracy import _layer, _quantize, outlier_model  # noqa: F401 (a fixture)
from tfquant.accuracy.layers import INT8, INT16


def test_the_report_gives_the_latency_cost_of_the_unit_at_16_bits(outlier_model, tmp_path):  # noqa: F811
    layers = _quantize(outlier_model, tmp_path, target_sqnr=25.0).quantization_report.layers
    kept = {layer.name.rsplit("/", 1)[-1]: layer.kept_as for layer in layers.layers}
    assert kept == {"a_layer": INT8, "b_layer": INT16, "c_layer": INT8}
    cost = _layer(layers, "b_layer").latency_cost_s
    # A 16x16 MatMul at batch 1 runs in microseconds whatever its activations' width.
    assert cost is not None and math.isfinite(cost) and abs(cost) < 0.01
    assert _layer(layers, "a_layer").latency_cost_s is None and _layer(layers, "c_layer").latency_cost_s is None
    row = next(line for line in layers.table().splitlines() if "b_layer" in line and "int16" in line)
    assert f"{cost * 1e3:+.2f} ms" in row
