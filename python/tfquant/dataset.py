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
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.compiler.mlir.quantization.tensorflow.python.representative_dataset import (
    TfRecordRepresentativeDatasetLoader,
)

from tfquant.options import RepresentativeDatasetFile

__all__ = ["InputSpecs", "InputNameError", "Batch", "normalize_dataset", "validate_sample", "batches",
           "load_dataset_file", "load_npz_dataset", "load_tfrecord_dataset", "error_summary"]

# {input_name: (dtype, shape)}, None for a dimension (or a whole shape) that is not known.
InputSpecs = Mapping[str, tuple[np.dtype, tuple[int | None, ...] | None]]
Sample = dict[str, np.ndarray]

# What a calibration data file must hold, said by every error about one that does not.
_EXPECTED_FILE = ("expected a .npz holding one array per input name (samples along the first axis) or a "
                 "TFRecord file written by TensorFlow's TfRecordRepresentativeDatasetSaver")
# The first bytes of a zip archive (a .npz is one) and of a .npy array.
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"
# What numpy raises on a file that is not a readable .npz, by the layer that noticed.
_NPZ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)
# Lines TensorFlow frames a kernel's error message with: a header, the traced Python stack
# (frames and code, indented) and the failing nodes (indented); in the line itself, the
# functions it ran in before it and the eager op after it.
_TF_FRAMING = re.compile(r"Graph execution error:|Detected at node |\s|$")
_TF_PLACE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\]( name:.*)?$")


class InputNameError(KeyError, ValueError):
    """A sample whose input names are not the signature's.

    TensorFlow's quantizer raises KeyError for this and tfquant's dataset errors are ValueErrors;
    this is both, so code written for either catches it.
    """

    # KeyError's str() is its message's repr (it expects a key, not a sentence).
    __str__ = ValueError.__str__


@dataclass(frozen=True)
class Batch:
    """Consecutive checked samples of a dataset, run through the model as one."""
    first: int  # the index of its first sample in the dataset
    samples: tuple[Sample, ...]
    inputs: Sample  # the samples joined along axis 0


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

    @property
    def one_shot(self) -> bool:
        """Whether the source can be read only once (a generator or other iterator)."""
        return self._one_shot

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
        raise InputNameError(f"{where}: unknown input '{unknown[0]}'; the signature's inputs are "
                             + ", ".join(f"'{name}'" for name in specs))
    missing = [name for name in specs if name not in sample]
    if missing:
        raise InputNameError(f"{where}: input '{missing[0]}' is missing")
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
    # Its activations would be empty too: no min, no max, nothing to calibrate on.
    if array.size == 0:
        raise ValueError(f"{where} is empty (shape {given}): a sample needs at least one value per input")
    return array


def _as_array(value: Any, dtype: np.dtype, where: str) -> np.ndarray:
    """`value` as an array of `dtype`, refusing a change of kind (float to int, ...) and integers
    that `dtype` cannot hold."""
    from_python = isinstance(value, (int, float, bool, list, tuple))
    array = np.asarray(value)
    if dtype.kind == "O":
        # String inputs: numpy holds them as bytes, str or object arrays.
        if array.dtype.kind not in "OSU":
            raise ValueError(f"{where} has dtype {array.dtype} but the signature expects strings")
        return array.astype(object)
    # Python ints are fine where floats are expected; integers go to any integer type that holds
    # them; otherwise numpy arrays must match in kind.
    integers = array.dtype.kind in "iu" and dtype.kind in "iu"
    compatible = integers or array.dtype.kind == dtype.kind or (
        from_python and dtype.kind == "f" and array.dtype.kind in "iu")
    if not compatible:
        raise ValueError(f"{where} has dtype {array.dtype} but the signature expects {dtype}")
    if integers and array.dtype != dtype:
        _check_fits(array, dtype, where)
    return array.astype(dtype, copy=False)


def _check_fits(array: np.ndarray, dtype: np.dtype, where: str) -> None:
    """Refuses integers outside `dtype`'s range: casting would silently wrap them round."""
    limits = np.iinfo(dtype)
    outside = array[(array < limits.min) | (array > limits.max)]
    if outside.size:
        raise ValueError(f"{where} holds {outside[0]}, outside the range of {dtype} [{limits.min}, {limits.max}]")


