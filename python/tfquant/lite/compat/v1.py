"""`tf.compat.v1.lite`'s converter, quantizing with tfquant: `TFLiteConverter` is `tfquant.lite.TFLiteConverterV1`."""
from tensorflow.lite.python.convert import OpsSet
from tensorflow.lite.python.lite import Optimize, RepresentativeDataset, TargetSpec

from tfquant.lite._api import TFLiteConverterV1 as TFLiteConverter

__all__ = ["TFLiteConverter", "Optimize", "OpsSet", "RepresentativeDataset", "TargetSpec"]
