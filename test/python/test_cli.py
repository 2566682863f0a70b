"""The `tfquant` command line: `tfquant quantize FLOAT OUT --calibration-data x.npz [flags]`.

Most runs call `tfquant.tools.cli.main` in this process; a few run the installed console
scripts in a subprocess (each pays ~5 s of TensorFlow import), marked slow.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from test_quantize_e2e import (FRESH_SEED, SERVING, fresh_sqnr, hash_tree, int8_weights, leftovers,  # noqa: E402
                               product_ops)
from tfquant import calibrate as calibrate_lib, pipeline, quantize as quantize_lib  # noqa: E402
from tfquant.options import resolve_options  # noqa: E402
from tfquant.tools import cli  # noqa: E402

BIN = os.path.dirname(sys.executable)
# Measured fresh-input SQNR of the matmul model calibrated on the 64 samples below: 34.7 dB.
FLOOR_DB = 31.5


@pytest.fixture(scope="module")
def matmul(model_dir):
    return model_dir("matmul")


@pytest.fixture(scope="module")
def calibration_npz(matmul, tmp_path_factory) -> str:
    """64 samples for the matmul model, as the CLI takes them: one array per input, samples on axis 0."""
    path = str(tmp_path_factory.mktemp("calibration") / "samples.npz")
    np.savez(path, x=np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32))
    return path


def tfquant(capsys, *args: str) -> tuple[int, str, str]:
    """Run `tfquant ARGS` in this process; returns (exit code, stdout, stderr)."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfquant: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def default_run(matmul, calibration_npz, tmp_path_factory):
    """`tfquant quantize` with default flags and --dump-ir, in this process; (out dir, dump dir, stdout)."""
    root = tmp_path_factory.mktemp("cli")
    out, dump = str(root / "out"), str(root / "dump")
    code = cli.main(["quantize", matmul, out, "--calibration-data", calibration_npz, "--dump-ir", dump])
    assert code == 0
    return out, dump


# ----------------------------------------------------------------------------------------------
# Subprocess runs of the installed scripts.

@pytest.mark.slow
def test_quantize_command(matmul, calibration_npz, tmp_path):
    out = str(tmp_path / "out")
    before = hash_tree(matmul)
    result = subprocess.run([os.path.join(BIN, "tfquant"), "quantize", matmul, out,
                             "--calibration-data", calibration_npz], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"^MatMul +2/2$", result.stdout, re.M), result.stdout
    assert "calibrated signature 'serving_default' on 64 samples" in result.stdout
    reported = float(re.search(r"SQNR vs float on 32 calibration samples, serving_default/output_0: ([\d.]+) dB",
                               result.stdout).group(1))
    assert reported >= FLOOR_DB
    assert result.stdout.rstrip().endswith(f"quantized model written to {out}")
    assert hash_tree(matmul) == before
    model = tf.saved_model.load(out)
    assert fresh_sqnr(tf.saved_model.load(matmul), model, matmul)["output_0"] >= FLOOR_DB


