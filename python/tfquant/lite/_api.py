"""`TFLiteConverter`: TensorFlow's converter API, with tfquant quantizing the float model.

Each converter wraps the TensorFlow converter its factory makes (so construction, attributes,
their defaults and TensorFlow's own checks are TensorFlow's, and so is every float conversion but
that of a Keras 3 model given as `trackable_obj`, which TensorFlow gets wrong: see
`_keras3_variables_tracked`).
`convert()` reads the quantization settings, has TensorFlow's converter convert the float model
with those settings set aside, and hands the flatbuffer, the mode the settings ask for and the
representative dataset to `tfquant.lite._convert.quantize_flatbuffer`.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any, Self

import tensorflow as tf
from tensorflow.lite.python import lite as tf_lite
from tensorflow.lite.python.convert import OpsSet
from tensorflow.lite.python.convert_phase import ConverterError as _TFConverterError
from tensorflow.lite.python.lite import TargetSpec

from tfquant.lite._convert import LiteQuantization, LiteReport, quantize_flatbuffer
from tfquant.lite._inputs import Samples, has_fake_quant, model_inputs
from tfquant.lite._modes import Settings, check_settings, read_settings, resolve
from tfquant.mlir import CompileError

__all__ = ["ConverterError", "TFLiteConverter", "TFLiteConverterV1"]

# The attributes of ours; every other attribute is the wrapped TensorFlow converter's.
_OWN_ATTRIBUTES = ("_tf", "quantization", "quantization_report", "target_sqnr")


class ConverterError(_TFConverterError, RuntimeError):
    """A model that cannot be converted as asked (an op integer-only mode cannot quantize, a
    TensorFlow conversion failure).

    A TensorFlow `ConverterError` (tensorflow.lite.python.convert_phase; TensorFlow does not export
    it) and a RuntimeError, which TensorFlow's 16x8 quantizer raises for an op it cannot quantize,
    so code written for TensorFlow's converter catches it.
    """


class _Converter:
    """A TensorFlow converter whose `convert()` quantizes with tfquant.

    Attributes are read from and set on the wrapped TensorFlow converter, so they are TensorFlow's,
    defaults included. After `convert()`, `quantization` is the `LiteQuantization` the settings
    asked for and `quantization_report` the `LiteReport` of the run (both None when nothing was
    quantized: no optimizations, or settings TensorFlow converts as float); its `layers` is the
    per-layer error report, measured when first read.

    `target_sqnr` (ours, dB, None by default) asks full-integer quantization for that SQNR on the
    samples held out of calibration: the fewest units fall back to 16-bit activations or float
    (16-bit only, with integer-only ops; a target that cannot be met so is a ConverterError).
    """
    _tf: Any
    quantization: LiteQuantization | None
    quantization_report: LiteReport | None
    target_sqnr: float | None

    def _attach(self, converter: Any) -> None:
        object.__setattr__(self, "_tf", converter)
        object.__setattr__(self, "quantization", None)
        object.__setattr__(self, "quantization_report", None)
        object.__setattr__(self, "target_sqnr", None)

    @classmethod
    def _wrapping(cls, converter: Any) -> Self:
        wrapper = cls.__new__(cls)
        wrapper._attach(converter)
        return wrapper

    def __getattr__(self, name: str) -> Any:
        if name == "_tf":  # not attached yet (copy and pickle look attributes up on a bare instance)
            raise AttributeError(name)
        return getattr(self._tf, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            setattr(self._tf, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self._tf)))

    def convert(self) -> bytes:
        """The TFLite flatbuffer, quantized as the settings ask (TensorFlow's float model without
        optimizations). Raises ValueError for bad settings and datasets, ConverterError for a model
        that cannot be converted as asked."""
        self.quantization = self.quantization_report = None
        settings = read_settings(self._tf, v1=isinstance(self._tf, tf_lite.TFLiteConverterBaseV1))
        check_settings(settings)
        if not (settings.quantizing or settings.legacy):
            return self._tf_convert(set_aside_quantization=False)
        # Converted when first needed: settings that are wrong whatever the model fail before it.
        float_model = functools.cache(lambda: self._tf_convert(set_aside_quantization=True))
        quantization = resolve(settings, fake_quant=lambda: has_fake_quant(float_model()))
        if quantization is None:  # settings TensorFlow converts as float (supported_types=[tf.int16])
            return self._tf_convert(set_aside_quantization=False)
        samples = _samples(settings, quantization, float_model())
        try:
            model, report = quantize_flatbuffer(float_model(), quantization, samples, target_sqnr=self.target_sqnr)
        except CompileError as error:
            raise ConverterError(str(error)) from error
        self.quantization, self.quantization_report = quantization, report
        return model

    def _tf_convert(self, set_aside_quantization: bool) -> bytes:
        """The wrapped converter's flatbuffer, with the quantization settings set aside (the float
        model) or as they are; its ConverterError becomes ours."""
        settings = _float_settings(self._tf) if set_aside_quantization else contextlib.nullcontext()
        try:
            with settings, _keras3_variables_tracked(self._tf):
                return self._tf.convert()
        except _TFConverterError as error:
            converter_error = ConverterError(str(error))
            converter_error.errors = error.errors
            raise converter_error from error


def _samples(settings: Settings, quantization: LiteQuantization, float_model: bytes) -> Samples | None:
    """The dataset the quantization calibrates on: TensorFlow reads it for calibrated modes only
    (the TF1 converter's legacy mode takes its ranges from fake-quant ops)."""
    if settings.input_gen is None or quantization.method != "static" or settings.legacy:
        return None
    return Samples(settings.input_gen, model_inputs(float_model))


@contextlib.contextmanager
def _float_settings(converter: Any) -> Iterator[None]:
    """Sets the converter up for a float conversion: no optimizations, no dataset, float inference
    types, builtin ops (and SELECT_TF_OPS if listed), the target spec's other settings kept."""
    spec = converter.target_spec
    float_spec = TargetSpec(
        supported_ops={OpsSet.TFLITE_BUILTINS} | ({OpsSet.SELECT_TF_OPS} & set(spec.supported_ops)),
        experimental_select_user_tf_ops=spec.experimental_select_user_tf_ops,
        experimental_supported_backends=spec.experimental_supported_backends)
    float_spec._experimental_custom_op_registerers = spec._experimental_custom_op_registerers
    float_values = {"optimizations": set(), "representative_dataset": None, "target_spec": float_spec}
    if isinstance(converter, tf_lite.TFLiteConverterBaseV1):
        float_values.update(inference_type=tf.float32, inference_input_type=None, inference_output_type=None,
                            quantized_input_stats={}, default_ranges_stats=None)
    else:
        float_values.update(inference_input_type=tf.float32, inference_output_type=tf.float32)
    saved = {name: getattr(converter, name) for name in float_values}
    for name, value in float_values.items():
        setattr(converter, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(converter, name, value)


@contextlib.contextmanager
def _keras3_variables_tracked(converter: Any) -> Iterator[None]:
    """Has a `from_concrete_functions` converter given a Keras 3 model as `trackable_obj` save a
    tf.Module tracking the model's TensorFlow variables instead.

    TensorFlow's converter saves the trackable object and its functions as a SavedModel and converts
    that; a Keras 3 model saved so leaves its variables uninitialized in the flatbuffer (the outputs
    are whatever memory held, and TensorFlow's calibrator fails reading them). Saved from a tf.Module, they become
    constants, as any tf.Module's do.
    """
    trackable = getattr(converter, "_trackable_obj", None)
    keras = sys.modules.get("keras")  # a Keras model means Keras is imported
    if not (isinstance(converter, tf_lite.TFLiteFrozenGraphConverterV2) and keras is not None
            and keras.__version__.startswith("3") and isinstance(trackable, keras.layers.Layer)):
        yield
        return
    tracker = tf.Module()
    tracker.keras_variables = [variable.value for variable in trackable.variables]
    converter._trackable_obj = tracker
    try:
        yield
    finally:
        converter._trackable_obj = trackable


class TFLiteConverter(_Converter):
    """`tf.lite.TFLiteConverter` (TensorFlow 2), quantizing with tfquant.

    Make one with `from_saved_model`, `from_keras_model` or `from_concrete_functions`; set
    `optimizations`, `representative_dataset`, `target_spec` and the inference types as for
    TensorFlow's, then `convert()`.
    """

    def __init__(self, funcs, trackable_obj=None) -> None:
        self._attach(tf.lite.TFLiteConverter(funcs, trackable_obj))

    @classmethod
    def from_saved_model(cls, saved_model_dir, signature_keys=None, tags=None) -> TFLiteConverter:
        """A converter of a SavedModel's signatures (by default all of them)."""
        return cls._wrapping(tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys, tags))

    @classmethod
    def from_keras_model(cls, model) -> TFLiteConverter:
        """A converter of a Keras model."""
        return cls._wrapping(tf.lite.TFLiteConverter.from_keras_model(model))

    @classmethod
    def from_concrete_functions(cls, funcs, trackable_obj=None) -> TFLiteConverter:
        """A converter of ConcreteFunctions; `trackable_obj` holds their variables."""
        return cls._wrapping(tf.lite.TFLiteConverter.from_concrete_functions(funcs, trackable_obj))


class TFLiteConverterV1(_Converter):
    """`tf.compat.v1.lite.TFLiteConverter`, quantizing with tfquant.

    Besides the post-training modes, its legacy quantized inference: `inference_type=tf.uint8`
    (or tf.int8) with `quantized_input_stats={input: (mean, std_dev)}` on a model trained with
    fake-quant ops.
    """

    def __init__(self, graph_def, input_tensors, output_tensors, input_arrays_with_shape=None,
                 output_arrays=None, experimental_debug_info_func=None) -> None:
        self._attach(tf.compat.v1.lite.TFLiteConverter(graph_def, input_tensors, output_tensors,
                                                       input_arrays_with_shape, output_arrays,
                                                       experimental_debug_info_func))

    @classmethod
    def from_saved_model(cls, saved_model_dir, input_arrays=None, input_shapes=None, output_arrays=None,
                         tag_set=None, signature_key=None) -> TFLiteConverterV1:
        """A converter of one SavedModel signature (serving_default by default)."""
        return cls._wrapping(tf.compat.v1.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, input_arrays, input_shapes, output_arrays, tag_set, signature_key))

    @classmethod
    def from_frozen_graph(cls, graph_def_file, input_arrays, output_arrays, input_shapes=None) -> TFLiteConverterV1:
        """A converter of a frozen GraphDef file, from its input and output tensor names."""
        return cls._wrapping(tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            graph_def_file, input_arrays, output_arrays, input_shapes))

    @classmethod
    def from_session(cls, sess, input_tensors, output_tensors) -> TFLiteConverterV1:
        """A converter of a TF1 session's graph, between the given tensors."""
        return cls._wrapping(tf.compat.v1.lite.TFLiteConverter.from_session(sess, input_tensors, output_tensors))
