"""Latency side by side: float, TensorFlow's quantizer, ours on XLA and ONEDNN, on the zoo (issue #11).

    .venv/bin/python bench/compare_latency.py ZOO_DIR [--models resnet50 ...] [--json OUT [--resume]]

ZOO_DIR is what `../shared/zoo/make_zoo.py ZOO_DIR` builds (plus `bench/make_layered.py` and
`bench/make_trained.py`, whose models are taken when present). Per model, in this one process:

* float: the float SavedModel;
* TF qsm: `tf.quantization.experimental.quantize_saved_model`, static-range int8, XLA opset;
* ours XLA: tfquant, static-range int8, XLA opset;
* ours ONEDNN: tfquant, static-range int8, `opset="ONEDNN"`;
* ours ONEDNN lat: the same with `optimize_for="latency"`;
* INC: Intel Neural Compressor's static int8 output, only when `neural-compressor` is installed
  (nothing is installed for it; when absent the output says "INC not installed").

All are calibrated on the zoo's calibration samples (MIN_MAX, TensorFlow's default). Then each
output is measured against the float model as `compare_methods.measure` does: SQNR on the zoo's
evaluation inputs (batches of 32), plus a batch-1 SQNR on the first `--b1-check` inputs one at a
time (an output wrong only at batch 1 shows there), and batch-1 and batch-32 latency: the median
of several calls, the models taking turns call by call (order rotating every run) after a
warm-up, so that noise on the machine hits all alike. Printed: per model and batch size the
milliseconds and the ratio to float of every column; SQNR per column; and issue #11's bars.

With --json, the finished models and the step running are written after every step; when a
TensorFlow kernel kills the process (a segfault, seen on efficientnet_b0's XLA outputs) the
benchmark restarts itself (`--restarts`), records the step that crashed as that column's error,
and measures the model again without it (the quantized outputs are kept beside the --json file
until the run ends, so nothing is quantized twice).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_methods  # noqa: E402  (measure, interleaved latency, FloatModel, checkpoint/resume)
import compare_ptq  # noqa: E402  (quantize with either tool, SQNR, samples, sizes)

MODELS = ("mlp", "cnn_small", "digits_cnn", "transformer", "mobilenet_v2", "resnet50", "efficientnet_b0",
          "layered_cnn", "cancer_mlp", "digits_mlp")
TRAINED = ("digits_cnn", "cancer_mlp", "digits_mlp")  # trained on real data (labels in eval.npz)
COLUMNS = ("tf", "xla", "onednn", "onednn_lat", "inc")
LABELS = {"float": "float", "tf": "TF qsm XLA", "xla": "ours XLA", "onednn": "ours ONEDNN",
          "onednn_lat": "ours ONEDNN lat", "inc": "INC"}
# Issue #11's bars.
ONEDNN_BAR = 0.6  # ONEDNN ms / float ms, on these (model, batch):
ONEDNN_BAR_CASES = (("resnet50", 1), ("resnet50", 32), ("mobilenet_v2", 32))
NOISE = 0.05  # ratios within this of 1.0 are flagged as within run-to-run noise
SQNR_TOLERANCE_DB = compare_methods.SQNR_TOLERANCE_DB
CRASH = "the process died"


def inc_installed() -> str | None:
    """neural-compressor's version when `pip show` finds it, else None (nothing is installed)."""
    done = subprocess.run([sys.executable, "-m", "pip", "show", "neural-compressor"], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Version:")), "?")


def quantize_ours(model_dir: str, out_dir: str, samples: list[dict], calibration_method: str,
                  optimize_for: str | None) -> dict:
    """tfquant static-range int8 on the ONEDNN opset (latency-checked with optimize_for="latency")."""
    import tfquant
    import tfquant.quantize  # noqa: F401  (imported before the clock starts)
    from tensorflow.compiler.mlir.quantization.tensorflow import quantization_options_pb2 as pb
    options = pb.QuantizationOptions(signature_keys=["serving_default"])
    options.quantization_method.preset_method = pb.QuantizationMethod.PresetMethod.Value("METHOD_STATIC_RANGE_INT8")
    options.calibration_options.calibration_method = (
        options.calibration_options.CalibrationMethod.Value("CALIBRATION_METHOD_" + calibration_method.upper()))
    started = time.perf_counter()
    try:
        loaded = tfquant.quantize_saved_model(os.path.join(model_dir, "saved_model"), out_dir, options, samples,
                                              overwrite_output_directory=True, verbose=False, opset="ONEDNN",
                                              optimize_for=optimize_for)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"}
    report = loaded.quantization_report
    result = {"seconds": time.perf_counter() - started,
              "float_units": [f"{u.op_type} {u.node_name}: {u.reason}" for u in report.float_units]}
    check = getattr(report, "latency", None)
    if check is not None and optimize_for:
        result["latency_check"] = check.lines()[:1 + len(check.model)]
    return result


def quantize_inc(model_dir: str, out_dir: str, samples: list[dict]) -> dict:
    """Intel Neural Compressor's default static int8 (oneDNN) on the SavedModel, calibrated on the
    same samples. Only run when neural-compressor is installed; not exercised on this machine."""
    started = time.perf_counter()
    try:
        from neural_compressor import PostTrainingQuantConfig, quantization
        from neural_compressor.data import DataLoader

        class Samples:  # INC's dataset protocol: (input, label) pairs
            def __init__(self):
                self.rows = [next(iter(s.values()))[0] for s in samples]

            def __getitem__(self, i):
                return self.rows[i], 0

            def __len__(self):
                return len(self.rows)

        loader = DataLoader(framework="tensorflow", dataset=Samples(), batch_size=1)
        model = quantization.fit(os.path.join(model_dir, "saved_model"), PostTrainingQuantConfig(),
                                 calib_dataloader=loader)
        model.save(out_dir)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"}
    return {"seconds": time.perf_counter() - started}


def quantize_column(column: str, model_dir: str, out_dir: str, samples: list[dict], args) -> dict:
    """Quantize one column's output; what the quantizers print (TensorFlow's C++ summary) goes to
    stderr, so that stdout holds only the tables."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        return _quantize_column(column, model_dir, out_dir, samples, args)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _quantize_column(column: str, model_dir: str, out_dir: str, samples: list[dict], args) -> dict:
    if column == "tf":
        return compare_ptq.quantize("tf", model_dir, out_dir, "XLA", "min_max", "static_range_int8", samples)
    if column == "xla":
        return compare_ptq.quantize("tfquant", model_dir, out_dir, "XLA", args.calibration_method,
                                    "static_range_int8", samples)
    if column == "inc":
        return quantize_inc(model_dir, out_dir, samples)
    return quantize_ours(model_dir, out_dir, samples, args.calibration_method,
                         "latency" if column == "onednn_lat" else None)


def float_function(float_model, model_dir: str, work: str, row: dict):
    """The float model's callable; for a model `tf.saved_model.load` cannot rebuild (layered_cnn:
    optimizer slots in its object graph), tfquant's unquantized re-export of the same graph."""
    if float_model.function is not None:
        return
    import tensorflow as tf
    out_dir = os.path.join(work, "float_reexport")
    done = compare_ptq.quantize("tfquant", model_dir, out_dir, "XLA", "min_max", "no_quantize")
    if "error" in done:
        row["notes"].append(f"no float latency: tf.saved_model.load cannot rebuild the model and "
                            f"re-exporting it failed ({done['error']})")
        return
    float_model.function = tf.saved_model.load(out_dir).signatures["serving_default"]
    row["notes"].append("float latency of tfquant's unquantized re-export (method no_quantize) of the float "
                        "graph: tf.saved_model.load cannot rebuild the original (optimizer slots)")


