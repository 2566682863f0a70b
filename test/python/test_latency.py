"""Latency-checked quantization (`optimize_for="latency"`, tfquant.latency): decisions from injected
timings, the report, the IR left for the QUANTIZE stage, and one real measurement."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

import models
from tfquant import calibrate, dataset, latency, options as options_lib, pipeline
from tfquant.exporter import signature_input_specs
from tfquant.importer import import_saved_model
from tfquant.mlir import clone_module, ir, ops_named
from tfquant.passes._composite import lifted_calls
from tfquant.passes._points import calibration_points
from tfquant.passes._spec import NO_QUANTIZE, STATIC, UnitSpec, float_reason, leave_float, set_unit_spec, unit_spec
from tfquant.passes._tfq import CalibrationPointOp
from tfquant.quantize import quantize_saved_model
from tfquant.tools import cli


@pytest.fixture(scope="module")
def matmul_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("latency") / "matmul")
    info = models.build_matmul(path)
    return path, info


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("latency") / "conv")
    info = models.build_conv_bn(path)
    return path, info


def _samples(info, count=12, seed=0):
    rng = np.random.default_rng(seed)
    (name, batch), = info["inputs"].items()
    return [{name: rng.normal(size=(1, *batch.shape[1:])).astype(np.float32)} for _ in range(count)]


class Injected:
    """A measure returning given timings, (float ms, quantized ms), per node name for units and per
    candidate for the whole model (by default both candidates faster than float, the per-unit one
    most); records every probe."""

    def __init__(self, timings, run=False, model=None):
        self.timings = timings
        self.model = model or {latency.CHECKED: (1.0, 0.5), latency.ALL_QUANTIZED: (1.0, 0.6)}
        self.run = run
        self.probes = []

    @property
    def unit_probes(self):
        return [p for p in self.probes if p.op_type != latency.MODEL]

    def __call__(self, float_run, int8_run, probe):
        self.probes.append(probe)
        if self.run:  # the micro-modules (or the model's candidates) trace and run
            for fn in (float_run, int8_run):
                outputs = fn()
                name = "output_0" if probe.op_type == latency.MODEL else latency._OUTPUT
                assert list(outputs) == [name]
                assert outputs[name].shape[0] == probe.batch
        if probe.op_type == latency.MODEL:
            return self.model[probe.node_name]
        return self.timings[probe.node_name]


def _quantize(path, info, tmp_path, measure, monkeypatch, opset="XLA", **kwargs):
    monkeypatch.setattr(latency, "time_units", measure)
    proto = options_lib.QuantizationOptions()
    proto.op_set = options_lib.OpSet.Value(opset)
    return quantize_saved_model(path, str(tmp_path / "out"), proto, _samples(info), verbose=False,
                                optimize_for="latency", **kwargs)


def _sqnr(loaded, path, inputs):
    expected = tf.saved_model.load(path).signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    actual = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    reference, got = expected["output_0"].numpy(), actual["output_0"].numpy()
    return 10 * np.log10(np.sum(reference ** 2) / max(np.sum((reference - got) ** 2), 1e-30))


@pytest.mark.parametrize("opset", ["XLA", "TF"])
def test_slower_unit_is_kept_float_with_reason_and_gain(matmul_model, tmp_path, monkeypatch, opset):
    path, info = matmul_model
    measure = Injected({"MatMul": (0.30, 0.10), "MatMul_1": (0.12, 0.21)}, run=True)
    loaded = _quantize(path, info, tmp_path, measure, monkeypatch, opset)
    report = loaded.quantization_report
    assert report.optimize_for == "latency"
    assert report.quantized_layers == {"MatMul": (1, 2)}
    kept = {u.node_name: u for u in report.latency.units}
    assert kept["MatMul"].kept == latency.QUANTIZED
    assert kept["MatMul"].gain == pytest.approx(3.0)
    assert kept["MatMul_1"].kept == latency.FLOAT
    assert kept["MatMul_1"].gain == pytest.approx(0.12 / 0.21)
    assert kept["MatMul_1"].note == "int8 is slower here: 0.21 ms vs 0.12 ms float (batch 1)"
    assert [(u.node_name, u.reason) for u in report.float_units] == [
        ("MatMul_1", "int8 is slower here: 0.21 ms vs 0.12 ms float (batch 1)")]
    # Measured at batch 1 and at the calibration batch (12 samples joined in one batch).
    assert report.latency.batch_sizes == (1, 12)
    assert {(p.node_name, p.batch, p.shape) for p in measure.unit_probes} == {
        ("MatMul", 1, (1, 16)), ("MatMul", 12, (12, 16)), ("MatMul_1", 1, (1, 32)), ("MatMul_1", 12, (12, 32))}
    text = str(report)
    assert "left float: MatMul MatMul_1: int8 is slower here: 0.21 ms vs 0.12 ms float (batch 1)" in text
    assert "latency check at batch 1 and 12: 1 units kept quantized, 1 kept float; kept as the per-unit check decided" \
        in text
    # The whole model, as decided and all quantized, against float, at both batch sizes.
    assert report.latency.chosen == latency.CHECKED
    assert [(s, b, sorted(c)) for s, b, c in report.latency.model] == [
        ("serving_default", 1, sorted([latency.CHECKED, latency.ALL_QUANTIZED])),
        ("serving_default", 12, sorted([latency.CHECKED, latency.ALL_QUANTIZED]))]
    assert "model 'serving_default' at batch 12: per-unit 0.50 ms vs 1.00 ms float (2.00x), " \
        "all quantized 0.60 ms vs 1.00 ms float (1.67x)" in text
    assert "kept quantized: MatMul MatMul: int8 gain 3.00x" in text
    assert "kept float: MatMul MatMul_1: int8 gain 0.57x" in text
    assert _sqnr(loaded, path, info["inputs"]) > 12  # plain int8: 15.8 dB on these inputs


def test_all_faster_changes_nothing(matmul_model, tmp_path, monkeypatch):
    path, info = matmul_model
    measure = Injected({"MatMul": (0.30, 0.10), "MatMul_1": (0.30, 0.10)})
    checked = _quantize(path, info, tmp_path / "a", measure, monkeypatch)
    plain = quantize_saved_model(path, str(tmp_path / "b"), None, _samples(info), verbose=False)
    assert checked.quantization_report.quantized_layers == plain.quantization_report.quantized_layers == {
        "MatMul": (2, 2)}
    assert not checked.quantization_report.float_units
    assert [u.kept for u in checked.quantization_report.latency.units] == [latency.QUANTIZED] * 2
    # Each unit measured once per batch size: nothing changed, so no second round; the whole model
    # as quantized against float at both batch sizes.
    assert len(measure.unit_probes) == 4
    assert [(p.node_name, p.batch) for p in measure.probes if p.op_type == latency.MODEL] == [
        (latency.ALL_QUANTIZED, 1), (latency.ALL_QUANTIZED, 12)]
    assert checked.quantization_report.latency.chosen == latency.ALL_QUANTIZED
    x = tf.constant(info["inputs"]["x"])
    np.testing.assert_array_equal(checked.signatures["serving_default"](x=x)["output_0"].numpy(),
                                  plain.signatures["serving_default"](x=x)["output_0"].numpy())
    assert plain.quantization_report.optimize_for is None
    assert "latency check" not in str(plain.quantization_report)


def test_slower_at_one_batch_size_is_kept_float(matmul_model, tmp_path, monkeypatch):
    path, info = matmul_model

    def measure(float_run, int8_run, probe):
        if probe.op_type == latency.MODEL:
            return 1.0, 0.5
        return (0.2, 0.1) if probe.batch == 1 or probe.node_name == "MatMul" else (0.2, 0.3)

    report = _quantize(path, info, tmp_path, measure, monkeypatch).quantization_report
    assert report.float_units[0].node_name == "MatMul_1"
    assert report.float_units[0].reason == "int8 is slower here: 0.30 ms vs 0.20 ms float (batch 12)"


def test_neighbours_are_measured_again(matmul_model, tmp_path, monkeypatch):
    """Keeping the first layer float makes the second quantize its input: it is measured again and,
    told its new form is slower, kept float too."""
    path, info = matmul_model
    calls = []

    def measure(float_run, int8_run, probe):
        calls.append(probe.node_name)
        if probe.node_name == "MatMul":
            return 0.1, 0.2
        return (0.3, 0.1) if calls.count("MatMul_1") <= 2 else (0.3, 0.4)

    report = _quantize(path, info, tmp_path, measure, monkeypatch).quantization_report
    assert calls.count("MatMul_1") == 4  # two rounds, two batch sizes
    assert [u.kept for u in report.latency.units] == [latency.FLOAT, latency.FLOAT]
    assert report.quantized_layers == {"MatMul": (0, 2)}


def _calibrated(path, info, opset="XLA"):
    proto = options_lib.QuantizationOptions()
    proto.op_set = options_lib.OpSet.Value(opset)
    resolved = options_lib.resolve_options(proto)
    module = import_saved_model(path, resolved.signature_keys, resolved.tags)
    specs = signature_input_specs(module)
    stages = pipeline.build(resolved, True)
    pipeline.run_pipeline(module, stages[0].pipeline)
    datasets = dataset.normalize_dataset(_samples(info), resolved.signature_keys, specs,
                                         resolved.representative_datasets)
    calibrate.calibrate(module, datasets, specs, resolved.calibration_options, progress=False)
    return module, resolved


def test_check_leaves_float_units_without_calibration_points(matmul_model):
    path, info = matmul_model
    module, resolved = _calibrated(path, info)
    points = len(ops_named(module.operation, CalibrationPointOp.OPERATION_NAME))
    assert points == 3
    units = latency.check(module, resolved, batch_sizes=(1, 4), check_model=False,
                          measure=Injected({"MatMul": (0.1, 0.2), "MatMul_1": (0.3, 0.1)})).units
    assert [(u.node_name, u.kept) for u in units] == [("MatMul", latency.FLOAT), ("MatMul_1", latency.QUANTIZED)]
    first, second = lifted_calls(module.operation)
    assert unit_spec(first).method == NO_QUANTIZE
    assert float_reason(first).startswith("int8 is slower here")
    assert float_reason(second) is None
    # The point on the model's input served only the float unit; the one between the units is the
    # quantized unit's input range, and its output's stays.
    assert len(ops_named(module.operation, CalibrationPointOp.OPERATION_NAME)) == 2
    assert isinstance(first.operands[0].owner, ir.Block)  # the model's input, no point in between


def _fallen_back(module):
    """A copy of `module` as the accuracy fallback leaves it with MatMul float and MatMul_1 at 16-bit
    activations: the model input's point (only MatMul read it) has no range, the others are 16 bits."""
    chosen = clone_module(module)
    first, second = lifted_calls(chosen.operation)
    with chosen.context, ir.Location.unknown():
        leave_float(first, "to meet the target")
        set_unit_spec(second, UnitSpec(STATIC, 16, True))
        for point in calibration_points(chosen.operation):
            if isinstance(point.operands[0].owner, ir.Block):
                point.clear_range()
            else:
                point.activation_bits = 16
    return chosen


