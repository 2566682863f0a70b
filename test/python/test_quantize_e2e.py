"""End to end: post-training static int8 quantization of the small test models.

Every quantization goes through `checked_quantize`, which also checks, after each call that
succeeds or fails, that the input SavedModel is byte-for-byte unchanged and that no staging
directory is left behind (and, after a failure, that the output directory is as it was).
Quantized outputs are compared with the float model on fresh inputs (not the calibration
samples). SQNR floors sit about 3 dB below what was measured (noted beside each floor).
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from dataclasses import dataclass
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402

import tfquant  # noqa: E402
from tfquant import calibrate as calibrate_lib, quantize as quantize_lib  # noqa: E402
from tfquant.options import CalibrationOptions, OpSet, QuantizationMethod, QuantizationOptions  # noqa: E402

SERVING = "serving_default"
CALIBRATION_SAMPLES = 64
FRESH_SEED = 1000
# Ops that compute a quantizable product, float or quantized, as they appear in an exported graph.
PRODUCT_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2", "Einsum", "XlaConvV2", "XlaDotV2",
               "GatherV2")
FLOAT_PRODUCT_OPS = ("Conv2D", "MatMul", "DepthwiseConv2dNative", "BatchMatMulV2", "Einsum")


# ----------------------------------------------------------------------------------------------
# Helpers: hashing, datasets, graph inspection, SQNR.

def hash_tree(root: str) -> dict[str, str] | None:
    """sha256 of every file under `root` by relative path ("<dir>" for directories); None if absent."""
    if not os.path.exists(root):
        return None
    hashes = {}
    for directory, dirs, files in os.walk(root):
        for d in dirs:
            hashes[os.path.relpath(os.path.join(directory, d), root)] = "<dir>"
        for f in files:
            path = os.path.join(directory, f)
            with open(path, "rb") as fh:
                hashes[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return hashes


def leftovers(parent: str) -> list[str]:
    """Staging or previous-output directories quantize_saved_model left in `parent`."""
    if not os.path.isdir(parent):
        return []
    return [e for e in os.listdir(parent) if e.startswith((".tfquant-staging-", ".tfquant-previous-"))]


def checked_quantize(model: str, out: str | None, options: QuantizationOptions | None = None,
                     dataset: Any = None, **kwargs):
    """quantize_saved_model, checking the input model and the output's parent after it returns or raises."""
    before = hash_tree(model)
    parent = os.path.dirname(os.path.abspath(out)) if out is not None else None
    out_before = hash_tree(out) if out is not None else None
    try:
        return quantize_lib.quantize_saved_model(model, out, options, dataset, verbose=False, **kwargs)
    except BaseException:
        if out is not None:
            assert hash_tree(out) == out_before, "a failed call changed the output directory"
        raise
    finally:
        assert hash_tree(model) == before, "the input SavedModel changed"
        if parent is not None:
            assert leftovers(parent) == []


def random_samples(model, count: int, seed: int, rows: int = 1, signature: str = SERVING) -> list[dict]:
    """`count` samples of `rows` rows for a signature, drawn like its builder's sample inputs.

    Floats are standard normal, ints are ids in [0, 20) (the embedding tables have 20 rows),
    scalar inputs (the cond model's flag, multi_output's beta) are a random bool or a float in [0.5, 1.5].
    """
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = {}
        for name, example in model.signatures[signature].items():
            example = np.asarray(example)
            if example.ndim == 0:
                sample[name] = (np.bool_(rng.random() < 0.5) if example.dtype == bool
                                else example.dtype.type(rng.uniform(0.5, 1.5)))
            elif example.dtype.kind == "f":
                sample[name] = rng.normal(size=(rows, *example.shape[1:])).astype(example.dtype)
            else:
                sample[name] = rng.integers(0, 20, size=(rows, *example.shape[1:])).astype(example.dtype)
        samples.append(sample)
    return samples


def calibration_dataset(model, signatures=(SERVING,)) -> dict[str, list[dict]]:
    return {key: random_samples(model, CALIBRATION_SAMPLES, seed=i, signature=key)
            for i, key in enumerate(signatures)}


def run(loaded, signature: str, inputs: dict) -> dict[str, np.ndarray]:
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def sqnr_db(pairs) -> float:
    """SQNR (dB) of the actual arrays against the reference ones, summed over (reference, actual) pairs."""
    signal = noise = 0.0
    for reference, actual in pairs:
        reference = reference.astype(np.float64)
        signal += float(np.sum(np.square(reference)))
        noise += float(np.sum(np.square(reference - actual)))
    return 10 * np.log10(signal / noise) if noise else float("inf")


