"""Import + export speed against TensorFlow's own MLIR importer, in one process.

    .venv/bin/python bench/import_export.py ZOO_DIR [--models mobilenet_v2 resnet50]

For each zoo model: tfquant's `import_saved_model` + `export_saved_model`, against
`tf.mlir.experimental.convert_function` on the frozen signature (TensorFlow's importer, import
alone, freezing not counted). Best of `--repeats` runs each; also checks that the exported
model's outputs equal the original's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir")
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    import tfquant
    import tfquant.exporter  # noqa: F401  (the API is imported lazily)

    print("| model | tfquant import s | tfquant export s | tfquant total s | TF convert_function s | ratio | max |diff| |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        path = os.path.join(args.zoo_dir, model, "saved_model")
        out = tempfile.mkdtemp(prefix="tfquant-ie-")
        state = {}

        def do_import():
            state["module"] = tfquant.import_saved_model(path, ["serving_default"])

        def do_export():
            shutil.rmtree(out, ignore_errors=True)
            with state["module"].context:
                tfquant.export_saved_model(state["module"], out)

        import_s = _best(do_import, args.repeats)
        export_s = _best(do_export, args.repeats)
        loaded = tf.saved_model.load(path)  # keep it alive: the signature needs its variables
        signature = loaded.signatures["serving_default"]
        frozen = convert_to_constants.convert_variables_to_constants_v2(signature)
        tf_s = _best(lambda: tf.mlir.experimental.convert_function(frozen, pass_pipeline=""), args.repeats)
        evaluation = dict(np.load(os.path.join(args.zoo_dir, model, "eval.npz")))
        evaluation.pop("__labels__", None)
        feed = {k: tf.constant(v[:4]) for k, v in evaluation.items()}
        reference = signature(**feed)
        exported = tf.saved_model.load(out).signatures["serving_default"](**feed)
        diff = max(float(np.max(np.abs(reference[k].numpy() - exported[k].numpy()))) for k in reference)
        total = import_s + export_s
        print(f"| {model} | {import_s:.2f} | {export_s:.2f} | {total:.2f} | {tf_s:.2f} | {total / tf_s:.2f} | {diff:.1e} |",
              flush=True)
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
