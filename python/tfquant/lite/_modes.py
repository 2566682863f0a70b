"""A TensorFlow converter's settings, checked, and the quantization they ask for.

`read_settings` reads the attributes of a `tf.lite.TFLiteConverter` (or the TF1 one) and refuses
values TensorFlow would silently take for something else (`optimizations=["DEFAULT"]` converts a
float model there). `check_settings` raises what TensorFlow raises before converting, and
`resolve` turns the settings into a `LiteQuantization` the way TensorFlow's `QuantizationMode`
picks its mode, raising TensorFlow's errors with its messages; it needs to know whether the
model has fake-quant ops, as TensorFlow's does.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import tensorflow as tf
from tensorflow.lite.python.convert import OpsSet
from tensorflow.lite.python.lite import Optimize, RepresentativeDataset

from tfquant.lite._convert import LiteQuantization

__all__ = ["Settings", "read_settings", "check_settings", "resolve"]

_QUANTIZING = frozenset({Optimize.DEFAULT, Optimize.OPTIMIZE_FOR_SIZE, Optimize.OPTIMIZE_FOR_LATENCY})
_INT16X8 = OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
_FLOAT_OPS = frozenset({OpsSet.TFLITE_BUILTINS, OpsSet.SELECT_TF_OPS})
# The TF1 converter's legacy quantized types: inputs from quantized_input_stats, ranges from fake-quant ops.
_LEGACY_TYPES = (tf.int8, tf.uint8)
_QUANTIZED_RANGE = {tf.int8: (-128, 127), tf.uint8: (0, 255)}


@dataclass(frozen=True)
class Settings:
    """What a converter's attributes ask for, as checked values."""
    optimizations: frozenset[Optimize]
    supported_ops: frozenset[OpsSet]
    supported_types: frozenset[tf.DType]
    input_gen: Any  # the representative dataset's generator function, or None
    inference_input_type: tf.DType | None  # None: the TF1 converter's default (inference_type's)
    inference_output_type: tf.DType | None
    per_channel: bool
    v1: bool
    # The TF1 converter's own attributes (float32 and empty for the TF2 one).
    inference_type: tf.DType = tf.float32
    quantized_input_stats: Mapping[str, tuple[float, float]] | None = None
    default_ranges_stats: tuple[float, float] | None = None
    input_arrays: tuple[str, ...] = ()

    @property
    def quantizing(self) -> bool:
        """Whether an optimization that quantizes is on (DEFAULT or its deprecated aliases)."""
        return bool(self.optimizations & _QUANTIZING)

    @property
    def effective_ops(self) -> frozenset[OpsSet]:
        # TensorFlow replaces supported_ops by {TFLITE_BUILTINS_INT8} when supported_types is {tf.int8}.
        return frozenset({OpsSet.TFLITE_BUILTINS_INT8}) if self.supported_types == {tf.int8} else self.supported_ops

    @property
    def int8_target(self) -> bool:
        return OpsSet.TFLITE_BUILTINS_INT8 in self.effective_ops

    @property
    def int16x8_target(self) -> bool:
        return _INT16X8 in self.effective_ops

    @property
    def allow_float(self) -> bool:
        return bool(self.effective_ops & _FLOAT_OPS)

    @property
    def smallest_type(self) -> tf.DType:
        return min(self.supported_types, key=lambda t: t.size) if self.supported_types else tf.int8

    @property
    def post_training_integer(self) -> bool:
        """TensorFlow's is_post_training_integer_quantization: calibrated int8 or 16x8, either kind."""
        if not (self.quantizing and self.input_gen is not None):
            return False
        if self.int16x8_target:
            return True
        return self.int8_target if not self.allow_float else self.smallest_type == tf.int8

    @property
    def legacy(self) -> bool:
        """The TF1 converter's quantized inference types without post-training quantization: ranges
        from fake-quant ops, inputs' from quantized_input_stats."""
        return self.v1 and (self.inference_type in _LEGACY_TYPES or self.inference_input_type in _LEGACY_TYPES) \
            and not self.post_training_integer