def batches(samples: Iterable[Any], specs: InputSpecs, signature_key: str, batch_size: int) -> Iterator[Batch]:
    """Checked samples, consecutive ones joined along axis 0 into batches of up to `batch_size` rows.

    Samples are joined only when every input's first dimension is unknown (a batch
    dimension) and they agree on the other dimensions; a sample of more than `batch_size`
    rows is a batch of its own. Otherwise each sample is a batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    joinable = all(shape is not None and len(shape) > 0 and shape[0] is None for _, shape in specs.values())
    pending: list[Sample] = []
    rows = 0
    for index, sample in enumerate(samples):
        checked = validate_sample(sample, specs, index, signature_key)
        sample_rows = _rows(checked) if joinable else None
        if pending and (sample_rows is None or rows + sample_rows > batch_size
                        or _inner_shapes(checked) != _inner_shapes(pending[0])):
            yield _batch(index - len(pending), pending)
            pending, rows = [], 0
        pending.append(checked)
        rows += sample_rows or 0
        if sample_rows is None or rows >= batch_size:
            yield _batch(index + 1 - len(pending), pending)
            pending, rows = [], 0
    if pending:
        yield _batch(index + 1 - len(pending), pending)


def _batch(first: int, samples: list[Sample]) -> Batch:
    inputs = samples[0] if len(samples) == 1 else {
        name: np.concatenate([sample[name] for sample in samples]) for name in samples[0]}
    return Batch(first, tuple(samples), inputs)


def _rows(sample: Sample) -> int | None:
    """The sample's batch size, or None if its inputs disagree on it (it cannot be joined)."""
    sizes = {array.shape[0] for array in sample.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _inner_shapes(sample: Sample) -> dict[str, tuple[int, ...]]:
    return {name: array.shape[1:] for name, array in sample.items()}


def load_dataset_file(path: str | os.PathLike[str]) -> list[Sample]:
    """Samples from a calibration data file: a .npz (see `load_npz_dataset`), or else a TFRecord
    file (see `load_tfrecord_dataset`); which one is read from the file's first bytes, so that
    a .npy array or a corrupt archive is named as such rather than read as a TFRecord.
    """
    _check_is_file(path)
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic == _NPY_MAGIC:
        raise ValueError(f"calibration data file {path} is a .npy array; {_EXPECTED_FILE}")
    if magic.startswith(_ZIP_MAGIC) or os.fspath(path).endswith(".npz"):
        return load_npz_dataset(path)
    return load_tfrecord_dataset(path)


def load_npz_dataset(path: str | os.PathLike[str]) -> list[Sample]:
    """Samples from a .npz holding one array per input name, samples along the first axis.

    Each sample keeps a leading batch axis of 1.
    """
    _check_is_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except _NPZ_ERRORS as error:
        raise ValueError(f"calibration data file {path} is not a readable .npz ({error_summary(error)}); "
                         f"{_EXPECTED_FILE}") from error
    if not arrays:
        raise ValueError(f"calibration data file {path} holds no arrays; {_EXPECTED_FILE}")
    counts = {name: (array.shape[0] if array.ndim else None) for name, array in arrays.items()}
    if None in counts.values() or len(set(counts.values())) != 1:
        raise ValueError(f"{path}: every array needs the same number of samples along its first axis, got "
                         + ", ".join(f"{name}: {count}" for name, count in counts.items()))
    return [{name: array[i:i + 1] for name, array in arrays.items()} for i in range(next(iter(counts.values())))]


def load_tfrecord_dataset(path: str | os.PathLike[str]) -> list[Sample]:
    """Samples from a TFRecord file of `RepresentativeDataSample`s, read by TensorFlow's loader.

    TensorFlow's loader reads the whole file at once.
    """
    _check_is_file(path)
    dataset_file = RepresentativeDatasetFile(tfrecord_file_path=os.fspath(path))
    try:
        return TfRecordRepresentativeDatasetLoader({"": dataset_file}).load()[""]
    except (tf.errors.OpError, DecodeError) as error:
        raise ValueError(f"calibration data file {path} is not a TFRecord of RepresentativeDataSamples "
                         f"({error_summary(error)}); {_EXPECTED_FILE}") from error


def _check_is_file(path: str | os.PathLike[str]) -> None:
    """FileNotFoundError (IsADirectoryError for a directory) naming `path` unless it is a file."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"calibration data file {path} is a directory; {_EXPECTED_FILE}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"calibration data file {path} does not exist; {_EXPECTED_FILE}")


def error_summary(error: BaseException) -> str:
    """The line of an exception's message that says what went wrong.

    TensorFlow's start with "Graph execution error:" and the traced Python stack, and go on with
    node names; the kernel's own message is the first line that is none of these, without the
    function and op names around it.
    """
    message = getattr(error, "message", None) or str(error)
    lines = [line for line in message.splitlines() if not _TF_FRAMING.match(line)]
    return _TF_PLACE.sub("", lines[0] if lines else message).strip()
