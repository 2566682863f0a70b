"""TFLite output: TensorFlow's `tf.lite.TFLiteConverter` API, with tfquant quantizing.

    from tfquant.lite import TFLiteConverter, Optimize, OpsSet
    converter = TFLiteConverter.from_saved_model("float_model")
    converter.optimizations = [Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset_gen
    tflite_bytes = converter.convert()

`Optimize`, `OpsSet`, `RepresentativeDataset` and `TargetSpec` are TensorFlow's own classes, so
`tf.lite.Optimize.DEFAULT` and the rest work as they are. `compat.v1.TFLiteConverter` (also
`TFLiteConverterV1`) is the TF1 converter, with its legacy quantized inference types.
"""
from tensorflow.lite.python.convert import OpsSet
from tensorflow.lite.python.lite import Optimize, RepresentativeDataset, TargetSpec

from tfquant.lite import compat
from tfquant.lite._api import ConverterError, TFLiteConverter, TFLiteConverterV1
from tfquant.lite._convert import LiteQuantization, LiteReport

__all__ = ["TFLiteConverter", "TFLiteConverterV1", "Optimize", "OpsSet", "RepresentativeDataset", "TargetSpec",
           "ConverterError", "LiteQuantization", "LiteReport", "compat"]
