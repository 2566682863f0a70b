"""`tfquant.lite`: TensorFlow's TFLiteConverter API, quantizing with tfquant.

Every validation error is checked against TensorFlow's converter on the same case (same class,
TensorFlow's message), defaults against a fresh TensorFlow converter, each entry point and mode
end to end in the LiteRT interpreter (outputs against the float model's, on inputs calibration
did not see), and `tfquant convert`. Models are tiny and built once per module.
"""
from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from tensorflow.lite.python.convert_phase import ConverterError as TFConverterError  # noqa: E402

import tfquant.lite  # noqa: E402
from tfquant.lite import ConverterError, Optimize, OpsSet, TFLiteConverter, TFLiteConverterV1  # noqa: E402
from tfquant.lite._inputs import Samples, model_inputs  # noqa: E402
from tfquant.tools import cli  # noqa: E402

SERVING = "serving_default"
INT16X8 = OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
TENSOR_TYPES = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
OP_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
# SQNR floors (dB) on held-out inputs, ~3 dB under what each mode measured on the two-input model
# (TensorFlow's converter in the same mode: int8 31.1, 16x8 38.9, dynamic range 45.0, float16 71.4).
FLOOR_DB = {"int8": 27.0, "16x8": 31.0, "dynamic_range": 42.0, "float16": 68.0}


# ----------------------------------------------------------------------------------------------
# Models: two inputs of different shapes (list order matters), two signatures, Keras, frozen graph.

def _weight(rng: np.random.Generator, shape, scale: float = 0.3) -> tf.Variable:
    return tf.Variable(rng.normal(0.0, scale, size=shape).astype(np.float32))


def _two_inputs_module() -> tf.Module:
    """zed [None, 8] and alpha [None, 40] (in that order; the SignatureDef lists alpha first) through
    two MatMuls, an Add, a Relu and a MatMul; the 40x64 weight is big enough for dynamic range."""
    rng = np.random.default_rng(7)
    m = tf.Module()
    m.a, m.b, m.c = _weight(rng, (8, 64)), _weight(rng, (40, 64)), _weight(rng, (64, 10))
    m.bias = _weight(rng, (64,), 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="zed"),
                                  tf.TensorSpec([None, 40], tf.float32, name="alpha")])
    def predict(zed, alpha):
        hidden = tf.nn.relu(tf.matmul(zed, m.a) + tf.matmul(alpha, m.b) + m.bias)
        return {"logits": tf.matmul(hidden, m.c)}

    m.predict = predict
    return m


def two_inputs(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"zed": rng.normal(size=(rows, 8)).astype(np.float32),
            "alpha": rng.normal(size=(rows, 40)).astype(np.float32)}


def two_inputs_dataset(count: int = 64, as_list: bool = False):
    """A representative dataset generator function: `count` single-row samples, dicts or lists in
    the functions' argument order."""
    samples = [two_inputs(1, seed) for seed in range(count)]
    return lambda: iter([[s["zed"], s["alpha"]] if as_list else s for s in samples])


@pytest.fixture(scope="module")
def two_in_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("lite") / "two_in")
    m = _two_inputs_module()
    tf.saved_model.save(m, path, signatures={SERVING: m.predict})
    return path


@pytest.fixture(scope="module")
def two_signatures_dir(tmp_path_factory) -> str:
    """Signatures "serving_default" (x [None, 40]) and "second" (p [None, 40], q [None, 32]).

    No attribute of the module is called `serve`: TensorFlow takes a SavedModel with one for a Keras
    export and converts only serving_default."""
    path = str(tmp_path_factory.mktemp("lite") / "two_signatures")
    rng = np.random.default_rng(8)
    m = tf.Module()
    m.w, m.v = _weight(rng, (40, 32)), _weight(rng, (32, 6))

    @tf.function(input_signature=[tf.TensorSpec([None, 40], tf.float32, name="x")])
    def first(x):
        return {"y": tf.matmul(tf.nn.relu(tf.matmul(x, m.w)), m.v)}

    @tf.function(input_signature=[tf.TensorSpec([None, 40], tf.float32, name="p"),
                                  tf.TensorSpec([None, 32], tf.float32, name="q")])
    def second(p, q):
        return {"z": tf.matmul(tf.nn.relu(tf.matmul(p, m.w) + q), m.v)}

    m.first, m.second = first, second
    tf.saved_model.save(m, path, signatures={SERVING: first, "second": second})
    return path


def second_inputs(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"p": rng.normal(size=(rows, 40)).astype(np.float32), "q": rng.normal(size=(rows, 32)).astype(np.float32)}


@pytest.fixture(scope="module")
def keras_model():
    import keras
    keras.utils.set_random_seed(9)
    inputs = keras.Input((12,), name="feat")
    hidden = keras.layers.Dense(48, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(5)(hidden))


