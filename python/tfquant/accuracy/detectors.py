"""The detectors of the usual causes of quantization error, shared by the SavedModel and TFLite
paths: each takes what a path measured on the held-out samples and returns a `Finding`, or None
when the cause is not there.

* outliers: an activation whose range a few values set; fewer than OUTLIER_SHARE of its values
  lie beyond 1/OUTLIER_TAIL of the range's peak magnitude, so the rest get 5 of 8 bits or fewer;
* range mismatch: an add or concat joining tensors whose magnitudes differ MISMATCH_RATIO times or
  more (a detection head's boxes and scores): one scale cannot serve both;
* preprocessing: a log, root, division or power reading values below one int8 step of the range
  of what it reads: quantizing the units before it rounds them to 0.
"""
from __future__ import annotations

from collections.abc import Sequence

from tfquant.accuracy.layers import OUTLIERS, PREPROCESSING, RANGE_MISMATCH, Finding

OUTLIER_TAIL = 8
OUTLIER_SHARE = 1e-3
MISMATCH_RATIO = 100.0
INT8_STEPS = 255


def outliers(where: str, value_range: tuple[float, float], beyond: float, values: float,
             units: Sequence[str]) -> Finding | None:
    """`beyond` of `values` held-out values lie beyond 1/OUTLIER_TAIL of `value_range`'s peak magnitude."""
    if not values or max(abs(value_range[0]), abs(value_range[1])) == 0:
        return None
    share = beyond / values
    if share >= OUTLIER_SHARE:
        return None
    return Finding(OUTLIERS, where,
                   f"{share:.3%} of held-out values use more than 1/{OUTLIER_TAIL} of the range "
                   f"[{value_range[0]:.4g}, {value_range[1]:.4g}]: a few outliers set it, and the rest get "
                   "5 of 8 bits or fewer", tuple(units))


def range_mismatch(where: str, op_type: str, peaks: Sequence[float], units: Sequence[str]) -> Finding | None:
    """A join whose inputs' largest held-out magnitudes are `peaks`."""
    if len(peaks) < 2 or min(peaks) <= 0:
        return None
    ratio = max(peaks) / min(peaks)
    if ratio < MISMATCH_RATIO:
        return None
    return Finding(RANGE_MISMATCH, where,
                   f"{op_type} joins tensors whose magnitudes differ {ratio:.0f}x (peaks "
                   f"{', '.join(f'{peak:.3g}' for peak in peaks)}): one scale cannot serve both", tuple(units))


def preprocessing(where: str, op_type: str, smallest: float, value_range: tuple[float, float],
                  units: Sequence[str]) -> Finding | None:
    """A zero-sensitive op whose input's smallest held-out magnitude is `smallest`, in `value_range`."""
    step = (max(value_range[1], 0.0) - min(value_range[0], 0.0)) / INT8_STEPS
    if step <= 0 or smallest >= step:
        return None
    return Finding(PREPROCESSING, where,
                   f"{op_type} reads values as small as {smallest:.3g}; one int8 step of their range is "
                   f"{step:.3g}, so quantizing the units before it rounds them to 0", tuple(units))