def test_form_costs_are_the_chosen_form_less_the_int8_form(matmul_model):
    path, info = matmul_model
    int8_module, resolved = _calibrated(path, info)
    chosen = _fallen_back(int8_module)
    before = (str(int8_module), str(chosen))
    outputs = {}

    def measure(chosen_run, int8_run, probe):
        outputs[probe.node_name] = [run()[latency._OUTPUT].numpy() for run in (chosen_run, int8_run)]
        return {"MatMul": (0.50, 0.20), "MatMul_1": (0.30, 0.45)}[probe.node_name]

    keys = list(latency.unit_keys(chosen))
    costs = latency.form_costs(int8_module, chosen, resolved, keys, measure=measure)
    assert costs.keys() == set(keys)
    assert [key[1] for key in keys] == ["MatMul", "MatMul_1"]
    assert costs[keys[0]] == pytest.approx(0.30e-3) and costs[keys[1]] == pytest.approx(-0.15e-3)
    assert (str(int8_module), str(chosen)) == before
    # The forms timed at batch 1 (the micro-modules' inputs: standard normal floats drawn with seed 0):
    # MatMul's chosen form is the float unit, exactly; its int8 form is not.
    loaded = tf.saved_model.load(path)
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32)
    float_first = np.maximum(x @ loaded.w1.numpy() + loaded.b1.numpy(), 0)
    chosen_first, int8_first = outputs["MatMul"]
    np.testing.assert_allclose(chosen_first, float_first, rtol=1e-5, atol=1e-6)
    assert np.abs(int8_first - float_first).max() > 1e-3
    # MatMul_1's chosen form quantizes its float input (its producer is float now) at 16 bits: it is the
    # float unit up to its int8 weights' rounding. Its int8 form reads MatMul's int8 storage, as in the
    # int8 model (random integers here): another input altogether.
    h = np.random.default_rng(0).standard_normal((1, 32)).astype(np.float32)
    float_second = np.maximum(h @ loaded.w2.numpy() + loaded.b2.numpy(), 0)
    chosen_second, int8_second = outputs["MatMul_1"]
    assert np.abs(chosen_second - float_second).max() < 0.05 < np.abs(int8_second - float_second).max()


