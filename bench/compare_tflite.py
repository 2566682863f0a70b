"""TFLite output, side by side: TensorFlow's `tf.lite.TFLiteConverter` and `tfquant.lite`'s, on the zoo.

    .venv/bin/python bench/compare_tflite.py ZOO_DIR [--models mlp resnet50 ...]
        [--modes int8 int8_only dynamic float16 16x8] [--runs 50] [--json OUT]

ZOO_DIR is what `../shared/zoo/make_zoo.py ZOO_DIR` (and `bench/make_trained.py`) builds. Everything
runs in this one process. Per model and mode, TensorFlow's converter and ours convert the same
SavedModel with the same settings and the same representative dataset (the zoo's calibration inputs,
one batch-1 sample a yield, as {input name: array}); which goes first alternates row by row, and both
were warmed up once, untimed, on the smallest model. Then the float model (TensorFlow's float
conversion of the SavedModel) and both outputs run in LiteRT (`ai_edge_litert`, 2 threads) on the
zoo's evaluation inputs (up to 64, batch 1; integer inputs quantized and outputs dequantized with
the tensors' own parameters): SQNR against the float model, top-1 agreement with it (outputs whose
last dimension is over 1), accuracy where the zoo has labels, and batch-1 latency, the median of
interleaved runs (the two quantized models take turns call by call, the order rotating each run).

The modes, as `tf.lite.TFLiteConverter` settings (both tools get the same ones):

* int8: full integer with float fallback, `optimizations=[DEFAULT]` and the dataset.
* int8_only: integer only, also `supported_ops=[TFLITE_BUILTINS_INT8]` and int8 inputs and outputs.
* dynamic: dynamic range, `optimizations=[DEFAULT]` alone.
* float16: `DEFAULT` and `supported_types=[tf.float16]`.
* 16x8: `DEFAULT`, the dataset and `supported_ops=[EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
  TFLITE_BUILTINS]` (float fallback allowed).

Convert time is the wall time of `convert()` (the factory, `from_saved_model`, is TensorFlow's for
both and not timed; ours includes TensorFlow's float conversion, which it quantizes). A tool that
fails on a row has its error's first line as its cell, and the row goes on. The bars:
SQNR at least TensorFlow's on every model and mode, size at most 1.02x, latency at most 1.05x,
convert time at most 0.5x in int8 mode.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_ptq  # noqa: E402  (the zoo helpers: samples, SQNR, sizes)
from tfquant.lite._litert import dequantized, quantized  # noqa: E402

MODELS = ("mlp", "digits_cnn", "digits_mlp", "cancer_mlp", "transformer", "mobilenet_v2", "resnet50",
          "efficientnet_b0")
MODES = ("int8", "int8_only", "dynamic", "float16", "16x8")
MODE_TITLES = {
    "int8": "full integer with float fallback (DEFAULT + dataset)",
    "int8_only": "integer only (TFLITE_BUILTINS_INT8, int8 inputs and outputs)",
    "dynamic": "dynamic range (DEFAULT alone)",
    "float16": "float16 weights (DEFAULT, supported_types=[float16])",
    "16x8": "16x8 (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 + TFLITE_BUILTINS)",
}
TOOLS = ("tf", "tfquant")
LABELS = {"tf": "TF", "tfquant": "tfq"}
NUM_THREADS = 2
MAX_EVAL = 64
# The bars (ours / TensorFlow's, and ours - TensorFlow's in dB).
SQNR_TOLERANCE_DB = 0.01  # "at least TensorFlow's" up to print precision
SIZE_BAR = 1.02
LATENCY_BAR = 1.05
TIME_BAR = 0.5
TIME_BAR_MODES = ("int8",)
STATIC_MODES = ("int8", "int8_only", "16x8")


# --- converting ---------------------------------------------------------------------------------

def configure(converter, mode: str, samples: list[dict]) -> None:
    """Set a converter (TensorFlow's or ours: the same attributes) up for `mode`."""
    import tensorflow as tf

    def dataset():
        yield from samples

    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # every mode quantizes
    if mode in ("int8", "int8_only", "16x8"):
        converter.representative_dataset = dataset
    if mode == "int8_only":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS]