def batch1_sqnr(float_model, out_dirs: dict, n: int, step) -> dict[str, tuple[float, float]]:
    """SQNR of each output against float on the first `n` evaluation inputs fed one at a time, and
    on the same inputs fed as one batch (an output wrong only at batch 1 shows as a gap)."""
    import numpy as np
    import tensorflow as tf
    n = min(n, len(float_model.reference))
    result = {}
    for column, out_dir in out_dirs.items():
        step(f"running {column}'s output (batch-1 SQNR)")
        function = tf.saved_model.load(out_dir).signatures["serving_default"]
        rows = [function(**{k: tf.constant(v[i:i + 1]) for k, v in float_model.evaluation.items()})
                [float_model.output].numpy() for i in range(n)]
        together = function(**{k: tf.constant(v[:n]) for k, v in float_model.evaluation.items()})[float_model.output]
        reference = float_model.reference[:n]
        result[column] = (compare_ptq.sqnr_db(reference, np.concatenate(rows).astype(np.float64)),
                          compare_ptq.sqnr_db(reference, together.numpy().astype(np.float64)))
    return result


def run_model(model: str, model_dir: str, work: str, args, previous: dict | None) -> dict:
    """Quantize every column (reusing outputs of a crashed earlier attempt), measure, return the row."""
    row = previous or {"model": model, "notes": []}
    row.pop("crashed", None)
    row.pop("measure_error", None)
    samples = compare_ptq.load_samples(model_dir)
    out_dirs = {}
    for column in args.columns:
        out_dir = os.path.join(work, model, column)
        if column in row and "error" in row[column]:
            continue  # quantizing or running it failed (or crashed the process) before
        if column not in row or not os.path.exists(os.path.join(out_dir, "saved_model.pb")):
            compare_methods.checkpoint(row, f"quantizing with {column}")
            row[column] = quantize_column(column, model_dir, out_dir, samples, args)
        if "error" not in row[column]:
            out_dirs[column] = out_dir
            row[column]["bytes"] = compare_ptq.directory_bytes(out_dir)
    compare_methods.checkpoint(row, "loading the float model")
    float_model = compare_methods.FloatModel(model_dir)
    float_function(float_model, model_dir, os.path.join(work, model), row)
    step = lambda text: compare_methods.checkpoint(row, text)  # noqa: E731
    try:
        b1 = batch1_sqnr(float_model, out_dirs, args.b1_check, step)
        measured = compare_methods.measure(float_model, out_dirs, args, step)
    except Exception as error:  # an output that loads or runs wrong is the row's error, not fatal
        row["measure_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        return row
    row["float"] = measured.pop("float")
    row["total_eval"] = len(float_model.reference)
    row["b1_check"] = min(args.b1_check, row["total_eval"])
    for column, values in measured.items():
        row[column].update(values)
        row[column]["sqnr_b1_db"], row[column]["sqnr_bn_db"] = b1[column]
    return row


def resume(path: str) -> tuple[list[dict], dict | None]:
    """Finished rows, and the row a crash interrupted (its crashed step recorded as the column's
    error by `compare_methods._resume`) when it is worth measuring again without that column."""
    rows = compare_methods._resume(path)
    if rows and rows[-1].get("crashed"):
        last = rows[-1]
        crashed_columns = [c for c in COLUMNS if CRASH in last.get(c, {}).get("error", "")]
        if crashed_columns and "measure_error" not in last:
            for column in crashed_columns:
                last["notes"].append(f"{LABELS[column]}: {last[column]['error']}")
            return rows[:-1], rows[-1]
        last["notes"].append(f"measuring fails: {last.get('measure_error', 'the process died')}")
    return rows, None


# --- tables -----------------------------------------------------------------------------------

def _ms(r: dict, key: str) -> str:
    return f"{r[key]:.2f}" if key in r else "-"


def _ratio(r: dict, f: dict, key: str) -> str:
    return f"{r[key] / f[key]:.2f}x" if key in r and key in f and f[key] else "-"


def latency_table(rows: list[dict], columns: list[str]) -> list[str]:
    quantized = [c for c in columns if c != "inc" or any(c in r for r in rows)]
    header = ["model", "batch", "float ms"] + [f"{LABELS[c]} ms (x float)" for c in quantized]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        f = row.get("float", {})
        for batch in (1, 32):
            key = f"ms_b{batch}"
            cells = [row["model"], str(batch), _ms(f, key)]
            for c in quantized:
                r = row.get(c, {})
                cells.append(f"{r[key]:.2f} ({_ratio(r, f, key)})" if key in r else
                             ("failed" if "error" in r else "-"))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def sqnr_table(rows: list[dict], columns: list[str]) -> list[str]:
    quantized = [c for c in columns if c != "inc" or any(c in r for r in rows)]
    header = ["model"] + [f"{LABELS[c]} SQNR dB (b1 / same batch)" for c in quantized] + ["accuracy float / " +
              " / ".join(LABELS[c] for c in quantized)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["model"]]
        for c in quantized:
            r = row.get(c, {})
            if "sqnr_db" in r:
                cells.append(f"{r['sqnr_db']:.1f} ({r['sqnr_b1_db']:.1f} / {r['sqnr_bn_db']:.1f})" if "sqnr_b1_db" in r
                             else f"{r['sqnr_db']:.1f}")
            else:
                cells.append("failed" if "error" in r else "-")
        if any("accuracy" in row.get(c, {}) for c in quantized):
            acc = [f"{row[c]['accuracy']:.3f}" if "accuracy" in row.get(c, {}) else "-" for c in quantized]
            cells.append(f"{row.get('float_accuracy', float('nan')):.3f} / " + " / ".join(acc))
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def args_b1_check(row: dict) -> int:
    return row.get("b1_check", 0)


def notes(rows: list[dict], columns: list[str]) -> list[str]:
    lines = []
    for row in rows:
        items = list(dict.fromkeys(row.get("notes", [])))
        for c in columns:
            r = row.get(c, {})
            if "error" in r and not any(r["error"] in n for n in items):
                items.append(f"{LABELS[c]} fails: {r['error']}")
            if "sqnr_b1_db" in r and abs(r["sqnr_b1_db"] - r["sqnr_bn_db"]) > 3:
                items.append(f"{LABELS[c]} differs at batch 1: {r['sqnr_b1_db']:.1f} dB on the first "
                             f"{args_b1_check(row)} inputs one at a time vs {r['sqnr_bn_db']:.1f} dB on the same "
                             f"inputs as one batch")
            if "first_call_ms" in r:
                items.append(f"{LABELS[c]} too slow for latency: a batch-1 call takes {r['first_call_ms'] / 1e3:.1f} s")
            if r.get("eval_samples", row.get("total_eval", 0)) < row.get("total_eval", 0):
                items.append(f"{LABELS[c]} SQNR on {r['eval_samples']} of {row['total_eval']} inputs (time budget)")
            if "latency_check" in r:
                items.append(f"{LABELS[c]} " + " / ".join(s.strip() for s in r["latency_check"]))
            if r.get("float_units") and c != "onednn_lat":
                items.append(f"{LABELS[c]} left {len(r['float_units'])} units float")
        if "measure_error" in row:
            items.append(f"measuring fails: {row['measure_error']}")
        if items:
            lines.append(f"- {row['model']}: " + "; ".join(items))
    return lines


def bars(rows: list[dict]) -> list[str]:
    """Issue #11's bars, pass or fail, with the numbers."""
    by_model = {r["model"]: r for r in rows}
    lines = []

    def verdict(failing: list, checked: int) -> str:
        return "PASS" if checked and not failing else ("FAIL" if failing else "NOT MEASURED")

    # 1. ONEDNN at most 0.6x float.
    cases, failing = [], []
    for model, batch in ONEDNN_BAR_CASES:
        row = by_model.get(model, {})
        f, o, key = row.get("float", {}), row.get("onednn", {}), f"ms_b{batch}"
        if key in f and key in o:
            ratio = o[key] / f[key]
            text = f"{model} batch {batch}: {o[key]:.2f} ms vs {f[key]:.2f} ms float = {ratio:.2f}x"
            cases.append(text)
            if ratio > ONEDNN_BAR:
                failing.append(text)
        else:
            failing.append(f"{model} batch {batch}: not measured")
    lines.append(f"- ONEDNN at most {ONEDNN_BAR}x float latency on ResNet50 (batch 1 and 32) and MobileNetV2 "
                 f"(batch 32): **{verdict(failing, len(cases))}**")
    lines += [f"  - {'FAIL' if c in failing else 'pass'}: {c}" for c in cases]
    lines += [f"  - FAIL: {c}" for c in failing if c not in cases]

    # 2. latency-checked never slower than float.
    checked, failing, detail = 0, [], []
    for row in rows:
        f, o = row.get("float", {}), row.get("onednn_lat", {})
        for batch in (1, 32):
            key = f"ms_b{batch}"
            if key not in f or key not in o:
                if "error" in o or "measure_error" in row or key in f:
                    failing.append(f"{row['model']} batch {batch}: not measured "
                                   f"({o.get('error') or row.get('measure_error') or 'no latency'})")
                continue
            checked += 1
            ratio = o[key] / f[key]
            text = f"{row['model']} batch {batch}: {o[key]:.2f} ms vs {f[key]:.2f} ms float = {ratio:.2f}x"
            if ratio > 1.0:
                failing.append(text + (" (within the 5% run-to-run noise)" if ratio <= 1 + NOISE else ""))
            else:
                detail.append(text)
    lines.append(f"- ONEDNN with latency checking never slower than float at batch 1 or 32, on any model: "
                 f"**{verdict(failing, checked)}** ({checked - sum(1 for x in failing if 'not measured' not in x)}"
                 f"/{checked} measured cases hold)")
    lines += [f"  - FAIL: {x}" for x in failing]
    lines.append("  - holds: " + "; ".join(detail) if detail else "  - holds: none")

    # 3. SQNR at least TF qsm's (an output of ours that fails or is not measured fails the bar; a
    # model whose TF qsm output failed is not compared).
    for column in ("xla", "onednn", "onednn_lat", "inc"):
        checked, failing, held, not_compared = 0, [], [], []
        for row in rows:
            t, o = row.get("tf", {}), row.get(column, {})
            if column not in row:
                continue
            if "sqnr_db" not in o:
                why = o.get("error") or row.get("measure_error") or "not measured"
                failing.append(f"{row['model']}: {LABELS[column]} has no SQNR ({why})")
                continue
            if "sqnr_db" not in t:
                not_compared.append(f"{row['model']} ({LABELS[column]} {o['sqnr_db']:.2f} dB; TF qsm: "
                                    f"{t.get('error') or row.get('measure_error') or 'not measured'})")
                continue
            checked += 1
            text = f"{row['model']}: {o['sqnr_db']:.2f} dB vs TF {t['sqnr_db']:.2f} dB ({o['sqnr_db'] - t['sqnr_db']:+.2f})"
            (failing if o["sqnr_db"] < t["sqnr_db"] - SQNR_TOLERANCE_DB else held).append(text)
        if not checked and not failing:
            continue
        lines.append(f"- SQNR of {LABELS[column]} at least TF qsm's on every model: **{verdict(failing, checked)}** "
                     f"({len(held)}/{checked + sum(1 for x in failing if 'no SQNR' in x)} hold)")
        lines += [f"  - FAIL: {x}" for x in failing]
        lines.append("  - holds: " + ("; ".join(held) or "none"))
        if not_compared:
            lines.append("  - not compared (TF qsm's output failed): " + "; ".join(not_compared))
    return lines


def report(rows: list[dict], columns: list[str], inc: str | None, started: float, args) -> None:
    import tensorflow as tf
    for row in rows:  # float accuracy from the zoo's meta.json, for the SQNR table
        meta = os.path.join(args.zoo_dir, row["model"], "meta.json")
        if os.path.exists(meta):
            with open(meta) as f:
                accuracy = json.load(f).get("float_accuracy")
            if accuracy is not None:
                row["float_accuracy"] = accuracy
    print(f"\ntfquant vs TensorFlow {tf.__version__} quantize_saved_model, one process, {os.cpu_count()} cores; "
          f"static-range int8 calibrated on the zoo's calibration samples (TF MIN_MAX, ours "
          f"{args.calibration_method}); latency = median of up to {args.runs} batch-1 / {args.runs32} batch-32 calls, "
          f"the models taking turns, after warm-up; SQNR against float on the zoo's evaluation inputs "
          f"(batches of 32). "
          + (f"INC {inc}." if inc else "INC not installed (pip show neural-compressor finds nothing): no INC column."))
    print("\n### Latency (ms; ratio to float)\n")
    print("\n".join(latency_table(rows, columns)))
    print(f"\n### SQNR against float (dB; in brackets: on the first {args.b1_check} evaluation inputs fed one at a "
          "time / the same inputs fed as one batch)\n")
    print("\n".join(sqnr_table(rows, columns)))
    print("\n### Bars (issue #11)\n")
    print("\n".join(bars(rows)))
    extra = notes(rows, columns)
    if extra:
        print("\n### Notes\n")
        print("\n".join(extra))
    print(f"\ntotal {time.perf_counter() - started:.0f} s (this process)")


def supervise(argv: list[str], args) -> int:
    """Run the benchmark in a child process; after a crash, resume it (up to --restarts times)."""
    command = [sys.executable, os.path.abspath(__file__), *argv, "--no-supervise"]
    for attempt in range(args.restarts + 1):
        done = subprocess.run(command + (["--resume"] if attempt or args.resume else []))
        if done.returncode == 0:
            return 0
        print(f"[the benchmark process died with status {done.returncode}; resuming]", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir")
    parser.add_argument("--models", nargs="+", default=None, help="default: every zoo model of " + " ".join(MODELS))
    parser.add_argument("--columns", nargs="+", default=None, choices=COLUMNS[:-1],
                        help="quantized columns (default all; INC is added when installed)")
    parser.add_argument("--runs", type=int, default=15, help="timed batch-1 calls per model (median)")
    parser.add_argument("--runs32", type=int, default=5, help="timed batch-32 calls per model (median)")
    parser.add_argument("--latency-budget", type=float, default=40.0,
                        help="seconds of timed calls per model and batch size; fewer runs (at least 3 at batch 1, "
                             "1 at batch 32) when they would take longer")
    parser.add_argument("--eval-budget", type=float, default=30.0, help="seconds per output for SQNR")
    parser.add_argument("--slow-call", type=float, default=5.0, help="no latency for an output slower per batch-1 call")
    parser.add_argument("--b1-check", type=int, default=8, help="evaluation inputs for the batch-1 SQNR")
    parser.add_argument("--calibration-method", default="min_max", help="ours; TensorFlow's is MIN_MAX")
    parser.add_argument("--json", help="write the results here, and after each step what is done and what runs")
    parser.add_argument("--resume", action="store_true", help="continue the run whose --json this is")
    parser.add_argument("--restarts", type=int, default=4, help="with --json: resume this often after a crash")
    parser.add_argument("--no-supervise", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.json and not args.no_supervise:
        return supervise([a for a in argv if a != "--resume"], args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
    started = time.perf_counter()
    inc = inc_installed()
    columns = list(args.columns or COLUMNS[:-1]) + (["inc"] if inc else [])
    args.columns = columns
    if not inc:
        print("INC not installed (pip show neural-compressor finds nothing); no INC column", file=sys.stderr, flush=True)
    models = args.models or [m for m in MODELS if os.path.isdir(os.path.join(args.zoo_dir, m))]
    work = (args.json + ".work") if args.json else os.path.join("/tmp", f"tfquant-latency-{os.getpid()}")
    rows, pending = resume(args.json) if args.resume and os.path.exists(args.json) else ([], None)
    compare_methods._CHECKPOINT.update(path=args.json, rows=rows)
    done = {r["model"] for r in rows}
    for model in models:
        if model in done:
            continue
        previous = pending if pending and pending["model"] == model else None
        row = run_model(model, os.path.join(args.zoo_dir, model), work, args, previous)
        rows.append(row)
        compare_methods.checkpoint(None)
        shutil.rmtree(os.path.join(work, model), ignore_errors=True)
        f = row.get("float", {})
        summary = ", ".join(f"{c} {row[c].get('ms_b1', float('nan')):.2f}/{row[c].get('ms_b32', float('nan')):.1f} ms "
                            f"{row[c].get('sqnr_db', float('nan')):.1f} dB" for c in columns if c in row)
        print(f"[{time.perf_counter() - started:6.0f} s] {model}: float {f.get('ms_b1', float('nan')):.2f}/"
              f"{f.get('ms_b32', float('nan')):.1f} ms; {summary}", file=sys.stderr, flush=True)
    report(rows, columns, inc, started, args)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
