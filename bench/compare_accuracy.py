"""Accuracy side by side: TensorFlow's quantizers and tfquant's accuracy tools, on the trained models.

    .venv/bin/python bench/compare_accuracy.py ZOO_DIR [--models digits_mlp audio_pitch ...]
        [--target-sqnr DB] [--runs 200] [--max-eval 512] [--json OUT]

ZOO_DIR is what `../shared/zoo/make_zoo.py ZOO_DIR` and `bench/make_trained.py ZOO_DIR` build; the
default models are the trained ones (their eval.npz has labels): digits_mlp, digits_cnn, cancer_mlp
and audio_pitch (a log-power front end, the issue's pitch model). Everything runs in this one process,
every quantizer calibrated on the zoo's calibration inputs (one batch-1 sample a yield). Rows:

* tf-qsm: `tf.quantization.experimental.quantize_saved_model`, default options (static-range int8,
  XLA opset); tf-tflite: `tf.lite.TFLiteConverter`, full integer with float fallback (DEFAULT and the
  dataset, as `compare_tflite.py`'s int8 mode). These are the anchors.
* sm-*: `tfquant.quantize_saved_model` with the same (default) options: `sm-default` with no
  accuracy keyword; then `report=True` with each tool alone, the others "off" (their default "auto"
  would apply them where they help as soon as any tool runs): `sm-report` (none: what holding samples
  out of calibration costs), `sm-search` (`calibration_search=True`), `sm-bias`
  (`bias_correction="on"`), `sm-equalize` (`equalize="on"`), `sm-target` (`target_sqnr=T`: fallback
  to 16-bit activations or float), `sm-target-anchor` (`target_sqnr=A`); and `sm-all` (all of them
  on, with the target T).
* lite-*: `tfquant.lite.TFLiteConverter.from_saved_model` with TensorFlow's converter's settings
  (`lite-default`), and with `converter.target_sqnr = T` (`lite-target`) or A (`lite-target-anchor`).

The target T: `--target-sqnr` if given, else per model the larger of 30 dB and the better anchor's
SQNR + 4 dB (the bar asks for +3 dB on the eval inputs; the fallback meets its target on samples held
out of calibration, so it gets 1 dB of headroom: with 3, digits_cnn's fallback keeps units float at
2.8x the size where 1 gives 48.5 dB at the int8 size). The target A: the better anchor's SQNR + 4 dB
alone, the +3 dB bar's (below 30 dB, 16-bit activations may meet it at the int8 size where T needs
float units: audio_pitch's front end). The accuracy keywords are the agreed API, landing
piecemeal: a row whose keyword tfquant does not take yet (a TypeError "unexpected keyword argument"
naming it; for the converter, no `target_sqnr` attribute) prints "not available"; any other failure
is the row's error.

Columns, measured on the zoo's eval inputs (up to --max-eval): SQNR (dB) of the main (first) float
output against the float model (SavedModel rows: the float SavedModel; TFLite rows: TensorFlow's float
conversion, in LiteRT with 2 threads); non-finite output values; top-1 agreement with the float
model; accuracy against the labels; size in bytes and its ratio to the same format's anchor (a
SavedModel directory's bytes and a flatbuffer's are not comparable); batch-1 latency as a ratio to
the float model of the same format (the median of --runs calls, the two taking turns call by call);
the units that fell back (sm rows with the report: its `fallen_back()`, else the quantizer's units
left float; lite rows: float ops); and whether the output is finite on the quietest calibration input
(smallest L2 norm; the issue's converter output divided by zero on a silent frame).

The bars (issue #12), per model: our best row at a size no larger than its format's anchor's (up to
compare_tflite's 1.02x) is at least the better anchor's SQNR + 3 dB; on audio_pitch (the log model)
a fallback row (sm-target, sm-all, lite-target) reaches 25 dB.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_methods  # noqa: E402  (FloatModel, interleaved latency of SavedModel functions)
import compare_ptq  # noqa: E402  (samples, SQNR, directory sizes)
import compare_tflite  # noqa: E402  (converter settings, LiteRT runner and its interleaved latency)

MODELS = ("digits_mlp", "digits_cnn", "cancer_mlp", "audio_pitch")
LOG_MODELS = ("audio_pitch",)
LOG_MODEL_BAR_DB = 25.0
ANCHOR_MARGIN_DB = 3.0
SIZE_BAR = compare_tflite.SIZE_BAR  # "equal or smaller size", up to what compare_tflite calls equal
MIN_TARGET_DB = 30.0
TARGET_HEADROOM_DB = 4.0
ANCHORS = ("tf-qsm", "tf-tflite")
FALLBACK_ROWS = ("sm-target", "sm-target-anchor", "sm-all", "lite-target", "lite-target-anchor")
NOT_AVAILABLE = "not available"
WARMUP_CALLS = 10
SAVED_MODEL, TFLITE = "saved_model", "tflite"

# Our SavedModel rows: keywords of tfquant.quantize_saved_model ("T" stands for the target, "A" for the
# better anchor's SQNR + TARGET_HEADROOM_DB alone: the +3 dB bar's target, which 16-bit activations alone
# may meet at the int8 size where T needs float units).
_TOOLS_OFF = {"bias_correction": "off", "equalize": "off"}
SM_ROWS = {
    "sm-default": {},
    "sm-report": {"report": True, **_TOOLS_OFF},
    "sm-search": {"report": True, "calibration_search": True, **_TOOLS_OFF},
    "sm-bias": {"report": True, "bias_correction": "on", "equalize": "off"},
    "sm-equalize": {"report": True, "bias_correction": "off", "equalize": "on"},
    "sm-target": {"report": True, "target_sqnr": "T", **_TOOLS_OFF},
    "sm-target-anchor": {"report": True, "target_sqnr": "A", **_TOOLS_OFF},
    "sm-all": {"report": True, "calibration_search": True, "bias_correction": "on", "equalize": "on",
               "target_sqnr": "T"},
}
LITE_ROWS = {"lite-default": None, "lite-target": "T", "lite-target-anchor": "A"}  # row -> converter.target_sqnr


class NotAvailable(Exception):
    """tfquant does not take this accuracy setting yet."""


def unexpected_keyword(error: TypeError, keywords) -> str | None:
    """The keyword of `keywords` a TypeError says the callee does not take, else None."""
    found = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    return found.group(1) if found and found.group(1) in keywords else None


def first_line(error: BaseException) -> str:
    return compare_tflite.first_line(error)[:160]


# --- quantizing ---------------------------------------------------------------------------------

def tf_qsm(saved_model: str, out_dir: str, samples: list[dict]) -> None:
    import tensorflow as tf
    tf.quantization.experimental.quantize_saved_model(saved_model, out_dir, representative_dataset=samples,
                                                      overwrite_output_directory=True)


def ours_sm(saved_model: str, out_dir: str, samples: list[dict], keywords: dict) -> list[str]:
    """tfquant.quantize_saved_model with `keywords`; the units that fell back (the report's, with one;
    else those the quantizer left float). Raises NotAvailable for a keyword it does not take."""
    import tfquant
    try:
        loaded = tfquant.quantize_saved_model(saved_model, out_dir, None, samples, overwrite_output_directory=True,
                                              verbose=False, **keywords)
    except TypeError as error:
        keyword = unexpected_keyword(error, keywords)
        if keyword is None:
            raise
        raise NotAvailable(f"quantize_saved_model({keyword}=)") from error
    report = loaded.quantization_report
    layers = getattr(report, "layers", None)
    if layers is not None:
        return [f"{layer.op_type} {layer.name}: {layer.kept_as}" for layer in layers.fallen_back()]
    return [f"{unit.op_type} {unit.node_name}: float" for unit in report.float_units]


def lite_convert(tool: str, saved_model: str, samples: list[dict],
                 target_sqnr: float | None) -> tuple[bytes, list | None]:
    """A full-integer-with-float-fallback flatbuffer from TensorFlow's converter or ours (with
    `target_sqnr` when given), and the units ours fell back (None for TensorFlow's)."""
    import tensorflow as tf
    import tfquant.lite as ql
    factory = tf.lite.TFLiteConverter if tool == "tf" else ql.TFLiteConverter
    converter = factory.from_saved_model(saved_model)
    compare_tflite.configure(converter, "int8", samples)
    if target_sqnr is not None:
        # Our converter passes attributes it does not own to TensorFlow's, which would take any name:
        # the attribute exists (None by default) once ours has it.
        if not hasattr(converter, "target_sqnr"):
            raise NotAvailable("TFLiteConverter.target_sqnr")
        converter.target_sqnr = target_sqnr
    model = converter.convert()
    if tool == "tf":
        return model, None
    report = converter.quantization_report
    if report is None:
        return model, []
    layers = getattr(report, "layers", None) if target_sqnr is not None else None
    if layers is not None:
        return model, [f"{layer.op_type} {layer.name}: {layer.kept_as}" for layer in layers.fallen_back()]
    return model, [f"{op} x{count}: float" for op, count in sorted(report.ops_float.items())]


# --- measuring ----------------------------------------------------------------------------------

class Model:
    """A zoo model: its samples, eval inputs and labels, the float references of both formats, and
    its quietest calibration input."""

    def __init__(self, model_dir: str, max_eval: int):
        import numpy as np
        self.name = os.path.basename(model_dir.rstrip("/"))
        self.saved_model = os.path.join(model_dir, "saved_model")
        self.samples = compare_ptq.load_samples(model_dir)
        self.float_sm = compare_methods.FloatModel(model_dir)
        n = min(max_eval, len(self.float_sm.reference))
        self.evaluation = {k: v[:n] for k, v in self.float_sm.evaluation.items()}
        self.labels = None if self.float_sm.labels is None else self.float_sm.labels[:n]
        self.reference_sm = self.float_sm.reference[:n]
        self.output = self.float_sm.output
        self.inputs_b1 = [{k: v[i:i + 1] for k, v in self.evaluation.items()} for i in range(n)]
        norms = [sum(float(np.sum(np.square(v, dtype=np.float64))) for v in s.values()) for s in self.samples]
        self.quietest = self.samples[int(np.argmin(norms))]
        self.float_lite = compare_tflite.float_model(self.saved_model)
        self.reference_lite = lite_outputs(compare_tflite.Runner(self.float_lite), self.inputs_b1, self.output)


def lite_outputs(runner, inputs: list[dict], output: str):
    import numpy as np
    return np.concatenate([runner(x)[output] for x in inputs]).astype(np.float64)


def scores(model: Model, reference, actual) -> dict:
    """SQNR (over the finite values), non-finite values, top-1 agreement and accuracy."""
    import numpy as np
    finite = np.isfinite(actual)
    result = {"sqnr_db": compare_ptq.sqnr_db(reference[finite], actual[finite]),
              "non_finite": int(actual.size - finite.sum())}
    if actual.ndim >= 2 and actual.shape[-1] > 1:
        result["top1_agreement"] = float(np.mean(reference.argmax(-1) == actual.argmax(-1)))
        if model.labels is not None:
            result["accuracy"] = float(np.mean(actual.argmax(-1) == model.labels))
    return result


def measure_sm(model: Model, out_dir: str, runs: int) -> dict:
    """A quantized SavedModel's scores, size, batch-1 latency ratio to float, and quiet-input check."""
    import numpy as np
    import tensorflow as tf
    function = tf.saved_model.load(out_dir).signatures["serving_default"]
    n = len(model.reference_sm)
    actual = np.concatenate([function(**{k: tf.constant(v[i:i + 32]) for k, v in model.evaluation.items()})
                             [model.output].numpy() for i in range(0, n, 32)]).astype(np.float64)
    result = scores(model, model.reference_sm, actual)
    result["bytes"] = compare_ptq.directory_bytes(out_dir)
    quiet = function(**{k: tf.constant(v) for k, v in model.quietest.items()})[model.output].numpy()
    result["quiet_finite"] = bool(np.all(np.isfinite(quiet)))
    if model.float_sm.function is not None:
        ms = compare_methods.interleaved_latency_ms({"float": model.float_sm.function, "quantized": function},
                                                    model.float_sm.feed_1, runs)
        result["latency_x"] = ms["quantized"] / ms["float"]
    return result


def measure_lite(model: Model, flatbuffer: bytes, runs: int) -> dict:
    """A quantized flatbuffer's scores, size, batch-1 latency ratio to float, and quiet-input check."""
    import numpy as np
    runner = compare_tflite.Runner(flatbuffer)
    result = scores(model, model.reference_lite, lite_outputs(runner, model.inputs_b1, model.output))
    result["bytes"] = len(flatbuffer)
    try:
        result["quiet_finite"] = bool(np.all(np.isfinite(runner(model.quietest)[model.output])))
    except RuntimeError as error:  # a kernel that refuses the input (a division by zero)
        result["quiet_finite"] = False
        result["quiet_error"] = first_line(error)
    runners = {"float": compare_tflite.Runner(model.float_lite), "quantized": runner}
    for each in runners.values():
        each.prepare(model.inputs_b1[0])
        for _ in range(WARMUP_CALLS):  # LiteRT's thread pool and caches, before the clock
            each.invoke()
    ms = compare_tflite.interleaved_latency_ms(runners, runs)
    result["latency_x"] = ms["quantized"] / ms["float"]
    return result


def run_row(model: Model, row: str, work: str, targets: dict[str, float], runs: int) -> dict:
    """Quantize one row's way and measure it; "not available" or the error instead when it fails."""
    result = {"row": row, "format": TFLITE if row in ("tf-tflite", *LITE_ROWS) else SAVED_MODEL}
    out_dir = os.path.join(work, model.name, row)
    started = time.perf_counter()
    try:
        if row == "tf-qsm":
            tf_qsm(model.saved_model, out_dir, model.samples)
        elif row in SM_ROWS:
            keywords = {k: (targets[v] if k == "target_sqnr" else v) for k, v in SM_ROWS[row].items()}
            result["fell_back"] = ours_sm(model.saved_model, out_dir, model.samples, keywords)
        else:
            target_sqnr = targets[LITE_ROWS[row]] if LITE_ROWS.get(row) else None
            flatbuffer, fell_back = lite_convert("tf" if row == "tf-tflite" else "tfquant", model.saved_model,
                                                 model.samples, target_sqnr)
            if fell_back is not None:
                result["fell_back"] = fell_back
        result["seconds"] = time.perf_counter() - started
        measured = (measure_lite(model, flatbuffer, runs) if result["format"] == TFLITE
                    else measure_sm(model, out_dir, runs))
        result.update(measured)
    except NotAvailable as missing:
        result["not_available"] = str(missing)
    except Exception as error:  # a quantizer or an output that fails is the row's cell, not fatal
        result["error"] = first_line(error)
    shutil.rmtree(out_dir, ignore_errors=True)
    gc.collect()
    return result


def anchor_target(rows: list[dict]) -> float:
    """The better anchor's SQNR + TARGET_HEADROOM_DB."""
    anchors = [r["sqnr_db"] for r in rows if r["row"] in ANCHORS and math.isfinite(r.get("sqnr_db", math.nan))]
    return max(anchors, default=MIN_TARGET_DB - TARGET_HEADROOM_DB) + TARGET_HEADROOM_DB


def default_target(rows: list[dict]) -> float:
    """The larger of MIN_TARGET_DB and the better anchor's SQNR + TARGET_HEADROOM_DB."""
    return max(MIN_TARGET_DB, anchor_target(rows))


def run_model(model_dir: str, work: str, args: argparse.Namespace) -> dict:
    model = Model(model_dir, args.max_eval)
    result = {"model": model.name, "n_eval": len(model.reference_sm), "rows": []}
    float_scores = scores(model, model.reference_sm, model.reference_sm)
    if "accuracy" in float_scores:
        result["float_accuracy"] = float_scores["accuracy"]
    print(f"{model.name}: float accuracy {_fmt(float_scores, 'accuracy', '.3f')}", file=sys.stderr)
    for row in ANCHORS:
        result["rows"].append(run_row(model, row, work, {}, args.runs))
        print(f"  {_line(result['rows'][-1])}", file=sys.stderr, flush=True)
    result["target_sqnr_db"] = args.target_sqnr if args.target_sqnr is not None else default_target(result["rows"])
    result["anchor_target_sqnr_db"] = anchor_target(result["rows"])
    targets = {"T": result["target_sqnr_db"], "A": result["anchor_target_sqnr_db"]}
    for row in (*SM_ROWS, *LITE_ROWS):
        result["rows"].append(run_row(model, row, work, targets, args.runs))
        print(f"  {_line(result['rows'][-1])}", file=sys.stderr, flush=True)
    anchor_bytes = {r["format"]: r["bytes"] for r in result["rows"] if r["row"] in ANCHORS and "bytes" in r}
    for r in result["rows"]:
        if "bytes" in r and r["format"] in anchor_bytes:
            r["size_x"] = r["bytes"] / anchor_bytes[r["format"]]
    return result


# --- tables and bars ----------------------------------------------------------------------------

def _fmt(r: dict, key: str, spec: str) -> str:
    return format(r[key], spec) if key in r else "-"


def _cells(r: dict) -> list[str]:
    if "not_available" in r or "error" in r:
        text = f"{NOT_AVAILABLE} ({r['not_available']})" if "not_available" in r else f"error: {r['error']}"
        return [r["row"], text.replace("|", "\\|")] + ["-"] * (len(HEADER) - 2)
    fell_back = str(len(r["fell_back"])) if "fell_back" in r else "-"
    quiet = "-" if "quiet_finite" not in r else ("yes" if r["quiet_finite"] else r.get("quiet_error", "NO"))
    return [r["row"], _fmt(r, "sqnr_db", ".1f"), _fmt(r, "non_finite", "d"), _fmt(r, "top1_agreement", ".3f"),
            _fmt(r, "accuracy", ".3f"), _fmt(r, "bytes", "d"), _fmt(r, "size_x", ".3f"), _fmt(r, "latency_x", ".2f"),
            fell_back, quiet.replace("|", "\\|"), _fmt(r, "seconds", ".1f")]


HEADER = ["row", "SQNR dB", "non-finite", "top1 agr", "accuracy", "bytes", "size x anchor", "latency x float",
          "fell back", "quiet input finite", "quantize s"]


def _line(r: dict) -> str:
    return " | ".join(_cells(r))


def table(result: dict) -> list[str]:
    accuracy = f", float accuracy {result['float_accuracy']:.3f}" if "float_accuracy" in result else ""
    lines = [f"\n### {result['model']} ({result['n_eval']} eval inputs{accuracy}; target_sqnr "
             f"{result['target_sqnr_db']:.1f} dB)\n", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + _line(r) + " |" for r in result["rows"]]
    return lines


def bars(results: list[dict]) -> list[str]:
    """Issue #12's bars per model, held or not, with the numbers."""
    lines = ["\n### Bars (issue #12)\n"]
    for result in results:
        rows = result["rows"]
        anchors = [r for r in rows if r["row"] in ANCHORS and "sqnr_db" in r]
        ours = [r for r in rows if r["row"] not in ANCHORS and "sqnr_db" in r]
        if not anchors or not ours:
            lines.append(f"- {result['model']}: better anchor + {ANCHOR_MARGIN_DB:g} dB: **not measured**")
            continue
        better = max(anchors, key=lambda r: r["sqnr_db"])
        small = [r for r in ours if r.get("size_x", math.inf) <= SIZE_BAR]
        best = max(small, key=lambda r: r["sqnr_db"], default=None)
        best_any = max(ours, key=lambda r: r["sqnr_db"])
        needed = better["sqnr_db"] + ANCHOR_MARGIN_DB
        any_size = (f"; at any size: {best_any['row']} {best_any['sqnr_db']:.1f} dB, "
                    f"{_fmt(best_any, 'size_x', '.3f')}x" if best_any is not best else "")
        if best is None:
            lines.append(f"- {result['model']}: better anchor + {ANCHOR_MARGIN_DB:g} dB at equal or smaller size: "
                         f"**NOT HELD** (no row of ours at most {SIZE_BAR}x its anchor's size{any_size})")
        else:
            verdict = "held" if best["sqnr_db"] >= needed else "NOT HELD"
            lines.append(f"- {result['model']}: better anchor + {ANCHOR_MARGIN_DB:g} dB at equal or smaller size: "
                         f"**{verdict}** (ours best {best['row']} {best['sqnr_db']:.1f} dB, {best['size_x']:.3f}x "
                         f"its anchor's size; {better['row']} {better['sqnr_db']:.1f} dB, needed {needed:.1f}"
                         f"{any_size})")
        if result["model"] in LOG_MODELS:
            fallback = [r for r in ours if r["row"] in FALLBACK_ROWS]
            top = max(fallback, key=lambda r: r["sqnr_db"], default=None)
            if top is None:
                lines.append(f"- {result['model']}: >= {LOG_MODEL_BAR_DB:g} dB with the fallback: **not measured** "
                             f"(fallback rows not available)")
            else:
                verdict = "held" if top["sqnr_db"] >= LOG_MODEL_BAR_DB else "NOT HELD"
                lines.append(f"- {result['model']}: >= {LOG_MODEL_BAR_DB:g} dB with the fallback: **{verdict}** "
                             f"({top['row']} {top['sqnr_db']:.1f} dB)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--target-sqnr", type=float, default=None,
                        help=f"dB for the fallback rows; default per model: max({MIN_TARGET_DB:g}, better anchor + "
                             f"{TARGET_HEADROOM_DB:g})")
    parser.add_argument("--runs", type=int, default=200, help="batch-1 calls timed per row (median)")
    parser.add_argument("--max-eval", type=int, default=512, help="eval inputs measured per model")
    parser.add_argument("--json", help="write the results here after each model")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow as tf
    import tfquant.lite  # noqa: F401
    import tfquant.quantize  # noqa: F401

    work = tempfile.mkdtemp(prefix="tfquant-accuracy-")
    started = time.perf_counter()
    results = []
    try:
        for name in args.models:
            results.append(run_model(os.path.join(args.zoo_dir, name), work, args))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Accuracy tools vs TensorFlow {tf.__version__}'s quantizers, static int8, one process. SQNR of the first "
          "float output against the float model of the same format, over its finite values; size x anchor = bytes / "
          "the same format's anchor's; latency x float = batch-1 median over interleaved calls, quantized / float.")
    for result in results:
        print("\n".join(table(result)))
    print("\n".join(bars(results)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