@pytest.fixture(scope="module")
def frozen_graph(tmp_path_factory) -> str:
    """A frozen GraphDef file with input "x" [None, 12] and output "Identity"."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    rng = np.random.default_rng(10)
    w, v = _weight(rng, (12, 48)), _weight(rng, (48, 5))
    function = tf.function(lambda x: tf.matmul(tf.nn.relu(tf.matmul(x, w)), v),
                           input_signature=[tf.TensorSpec([None, 12], tf.float32, name="x")])
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    path = str(tmp_path_factory.mktemp("lite") / "frozen.pb")
    with open(path, "wb") as f:
        f.write(frozen.graph.as_graph_def().SerializeToString())
    return path


def twelve_features_dataset(count: int = 64):
    rng = np.random.default_rng(11)
    samples = [rng.normal(size=(1, 12)).astype(np.float32) for _ in range(count)]
    return lambda: iter([[s] for s in samples])


# ----------------------------------------------------------------------------------------------
# Helpers: running a flatbuffer, SQNR, inspecting tensors.

def run(model: bytes, inputs: dict[str, np.ndarray], key: str | None = None) -> dict[str, np.ndarray]:
    """Float outputs of a TFLite model: integer inputs quantized and integer outputs dequantized with
    the tensors' own parameters. A model without SignatureDefs is run by tensor name."""
    it = Interpreter(model_content=model)
    if it.get_signature_list():
        runner = it.get_signature_runner(key)
        inputs_detail, outputs_detail = runner.get_input_details(), runner.get_output_details()
        results = runner(**{name: _quantized(value, inputs_detail[name]) for name, value in inputs.items()})
        return {name: _dequantized(value, outputs_detail[name]) for name, value in results.items()}
    details = {d["name"]: d for d in it.get_input_details()}
    for name, value in inputs.items():
        it.resize_tensor_input(details[name]["index"], list(value.shape))
    it.allocate_tensors()
    for name, value in inputs.items():
        it.set_tensor(details[name]["index"], _quantized(value, details[name]))
    it.invoke()
    return {d["name"]: _dequantized(it.get_tensor(d["index"]), d) for d in it.get_output_details()}


