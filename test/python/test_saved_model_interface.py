"""Any SavedModel in, exactly its interface out.

Models TensorFlow's Python loader cannot rebuild (optimizer slots), TF1 SavedModelBuilder models
with their own tags and Keras 3 exports quantize; the output's signatures equal the input's
(keys, names, dtypes, static and dynamic dimensions, as `saved_model_cli` and the loaded
functions see them); `freeze_all_variables` both ways; assets carried over; errors are
TensorFlow's classes and name the path, tags or signature.
"""
from __future__ import annotations

import os
import shutil

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.saved_model import loader_impl  # noqa: E402

import tfquant  # noqa: E402
from models import TF1_TAGS  # noqa: E402
from tfquant.options import QuantizationOptions  # noqa: E402

INIT_OP = "__saved_model_init_op"


def _samples(model, count: int = 16, seed: int = 0) -> list[dict]:
    """Calibration samples shaped like the model's sample inputs, drawn afresh."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = {}
        for name, value in model.inputs.items():
            if value.dtype.kind == "f":
                sample[name] = rng.normal(size=value.shape).astype(value.dtype)
            else:
                sample[name] = value
        samples.append(sample)
    return samples


def _quantize(model, out: str, units=(), **option_fields):
    options = QuantizationOptions(signature_keys=[model.signature], tags=model.tags, **option_fields)
    return tfquant.quantize_saved_model(model, out, options, _samples(model), verbose=False, units=units)


# The units inside If branches: any function but the signature's.
BRANCH_UNITS = [{"func_name": "(?!serving_default$).*", "method": "no_quantize"}]


def _signature_defs(path: str, tags: list[str]) -> dict:
    (meta_graph,) = [mg for mg in loader_impl.parse_saved_model(path).meta_graphs
                     if sorted(mg.meta_info_def.tags) == sorted(tags)]
    return {k: v for k, v in meta_graph.signature_def.items() if k != INIT_OP}


def _infos(infos) -> dict:
    return {k: (v.dtype, None if v.tensor_shape.unknown_rank else [d.size for d in v.tensor_shape.dim])
            for k, v in infos.items()}


def _specs(structure) -> list:
    return [(s.name, s.dtype, s.shape.as_list() if s.shape.rank is not None else None)
            for s in tf.nest.flatten(structure)]


def _run(fn, inputs: dict) -> dict:
    return {k: v.numpy() for k, v in fn(**{n: tf.constant(v) for n, v in inputs.items()}).items()}


def _sqnr_db(want: np.ndarray, got: np.ndarray) -> float:
    return 10 * np.log10(np.sum(np.square(want)) / np.sum(np.square(want - got)))


@pytest.fixture(scope="module")
def quantized(model_dir, tmp_path_factory):
    """`quantized(name) -> (model, output directory, loaded output)`, once per module."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            model = model_dir(name)
            out = str(tmp_path_factory.mktemp("quantized") / name)
            cache[name] = (model, out, _quantize(model, out))
        return cache[name]

    return get


INTERFACE_MODELS = ["conv_bn", "matmul", "slot_variables", "tf1_builder", "dynamic_conv", "multi_output", "cond",
                    "while"]


@pytest.mark.parametrize("name", INTERFACE_MODELS)
def test_signature_defs_identical(quantized, name):
    model, out, _ = quantized(name)
    before, after = _signature_defs(model, model.tags), _signature_defs(out, model.tags)
    assert sorted(after) == [model.signature]
    want, got = before[model.signature], after[model.signature]
    assert got.method_name == want.method_name
    assert _infos(got.inputs) == _infos(want.inputs)
    assert _infos(got.outputs) == _infos(want.outputs)


@pytest.mark.parametrize("name", [n for n in INTERFACE_MODELS if n not in ("slot_variables", "tf1_builder")])
def test_loaded_function_specs_identical(quantized, name):
    model, _, loaded = quantized(name)
    want = tf.saved_model.load(model).signatures[model.signature]
    got = loaded.signatures[model.signature]
    assert _specs(got.structured_input_signature) == _specs(want.structured_input_signature)
    assert _specs(got.structured_outputs) == _specs(want.structured_outputs)


def test_dynamic_output_dimensions_kept(quantized):
    model, out, loaded = quantized("dynamic_conv")
    (info,) = _signature_defs(out, model.tags)[model.signature].outputs.values()
    assert [d.size for d in info.tensor_shape.dim] == [-1, -1, -1, 8]
    assert loaded.signatures[model.signature].structured_outputs["features"].shape.as_list() == [None, None, None, 8]
    # Any spatial size still runs.
    for shape in [(1, 4, 4, 3), (2, 9, 7, 3)]:
        result = _run(loaded.signatures[model.signature], {"image": np.ones(shape, np.float32)})
        assert result["features"].shape == shape[:3] + (8,)


