"""Calibration statistics, collected as TensorFlow collects them, and the ranges TF derives.

Each collector consumes the values one calibration point takes in one run of the model
(`update`, one call per batch) and produces a `CalibrationStatistics` proto, TensorFlow's
format. The collectors reproduce TF 2.21's C++ (`CustomAggregator` summarising a batch,
`CalibrationStatisticsCollector{MinMax,AverageMinMax,Histogram}` aggregating the batches) in
vectorised numpy, float32 where TF computes in float32. `compute_range` hands the statistics
to TF's own `get_min_max_value`, so the calibration methods are TF's, not re-derived; only
HISTOGRAM_MSE_BRUTEFORCE runs a vectorised copy of TF's search (`tfquant.mse_bruteforce`),
checked against TF's in the tests, because TF's takes minutes.

Collectors merge (`a.merge(b)`), so calibration can be split across workers.
"""
from __future__ import annotations

import threading
from collections import Counter

import numpy as np
from tensorflow.compiler.mlir.quantization.tensorflow.calibrator import calibration_algorithm
from tensorflow.compiler.mlir.quantization.tensorflow.calibrator.calibration_statistics_pb2 import (
    CalibrationStatistics,
)

from tfquant.mse_bruteforce import bruteforce_mse_range
from tfquant.options import DEFAULT_NUM_BINS, HISTOGRAM_METHODS, CalibrationOptions

__all__ = ["CalibrationStatistics", "MinMaxCollector", "AverageMinMaxCollector", "HistogramCollector",
           "Collector", "new_collector", "compute_range", "MAX_HISTOGRAM_BINS"]

# TF's histogram keeps the bin width of the first batch and grows to cover later ones; a
# first batch with a tiny range would make it grow without bound (TF itself aborts there).
# Past this many bins, adjacent bins are merged (the width doubles) instead.
MAX_HISTOGRAM_BINS = 1 << 14

_CalibrationMethod = CalibrationOptions.CalibrationMethod
_F32 = np.float32


def _as_float32(values: np.ndarray) -> np.ndarray:
    """The values as a flat float32 array: TF's calibration ops take float32 tensors."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"calibration values must be floating point, got {array.dtype}")
    return array.astype(_F32, copy=False).ravel()


def _min_max(flat: np.ndarray) -> tuple[np.float32, np.float32]:
    """The batch's min and max; refuses NaN and infinity, which would poison every range."""
    low, high = flat.min(), flat.max()
    # min/max propagate NaN, so two finite results mean every value is finite.
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("calibration values contain NaN or infinity")
    return low, high


def _check_same_kind(collector: object, other: object) -> None:
    if type(other) is not type(collector):
        raise TypeError(f"cannot merge a {type(other).__name__} into a {type(collector).__name__}")


class MinMaxCollector:
    """Global min and max of every value seen (TF's CalibrationStatisticsCollectorMinMax)."""

    def __init__(self) -> None:
        self._min: np.float32 | None = None
        self._max: np.float32 | None = None

    def update(self, values: np.ndarray) -> None:
        """Takes one batch of values, any shape."""
        flat = _as_float32(values)
        if flat.size:
            self._add(*_min_max(flat))

    def merge(self, other: MinMaxCollector) -> None:
        """Adds what `other` collected, as if its batches had been fed here."""
        _check_same_kind(self, other)
        if other._min is not None:
            self._add(other._min, other._max)

    def statistics(self) -> CalibrationStatistics | None:
        """TF's statistics proto, or None if no value was seen (as TF reports nothing)."""
        if self._min is None:
            return None
        stats = CalibrationStatistics()
        stats.min_max_statistics.global_min = float(self._min)
        stats.min_max_statistics.global_max = float(self._max)
        return stats

    def _add(self, low: np.float32, high: np.float32) -> None:
        self._min = low if self._min is None else min(self._min, low)
        self._max = high if self._max is None else max(self._max, high)