def _quantized(value: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return value.astype(dtype)
    scale, zero_point = detail["quantization"]
    assert scale > 0, detail
    info = np.iinfo(dtype)
    return np.clip(np.round(value / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantized(value: np.ndarray, detail: dict) -> np.ndarray:
    if value.dtype.kind == "f":
        return value
    scale, zero_point = detail["quantization"]
    assert scale > 0, detail
    return (value.astype(np.float64) - zero_point) * scale


def sqnr_db(reference_model: bytes, model: bytes, batches: list[dict[str, np.ndarray]],
            key: str | None = None) -> float:
    """SQNR of `model` against `reference_model` over every output of every batch."""
    signal = noise = 0.0
    for inputs in batches:
        expected, got = run(reference_model, inputs, key), run(model, inputs, key)
        assert expected.keys() == got.keys()
        for name, value in expected.items():
            signal += float(np.sum(np.square(value, dtype=np.float64)))
            noise += float(np.sum(np.square(value - got[name], dtype=np.float64)))
    return float("inf") if noise == 0 else 10 * np.log10(signal / noise)


def held_out_two_inputs() -> list[dict[str, np.ndarray]]:
    return [two_inputs(8, seed) for seed in range(1000, 1004)]


def model_object(model: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))


def io_tensors(model: bytes, subgraph: int = 0) -> tuple[list, list]:
    """(inputs, outputs) of a subgraph as (type name, scale, zero point)."""
    graph = model_object(model).subgraphs[subgraph]

    def describe(index):
        tensor = graph.tensors[index]
        q = tensor.quantization
        has = q is not None and q.scale is not None and len(q.scale)
        return TENSOR_TYPES[tensor.type], float(q.scale[0]) if has else None, int(q.zeroPoint[0]) if has else None

    return [describe(i) for i in graph.inputs], [describe(i) for i in graph.outputs]


def ops_by_type(model: bytes) -> list[tuple[str, list[str], list[str]]]:
    """Every operator as (builtin name, input tensor types, output tensor types)."""
    m = model_object(model)
    found = []
    for graph in m.subgraphs:
        for op in graph.operators:
            code = m.operatorCodes[op.opcodeIndex]
            name = OP_NAMES[max(code.builtinCode, code.deprecatedBuiltinCode)]
            inputs, outputs = ([TENSOR_TYPES[graph.tensors[i].type] for i in tensors if i >= 0]
                               for tensors in (op.inputs, op.outputs))
            found.append((name, inputs, outputs))
    return found


def tf_converter(factory: str, *args, v1: bool = False, **kwargs):
    """TensorFlow's converter made as ours is, for side-by-side checks."""
    return getattr(tf.compat.v1.lite.TFLiteConverter if v1 else tf.lite.TFLiteConverter, factory)(*args, **kwargs)


def our_converter(factory: str, *args, v1: bool = False, **kwargs):
    return getattr(TFLiteConverterV1 if v1 else TFLiteConverter, factory)(*args, **kwargs)


def configured(converter, **settings):
    """`converter` with attributes set; `supported_ops`/`supported_types` go to its target_spec."""
    for name, value in settings.items():
        setattr(converter.target_spec if name in ("supported_ops", "supported_types") else converter, name, value)
    return converter


# ----------------------------------------------------------------------------------------------
# The public names.

def test_public_names_are_tensorflows_where_tensorflow_has_them():
    assert tfquant.lite.Optimize is tf.lite.Optimize and tfquant.lite.OpsSet is tf.lite.OpsSet
    assert tfquant.lite.RepresentativeDataset is tf.lite.RepresentativeDataset
    assert tfquant.lite.TargetSpec is tf.lite.TargetSpec
    from tfquant.lite.compat.v1 import TFLiteConverter as V1
    assert V1 is TFLiteConverterV1 is tfquant.lite.compat.v1.TFLiteConverter
    # TensorFlow's ConverterError, and the RuntimeError its 16x8 quantizer raises for an op it cannot quantize.
    assert issubclass(ConverterError, TFConverterError) and issubclass(ConverterError, RuntimeError)


@pytest.mark.parametrize("v1", [False, True], ids=["v2", "v1"])
def test_defaults_are_tensorflows(two_in_dir, v1):
    theirs = tf_converter("from_saved_model", two_in_dir, v1=v1)
    ours = our_converter("from_saved_model", two_in_dir, v1=v1)
    public = {name: value for name, value in vars(theirs).items() if not name.startswith("_")}
    assert "optimizations" in public and "representative_dataset" in public and "inference_input_type" in public
    for name, value in public.items():
        if name == "target_spec":
            assert vars(ours.target_spec) == vars(value)
        else:
            assert getattr(ours, name) == value, name
    assert ours.quantization is None and ours.quantization_report is None
    ours.allow_custom_ops = True  # attributes are set on the wrapped converter
    assert ours._tf.allow_custom_ops is True and "allow_custom_ops" in dir(ours)


# ----------------------------------------------------------------------------------------------
# Validation errors, side by side with TensorFlow's converter.

def samples(*items):
    """A representative dataset generator function yielding `items`."""
    return lambda: iter(items)


def quantizing(**settings) -> dict:
    return dict(optimizations=[Optimize.DEFAULT], **settings)


ZED, ALPHA = np.zeros((1, 8), np.float32), np.zeros((1, 40), np.float32)

# {id: (model fixture, settings, exception class, how much of TensorFlow's message ours repeats: "all",
#  "prefix" (ours adds where: the sample's index), a marker up to which both agree, or None)}.
# Each test costs ~0.2 s of teardown (conftest's gc check), so the cases of a kind share one.
SETTINGS_ERROR_CASES = {
    "int8-only-without-dataset": ("two_in_dir", quantizing(supported_ops=[OpsSet.TFLITE_BUILTINS_INT8]),
                                  ValueError, "all"),
    "int8-types-without-dataset": ("two_in_dir", quantizing(supported_types=[tf.int8]), ValueError, "all"),
    "int8-ops-with-float16-types": ("two_in_dir", quantizing(supported_ops=[OpsSet.TFLITE_BUILTINS_INT8],
                                                             supported_types=[tf.float16],
                                                             representative_dataset=two_inputs_dataset(4)),
                                    ValueError, "all"),
    "int8-io-dynamic-range": ("two_in_dir", quantizing(inference_input_type=tf.int8), ValueError, "all"),
    "int8-io-no-optimizations": ("two_in_dir", dict(inference_output_type=tf.uint8), ValueError, "all"),
    "float16-io-int8": ("two_in_dir", quantizing(inference_input_type=tf.float16,
                                                 representative_dataset=two_inputs_dataset(4)), ValueError, "all"),
    "int8-io-16x8": ("two_in_dir", quantizing(supported_ops=[INT16X8], inference_input_type=tf.int8,
                                              representative_dataset=two_inputs_dataset(4)), ValueError, "all"),
    "int16-io-int8": ("two_in_dir", quantizing(supported_ops=[OpsSet.TFLITE_BUILTINS_INT8],
                                               inference_input_type=tf.int16, inference_output_type=tf.int16,
                                               representative_dataset=two_inputs_dataset(4)), ValueError, "all"),
    "optimizations-not-a-collection": ("two_in_dir", dict(optimizations=Optimize.DEFAULT), TypeError, None),
    "optimizations-none": ("two_in_dir", dict(optimizations=None), TypeError, None),
}
DATASET_ERROR_CASES = {
    "dataset-not-callable": ("two_in_dir", quantizing(representative_dataset=[[ZED, ALPHA]]), TypeError, None),
    "sample-of-unknown-kind": ("two_in_dir", quantizing(representative_dataset=samples(ZED)),
                               ValueError, "Unsupported value from dataset:"),
    "tuple-sample-without-dict": ("two_in_dir", quantizing(representative_dataset=samples((SERVING, [1.0]))),
                                  ValueError, "prefix"),
    "tuple-sample-unknown-signature": ("two_in_dir", quantizing(
        representative_dataset=samples(("nope", {"zed": ZED, "alpha": ALPHA}))), ValueError, "prefix"),
    "list-sample-too-short": ("two_in_dir", quantizing(representative_dataset=samples([ZED])), ValueError, "prefix"),
    "dict-sample-several-signatures": ("two_signatures_dir", quantizing(representative_dataset=samples({"x": ALPHA})),
                                       ValueError, "all"),
    "dict-sample-missing-input": ("two_in_dir", quantizing(representative_dataset=samples({"zed": ZED})),
                                  KeyError, None),
    "sample-of-another-kind-of-dtype": ("two_in_dir", quantizing(
        representative_dataset=samples({"zed": np.zeros((1, 8), np.int32), "alpha": ALPHA})), ValueError, None),
}


@pytest.mark.parametrize("cases", [SETTINGS_ERROR_CASES, DATASET_ERROR_CASES], ids=["settings", "datasets"])
def test_errors_are_tensorflows(request, cases):
    for case, (fixture, settings, error_class, agreement) in cases.items():
        model = request.getfixturevalue(fixture)
        with pytest.raises(error_class) as theirs:
            configured(tf_converter("from_saved_model", model), **settings).convert()
        with pytest.raises(error_class) as ours:
            configured(our_converter("from_saved_model", model), **settings).convert()
        expected, got = str(theirs.value), str(ours.value)
        if agreement == "all":
            assert got == expected, case
        elif agreement == "prefix":
            assert got.startswith(expected), (case, got, expected)
        elif agreement is not None:
            assert got.split(agreement)[0] == expected.split(agreement)[0] and agreement in got, (case, got, expected)


def test_factory_errors_are_tensorflows(two_in_dir):
    """The factories are TensorFlow's: same errors, by construction; checked for the common ones."""
    function = _two_inputs_module().predict
    for factory, args in (("from_saved_model", (two_in_dir, ["nope"])), ("from_concrete_functions", ([function],))):
        with pytest.raises(ValueError) as theirs:
            tf_converter(factory, *args)
        with pytest.raises(ValueError) as ours:
            our_converter(factory, *args)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="No ConcreteFunction is specified."):
        configured(our_converter("from_concrete_functions", []), optimizations=[Optimize.DEFAULT]).convert()


# Each test costs ~0.2 s of teardown (conftest's gc check): the cheap cases share one test.
V1_ERROR_CASES = {
    "uint8-without-stats": dict(inference_type=tf.uint8),
    "uint8-input-without-stats": dict(inference_input_type=tf.uint8),
    "stats-missing-an-input": dict(inference_type=tf.uint8, quantized_input_stats={"serving_default_zed": (128, 127)}),
}


def test_v1_errors_are_tensorflows(two_in_dir):
    for case, settings in V1_ERROR_CASES.items():
        with pytest.raises(ValueError) as theirs:
            configured(tf_converter("from_saved_model", two_in_dir, v1=True), **settings).convert()
        with pytest.raises(ValueError) as ours:
            configured(our_converter("from_saved_model", two_in_dir, v1=True), **settings).convert()
        assert str(ours.value) == str(theirs.value), case


# Mistakes TensorFlow's converter takes silently, converting otherwise than asked (what it gives in
# the comment); ours refuses them: (id, settings, what ours says).
STRICTER_CASES = [
    ("optimization-as-string", dict(optimizations=["DEFAULT"]), "must hold tf.lite.Optimize values"),  # float
    ("opsset-as-string", quantizing(supported_ops=["TFLITE_BUILTINS_INT8"],
                                    representative_dataset=two_inputs_dataset(4)), "must hold tf.lite.OpsSet"),  # float
    ("no-opsset", dict(supported_ops=[]), "supported_ops is empty"),  # float
    ("16x8-without-dataset", quantizing(supported_ops=[INT16X8]),
     "a `representative_dataset` must be specified"),  # dynamic range
    ("empty-dataset", quantizing(representative_dataset=samples()), "no samples"),  # calibrated on nothing
    ("sparsity-with-quantization", dict(optimizations=[Optimize.DEFAULT, Optimize.EXPERIMENTAL_SPARSITY]),
     "EXPERIMENTAL_SPARSITY with quantization"),  # sparse dynamic range
    ("bfloat16", quantizing(supported_types=[tf.bfloat16]), "bfloat16"),  # bfloat16 weights
]


def test_mistakes_tensorflow_takes_are_errors(two_in_dir):
    for case, settings, message in STRICTER_CASES:
        assert configured(tf_converter("from_saved_model", two_in_dir), **settings).convert(), case
        with pytest.raises(ValueError, match=message):
            configured(our_converter("from_saved_model", two_in_dir), **settings).convert()


def test_list_sample_with_several_signatures_is_an_error(two_signatures_dir):
    """TensorFlow feeds a list to its first subgraph (here "second", subgraphs go by key), whichever
    signature the user meant; ours asks for (signature_key, dict) tuples."""
    converter = configured(our_converter("from_saved_model", two_signatures_dir),
                           **quantizing(representative_dataset=samples([ALPHA])))
    with pytest.raises(ValueError, match=r"list sample names no signature and the model has 2 \(second, "
                                         r"serving_default\); give \(signature_key"):
        converter.convert()


def test_v1_legacy_mistakes_are_errors(two_in_dir, model_dir):
    stats = {"serving_default_zed": (128, 127), "serving_default_alpha": (128, 127)}
    float_model = configured(our_converter("from_saved_model", two_in_dir, v1=True), inference_type=tf.uint8,
                             quantized_input_stats=stats)
    # TensorFlow quantizes the inputs alone and computes the rest in float.
    with pytest.raises(ValueError, match="this model has none: set optimizations"):
        float_model.convert()
    qat = model_dir("qat_conv_dense")
    default_ranges = configured(our_converter("from_saved_model", qat, v1=True), inference_type=tf.uint8,
                                quantized_input_stats={"serving_default_x": (128, 127)}, default_ranges_stats=(0, 6))
    with pytest.raises(ValueError, match="default_ranges_stats"):
        default_ranges.convert()
    # TensorFlow quantizes to int8 when asked for int16.
    int16 = configured(our_converter("from_saved_model", qat, v1=True), inference_type=tf.int16)
    with pytest.raises(ValueError, match="inference_type must be tf.float32, tf.int8 or tf.uint8, got tf.int16"):
        int16.convert()


def test_unquantizable_op_integer_only_is_a_converter_error(tmp_path):
    """TensorFlow leaves a SIN float in integer-only int8 mode (and raises RuntimeError in 16x8);
    ours refuses in both, with a ConverterError (a RuntimeError too)."""
    rng = np.random.default_rng(12)
    m = tf.Module()
    m.w = _weight(rng, (8, 8))
    m.f = tf.function(lambda x: {"y": tf.math.sin(tf.matmul(x, m.w))},
                      input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    tf.saved_model.save(m, str(tmp_path), signatures={SERVING: m.f})
    dataset = samples(*([rng.normal(size=(1, 8)).astype(np.float32)] for _ in range(8)))
    for ops in ([OpsSet.TFLITE_BUILTINS_INT8], [INT16X8]):
        settings = quantizing(supported_ops=ops, representative_dataset=dataset)
        theirs = configured(tf_converter("from_saved_model", str(tmp_path)), **settings)
        if ops == [INT16X8]:
            with pytest.raises(RuntimeError, match="SIN"):
                theirs.convert()
        else:
            assert any(op == "SIN" and "FLOAT32" in types for op, types, _ in ops_by_type(theirs.convert()))
        with pytest.raises(ConverterError, match="SIN cannot be quantized"):
            configured(our_converter("from_saved_model", str(tmp_path)), **settings).convert()


def test_numpy_and_string_dtypes_are_taken(two_in_dir):
    """TensorFlow takes them for inference types, then fails converting; ours takes them."""
    converter = configured(our_converter("from_saved_model", two_in_dir), optimizations=[Optimize.DEFAULT],
                           supported_ops=[OpsSet.TFLITE_BUILTINS_INT8], representative_dataset=two_inputs_dataset(8),
                           inference_input_type=np.int8, inference_output_type="uint8")
    converter.convert()
    assert (converter.quantization.input_type, converter.quantization.output_type) == ("int8", "uint8")


# ----------------------------------------------------------------------------------------------
# The representative dataset in the core's terms: list order, forms, laziness.

def test_list_samples_follow_the_subgraph_inputs(two_in_dir):
    """TensorFlow's calibrator feeds a list in the order of the subgraph's inputs: the function's
    arguments (zed, alpha), not the SignatureDef's alphabetical one (alpha, zed). Checked on
    TensorFlow itself: it fails on the other order."""
    float_model = tf_converter("from_saved_model", two_in_dir).convert()
    assert model_inputs(float_model).signatures == {SERVING: ("zed", "alpha")}
    signature = model_object(float_model).signatureDefs[0]
    assert [i.name.decode() for i in signature.inputs] == ["alpha", "zed"]
    zed, alpha = np.zeros((1, 8), np.float32), np.zeros((1, 40), np.float32)
    configured(tf_converter("from_saved_model", two_in_dir), optimizations=[Optimize.DEFAULT],
               representative_dataset=lambda: iter([[zed, alpha]])).convert()
    with pytest.raises(RuntimeError):  # the 40-wide alpha fed as zed
        configured(tf_converter("from_saved_model", two_in_dir), optimizations=[Optimize.DEFAULT],
                   representative_dataset=lambda: iter([[alpha, zed]])).convert()
    samples = list(Samples(lambda: iter([[zed, alpha], {"alpha": alpha, "zed": tf.constant(zed)},
                                         (SERVING, {"zed": zed, "alpha": alpha})]), model_inputs(float_model)))
    for key, arrays in samples:
        assert key == SERVING and set(arrays) == {"zed", "alpha"}
        assert isinstance(arrays["zed"], np.ndarray) and arrays["zed"].shape == (1, 8)
        assert arrays["alpha"].shape == (1, 40)


def test_samples_are_read_again_on_each_pass_and_lazily(two_in_dir):
    float_model = tf_converter("from_saved_model", two_in_dir).convert()
    read = []

    def gen():
        for i in range(3):
            read.append(i)
            yield two_inputs(1, i)

    samples = Samples(gen, model_inputs(float_model))
    stream = iter(samples)
    assert read == []
    next(stream)
    assert read == [0]
    assert len(list(samples)) == 3 and len(list(samples)) == 3


def test_models_without_signatures_name_inputs_by_tensor(frozen_graph):
    float_model = tf_converter("from_frozen_graph", frozen_graph, ["x"], ["Identity"], v1=True).convert()
    assert model_inputs(float_model).signatures == {SERVING: ("x",)}


# ----------------------------------------------------------------------------------------------
# The float path: TensorFlow's float model, byte for byte.

def test_float_conversion_is_tensorflows(two_in_dir, frozen_graph):
    float_model = tf_converter("from_saved_model", two_in_dir).convert()
    assert our_converter("from_saved_model", two_in_dir).convert() == float_model
    assert (our_converter("from_saved_model", two_in_dir, v1=True).convert()
            == tf_converter("from_saved_model", two_in_dir, v1=True).convert())
    args = (frozen_graph, ["x"], ["Identity"])
    assert our_converter("from_frozen_graph", *args, v1=True).convert() == tf_converter("from_frozen_graph", *args,
                                                                                         v1=True).convert()
    # Settings that quantize nothing in TensorFlow (a supported type no mode uses) give its float model too.
    ours = configured(our_converter("from_saved_model", two_in_dir), optimizations=[Optimize.DEFAULT],
                      supported_types=[tf.int16])
    assert ours.convert() == float_model
    assert ours.quantization is None and ours.quantization_report is None


# ----------------------------------------------------------------------------------------------
# Quantized modes end to end.

@pytest.fixture(scope="module")
def float_two_in(two_in_dir) -> bytes:
    return tf_converter("from_saved_model", two_in_dir).convert()


def convert_two_in(two_in_dir, **settings):
    """(flatbuffer, converter) of the two-input model converted by ours with `settings`."""
    converter = configured(our_converter("from_saved_model", two_in_dir), **settings)
    return converter.convert(), converter


@pytest.fixture(scope="module")
def static_fallback(two_in_dir):
    return convert_two_in(two_in_dir, optimizations=[Optimize.DEFAULT], representative_dataset=two_inputs_dataset())


def test_static_with_float_fallback(static_fallback, float_two_in, two_in_dir):
    model, converter = static_fallback
    assert converter.quantization.method == "static" and not converter.quantization.integer_only
    assert isinstance(converter.quantization_report, tfquant.lite.LiteReport)
    assert converter.quantization_report.calibration_samples > 0
    assert io_tensors(model) == ([("FLOAT32", None, None)] * 2, [("FLOAT32", None, None)])
    fully_connected = [op for op in ops_by_type(model) if op[0] == "FULLY_CONNECTED"]
    assert fully_connected and all(types[0] == "INT8" for _, types, _ in fully_connected)
    assert sqnr_db(float_two_in, model, held_out_two_inputs()) > FLOOR_DB["int8"]
    # A list in the subgraph's input order, a tf.lite.RepresentativeDataset: the same model.
    as_list, _ = convert_two_in(two_in_dir, optimizations=[Optimize.DEFAULT],
                                representative_dataset=tf.lite.RepresentativeDataset(two_inputs_dataset(as_list=True)))
    assert as_list == model


@pytest.mark.parametrize("io", ["int8", "uint8"])
def test_integer_only_with_integer_io(two_in_dir, float_two_in, io):
    dtype = tf.as_dtype(io)
    model, converter = convert_two_in(two_in_dir, optimizations=[Optimize.DEFAULT],
                                      supported_ops=[OpsSet.TFLITE_BUILTINS_INT8],
                                      representative_dataset=two_inputs_dataset(),
                                      inference_input_type=dtype, inference_output_type=dtype)
    assert converter.quantization.integer_only and converter.quantization.input_type == io
    inputs, outputs = io_tensors(model)
    low, high = (-128, 127) if io == "int8" else (0, 255)
    for type_name, scale, zero_point in inputs + outputs:
        assert type_name == io.upper() and scale > 0 and low <= zero_point <= high
    assert not [op for op in ops_by_type(model) if "FLOAT32" in op[1] + op[2]], "an op computes in float"
    assert sqnr_db(float_two_in, model, held_out_two_inputs()) > FLOOR_DB["int8"]


def test_16x8(two_in_dir, float_two_in):
    settings = quantizing(supported_ops=[INT16X8], representative_dataset=two_inputs_dataset())
    for io in (None, tf.int16):
        model, converter = convert_two_in(two_in_dir, **settings, inference_input_type=io or tf.float32,
                                          inference_output_type=io or tf.float32)
        assert converter.quantization.activation_bits == 16 and converter.quantization.integer_only
        inputs, outputs = io_tensors(model)
        assert {t for t, _, _ in inputs + outputs} == {"INT16" if io else "FLOAT32"}
        fully_connected = [op for op in ops_by_type(model) if op[0] == "FULLY_CONNECTED"]
        assert fully_connected and all(types[:2] == ["INT16", "INT8"] for _, types, _ in fully_connected)
        assert sqnr_db(float_two_in, model, held_out_two_inputs()) > FLOOR_DB["16x8"]
    _, converter = convert_two_in(two_in_dir, **{**settings, "supported_ops": [INT16X8, OpsSet.TFLITE_BUILTINS]})
    assert not converter.quantization.integer_only


def test_dynamic_range_and_its_aliases(two_in_dir, float_two_in):
    model, converter = convert_two_in(two_in_dir, optimizations=[Optimize.DEFAULT])
    assert converter.quantization.method == "dynamic_range"
    assert io_tensors(model) == ([("FLOAT32", None, None)] * 2, [("FLOAT32", None, None)])
    weights = [types[1] for op, types, _ in ops_by_type(model) if op == "FULLY_CONNECTED"]
    assert "INT8" in weights  # the 40x64 weight (TensorFlow's 1024-element floor keeps the small ones float)
    assert "QUANTIZE" not in [op for op, _, _ in ops_by_type(model)]
    assert sqnr_db(float_two_in, model, held_out_two_inputs()) > FLOOR_DB["dynamic_range"]
    for alias in (Optimize.OPTIMIZE_FOR_SIZE, tf.lite.Optimize.OPTIMIZE_FOR_LATENCY):
        assert convert_two_in(two_in_dir, optimizations=[alias])[0] == model


def test_float16_weights(two_in_dir, float_two_in):
    model, converter = convert_two_in(two_in_dir, optimizations=[Optimize.DEFAULT], supported_types=[tf.float16],
                                      representative_dataset=two_inputs_dataset(4))  # TensorFlow ignores it here
    assert converter.quantization.method == "float16"
    assert any(op == "DEQUANTIZE" and types == ["FLOAT16"] for op, types, _ in ops_by_type(model))
    assert len(model) < 0.7 * len(float_two_in)
    assert sqnr_db(float_two_in, model, held_out_two_inputs()) > FLOOR_DB["float16"]


def test_several_signatures(two_signatures_dir):
    float_model = tf_converter("from_saved_model", two_signatures_dir).convert()
    rng = np.random.default_rng(13)
    samples = [(SERVING, {"x": rng.normal(size=(1, 40)).astype(np.float32)}) for _ in range(32)]
    samples += [("second", second_inputs(1, seed)) for seed in range(32)]
    converter = configured(our_converter("from_saved_model", two_signatures_dir, signature_keys=[SERVING, "second"]),
                           optimizations=[Optimize.DEFAULT], representative_dataset=lambda: iter(samples))
    model = converter.convert()
    assert set(Interpreter(model_content=model).get_signature_list()) == {SERVING, "second"}
    held_out = [{"x": np.random.default_rng(seed).normal(size=(8, 40)).astype(np.float32)} for seed in (1000, 1001)]
    assert sqnr_db(float_model, model, held_out, SERVING) > FLOOR_DB["int8"]
    assert sqnr_db(float_model, model, [second_inputs(8, 1000)], "second") > FLOOR_DB["int8"]


def test_quantization_aware_trained_model(model_dir):
    """DEFAULT and no dataset: static, from the fake-quant ranges (TensorFlow's QAT mode); integer only
    needs no dataset either."""
    qat = model_dir("qat_conv_dense")
    float_model = tf_converter("from_saved_model", qat).convert()
    inputs = [{"x": np.random.default_rng(seed).normal(size=(4, 4, 4, 3)).astype(np.float32)} for seed in (1000, 1001)]
    for settings in (dict(), dict(supported_ops=[OpsSet.TFLITE_BUILTINS_INT8], inference_input_type=tf.int8)):
        converter = configured(our_converter("from_saved_model", qat), optimizations=[Optimize.DEFAULT], **settings)
        model = converter.convert()
        assert converter.quantization.method == "static"
        assert converter.quantization_report.calibration_samples == 0
        assert sqnr_db(float_model, model, inputs) > FLOOR_DB["int8"]


def test_v1_legacy_uint8(model_dir):
    """inference_type=tf.uint8 with quantized_input_stats on a QAT model: uint8 in and out, the input's
    scale and zero point from (mean, std_dev): std_dev = 255 / (max - min), mean = the uint8 of 0.0."""
    qat = model_dir("qat_conv_dense")
    mean, std_dev = 121.0, 255 / 5.25
    converter = configured(our_converter("from_saved_model", qat, v1=True), inference_type=tf.uint8,
                           quantized_input_stats={"serving_default_x": (mean, std_dev)})
    model = converter.convert()
    low, high = converter.quantization.input_ranges["serving_default_x"]
    assert low == pytest.approx(-mean / std_dev) and high == pytest.approx((255 - mean) / std_dev)
    (input_type, scale, zero_point), = io_tensors(model)[0]
    assert (input_type, zero_point) == ("UINT8", 121) and scale == pytest.approx(1 / std_dev, rel=1e-5)
    assert io_tensors(model)[1][0][0] == "UINT8"
    reference = tf_converter("from_saved_model", qat, v1=True).convert()
    inputs = [{"serving_default_x": np.random.default_rng(s).uniform(-2.5, 2.75, (1, 4, 4, 3)).astype(np.float32)}
              for s in range(8)]
    assert sqnr_db(reference, model, inputs) > FLOOR_DB["int8"]


# ----------------------------------------------------------------------------------------------
# Every entry point: a static int8 model the interpreter runs, close to the entry point's float model.

def _concrete(keras3: bool, keras_model) -> tuple[list, object]:
    """([ConcreteFunction], the object holding its variables): a Keras 3 model's or a tf.Module's."""
    if keras3:
        function = tf.function(lambda feat: keras_model(feat),
                               input_signature=[tf.TensorSpec([None, 12], tf.float32, name="feat")])
        return [function.get_concrete_function()], keras_model
    rng = np.random.default_rng(14)
    m = tf.Module()
    m.w, m.v = _weight(rng, (12, 48)), _weight(rng, (48, 5))
    m.f = tf.function(lambda x: {"y": tf.matmul(tf.nn.relu(tf.matmul(x, m.w)), m.v)},
                      input_signature=[tf.TensorSpec([None, 12], tf.float32, name="x")])
    return [m.f.get_concrete_function()], m


ENTRY_POINTS = ["from_saved_model", "from_keras_model", "from_concrete_functions",
                "from_concrete_functions-no-trackable", "from_concrete_functions-keras3-trackable",
                "v1-from_saved_model", "v1-from_frozen_graph"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_entry_points(entry, two_in_dir, keras_model, frozen_graph):
    v1 = entry.startswith("v1-")
    if entry == "from_saved_model":
        args, dataset, inputs = (two_in_dir,), two_inputs_dataset(as_list=True), held_out_two_inputs()
    elif entry == "v1-from_saved_model":
        # TensorFlow's TF1 converter names inputs by tensor and fixes the batch dimension at 1.
        samples = [{f"serving_default_{k}": v for k, v in two_inputs(1, seed).items()} for seed in range(64)]
        args, dataset = (two_in_dir,), lambda: iter(samples)
        inputs = [{f"serving_default_{k}": v[:1] for k, v in batch.items()} for batch in held_out_two_inputs()]
    else:
        dataset = twelve_features_dataset()
        rows = 1 if v1 else 8  # TensorFlow's TF1 converter fixes the batch dimension at 1
        features = [np.random.default_rng(s).normal(size=(rows, 12)).astype(np.float32) for s in (1000, 1001)]
        if entry == "from_keras_model":
            args, name = (keras_model,), "feat"
        elif entry == "v1-from_frozen_graph":
            args, name = (frozen_graph, ["x"], ["Identity"]), "x"
        else:
            # The functions hold their variables weakly: `owner` keeps them alive without trackable_obj.
            funcs, owner = _concrete("keras3" in entry, keras_model)
            args, name = (funcs, None if "no-trackable" in entry else owner), ("feat" if "keras3" in entry else "x")
        inputs = [{name: f} for f in features]
    factory = entry.removeprefix("v1-").split("-")[0]
    float_model = our_converter(factory, *args, v1=v1).convert()  # TensorFlow's, but for Keras 3 (below)
    converter = configured(our_converter(factory, *args, v1=v1), optimizations=[Optimize.DEFAULT],
                           representative_dataset=dataset)
    model = converter.convert()
    assert converter.quantization.method == "static"
    assert sqnr_db(float_model, model, inputs) > FLOOR_DB["int8"]


def test_keras3_trackable_obj(keras_model):
    """TensorFlow's float model of a Keras 3 model given as `trackable_obj` leaves its variables
    uninitialized (the outputs are whatever memory held: NaN, 1e32), and its calibrator fails reading
    them; ours has TensorFlow save a tf.Module tracking the model's variables, which become constants
    (quantized: test_entry_points)."""
    funcs, trackable = _concrete(True, keras_model)
    features = np.random.default_rng(16).normal(size=(2, 12)).astype(np.float32)
    expected = keras_model(features)
    theirs = tf_converter("from_concrete_functions", funcs, trackable).convert()
    assert not np.allclose(run(theirs, {"feat": features})["output_0"], expected, atol=0.1)
    ours = our_converter("from_concrete_functions", funcs, trackable).convert()
    np.testing.assert_allclose(run(ours, {"feat": features})["output_0"], expected, rtol=1e-5, atol=1e-5)
    converter = configured(tf_converter("from_concrete_functions", funcs, trackable), optimizations=[Optimize.DEFAULT],
                           representative_dataset=twelve_features_dataset(4))
    with pytest.raises(RuntimeError, match="READ_VARIABLE"):
        converter.convert()


# ----------------------------------------------------------------------------------------------
# tfquant convert.

@pytest.fixture(scope="module")
def calibration_npz(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("lite_cli") / "samples.npz")
    rng = np.random.default_rng(15)
    np.savez(path, zed=rng.normal(size=(64, 8)).astype(np.float32), alpha=rng.normal(size=(64, 40)).astype(np.float32))
    return path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfquant: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_cli_convert_int8_only(capsys, tmp_path, two_in_dir, calibration_npz, float_two_in):
    out = str(tmp_path / "model.tflite")
    code, printed, err = run_cli(capsys, "convert", two_in_dir, out, "--int8-only", "--calibration-data",
                                 calibration_npz, "--io", "int8")
    assert code == 0, err
    assert "int8 integer only" in printed and f"TFLite model written to {out}" in printed
    with open(out, "rb") as f:
        model = f.read()
    assert {t for t, _, _ in io_tensors(model)[0] + io_tensors(model)[1]} == {"INT8"}
    assert sqnr_db(float_two_in, model, held_out_two_inputs()) > FLOOR_DB["int8"]
    assert os.listdir(tmp_path) == ["model.tflite"]  # no staging file left
    code, _, err = run_cli(capsys, "convert", two_in_dir, out, "--dynamic")
    assert code == 1
    assert_one_error_line(err, f"output file {out} exists; pass --overwrite")
    assert run_cli(capsys, "convert", two_in_dir, out, "--dynamic", "--overwrite")[0] == 0


def test_cli_convert_float_is_tensorflows(capsys, tmp_path, two_in_dir, float_two_in):
    out = str(tmp_path / "float.tflite")
    code, printed, err = run_cli(capsys, "convert", two_in_dir, out)
    assert code == 0, err
    with open(out, "rb") as f:
        assert f.read() == float_two_in


CLI_ERRORS = [
    (["--int8"], "--int8 needs --calibration-data"),
    (["--int8-only"], "a `representative_dataset` must be specified"),
    (["--dynamic", "--calibration-data", "CALIBRATION"], "--dynamic takes no --calibration-data"),
    (["--dynamic", "--io", "int8"], "must be tf.float32"),
    (["--int8", "--calibration-data", "missing.npz"], "calibration data file missing.npz does not exist"),
]


def test_cli_convert_errors_leave_no_file(capsys, tmp_path, two_in_dir, calibration_npz):
    out = str(tmp_path / "model.tflite")
    for args, fragment in CLI_ERRORS:
        args = [calibration_npz if a == "CALIBRATION" else a for a in args]
        code, _, err = run_cli(capsys, "convert", two_in_dir, out, *args)
        assert code == 1, args
        assert_one_error_line(err, fragment)
        assert os.listdir(tmp_path) == [], args


def test_cli_convert_missing_model(capsys, tmp_path):
    code, _, err = run_cli(capsys, "convert", str(tmp_path / "nope"), str(tmp_path / "m.tflite"), "--dynamic")
    assert code == 1
    assert_one_error_line(err, "SavedModel file does not exist")
    assert os.listdir(tmp_path) == []