def test_form_costs_leave_out_units_that_cannot_be_measured(tmp_path):
    path = str(tmp_path / "dynamic_conv")
    info = models.build_dynamic_conv(path)
    int8_module, resolved = _calibrated(path, info)
    chosen = clone_module(int8_module)
    call, = lifted_calls(chosen.operation)
    with chosen.context, ir.Location.unknown():
        leave_float(call, "to meet the target")
    measure = Injected({})
    assert latency.form_costs(int8_module, chosen, resolved, list(latency.unit_keys(chosen)), measure=measure) == {}
    assert not measure.probes


def test_dynamic_dimensions_besides_the_batch_are_not_checked(tmp_path, monkeypatch):
    path = str(tmp_path / "dynamic_conv")
    info = models.build_dynamic_conv(path)
    measure = Injected({})
    monkeypatch.setattr(latency, "time_units", measure)
    (name, batch), = info["inputs"].items()
    loaded = quantize_saved_model(path, str(tmp_path / "out"), None, [{name: batch[:1]}] * 4, verbose=False,
                                  optimize_for="latency")
    report = loaded.quantization_report
    assert not measure.probes  # neither the unit nor the model (no row shape to make inputs of)
    assert [u.kept for u in report.latency.units] == [latency.UNCHECKED]
    assert "dynamic dimensions besides the batch" in report.latency.units[0].note
    assert report.quantized_layers["Conv2D"][0] == 1  # keeps its spec
    assert "not checked: Conv2D" in str(report)


