"""Accuracy tools: the per-layer error report, detectors, fallback to an accuracy target.

`layers` holds the report as data (shared by the SavedModel and TFLite paths), `fallback` the
format-independent greedy search, `render` the table, plot and model-explorer overlay.
"""
from tfquant.accuracy.layers import FLOAT, INT8, INT16, Finding, LayerError, LayerReport

__all__ = ["Finding", "LayerError", "LayerReport", "INT8", "INT16", "FLOAT"]
