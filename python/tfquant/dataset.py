"""Representative datasets: every form TensorFlow's quantizer accepts, checked and batched.

A representative dataset is an iterable of samples, each a dict from a signature's input
names to arrays, or a dict from signature key to such an iterable; a `tf.data.Dataset` of
dicts works too, and so do TFRecord files that TensorFlow's
`TfRecordRepresentativeDatasetSaver` wrote (named in `QuantizationOptions.representative_datasets`).
Samples are streamed: nothing here holds more than one batch (TensorFlow's TFRecord loader
reads a whole file, though), and a generator is read once.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.compiler.mlir.quantization.tensorflow.python.representative_dataset import (
    TfRecordRepresentativeDatasetLoader,
)

from tfquant.options import RepresentativeDatasetFile

__all__ = ["InputSpecs", "normalize_dataset", "validate_sample", "batches", "load_npz_dataset",
           "load_tfrecord_dataset"]

# {input_name: (dtype, shape)}, None for a dimension (or a whole shape) that is not known.
InputSpecs = Mapping[str, tuple[np.dtype, tuple[int | None, ...] | None]]
Sample = dict[str, np.ndarray]


class _Samples(Iterable[Sample]):
    """A signature's samples, read and checked lazily each time it is iterated.

    A one-shot source (a generator or other iterator) can be iterated only once.
    """

    def __init__(self, open_source: Callable[[], Iterator[Any]], signature_key: str, specs: InputSpecs,
                 one_shot: bool) -> None:
        self._open_source = open_source
        self._signature_key = signature_key
        self._specs = specs
        self._one_shot = one_shot
        self._consumed = False

    def __iter__(self) -> Iterator[Sample]:
        # A second pass over a spent generator would see no samples and calibrate nothing.
        if self._consumed:
            raise ValueError(f"the representative dataset for signature '{self._signature_key}' is an iterator "
                             "and was already read; pass a list or a tf.data.Dataset to read it again")
        self._consumed = self._one_shot
        return (validate_sample(sample, self._specs, index, self._signature_key)
                for index, sample in enumerate(self._open_source()))


def normalize_dataset(representative_dataset: Any, signature_keys: Iterable[str],
                      input_specs: Mapping[str, InputSpecs],
                      options_datasets: Mapping[str, RepresentativeDatasetFile] | None = None,
                      ) -> dict[str, Iterable[Sample]]:
    """One lazy iterable of checked samples (see `validate_sample`) per signature key.

    `representative_dataset` is an iterable of samples (for a model with one signature),
    a dict from signature key to such an iterable, a `tf.data.Dataset` of dicts, or None
    when `options_datasets` (`QuantizationOptions.representative_datasets`) names TFRecord
    files instead. `input_specs` maps each signature key to its inputs' dtypes and shapes.
    Raises ValueError when there is no dataset, two of them, an unknown signature key or
    a signature without data; a bad sample raises when it is read.
    """
    keys = tuple(signature_keys)
    if representative_dataset is not None and options_datasets:
        raise ValueError("a representative dataset was given both as an argument and in "
                         "QuantizationOptions.representative_datasets; give only one")
    if representative_dataset is None and not options_datasets:
        raise ValueError("post-training static range quantization needs a representative dataset: pass one, "
                         "or name TFRecord files in QuantizationOptions.representative_datasets")
    if representative_dataset is None:
        sources = dict(options_datasets)
    elif isinstance(representative_dataset, Mapping):
        sources = dict(representative_dataset)
    elif len(keys) == 1:
        sources = {keys[0]: representative_dataset}
    else:
        raise ValueError(f"the model has several signatures ({', '.join(keys)}): give the representative "
                         "dataset as a dict from signature key to dataset")
    for key in sources:
        if key not in keys:
            raise ValueError(f"representative dataset for unknown signature '{key}'; "
                             f"the signatures are {', '.join(keys)}")
    missing = [key for key in keys if key not in sources]
    if missing:
        raise ValueError(f"no representative dataset for signature {', '.join(repr(k) for k in missing)}")
    return {key: _lazy(source, key, input_specs[key]) for key, source in sources.items()}


def _lazy(source: Any, signature_key: str, specs: InputSpecs) -> _Samples:
    """Wraps one signature's dataset: a TFRecord file, a tf.data.Dataset or an iterable."""
    if isinstance(source, RepresentativeDatasetFile):
        path = source.tfrecord_file_path
        return _Samples(lambda: iter(load_tfrecord_dataset(path)), signature_key, specs, False)
    if isinstance(source, tf.data.Dataset):
        return _Samples(source.as_numpy_iterator, signature_key, specs, False)
    if not isinstance(source, Iterable) or isinstance(source, (str, bytes, Mapping)):
        raise ValueError(f"the representative dataset for signature '{signature_key}' must be an iterable of "
                         f"dicts from input name to array, got {type(source).__name__}")
    return _Samples(lambda: iter(source), signature_key, specs, isinstance(source, Iterator))