def fresh_sqnr(float_model, quantized_model, model, signature: str = SERVING) -> dict[str, float]:
    """Per float output, SQNR of the quantized model on fresh batches (8 batches of 8 rows)."""
    pairs: dict[str, list] = {}
    for inputs in random_samples(model, 8, FRESH_SEED, rows=8, signature=signature):
        expected, actual = run(float_model, signature, inputs), run(quantized_model, signature, inputs)
        for name, value in expected.items():
            if value.dtype.kind == "f":
                pairs.setdefault(name, []).append((value, actual[name]))
    return {name: sqnr_db(p) for name, p in pairs.items()}


def graph_bodies(saved_model_dir: str) -> list[list]:
    """The NodeDefs of a SavedModel's graph and of each function of its library, one list per body."""
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = saved.meta_graphs[0].graph_def
    return [list(graph.node)] + [list(fn.node_def) for fn in graph.library.function]


def graph_nodes(saved_model_dir: str) -> list:
    return [node for body in graph_bodies(saved_model_dir) for node in body]


def _dtype(node, *attrs: str) -> str:
    for attr in attrs:
        if attr in node.attr:
            return tf.dtypes.as_dtype(node.attr[attr].type).name
    return "?"


def _is_int8_cast(nodes: dict, operand: str) -> bool:
    """Whether `operand` is an int8 tensor cast to float, possibly minus a zero point or times a scale."""
    node = nodes.get(operand.lstrip("^").split(":")[0])
    while node is not None and node.op in ("Sub", "Mul", "Identity"):
        node = nodes.get(node.input[0].split(":")[0])
    return node is not None and node.op == "Cast" and node.attr["SrcT"].type == types_pb2.DT_INT8


def product_ops(saved_model_dir: str) -> Counter:
    """(op type, operand dtype) of each product op in the exported graph.

    A float op whose two operands are int8 values cast to float (the depthwise lowering)
    counts as "int8-as-float32".
    """
    ops: Counter = Counter()
    for body in graph_bodies(saved_model_dir):
        nodes = {n.name: n for n in body}
        for n in body:
            if n.op not in PRODUCT_OPS:
                continue
            dtype = _dtype(n, "T", "LhsT", "Tparams")
            if dtype == "float32" and all(_is_int8_cast(nodes, operand) for operand in n.input[:2]):
                dtype = "int8-as-float32"
            ops[(n.op, dtype)] += 1
    return ops


def variables(saved_model_dir: str) -> list[np.ndarray]:
    """The values of a SavedModel's variables (not the checkpoint's bookkeeping strings)."""
    reader = tf.train.load_checkpoint(os.path.join(saved_model_dir, "variables", "variables"))
    return [reader.get_tensor(name) for name, dtype in reader.get_variable_to_dtype_map().items()
            if dtype != tf.string]


def stored_tensors(saved_model_dir: str) -> list[np.ndarray]:
    """The values of every Const node and every variable of a SavedModel."""
    return [tf.make_ndarray(n.attr["value"].tensor) for n in graph_nodes(saved_model_dir)
            if n.op == "Const" and n.attr["dtype"].type != types_pb2.DT_STRING] + variables(saved_model_dir)


def int8_weights(saved_model_dir: str) -> list[np.ndarray]:
    """Stored int8 tensors of at least 8 elements (weights, not scalar zero points), largest first."""
    found = [t for t in stored_tensors(saved_model_dir) if t.dtype == np.int8 and t.size >= 8]
    return sorted(found, key=lambda t: -t.size)


def float_variables(saved_model_dir: str) -> list[np.ndarray]:
    return [v for v in variables(saved_model_dir) if v.dtype == np.float32]


def options(opset: str = "XLA", per_channel: bool | None = None, calibration: str | None = None,
            signature_keys=None) -> QuantizationOptions:
    proto = QuantizationOptions(op_set=OpSet.Value(opset))
    if per_channel is not None:
        proto.enable_per_channel_quantization = per_channel
    if calibration is not None:
        proto.calibration_options.calibration_method = CalibrationOptions.CalibrationMethod.Value(
            "CALIBRATION_METHOD_" + calibration)
    if signature_keys:
        proto.signature_keys.extend(signature_keys)
    return proto


# ----------------------------------------------------------------------------------------------
# Shared quantized outputs.

@dataclass
class Quantized:
    model: Any
    out: str
    loaded: Any
    report: tfquant.QuantizationReport