def test_weight_only_units_stay_narrow_within_tolerance(tmp_path, monkeypatch):
    path = str(tmp_path / "wide")
    models.build_wide_channels(path)
    monkeypatch.setattr(latency, "time_units", Injected({"MatMul": (0.10, 0.11)}))
    loaded = quantize_saved_model(path, str(tmp_path / "a"), None, verbose=False, method="weight_only_float16",
                                  optimize_for="latency")
    units = loaded.quantization_report.latency.units
    assert [(u.kept, u.form) for u in units] == [(latency.QUANTIZED, "float16")]
    monkeypatch.setattr(latency, "time_units", Injected({"MatMul": (0.10, 0.20)},
                                                        model={latency.ALL_QUANTIZED: (1.0, 1.5)}))
    loaded = quantize_saved_model(path, str(tmp_path / "b"), None, verbose=False, method="weight_only_float16",
                                  optimize_for="latency")
    report = loaded.quantization_report
    assert [u.kept for u in report.latency.units] == [latency.FLOAT]
    assert report.float_units[0].reason == "float16 is slower here: 0.20 ms vs 0.10 ms float (batch 1)"


def test_model_faster_all_quantized_undoes_unit_decisions(matmul_model, tmp_path, monkeypatch):
    path, info = matmul_model
    measure = Injected({"MatMul": (0.30, 0.10), "MatMul_1": (0.12, 0.21)},
                       model={latency.CHECKED: (1.0, 0.9), latency.ALL_QUANTIZED: (1.0, 0.5)})
    report = _quantize(path, info, tmp_path, measure, monkeypatch).quantization_report
    assert report.latency.chosen == latency.ALL_QUANTIZED
    assert report.quantized_layers == {"MatMul": (2, 2)}
    assert not report.float_units
    assert [u.kept for u in report.latency.units] == [latency.QUANTIZED, latency.QUANTIZED]
    assert "every unit kept quantized: the model is fastest so" in str(report)


