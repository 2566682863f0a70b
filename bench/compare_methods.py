"""Every quantization method, tfquant against TensorFlow's `quantize_saved_model`, on the zoo.

    .venv/bin/python bench/compare_methods.py ZOO_DIR [--models mlp resnet50 ...]
        [--methods static_range_int8 dynamic_range_int8 ...] [--runs 11] [--runs32 5] [--json OUT]

ZOO_DIR is what `../shared/zoo/make_zoo.py ZOO_DIR` builds. Everything runs in this one
process: per model and method (and opset), TensorFlow's quantizer and ours run one after the
other (which goes first alternates row by row; both were warmed up once, untimed, on the
smallest model), then the float model and both outputs are measured on the zoo's evaluation
inputs: output size, SQNR against the float model, and batch-1 and batch-32 latency, the median
of several runs in which the models take turns call by call (the order rotating each run), so
that machine noise hits all alike. tfquant's figures are also given as ratios to TensorFlow's.

The methods, by tfquant's names (`tfquant.options.METHODS`):

* static_range_int8: TensorFlow's METHOD_STATIC_RANGE_INT8, XLA opset; both calibrated on the
  zoo's calibration samples (MIN_MAX, TensorFlow's default).
* dynamic_range_int8: METHOD_DYNAMIC_RANGE_INT8 on each of the XLA, TF and UNIFORM_QUANTIZED
  opsets, both tools on the same opset; where TensorFlow refuses or fails, its error is the cell.
* weight_only_int8: METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8, XLA opset.
* weight_only_float16, static_range_int16x8 (calibrated): tfquant's own methods, which
  `quantize_saved_model` has no counterpart of; reported against the float model.

A model whose kernels crash the process (TensorFlow segfaults on some quantized graphs) cannot be
caught in-process: with --json, the finished rows and the step running are saved after each
step, and rerunning with --resume records that step as the row's error and goes on.

Quantization-aware training is not compared: the zoo has no QAT model.
Both tools get the same options proto, so each applies its own defaults where the proto says
nothing (notably: tfquant quantizes weights per channel unless told otherwise, TensorFlow per
tensor except on static range XLA).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_ptq  # noqa: E402  (the zoo helpers: quantize, SQNR, sizes, float references)

MODELS = ("mlp", "cnn_small", "digits_cnn", "transformer", "mobilenet_v2", "resnet50", "efficientnet_b0")
# method -> (TensorFlow has it, opsets compared)
METHODS = {
    "static_range_int8": (True, ("XLA",)),
    "dynamic_range_int8": (True, ("XLA", "TF", "UNIFORM_QUANTIZED")),
    "weight_only_int8": (True, ("XLA",)),
    "weight_only_float16": (False, ("XLA",)),
    "static_range_int16x8": (False, ("XLA",)),
}
# Issue #9's bars.
SIZE_BAR = 1.05  # ours / TensorFlow's
FLOAT_SIZE_BARS = {"weight_only_int8": 0.30, "weight_only_float16": 0.52}  # ours / float, on FLOAT_SIZE_MODELS
FLOAT_SIZE_MODELS = ("mlp", "resnet50")
SQNR_TOLERANCE_DB = 0.01  # "at least TensorFlow's" up to print precision


def interleaved_latency_ms(functions: dict, feed: dict, runs: int, warmup: int = 2) -> dict[str, float]:
    """Median milliseconds per call of each function on `feed`; the functions take turns call by
    call and the order rotates every run, so that load on the machine hits each alike."""
    import numpy as np
    names = [n for n, f in functions.items() if f is not None]
    for _ in range(warmup):
        for name in names:
            functions[name](**feed)
    times = {name: [] for name in names}
    for run in range(runs):
        for name in names[run % len(names):] + names[:run % len(names)]:
            started = time.perf_counter()
            functions[name](**feed)
            times[name].append(time.perf_counter() - started)
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}


class FloatModel:
    """A zoo model's float side: reference outputs, size, and a callable for latency."""

    def __init__(self, model_dir: str):
        import numpy as np
        import tensorflow as tf
        self.saved_model = os.path.join(model_dir, "saved_model")
        evaluation = dict(np.load(os.path.join(model_dir, "eval.npz")))
        self.labels = evaluation.pop("__labels__", None)
        self.evaluation = evaluation
        self.output, self.reference = compare_ptq._float_outputs(self.saved_model, evaluation)
        self.bytes = compare_ptq.directory_bytes(self.saved_model)
        try:
            self.function = tf.saved_model.load(self.saved_model).signatures["serving_default"]
        except Exception:  # a model tf.saved_model.load cannot rebuild: no float latency
            self.function = None
        self.feed_all = {k: tf.constant(v) for k, v in evaluation.items()}
        self.feed_1 = {k: tf.constant(v[:1]) for k, v in evaluation.items()}
        self.feed_32 = {k: tf.constant(v[:32]) for k, v in evaluation.items()}


