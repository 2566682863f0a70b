"""What the float flatbuffer says about its inputs, and representative datasets put in its terms.

TensorFlow's converter takes a representative dataset as a generator function whose samples are
a list of arrays, a dict from input name to array, or a `(signature_key, dict)` tuple. The
quantization core takes `(signature_key, {input name: array})` pairs; `Samples` turns one into
the other lazily, one sample at a time, each time it is iterated (calibration streams them).

A list sample is in the order of the subgraph's inputs, as TensorFlow's calibrator feeds it
(`FeedTensor` without a signature sets `interpreter.inputs()` in order): that is the order of the
function's arguments, not the SignatureDef's, which lists inputs by name (a `(zed, alpha)`
function has the SignatureDef inputs `alpha, zed` and the subgraph inputs `zed, alpha`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from tfquant.lite._litert import NO_SIGNATURE

__all__ = ["ModelInputs", "model_inputs", "has_fake_quant", "Samples", "Sample"]

Sample = tuple[str, dict[str, np.ndarray]]

# TensorFlow's calibrator's messages (tensorflow/lite/python/optimize/calibrator.py).
_TUPLE_MESSAGE = ("You need to provide either a dictionary with input names and values in the second argument "
                  "in the tuple")
_KIND_MESSAGE = ("You need to provide either a dictionary with input names and values, a tuple with signature key "
                 "and a dictionary with input names and values, or an array with input values in the order of input "
                 "tensors of the graph in the representative_dataset function. Unsupported value from dataset: {}.")


@dataclass(frozen=True)
class ModelInputs:
    """Each signature's input names, in the order of its subgraph's inputs (a list sample's order)."""
    signatures: dict[str, tuple[str, ...]]

    def only_signature(self, sample_kind: str) -> str:
        """The key a sample without one belongs to; a ValueError when the model has several."""
        if len(self.signatures) == 1:
            return next(iter(self.signatures))
        keys = ", ".join(self.signatures)
        if sample_kind == "dict":  # TensorFlow's interpreter's message (get_signature_runner(None))
            raise ValueError(f"SignatureDef signature_key is None and model has {len(self.signatures)} Signatures. "
                             "None is only allowed when the model has 1 SignatureDef")
        # TensorFlow feeds a list to the first subgraph, whichever signature that is; ask instead.
        raise ValueError(f"a list sample names no signature and the model has {len(self.signatures)} ({keys}); "
                         "give (signature_key, {input name: value}) tuples")


def model_inputs(flatbuffer: bytes) -> ModelInputs:
    """The signatures of a TFLite flatbuffer and their input names, read without unpacking its weights.

    A model without SignatureDefs (what TensorFlow's TF1 converter and `from_concrete_functions`
    without a trackable object write) has one entry, NO_SIGNATURE, naming the first subgraph's input
    tensors, as the quantization core runs such a model.
    """
    model = schema.Model.GetRootAs(flatbuffer, 0)
    if not model.SignatureDefsLength():
        subgraph = model.Subgraphs(0)
        names = tuple(subgraph.Tensors(subgraph.Inputs(i)).Name().decode() for i in range(subgraph.InputsLength()))
        return ModelInputs({NO_SIGNATURE: names})
    signatures = {}
    for s in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(s)
        by_tensor = {signature.Inputs(i).TensorIndex(): signature.Inputs(i).Name().decode()
                     for i in range(signature.InputsLength())}
        subgraph = model.Subgraphs(signature.SubgraphIndex())
        order = [subgraph.Inputs(i) for i in range(subgraph.InputsLength())]
        signatures[signature.SignatureKey().decode()] = tuple(by_tensor[t] for t in order if t in by_tensor)
    return ModelInputs(signatures)


def has_fake_quant(flatbuffer: bytes) -> bool:
    """Whether TensorFlow's float conversion left fake-quant ops (a quantization-aware trained model).

    TensorFlow asks this of the GraphDef (FakeQuantWithMinMax*, QuantizeAndDequantizeV2/V3); its float
    conversion turns each into a QUANTIZE of a float tensor followed by a DEQUANTIZE, which is what
    is looked for here: a float model has no other reason to quantize a float tensor.
    """
    model = schema.Model.GetRootAs(flatbuffer, 0)
    quantize_codes = {i for i in range(model.OperatorCodesLength())
                      if _builtin_code(model.OperatorCodes(i)) == schema.BuiltinOperator.QUANTIZE}
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        for o in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(o)
            if op.OpcodeIndex() in quantize_codes and op.InputsLength():
                if subgraph.Tensors(op.Inputs(0)).Type() == schema.TensorType.FLOAT32:
                    return True
    return False


def _builtin_code(code: schema.OperatorCode) -> int:
    # Codes past 127 live in BuiltinCode, older ones in DeprecatedBuiltinCode (schema_util's rule).
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


class Samples(Iterable[Sample]):
    """A representative dataset as `(signature key, {input name: array})` pairs, re-read on each pass.

    Each iteration calls the generator function again, as TensorFlow's calibrator does, so the
    quantization core may read the dataset more than once. A bad sample raises ValueError (with
    TensorFlow's message where it has one) when it is reached; the core checks the arrays (names,
    dtypes, shapes) and that there are samples at all.
    """

    def __init__(self, input_gen: Callable[[], Iterable[Any]], inputs: ModelInputs) -> None:
        self._input_gen = input_gen
        self._inputs = inputs

    def __iter__(self) -> Iterator[Sample]:
        return (_normalize(sample, index, self._inputs) for index, sample in enumerate(_iterate(self._input_gen)))


def _iterate(input_gen: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    samples = input_gen()
    try:
        return iter(samples)
    except TypeError:
        raise TypeError("representative_dataset must return an iterable of samples (a generator), "
                        f"returned {type(samples).__name__}") from None


def _normalize(sample: Any, index: int, inputs: ModelInputs) -> Sample:
    """One sample as (signature key, {input name: array}), or a ValueError naming it."""
    where = f" (sample {index} of the representative dataset)"
    if isinstance(sample, tuple):
        if len(sample) != 2 or not isinstance(sample[1], Mapping):
            raise ValueError(_TUPLE_MESSAGE + where)
        key, values = sample
        if key not in inputs.signatures:
            raise ValueError(f'Invalid signature_key provided: "{key}".{where}; the model\'s signatures are '
                             + ", ".join(inputs.signatures))
        return key, _arrays(values)
    if isinstance(sample, Mapping):
        return inputs.only_signature("dict"), _arrays(sample)
    if isinstance(sample, list):
        key = inputs.only_signature("list")
        names = inputs.signatures[key]
        if len(sample) != len(names):
            raise ValueError(f"Invalid input shapes: expected {len(names)} items got {len(sample)} items.{where}")
        return key, {name: np.asarray(value) for name, value in zip(names, sample)}
    raise ValueError(_KIND_MESSAGE.format(_describe(sample)) + where)


def _arrays(values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    # np.asarray reads tf.Tensors (and anything else with __array__) without copying numpy arrays.
    return {name: np.asarray(value) for name, value in values.items()}


def _describe(sample: Any) -> str:
    """A short description of an unsupported sample (TensorFlow prints it whole, arrays included)."""
    shape = getattr(sample, "shape", None)
    return f"{type(sample).__name__} of shape {tuple(shape)}" if shape is not None else type(sample).__name__