def test_model_slower_quantized_is_kept_float(matmul_model, tmp_path, monkeypatch):
    path, info = matmul_model
    measure = Injected({"MatMul": (0.30, 0.10), "MatMul_1": (0.12, 0.21)},
                       model={latency.CHECKED: (1.0, 1.1), latency.ALL_QUANTIZED: (1.0, 1.2)})
    loaded = _quantize(path, info, tmp_path, measure, monkeypatch)
    report = loaded.quantization_report
    assert report.latency.chosen == latency.ALL_FLOAT
    assert report.quantized_layers == {"MatMul": (0, 2)}
    assert [(u.node_name, u.reason) for u in report.float_units] == [
        ("MatMul", "the model is slower quantized: 1.10 ms vs 1.00 ms float (batch 1)"),
        ("MatMul_1", "int8 is slower here: 0.21 ms vs 0.12 ms float (batch 1)")]
    assert [u.kept for u in report.latency.units] == [latency.FLOAT, latency.FLOAT]
    x = tf.constant(info["inputs"]["x"])
    expected = tf.saved_model.load(path).signatures["serving_default"](x=x)["output_0"].numpy()
    np.testing.assert_allclose(loaded.signatures["serving_default"](x=x)["output_0"].numpy(), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("name", ["cond_dense", "two_signatures"])
def test_branches_and_signatures_are_measured(name, tmp_path, monkeypatch):
    """Units inside If branches and in several signatures are measured; the whole model is timed
    per signature (each candidate traced with its branches)."""
    path = str(tmp_path / name)
    info = getattr(models, f"build_{name}")(path)

    def measure(float_run, int8_run, probe):
        float_run()
        int8_run()
        return 1.0, 0.5

    monkeypatch.setattr(latency, "time_units", measure)
    proto = options_lib.QuantizationOptions()
    proto.signature_keys.extend(info["signatures"])
    datasets = {signature: [inputs] * 3 for signature, inputs in info["signatures"].items()}
    loaded = quantize_saved_model(path, str(tmp_path / "out"), proto, datasets, verbose=False,
                                  optimize_for="latency")
    report = loaded.quantization_report
    assert report.latency.units and all(u.kept == latency.QUANTIZED for u in report.latency.units)
    assert {s for s, _, _ in report.latency.model} == set(info["signatures"])
    assert {u.function for u in report.latency.units} >= ({"serving_default", "other"} if name == "two_signatures"
                                                            else {"serving_default"})
    for signature, inputs in info["cases"]:
        loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})


def test_unknown_optimize_for_is_refused(matmul_model, tmp_path):
    path, _ = matmul_model
    with pytest.raises(ValueError, match="optimize_for must be None or 'latency', got 'size'"):
        quantize_saved_model(path, str(tmp_path / "out"), None, verbose=False, optimize_for="size")


def test_real_measurement_runs_and_reports(conv_model, tmp_path):
    """No assertion on who wins: only that it measures every unit and reports."""
    path, info = conv_model
    loaded = quantize_saved_model(path, str(tmp_path / "out"), None, _samples(info, 4), verbose=False,
                                  optimize_for="latency")
    report = loaded.quantization_report
    assert [u.node_name for u in report.latency.units] == ["Conv2D", "Conv2D_1"]
    assert report.latency.chosen in (latency.CHECKED, latency.ALL_QUANTIZED, latency.ALL_FLOAT)
    assert [b for _, b, _ in report.latency.model] == [1, 4]
    for unit in report.latency.units:
        assert unit.kept in (latency.QUANTIZED, latency.FLOAT)
        assert [b for b, _, _ in unit.timings] == [1, 4]
        assert all(f >= 0 and i >= 0 for _, f, i in unit.timings)
    kept_float = {u.node_name for u in report.latency.units if u.kept == latency.FLOAT}
    assert {u.node_name for u in report.float_units} == kept_float
    assert "latency check at batch 1 and 4" in str(report)
    assert _sqnr(loaded, path, info["inputs"]) > 12


def test_cli_flag(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake(*args, **kwargs):  # a loaded model with no per-layer report, as quantize_saved_model returns
        seen.update(kwargs)
        return SimpleNamespace(quantization_report=SimpleNamespace(layers=None))

    import tfquant.quantize
    monkeypatch.setattr(tfquant.quantize, "quantize_saved_model", fake)
    assert cli.main(["quantize", "in", str(tmp_path / "out"), "--method", "dynamic_range_int8",
                     "--optimize-for", "latency"]) == 0
    assert seen["optimize_for"] == "latency"
    assert cli.main(["quantize", "in", str(tmp_path / "out"), "--method", "dynamic_range_int8"]) == 0
    assert seen["optimize_for"] is None
    with pytest.raises(SystemExit):
        cli.main(["quantize", "--help"])
    assert "--optimize-for {latency}" in capsys.readouterr().out