@pytest.fixture(scope="module")
def float_model(model_dir):
    """`float_model(name)`: the float SavedModel loaded in TensorFlow, once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = tf.saved_model.load(model_dir(name))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def quantized(model_dir, tmp_path_factory):
    """`quantized(name, opset, per_channel, calibration, signature_keys) -> Quantized`, once per module."""
    cache: dict[tuple, Quantized] = {}

    def get(name: str, opset: str = "XLA", per_channel: bool | None = None, calibration: str | None = None,
            signature_keys: tuple[str, ...] | None = None) -> Quantized:
        key = (name, opset, per_channel, calibration, signature_keys)
        if key not in cache:
            model = model_dir(name)
            out = str(tmp_path_factory.mktemp("quantized") / "out")
            keys = signature_keys or (SERVING,)
            dataset = calibration_dataset(model, keys)
            loaded = checked_quantize(model, out, options(opset, per_channel, calibration, signature_keys),
                                      dataset if signature_keys else dataset[SERVING])
            cache[key] = Quantized(model, out, loaded, loaded.quantization_report)
        return cache[key]

    return get


# ----------------------------------------------------------------------------------------------
# Each quantizable op and fusion, on both opsets.

@dataclass(frozen=True)
class Expected:
    layers: dict[str, tuple[int, int]]
    xla_ops: dict[tuple[str, str], int]
    tf_ops: dict[tuple[str, str], int]
    int8_sizes: tuple[int, ...]   # element counts of the int8 weights, largest first
    floor_db: float               # fresh-input SQNR floor for every float output


XLA_CONV, XLA_DOT = ("XlaConvV2", "int8"), ("XlaDotV2", "int8")
GATHER_INT8 = ("GatherV2", "int8")
DEPTHWISE_ON_INT8 = ("DepthwiseConv2dNative", "int8-as-float32")

# Floors: the fresh-input SQNR measured (the same on XLA and TF) minus ~3 dB.
EXPECTED = {
    # conv2d + folded batch norm + bias + relu6, then conv2d + fused batch norm + bias: 38.3 dB.
    "conv_bn": Expected({"Conv2D": (2, 2)}, {XLA_CONV: 2}, {("Conv2D", "int32"): 2}, (1152, 216), 35.0),
    # depthwise + bias + relu6: 37.0 dB. Both opsets run it in f32 on the int8 values and int8
    # weights (TF has no int32 depthwise kernel; XLA's grouped int8 convolution is ~25x slower).
    "depthwise": Expected({"DepthwiseConv2dNative": (1, 1)}, {DEPTHWISE_ON_INT8: 1}, {DEPTHWISE_ON_INT8: 1},
                          (72,), 34.0),
    # matmul + bias + relu, twice: 34.7 dB.
    "matmul": Expected({"MatMul": (2, 2)}, {XLA_DOT: 2}, {("MatMul", "int32"): 2}, (512, 128), 31.5),
    # 41.4 dB and 40.7 dB.
    "batch_matmul": Expected({"BatchMatMulV2": (1, 1)}, {XLA_DOT: 1}, {("BatchMatMulV2", "int32"): 1}, (24,), 38.0),
    "einsum": Expected({"Einsum": (1, 1)}, {XLA_DOT: 1}, {("Einsum", "int32"): 1}, (30,), 37.5),
    # gather from an int8 table, then matmul: 36.3 dB.
    "embedding": Expected({"GatherV2": (1, 1), "MatMul": (1, 1)}, {GATHER_INT8: 1, XLA_DOT: 1},
                          {GATHER_INT8: 1, ("MatMul", "int32"): 1}, (160, 24), 33.0),
    # the gathered embeddings are also an output: embeddings 43.7 dB, output_0 40.3 dB.
    "embedding_output": Expected({"GatherV2": (1, 1), "MatMul": (1, 1)}, {GATHER_INT8: 1, XLA_DOT: 1},
                                 {GATHER_INT8: 1, ("MatMul", "int32"): 1}, (160, 24), 37.0),
    # float, int32 and softmax outputs: logits 42.3 dB, scores 47.0 dB.
    "multi_output": Expected({"MatMul": (1, 1)}, {XLA_DOT: 1}, {("MatMul", "int32"): 1}, (12,), 39.0),
    # matmul + bias + relu outside an If, and a matmul in each branch (calibrated where the
    # samples took it, the weight moved into the branch): 39.6 dB.
    "cond_dense": Expected({"MatMul": (3, 3)}, {XLA_DOT: 3}, {("MatMul", "int32"): 3}, (64, 32, 32), 36.5),
}
OPSETS = ("XLA", "TF")


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_quantized_model_is_close_to_float(quantized, float_model, name, opset):
    q = quantized(name, opset)
    expected = EXPECTED[name]
    assert q.report.quantized_layers == expected.layers
    assert q.report.opset == opset and q.report.per_channel
    assert q.report.calibration_samples == {SERVING: CALIBRATION_SAMPLES}
    measured = fresh_sqnr(float_model(name), q.loaded, q.model)
    assert measured and min(measured.values()) >= expected.floor_db, measured
    # The report measures the same outputs on the calibration samples.
    assert set(q.report.sqnr_db) == {f"{SERVING}/{output}" for output in measured}
    assert min(q.report.sqnr_db.values()) >= expected.floor_db, q.report.sqnr_db


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exported_graph_holds_the_opset_ops(quantized, name, opset):
    q = quantized(name, opset)
    expected = EXPECTED[name]
    ops = product_ops(q.out)
    assert ops == Counter(expected.xla_ops if opset == "XLA" else expected.tf_ops)
    assert not [op for op in ops if op[0] in FLOAT_PRODUCT_OPS and op[1] == "float32"], ops
    weights = int8_weights(q.out)
    assert tuple(w.size for w in weights) == expected.int8_sizes
    for w in weights:
        # Symmetric weights use [-127, 127], and the widest channel reaches 127.
        assert w.min() >= -127 and np.abs(w).max() == 127
    # No float copy of a quantized weight is kept.
    floats = [t for t in stored_tensors(q.out) if t.dtype == np.float32]
    assert all(t.size < min(expected.int8_sizes) for t in floats), [t.shape for t in floats]


def test_signatures_keep_names_and_dtypes(quantized, float_model):
    q = quantized("multi_output")
    want, got = float_model("multi_output").signatures[SERVING], q.loaded.signatures[SERVING]
    assert got.structured_input_signature == want.structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in got.structured_outputs.items()} == \
        {k: (v.dtype, v.shape.as_list()) for k, v in want.structured_outputs.items()}
    # The int32 argmax output agrees with float's almost everywhere.
    agree = [np.mean(run(float_model("multi_output"), SERVING, s)["classes"] == run(q.loaded, SERVING, s)["classes"])
             for s in random_samples(q.model, 8, FRESH_SEED, rows=8)]
    assert np.mean(agree) >= 0.95


def test_returned_object_is_the_written_model(quantized):
    q = quantized("conv_bn")
    reloaded = tf.saved_model.load(q.out)
    for inputs in random_samples(q.model, 2, FRESH_SEED, rows=4):
        np.testing.assert_array_equal(run(q.loaded, SERVING, inputs)["output_0"],
                                      run(reloaded, SERVING, inputs)["output_0"])
    assert list(q.loaded.signatures) == [SERVING]


def test_cond_model_quantizes_and_both_branches_stay_close(model_dir, float_model, tmp_path):
    model = model_dir("cond_dense")
    # A batch's branch is chosen by the sign of its sum: calibrate on batches as they will run
    # (a branch sees other activations in a batch of 8 than in a single row), measure each branch.
    loaded = checked_quantize(model, str(tmp_path / "out"), None, random_samples(model, 32, 0, rows=8))
    assert loaded.quantization_report.quantized_layers == {"MatMul": (3, 3)}
    pairs: dict[bool, list] = {True: [], False: []}
    for inputs in random_samples(model, 16, FRESH_SEED, rows=8):
        pairs[bool(inputs["x"].sum() > 0)].append((run(float_model("cond_dense"), SERVING, inputs)["output_0"],
                                                   run(loaded, SERVING, inputs)["output_0"]))
    assert len(pairs[True]) >= 4 and len(pairs[False]) >= 4
    branch_sqnr = {branch: sqnr_db(p) for branch, p in pairs.items()}
    assert min(branch_sqnr.values()) >= 36.0, branch_sqnr  # measured: 39.9 / 39.3


def test_model_with_only_branch_matmuls_quantizes_them(model_dir, tmp_path):
    """If/StatelessIf whose matmuls are all inside branches: each branch taken in calibration is quantized."""
    model = model_dir("cond")
    loaded = checked_quantize(model, str(tmp_path / "out"), None, [inputs for _, inputs in model.cases])
    assert loaded.quantization_report.quantized_layers == {"MatMul": (2, 2)}
    reference = tf.saved_model.load(model)
    assert sqnr_db([(run(reference, SERVING, inputs)["output_0"], run(loaded, SERVING, inputs)["output_0"])
                    for _, inputs in model.cases]) > 30


# ----------------------------------------------------------------------------------------------
# Per-channel and per-tensor weights.

def _dequantized(q: np.ndarray, w: np.ndarray, axis: int | None) -> np.ndarray:
    """q times the symmetric scale max|w|/127, per column (axis=1) or for the whole tensor."""
    reduce = tuple(i for i in range(w.ndim) if i != axis) if axis is not None else None
    return q * (np.max(np.abs(w), axis=reduce, keepdims=True) / 127.0)


def test_per_channel_beats_per_tensor_on_channels_of_different_ranges(quantized, float_model):
    per_channel, per_tensor = quantized("wide_channels"), quantized("wide_channels", per_channel=False)
    assert per_channel.report.per_channel and not per_tensor.report.per_channel
    (w,) = [v for v in float_variables(per_channel.model) if v.shape == (256, 256)]
    (q_channel,) = int8_weights(per_channel.out)
    (q_tensor,) = int8_weights(per_tensor.out)
    # Per channel, every column has its own scale max|w_j|/127; per tensor, one scale for all.
    np.testing.assert_array_equal(np.abs(q_channel).max(axis=0), np.full(256, 127))
    assert np.abs(q_tensor).max() == 127 and np.abs(q_tensor[:, 0]).max() <= 3
    assert np.max(np.abs(q_channel - np.round(w / _dequantized(np.ones_like(w), w, 1)))) <= 1
    assert np.max(np.abs(q_tensor - np.round(w / _dequantized(np.ones_like(w), w, None)))) <= 1
    weight_channel = sqnr_db([(w, _dequantized(q_channel, w, 1))])
    weight_tensor = sqnr_db([(w, _dequantized(q_tensor, w, None))])
    assert weight_channel >= weight_tensor + 10, (weight_channel, weight_tensor)
    # Outputs (measured: per-channel 38.6 dB, per-tensor 31.8 dB).
    out_channel = fresh_sqnr(float_model("wide_channels"), per_channel.loaded, per_channel.model)["output_0"]
    out_tensor = fresh_sqnr(float_model("wide_channels"), per_tensor.loaded, per_tensor.model)["output_0"]
    assert out_channel >= out_tensor + 3 and out_channel >= 35.5 and out_tensor >= 28.5, (out_channel, out_tensor)


def test_int8_model_is_several_times_smaller(quantized):
    q = quantized("wide_channels")
    float_bytes = quantize_lib.directory_bytes(q.model)
    int8_bytes = quantize_lib.directory_bytes(q.out)
    assert (q.report.input_bytes, q.report.output_bytes) == (float_bytes, int8_bytes)
    float_weight_bytes = sum(v.nbytes for v in float_variables(q.model))
    assert float_weight_bytes >= 256 * 256 * 4
    # Everything stored (graph, int8 weights, variables) is at least 2.8x smaller than the float weights alone.
    assert float_weight_bytes / int8_bytes >= 2.8, (float_weight_bytes, int8_bytes)
    assert sum(w.nbytes for w in int8_weights(q.out)) == 256 * 256


# ----------------------------------------------------------------------------------------------
# Calibration methods.

# Fresh-input SQNR floors on conv_bn, ~3 dB below the measured: min_max 38.3, average_min_max 30.0
# (TF's method averages per-sample ranges: narrower, so fresh samples clip more), percentile 38.3,
# mse_bruteforce 38.1, mse_max_frequency 38.0, mse_symmetric 38.1.
CALIBRATION_METHODS = [("MIN_MAX", 35.0), ("AVERAGE_MIN_MAX", 27.0), ("HISTOGRAM_PERCENTILE", 35.0),
                       pytest.param("HISTOGRAM_MSE_BRUTEFORCE", 35.0, marks=pytest.mark.slow),  # ~5 s
                       ("HISTOGRAM_MSE_MAX_FREQUENCY", 35.0), ("HISTOGRAM_MSE_SYMMETRIC", 35.0)]


@pytest.mark.parametrize("method, floor_db", CALIBRATION_METHODS)
def test_calibration_method(quantized, float_model, method, floor_db):
    q = quantized("conv_bn", calibration=method)
    assert q.report.calibration_method == f"CALIBRATION_METHOD_{method}"
    assert f"method=CALIBRATION_METHOD_{method}" in q.report.pipelines[0]
    assert fresh_sqnr(float_model("conv_bn"), q.loaded, q.model)["output_0"] >= floor_db
    if method != "MIN_MAX":
        # The method chose other ranges than min/max does, so the outputs differ.
        baseline = quantized("conv_bn", calibration="MIN_MAX")
        inputs = random_samples(q.model, 1, FRESH_SEED, rows=8)[0]
        assert not np.array_equal(run(q.loaded, SERVING, inputs)["output_0"],
                                  run(baseline.loaded, SERVING, inputs)["output_0"])


# ----------------------------------------------------------------------------------------------
# Dataset forms: each gives exactly the model the list gives.

def _same_model(a, b, model) -> None:
    for inputs in random_samples(model, 2, FRESH_SEED, rows=8):
        np.testing.assert_array_equal(run(a, SERVING, inputs)["output_0"], run(b, SERVING, inputs)["output_0"])


def _tfrecord_options(path, samples) -> QuantizationOptions:
    saver = tf.quantization.experimental.TfRecordRepresentativeDatasetSaver(path_map={SERVING: str(path)})
    proto = QuantizationOptions()
    for key, dataset_file in saver.save({SERVING: samples}).items():
        proto.representative_datasets[key].CopyFrom(dataset_file)
    return proto


@pytest.mark.parametrize("form", ["generator", "dict", "tf.data", "tfrecord"])
def test_dataset_form(quantized, tmp_path, form):
    baseline = quantized("matmul")
    model = baseline.model
    samples = calibration_dataset(model)[SERVING]
    proto, dataset = None, None
    if form == "generator":
        dataset = (sample for sample in samples)
    elif form == "dict":
        dataset = {SERVING: samples}
    elif form == "tf.data":
        dataset = tf.data.Dataset.from_tensor_slices({"x": np.stack([s["x"] for s in samples])})
    else:
        proto = _tfrecord_options(tmp_path / "calibration.tfrecord", samples)
    loaded = checked_quantize(model, str(tmp_path / "out"), proto, dataset)
    assert loaded.quantization_report.calibration_samples == {SERVING: CALIBRATION_SAMPLES}
    _same_model(loaded, baseline.loaded, model)


# ----------------------------------------------------------------------------------------------
# Signatures.

def test_output_keeps_only_the_requested_signature(quantized, float_model):
    q = quantized("two_signatures", signature_keys=("other",))
    assert list(q.loaded.signatures) == ["other"]
    want, got = float_model("two_signatures").signatures["other"], q.loaded.signatures["other"]
    assert got.structured_input_signature == want.structured_input_signature
    assert set(got.structured_outputs) == {"sum", "prod"}
    assert q.report.quantized_layers == {"MatMul": (1, 1)}
    assert q.report.calibration_samples == {"other": CALIBRATION_SAMPLES}
    measured = fresh_sqnr(float_model("two_signatures"), q.loaded, q.model, "other")
    # Fresh samples beyond the calibrated input range are clipped (40.2 dB on the calibration samples).
    assert min(measured.values()) >= 30.0, measured  # measured: sum 37.4, prod 33.3


def test_both_signatures_quantized_with_a_dataset_per_signature(quantized, float_model):
    q = quantized("two_signatures", signature_keys=(SERVING, "other"))
    assert sorted(q.loaded.signatures) == ["other", SERVING]
    assert q.report.quantized_layers == {"MatMul": (2, 2)}
    assert q.report.calibration_samples == {SERVING: CALIBRATION_SAMPLES, "other": CALIBRATION_SAMPLES}
    assert product_ops(q.out) == Counter({XLA_DOT: 2})
    for signature in (SERVING, "other"):
        measured = fresh_sqnr(float_model("two_signatures"), q.loaded, q.model, signature)
        assert min(measured.values()) >= 28.5, measured  # measured: logits 31.8, sum 39.9, prod 36.7


# ----------------------------------------------------------------------------------------------
# Refusals and errors: each leaves the input as it was and no output behind.

@pytest.mark.parametrize("proto, name", [
    (QuantizationOptions(op_set=OpSet.STABLEHLO), "STABLEHLO"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_unsupported_settings_are_refused(model_dir, tmp_path, proto, name):
    model = model_dir("matmul")
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="not supported") as error:
        checked_quantize(model, out, proto, calibration_dataset(model)[SERVING])
    assert name in str(error.value)
    assert not os.path.exists(out)


def _sample(**arrays) -> dict:
    return {k: np.asarray(v) for k, v in arrays.items()}


X = np.zeros((1, 16), np.float32)


@pytest.mark.parametrize("dataset, pattern", [
    ([_sample(x=X), _sample(y=X)], r"sample 1 for signature 'serving_default': unknown input 'y'"),
    ([_sample(x=X.astype(np.int32))], r"sample 0 .*input 'x' has dtype int32 but the signature expects float32"),
    ([_sample(x=X)] * 3 + [_sample(x=np.zeros((1, 15), np.float32))],
     r"sample 3 .*input 'x' has shape \(1, 15\) but the signature expects \(None, 16\)"),
    ({"nope": [_sample(x=X)]}, r"unknown signature 'nope'"),
    ([], r"has no samples"),
], ids=["unknown-input", "wrong-dtype", "wrong-shape", "unknown-signature-in-dataset", "empty"])
def test_bad_dataset_is_refused(model_dir, tmp_path, dataset, pattern):
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match=pattern):
        checked_quantize(model_dir("matmul"), out, None, dataset)
    assert not os.path.exists(out)


def test_missing_input_is_named(model_dir, tmp_path):
    model = model_dir("two_signatures")
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match=r"sample 0 for signature 'other': input 'b' is missing"):
        checked_quantize(model, out, options(signature_keys=["other"]), [{"a": model.signatures["other"]["a"]}])
    assert not os.path.exists(out)


@pytest.mark.parametrize("name, signature, dataset, pattern", [
    ("two_signatures", "other", [{"a": np.zeros((2, 40), np.float32), "b": np.zeros((3, 30), np.float32)}],
     r"^representative dataset sample 0 for signature 'other' \(inputs a: float32 \(2, 40\), b: float32 \(3, 30\)\) "
     r"fails in TensorFlow: Incompatible shapes: \[2,30\] vs. \[3,30\]$"),
    # The bad sample is joined with good ones into one batch; the error still names it.
    ("embedding", SERVING, [{"ids": np.ones((1, 5), np.int32)}] * 5 + [{"ids": np.full((1, 5), 50, np.int32)}],
     r"^representative dataset sample 5 for signature 'serving_default' \(inputs ids: int32 \(1, 5\)\) "
     r"fails in TensorFlow: indices\[0,0\] = 50 is not in \[0, 20\)$"),
], ids=["batch-sizes-differ", "id-outside-the-table"])
def test_sample_tensorflow_refuses_is_named_in_one_line(model_dir, tmp_path, name, signature, dataset, pattern):
    """Not TensorFlow's own message, which holds the Python stack that traced the function."""
    with pytest.raises(calibrate_lib.InvalidSampleError, match=pattern) as error:
        checked_quantize(model_dir(name), str(tmp_path / "out"), options(signature_keys=[signature]), dataset)
    assert isinstance(error.value, tf.errors.InvalidArgumentError) and isinstance(error.value, ValueError)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("ids, pattern", [
    (np.full((1, 5), 2**40), r"sample 0 .*input 'ids' holds 1099511627776, outside the range of int32"),
    (np.zeros((0, 5), np.int32), r"sample 0 .*input 'ids' is empty \(shape \(0, 5\)\)"),
], ids=["outside-int32", "no-rows"])
def test_sample_values_the_input_cannot_take_are_refused(model_dir, tmp_path, ids, pattern):
    with pytest.raises(ValueError, match=pattern):
        checked_quantize(model_dir("embedding"), str(tmp_path / "out"), None, [{"ids": ids}])


