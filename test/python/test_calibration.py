"""Calibration statistics: equal to what TensorFlow's own C++ kernels collect, and the ranges from them."""
from __future__ import annotations

import gc

import numpy as np
import pytest
import tensorflow as tf
# Importing the quantizer's wrapper registers TF's CustomAggregator and CalibrationStatisticsSaver ops.
from tensorflow.compiler.mlir.quantization.tensorflow.python import pywrap_quantize_model  # noqa: F401
from tensorflow.compiler.mlir.quantization.tensorflow.calibrator import calibration_statistics_pb2

from tfquant.calibration import (
    MAX_HISTOGRAM_BINS,
    AverageMinMaxCollector,
    HistogramCollector,
    MinMaxCollector,
    compute_range,
    new_collector,
)
from tfquant.options import CalibrationOptions, QuantizationOptions, resolve_options

M = CalibrationOptions.CalibrationMethod
HISTOGRAM_METHODS = [M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, M.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE,
                     M.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY, M.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC]


def resolved_calibration(method: int, **params) -> CalibrationOptions:
    """Calibration options with TF's defaults filled in, as tfquant uses them."""
    options = QuantizationOptions(calibration_options=CalibrationOptions(
        calibration_method=method, calibration_parameters=params))
    return resolve_options(options).calibration_options


def collect(method: int, batches, **params):
    collector = new_collector(resolved_calibration(method, **params))
    for batch in batches:
        collector.update(batch)
    return collector


def tensorflow_statistics(batches, method: int, num_bins: int, path: str):
    """What TF's CustomAggregator + CalibrationStatisticsSaver kernels collect from `batches`."""
    graph = tf.Graph()
    attr = tf.compat.v1.AttrValue
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32)
        aggregator = graph.create_op(
            "CustomAggregator", [x], [tf.float32, tf.float32, tf.float32, tf.int64],
            attrs={"id": attr(s=b"p"), "calibration_method": attr(i=method), "num_bins": attr(i=num_bins)})
        saver = graph.create_op(
            "CalibrationStatisticsSaver", aggregator.outputs[1:], [],
            attrs={"Tin": attr(list=attr.ListValue(type=[tf.float32.as_datatype_enum, tf.float32.as_datatype_enum,
                                                         tf.int64.as_datatype_enum])),
                   "ids": attr(list=attr.ListValue(s=[b"p"])),
                   "calibration_methods": attr(list=attr.ListValue(i=[method])),
                   "output_file_path": attr(s=path.encode())})
    with tf.compat.v1.Session(graph=graph) as session:
        for batch in batches:
            session.run(saver, {x: batch})
    # The saver writes its file when the kernel is destroyed, with the graph.
    del session, graph, saver, aggregator
    gc.collect()
    with open(path, "rb") as f:
        return calibration_statistics_pb2.CalibrationStatisticsMap.FromString(f.read()).statistics["p"]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