def convert(tool: str, saved_model: str, mode: str, samples: list[dict]) -> tuple[bytes | None, dict]:
    """One tool's conversion: the flatbuffer (None on failure) and its time, or its error."""
    import tensorflow as tf
    import tfquant.lite as ql
    factory = tf.lite.TFLiteConverter if tool == "tf" else ql.TFLiteConverter
    try:
        converter = factory.from_saved_model(saved_model)
        configure(converter, mode, samples)
        started = time.perf_counter()
        model = converter.convert()
        seconds = time.perf_counter() - started
    except Exception as error:  # a converter that fails is the row's cell, not fatal
        return None, {"error": first_line(error)}
    result = {"seconds": seconds, "bytes": len(model)}
    if tool == "tfquant":
        report = converter.quantization_report
        if report is not None:  # (its sqnr_db is not read: it would convert a twin)
            result["float_ops"] = dict(report.ops_float)
            result["report_seconds"] = report.seconds
    return model, result


def first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


def float_model(saved_model: str) -> bytes:
    """TensorFlow's float conversion of the SavedModel: the reference."""
    import tensorflow as tf
    return tf.lite.TFLiteConverter.from_saved_model(saved_model).convert()


# --- running in LiteRT --------------------------------------------------------------------------

class Runner:
    """A flatbuffer in a LiteRT interpreter (2 threads), run by signature on float inputs (quantized
    when the model's input is integer with a scale) giving float outputs (dequantized likewise)."""

    def __init__(self, model: bytes):
        from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_content=model, num_threads=NUM_THREADS)
        keys = list(self.interpreter.get_signature_list())
        self.key = "serving_default" if "serving_default" in keys else keys[0]
        self.runner = self.interpreter.get_signature_runner(self.key)
        self.inputs = dict(self.runner.get_input_details())
        self.outputs = dict(self.runner.get_output_details())

    def __call__(self, inputs: dict) -> dict:
        fed = {name: quantized(value, self.inputs[name]) for name, value in inputs.items()}
        results = self.runner(**fed)
        return {name: dequantized(results[name], detail) for name, detail in self.outputs.items()}

    def prepare(self, inputs: dict) -> None:
        """Sizes, allocates and fills the input tensors once for `invoke`: latency is of the kernels,
        not of Python's resizing and copies."""
        self(inputs)

    def invoke(self) -> None:
        """What `Interpreter.invoke` runs, on the signature's subgraph (without its check for numpy
        views of the tensors, which a live signature runner always fails)."""
        self.runner._interpreter_wrapper.Invoke(self.runner._subgraph_index)


class Zoo:
    """A zoo model: its dataset, evaluation inputs and labels, and the float model's outputs on them."""

    def __init__(self, model_dir: str):
        import numpy as np
        self.saved_model = os.path.join(model_dir, "saved_model")
        self.samples = compare_ptq.load_samples(model_dir)
        evaluation = dict(np.load(os.path.join(model_dir, "eval.npz")))
        labels = evaluation.pop("__labels__", None)
        n = min(MAX_EVAL, len(next(iter(evaluation.values()))))
        self.inputs = [{k: v[i:i + 1] for k, v in evaluation.items()} for i in range(n)]
        self.labels = None if labels is None else labels[:n]
        self.float_model = float_model(self.saved_model)
        self.float_bytes = len(self.float_model)
        runner = Runner(self.float_model)
        started = time.perf_counter()
        self.reference = [runner(x) for x in self.inputs]
        self.float_ms = (time.perf_counter() - started) / n * 1e3
        del runner
        gc.collect()


