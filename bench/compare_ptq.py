"""Side by side: TensorFlow's `quantize_saved_model` and tfquant's, on the zoo models.

    .venv/bin/python bench/compare_ptq.py ZOO_DIR [--models mlp digits_cnn ...] [--opset XLA]

ZOO_DIR is what `../shared/zoo/make_zoo.py ZOO_DIR` builds. Each quantizer runs in its own
subprocess (same calibration samples, same options: static-range int8, one signature), so
neither warms caches for the other; both outputs are then evaluated in one process on the
zoo's evaluation inputs. Printed per model: quantize time, output size, SQNR against the
float model, top-1 agreement with the float model, accuracy where labels exist, batch-1
latency; and tfquant's figures as ratios to TensorFlow's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODELS = ("mlp", "cnn_small", "digits_cnn", "transformer", "mobilenet_v2", "resnet50")  # and layered_cnn
TOOLS = ("tf", "tfquant")


# Our names of the methods that calibrate on the representative dataset.
CALIBRATED_METHODS = ("static_range_int8", "static_range_int16x8")


def load_samples(model_dir: str) -> list[dict]:
    """The zoo's calibration inputs as a representative dataset: one sample (batch 1) a row."""
    import numpy as np
    calib = dict(np.load(os.path.join(model_dir, "calib.npz")))
    names = list(calib)
    return [{k: calib[k][i:i + 1] for k in names} for i in range(len(calib[names[0]]))]


def quantize(tool: str, model_dir: str, out_dir: str, opset: str, calibration_method: str,
             method: str = "static_range_int8", samples: list[dict] | None = None) -> dict:
    """Run one quantizer on one zoo model (in this process); returns its time or its error.

    `method` is tfquant's name of it (`tfquant.options.METHODS`): TensorFlow's own methods go
    in the options' preset for both tools; tfquant's extensions only to tfquant (`method=`).
    The calibrated methods get `samples` (default: the zoo's calibration inputs); the others
    no dataset. tfquant's result also lists the units it left float, and why.
    """
    import tensorflow as tf
    from tensorflow.compiler.mlir.quantization.tensorflow import quantization_options_pb2 as pb

    presets = {"static_range_int8": "METHOD_STATIC_RANGE_INT8", "dynamic_range_int8": "METHOD_DYNAMIC_RANGE_INT8",
               "weight_only_int8": "METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8"}
    if tool == "tf" and method not in presets:
        return {"error": f"TensorFlow's quantize_saved_model has no method {method}"}
    if method in CALIBRATED_METHODS:
        samples = load_samples(model_dir) if samples is None else samples
    else:
        samples = None
    options = pb.QuantizationOptions(signature_keys=["serving_default"], op_set=pb.OpSet.Value(opset))
    if method in presets:
        options.quantization_method.preset_method = pb.QuantizationMethod.PresetMethod.Value(presets[method])
    if tool == "tfquant" and method in CALIBRATED_METHODS:
        options.calibration_options.calibration_method = (
            options.calibration_options.CalibrationMethod.Value("CALIBRATION_METHOD_" + calibration_method.upper()))
    saved_model = os.path.join(model_dir, "saved_model")
    # Both quantizers' modules are imported before the clock starts.
    quantize_fn = tf.quantization.experimental.quantize_saved_model
    if tool == "tfquant":
        import tfquant
        import tfquant.quantize  # noqa: F401  (tfquant's API is imported lazily)
    started = time.perf_counter()
    try:
        if tool == "tf":
            quantize_fn(saved_model, out_dir, options, samples, overwrite_output_directory=True)
        else:
            loaded = tfquant.quantize_saved_model(saved_model, out_dir, options, samples,
                                                  overwrite_output_directory=True, verbose=False,
                                                  method=None if method in presets else method)
    except Exception as error:  # a quantizer that fails is reported in the table, not fatal
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
    result = {"seconds": time.perf_counter() - started}
    if tool == "tfquant":
        result["float_units"] = [f"{u.op_type} {u.node_name}: {u.reason}"
                                 for u in loaded.quantization_report.float_units]
    return result


def evaluate(model_dir: str, out_dir: str, latency_runs: int = 30) -> dict:
    """SQNR, top-1 agreement, accuracy, size and batch-1 latency of a quantized model."""
    import numpy as np
    import tensorflow as tf

    evaluation = dict(np.load(os.path.join(model_dir, "eval.npz")))
    labels = evaluation.pop("__labels__", None)
    output, reference = _float_outputs(os.path.join(model_dir, "saved_model"), evaluation)
    quant_fn = tf.saved_model.load(out_dir).signatures["serving_default"]
    feed = {k: tf.constant(v) for k, v in evaluation.items()}
    actual = quant_fn(**feed)[output].numpy().astype(np.float64)
    result = {
        "sqnr_db": sqnr_db(reference, actual),
        "top1_agreement": float(np.mean(reference.argmax(-1) == actual.argmax(-1))),
        "bytes": directory_bytes(out_dir),
        "latency_ms": _latency_ms(quant_fn, {k: tf.constant(v[:1]) for k, v in evaluation.items()}, latency_runs),
    }
    if labels is not None:
        result["accuracy"] = float(np.mean(actual.argmax(-1) == labels))
    return result