class AverageMinMaxCollector:
    """Sums of per-batch min and max and the number of batches (TF's ...AverageMinMax).

    The sums are float32, as TF keeps them.
    """

    def __init__(self) -> None:
        self._min_sum = _F32(0)
        self._max_sum = _F32(0)
        self._num_batches = 0

    def update(self, values: np.ndarray) -> None:
        """Takes one batch of values, any shape; an empty batch is not counted."""
        flat = _as_float32(values)
        if flat.size:
            low, high = _min_max(flat)
            self._min_sum += low
            self._max_sum += high
            self._num_batches += 1

    def merge(self, other: AverageMinMaxCollector) -> None:
        """Adds what `other` collected, as if its batches had been fed here."""
        _check_same_kind(self, other)
        self._min_sum += other._min_sum
        self._max_sum += other._max_sum
        self._num_batches += other._num_batches

    def statistics(self) -> CalibrationStatistics | None:
        """TF's statistics proto, or None if no batch was seen."""
        if not self._num_batches:
            return None
        stats = CalibrationStatistics()
        stats.average_min_max_statistics.min_sum = float(self._min_sum)
        stats.average_min_max_statistics.max_sum = float(self._max_sum)
        stats.average_min_max_statistics.num_samples = self._num_batches
        return stats


_scratch = threading.local()