def _timed_call(runner: Runner, inputs: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    result = runner(inputs)
    return result, time.perf_counter() - started


def measure(zoo: Zoo, models: dict[str, bytes], args: argparse.Namespace) -> dict[str, dict]:
    """SQNR, top-1 agreement, accuracy and interleaved batch-1 latency of each tool's model; a model
    that fails to load or run has an error instead. Within time budgets: SQNR on as many evaluation
    inputs as --eval-budget allows (the same for both), latency runs as many as --latency-budget."""
    import numpy as np
    results, runners, cost = {}, {}, {}
    for tool, model in models.items():
        try:
            runners[tool] = Runner(model)
            _timed_call(runners[tool], zoo.inputs[0])                  # first call: allocation
            cost[tool] = _timed_call(runners[tool], zoo.inputs[0])[1]  # prices the model
            results[tool] = {}
        except Exception as error:
            results[tool] = {"error": "running: " + first_line(error)}
            runners.pop(tool, None)
    if not runners:
        return results
    total = len(zoo.inputs)
    n_eval = min([total] + [max(4, int(args.eval_budget / sum(cost.values())))])
    for tool, runner in list(runners.items()):
        try:
            actual = [runner(x) for x in zoo.inputs[:n_eval]]
        except Exception as error:
            results[tool] = {"error": "running: " + first_line(error)}
            del runners[tool]
            continue
        reference = zoo.reference[:n_eval]
        names = [n for n in reference[0] if np.asarray(reference[0][n]).dtype.kind == "f"]
        missing = [n for n in names if n not in actual[0]]
        if missing:
            results[tool] = {"error": f"running: no output {missing[0]!r}"}
            del runners[tool]
            continue
        ref = np.concatenate([np.ravel(r[n]) for r in reference for n in names])
        got = np.concatenate([np.ravel(a[n]) for a in actual for n in names])
        results[tool]["sqnr_db"] = compare_ptq.sqnr_db(ref, got)
        results[tool]["eval_samples"] = n_eval
        classes = [n for n in names if np.ndim(reference[0][n]) >= 1 and np.shape(reference[0][n])[-1] > 1]
        if classes:
            agree = [np.argmax(r[n], -1) == np.argmax(a[n], -1) for r, a in zip(reference, actual) for n in classes]
            results[tool]["top1_agreement"] = float(np.mean(agree))
            if zoo.labels is not None:
                predicted = np.array([np.argmax(a[classes[0]], -1).ravel()[0] for a in actual])
                results[tool]["accuracy"] = float(np.mean(predicted == zoo.labels[:n_eval]))
    if runners:
        for runner in runners.values():
            runner.prepare(zoo.inputs[0])
            runner.invoke()
        runs = max(5, min(args.runs, int(args.latency_budget / sum(cost[t] for t in runners))))
        for tool, ms in interleaved_latency_ms(runners, runs).items():
            results[tool]["ms"] = ms
            results[tool]["latency_runs"] = runs
    runners.clear()
    gc.collect()
    return results


def interleaved_latency_ms(runners: dict[str, Runner], runs: int) -> dict[str, float]:
    """Median milliseconds per batch-1 invoke of each model; the models take turns call by call and
    the order rotates every run, so that load on the machine hits each alike."""
    import numpy as np
    names = list(runners)
    times = {name: [] for name in names}
    for run in range(runs):
        for name in names[run % len(names):] + names[:run % len(names)]:
            started = time.perf_counter()
            runners[name].invoke()
            times[name].append(time.perf_counter() - started)
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}


def run_row(model: str, zoo: Zoo, mode: str, tf_first: bool, args: argparse.Namespace) -> dict:
    """Convert with both tools (in turn), measure both outputs, and return the row."""
    row = {"model": model, "mode": mode, "float_bytes": zoo.float_bytes, "total_eval": len(zoo.inputs),
           "first": "tf" if tf_first else "tfquant"}
    models = {}
    for tool in (TOOLS if tf_first else TOOLS[::-1]):
        models[tool], row[tool] = convert(tool, zoo.saved_model, mode, zoo.samples)
        gc.collect()
    measured = measure(zoo, {t: m for t, m in models.items() if m is not None}, args)
    models.clear()
    for tool, values in measured.items():
        if "error" in values:
            row[tool]["error"] = values["error"]
        else:
            row[tool].update(values)
    gc.collect()
    return row


# --- tables -------------------------------------------------------------------------------------

def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(r: dict, key: str, spec: str, scale: float = 1.0) -> str:
    return format(r[key] * scale, spec) if key in r else "-"


def _ratio(a: dict, b: dict, key: str, digits: int = 2) -> str:
    if key in a and key in b and b[key]:
        return f"{a[key] / b[key]:.{digits}f}"
    return "-"


HEADER = ["model", "TF s", "tfq s", "time x", "float kB", "TF kB", "tfq kB", "size x",
          "TF SQNR", "tfq SQNR", "SQNR +dB", "TF top1", "tfq top1", "TF acc", "tfq acc",
          "TF ms", "tfq ms", "lat x", "notes"]


def _notes(row: dict) -> str:
    notes = []
    o, t = row.get("tfquant", {}), row.get("tf", {})
    n_eval = min((r.get("eval_samples", 10**9) for r in (o, t)), default=10**9)
    if n_eval < row["total_eval"]:
        notes.append(f"SQNR on {n_eval} of {row['total_eval']} eval inputs (--eval-budget)")
    runs = min((r.get("latency_runs", 10**9) for r in (o, t)), default=10**9)
    if runs < 10**9 and runs < row.get("runs", runs):
        notes.append(f"latency of {runs} runs (--latency-budget)")
    if o.get("float_ops") and row["mode"] in STATIC_MODES:  # (dynamic range and float16 compute in float)
        notes.append("tfq float ops: " + ", ".join(f"{k} {v}" for k, v in sorted(o["float_ops"].items())))
    notes.append(f"{LABELS[row['first']]} first")
    return "; ".join(notes)


