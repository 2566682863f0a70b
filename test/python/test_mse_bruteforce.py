"""The vectorised HISTOGRAM_MSE_BRUTEFORCE picks exactly the range TF's own code picks."""
import numpy as np
import pytest
from tensorflow.compiler.mlir.quantization.tensorflow.calibrator import calibration_algorithm
from tensorflow.compiler.mlir.quantization.tensorflow.calibrator.calibration_statistics_pb2 import (
    CalibrationStatistics,
)

from tfquant.mse_bruteforce import bruteforce_mse_range
from tfquant.options import CalibrationOptions


def _both_ranges(lower: float, width: float, freq: np.ndarray) -> tuple[tuple, tuple]:
    """(ours, TF's) from the same statistics proto (which stores the bounds as float32)."""
    stats = CalibrationStatistics()
    hist = stats.histogram_statistics
    hist.lower_bound, hist.bin_width = lower, width
    hist.hist_freq.extend(freq.tolist())
    options = CalibrationOptions(
        calibration_method=CalibrationOptions.CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE)
    ours = bruteforce_mse_range(hist.lower_bound, hist.bin_width, np.array(hist.hist_freq))
    return ours, tuple(calibration_algorithm.get_min_max_value(stats, options))


@pytest.mark.parametrize("seed", range(6))
def test_same_range_as_tensorflow(seed):
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(8, 90))
    # Heavy-tailed activations: most mass near zero, a few outliers, some empty bins.
    values = np.concatenate([rng.standard_t(3, 4000) * 0.1, rng.uniform(-2, 3, 20)])
    freq, edges = np.histogram(values, bins=bins)
    freq = freq.astype(np.float64)
    lower, width = float(edges[0]), float(edges[1] - edges[0])
    ours, theirs = _both_ranges(lower, width, freq)
    assert ours == theirs


def test_ties_break_like_tensorflow():
    # A uniform histogram has many equal errors only when symmetric; all-zero frequencies
    # make every pair's error 0, so TF's min() falls back to the least (min, max).
    freq = np.zeros(12)
    ours, theirs = _both_ranges(-1.0, 0.25, freq)
    assert ours == theirs
    freq[5] = 3.0
    ours, theirs = _both_ranges(-1.0, 0.25, freq)
    assert ours == theirs