def sqnr_db(reference, actual) -> float:
    """Signal-to-quantization-noise ratio of `actual` against `reference`, in dB."""
    import numpy as np
    noise = np.sum((np.asarray(reference, np.float64) - np.asarray(actual, np.float64)) ** 2)
    return float(10 * np.log10(np.sum(np.asarray(reference, np.float64) ** 2) / max(noise, 1e-30)))


def directory_bytes(path: str) -> int:
    """Bytes of every file under `path`."""
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def _float_outputs(saved_model: str, evaluation: dict):
    """The float model's first output (by key) on `evaluation`, through TensorFlow's v1 loader,
    which reads models that `tf.saved_model.load` cannot rebuild (optimizer slots)."""
    import numpy as np
    import tensorflow as tf
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved_model)
        signature = meta_graph.signature_def["serving_default"]
        output = sorted(signature.outputs)[0]
        feed = {signature.inputs[k].name: v for k, v in evaluation.items()}
        return output, session.run(signature.outputs[output].name, feed).astype(np.float64)


def _latency_ms(function, feed, runs: int) -> float:
    import numpy as np
    for _ in range(3):
        function(**feed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function(**feed)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e3)


def _child(args: argparse.Namespace) -> int:
    result = quantize(args.tool, args.model_dir, args.out_dir, args.opset, args.calibration_method)
    print(json.dumps(result))
    return 0


def _run_child(tool: str, model_dir: str, out_dir: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", tool, model_dir, out_dir, "--opset", args.opset,
               "--calibration-method", args.calibration_method]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:120]}"}
    return json.loads(lines[-1])


def _row(model: str, results: dict) -> list[str]:
    tf_r, ours = results["tf"], results["tfquant"]
    cells = [model]
    for r in (tf_r, ours):
        if "error" in r:
            cells += ["failed"] * 6
            continue
        cells += [f"{r['seconds']:.2f}", f"{r['bytes'] / 1e3:.0f}", f"{r['sqnr_db']:.1f}",
                  f"{r['top1_agreement']:.3f}", f"{r['accuracy']:.3f}" if "accuracy" in r else "-",
                  f"{r['latency_ms']:.2f}"]
    if "error" in tf_r or "error" in ours:
        cells += ["-", "-", "-", "-"]
    else:
        cells += [f"{ours['seconds'] / tf_r['seconds']:.2f}", f"{ours['bytes'] / tf_r['bytes']:.2f}",
                  f"{ours['sqnr_db'] - tf_r['sqnr_db']:+.1f}", f"{ours['latency_ms'] / tf_r['latency_ms']:.2f}"]
    return cells


HEADER = ["model", "TF s", "TF kB", "TF SQNR", "TF top1", "TF acc", "TF ms",
          "tfq s", "tfq kB", "tfq SQNR", "tfq top1", "tfq acc", "tfq ms",
          "time x", "size x", "SQNR +dB", "latency x"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir", nargs="?")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--opset", default="XLA", choices=["XLA", "TF"])
    parser.add_argument("--calibration-method", default="min_max")
    parser.add_argument("--child", choices=TOOLS, dest="tool")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.tool:
        args.model_dir, args.out_dir = args.zoo_dir, args.out_dir
        return _child(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = tempfile.mkdtemp(prefix="tfquant-bench-")
    table, everything = [], {}
    for model in args.models:
        model_dir = os.path.join(args.zoo_dir, model)
        results = {}
        for tool in TOOLS:
            out_dir = os.path.join(work, model, tool)
            results[tool] = _run_child(tool, model_dir, out_dir, args)
            if "error" not in results[tool]:
                results[tool].update(evaluate(model_dir, out_dir))
        everything[model] = results
        table.append(_row(model, results))
        print(" | ".join(table[-1]), file=sys.stderr, flush=True)
    print(f"opset {args.opset}; tfquant calibration {args.calibration_method}; "
          "time x, size x, latency x = tfquant / TensorFlow; SQNR +dB = tfquant - TensorFlow")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in table:
        print("| " + " | ".join(row) + " |")
    for model, results in everything.items():
        for tool, r in results.items():
            if "error" in r:
                print(f"{model} {tool}: {r['error']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
