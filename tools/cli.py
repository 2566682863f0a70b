"""The `tfquant` command line.

    tfquant quantize FLOAT_DIR OUT_DIR [--calibration-data samples.npz] [--method M] [--opset XLA|TF|...] ...
    tfquant convert FLOAT_DIR OUT.tflite [--dynamic|--int8|--int8-only|--16x8|--float16] [--calibration-data ...]
    tfquant report FLOAT_DIR --calibration-data samples.npz [--tflite] [--plot P.png] [--overlay O.json] ...
    tfquant example [OUT_DIR]       build the bundled example model and quantize it

`--report`, `--target-sqnr`, `--plot`, `--overlay` and `--report-json` on quantize and convert run
the accuracy tools (tfquant.accuracy); `tfquant report` runs them without keeping the model.

Errors print one line naming the problem (a traceback only with --debug) and exit with 1;
Ctrl-C prints one line and exits with 130. Either way no output is left half-written.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import traceback

from tfquant._files import write_atomically
from tfquant.tools._quiet_tensorflow import import_tensorflow_quietly

# tfquant.options.METHODS, spelled out so that --help needs no TensorFlow; a test compares them.
METHODS = ("static_range_int8", "dynamic_range_int8", "weight_only_int8", "no_quantize", "static_range_int16x8",
           "weight_only_float16")
UNIT_KEYS = ("op_type", "node_name", "func_name", "method")
CALIBRATION_METHODS = ("min_max", "average_min_max", "histogram_percentile", "histogram_mse_bruteforce",
                       "histogram_mse_max_frequency", "histogram_mse_symmetric")
OPSETS = ("XLA", "TF", "UNIFORM_QUANTIZED", "STABLEHLO", "ONEDNN")
# Opsets of ours, not in TensorFlow's OpSet enum (tfquant.options.EXTENSION_OPSETS).
EXTENSION_OPSETS = ("ONEDNN",)
# What shells report for a command that Ctrl-C (SIGINT, signal 2) stopped: 128 + 2.
EXIT_INTERRUPTED = 130
# `tfquant convert` modes: (flag, help). Each sets the tfquant.lite converter as `_configure_lite` says.
LITE_MODES = {
    "dynamic": ("--dynamic", "dynamic range: int8 weights, activations quantized at run time (no calibration data)"),
    "int8": ("--int8", "full integer with float fallback, calibrated on --calibration-data (a model trained "
                       "with fake-quant ops takes none); float inputs and outputs unless --io"),
    "int8_only": ("--int8-only", "integer only: every op int8, or an error naming the op that cannot be"),
    "16x8": ("--16x8", "int8 weights and 16-bit activations, integer only, calibrated"),
    "float16": ("--float16", "float16 weights (no calibration data)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfquant", description="Quantize TensorFlow SavedModels.")
    commands = parser.add_subparsers(dest="command", required=True)
    quantize = commands.add_parser("quantize", help="quantize a SavedModel")
    quantize.add_argument("float_dir", help="the float SavedModel directory (only read)")
    quantize.add_argument("out_dir", help="where to write the quantized SavedModel")
    quantize.add_argument("--calibration-data",
                          help=".npz (one array per input name, first axis = samples) or TFRecord file "
                               "written by TensorFlow's TfRecordRepresentativeDatasetSaver; needed by the static "
                               "methods unless the model was trained with fake-quant ops (QAT)")
    _add_quantization_flags(quantize)
    _add_accuracy_flags(quantize, saved_model=True)
    _add_convert_command(commands)
    _add_report_command(commands)
    example = commands.add_parser("example", help="build the bundled example model and quantize it")
    example.add_argument("out_dir", nargs="?", default="example_out", help="where to put the models")
    _add_quantization_flags(example)
    _add_accuracy_flags(example, saved_model=True)
    return parser


def _add_quantization_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, default="static_range_int8",
                        help="static_range_int8 (default; needs calibration data or a QAT model), "
                             "dynamic_range_int8, weight_only_int8, no_quantize, and tfquant's own: "
                             "static_range_int16x8 (int8 weights, 16-bit activations) and weight_only_float16 "
                             "(float16 weights, float compute)")
    parser.add_argument("--unit", action="append", default=[], metavar="KEY=VALUE,...",
                        help="a unit-wise spec: op_type, node_name, func_name (regular expressions, full match) "
                             "and the method for what they match (default no_quantize), e.g. "
                             "--unit op_type=MatMul,method=static_range_int16x8; repeatable, the first match wins")
    parser.add_argument("--opset", choices=OPSETS, default="XLA",
                        help="XLA (default), TF, UNIFORM_QUANTIZED, or tfquant's ONEDNN: oneDNN's fused int8 kernels, "
                             "the fastest on x86 CPUs (the output needs a TensorFlow built with oneDNN, as the stock "
                             "x86 builds are)")
    parser.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="min_max")
    parser.add_argument("--optimize-for", choices=("latency",), default=None,
                        help="latency: time each quantized layer's int8 form against its float form on this machine "
                             "(at the calibration batch size and at 1) and keep float the layers where int8 is not "
                             "faster; then time the whole model as decided, all quantized and float, and keep the "
                             "fastest that is not slower than float; the report lists each layer's gain")
    channels = parser.add_mutually_exclusive_group()
    channels.add_argument("--per-channel", dest="per_channel", action="store_true", default=None,
                          help="per-channel weights (the default)")
    channels.add_argument("--per-tensor", dest="per_channel", action="store_false", help="per-tensor weights")
    parser.add_argument("--signature-keys", nargs="+", default=None, help="default: serving_default")
    parser.add_argument("--tags", nargs="+", default=None, help="default: serve")
    parser.add_argument("--keep-variables", action="store_true",
                        help="freeze_all_variables=False: weights that stay float stay the input's variables")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    parser.add_argument("--dump-ir", metavar="DIR", help="write the module after each pass and the pipelines")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")


TOOL_MODES = ("auto", "on", "off")


def _add_accuracy_flags(parser: argparse.ArgumentParser, saved_model: bool, report_flag: bool = True) -> None:
    if report_flag:
        parser.add_argument("--report", action="store_true",
                            help="print the per-layer error report, measured on samples held out of calibration")
    parser.add_argument("--target-sqnr", type=float, metavar="DB",
                        help="keep the most sensitive units at 16-bit activations or float until the model's SQNR "
                             "on held-out samples reaches DB")
    parser.add_argument("--plot", metavar="PNG", help="draw the per-layer SQNR to this PNG file")
    parser.add_argument("--overlay", metavar="JSON",
                        help="write the per-layer SQNR as node data for ai-edge-model-explorer")
    parser.add_argument("--report-json", metavar="FILE", help="write the per-layer report as JSON")
    if saved_model:
        parser.add_argument("--calibration-search", action="store_true",
                            help="choose each activation's range among min-max, percentiles and MSE")
        parser.add_argument("--bias-correction", choices=TOOL_MODES, default="auto",
                            help="correct biases by the mean output shift quantization brings (auto: where it helps, "
                                 "when an accuracy tool runs)")
        parser.add_argument("--equalize", choices=TOOL_MODES, default="auto",
                            help="cross-layer equalization (auto: where it helps, when an accuracy tool runs)")


def _add_report_command(commands) -> None:
    report = commands.add_parser("report", help="print where a model loses accuracy when quantized, layer by layer "
                                                "(no model is kept)")
    report.add_argument("float_dir", help="the float SavedModel directory (only read)")
    report.add_argument("--calibration-data", required=True, help="as for quantize")
    report.add_argument("--tflite", action="store_true",
                        help="report on the TFLite full-integer conversion (as convert --int8) instead of the "
                             "quantized SavedModel")
    _add_quantization_flags(report)
    _add_accuracy_flags(report, saved_model=True, report_flag=False)


def _wants_layers(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "report", True) or args.target_sqnr is not None or args.plot or args.overlay
                or args.report_json)


def _write_layer_files(layers, args: argparse.Namespace, model_path: str | None) -> None:
    """The plot, overlay and JSON asked for, from the per-layer report."""
    if args.plot:
        layers.plot(args.plot)
        print(f"per-layer SQNR plot written to {args.plot}")
    if args.overlay:
        layers.write_overlay(args.overlay, model_path)
        print(f"model-explorer node data written to {args.overlay}")
    if args.report_json:
        layers.write_json(args.report_json)
        print(f"per-layer report written to {args.report_json}")


def _add_convert_command(commands) -> None:
    convert = commands.add_parser("convert", help="convert a SavedModel to a TFLite flatbuffer, quantized",
                                  description="Convert with tfquant.lite.TFLiteConverter (TensorFlow's converter "
                                              "makes the float model, tfquant quantizes it). Without a mode flag "
                                              "the float model is written as TensorFlow converts it.")
    convert.add_argument("float_dir", help="the float SavedModel directory (only read)")
    convert.add_argument("out_file", help="the .tflite file to write")
    modes = convert.add_mutually_exclusive_group()
    for mode, (flag, help_text) in LITE_MODES.items():
        modes.add_argument(flag, dest="mode", action="store_const", const=mode, help=help_text)
    convert.add_argument("--calibration-data",
                         help=".npz (one array per input name, first axis = samples) or TFRecord file written by "
                              "TensorFlow's TfRecordRepresentativeDatasetSaver, as for tfquant quantize")
    convert.add_argument("--io", choices=("int8", "uint8", "int16"),
                         help="the model's input and output type (calibrated modes; int16 with --16x8)")
    convert.add_argument("--signature-keys", nargs="+", default=None, help="default: every signature")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing OUT.tflite")
    convert.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    _add_accuracy_flags(convert, saved_model=False)


def _convert(args: argparse.Namespace) -> None:
    """`tfquant convert`: check the output path, convert, write the flatbuffer atomically."""
    _check_output_file(args.out_file, args.overwrite)
    samples = _samples(args.calibration_data)
    if samples is not None and args.mode not in ("int8", "int8_only", "16x8"):
        raise ValueError(f"{LITE_MODES[args.mode][0] if args.mode else 'a float conversion'} takes no "
                         "--calibration-data; the calibrated modes are --int8, --int8-only and --16x8")
    model, report = _converted(args.float_dir, args.mode, samples, args)
    if report is not None:
        print(report)
    if report is not None and _wants_layers(args):
        _print_layers(report.layers, args)
    write_atomically(args.out_file, model)
    print(f"TFLite model written to {args.out_file}")


def _converted(float_dir: str, mode: str | None, samples: list | None, args: argparse.Namespace):
    """The flatbuffer `tfquant.lite` converts in `mode`, and its report (None for a float conversion)."""
    from tfquant import lite
    converter = lite.TFLiteConverter.from_saved_model(float_dir, signature_keys=args.signature_keys)
    _configure_lite(converter, mode, samples, getattr(args, "io", None))
    if args.target_sqnr is not None:
        converter.target_sqnr = args.target_sqnr
    model = converter.convert()
    # Without a dataset, TensorFlow's settings for --int8 (DEFAULT alone) mean dynamic range, unless
    # the model has fake-quant ops: only then is --int8 without calibration data what was asked.
    if mode == "int8" and converter.quantization.method != "static":
        raise ValueError("--int8 needs --calibration-data (only a model trained with fake-quant ops takes none)")
    return model, converter.quantization_report


def _print_layers(layers, args: argparse.Namespace, model_path: str | None = None) -> None:
    if layers is None:
        raise ValueError("the per-layer report needs a calibrated (static-range) quantization")
    print(layers.table())
    _write_layer_files(layers, args, model_path)


def _configure_lite(converter, mode: str | None, samples: list | None, io: str | None) -> None:
    """Sets a tfquant.lite converter as TensorFlow's converter is set for each mode."""
    import tensorflow as tf
    from tfquant.lite import Optimize, OpsSet
    if mode is not None:
        converter.optimizations = [Optimize.DEFAULT]
    if samples is not None:
        converter.representative_dataset = lambda: iter(samples)
    if mode == "int8_only":
        converter.target_spec.supported_ops = [OpsSet.TFLITE_BUILTINS_INT8]
    elif mode == "16x8":
        converter.target_spec.supported_ops = [OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    elif mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if io is not None:
        converter.inference_input_type = converter.inference_output_type = tf.as_dtype(io)


def _check_output_file(path: str, overwrite: bool) -> None:
    """Refuses, before any work, an output path that is a directory or an existing file (without --overwrite)."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"output path {path} is a directory; name the .tflite file to write")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"output file {path} exists; pass --overwrite to replace it")


def _options(args: argparse.Namespace):
    from tfquant import options
    proto = options.QuantizationOptions()
    if args.opset not in EXTENSION_OPSETS:
        proto.op_set = options.OpSet.Value(args.opset)
    if args.method in options.PRESET_METHODS:
        proto.quantization_method.preset_method = options.PRESET_METHODS[args.method]
    proto.calibration_options.calibration_method = options.CalibrationOptions.CalibrationMethod.Value(
        "CALIBRATION_METHOD_" + args.calibration_method.upper())
    if args.per_channel is not None:
        proto.enable_per_channel_quantization = args.per_channel
    if args.signature_keys:
        proto.signature_keys.extend(args.signature_keys)
    if args.tags:
        proto.tags.extend(args.tags)
    if args.keep_variables:
        proto.freeze_all_variables = False
    return proto


def _units(specs: list[str]) -> list[dict[str, str]]:
    """`--unit op_type=MatMul,method=no_quantize` -> {"op_type": "MatMul", "method": "no_quantize"}.

    Split only before a key, so that a regular expression may hold commas."""
    units = []
    for spec in specs:
        unit = {}
        for item in re.split(rf",(?=(?:{'|'.join(UNIT_KEYS)})=)", spec):
            key, equals, value = item.partition("=")
            if key not in UNIT_KEYS or not equals:
                raise ValueError(f"--unit {spec!r}: expected KEY=VALUE pairs with keys {', '.join(UNIT_KEYS)}")
            unit[key] = value
        units.append(unit)
    return units


def _samples(path: str | None):
    from tfquant import dataset
    return None if path is None else dataset.load_dataset_file(path)


def _quantize(float_dir: str, out_dir: str, samples, args: argparse.Namespace, keep: bool = True) -> None:
    from tfquant.quantize import quantize_saved_model
    method = args.method if args.method in ("static_range_int16x8", "weight_only_float16") else None
    opset = args.opset if args.opset in EXTENSION_OPSETS else None
    accuracy = {}
    if hasattr(args, "target_sqnr"):
        accuracy = dict(report=getattr(args, "report", True), target_sqnr=args.target_sqnr,
                        calibration_search=args.calibration_search, bias_correction=args.bias_correction,
                        equalize=args.equalize)
        if _wants_layers(args):
            accuracy["report"] = True
    loaded = quantize_saved_model(float_dir, out_dir, _options(args), samples,
                                  overwrite_output_directory=args.overwrite, dump_ir=args.dump_ir, method=method,
                                  units=_units(args.unit), opset=opset, optimize_for=args.optimize_for, **accuracy)
    layers = loaded.quantization_report.layers
    if layers is not None:
        _write_layer_files(layers, args, float_dir)
    if keep:
        print(f"quantized model written to {out_dir}")


def _report_command(args: argparse.Namespace) -> None:
    """`tfquant report`: quantize (SavedModel) or convert (--tflite) into a temporary place, print the
    per-layer report and write the files asked for; the model is not kept."""
    samples = _samples(args.calibration_data)
    if args.tflite:
        _, report = _converted(args.float_dir, "int8", samples, args)
        print(report)
        _print_layers(report.layers, args)
        return
    with tempfile.TemporaryDirectory(prefix="tfquant-report-") as scratch:
        args.overwrite, args.report = True, True
        _quantize(args.float_dir, os.path.join(scratch, "model"), samples, args, keep=False)


def _example(args: argparse.Namespace) -> None:
    from tfquant import example
    float_dir, samples_path = example.build(os.path.join(args.out_dir, "float"))
    print(f"example float model written to {float_dir}")
    args.overwrite = True
    _quantize(float_dir, os.path.join(args.out_dir, "int8"), _samples(samples_path), args)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    try:
        import_tensorflow_quietly()
        if args.command == "quantize":
            _quantize(args.float_dir, args.out_dir, _samples(args.calibration_data), args)
        elif args.command == "convert":
            _convert(args)
        elif args.command == "report":
            _report_command(args)
        else:
            _example(args)
        return 0
    except KeyboardInterrupt:
        _report(args, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as error:  # every failure is reported as one line unless --debug
        _report(args, f"error: {_one_line(error)}")
        return 1


def _report(args: argparse.Namespace, message: str) -> None:
    """Prints `tfquant: <message>` to stderr, after the traceback being handled with --debug."""
    if args.debug:
        traceback.print_exc()
    print(f"tfquant: {message}", file=sys.stderr)


def _one_line(error: BaseException) -> str:
    """The error's message with its lines joined (MLIR diagnostics span several)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