def validate_sample(sample: Any, specs: InputSpecs, index: int, signature_key: str) -> Sample:
    """Sample `index` of a signature's dataset as numpy arrays of the signature's dtypes.

    Arrays and tensors must have the kind of dtype the input has (float, int, ...) and are
    cast to it; Python numbers and lists are converted. A sample without the batch
    dimension (one rank short) gets a leading batch axis of 1. Raises ValueError naming
    the sample, the signature and the input.
    """
    where = f"representative dataset sample {index} for signature '{signature_key}'"
    if not isinstance(sample, Mapping):
        raise ValueError(f"{where} is a {type(sample).__name__}, not a dict from input name to array")
    unknown = [name for name in sample if name not in specs]
    if unknown:
        raise ValueError(f"{where}: unknown input '{unknown[0]}'; the signature's inputs are "
                         + ", ".join(f"'{name}'" for name in specs))
    missing = [name for name in specs if name not in sample]
    if missing:
        raise ValueError(f"{where}: input '{missing[0]}' is missing")
    return {name: _check_input(sample[name], *specs[name], f"{where}: input '{name}'") for name in specs}


def _check_input(value: Any, dtype: np.dtype, shape: tuple[int | None, ...] | None, where: str) -> np.ndarray:
    """One input's value checked against its dtype and shape, with a batch axis if it lacked one."""
    dtype = np.dtype(dtype)
    array = _as_array(value, dtype, where)
    given = array.shape
    if shape is not None:
        if array.ndim == len(shape) - 1:
            array = array[np.newaxis]
        if array.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, array.shape)):
            raise ValueError(f"{where} has shape {given} but the signature expects {tuple(shape)}")
    return array


def _as_array(value: Any, dtype: np.dtype, where: str) -> np.ndarray:
    """`value` as an array of `dtype`, refusing a change of kind (float to int, ...)."""
    from_python = isinstance(value, (int, float, bool, list, tuple))
    array = np.asarray(value)
    if dtype.kind == "O":
        # String inputs: numpy holds them as bytes, str or object arrays.
        if array.dtype.kind not in "OSU":
            raise ValueError(f"{where} has dtype {array.dtype} but the signature expects strings")
        return array.astype(object)
    # Python ints are fine where floats are expected; numpy arrays must match in kind.
    compatible = array.dtype.kind == dtype.kind or (
        from_python and dtype.kind == "f" and array.dtype.kind in "iu")
    if not compatible:
        raise ValueError(f"{where} has dtype {array.dtype} but the signature expects {dtype}")
    return array.astype(dtype, copy=False)


def batches(samples: Iterable[Any], specs: InputSpecs, signature_key: str, batch_size: int) -> Iterator[Sample]:
    """Checked samples, consecutive ones joined along axis 0 into batches of up to `batch_size` rows.

    Samples are joined only when every input's first dimension is unknown (a batch
    dimension) and they agree on the other dimensions; a sample of more than `batch_size`
    rows is yielded whole. Otherwise samples are yielded one by one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    joinable = all(shape is not None and len(shape) > 0 and shape[0] is None for _, shape in specs.values())
    pending: list[Sample] = []
    rows = 0
    for index, sample in enumerate(samples):
        checked = validate_sample(sample, specs, index, signature_key)
        if not joinable:
            yield checked
            continue
        sample_rows = _rows(checked)
        if pending and (sample_rows is None or rows + sample_rows > batch_size
                        or _inner_shapes(checked) != _inner_shapes(pending[0])):
            yield _join(pending)
            pending, rows = [], 0
        pending.append(checked)
        rows += sample_rows or 0
        if sample_rows is None or rows >= batch_size:
            yield _join(pending)
            pending, rows = [], 0
    if pending:
        yield _join(pending)


def _rows(sample: Sample) -> int | None:
    """The sample's batch size, or None if its inputs disagree on it (it cannot be joined)."""
    sizes = {array.shape[0] for array in sample.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _inner_shapes(sample: Sample) -> dict[str, tuple[int, ...]]:
    return {name: array.shape[1:] for name, array in sample.items()}


def _join(samples: list[Sample]) -> Sample:
    if len(samples) == 1:
        return samples[0]
    return {name: np.concatenate([sample[name] for sample in samples]) for name in samples[0]}


def load_npz_dataset(path: str | os.PathLike[str]) -> list[Sample]:
    """Samples from a .npz holding one array per input name, samples along the first axis.

    Each sample keeps a leading batch axis of 1.
    """
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    if not arrays:
        raise ValueError(f"{path} holds no arrays")
    counts = {name: (array.shape[0] if array.ndim else None) for name, array in arrays.items()}
    if None in counts.values() or len(set(counts.values())) != 1:
        raise ValueError(f"{path}: every array needs the same number of samples along its first axis, got "
                         + ", ".join(f"{name}: {count}" for name, count in counts.items()))
    return [{name: array[i:i + 1] for name, array in arrays.items()} for i in range(next(iter(counts.values())))]


def load_tfrecord_dataset(path: str | os.PathLike[str]) -> list[Sample]:
    """Samples from a TFRecord file of `RepresentativeDataSample`s, read by TensorFlow's loader.

    TensorFlow's loader reads the whole file at once.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"representative dataset file {path} does not exist")
    dataset_file = RepresentativeDatasetFile(tfrecord_file_path=os.fspath(path))
    return TfRecordRepresentativeDatasetLoader({"": dataset_file}).load()[""]