def read_settings(converter: Any, v1: bool) -> Settings:
    """The settings of a TensorFlow converter, type-checked (TypeError, ValueError naming the attribute)."""
    stats = converter.quantized_input_stats if v1 else None
    return Settings(
        optimizations=_enum_set(converter.optimizations, Optimize, "optimizations"),
        supported_ops=_enum_set(converter.target_spec.supported_ops, OpsSet, "target_spec.supported_ops"),
        supported_types=frozenset(_dtype(t, "target_spec.supported_types") for t in
                                  _collection(converter.target_spec.supported_types, "target_spec.supported_types")),
        input_gen=_input_gen(converter.representative_dataset),
        inference_input_type=_dtype(converter.inference_input_type, "inference_input_type", allow_none=v1),
        inference_output_type=_dtype(converter.inference_output_type, "inference_output_type", allow_none=v1),
        # A private TensorFlow flag that guides tell users to set; it means the same here.
        per_channel=not getattr(converter, "_experimental_disable_per_channel", False),
        v1=v1,
        inference_type=_dtype(converter.inference_type, "inference_type") if v1 else tf.float32,
        quantized_input_stats=stats,
        default_ranges_stats=converter.default_ranges_stats if v1 else None,
        input_arrays=tuple(converter.get_input_arrays()) if v1 and stats else (),
    )


def check_settings(settings: Settings) -> None:
    """TensorFlow's checks that need no model, and what tfquant does not do, before converting anything."""
    s = settings
    if s.supported_ops == {OpsSet.TFLITE_BUILTINS_INT8} and s.supported_types not in (set(), {tf.int8}):
        raise ValueError("As full integer quantization has been enabled by setting "
                         "`target_spec.supported_ops`={tf.lite.OpsSet.TFLITE_BUILTINS_INT8}, thus "
                         "`target_spec.supported_types` should be left uninitizalized or set to {tf.int8}.")
    if s.v1 and s.inference_type not in (tf.float32, *_LEGACY_TYPES):
        raise ValueError(f"inference_type must be tf.float32, tf.int8 or tf.uint8, got {_name(s.inference_type)}")
    if s.quantized_input_stats:
        missing = [name for name in s.input_arrays if name not in s.quantized_input_stats]
        if missing:
            raise ValueError(f"Quantization input stats are not available for input tensors '{','.join(missing)}'.")
    if s.legacy and not s.quantized_input_stats:
        raise ValueError("The `quantized_input_stats` flag must be defined when either `inference_type` flag or "
                         "`inference_input_type` flag is set to tf.int8 or tf.uint8. Currently, "
                         f"`inference_type={_name(s.inference_type)}` and "
                         f"`inference_input_type={_name(s.inference_input_type)}`.")
    if s.legacy and s.default_ranges_stats is not None:
        raise ValueError("default_ranges_stats (one made-up range for every tensor without one) is not supported: "
                         "calibrate the ranges instead with optimizations=[tf.lite.Optimize.DEFAULT] and a "
                         "representative_dataset")
    if not s.quantizing:
        return
    if Optimize.EXPERIMENTAL_SPARSITY in s.optimizations:
        raise ValueError("Optimize.EXPERIMENTAL_SPARSITY with quantization is not supported; "
                         "use it alone (TensorFlow's converter sparsifies the float model) or drop it")
    if tf.bfloat16 in s.supported_types and s.smallest_type.size == 2:
        raise ValueError("bfloat16 quantization (target_spec.supported_types=[tf.bfloat16]) is not supported")
    if OpsSet.EXPERIMENTAL_STABLEHLO_OPS in s.supported_ops:
        raise ValueError("OpsSet.EXPERIMENTAL_STABLEHLO_OPS models cannot be quantized")


def resolve(settings: Settings, fake_quant: Callable[[], bool]) -> LiteQuantization | None:
    """The quantization TensorFlow's converter does with settings that quantize (`quantizing` or
    `legacy`), or None where it converts a float model all the same (supported_types=[tf.int16]).

    `fake_quant()`: whether the model was trained with fake-quant ops (they give the ranges, and
    full integer quantization then needs no dataset); called only when the answer matters, since it
    converts the model. Raises TensorFlow's ValueErrors.
    """
    s = settings
    if s.legacy:
        return _legacy(s, fake_quant())
    # TensorFlow asks for one for int8 only: without one, it quietly quantizes a 16x8 request as dynamic range.
    if (s.int8_target or s.int16x8_target) and s.input_gen is None and not fake_quant():
        raise ValueError("For full integer quantization, a `representative_dataset` must be specified.")
    if s.post_training_integer or fake_quant():
        return _integer(s)
    _check_io_types(s, ())
    if s.input_gen is None and s.smallest_type == tf.int8:
        return LiteQuantization(method="dynamic_range", per_channel=s.per_channel)
    if tf.float16 in s.supported_types and s.smallest_type.size == 2:
        return LiteQuantization(method="float16", per_channel=s.per_channel)
    return None