def test_calibration_calls_the_function_positionally_in_input_order(model_dir, tmp_path, monkeypatch):
    """Keyword arguments first fail TensorFlow's structured binding, which costs 10x the call."""
    calls = []
    instrumented = calibrate_lib._instrumented_function

    class Recording:
        def __init__(self, concrete):
            self._concrete = concrete

        def __getattr__(self, name):
            return getattr(self._concrete, name)

        def __call__(self, *args, **kwargs):
            calls.append(([tuple(arg.shape) for arg in args], kwargs))
            return self._concrete(*args, **kwargs)

    def recording(*args, **kwargs):
        concrete, names = instrumented(*args, **kwargs)
        return Recording(concrete), names

    monkeypatch.setattr(calibrate_lib, "_instrumented_function", recording)
    model = model_dir("two_signatures")
    checked_quantize(model, str(tmp_path / "out"), options(signature_keys=["other"]),
                     [{"b": np.ones((2, 30), np.float32), "a": np.ones((2, 40), np.float32)}])
    # Then the calibration extremes (every input at its minimum, then maximum: here both 1), one row each.
    assert calls == [([(2, 40), (2, 30)], {}), ([(1, 40), (1, 30)], {})]


def test_no_dataset(model_dir, tmp_path):
    with pytest.raises(ValueError, match="needs activation ranges: give a representative dataset"):
        checked_quantize(model_dir("matmul"), str(tmp_path / "out"), None, None)
    assert not os.path.exists(tmp_path / "out")


