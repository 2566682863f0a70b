"""`tfquant.lite.compat.v1`: the TF1 converter under the name `tf.compat.v1.lite` gives it."""
from tfquant.lite.compat import v1

__all__ = ["v1"]
