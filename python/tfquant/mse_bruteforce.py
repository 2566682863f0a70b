"""HISTOGRAM_MSE_BRUTEFORCE as TensorFlow computes it, vectorised over all pairs of bins.

TF's `calibration_algorithm` tries every pair (left, right) of histogram bin mids as the range,
quantizes the mids to 8 bits with it, and keeps the range with the least frequency-weighted
squared error; it makes one Python call per pair, O(bins^2) calls of O(bins) numpy work each
(158 s for MobileNetV2's 100 calibration points). This evaluates the same formula for blocks
of pairs at once, in the same float64 arithmetic and with the same tie-breaking (least error,
then least min, then least max), and returns the same range.
"""
from __future__ import annotations

import numpy as np

# Pairs per block: block x bins float64 temporaries stay around 32 MB.
_ELEMENTS_PER_BLOCK = 1 << 22
_MAX_QUANTIZED = 2 ** 8 - 1


def histogram_mids(lower_bound: float, bin_width: float, num_bins: int) -> np.ndarray:
    """The bins' mid points, computed as TF's histogram algorithms compute them."""
    first_mid = lower_bound + bin_width / 2
    return np.linspace(first_mid, first_mid + (num_bins - 1) * bin_width, num_bins)


def _weighted_errors(mids: np.ndarray, freq: np.ndarray, quant_min: np.ndarray,
                     quant_max: np.ndarray) -> np.ndarray:
    """TF's `_get_weighted_mean_squared_error` for each (quant_min, quant_max) pair."""
    scale = (quant_max - quant_min) / _MAX_QUANTIZED
    zero_point = -quant_min / scale
    # TF limits both only after computing the zero point from the unlimited scale.
    zero_point = np.where(np.abs(zero_point) > 9e9, 9e9, zero_point)
    scale = np.where(np.abs(scale) < 1e-9, 1e-9, scale)
    zero_point = np.round(zero_point)[:, None]
    quantized = np.clip(np.round(mids[None, :] / scale[:, None]) + zero_point, 0, _MAX_QUANTIZED)
    dequantized = scale[:, None] * (quantized - zero_point)
    return np.sum((mids[None, :] - dequantized) ** 2 * freq[None, :], axis=1)


def bruteforce_mse_range(lower_bound: float, bin_width: float, hist_freq: np.ndarray) -> tuple[float, float]:
    """The (min, max) TF's HISTOGRAM_MSE_BRUTEFORCE picks for this histogram."""
    freq = np.asarray(hist_freq, dtype=np.float64)
    mids = histogram_mids(lower_bound, bin_width, len(freq))
    left, right = np.triu_indices(len(freq), k=1)  # itertools.combinations order
    best = (float("inf"), float("inf"), float("inf"))
    block = max(1, _ELEMENTS_PER_BLOCK // max(len(freq), 1))
    for start in range(0, len(left), block):
        quant_min, quant_max = mids[left[start:start + block]], mids[right[start:start + block]]
        errors = _weighted_errors(mids, freq, quant_min, quant_max)
        # Least error, then least min, then least max: Python's tuple order in TF's min().
        order = np.lexsort((quant_max, quant_min, errors))[0]
        best = min(best, (float(errors[order]), float(quant_min[order]), float(quant_max[order])))
    return best[1], best[2]