def _cells(row: dict) -> list[str]:
    t, o = row["tf"], row["tfquant"]

    def tool_cells(r, keys):
        if "error" in r and not any(k in r for k in keys):
            return [_cell(r["error"])] + ["-"] * (len(keys) - 1)
        return None

    time_cells = [_fmt(t, "seconds", ".2f"), _fmt(o, "seconds", ".2f"), _ratio(o, t, "seconds")]
    # a tool that failed converting: its error is its time cell
    for i, r in enumerate((t, o)):
        if "error" in r and "seconds" not in r:
            time_cells[i] = _cell(r["error"])
    delta = f"{o['sqnr_db'] - t['sqnr_db']:+.1f}" if "sqnr_db" in o and "sqnr_db" in t else "-"
    sqnr_cells = [_fmt(t, "sqnr_db", ".1f"), _fmt(o, "sqnr_db", ".1f"), delta]
    # converted but failed running: the error is its SQNR cell
    for i, r in enumerate((t, o)):
        if "error" in r and "seconds" in r:
            sqnr_cells[i] = _cell(r["error"])
    return [row["model"], *time_cells,
            f"{row['float_bytes'] / 1e3:.0f}", _fmt(t, "bytes", ".0f", 1e-3), _fmt(o, "bytes", ".0f", 1e-3),
            _ratio(o, t, "bytes", 3), *sqnr_cells,
            _fmt(t, "top1_agreement", ".3f"), _fmt(o, "top1_agreement", ".3f"),
            _fmt(t, "accuracy", ".3f"), _fmt(o, "accuracy", ".3f"),
            _fmt(t, "ms", ".3f"), _fmt(o, "ms", ".3f"), _ratio(o, t, "ms"), _cell(_notes(row))]


def tables(rows: list[dict]) -> list[str]:
    lines = []
    for mode in MODES:
        mode_rows = [r for r in rows if r["mode"] == mode]
        if not mode_rows:
            continue
        lines.append(f"\n### {mode}: {MODE_TITLES[mode]}\n")
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "---|" * len(HEADER))
        lines += ["| " + " | ".join(_cells(row)) + " |" for row in mode_rows]
    return lines


def bars(rows: list[dict]) -> list[str]:
    """The bars: held or not held, with the offending rows (and the rows that could not be compared)."""
    lines = ["\n### Bars\n"]

    def name(row):
        return f"{row['model']} {row['mode']}"

    def has(row, key):
        return key in row["tf"] and key in row["tfquant"]

    def bar(title, checked, failing, not_compared=()):
        verdict = "not measured" if not checked and not failing else ("held" if not failing else "NOT HELD")
        lines.append(f"- {title}: **{verdict}** ({len(checked) - len(failing)}/{len(checked)} rows)")
        lines.extend(f"  - offending: {item}" for item in failing)
        lines.extend(f"  - not compared: {item}" for item in not_compared)

    def why(row, key):
        parts = [f"{LABELS[t]} fails: {row[t]['error']}" for t in TOOLS if "error" in row[t]]
        return f"{name(row)} ({'; '.join(parts) or f'no {key}'})"

    # SQNR: our failure where TensorFlow converts is an offending row; TensorFlow's failure is not compared.
    checked = [r for r in rows if has(r, "sqnr_db") or ("sqnr_db" in r["tf"] and "error" in r["tfquant"])]
    failing = []
    for r in checked:
        if "error" in r["tfquant"]:
            failing.append(f"{name(r)}: tfquant fails: {r['tfquant']['error']} (TF {r['tf']['sqnr_db']:.2f} dB)")
        elif r["tfquant"]["sqnr_db"] < r["tf"]["sqnr_db"] - SQNR_TOLERANCE_DB:
            failing.append(f"{name(r)}: tfquant {r['tfquant']['sqnr_db']:.2f} dB < TF {r['tf']['sqnr_db']:.2f} dB "
                           f"({r['tfquant']['sqnr_db'] - r['tf']['sqnr_db']:+.2f})")
    bar("SQNR at least TensorFlow's converter's (every model, every mode)", checked, failing,
        [why(r, "SQNR") for r in rows if r not in checked])

    def ratio_bar(title, considered, key, limit, ratio_digits, shown, what):
        """A bar on tfquant / TensorFlow of `key` over the `considered` rows: those above `limit` offend
        (`shown` writes one tool's value)."""
        checked = [r for r in considered if has(r, key)]
        failing = [f"{name(r)}: {r['tfquant'][key] / r['tf'][key]:.{ratio_digits}f}x "
                   f"({shown(r['tfquant'][key])} vs {shown(r['tf'][key])})"
                   for r in checked if r["tfquant"][key] > limit * r["tf"][key]]
        bar(title, checked, failing, [why(r, what) for r in considered if r not in checked])

    ratio_bar(f"size at most {SIZE_BAR}x TensorFlow's", rows, "bytes", SIZE_BAR, 3,
              lambda value: f"{value / 1e3:.0f} kB", "size")
    ratio_bar(f"batch-1 latency at most {LATENCY_BAR}x TensorFlow's", rows, "ms", LATENCY_BAR, 2,
              lambda value: f"{value:.3f} ms", "latency")
    ratio_bar(f"convert time at most {TIME_BAR}x TensorFlow's in {'/'.join(TIME_BAR_MODES)} mode",
              [r for r in rows if r["mode"] in TIME_BAR_MODES], "seconds", TIME_BAR, 2,
              lambda value: f"{value:.2f} s", "time")

    ours = [f"{name(r)}: {r['tfquant']['error']}" for r in rows if "error" in r["tfquant"]]
    if ours:
        lines.append("- tfquant failures:")
        lines += [f"  - {x}" for x in ours]
    theirs = [f"{name(r)}: {r['tf']['error']}" for r in rows if "error" in r["tf"]]
    if theirs:
        lines.append("- TensorFlow failures:")
        lines += [f"  - {x}" for x in theirs]
    return lines