def test_model_with_optimizer_slots_quantizes(quantized):
    model, _, loaded = quantized("slot_variables")
    with pytest.raises(AttributeError, match="add_slot"):  # why TensorFlow's Python loader is not used
        tf.saved_model.load(model)
    reference = model.info["functions"][model.signature]
    want = _run(reference, model.inputs)["output_0"]
    got = _run(loaded.signatures[model.signature], model.inputs)["output_0"]
    assert _sqnr_db(want, got) > 30


def test_tf1_model_quantizes_with_its_tags(quantized):
    model, out, loaded = quantized("tf1_builder")
    assert [sorted(mg.meta_info_def.tags) for mg in loader_impl.parse_saved_model(out).meta_graphs] == \
        [sorted(TF1_TAGS)]
    assert loaded.quantization_report.quantized_layers == {"MatMul": (1, 1)}
    original = tf.saved_model.load(model, tags=TF1_TAGS).signatures["predict"]
    want = _run(original, model.inputs)["y"]
    got = _run(loaded.signatures["predict"], model.inputs)["y"]
    assert _sqnr_db(want, got) > 30


def test_keras_exports_quantize(tmp_path):
    import keras
    inputs = keras.Input((12,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(4, name="logits")(hidden)
    model = keras.Model(inputs, outputs)
    samples = [{"features": s} for s in np.random.default_rng(3).normal(size=(16, 1, 12)).astype(np.float32)]
    for how in ("export", "saved_model_save"):
        path = str(tmp_path / how)
        if how == "export":
            model.export(path, verbose=False)
        else:
            tf.saved_model.save(model, path)
        original = tf.saved_model.load(path).signatures["serving_default"]
        (input_name,) = [s.name for s in tf.nest.flatten(original.structured_input_signature)]
        data = [{input_name: s["features"]} for s in samples]
        loaded = tfquant.quantize_saved_model(path, str(tmp_path / f"{how}_int8"), None, data, verbose=False)
        assert loaded.quantization_report.quantized_layers == {"MatMul": (2, 2)}, how
        assert _specs(loaded.signatures["serving_default"].structured_outputs) == _specs(original.structured_outputs)
        (key,) = original.structured_outputs
        want = original(**{input_name: tf.constant(data[0][input_name])})[key].numpy()
        got = loaded.signatures["serving_default"](**{input_name: tf.constant(data[0][input_name])})[key].numpy()
        assert _sqnr_db(want, got) > 25, how


def test_assets_carried_over(quantized):
    _, out, _ = quantized("dynamic_conv")
    assert os.listdir(os.path.join(out, "assets")) == ["vocab.txt"]
    with open(os.path.join(out, "assets.extra", "warmup.txt")) as f:
        assert f.read() == "warm up\n"


# --- freeze_all_variables ------------------------------------------------------------------

def test_freeze_all_variables_leaves_no_variables(quantized):
    _, out, loaded = quantized("conv_bn")
    # A TF2 SavedModel's checkpoint also holds its object graph, which the loader needs.
    stored = tf.train.list_variables(os.path.join(out, "variables", "variables"))
    assert [name for name, _ in stored] == ["_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert list(loaded.signatures["serving_default"].variables) == []


def test_unfrozen_float_weights_stay_assignable_variables(model_dir, tmp_path):
    model = model_dir("cond_dense")  # the If branches' MatMuls stay float, as a unit-wise spec says
    loaded = _quantize(model, str(tmp_path / "out"), BRANCH_UNITS, freeze_all_variables=False)
    frozen = _quantize(model, str(tmp_path / "frozen"), BRANCH_UNITS)
    assert list(frozen.signatures[model.signature].variables) == []
    fn = loaded.signatures[model.signature]
    float_weights = [v for v in fn.variables if v.dtype == tf.float32 and v.shape.rank == 2]
    assert len(float_weights) == 2, [(v.name, v.dtype, v.shape) for v in fn.variables]
    # Stored in the checkpoint under the model's object graph, and read by the graph: assigning changes the output.
    stored = tf.train.list_variables(os.path.join(tmp_path, "out", "variables", "variables"))
    assert sum("VARIABLE_VALUE" in name for name, _ in stored) >= len(float_weights)
    before = _run(fn, model.inputs)
    for v in float_weights:
        v.assign(tf.zeros_like(v))
    after = _run(fn, model.inputs)
    assert any(not np.array_equal(before[k], after[k]) for k in before)


# --- errors ----------------------------------------------------------------------------------

def test_missing_path_is_an_os_error(tmp_path):
    with pytest.raises(OSError, match="does_not_exist"):
        tfquant.import_saved_model(str(tmp_path / "does_not_exist"))


def test_unknown_tags_name_both(model_dir):
    with pytest.raises(RuntimeError) as info:
        tfquant.import_saved_model(model_dir("tf1_builder"))
    assert "['serve']" in str(info.value) and "cpu" in str(info.value)


def test_unknown_signature_names_the_signatures(model_dir):
    with pytest.raises(ValueError, match="'nope'.*'predict'"):
        tfquant.import_saved_model(model_dir("tf1_builder"), signature_keys=["nope"], tags=TF1_TAGS)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_damaged_checkpoint_names_the_file(model_dir, tmp_path, damage):
    path = str(tmp_path / "model")
    shutil.copytree(model_dir("matmul"), path)
    data = [f for f in os.listdir(os.path.join(path, "variables")) if f.startswith("variables.data")][0]
    target = os.path.join(path, "variables", data if damage == "truncated" else "variables.index")
    if damage == "missing":
        shutil.rmtree(os.path.join(path, "variables"))
    else:
        with open(target, "r+b") as f:
            if damage == "truncated":
                f.truncate(os.path.getsize(target) // 2)
            else:
                f.write(b"\x00garbage" * 8)
    with pytest.raises(OSError, match=os.path.join(path, "variables")):
        tfquant.import_saved_model(path)


def test_garbage_saved_model_pb_names_the_path(model_dir, tmp_path):
    path = str(tmp_path / "model")
    shutil.copytree(model_dir("matmul"), path)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"\xff\xfe not a protobuf")
    with pytest.raises(OSError, match=path):
        tfquant.import_saved_model(path)


# --- side by side with TensorFlow's own quantizer ----------------------------------------------

def _tf_quantize(model, out: str) -> None:
    options = QuantizationOptions(signature_keys=[model.signature], tags=model.tags)
    options.quantization_method.preset_method = options.quantization_method.METHOD_STATIC_RANGE_INT8
    tf.quantization.experimental.quantize_saved_model(model, out, options, _samples(model, 4))


@pytest.mark.parametrize("name", ["dynamic_conv", "tf1_builder", "multi_output", "cond", "slot_variables"])
def test_interface_equals_tensorflows_quantizer(quantized, tmp_path, name):
    """What a caller sees of the output (tags, signature keys, names, dtypes, every dimension, no
    variables by default) is what TensorFlow's `quantize_saved_model` gives for the same call."""
    model, out, _ = quantized(name)
    theirs = str(tmp_path / "tf")
    _tf_quantize(model, theirs)
    assert [sorted(mg.meta_info_def.tags) for mg in loader_impl.parse_saved_model(out).meta_graphs] == \
        [sorted(mg.meta_info_def.tags) for mg in loader_impl.parse_saved_model(theirs).meta_graphs]
    ours, tfs = _signature_defs(out, model.tags), _signature_defs(theirs, model.tags)
    assert sorted(ours) == sorted(tfs)
    for key in tfs:
        assert _infos(ours[key].inputs) == _infos(tfs[key].inputs), key
        assert _infos(ours[key].outputs) == _infos(tfs[key].outputs), key
    # freeze_all_variables defaults to True in both: no variable values are stored.
    stored = tf.train.list_variables(os.path.join(out, "variables", "variables"))
    assert [n for n, _ in stored if n != "_CHECKPOINTABLE_OBJECT_GRAPH"] == []
    assert not [f for f in os.listdir(os.path.join(theirs, "variables")) if f.startswith("variables.data")]


def _raised(call) -> type:
    try:
        call()
    except Exception as error:  # the class is what is compared
        return type(error)
    raise AssertionError("no exception")


@pytest.mark.parametrize("mistake", ["missing path", "no SavedModel", "unknown tags"])
def test_errors_are_tensorflows_classes(model_dir, tmp_path, mistake):
    model = model_dir("matmul")
    path, tags = str(model), ["serve"]
    if mistake == "missing path":
        path = str(tmp_path / "nothing_here")
    elif mistake == "no SavedModel":
        (tmp_path / "empty").mkdir()
        path = str(tmp_path / "empty")
    else:
        tags = ["serve", "gpu"]
    options = QuantizationOptions(signature_keys=[model.signature], tags=tags)
    options.quantization_method.preset_method = options.quantization_method.METHOD_STATIC_RANGE_INT8
    theirs = _raised(lambda: tf.quantization.experimental.quantize_saved_model(
        path, str(tmp_path / "tf_out"), options, _samples(model, 2)))
    ours = _raised(lambda: tfquant.quantize_saved_model(path, str(tmp_path / "out"), options, _samples(model, 2),
                                                        verbose=False))
    assert issubclass(ours, theirs), (ours, theirs)