def test_dataset_both_as_argument_and_in_options(model_dir, tmp_path):
    model = model_dir("matmul")
    samples = calibration_dataset(model)[SERVING]
    proto = _tfrecord_options(tmp_path / "calibration.tfrecord", samples)
    with pytest.raises(ValueError, match="both as an argument and in QuantizationOptions.representative_datasets"):
        checked_quantize(model, str(tmp_path / "out"), proto, samples)
    assert not os.path.exists(tmp_path / "out")


def test_unknown_signature_key(model_dir, tmp_path):
    model = model_dir("matmul")
    with pytest.raises(ValueError, match="has no signature 'nope'"):
        checked_quantize(model, str(tmp_path / "out"), options(signature_keys=["nope"]),
                         calibration_dataset(model)[SERVING])
    assert not os.path.exists(tmp_path / "out")


def test_nonexistent_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checked_quantize(str(tmp_path / "missing"), str(tmp_path / "out"), None, [{"x": X}])
    assert sorted(os.listdir(tmp_path)) == []


def test_output_directory_not_empty(model_dir, quantized, tmp_path):
    model = model_dir("matmul")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    samples = calibration_dataset(model)[SERVING]
    with pytest.raises(FileExistsError, match="overwrite_output_directory"):
        checked_quantize(model, str(out), None, samples)
    assert os.listdir(out) == ["keep.txt"]
    # With overwrite the directory is replaced: the old file is gone, the model is the same model.
    loaded = checked_quantize(model, str(out), None, samples, overwrite_output_directory=True)
    assert not (out / "keep.txt").exists()
    _same_model(loaded, quantized("matmul").loaded, model)


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_directory_is_or_lies_in_the_input(model_dir, where):
    model = model_dir("matmul")
    out = model if where == "same" else os.path.join(model, "variables", "quantized")
    with pytest.raises(ValueError, match="must not be, contain or lie inside"):
        checked_quantize(model, out, None, calibration_dataset(model)[SERVING])
    assert not os.path.exists(os.path.join(model, "variables", "quantized"))


