"""SavedModel -> MLIR -> SavedModel: the round trip keeps signatures, names and numerics exactly."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402
from tensorflow.python.saved_model import loader_impl  # noqa: E402

import tfquant  # noqa: E402
from conftest import keep_context  # noqa: E402
from models import MODELS  # noqa: E402
from tfquant.exporter import VARIABLE_THRESHOLD  # noqa: E402
from tfquant.importer import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from tfquant.mlir import ir, module_funcs, name_of, ops_named, symbol_table  # noqa: E402

NAMES = sorted(MODELS)
INIT_OP = "__saved_model_init_op"


def _hash_tree(root: str) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    hashes = {}
    for directory, _, files in os.walk(root):
        for f in files:
            path = os.path.join(directory, f)
            with open(path, "rb") as fh:
                hashes[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return hashes


class RoundTrip:
    """One model imported and exported; hashes of the input directory before and after."""

    def __init__(self, src, out: str):
        self.src = src
        self.out = out
        self.hashes_before = _hash_tree(src)
        self.module = tfquant.import_saved_model(src, tags=src.tags)
        keep_context(self.module)
        with self.module.context:
            tfquant.export_saved_model(self.module, out)
        self.hashes_after = _hash_tree(src)


@pytest.fixture(scope="session")
def roundtrip(model_dir, tmp_path_factory):
    """`roundtrip(name) -> RoundTrip`, done once per session."""
    cache: dict[str, RoundTrip] = {}

    def get(name: str) -> RoundTrip:
        if name not in cache:
            src = model_dir(name)
            cache[name] = RoundTrip(src, str(tmp_path_factory.mktemp("exported") / name))
        return cache[name]

    return get


_LOADED: dict[str, object] = {}


def _load(path: str, tags: list[str] | None = None):
    if path not in _LOADED:
        _LOADED[path] = tf.saved_model.load(path, tags=tags)
    return _LOADED[path]


def _original(src, key: str):
    """The input model's signature function (run by its builder where TensorFlow cannot load it)."""
    if key in src.info.get("functions", {}):
        return src.info["functions"][key]
    return _load(src, src.tags).signatures[key]


def _run(fn, inputs: dict) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in fn(**{n: tf.constant(v) for n, v in inputs.items()}).items()}


def _assert_same_outputs(expected: dict, actual: dict, what: str) -> None:
    assert sorted(actual) == sorted(expected), what
    for key, want in expected.items():
        got = actual[key]
        assert got.dtype == want.dtype, f"{what}: output {key} dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{what}: output {key} shape {got.shape} != {want.shape}"
        scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * scale, err_msg=f"{what}: output {key}")


def _signature_defs(path: str) -> dict:
    (meta_graph,) = loader_impl.parse_saved_model(path).meta_graphs
    return dict(meta_graph.signature_def)


def _tensor_info(info) -> tuple:
    shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    return info.dtype, shape


# --- numerics -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_outputs_match(name, roundtrip):
    rt = roundtrip(name)
    exported = _load(rt.out, rt.src.tags)
    assert sorted(exported.signatures.keys()) == sorted(rt.src.signatures)
    for key, inputs in rt.src.cases:
        _assert_same_outputs(_run(_original(rt.src, key), inputs), _run(exported.signatures[key], inputs),
                             f"{name}/{key}")


@pytest.mark.parametrize("name", NAMES)
def test_to_concrete_function_matches(name, roundtrip):
    rt = roundtrip(name)
    with rt.module.context:
        functions = {key: tfquant.to_concrete_function(rt.module, key) for key in rt.src.signatures}
    for key, inputs in rt.src.cases:
        _assert_same_outputs(_run(_original(rt.src, key), inputs), _run(functions[key], inputs),
                             f"{name}/{key} via to_concrete_function")


# --- signatures ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_signature_defs_identical(name, roundtrip):
    rt = roundtrip(name)
    before, after = _signature_defs(rt.src), _signature_defs(rt.out)
    # TensorFlow 2 writes the init op as a SignatureDef; a TF1 model may have none.
    assert sorted(set(after) - {INIT_OP}) == sorted(set(before) - {INIT_OP})
    before.pop(INIT_OP, None)
    for key, want in before.items():
        got = after[key]
        assert got.method_name == want.method_name, key
        assert sorted(got.inputs) == sorted(want.inputs), key
        assert sorted(got.outputs) == sorted(want.outputs), key
        for name_, info in want.inputs.items():
            if info.name.startswith(f"{key}_"):  # TF2's naming, which TF1 models need not follow
                assert got.inputs[name_].name == info.name, (key, name_)
            assert _tensor_info(got.inputs[name_]) == _tensor_info(info), (key, name_)
        for name_, info in want.outputs.items():
            assert _tensor_info(got.outputs[name_]) == _tensor_info(info), (key, name_)


