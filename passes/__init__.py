"""tfquant's passes, one module per pass; importing this package registers them all.

Modules import TensorFlow only inside the functions that need it, so that `tfquant-opt`
starts fast for passes that do not.
"""
from tfquant.passes import prepare_lifting  # noqa: F401