def test_output_directory_has_the_mode_mkdir_gives(model_dir, tmp_path):
    """Readable by whoever the umask lets read a new directory (a server running as another user)."""
    out = tmp_path / "out"
    model = model_dir("matmul")
    umask = 0o027  # not the usual 022, so that a mode fixed in the code cannot pass
    previous = os.umask(umask)
    try:
        checked_quantize(model, str(out), None, calibration_dataset(model)[SERVING])
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~umask


def test_empty_output_directory_is_refused_up_front(model_dir, tmp_path, monkeypatch):
    """TensorFlow writes the model into the working directory; a whole run used to end in a failed rename."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    model = model_dir("matmul")
    with pytest.raises(ValueError, match="output_directory is an empty string"):
        checked_quantize(model, "", None, calibration_dataset(model)[SERVING])
    assert os.listdir(tmp_path) == ["cwd"] and os.listdir(cwd) == []


def test_failed_export_leaves_nothing_and_keeps_previous_output(model_dir, tmp_path, monkeypatch):
    """A failure while writing the model removes the half-written staging directory."""
    def half_write(module, directory, *args, **kwargs):
        with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(quantize_lib, "export_saved_model", half_write)
    model = model_dir("matmul")
    samples = calibration_dataset(model)[SERVING]
    with pytest.raises(RuntimeError, match="disk full"):
        checked_quantize(model, str(tmp_path / "new"), None, samples)
    assert not (tmp_path / "new").exists()
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "model.txt").write_text("previous model")
    with pytest.raises(RuntimeError, match="disk full"):
        checked_quantize(model, str(previous), None, samples, overwrite_output_directory=True)
    assert (previous / "model.txt").read_text() == "previous model"


def test_without_output_directory(model_dir, quantized, tmp_path, monkeypatch):
    """The model goes to a new temporary directory; a failed call leaves none behind."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    model = model_dir("matmul")
    with pytest.raises(ValueError, match="unknown input 'y'"):
        checked_quantize(model, None, None, [{"y": X}])
    assert os.listdir(tmp_path) == []
    loaded = checked_quantize(model, None, None, calibration_dataset(model)[SERVING])
    (written,) = os.listdir(tmp_path)
    assert written.startswith("tfquant_") and os.path.isfile(tmp_path / written / "saved_model.pb")
    _same_model(loaded, quantized("matmul").loaded, model)
