"""tfquant: a quantization compiler for TensorFlow models."""
from tfquant.importer import import_saved_model
from tfquant.exporter import export_saved_model, to_concrete_function

__all__ = ["import_saved_model", "export_saved_model", "to_concrete_function"]