SCENARIOS = {
    # Later batches wider than the first: the histogram grows on both sides.
    "growing": lambda rng: [rng.normal(i, i + 1, size=(4, 250)).astype(np.float32) for i in range(5)],
    # Later batches narrower: their bins are finer than the histogram's and add up into it.
    "shrinking": lambda rng: [(rng.normal(size=(10, 10, 50)) / (i + 1) - 0.3 * i).astype(np.float32)
                              for i in range(5)],
    "relu_like": lambda rng: [np.maximum(rng.normal(size=(2, 7, 7, 3)), 0).astype(np.float32) * s
                              for s in (1.0, 5.0, 0.2, 3.0)],
    # Values on bin edges; the first batch's max is clamped into its last bin.
    "edges": lambda rng: [np.array([0, 4, 1, 2], np.float32), np.array([-3, 8.4], np.float32),
                          np.arange(-8, 8, 0.25, dtype=np.float32) + np.float32(0.01)],
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("method", [M.CALIBRATION_METHOD_MIN_MAX, M.CALIBRATION_METHOD_AVERAGE_MIN_MAX,
                                    M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE])
def test_statistics_equal_tensorflow_kernels(scenario, method, tmp_path):
    batches = SCENARIOS[scenario](_rng())
    expected = tensorflow_statistics(batches, method, 512, str(tmp_path / "stats.pb"))
    got = collect(method, batches).statistics()
    if method != M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE:
        assert got == expected
        return
    want, have = expected.histogram_statistics, got.histogram_statistics
    assert (have.bin_width, have.lower_bound) == (want.bin_width, want.lower_bound)
    np.testing.assert_allclose(have.hist_freq, want.hist_freq, rtol=1e-6)
    assert sum(have.hist_freq) == pytest.approx(sum(b.size for b in batches))


def test_top_bin_count_that_tensorflow_drops_is_kept(tmp_path):
    # Each later batch is coarser than the first and its max (8.5, 7.75) lies on one of its
    # bin edges: TF then grows the histogram by one fine bin only and loses 3/4 of that count.
    batches = [np.array([0, 4, 1, 2], np.float32), np.array([-3, 8.5], np.float32),
               np.arange(-8, 8, 0.25, dtype=np.float32)]
    method = M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE
    want = tensorflow_statistics(batches, method, 512, str(tmp_path / "stats.pb")).histogram_statistics
    have = collect(method, batches).statistics().histogram_statistics
    assert (have.bin_width, have.lower_bound) == (want.bin_width, want.lower_bound) == (2 ** -7, -8.0)
    assert sum(want.hist_freq) == 68.5
    assert sum(have.hist_freq) == 70
    extra = np.array(have.hist_freq) - np.pad(want.hist_freq, (0, len(have.hist_freq) - len(want.hist_freq)))
    bins_of = {value: int((value - have.lower_bound) / have.bin_width) for value in (7.75, 8.5)}
    # The lost 3/4 of each value's count belongs to the three fine bins after the one TF kept.
    for first in bins_of.values():
        np.testing.assert_allclose(extra[first + 1:first + 4], 0.25)
    extra[[i for first in bins_of.values() for i in range(first + 1, first + 4)]] = 0
    assert not extra.any()


def test_min_max_by_hand():
    batches = [_rng(1).normal(size=(3, 5, 7)), _rng(2).uniform(-9, 2, size=100), np.float32(12.5)]
    collector = collect(M.CALIBRATION_METHOD_MIN_MAX, batches)
    low = min(np.float32(b).min() for b in batches)
    assert compute_range(collector.statistics(), resolved_calibration(M.CALIBRATION_METHOD_MIN_MAX)) == (
        pytest.approx(float(low)), 12.5)


def test_average_min_max_by_hand():
    batches = [_rng(i).normal(i, 1, size=(8, 16)).astype(np.float32) for i in range(6)]
    collector = collect(M.CALIBRATION_METHOD_AVERAGE_MIN_MAX, batches)
    stats = collector.statistics().average_min_max_statistics
    assert stats.num_samples == 6
    assert stats.min_sum == pytest.approx(sum(float(b.min()) for b in batches), rel=1e-6)
    assert stats.max_sum == pytest.approx(sum(float(b.max()) for b in batches), rel=1e-6)
    low, high = compute_range(collector.statistics(), resolved_calibration(M.CALIBRATION_METHOD_AVERAGE_MIN_MAX))
    assert low == pytest.approx(np.mean([b.min() for b in batches]), rel=1e-5)
    assert high == pytest.approx(np.mean([b.max() for b in batches]), rel=1e-5)


@pytest.mark.parametrize("percentiles", [(1.0, 99.0), (0.1, 99.9), (25.0, 75.0)])
def test_percentile_range_matches_numpy(percentiles):
    values = _rng(4).normal(0.2, 1.5, size=1_000_000).astype(np.float32)
    low_pct, high_pct = percentiles
    options = resolved_calibration(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE,
                                   min_percentile=low_pct, max_percentile=high_pct)
    collector = new_collector(options)
    collector.update(values)
    stats = collector.statistics()
    low, high = compute_range(stats, options)
    expected_low, expected_high = np.percentile(values, [low_pct, high_pct])
    width = stats.histogram_statistics.bin_width
    assert abs(low - expected_low) <= width
    assert abs(high - expected_high) <= width


def _mixed_data() -> np.ndarray:
    rng = _rng(3)
    data = np.concatenate([rng.normal(0.5, 1.0, 40000), rng.exponential(1.0, 10000)]).astype(np.float32)
    rng.shuffle(data)
    return data


@pytest.mark.parametrize("method", HISTOGRAM_METHODS)
def test_histogram_ranges_one_batch_vs_many(method):
    data = _mixed_data()
    # A tiny first batch fixes a finer bin width than the single batch gets.
    cuts = np.cumsum(np.r_[10, _rng(5).integers(5, 3000, 40)])
    params = {"num_bins": 64} if method == M.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE else {}
    options = resolved_calibration(method, **params)
    one, many = collect(method, [data], **params), collect(method, np.split(data, cuts[cuts < data.size]), **params)
    one_stats, many_stats = one.statistics(), many.statistics()
    assert many_stats.histogram_statistics.bin_width < one_stats.histogram_statistics.bin_width
    one_range, many_range = compute_range(one_stats, options), compute_range(many_stats, options)
    span = float(data.max() - data.min())
    tolerance = (one_stats.histogram_statistics.bin_width if method == M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE
                 else 0.02 * span)
    assert many_range == pytest.approx(one_range, abs=tolerance)
    assert -4 < one_range[0] < -1 and 5 < one_range[1] < 11


def test_histogram_method_ranges_differ_as_designed():
    """MSE methods clip the long right tail that min/max keeps; the percentile keeps nearly all."""
    data = _mixed_data()
    ranges = {m: compute_range(collect(m, [data]).statistics(), resolved_calibration(m))
              for m in (M.CALIBRATION_METHOD_MIN_MAX, M.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY)}
    assert ranges[M.CALIBRATION_METHOD_MIN_MAX] == (pytest.approx(float(data.min())), pytest.approx(float(data.max())))
    assert ranges[M.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY][1] < float(data.max()) - 0.5


def _split_streams():
    rng = _rng(6)
    # Every batch spans [-4, 4], so every batch has the same bins and merging is exact.
    def batch(n):
        return np.concatenate([[-4.0, 4.0], rng.normal(size=n).clip(-4, 4)]).astype(np.float32)
    return [batch(300) for _ in range(4)], [batch(500) for _ in range(3)]


def _merged_and_whole(kind, first, second):
    """(first's collector merged with second's, one collector fed both streams, second's alone)."""
    whole, merged, second_alone = kind(), kind(), kind()
    for batch in first + second:
        whole.update(batch)
    for batch in first:
        merged.update(batch)
    for batch in second:
        second_alone.update(batch)
    merged.merge(second_alone)
    return merged, whole, second_alone


@pytest.mark.parametrize("kind", [MinMaxCollector, AverageMinMaxCollector, HistogramCollector])
def test_merge_equals_one_stream(kind):
    first, second = _split_streams()
    merged, whole, _ = _merged_and_whole(kind, first, second)
    assert merged.statistics() == whole.statistics()


def test_merge_of_finer_bins_equals_one_stream():
    # Merged bins no coarser than ours add up exactly as the batches themselves would.
    rng = _rng(9)
    first = [rng.uniform(-8, 8, 400).astype(np.float32)]
    second = [rng.normal(0, s, 300).astype(np.float32) for s in (0.5, 2.0, 0.1)]
    merged, whole, second_alone = _merged_and_whole(HistogramCollector, first, second)
    assert second_alone.statistics().histogram_statistics.bin_width < merged.statistics().histogram_statistics.bin_width
    assert merged.statistics() == whole.statistics()


def test_merge_of_different_grids_keeps_counts_and_ranges():
    data = _mixed_data()
    options = resolved_calibration(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, min_percentile=1, max_percentile=99)
    a, b, whole = new_collector(options), new_collector(options), new_collector(options)
    a.update(data[:100])
    b.update(data[100:])
    whole.update(data[:100])
    whole.update(data[100:])
    a.merge(b)
    merged = a.statistics()
    assert sum(merged.histogram_statistics.hist_freq) == pytest.approx(data.size)
    assert compute_range(merged, options) == pytest.approx(compute_range(whole.statistics(), options),
                                                           abs=merged.histogram_statistics.bin_width)


def test_merge_refuses_another_kind():
    with pytest.raises(TypeError, match="cannot merge a MinMaxCollector into a HistogramCollector"):
        HistogramCollector().merge(MinMaxCollector())


def test_equal_valued_batches_are_counted():
    # TF's kernels abort on a batch whose values are all equal; these are binned instead.
    ramp = np.linspace(-1, 3, 101, dtype=np.float32)
    constant_first = collect(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, [np.zeros(50, np.float32), ramp])
    constant_last = collect(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, [ramp, np.zeros(50, np.float32)])
    assert constant_first.statistics() == constant_last.statistics()
    hist = constant_first.statistics().histogram_statistics
    zero_bin = int(np.floor((0 - hist.lower_bound) / hist.bin_width))
    assert hist.hist_freq[zero_bin] >= 50
    assert sum(hist.hist_freq) == 151


def test_only_equal_valued_batches():
    options = resolved_calibration(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE)
    collector = collect(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, [np.full(7, 2.5, np.float32)] * 3)
    stats = collector.statistics()
    assert sum(stats.histogram_statistics.hist_freq) == 21
    low, high = compute_range(stats, options)
    assert low == pytest.approx(2.5, abs=stats.histogram_statistics.bin_width)
    assert high == pytest.approx(2.5, abs=stats.histogram_statistics.bin_width)
    # statistics() leaves the collector as it was: a later batch with a range sets the bins.
    collector.update(np.linspace(0, 8, 1000, dtype=np.float32))
    assert collector.statistics().histogram_statistics.bin_width == 2.0 ** -6


def test_histogram_width_doubles_instead_of_growing_without_bound():
    # A nearly constant first batch fixes a tiny width; TF would need ~2**31 bins for the second.
    values = _rng(7).normal(size=20000).astype(np.float32)
    options = resolved_calibration(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, min_percentile=5, max_percentile=95)
    collector = collect(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, [np.float32([1.0, 1.0 + 1e-6]), values])
    stats = collector.statistics()
    assert MAX_HISTOGRAM_BINS // 2 < len(stats.histogram_statistics.hist_freq) <= MAX_HISTOGRAM_BINS
    assert sum(stats.histogram_statistics.hist_freq) == pytest.approx(20002)
    # The second batch's own bins (512 over its range) bound the resolution.
    batch_bin_width = 2.0 ** float(np.ceil(np.log2((values.max() - values.min()) / 512)))
    expected = np.percentile(values, [5, 95])
    assert compute_range(stats, options) == pytest.approx(tuple(expected), abs=batch_bin_width)


def test_coarsened_histogram_sums_tensorflow_bins(tmp_path):
    # A first batch of range ~1 and a second of range ~100: TF keeps ~51000 bins of the
    # first batch's width; ours are coarser but hold the sums of TF's bins exactly.
    rng = _rng(8)
    batches = [rng.uniform(0, 1, 500).astype(np.float32), rng.normal(0, 20, 3000).astype(np.float32)]
    method = M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE
    want = tensorflow_statistics(batches, method, 512, str(tmp_path / "stats.pb")).histogram_statistics
    have = collect(method, batches).statistics().histogram_statistics
    assert len(want.hist_freq) > MAX_HISTOGRAM_BINS >= len(have.hist_freq)
    starts = want.lower_bound + np.arange(len(want.hist_freq)) * want.bin_width
    summed = np.bincount(np.floor((starts - have.lower_bound) / have.bin_width).astype(int), weights=want.hist_freq)
    np.testing.assert_allclose(summed, np.pad(have.hist_freq, (0, len(summed) - len(have.hist_freq))), atol=1e-9)


@pytest.mark.parametrize("kind", [MinMaxCollector, AverageMinMaxCollector, HistogramCollector])
def test_update_takes_any_float_shape(kind):
    collector = kind()
    collector.update(np.float64(-2.0))
    collector.update(np.ones((2, 3, 4, 5), np.float16))
    collector.update(np.zeros((0, 3), np.float32))
    collector.update(np.arange(6, dtype=np.float64).reshape(3, 2, 1))
    stats = collector.statistics()
    assert stats is not None
    if kind is AverageMinMaxCollector:
        assert stats.average_min_max_statistics.num_samples == 3
    if kind is HistogramCollector:
        assert sum(stats.histogram_statistics.hist_freq) == 1 + 120 + 6


@pytest.mark.parametrize("kind", [MinMaxCollector, AverageMinMaxCollector, HistogramCollector])
def test_update_refuses_bad_values(kind):
    with pytest.raises(TypeError, match="must be floating point, got int32"):
        kind().update(np.arange(4, dtype=np.int32))
    with pytest.raises(ValueError, match="NaN or infinity"):
        kind().update(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="NaN or infinity"):
        kind().update(np.array([1.0, -np.inf], np.float32))
    assert kind().statistics() is None


def test_new_collector_per_method():
    assert isinstance(new_collector(CalibrationOptions(calibration_method=M.CALIBRATION_METHOD_MIN_MAX)),
                      MinMaxCollector)
    assert isinstance(new_collector(CalibrationOptions(calibration_method=M.CALIBRATION_METHOD_AVERAGE_MIN_MAX)),
                      AverageMinMaxCollector)
    for method in HISTOGRAM_METHODS:
        assert isinstance(new_collector(CalibrationOptions(calibration_method=method)), HistogramCollector)
    # Unset num_bins means TF's 512 bins per batch: a range of 512 gets bins of width 1.
    collector = new_collector(CalibrationOptions(calibration_method=M.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC))
    collector.update(np.array([0.0, 512.0], np.float32))
    assert collector.statistics().histogram_statistics.bin_width == 1.0
    with pytest.raises(ValueError, match="CALIBRATION_METHOD_UNSPECIFIED has no statistics collector"):
        new_collector(CalibrationOptions())


def test_compute_range_needs_matching_statistics():
    stats = collect(M.CALIBRATION_METHOD_MIN_MAX, [np.ones(3, np.float32)]).statistics()
    with pytest.raises(ValueError, match="CALIBRATION_METHOD_HISTOGRAM_PERCENTILE needs histogram_statistics"):
        compute_range(stats, resolved_calibration(M.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE))
    with pytest.raises(ValueError, match="no calibration statistics: the calibration point saw no values"):
        compute_range(MinMaxCollector().statistics(), resolved_calibration(M.CALIBRATION_METHOD_MIN_MAX))


def test_histogram_binned_in_the_graph_equals_numpy_binning():
    # Calibration bins each batch inside TensorFlow (tfquant.calibrate) rather than copying the
    # activations out; the running histogram must be the one `update` builds, bin for bin.
    import tensorflow as tf
    from tfquant.calibrate import _binned
    rng = _rng(21)
    for _ in range(10):
        numpy_side, graph_side = HistogramCollector(), HistogramCollector()
        for _ in range(4):
            values = (rng.standard_t(3, (int(rng.integers(1, 5)), 17, 3)) * 10 ** rng.uniform(-3, 2)
                      + rng.uniform(-1, 1)).astype(np.float32)
            numpy_side.update(values)
            binned = {k: v.numpy() for k, v in _binned(tf.constant(values), graph_side.num_bins).items()}
            low, high, width, lower = binned[""].tolist()
            graph_side.update_binned(low, high, width, lower, binned["_counts"], int(binned["_size"]))
        assert graph_side.statistics() == numpy_side.statistics()


# ----------------------------------------------------------------------------------------------
# TensorFlow's errors on a sample, as calibration raises them.

def _batch(*rows: int):
    """One batch of float samples with `rows` rows each, sample i all i (joined: they share the batch dimension)."""
    from tfquant.dataset import batches
    samples = [{"x": np.full((n, 3), i, np.float32)} for i, n in enumerate(rows)]
    (batch,) = batches(samples, {"x": (np.dtype(np.float32), (None, 3))}, "s", batch_size=sum(rows))
    return batch


def _refusing(error: type, refused) -> object:
    """A stand-in for the instrumented function that raises `error`, framed as TensorFlow frames it,
    on the inputs `refused(x)` picks."""
    def concrete(x):
        if refused(x):
            raise error(None, None, "Graph execution error:\n\nDetected at node Foo defined at (most recent call "
                                    "last):\n  File \"model.py\", line 1, in f\n\nno good\n\t [[{{node Foo}}]]")
        return {}
    return concrete


def test_the_first_sample_refused_alone_is_named():
    from tfquant.calibrate import InvalidSampleError, _run_batch
    batch = _batch(1, 2, 2)
    concrete = _refusing(tf.errors.InvalidArgumentError, lambda x: bool(np.any(x.numpy() == 1)))
    with pytest.raises(InvalidSampleError, match=r"^representative dataset sample 1 for signature 's' "
                                                 r"\(inputs x: float32 \(2, 3\)\) fails in TensorFlow: no good$"):
        _run_batch(concrete, batch, ["x"], "s")


def test_a_batch_refused_only_as_a_whole_is_named_as_a_whole():
    from tfquant.calibrate import InvalidSampleError, _run_batch
    concrete = _refusing(tf.errors.InvalidArgumentError, lambda x: x.shape[0] > 1)
    with pytest.raises(InvalidSampleError, match=r"^representative dataset samples 0 to 2 \(joined in one batch\) "
                                                 r"for signature 's' \(inputs x: float32 \(3, 3\)\) fails"):
        _run_batch(concrete, _batch(1, 1, 1), ["x"], "s")


def test_errors_not_about_the_sample_keep_tensorflows_class():
    from tfquant.calibrate import _run_batch
    concrete = _refusing(tf.errors.ResourceExhaustedError, lambda x: True)
    with pytest.raises(tf.errors.ResourceExhaustedError) as error:
        _run_batch(concrete, _batch(4), ["x"], "s")
    assert not isinstance(error.value, ValueError)
    assert str(error.value).endswith("fails in TensorFlow: no good")