# --- main ---------------------------------------------------------------------------------------

def warm_up(zoo_dir: str, model: str) -> None:
    """Each converter's one-time costs (imports, kernels, pass registration) and LiteRT's, untimed."""
    zoo = Zoo(os.path.join(zoo_dir, model))
    for tool in TOOLS:
        converted, _ = convert(tool, zoo.saved_model, "int8", zoo.samples)
        if converted is not None:
            Runner(converted)(zoo.inputs[0])
    del zoo
    gc.collect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir")
    parser.add_argument("--models", nargs="+", default=None, help="default: every zoo model of " + " ".join(MODELS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--runs", type=int, default=50, help="timed batch-1 calls per model and row (median)")
    parser.add_argument("--latency-budget", type=float, default=120.0,
                        help="seconds of timed calls per row; fewer runs (at least 5) when they would take longer")
    parser.add_argument("--eval-budget", type=float, default=120.0,
                        help="seconds per row for SQNR; fewer evaluation inputs (at least 4) when they would take "
                             "longer")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--json", help="write the rows here after each model")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow as tf
    import tfquant.lite  # noqa: F401  (imported before any clock starts)

    models = args.models or [m for m in MODELS if os.path.isdir(os.path.join(args.zoo_dir, m))]
    started = time.perf_counter()
    if not args.no_warmup:
        smallest = min(models, key=lambda m: compare_ptq.directory_bytes(os.path.join(args.zoo_dir, m)))
        warm_up(args.zoo_dir, smallest)
    rows: list[dict] = []
    for model in models:
        try:
            zoo = Zoo(os.path.join(args.zoo_dir, model))
        except Exception as error:  # no float reference: every row of the model says why
            for mode in args.modes:
                failed = {"error": "float reference: " + first_line(error)}
                rows.append({"model": model, "mode": mode, "float_bytes": 0, "total_eval": 0, "first": "tf",
                             "tf": dict(failed), "tfquant": dict(failed)})
            continue
        for mode in args.modes:
            row = run_row(model, zoo, mode, len(rows) % 2 == 0, args)
            row["runs"] = args.runs
            rows.append(row)
            print(f"[{time.perf_counter() - started:6.0f} s] {mode}: " + " | ".join(_cells(row)),
                  file=sys.stderr, flush=True)
        del zoo
        gc.collect()
        if args.json:
            with open(args.json + ".tmp", "w") as f:
                json.dump(rows, f, indent=1)
            os.replace(args.json + ".tmp", args.json)
    import ai_edge_litert
    print(f"tfquant.lite vs tf.lite.TFLiteConverter (TensorFlow {tf.__version__}), one process; models run in "
          f"ai_edge_litert {getattr(ai_edge_litert, '__version__', '?')} with {NUM_THREADS} threads. "
          "time = convert() wall seconds; SQNR (dB) against TensorFlow's float conversion on the zoo's eval "
          f"inputs (up to {MAX_EVAL}, batch 1); ms = median batch-1 invoke over up to {args.runs} interleaved runs; "
          "time x, size x, lat x = tfquant / TensorFlow; +dB = tfquant - TensorFlow.")
    print("\n".join(tables(rows) + bars(rows)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