def _timed(function, feed):
    started = time.perf_counter()
    result = function(**feed)
    return result, time.perf_counter() - started


def measure(float_model: FloatModel, out_dirs: dict[str, str], args: argparse.Namespace,
            step=lambda text: None) -> dict[str, dict]:
    """Size, SQNR, top-1 agreement and interleaved batch-1 / batch-32 latency of each output
    (by tool), and the float model's latency in the same turns (under "float").

    Within time budgets (some opsets' kernels are 100x slower than float): the first batch-1
    call of each model prices it; SQNR is measured on as many evaluation inputs as
    `--eval-budget` seconds allow (the same inputs for every tool); latency runs shrink to fit
    `--latency-budget`, and a model whose batch-1 call takes over `--slow-call` seconds gets no
    latency (its second call is reported, as `first_call_ms`)."""
    import numpy as np
    import tensorflow as tf
    results = {"float": {"bytes": float_model.bytes}}
    functions = {"float": float_model.function}
    cost = {}
    for tool, out_dir in out_dirs.items():
        functions[tool] = tf.saved_model.load(out_dir).signatures["serving_default"]
        results[tool] = {"bytes": compare_ptq.directory_bytes(out_dir)}
    probe = {}
    for tool, function in functions.items():  # prices each model: a warm-up call, then a timed one
        if function is None:
            continue
        step(f"running {tool}'s output (first batch-1 calls)")
        probe[tool], _ = _timed(function, float_model.feed_1)  # the first call also builds the graph
        cost[tool] = _timed(function, float_model.feed_1)[1]
        if cost[tool] > args.slow_call:
            results[tool]["first_call_ms"] = cost[tool] * 1e3
    quantized = [t for t in out_dirs]
    total = len(float_model.reference)
    n_eval = min([total] + [max(1, int(args.eval_budget / cost[t])) for t in quantized])
    reference = float_model.reference[:n_eval]
    for tool in quantized:
        step(f"running {tool}'s output (SQNR, batches of 32)")
        chunks = [probe[tool][float_model.output].numpy()] if n_eval == 1 else [functions[tool](**{k: tf.constant(v[i:i + 32]) for k, v in float_model.evaluation.items()})
                  [float_model.output].numpy() for i in range(0, n_eval, 32)]
        actual = np.concatenate(chunks)[:n_eval].astype(np.float64)
        results[tool].update({
            "sqnr_db": compare_ptq.sqnr_db(reference, actual),
            "top1_agreement": float(np.mean(reference.argmax(-1) == actual.argmax(-1))),
            "eval_samples": n_eval,
        })
        if float_model.labels is not None:
            results[tool]["accuracy"] = float(np.mean(actual.argmax(-1) == float_model.labels[:n_eval]))
    fast = {t: f for t, f in functions.items() if f is not None and cost[t] <= args.slow_call}
    step("timing batch-1 calls")
    if fast:
        runs = max(3, min(args.runs, int(args.latency_budget / sum(cost[t] for t in fast))))
        for tool, ms in interleaved_latency_ms(fast, float_model.feed_1, runs, warmup=0).items():
            results[tool]["ms_b1"] = ms
    fast32 = {t: f for t, f in fast.items() if 32 * cost[t] <= args.latency_budget / 2}
    step("timing batch-32 calls")
    if fast32:
        cost32 = {t: _timed(f, float_model.feed_32)[1] for t, f in fast32.items()}  # warm-up and price
        runs32 = max(1, min(args.runs32, int(args.latency_budget / sum(cost32.values()))))
        for tool, ms in interleaved_latency_ms(fast32, float_model.feed_32, runs32, warmup=0).items():
            results[tool]["ms_b32"] = ms
    return results


