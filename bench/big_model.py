"""A model past 2 GB: tfquant quantizes it within 3x its size in memory; TensorFlow's quantizer fails.

    .venv/bin/python bench/big_model.py WORK_DIR [--layers 8] [--width 8192]

Builds a SavedModel of `--layers` Dense + Relu layers of `--width` x `--width` float32 weights
(8 x 8192 x 8192: 2.1 GB of weights), then, each in its own subprocess so that peak RSS is its
own: tfquant's import + export round trip, tfquant's static-range int8 quantization, and
TensorFlow's `quantize_saved_model` with the same options and samples. Prints time, peak RSS
as a ratio to the model's size, output size, and the SQNR of tfquant's output against float.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

SAMPLES = 8


def build(path: str, layers: int, width: int) -> None:
    """The float model, one layer's weights in memory at a time while creating them."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    module = tf.Module()
    module.kernels = [tf.Variable(rng.standard_normal((width, width), dtype=np.float32) * np.float32(width ** -0.5),
                                  name=f"dense_{i}/kernel") for i in range(layers)]
    module.biases = [tf.Variable(np.full((width,), 0.01, np.float32), name=f"dense_{i}/bias") for i in range(layers)]

    @tf.function(input_signature=[tf.TensorSpec([None, width], tf.float32, name="x")])
    def serve(x):
        for kernel, bias in zip(module.kernels, module.biases):
            x = tf.nn.relu(tf.matmul(x, kernel) + bias)
        return {"y": x}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def _samples(width: int) -> list[dict]:
    import numpy as np
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, width), dtype=np.float32)} for _ in range(SAMPLES)]


def run(tool: str, model: str, out: str, width: int) -> dict:
    """One tool on the model in this process: its time, or its error."""
    import tensorflow as tf
    from tensorflow.compiler.mlir.quantization.tensorflow import quantization_options_pb2 as pb

    options = pb.QuantizationOptions(signature_keys=["serving_default"])
    options.quantization_method.preset_method = pb.QuantizationMethod.PresetMethod.METHOD_STATIC_RANGE_INT8
    import tfquant
    import tfquant.quantize  # noqa: F401  (imported before the clock starts)
    started = time.perf_counter()
    try:
        if tool == "roundtrip":
            module = tfquant.import_saved_model(model)
            with module.context:
                tfquant.export_saved_model(module, out)
        elif tool == "tfquant":
            loaded = tfquant.quantize_saved_model(model, out, options, _samples(width), verbose=False,
                                                  overwrite_output_directory=True)
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "sqnr_db": loaded.quantization_report.sqnr_db}
        else:
            tf.quantization.experimental.quantize_saved_model(model, out, options, _samples(width),
                                                              overwrite_output_directory=True)
    except Exception as error:  # a tool that fails is reported in the table
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:150]}",
                "seconds": time.perf_counter() - started}
    return {"seconds": time.perf_counter() - started}


def _in_subprocess(args: list[str]) -> tuple[dict, float]:
    """Run this script with `args`; its JSON answer and its peak RSS in bytes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, __file__, "-", *args], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if before * 1024 > peak:
        raise RuntimeError("an earlier subprocess had a higher peak: run each tool from a fresh parent")
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:150]}, peak
    return json.loads(proc.stdout.strip().splitlines()[-1]), peak


def _bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(path) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dir")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "build":
            build(args.child[1], args.layers, args.width)
            print(json.dumps({}))
        else:
            print(json.dumps(run(*args.child, args.width)))
        return
    os.makedirs(args.work_dir, exist_ok=True)
    model = os.path.join(args.work_dir, f"dense_{args.layers}x{args.width}")
    if not os.path.isdir(model):
        answer, _ = _in_subprocess(["--child", "build", model, "-", "--layers", str(args.layers),
                                    "--width", str(args.width)])
        if "error" in answer:
            sys.exit(f"building the model failed: {answer['error']}")
    size = _bytes(model)
    print(f"model: {args.layers} x Dense {args.width}x{args.width}, {size / 1e9:.2f} GB on disk")
    print(f"{'tool':<28}{'time':>9}{'peak RSS':>11}{'x size':>8}{'output':>10}  result")
    for tool in ("roundtrip", "tfquant", "tf"):
        out = os.path.join(args.work_dir, f"out_{tool}")
        shutil.rmtree(out, ignore_errors=True)
        # A fresh parent per tool: RUSAGE_CHILDREN reports the largest child so far.
        proc = subprocess.run([sys.executable, "-c", (
            "import sys, resource, json; sys.argv=[''];"
            f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r});"
            "import big_model as b;"
            f"a, p = b._in_subprocess(['--child', {tool!r}, {model!r}, {out!r}, '--width', '{args.width}']);"
            "print(json.dumps([a, p]))")], capture_output=True, text=True)
        answer, peak = json.loads(proc.stdout.strip().splitlines()[-1])
        output = f"{_bytes(out) / 1e9:.2f} GB" if os.path.isdir(out) else "-"
        result = answer.get("error") or ", ".join(f"SQNR {v:.1f} dB" for v in answer.get("sqnr_db", {}).values()) or "ok"
        name = {"roundtrip": "tfquant import+export", "tfquant": "tfquant static int8", "tf": "TF quantize_saved_model"}
        print(f"{name[tool]:<28}{answer.get('seconds', 0):>8.1f}s{peak / 1e9:>9.2f}GB{peak / size:>8.2f}{output:>10}  "
              f"{result}")


if __name__ == "__main__":
    main()
