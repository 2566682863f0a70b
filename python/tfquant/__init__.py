"""tfquant: a quantization compiler for TensorFlow models.

The public API is imported lazily, so that tools which do not need TensorFlow (tfquant-opt on
passes that do not evaluate anything) start without paying for `import tensorflow`.
"""
from __future__ import annotations

import importlib

_PUBLIC = {
    "quantize_saved_model": "tfquant.quantize",
    "QuantizationReport": "tfquant.quantize",
    "QuantizationOptions": "tfquant.options",
    "QuantizationMethod": "tfquant.options",
    "QuantizationComponentSpec": "tfquant.options",
    "UnitWiseQuantizationSpec": "tfquant.options",
    "OpSet": "tfquant.options",
    "CalibrationOptions": "tfquant.options",
    "RepresentativeDatasetFile": "tfquant.options",
    "DebuggerConfig": "tfquant.options",
    "import_saved_model": "tfquant.importer",
    "export_saved_model": "tfquant.exporter",
    "to_concrete_function": "tfquant.exporter",
    "run_pipeline": "tfquant.pipeline",
    "parse_pipeline": "tfquant.pipeline",
}

_SUBMODULES = ("example", "options", "pipeline", "dataset", "calibration")

__all__ = sorted(_PUBLIC) + list(_SUBMODULES)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"tfquant.{name}")
    raise AttributeError(f"module 'tfquant' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