@pytest.mark.slow
def test_bad_input_exits_1_with_one_line(matmul, calibration_npz, tmp_path):
    result = subprocess.run([os.path.join(BIN, "tfquant"), "quantize", str(tmp_path / "missing"),
                             str(tmp_path / "out"), "--calibration-data", calibration_npz],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_error_line(result.stderr, "SavedModel path does not exist", str(tmp_path / "missing"))
    assert sorted(os.listdir(tmp_path)) == []


def test_dumped_stage_replays_in_tfquant_opt(default_run):
    """The module before the quantize stage, run through the stage's pipeline string, gives the dumped result."""
    _, dump = default_run
    stage = os.path.join(dump, "1_quantize")
    with open(os.path.join(stage, "pipeline.txt")) as f:
        pipeline_text = f.read().strip()
    result = subprocess.run([os.path.join(BIN, "tfquant-opt"), os.path.join(stage, "input.mlirbc"),
                             f"--pass-pipeline={pipeline_text}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # The file the stage's last pass wrote: "<index>_<pass>.mlir", the highest index.
    last = max(os.listdir(os.path.join(stage, "builtin_module_no-symbol-name")), key=lambda f: int(f.split("_")[0]))
    with open(os.path.join(stage, "builtin_module_no-symbol-name", last)) as f:
        dumped = f.read()

    def normalized(text: str) -> list[str]:
        # The dump elides large constants; compare everything else.
        text = re.sub(r"dense(_resource)?<[^>]*>", "DENSE", text)
        return [line for line in text.splitlines() if line.strip() and not line.startswith("//")]

    assert normalized(result.stdout) == normalized(dumped)
    assert result.stdout.count('"tfq.quantized_op"') == 2


# ----------------------------------------------------------------------------------------------
# Flags, in this process.

def test_dump_ir_writes_each_stage(default_run):
    _, dump = default_run
    resolved = resolve_options(None)
    stages = [stage for stage in pipeline.build(resolved) if stage.pipeline is not None]
    assert sorted(os.listdir(dump)) == [f"{i}_{stage.name}" for i, stage in enumerate(stages)]
    for i, stage in enumerate(stages):
        directory = os.path.join(dump, f"{i}_{stage.name}")
        with open(os.path.join(directory, "pipeline.txt")) as f:
            text = f.read().strip()
        assert text == str(stage.pipeline)
        assert pipeline.parse_pipeline(text) == stage.pipeline
        assert os.path.getsize(os.path.join(directory, "input.mlirbc")) > 0
        passes = sorted(os.listdir(os.path.join(directory, "builtin_module_no-symbol-name")))
        assert len(passes) == len(stage.pipeline.passes)
    assert "tfq-lower-to-xla" in text


def test_default_flags_give_per_channel_xla(default_run):
    out, _ = default_run
    assert product_ops(out) == {("XlaDotV2", "int8"): 2}
    for weight in int8_weights(out):
        np.testing.assert_array_equal(np.abs(weight).max(axis=0), 127)


def test_opset_tf(capsys, matmul, calibration_npz, tmp_path):
    code, out, err = tfquant(capsys, "quantize", matmul, str(tmp_path / "out"), "--calibration-data",
                             calibration_npz, "--opset", "TF")
    assert code == 0, err
    assert "opset TF" in out
    assert product_ops(str(tmp_path / "out")) == {("MatMul", "int32"): 2}


def test_per_tensor(capsys, matmul, calibration_npz, tmp_path):
    dump = str(tmp_path / "dump")
    code, out, err = tfquant(capsys, "quantize", matmul, str(tmp_path / "out"), "--calibration-data",
                             calibration_npz, "--per-tensor", "--dump-ir", dump)
    assert code == 0, err
    assert "per-tensor weights" in out
    with open(os.path.join(dump, "0_pre_calibration", "pipeline.txt")) as f:
        assert "tfq-assign-quantization-spec{method=static activation-bits=8 per-channel=false" in f.read()
    # One scale per weight: only the widest column reaches 127.
    for weight in int8_weights(str(tmp_path / "out")):
        assert np.abs(weight).max() == 127
        assert np.sum(np.abs(weight).max(axis=0) == 127) < weight.shape[1]


@pytest.mark.slow
def test_calibration_method_flag(capsys, matmul, calibration_npz, default_run, tmp_path):
    out_dir = str(tmp_path / "out")
    code, out, err = tfquant(capsys, "quantize", matmul, out_dir, "--calibration-data", calibration_npz,
                             "--calibration-method", "histogram_mse_bruteforce")
    assert code == 0, err
    assert "calibration CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE" in out
    quantized, default = tf.saved_model.load(out_dir), tf.saved_model.load(default_run[0])
    assert fresh_sqnr(tf.saved_model.load(matmul), quantized, matmul)["output_0"] >= FLOOR_DB
    x = tf.constant(np.random.default_rng(FRESH_SEED).normal(size=(8, 16)).astype(np.float32))
    assert not np.array_equal(quantized.signatures[SERVING](x=x)["output_0"],
                              default.signatures[SERVING](x=x)["output_0"])


# ----------------------------------------------------------------------------------------------
# Errors: exit code 1, one line, nothing written.

@pytest.mark.parametrize("case", ["missing-data", "npy-data", "corrupt-npz", "bad-input-name", "id-outside-table",
                                  "id-outside-int32", "stablehlo", "weight-only-on-tf", "repeated-signature",
                                  "output-not-empty", "empty-output", "missing-model", "output-is-input"])
def test_error_exits_1_with_one_line(capsys, model_dir, matmul, calibration_npz, tmp_path, monkeypatch, case):
    out = str(tmp_path / "out")
    model, data, flags = matmul, calibration_npz, []
    if case == "missing-data":
        data = str(tmp_path / "nope.npz")
        expected = (f"calibration data file {data} does not exist", "TfRecordRepresentativeDatasetSaver")
    elif case == "npy-data":
        data = str(tmp_path / "x.npy")
        np.save(data, np.zeros((4, 16), np.float32))
        expected = (f"calibration data file {data} is a .npy array", "expected a .npz holding one array per input")
    elif case == "corrupt-npz":
        data = str(tmp_path / "corrupt.npz")
        with open(calibration_npz, "rb") as source, open(data, "wb") as corrupt:
            corrupt.write(source.read()[:64])
        expected = (f"calibration data file {data} is not a readable .npz",)
    elif case in ("id-outside-table", "id-outside-int32"):
        model, data = model_dir("embedding"), str(tmp_path / "ids.npz")
        np.savez(data, ids=np.full((4, 5), 50 if case == "id-outside-table" else 2**40))
        expected = (("sample 0 for signature 'serving_default' (inputs ids: int32 (1, 5)) fails in TensorFlow: "
                     "indices[0,0] = 50 is not in [0, 20)") if case == "id-outside-table" else
                    "sample 0 for signature 'serving_default': input 'ids' holds 1099511627776, outside the range",)
    elif case == "repeated-signature":
        flags = ["--signature-keys", SERVING, SERVING]
        expected = (f"signature_keys lists signature '{SERVING}' more than once",)
    elif case == "empty-output":
        # TensorFlow would write into the working directory; tfquant used to leave the model beside it.
        (tmp_path / "cwd").mkdir()
        monkeypatch.chdir(tmp_path / "cwd")
        out, expected = "", ("output_directory is an empty string",)
    elif case == "bad-input-name":
        data = str(tmp_path / "bad.npz")
        np.savez(data, y=np.zeros((4, 16), np.float32))
        expected = ("sample 0", "unknown input 'y'")
    elif case == "stablehlo":
        flags, expected = ["--opset", "STABLEHLO"], ("STABLEHLO", "not supported")
    elif case == "weight-only-on-tf":
        flags, expected = ["--method", "weight_only_int8", "--opset", "TF"], ("does not support weight-only",)
    elif case == "output-not-empty":
        os.makedirs(out)
        open(os.path.join(out, "keep.txt"), "w").close()
        expected = ("is not empty",)
    elif case == "missing-model":
        model, expected = str(tmp_path / "missing"), ("SavedModel path does not exist",)
    else:
        out, expected = matmul, ("must not be, contain or lie inside",)
    before, out_before = hash_tree(matmul), hash_tree(out)
    code, stdout, err = tfquant(capsys, "quantize", model, out, "--calibration-data", data, *flags)
    assert code == 1
    assert stdout == ""
    assert_one_error_line(err, *expected)
    assert hash_tree(matmul) == before and hash_tree(out) == out_before
    assert leftovers(str(tmp_path)) == [] and not any(name.startswith("tfquant_") for name in os.listdir(tmp_path))


def test_debug_shows_the_traceback(capsys, matmul, tmp_path):
    code, _, err = tfquant(capsys, "quantize", matmul, str(tmp_path / "out"), "--calibration-data",
                           str(tmp_path / "nope.npz"), "--debug")
    assert code == 1
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("tfquant: error: ")


@pytest.mark.parametrize("where", ["calibration", "export"])
def test_ctrl_c_exits_130_with_one_line_and_leaves_nothing(capsys, matmul, calibration_npz, tmp_path, monkeypatch,
                                                           where):
    def interrupted(*args, **kwargs):
        if where == "export":
            # What Ctrl-C during the save leaves in the staging directory.
            with open(os.path.join(args[1], "saved_model.pb"), "wb") as f:
                f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(*((calibrate_lib, "calibrate") if where == "calibration"
                          else (quantize_lib, "export_saved_model")), interrupted)
    code, stdout, err = tfquant(capsys, "quantize", matmul, str(tmp_path / "out"), "--calibration-data", calibration_npz)
    assert (code, stdout, err) == (130, "", "tfquant: interrupted\n")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_sigint_exits_130_with_one_line_and_leaves_nothing(matmul, tmp_path):
    """A real SIGINT to the installed script, while it calibrates on many samples."""
    data = str(tmp_path / "many.npz")
    np.savez(data, x=np.random.default_rng(0).normal(size=(100_000, 16)).astype(np.float32))
    out, dump = tmp_path / "out", tmp_path / "dump"
    # SIG_DFL: a shell may start background jobs with SIGINT ignored, and Python keeps it ignored.
    process = subprocess.Popen([os.path.join(BIN, "tfquant"), "quantize", matmul, str(out), "--calibration-data",
                                data, "--dump-ir", str(dump)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # The first stage's dump appears once TensorFlow is imported and the model read, just before
    # calibration, which takes seconds on this many samples.
    deadline = time.monotonic() + 120
    while not (dump / f"0_{pipeline.PRE_CALIBRATION}").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert (process.returncode, stdout, stderr) == (130, "", "tfquant: interrupted\n")
    assert sorted(os.listdir(tmp_path)) == ["dump", "many.npz"]


def test_tags_and_kept_variables(model_dir, tmp_path, capsys):
    model = model_dir("cond_dense")  # its If branches' MatMuls stay float (--unit): their weights stay variables
    samples = str(tmp_path / "samples.npz")
    np.savez(samples, x=np.random.default_rng(0).normal(size=(16, *model.inputs["x"].shape[1:])).astype(np.float32),
             **{k: np.stack([v] * 16) for k, v in model.inputs.items() if k != "x"})
    code, _, err = tfquant(capsys, "quantize", model, str(tmp_path / "kept"), "--calibration-data", samples,
                           "--keep-variables", "--unit", "func_name=(?!serving_default$).*,method=no_quantize")
    assert code == 0, err
    kept = tf.train.list_variables(str(tmp_path / "kept" / "variables" / "variables"))
    assert sum("VARIABLE_VALUE" in name for name, _ in kept) == 2, kept
    tf1 = model_dir("tf1_builder")
    np.savez(samples, x=np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32))
    code, _, err = tfquant(capsys, "quantize", tf1, str(tmp_path / "tf1"), "--calibration-data", samples)
    assert code == 1 and "['serve']" in err and "cpu" in err, err
    code, _, err = tfquant(capsys, "quantize", tf1, str(tmp_path / "tf1"), "--calibration-data", samples,
                           "--tags", "serve", "cpu", "--signature-keys", "predict")
    assert code == 0, err