def _integer(s: Settings) -> LiteQuantization:
    """Full integer quantization: calibrated or from fake-quant ops, int8 or 16x8, with or without
    float fallback."""
    bits = 16 if s.int16x8_target else 8
    _check_io_types(s, (tf.int16,) if bits == 16 else (tf.int8, tf.uint8, tf.int16))
    input_type = s.inference_input_type or tf.float32
    output_type = s.inference_output_type or tf.float32
    if bits == 8:  # TensorFlow's checks its model's IO types only once it has quantized it
        for attribute, dtype in (("inference_input_type", input_type), ("inference_output_type", output_type)):
            if dtype == tf.int16:
                raise ValueError(f"Unsupported `{attribute}` value. Expected to be in ('tf.uint8', 'tf.int8'), "
                                 "instead got tf.int16.")
    return LiteQuantization(method="static", activation_bits=bits, integer_only=not s.allow_float,
                            input_type=input_type.name, output_type=output_type.name, per_channel=s.per_channel)


def _legacy(s: Settings, fake_quant: bool) -> LiteQuantization:
    """The TF1 converter's quantized inference: ranges from fake-quant ops, the inputs' from
    quantized_input_stats {name: (mean, std_dev)}, real = (quantized - mean) / std_dev."""
    if not fake_quant:
        # TensorFlow quantizes the inputs alone then and computes the rest in float, or fails.
        raise ValueError(f"inference_type={_name(s.inference_type)} without optimizations takes its ranges from the "
                         "model's fake-quant ops (quantization-aware training), and this model has none: set "
                         "optimizations=[tf.lite.Optimize.DEFAULT] and a representative_dataset to calibrate it")
    _check_io_types(s, _LEGACY_TYPES)
    input_type = s.inference_input_type or s.inference_type
    output_type = s.inference_output_type or s.inference_type
    # The stats are in the quantized input's units (legacy means one of the two types is quantized).
    low, high = _QUANTIZED_RANGE[input_type if input_type in _LEGACY_TYPES else s.inference_type]
    ranges = {}
    for name in s.input_arrays:
        mean, std_dev = s.quantized_input_stats[name]
        ranges[name] = ((low - mean) / std_dev, (high - mean) / std_dev)
    return LiteQuantization(method="static", input_type=input_type.name, output_type=output_type.name,
                            input_ranges=ranges, per_channel=s.per_channel)


def _check_io_types(s: Settings, integer_types: Sequence[tf.DType]) -> None:
    """TensorFlow's check of inference_input_type/inference_output_type (a TF1 converter's None is float)."""
    allowed = (tf.float32, *integer_types)
    if all((t or tf.float32) in allowed for t in (s.inference_input_type, s.inference_output_type)):
        return
    if not integer_types:
        raise ValueError("The inference_input_type and inference_output_type must be tf.float32.")
    raise ValueError("The inference_input_type and inference_output_type must be in "
                     f"{['tf.' + t.name for t in allowed]}.")


def _collection(value: Any, attribute: str) -> list:
    if isinstance(value, (str, bytes, Enum)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{attribute} must be a set or list, got {type(value).__name__}")
    return list(value)


def _enum_set(value: Any, enum: type[Enum], attribute: str) -> frozenset:
    """A set of enum values; TensorFlow would take a string or another enum's value as no setting."""
    items = _collection(value, attribute)
    for item in items:
        if not isinstance(item, enum):
            raise ValueError(f"{attribute} must hold tf.lite.{enum.__name__} values, got {item!r}")
    if not items and enum is OpsSet:
        raise ValueError(f"{attribute} is empty; TensorFlow's default is {{tf.lite.OpsSet.TFLITE_BUILTINS}}")
    return frozenset(items)


def _dtype(value: Any, attribute: str, allow_none: bool = False) -> tf.DType | None:
    """A dtype from anything tf.as_dtype takes (tf.int8, np.int8, "int8")."""
    if value is None and allow_none:
        return None
    try:
        return tf.as_dtype(value)
    except TypeError:
        raise ValueError(f"{attribute} must be a TensorFlow dtype such as tf.int8, got {value!r}") from None


def _input_gen(dataset: Any) -> Any:
    """The generator function of a representative_dataset attribute (a function or a RepresentativeDataset)."""
    gen = dataset.input_gen if isinstance(dataset, RepresentativeDataset) else dataset
    if gen is not None and not callable(gen):
        raise TypeError("representative_dataset must be a generator function (called with no arguments, it "
                        f"returns the samples), got {type(gen).__name__}")
    return gen


def _name(dtype: tf.DType | None) -> str:
    """A dtype as TensorFlow's messages spell it: tf.uint8, or None."""
    return "None" if dtype is None else f"tf.{dtype.name}"
