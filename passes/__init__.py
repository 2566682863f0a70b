"""tfquant's passes, one module per pass; importing this package registers them all.

Modules import TensorFlow only inside the functions that need it, so that `tfquant-opt`
starts fast for passes that do not.
"""
from tfquant.passes import prepare_lifting  # noqa: F401
from tfquant.passes import specialize_function_arguments  # noqa: F401
from tfquant.passes import lift_quantizable_spots_as_functions  # noqa: F401
from tfquant.passes import quantize_composite_functions  # noqa: F401
from tfquant.passes import lower_to_xla  # noqa: F401
from tfquant.passes import lower_to_tf  # noqa: F401
from tfquant.passes import optimize  # noqa: F401
from tfquant.passes import inline  # noqa: F401
from tfquant.passes import insert_calibration_stats  # noqa: F401
from tfquant.passes import apply_calibration_stats  # noqa: F401
from tfquant.passes import convert_fake_quant_to_qdq  # noqa: F401
from tfquant.passes import assign_quantization_spec  # noqa: F401
from tfquant.passes import quantize_weights  # noqa: F401
from tfquant.passes import equalize_cross_layer  # noqa: F401
from tfquant.passes import correct_bias  # noqa: F401
from tfquant.passes import lower_to_uniform_quantized  # noqa: F401
from tfquant.passes import lower_to_onednn  # noqa: F401
from tfquant.passes import tfl_prepare_quantize  # noqa: F401
from tfquant.passes import tfl_quantize  # noqa: F401
from tfquant.passes import tfl_post_quantize  # noqa: F401
from tfquant.passes import tfl_modify_io  # noqa: F401
from tfquant.passes import tfl_convert_qdq  # noqa: F401