def test_tags_kept(roundtrip):
    rt = roundtrip("matmul")
    tags = [list(mg.meta_info_def.tags) for mg in loader_impl.parse_saved_model(rt.out).meta_graphs]
    assert tags == [["serve"]]


def test_saved_model_cli_show(roundtrip):
    rt = roundtrip("two_signatures")
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([cli, "show", "--all", "--dir", rt.out], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    for word in ("serving_default", "other", "features", "logits", "sum", "prod", "(-1, 40)"):
        assert word in proc.stdout


# --- the imported module ----------------------------------------------------------------------

def _is_private(fn: ir.Operation) -> bool:
    return ("sym_visibility" in fn.attributes
            and ir.StringAttr(fn.attributes["sym_visibility"]).value == "private")


def _dict_attrs(fn: ir.Operation, key: str, attr: str) -> list[str]:
    return [ir.StringAttr(ir.DictAttr(d)[attr]).value for d in ir.ArrayAttr(fn.attributes[key])]


@pytest.mark.parametrize("name", NAMES)
def test_module_functions_and_names(name, roundtrip):
    rt = roundtrip(name)
    module = rt.module
    with module.context, ir.Location.unknown():
        assert module.operation.verify()
        public = {n: f for n, f in symbol_table(module).items() if not _is_private(f)}
        assert sorted(public) == sorted(rt.src.signatures)
        sig_defs = _signature_defs(rt.src)
        for key, fn in public.items():
            fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
            input_names = _dict_attrs(fn, "arg_attrs", INPUT_NAME)
            output_names = _dict_attrs(fn, "res_attrs", OUTPUT_NAME)
            assert sorted(input_names) == sorted(sig_defs[key].inputs)
            assert sorted(output_names) == sorted(sig_defs[key].outputs)
            assert len(set(input_names)) == len(input_names) == len(fn_type.inputs)
            assert len(set(output_names)) == len(output_names) == len(fn_type.results)
            # Each argument's type agrees with the SignatureDef entry of its name.
            for arg_name, arg_type in zip(input_names, fn_type.inputs):
                dtype, shape = _tensor_info(sig_defs[key].inputs[arg_name])
                want = tfquant.tf_attrs.tensor_type(tf.as_dtype(dtype), shape)
                assert arg_type == want, (key, arg_name)
        # Every tf op carries its node name as a name location.
        for fn in module_funcs(module):
            for op in fn.regions[0].blocks[0].operations:
                op = op.operation
                if op.name.startswith("tf."):
                    assert name_of(op.location), f"{op.name} in {name} has no node-name location: {op.location}"


def test_node_names_are_locations(roundtrip):
    rt = roundtrip("conv_bn")
    with rt.module.context:
        fn = symbol_table(rt.module)["serving_default"]
        convs = [name_of(op.location) for op in ops_named(fn, "tf.Conv2D")]
        assert len(convs) == 2 and all("Conv2D" in n.rsplit("/", 1)[-1] for n in convs), convs
        assert ops_named(fn, "tf.FusedBatchNormV3")
        assert ops_named(fn, "tf.Relu6")
    # The exported graph keeps those names.
    exported = _load(rt.out).signatures["serving_default"]
    graph_nodes = {op.name for op in exported.graph.get_operations()}
    for f in exported.graph.as_graph_def().library.function:
        graph_nodes.update(n.name for n in f.node_def)
    assert set(convs) <= graph_nodes, sorted(graph_nodes)


def test_if_branches_are_private_functions(roundtrip):
    rt = roundtrip("cond")
    with rt.module.context:
        table = symbol_table(rt.module)
        main = table["serving_default"]
        ifs = ops_named(main, "tf.If", "tf.StatelessIf")
        assert sorted(op.name for op in ifs) == ["tf.If", "tf.StatelessIf"], [op.name for op in ifs]
        for op in ifs:
            for attr in ("then_branch", "else_branch"):
                branch = ir.FlatSymbolRefAttr(op.attributes[attr]).value
                assert branch in table, branch
                assert _is_private(table[branch]), branch
        # Nothing of the variable read inside the branch or of the captured tensor is left but constants.
        assert not ops_named(rt.module.operation, "tf.ReadVariableOp", "tf.VarHandleOp", "tf.Placeholder")
        consts = [np.asarray(op.attributes["value"]) for op in ops_named(rt.module.operation, "tf.Const")]
        assert sum(c.shape == (4, 4) for c in consts) == 2  # the variable and the captured tensor


def test_while_body_and_cond_are_private_functions(roundtrip):
    rt = roundtrip("while")
    with rt.module.context:
        table = symbol_table(rt.module)
        (loop,) = ops_named(table["serving_default"], "tf.While", "tf.StatelessWhile")
        for attr in ("body", "cond"):
            name = ir.FlatSymbolRefAttr(loop.attributes[attr]).value
            assert _is_private(table[name]), name
        # The variable the body reads is frozen into a constant (passed into the loop).
        assert not ops_named(rt.module.operation, "tf.ReadVariableOp", "tf.VarHandleOp")
        consts = ops_named(rt.module.operation, "tf.Const")
        assert any(np.asarray(op.attributes["value"]).shape == (8, 8) for op in consts)


@pytest.mark.parametrize("name", NAMES)
def test_variables_frozen(name, roundtrip):
    rt = roundtrip(name)
    with rt.module.context:
        stateful = ops_named(rt.module.operation, "tf.ReadVariableOp", "tf.VarHandleOp", "tf.ResourceGather",
                             "tf.Placeholder")
        assert not stateful, [op.name for op in stateful]


# --- weights ---------------------------------------------------------------------------------

def _largest_const(path: str) -> int:
    (meta_graph,) = loader_impl.parse_saved_model(path).meta_graphs
    nodes = list(meta_graph.graph_def.node)
    for f in meta_graph.graph_def.library.function:
        nodes.extend(f.node_def)
    largest = 0
    for node in nodes:
        if node.op == "Const":
            largest = max(largest, tensor_util.MakeNdarray(node.attr["value"].tensor).size)
    return largest


def test_weights_of_two_signatures_kept_apart(roundtrip):
    # Both signatures' frozen weights are nodes named "unknown"; each must keep its own values.
    rt = roundtrip("two_signatures")
    stored = tf.train.list_variables(os.path.join(rt.out, "variables", "variables"))
    assert sum(shape == [40, 30] for _, shape in stored) == 2, stored
    assert _largest_const(rt.out) <= VARIABLE_THRESHOLD


def test_big_weight_stored_as_variable(roundtrip):
    rt = roundtrip("conv_bn")  # its second conv kernel has 3*3*8*16 = 1152 elements
    with rt.module.context:
        sizes = [np.asarray(op.attributes["value"]).size for op in ops_named(rt.module.operation, "tf.Const")
                 if not isinstance(op.attributes["value"], ir.OpaqueAttr)]
    assert max(sizes) > VARIABLE_THRESHOLD  # the import froze it into a constant
    assert _largest_const(rt.out) <= VARIABLE_THRESHOLD
    stored = tf.train.list_variables(os.path.join(rt.out, "variables", "variables"))
    assert any(int(np.prod(shape)) == 3 * 3 * 8 * 16 for _, shape in stored), stored


@pytest.mark.parametrize("name", NAMES)
def test_input_directory_untouched(name, roundtrip):
    rt = roundtrip(name)
    assert rt.hashes_before, "no files hashed"
    assert rt.hashes_after == rt.hashes_before


# --- choosing signatures ---------------------------------------------------------------------

def test_import_selected_signature(model_dir, tmp_path):
    src = model_dir("two_signatures")
    module = tfquant.import_saved_model(src, signature_keys=["other"])
    with module.context:
        assert [n for n, f in symbol_table(module).items() if not _is_private(f)] == ["other"]
        tfquant.export_saved_model(module, str(tmp_path / "out"))
    assert sorted(_signature_defs(str(tmp_path / "out"))) == ["__saved_model_init_op", "other"]


# --- errors ----------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    path = str(tmp_path / "does_not_exist")
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        tfquant.import_saved_model(path)


def test_not_a_saved_model(tmp_path):
    path = tmp_path / "just_a_dir"
    path.mkdir()
    (path / "readme.txt").write_text("not a model")
    with pytest.raises(OSError, match="just_a_dir"):
        tfquant.import_saved_model(str(path))


def test_unknown_signature_key(model_dir):
    src = model_dir("two_signatures")
    with pytest.raises(ValueError) as info:
        tfquant.import_saved_model(src, signature_keys=["serving_default", "no_such_key"])
    message = str(info.value)
    assert "no_such_key" in message
    assert "serving_default" in message and "other" in message


def test_unknown_tags(model_dir):
    src = model_dir("matmul")
    with pytest.raises(RuntimeError) as info:
        tfquant.import_saved_model(src, tags=["gpu", "mytag"])
    message = str(info.value)
    assert "gpu" in message and "mytag" in message and "serve" in message