def _scratch_arrays(size: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's float32 and int32 work arrays of `size` elements, reused across batches.

    Fresh multi-megabyte temporaries for every batch cost page faults that make a
    histogram update about three times slower.
    """
    floats = getattr(_scratch, "floats", None)
    if floats is None or floats.size < size:
        _scratch.floats = np.empty(size, _F32)
        _scratch.ints = np.empty(size, np.int32)
    return _scratch.floats[:size], _scratch.ints[:size]


def _bin_width(low: np.float32, high: np.float32, num_bins: int) -> np.float32:
    """TF's CalculateBinWidth: the range over num_bins, rounded up to a power of two."""
    return _F32(2.0 ** np.ceil(np.log2((high - low) / _F32(num_bins))))


def _bin_floor(value: np.float32, origin: np.float32, width: np.float32) -> int:
    """TF's CalculateBinIndex: which bin of width `width` starting at `origin` holds `value`."""
    return int(np.floor((value - origin) / width))


class HistogramCollector:
    """A histogram of every value seen (TF's CalibrationStatisticsCollectorHistogram).

    As in TF, each batch is first binned on its own: `num_bins` bins whose width is the
    batch's range over `num_bins` rounded up to a power of two, starting at a multiple of
    that width. The batch's histogram is then added to the running one, whose width is the
    first batch's: since both widths are powers of two and the bins aligned, a coarser bin
    is spread evenly over the finer bins it covers and finer bins add up into coarser ones.
    The running histogram grows to the left and right as values arrive.

    Where TF aborts, this does something sensible: a batch whose values are all equal adds
    its count to the bin holding that value (before any histogram exists, such values wait
    for the first batch with a range), and a histogram that would pass MAX_HISTOGRAM_BINS
    bins has its width doubled. Where TF loses part of a count (see `_add_histogram`),
    this keeps it. Otherwise the statistics are TF's, bin for bin.
    """

    def __init__(self, num_bins: int = DEFAULT_NUM_BINS) -> None:
        if num_bins < 1:
            raise ValueError(f"a histogram needs at least one bin, got num_bins={num_bins}")
        self._num_bins = num_bins
        self._width = _F32(0)
        self._lower = _F32(0)
        self._freq: np.ndarray | None = None
        self._pending: Counter[np.float32] = Counter()

    def update(self, values: np.ndarray) -> None:
        """Takes one batch of values, any shape."""
        flat = _as_float32(values)
        if not flat.size:
            return
        low, high = _min_max(flat)
        if low == high:
            self._add_constant(low, flat.size)
            return
        width = _bin_width(low, high, self._num_bins)
        lower = _F32(np.floor(low / width) * width)
        scaled, index = _scratch_arrays(flat.size)
        np.subtract(flat, lower, out=scaled)
        scaled /= width
        # Every value is >= lower, so truncation is TF's floor; the top clamps into the last bin.
        index[...] = scaled
        np.minimum(index, self._num_bins - 1, out=index)
        self._add_histogram(width, lower, np.bincount(index, minlength=self._num_bins).astype(np.float64))

    @property
    def num_bins(self) -> int:
        return self._num_bins

    def update_binned(self, low: float, high: float, width: float, lower: float, counts: np.ndarray,
                      size: int) -> None:
        """Takes one batch binned elsewhere as `update` bins it (in TensorFlow, by `tfquant.calibrate`):
        its min, max and size, and `num_bins` counts of bins of `width` from `lower`."""
        low, high = _F32(low), _F32(high)
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("calibration values contain NaN or infinity")
        if size == 0:
            return
        if low == high:
            self._add_constant(low, size)
            return
        self._add_histogram(_F32(width), _F32(lower), np.asarray(counts, np.float64))

    def merge(self, other: HistogramCollector) -> None:
        """Adds what `other` collected, as if it were one more batch binned at its width.

        That is exactly feeding `other`'s batches here whenever its bins are no coarser
        than ours (as when both started from batches of the same width); otherwise each of
        its bins is spread evenly over ours, as TF spreads a batch of coarser bins.
        """
        _check_same_kind(self, other)
        if other._freq is not None:
            self._add_histogram(other._width, other._lower, other._freq)
        for value, count in other._pending.items():
            self._add_constant(value, count)

    def statistics(self) -> CalibrationStatistics | None:
        """TF's statistics proto (trailing empty bins dropped, as TF does), or None if empty."""
        if self._freq is None:
            if not self._pending:
                return None
            alone = HistogramCollector(self._num_bins)
            alone._pending = Counter(self._pending)
            alone._bin_pending_alone()
            return alone.statistics()
        size = int(np.flatnonzero(self._freq)[-1]) + 1
        stats = CalibrationStatistics()
        hist = stats.histogram_statistics
        hist.bin_width = float(self._width)
        hist.lower_bound = float(self._lower)
        hist.hist_freq.extend(self._freq[:size].tolist())
        return stats

    def _add_constant(self, value: np.float32, count: int) -> None:
        """Counts `count` copies of `value`: one bin of the running width."""
        if self._freq is None:
            self._pending[value] += count
            return
        lower = _F32(np.floor(value / self._width) * self._width)
        self._add_histogram(self._width, lower, np.array([float(count)]))

    def _bin_pending_alone(self) -> None:
        """Makes a histogram from equal-valued batches only, as if their values were one batch.

        A single distinct value has no range; it gets the width a range of 1 would.
        """
        values = np.array(sorted(self._pending), dtype=_F32)
        counts = np.array([self._pending[v] for v in values], dtype=np.float64)
        low, high = values[0], values[-1]
        width = _bin_width(low, high if high > low else low + _F32(1), self._num_bins)
        lower = _F32(np.floor(low / width) * width)
        index = np.minimum(((values - lower) / width).astype(np.intp), self._num_bins - 1)
        self._pending.clear()
        self._add_histogram(width, lower, np.bincount(index, weights=counts, minlength=self._num_bins))

    def _add_histogram(self, width: np.float32, lower: np.float32, freq: np.ndarray) -> None:
        """TF's Collect: adds `freq`, counts in bins of `width` from `lower`.

        TF grows the histogram up to the bin holding the batch's max rounded up to the
        batch's bin width; when the max is on a bin edge and the batch's bins are coarser,
        that drops part of the top bin's count. Growing up to the end of the last
        non-empty bin keeps every count and is otherwise the same.
        """
        first = self._freq is None
        if first:
            self._width, self._lower, self._freq = width, lower, np.zeros(0)
        end = _F32(lower + _F32(np.flatnonzero(freq)[-1] + 1) * width)
        self._coarsen_to_fit(lower, end)
        # The start of the last of our bins that the incoming bins reach.
        low_index, high_index = self._expand(lower, max(_F32(end - width), _F32(end - self._width)))
        if width <= self._width:
            # Each incoming bin lies inside one of ours.
            starts = lower + np.arange(len(freq), dtype=_F32) * width
            target = np.floor((starts - self._lower) / self._width).astype(np.intp)
            keep = (target >= low_index) & (target <= high_index) & (freq != 0)
            self._freq += np.bincount(target[keep], weights=freq[keep], minlength=len(self._freq))
        else:
            # Each of our bins inside an incoming bin takes its share of that bin.
            targets = np.arange(low_index, high_index + 1)
            starts = self._lower + targets.astype(_F32) * self._width
            source = np.floor((starts - lower) / width).astype(np.intp)
            keep = (starts >= lower) & (source < len(freq))
            self._freq[targets[keep]] += freq[source[keep]] * float(self._width / width)
        if first:
            pending, self._pending = self._pending, Counter()
            for value, count in pending.items():
                self._add_constant(value, count)

    def _expand(self, lower: np.float32, upper: np.float32) -> tuple[int, int]:
        """TF's ExpandHistogramIfNeeded: grows the bins to hold `lower` and `upper`; their indexes."""
        low_index = _bin_floor(lower, self._lower, self._width)
        if low_index < 0:
            self._freq = np.concatenate([np.zeros(-low_index), self._freq])
            self._lower = _F32(self._lower - self._width * _F32(-low_index))
            low_index = 0
        high_index = _bin_floor(upper, self._lower, self._width)
        if high_index >= len(self._freq):
            self._freq = np.concatenate([self._freq, np.zeros(high_index + 1 - len(self._freq))])
        return low_index, high_index

    def _coarsen_to_fit(self, lower: np.float32, end: np.float32) -> None:
        """Doubles the bin width until covering [lower, end) takes at most MAX_HISTOGRAM_BINS bins."""
        def bins_needed() -> int:
            start = min(self._lower, _F32(np.floor(lower / self._width) * self._width))
            stop = max(self._lower + _F32(len(self._freq)) * self._width, end)
            return int(np.ceil((stop - start) / self._width))

        while bins_needed() > MAX_HISTOGRAM_BINS:
            doubled = self._width * _F32(2)
            # Keep the lower bound a multiple of the width, so bins stay aligned.
            if np.floor(self._lower / doubled) * doubled != self._lower:
                self._freq = np.concatenate([[0.0], self._freq])
                self._lower = _F32(self._lower - self._width)
            if len(self._freq) % 2:
                self._freq = np.concatenate([self._freq, [0.0]])
            self._freq = self._freq.reshape(-1, 2).sum(axis=1)
            self._width = doubled


Collector = MinMaxCollector | AverageMinMaxCollector | HistogramCollector


def needs_values(calibration_options: CalibrationOptions) -> bool:
    """Whether the method needs every value (a histogram), not only each update's min and max."""
    return calibration_options.calibration_method in HISTOGRAM_METHODS


def averages_per_sample(calibration_options: CalibrationOptions) -> bool:
    """Whether the method averages per-update ranges: updates must then be single samples, as in TF."""
    return calibration_options.calibration_method == _CalibrationMethod.CALIBRATION_METHOD_AVERAGE_MIN_MAX


def new_collector(calibration_options: CalibrationOptions) -> Collector:
    """The collector that gathers what `calibration_options`' method needs.

    Histogram methods use `calibration_parameters.num_bins` bins per batch, TF's 512 if unset.
    """
    method = calibration_options.calibration_method
    if method == _CalibrationMethod.CALIBRATION_METHOD_MIN_MAX:
        return MinMaxCollector()
    if method == _CalibrationMethod.CALIBRATION_METHOD_AVERAGE_MIN_MAX:
        return AverageMinMaxCollector()
    if method in HISTOGRAM_METHODS:
        return HistogramCollector(calibration_options.calibration_parameters.num_bins or DEFAULT_NUM_BINS)
    raise ValueError(f"calibration method {_method_name(method)} has no statistics collector; "
                     "resolve the options first (tfquant.options.resolve_options)")


_STATISTICS_FIELD = {
    _CalibrationMethod.CALIBRATION_METHOD_MIN_MAX: "min_max_statistics",
    _CalibrationMethod.CALIBRATION_METHOD_AVERAGE_MIN_MAX: "average_min_max_statistics",
    **{method: "histogram_statistics" for method in HISTOGRAM_METHODS},
}


def compute_range(statistics: CalibrationStatistics | None, calibration_options: CalibrationOptions) -> tuple[float, float]:
    """The (min, max) TensorFlow's calibration method picks from these statistics."""
    method = calibration_options.calibration_method
    field = _STATISTICS_FIELD.get(method)
    if field is None:
        raise ValueError(f"calibration method {_method_name(method)} cannot compute a range")
    if statistics is None:
        raise ValueError("no calibration statistics: the calibration point saw no values")
    if not statistics.HasField(field):
        raise ValueError(f"calibration method {_method_name(method)} needs {field} in the calibration statistics")
    if method == _CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE:
        # TF's own code makes one Python call per pair of bins: minutes on a real model.
        hist = statistics.histogram_statistics
        return bruteforce_mse_range(hist.lower_bound, hist.bin_width, np.array(hist.hist_freq))
    low, high = calibration_algorithm.get_min_max_value(statistics, calibration_options)
    return float(low), float(high)


def _method_name(method: int) -> str:
    return _CalibrationMethod.Name(method) if method in _CalibrationMethod.values() else str(method)