def run_row(model: str, model_dir: str, float_model: FloatModel, method: str, opset: str, work: str,
            tf_first: bool, args: argparse.Namespace, samples: list[dict]) -> dict:
    """Quantize with both tools (or ours alone), measure, and return the row's results."""
    has_tf, _ = METHODS[method]
    tools = ["tf", "tfquant"] if has_tf else ["tfquant"]
    if not tf_first:
        tools.reverse()
    row = {"model": model, "method": method, "opset": opset}
    out_dirs = {}
    for tool in tools:
        out_dir = os.path.join(work, model, method, opset, tool)
        checkpoint(row, f"quantizing with {tool}")
        row[tool] = compare_ptq.quantize(tool, model_dir, out_dir, opset, args.calibration_method, method, samples)
        if "error" not in row[tool]:
            out_dirs[tool] = out_dir
            row[tool]["bytes"] = compare_ptq.directory_bytes(out_dir)
    row["float"] = {"bytes": float_model.bytes}
    if opset == "UNIFORM_QUANTIZED" and model in args.uq_quantize_only:
        row["float"] = {"bytes": float_model.bytes}
        for tool, out_dir in out_dirs.items():
            row[tool]["bytes"] = compare_ptq.directory_bytes(out_dir)
        row["not_measured"] = ("SQNR and latency not measured: TensorFlow's UniformQuantized* CPU kernels take "
                               "100x+ float's time (see cnn_small), too long for this model (--uq-quantize-only)")
        shutil.rmtree(os.path.join(work, model, method, opset), ignore_errors=True)
        return row
    try:
        measured = measure(float_model, out_dirs, args, lambda step: checkpoint(row, step))
    except Exception as error:  # an output that loads or runs wrong is a row's error, not fatal
        row["measure_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        return row
    row["float"] = measured.pop("float")
    row["total_eval"] = len(float_model.reference)
    for tool, values in measured.items():
        row[tool].update(values)
    if not args.keep:
        shutil.rmtree(os.path.join(work, model, method, opset), ignore_errors=True)
    return row


# --- checkpoints: a model that kills the process (a segfault in a kernel) is a row's error ---

_CHECKPOINT = {"path": None, "rows": []}


def checkpoint(row: dict | None, step: str = "") -> None:
    """Write the finished rows and the step now running to --json, so that `--resume` after a
    crash skips what is done and records the step that crashed as the row's error."""
    if not _CHECKPOINT["path"]:
        return
    state = {"rows": _CHECKPOINT["rows"], "pending": {**row, "step": step} if row else None}
    with open(_CHECKPOINT["path"] + ".tmp", "w") as f:
        json.dump(state, f, indent=1)
    os.replace(_CHECKPOINT["path"] + ".tmp", _CHECKPOINT["path"])


def _resume(path: str) -> list[dict]:
    """The rows of an earlier run's --json; its pending step, if any, crashed the process."""
    with open(path) as f:
        state = json.load(f)
    if isinstance(state, list):  # a finished run's plain list of rows
        return state
    rows, pending = state["rows"], state.get("pending")
    if pending:
        step = pending.pop("step")
        crash = f"the process died (segfault?) while {step}"
        ran = re.match(r"running (\w+)'s output", step)
        if step.startswith("quantizing with "):
            pending[step[len("quantizing with "):]] = {"error": crash}
        elif ran:  # that tool's output crashed TensorFlow's kernels
            pending[ran.group(1)]["error"] = crash
        else:
            pending["measure_error"] = crash
        pending["crashed"] = True
        rows.append(pending)
    return rows


# --- tables -----------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ratio(a: dict, b: dict, key: str, digits: int = 2) -> str:
    if key in a and key in b and b[key]:
        return f"{a[key] / b[key]:.{digits}f}"
    return "-"


def _fmt(r: dict, key: str, spec: str, scale: float = 1.0) -> str:
    return format(r[key] * scale, spec) if key in r else "-"


def _notes(row: dict) -> str:
    notes = []
    for tool, label in (("tf", "TF"), ("tfquant", "tfquant")):
        if "error" in row.get(tool, {}):
            notes.append(f"{label} fails: {row[tool]['error']}")
    if "note" in row:
        notes.append(row["note"])
    if "not_measured" in row:
        notes.append(row["not_measured"])
    if "measure_error" in row:
        notes.append(f"measuring fails: {row['measure_error']}")
    n_eval = min((row[t].get("eval_samples", 10**9) for t in ("tf", "tfquant") if t in row), default=10**9)
    if n_eval < row.get("total_eval", n_eval):
        notes.append(f"SQNR on {n_eval} of {row['total_eval']} eval inputs (time budget)")
    for tool, label in (("tf", "TF"), ("tfquant", "tfquant")):
        if "first_call_ms" in row.get(tool, {}):
            notes.append(f"{label} too slow for latency: a batch-1 call takes {row[tool]['first_call_ms'] / 1e3:.1f} s")
    missing32 = [label for t, label in (("float", "float"), ("tf", "TF"), ("tfquant", "tfquant"))
                 if "ms_b1" in row.get(t, {}) and "ms_b32" not in row[t]]
    if missing32:
        notes.append(f"no batch-32 latency for {', '.join(missing32)} (time budget)")
    acc = [f"{label} acc {row[t]['accuracy']:.3f}" for t, label in (("tf", "TF"), ("tfquant", "tfquant"))
           if "accuracy" in row.get(t, {})]
    return "; ".join(notes + acc) or ""


VS_TF_HEADER = ["model", "opset", "TF s", "tfq s", "time x", "float kB", "TF kB", "tfq kB", "size x",
                "TF/float", "tfq/float", "TF SQNR", "tfq SQNR", "SQNR +dB",
                "float ms b1", "TF ms b1", "tfq ms b1", "lat x b1",
                "float ms b32", "TF ms b32", "tfq ms b32", "lat x b32", "notes"]
OURS_HEADER = ["model", "opset", "tfq s", "float kB", "tfq kB", "tfq/float", "tfq SQNR",
               "float ms b1", "tfq ms b1", "vs float b1", "float ms b32", "tfq ms b32", "vs float b32", "notes"]


def _vs_tf_cells(row: dict) -> list[str]:
    t, o, f = row.get("tf", {}), row.get("tfquant", {}), row.get("float", {})
    delta = f"{o['sqnr_db'] - t['sqnr_db']:+.1f}" if "sqnr_db" in o and "sqnr_db" in t else "-"
    return [row["model"], row["opset"], _fmt(t, "seconds", ".2f"), _fmt(o, "seconds", ".2f"), _ratio(o, t, "seconds"),
            _fmt(f, "bytes", ".0f", 1e-3), _fmt(t, "bytes", ".0f", 1e-3), _fmt(o, "bytes", ".0f", 1e-3),
            _ratio(o, t, "bytes", 3), _ratio(t, f, "bytes", 3), _ratio(o, f, "bytes", 3),
            _fmt(t, "sqnr_db", ".1f"), _fmt(o, "sqnr_db", ".1f"), delta,
            _fmt(f, "ms_b1", ".2f"), _fmt(t, "ms_b1", ".2f"), _fmt(o, "ms_b1", ".2f"), _ratio(o, t, "ms_b1"),
            _fmt(f, "ms_b32", ".1f"), _fmt(t, "ms_b32", ".1f"), _fmt(o, "ms_b32", ".1f"), _ratio(o, t, "ms_b32"),
            _cell(_notes(row))]


def _ours_cells(row: dict) -> list[str]:
    o, f = row.get("tfquant", {}), row.get("float", {})
    return [row["model"], row["opset"], _fmt(o, "seconds", ".2f"), _fmt(f, "bytes", ".0f", 1e-3),
            _fmt(o, "bytes", ".0f", 1e-3), _ratio(o, f, "bytes", 3), _fmt(o, "sqnr_db", ".1f"),
            _fmt(f, "ms_b1", ".2f"), _fmt(o, "ms_b1", ".2f"), _ratio(o, f, "ms_b1"),
            _fmt(f, "ms_b32", ".1f"), _fmt(o, "ms_b32", ".1f"), _ratio(o, f, "ms_b32"), _cell(_notes(row))]


def tables(rows: list[dict]) -> list[str]:
    lines = []
    for method, (has_tf, _) in METHODS.items():
        method_rows = [r for r in rows if r["method"] == method]
        if not method_rows:
            continue
        header = VS_TF_HEADER if has_tf else OURS_HEADER
        lines.append(f"\n### {method}" + ("" if has_tf else " (tfquant only: against the float model)") + "\n")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in method_rows:
            cells = _vs_tf_cells(row) if has_tf else _ours_cells(row)
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def bars(rows: list[dict]) -> list[str]:
    """Issue #9's bars: which hold and which do not, with the numbers."""
    lines = ["\n### Bars (issue #9)\n"]

    def both(row):
        return "sqnr_db" in row.get("tf", {}) and "sqnr_db" in row.get("tfquant", {})

    def quantized(row):
        return "bytes" in row.get("tf", {}) and "bytes" in row.get("tfquant", {})

    def name(row):
        return f"{row['model']} {row['method']} {row['opset']}"

    compared = [r for r in rows if METHODS[r["method"]][0]]
    def why(row):
        if "error" in row.get("tf", {}):
            return "TF failed"
        if "error" in row.get("tfquant", {}):
            return "tfquant failed"
        return "not run (--uq-quantize-only)" if "not_measured" in row else "measuring failed"
    not_compared = [f"{name(r)} ({why(r)})" for r in compared if not both(r)]

    def bar(title, failing, checked, extra=()):
        verdict = "HOLDS" if not failing and checked else ("NOT MET" if failing else "not measured")
        lines.append(f"- {title}: **{verdict}** ({checked - len(failing)}/{checked} rows)")
        for item in failing:
            lines.append(f"  - fails: {item}")
        for item in extra:
            lines.append(f"  - {item}")

    sqnr_fail = [f"{name(r)}: tfquant {r['tfquant']['sqnr_db']:.2f} dB < TF {r['tf']['sqnr_db']:.2f} dB "
                 f"({r['tfquant']['sqnr_db'] - r['tf']['sqnr_db']:+.2f})"
                 for r in compared if both(r) and r["tfquant"]["sqnr_db"] < r["tf"]["sqnr_db"] - SQNR_TOLERANCE_DB]
    ours_failed = [f"{name(r)}: tfquant fails: {r['tfquant'].get('error') or r.get('measure_error')}"
                   for r in rows if "error" in r.get("tfquant", {}) or "measure_error" in r]
    bar("SQNR at least TensorFlow's (every model, every method compared)", sqnr_fail,
        sum(1 for r in compared if both(r)),
        [f"not compared: {x}" for x in not_compared])
    size_fail = [f"{name(r)}: {r['tfquant']['bytes'] / r['tf']['bytes']:.3f}x "
                 f"({r['tfquant']['bytes'] / 1e3:.0f} kB vs {r['tf']['bytes'] / 1e3:.0f} kB)"
                 for r in compared if quantized(r) and r["tfquant"]["bytes"] > SIZE_BAR * r["tf"]["bytes"]]
    bar(f"size at most {SIZE_BAR}x TensorFlow's", size_fail, sum(1 for r in compared if quantized(r)))
    for method, limit in FLOAT_SIZE_BARS.items():
        checked = [r for r in rows if r["method"] == method and r["model"] in FLOAT_SIZE_MODELS
                   and "bytes" in r.get("tfquant", {})]
        fail = [f"{name(r)}: {r['tfquant']['bytes'] / r['float']['bytes']:.3f}x float" for r in checked
                if r["tfquant"]["bytes"] > limit * r["float"]["bytes"]]
        held = [f"{name(r)}: {r['tfquant']['bytes'] / r['float']['bytes']:.3f}x float" for r in checked
                if r["tfquant"]["bytes"] <= limit * r["float"]["bytes"]]
        bar(f"{method} at most {limit}x the float size on {' and '.join(FLOAT_SIZE_MODELS)}", fail, len(checked),
            [f"holds: {x}" for x in held])
    time_fail = [f"{name(r)}: {r['tfquant']['seconds']:.2f} s vs TF {r['tf']['seconds']:.2f} s "
                 f"({r['tfquant']['seconds'] / r['tf']['seconds']:.2f}x)"
                 for r in compared if quantized(r) and r["tfquant"]["seconds"] > r["tf"]["seconds"]]
    bar("quantize time at most TensorFlow's", time_fail, sum(1 for r in compared if quantized(r)))
    if ours_failed:
        lines.append("- tfquant failures (a bug to report):")
        lines += [f"  - {x}" for x in ours_failed]
    return lines


def float_units(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        units = row.get("tfquant", {}).get("float_units") or []
        if units:
            lines.append(f"- {row['model']} {row['method']} {row['opset']}: {len(units)} left float")
            lines += [f"  - {unit}" for unit in units]
    return (["\n### tfquant: units left float (quantization_report.float_units)\n"] + lines) if lines else \
        ["\ntfquant left no quantizable unit float."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir")
    parser.add_argument("--models", nargs="+", default=None, help="default: every zoo model of " + " ".join(MODELS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--dynamic-opsets", nargs="+", default=list(METHODS["dynamic_range_int8"][1]),
                        choices=["XLA", "TF", "UNIFORM_QUANTIZED"])
    parser.add_argument("--uq-quantize-only", nargs="*", default=["mobilenet_v2", "resnet50", "efficientnet_b0"],
                        help="models whose UNIFORM_QUANTIZED outputs are only quantized (time, size), not run")
    parser.add_argument("--runs", type=int, default=11, help="timed batch-1 calls per model (median)")
    parser.add_argument("--runs32", type=int, default=5, help="timed batch-32 calls per model (median)")
    parser.add_argument("--latency-budget", type=float, default=15.0,
                        help="seconds of timed calls per row and batch size; fewer runs (at least 3 at batch 1, "
                             "1 at batch 32) when they would take longer")
    parser.add_argument("--eval-budget", type=float, default=20.0,
                        help="seconds per model for SQNR; fewer evaluation inputs when they would take longer")
    parser.add_argument("--slow-call", type=float, default=5.0,
                        help="a model whose batch-1 call takes longer gets no latency figures (and no batch-32 "
                             "ones when 32 batch-1 calls would take over 4x this)")
    parser.add_argument("--calibration-method", default="min_max", help="tfquant's; TensorFlow's default is MIN_MAX")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the quantized models (in a temporary directory)")
    parser.add_argument("--json", help="write the results here, and after each step what is done and what runs")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run whose --json this is: skip the rows done; the step that was running "
                             "when the process died becomes that row's error")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)  # TensorFlow's quantizer logs every default it fills
    METHODS["dynamic_range_int8"] = (True, tuple(args.dynamic_opsets))

    models = args.models or [m for m in MODELS if os.path.isdir(os.path.join(args.zoo_dir, m))]
    work = tempfile.mkdtemp(prefix="tfquant-methods-")
    started = time.perf_counter()
    if not args.no_warmup:  # each quantizer's one-time costs (kernels, pass registration), untimed
        smallest = min(models, key=lambda m: compare_ptq.directory_bytes(os.path.join(args.zoo_dir, m)))
        for tool in ("tf", "tfquant"):
            compare_ptq.quantize(tool, os.path.join(args.zoo_dir, smallest), os.path.join(work, "warmup", tool),
                                 "XLA", args.calibration_method)
        shutil.rmtree(os.path.join(work, "warmup"), ignore_errors=True)
    rows = _resume(args.json) if args.resume else []
    _CHECKPOINT.update(path=args.json, rows=rows)
    done = {(r["model"], r["method"], r["opset"]) for r in rows}
    for model in models:
        todo = [(m, o) for m in args.methods for o in METHODS[m][1] if (model, m, o) not in done]
        if not todo:
            continue
        model_dir = os.path.join(args.zoo_dir, model)
        float_model = FloatModel(model_dir)
        samples = compare_ptq.load_samples(model_dir)
        for method, opset in todo:
            row = run_row(model, model_dir, float_model, method, opset, work, len(rows) % 2 == 0, args, samples)
            rows.append(row)
            checkpoint(None)
            cells = _vs_tf_cells(row) if METHODS[method][0] else _ours_cells(row)
            print(f"[{time.perf_counter() - started:6.0f} s] {method}: " + " | ".join(cells),
                  file=sys.stderr, flush=True)
        del float_model
    import tensorflow as tf
    print(f"tfquant vs TensorFlow {tf.__version__}, one process; calibration {args.calibration_method} "
          f"(static methods); latency = median of up to {args.runs} batch-1 / {args.runs32} batch-32 calls, interleaved "
          f"(fewer when they would take over {args.latency_budget:.0f} s). "
          "time x, size x, lat x = tfquant / TensorFlow; SQNR (dB) against the float model on the zoo's "
          "evaluation inputs; +dB = tfquant - TensorFlow. QAT: not compared (no QAT model in the zoo).")
    print("\n".join(tables(rows) + bars(rows) + float_units(rows)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    shutil.rmtree(work, ignore_errors=True) if not args.keep else print(f"outputs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
