"""Representative datasets: every form TF accepts, checked lazily, batched, and TF's TFRecord files."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfquant.dataset import (
    InputNameError,
    batches,
    error_summary,
    load_dataset_file,
    load_npz_dataset,
    load_tfrecord_dataset,
    normalize_dataset,
    validate_sample,
)
from tfquant.options import RepresentativeDatasetFile

SERVING = "serving_default"
IMAGE_SPECS = {"image": (np.dtype(np.float32), (None, 32, 32, 3)), "ids": (np.dtype(np.int32), (None, 4))}
SPECS = {SERVING: IMAGE_SPECS}


def sample(i: int, rows: int = 1) -> dict[str, np.ndarray]:
    return {"image": np.full((rows, 32, 32, 3), i, np.float32), "ids": np.full((rows, 4), i, np.int32)}


def test_list_for_the_only_signature_is_reiterable():
    datasets = normalize_dataset([sample(0), sample(1)], [SERVING], SPECS)
    assert list(datasets) == [SERVING]
    for _ in range(2):
        read = list(datasets[SERVING])
        assert [s["image"][0, 0, 0, 0] for s in read] == [0, 1]
        assert read[0]["ids"].dtype == np.int32


def test_generator_is_streamed_and_read_once():
    made = []

    def endless():
        for i in itertools.count():
            made.append(i)
            yield sample(i)

    datasets = normalize_dataset(endless(), [SERVING], SPECS)
    assert made == []
    first = list(itertools.islice(batches(datasets[SERVING], IMAGE_SPECS, SERVING, batch_size=2), 3))
    assert [b.inputs["image"].shape[0] for b in first] == [2, 2, 2]
    # Nothing is read ahead of the batches asked for.
    assert made == list(range(6))
    with pytest.raises(ValueError, match=f"signature '{SERVING}' is an iterator and was already read"):
        iter(datasets[SERVING])


def test_map_from_signature_key():
    specs = {"a": {"x": (np.dtype(np.float32), (None, 2))}, "b": {"y": (np.dtype(np.float32), (3,))}}
    datasets = normalize_dataset({"a": [{"x": [[1.0, 2.0]]}], "b": ({"y": np.ones(3)} for _ in range(2))},
                                 ["a", "b"], specs)
    assert [s["x"].tolist() for s in datasets["a"]] == [[[1.0, 2.0]]]
    assert [s["y"].dtype for s in datasets["b"]] == [np.float32, np.float32]


def test_tf_data_dataset():
    dataset = tf.data.Dataset.from_tensor_slices({
        "image": np.arange(3 * 32 * 32 * 3, dtype=np.float32).reshape(3, 32, 32, 3),
        "ids": np.arange(12, dtype=np.int32).reshape(3, 4)})
    datasets = normalize_dataset(dataset, [SERVING], SPECS)
    for _ in range(2):
        read = list(datasets[SERVING])
        assert len(read) == 3
        assert read[2]["ids"].tolist() == [[8, 9, 10, 11]]
        assert read[2]["image"].shape == (1, 32, 32, 3)


def save_tfrecord(path, samples) -> dict:
    saver = tf.quantization.experimental.TfRecordRepresentativeDatasetSaver(path_map={SERVING: str(path)})
    return saver.save({SERVING: samples})


def test_tfrecord_files_from_options(tmp_path):
    written = [sample(i) for i in range(3)]
    files = save_tfrecord(tmp_path / "calib.tfrecord", written)
    assert isinstance(files[SERVING], RepresentativeDatasetFile)
    datasets = normalize_dataset(None, [SERVING], SPECS, options_datasets=files)
    for _ in range(2):
        read = list(datasets[SERVING])
        assert len(read) == 3
        for got, want in zip(read, written):
            np.testing.assert_array_equal(got["image"], want["image"])
            assert got["ids"].dtype == np.int32


def test_load_tfrecord_dataset(tmp_path):
    save_tfrecord(tmp_path / "calib.tfrecord", [{"x": np.array([[1.5, 2.5]], np.float32)}, {"x": [[3.0, 4.0]]}])
    loaded = load_tfrecord_dataset(tmp_path / "calib.tfrecord")
    assert [s["x"].tolist() for s in loaded] == [[[1.5, 2.5]], [[3.0, 4.0]]]
    with pytest.raises(FileNotFoundError, match="missing.tfrecord does not exist"):
        load_tfrecord_dataset(tmp_path / "missing.tfrecord")


def test_dataset_errors():
    with pytest.raises(ValueError, match="needs a representative dataset"):
        normalize_dataset(None, [SERVING], SPECS)
    with pytest.raises(ValueError, match="both as an argument and in QuantizationOptions.representative_datasets"):
        normalize_dataset([sample(0)], [SERVING], SPECS,
                          options_datasets={SERVING: RepresentativeDatasetFile(tfrecord_file_path="x")})
    with pytest.raises(ValueError, match="unknown signature 'serve'; the signatures are serving_default"):
        normalize_dataset({"serve": [sample(0)]}, [SERVING], SPECS)
    with pytest.raises(ValueError, match="unknown signature 'other'"):
        normalize_dataset(None, [SERVING], SPECS,
                          options_datasets={"other": RepresentativeDatasetFile(tfrecord_file_path="x")})
    two = {"a": IMAGE_SPECS, "b": IMAGE_SPECS}
    with pytest.raises(ValueError, match=r"several signatures \(a, b\): give the representative dataset as a dict"):
        normalize_dataset([sample(0)], ["a", "b"], two)
    with pytest.raises(ValueError, match="no representative dataset for signature 'b'"):
        normalize_dataset({"a": [sample(0)]}, ["a", "b"], two)
    with pytest.raises(ValueError, match="for signature 'a' must be an iterable of dicts .* got int"):
        normalize_dataset({"a": 3, "b": []}, ["a", "b"], two)


def test_bad_sample_is_reported_when_read():
    datasets = normalize_dataset([sample(0), {"image": np.zeros((1, 31, 32, 3), np.float32)}], [SERVING], SPECS)
    with pytest.raises(ValueError, match="sample 1 for signature 'serving_default': input 'ids' is missing"):
        list(datasets[SERVING])


SPEC_ERRORS = [
    ({"image": np.zeros((31, 32, 3), np.float32), "ids": np.zeros((1, 4), np.int32)},
     "representative dataset sample 3 for signature 'serving_default': input 'image' has shape (31, 32, 3) "
     "but the signature expects (None, 32, 32, 3)"),
    ({"image": np.zeros((1, 32, 32, 3), np.float32), "ids": np.zeros((1, 4, 1), np.int32)},
     "sample 3 for signature 'serving_default': input 'ids' has shape (1, 4, 1) but the signature expects (None, 4)"),
    ({"image": np.zeros((1, 32, 32, 3), np.int64), "ids": np.zeros((1, 4), np.int32)},
     "sample 3 for signature 'serving_default': input 'image' has dtype int64 but the signature expects float32"),
    ({"image": np.zeros((1, 32, 32, 3), np.float32), "ids": [[0.5, 1.0, 2.0, 3.0]]},
     "sample 3 for signature 'serving_default': input 'ids' has dtype float64 but the signature expects int32"),
    ({"image": np.zeros((1, 32, 32, 3), np.float32)},
     "sample 3 for signature 'serving_default': input 'ids' is missing"),
    ({**sample(0), "label": np.zeros(1)},
     "sample 3 for signature 'serving_default': unknown input 'label'; the signature's inputs are 'image', 'ids'"),
    ((np.zeros((1, 32, 32, 3)),), "sample 3 for signature 'serving_default' is a tuple, not a dict"),
    ({"image": np.zeros((0, 32, 32, 3), np.float32), "ids": np.zeros((0, 4), np.int32)},
     "sample 3 for signature 'serving_default': input 'image' is empty (shape (0, 32, 32, 3))"),
    ({"image": np.zeros((1, 32, 32, 3), np.float32), "ids": np.array([[1, 2, 2**40, 3]])},
     "sample 3 for signature 'serving_default': input 'ids' holds 1099511627776, outside the range of int32 "
     "[-2147483648, 2147483647]"),
    ({"image": np.zeros((1, 32, 32, 3), np.float32), "ids": [[1, 2, 3, -2**31 - 1]]},
     "input 'ids' holds -2147483649, outside the range of int32"),
]


@pytest.mark.parametrize("bad, message", SPEC_ERRORS, ids=[str(i) for i in range(len(SPEC_ERRORS))])
def test_validate_sample_errors(bad, message):
    with pytest.raises(ValueError) as error:
        validate_sample(bad, IMAGE_SPECS, 3, SERVING)
    assert message in str(error.value)


@pytest.mark.parametrize("bad", [{"image": np.zeros((1, 32, 32, 3), np.float32)}, {**sample(0), "label": 1}],
                         ids=["missing", "unknown"])
def test_wrong_input_names_raise_what_tensorflow_and_tfquant_raise(bad):
    """TensorFlow's quantizer raises KeyError here, tfquant's dataset errors are ValueErrors: both catch it."""
    with pytest.raises(KeyError) as error:
        validate_sample(bad, IMAGE_SPECS, 3, SERVING)
    assert isinstance(error.value, InputNameError) and isinstance(error.value, ValueError)
    assert str(error.value).startswith("representative dataset sample 3")


def test_integers_go_to_any_integer_input_that_holds_them():
    specs = {"ids": (np.dtype(np.int32), (None,)), "bytes": (np.dtype(np.uint8), (None,))}
    checked = validate_sample({"ids": np.array([2**31 - 1], np.uint64), "bytes": [0, 255]}, specs, 0, SERVING)
    assert checked["ids"].tolist() == [2**31 - 1] and checked["ids"].dtype == np.int32
    assert checked["bytes"].tolist() == [0, 255] and checked["bytes"].dtype == np.uint8
    with pytest.raises(ValueError, match="input 'bytes' holds -1, outside the range of uint8 \\[0, 255\\]"):
        validate_sample({"ids": [1], "bytes": np.array([3, -1], np.int8)}, specs, 0, SERVING)


def test_validate_sample_converts():
    checked = validate_sample({"image": tf.ones((32, 32, 3), tf.float64), "ids": [1, 2, 3, 4]}, IMAGE_SPECS, 0, SERVING)
    assert checked["image"].dtype == np.float32 and checked["image"].shape == (1, 32, 32, 3)
    assert checked["ids"].dtype == np.int32 and checked["ids"].tolist() == [[1, 2, 3, 4]]
    scalars = {"t": (np.dtype(np.float32), ()), "s": (np.dtype(object), (None,)), "any": (np.dtype(np.float16), None)}
    checked = validate_sample({"t": 2, "s": [b"a", b"b"], "any": np.zeros((2, 1, 5), np.float64)}, scalars, 0, SERVING)
    assert checked["t"].dtype == np.float32 and checked["t"].shape == ()
    assert checked["s"].tolist() == [b"a", b"b"]
    assert checked["any"].dtype == np.float16 and checked["any"].shape == (2, 1, 5)


def test_batches_join_up_to_batch_size():
    samples = [sample(0, 2), sample(1, 1), sample(2, 3), sample(3, 1), sample(4, 6), sample(5, 1)]
    joined = list(batches(samples, IMAGE_SPECS, SERVING, batch_size=4))
    assert [b.inputs["image"].shape[0] for b in joined] == [3, 4, 6, 1]
    assert [(b.first, len(b.samples)) for b in joined] == [(0, 2), (2, 2), (4, 1), (5, 1)]
    assert [b.inputs["ids"][:, 0].tolist() for b in joined] == [[0, 0, 1], [2, 2, 2, 3], [4] * 6, [5]]
    assert sum(b.inputs["image"].shape[0] for b in joined) == 14


def test_batches_one_by_one_without_a_batch_dimension():
    specs = {"x": (np.dtype(np.float32), (2, 3))}
    out = list(batches([{"x": np.zeros((2, 3))}, {"x": np.ones((2, 3))}], specs, SERVING, batch_size=8))
    assert [b.inputs["x"].shape for b in out] == [(2, 3), (2, 3)]
    assert [b.first for b in out] == [0, 1]


def test_batches_keep_apart_what_cannot_be_joined():
    specs = {"tokens": (np.dtype(np.int32), (None, None)), "mask": (np.dtype(np.int32), (None, None))}
    samples = [{"tokens": np.zeros((1, 5)), "mask": np.zeros((1, 5))},
               {"tokens": np.zeros((1, 5)), "mask": np.zeros((1, 5))},
               {"tokens": np.zeros((1, 7)), "mask": np.zeros((1, 7))},   # another sequence length
               {"tokens": np.zeros((2, 7)), "mask": np.zeros((1, 7))},   # inputs disagree on the batch size
               {"tokens": np.zeros((1, 7)), "mask": np.zeros((1, 7))}]
    samples = [{k: v.astype(np.int32) for k, v in s.items()} for s in samples]
    out = list(batches(samples, specs, SERVING, batch_size=8))
    assert [(b.inputs["tokens"].shape, b.inputs["mask"].shape) for b in out] == [
        ((2, 5), (2, 5)), ((1, 7), (1, 7)), ((2, 7), (1, 7)), ((1, 7), (1, 7))]


def test_batches_name_the_bad_sample():
    samples = [sample(0), sample(1), {"image": np.zeros((1, 32, 32, 3), np.float32), "ids": np.zeros((1, 5), np.int32)}]
    with pytest.raises(ValueError, match=r"sample 2 for signature 'serving_default': input 'ids' has shape \(1, 5\)"):
        list(batches(samples, IMAGE_SPECS, SERVING, batch_size=2))
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        list(batches(samples, IMAGE_SPECS, SERVING, batch_size=0))


def test_load_npz_dataset(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, image=np.arange(3 * 32 * 32 * 3, dtype=np.float32).reshape(3, 32, 32, 3),
             ids=np.arange(12, dtype=np.int32).reshape(3, 4))
    samples = load_npz_dataset(path)
    assert len(samples) == 3
    assert samples[1]["ids"].tolist() == [[4, 5, 6, 7]]
    assert samples[1]["image"].shape == (1, 32, 32, 3)
    assert [validate_sample(s, IMAGE_SPECS, i, SERVING)["image"].shape for i, s in enumerate(samples)] == [
        (1, 32, 32, 3)] * 3
    np.savez(path, image=np.zeros((3, 2)), ids=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="same number of samples along its first axis, got image: 3, ids: 2"):
        load_npz_dataset(path)


def test_load_dataset_file_reads_what_the_file_is(tmp_path):
    """A zip archive is read as a .npz whatever its name; anything else that is not a .npy, as a TFRecord."""
    archive = tmp_path / "samples.bin"
    with open(archive, "wb") as f:
        np.savez(f, x=np.ones((2, 3), np.float32))
    assert [s["x"].shape for s in load_dataset_file(archive)] == [(1, 3), (1, 3)]
    save_tfrecord(tmp_path / "calib.tfrecord", [{"x": np.ones((1, 3), np.float32)}])
    assert [s["x"].shape for s in load_dataset_file(tmp_path / "calib.tfrecord")] == [(1, 3)]


def test_calibration_data_file_errors_name_the_file_and_what_it_should_hold(tmp_path):
    npy, npz, corrupt_npz, tfrecord = (tmp_path / name for name in ("x.npy", "x.npz", "bad.npz", "bad.tfrecord"))
    np.save(npy, np.zeros((4, 3)))
    np.savez(npz, x=np.zeros((4, 3)))
    corrupt_npz.write_bytes(npz.read_bytes()[:100])
    tfrecord.write_bytes(b"not a record" * 4)
    expected = "expected a .npz holding one array per input name (samples along the first axis) or a TFRecord file " \
               "written by TensorFlow's TfRecordRepresentativeDatasetSaver"
    cases = [(npy, ValueError, f"{npy} is a .npy array"),
             (corrupt_npz, ValueError, f"{corrupt_npz} is not a readable .npz (File is not a zip file)"),
             (tfrecord, ValueError, f"{tfrecord} is not a TFRecord of RepresentativeDataSamples "
                                   "(corrupted record at 0 (Is this even a TFRecord file?))"),
             (tmp_path / "nope.npz", FileNotFoundError, f"{tmp_path / 'nope.npz'} does not exist"),
             (tmp_path, IsADirectoryError, f"{tmp_path} is a directory")]
    for path, kind, message in cases:
        with pytest.raises(kind) as error:
            load_dataset_file(path)
        assert str(error.value) == f"calibration data file {message}; {expected}"


def test_error_summary_is_the_kernels_own_line():
    error = tf.errors.InvalidArgumentError(None, None, (
        "Graph execution error:\n\nDetected at node Gather defined at (most recent call last):\n"
        '  File "calibrate.py", line 99, in _instrumented_function\n\n    concrete = f()\n\n'
        "{{function_node __inference_body_141}} indices[0,0] = 50 is not in [0, 20)\n"
        "\t [[{{node Gather}}]] [Op:__inference_body_141]"))
    assert error_summary(error) == "indices[0,0] = 50 is not in [0, 20)"
    assert error_summary(tf.errors.DataLossError(None, None, "corrupted record at 0 [Op:IteratorGetNext] name: ")) \
        == "corrupted record at 0"
    assert error_summary(ValueError("one line\nand more")) == "one line"
