"""Quantization options: TensorFlow's own option protos, resolved and checked.

tfquant takes exactly the options `tf.quantization.experimental.quantize_saved_model` takes:
the classes below *are* TensorFlow's proto classes, so an options object built for
TensorFlow is accepted as it is. This is the only module that imports them.

`resolve_options` fills defaults as TensorFlow's `quantize_model.py` does, with these
differences: weights are per-channel unless `enable_per_channel_quantization` is explicitly
false, and a unit-wise spec may give its units any method (TensorFlow allows only NO_QUANTIZE
or the top-level one). Two extensions of ours ride beside the proto: a top-level `method` naming
one of `METHODS` (which adds `static_range_int16x8`, int8 weights with 16-bit activations, and
`weight_only_float16`), and `units`, unit-wise specs that may name those methods too.
`check_supported` then refuses what tfquant does not do, naming it.
"""
from __future__ import annotations

import dataclasses
import json
import types
from collections import Counter
from collections.abc import Mapping, Sequence

from google.protobuf.descriptor import EnumDescriptor
from tensorflow.compiler.mlir.quantization.stablehlo import quantization_config_pb2 as _config_pb2
from tensorflow.compiler.mlir.quantization.tensorflow import quantization_options_pb2 as _options_pb2

__all__ = [
    "QuantizationOptions", "QuantizationMethod", "QuantizationComponentSpec",
    "UnitWiseQuantizationSpec", "OpSet", "CalibrationOptions", "RepresentativeDatasetFile",
    "DebuggerConfig", "ResolvedOptions", "resolve_options", "check_supported",
    "DEFAULT_MIN_NUM_ELEMENTS_FOR_WEIGHTS", "DEFAULT_NUM_BINS", "DEFAULT_MIN_PERCENTILE",
    "DEFAULT_MAX_PERCENTILE", "HISTOGRAM_METHODS", "METHODS", "PRESET_METHODS", "EXTENSION_OPSETS",
]

QuantizationOptions = _options_pb2.QuantizationOptions
QuantizationMethod = _options_pb2.QuantizationMethod
QuantizationComponentSpec = _options_pb2.QuantizationComponentSpec
UnitWiseQuantizationSpec = _options_pb2.UnitWiseQuantizationSpec
OpSet = _options_pb2.OpSet
RepresentativeDatasetFile = _options_pb2.RepresentativeDatasetFile
# QuantizationOptions.calibration_options is a StableHLO quantizer message in TF 2.21.
CalibrationOptions = _config_pb2.CalibrationOptions
DebuggerConfig = _config_pb2.DebuggerConfig

# TensorFlow's defaults (quantize_model.py).
DEFAULT_MIN_NUM_ELEMENTS_FOR_WEIGHTS = 1024
DEFAULT_NUM_BINS = 512
DEFAULT_MIN_PERCENTILE = 0.001
DEFAULT_MAX_PERCENTILE = 99.999

_PresetMethod = QuantizationMethod.PresetMethod
_Component = QuantizationComponentSpec.QuantizationComponent
_TensorType = QuantizationComponentSpec.TensorType
_CalibrationMethod = CalibrationOptions.CalibrationMethod
_DebuggerType = DebuggerConfig.DebuggerType

# The methods by the names tfquant gives them -> (the unit spec's method, activation bits), as
# `tfquant.passes._spec.UnitSpec` holds them. The last two are tfquant's own.
METHODS = {
    "static_range_int8": ("static", 8),
    "dynamic_range_int8": ("dynamic_range", 8),
    "weight_only_int8": ("weight_only", 8),
    "no_quantize": ("no_quantize", 8),
    "static_range_int16x8": ("static", 16),
    "weight_only_float16": ("float16", 8),
}
_METHOD_NAMES = {
    _PresetMethod.METHOD_STATIC_RANGE_INT8: "static_range_int8",
    _PresetMethod.METHOD_DYNAMIC_RANGE_INT8: "dynamic_range_int8",
    _PresetMethod.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8: "weight_only_int8",
    _PresetMethod.METHOD_NO_QUANTIZE: "no_quantize",
}
# TensorFlow's preset of each method of its own, by our name.
PRESET_METHODS = {name: preset for preset, name in _METHOD_NAMES.items()}
# The preset each of our own methods fills the proto's defaults as.
_PRESET_OF_EXTENSION = {"static_range_int16x8": _PresetMethod.METHOD_STATIC_RANGE_INT8,
                        "weight_only_float16": _PresetMethod.METHOD_NO_QUANTIZE}
_UNIT_KEYS = ("op_type", "node_name", "func_name")
_HISTOGRAM_MSE_METHODS = (
    _CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_MSE_BRUTEFORCE,
    _CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_MSE_MAX_FREQUENCY,
    _CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_MSE_SYMMETRIC,
)
# The methods that derive a range from a histogram of every calibration value.
HISTOGRAM_METHODS = (_CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE, *_HISTOGRAM_MSE_METHODS)


@dataclasses.dataclass(frozen=True)
class ResolvedOptions:
    """Options with every default filled in, as the rest of tfquant reads them.

    `proto` is the filled-in copy of the options given (the caller's object is not
    modified); `calibration_options` is `proto.calibration_options`.
    """

    method: str
    opset: str
    per_channel: bool
    # The top-level method as the unit specs say it, and the unit-wise rules as the
    # tfq-assign-quantization-spec pass takes them (JSON).
    unit_method: str
    activation_bits: int
    unit_rules: str
    tags: tuple[str, ...]
    signature_keys: tuple[str, ...]
    min_num_elements_for_weights: int
    calibration_method: str
    calibration_options: CalibrationOptions
    representative_datasets: Mapping[str, RepresentativeDatasetFile]
    proto: QuantizationOptions

    @property
    def calibrated(self) -> bool:
        """Whether any unit takes its activation ranges from calibration (or a QAT model's fake quants)."""
        methods = [self.unit_method] + [rule["method"] for rule in json.loads(self.unit_rules)]
        return "static" in methods


# Opsets of ours, beside the proto's: name -> the proto opset whose defaults and checks they take.
EXTENSION_OPSETS = {"ONEDNN": OpSet.XLA}


def resolve_options(options: QuantizationOptions | None, method: str | None = None,
                    units: Sequence[Mapping[str, object]] = (), opset: str | None = None) -> ResolvedOptions:
    """Validates `options` and fills its defaults as TensorFlow does.

    `options` is None (all defaults: static range int8 on the XLA opset) or a
    `QuantizationOptions`, which is also `tf.quantization.experimental.QuantizationOptions`.
    `method` (one of `METHODS`) overrides an unspecified preset method; `units` are unit-wise
    specs of ours, dicts of `op_type` / `node_name` / `func_name` (regular expressions) and
    `method` (one of `METHODS`), tried before the proto's. `opset` names an opset of ours
    (`EXTENSION_OPSETS`: "ONEDNN") in place of an unspecified `op_set`. Raises ValueError on
    contradictory or unknown settings (TensorFlow's checks plus unknown enum values and
    out-of-range numbers).
    """
    if options is None:
        options = QuantizationOptions()
    if not isinstance(options, QuantizationOptions):
        raise TypeError(f"quantization options must be a QuantizationOptions proto, got {type(options).__name__}")
    proto = QuantizationOptions()
    proto.CopyFrom(options)
    _check_enums(proto)
    _check_unique_signature_keys(proto)
    method = _top_level_method(proto, method)
    opset = _opset(proto, opset)
    _populate_defaults(proto)
    unit_method, activation_bits = METHODS[method]
    return ResolvedOptions(
        method=method,
        opset=opset or OpSet.Name(proto.op_set),
        per_channel=proto.enable_per_channel_quantization,
        unit_method=unit_method,
        activation_bits=activation_bits,
        unit_rules=json.dumps(_unit_rules(units, proto), separators=(",", ":")),
        tags=tuple(proto.tags),
        signature_keys=tuple(proto.signature_keys),
        min_num_elements_for_weights=proto.min_num_elements_for_weights,
        calibration_method=_CalibrationMethod.Name(proto.calibration_options.calibration_method),
        calibration_options=proto.calibration_options,
        representative_datasets=types.MappingProxyType(dict(proto.representative_datasets)),
        proto=proto,
    )


def _top_level_method(proto: QuantizationOptions, method: str | None) -> str:
    """Our name of the top-level method: `method` if given (the proto's preset must then be
    unspecified or the same), else the proto's preset (static range int8 when unspecified)."""
    preset = proto.quantization_method.preset_method
    if method is None:
        return _METHOD_NAMES.get(preset, "static_range_int8")
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; the methods are {', '.join(METHODS)}")
    if preset != _PresetMethod.METHOD_UNSPECIFIED and _METHOD_NAMES.get(preset) != method:
        raise ValueError(f"method '{method}' contradicts quantization_method.preset_method "
                         f"{_PresetMethod.Name(preset)}; give one of them")
    proto.quantization_method.preset_method = _PRESET_OF_EXTENSION.get(method) or PRESET_METHODS[method]
    return method


def _opset(proto: QuantizationOptions, opset: str | None) -> str | None:
    """An opset of ours, given beside an unspecified (or the same) `op_set`."""
    if opset is None or opset == OpSet.Name(proto.op_set):
        return None
    if opset not in EXTENSION_OPSETS:
        raise ValueError(f"unknown opset '{opset}'; tfquant's own opsets are {', '.join(EXTENSION_OPSETS)}, "
                         "and QuantizationOptions.op_set takes TensorFlow's")
    if proto.op_set != OpSet.OP_SET_UNSPECIFIED:
        raise ValueError(f"opset '{opset}' contradicts QuantizationOptions.op_set {OpSet.Name(proto.op_set)}; "
                         "give one of them")
    proto.op_set = EXTENSION_OPSETS[opset]
    return opset


def _unit_rules(units: Sequence[Mapping[str, object]], proto: QuantizationOptions) -> list[dict]:
    """Our unit-wise specs, then the proto's, as the rules tfq-assign-quantization-spec takes."""
    rules = []
    for index, unit in enumerate(units):
        unknown = set(unit) - {*_UNIT_KEYS, "method"}
        if unknown:
            raise ValueError(f"units[{index}] has unknown key '{sorted(unknown)[0]}'; the keys are "
                             f"{', '.join(_UNIT_KEYS)} and method")
        if not any(unit.get(key) for key in _UNIT_KEYS):
            raise ValueError(f"units[{index}] names no op_type, node_name or func_name")
        method = unit.get("method", "no_quantize")
        if method not in METHODS:
            raise ValueError(f"units[{index}] has unknown method '{method}'; the methods are {', '.join(METHODS)}")
        rules.append(_rule(unit, method))
    for spec in proto.unit_wise_quantization_specs:
        method = _METHOD_NAMES[spec.quantization_method.preset_method]
        for unit in spec.unit:
            rules.append(_rule({key: getattr(unit, key) for key in _UNIT_KEYS}, method))
    return rules


def _rule(unit: Mapping[str, object], method: str) -> dict:
    unit_method, bits = METHODS[method]
    return {**{key: unit[key] for key in _UNIT_KEYS if unit.get(key)}, "method": unit_method, "activation_bits": bits}


def check_supported(resolved: ResolvedOptions) -> None:
    """Raises ValueError naming the first setting tfquant cannot honour."""
    proto = resolved.proto
    if proto.op_set == OpSet.STABLEHLO:
        raise ValueError("op set STABLEHLO is not supported; tfquant supports XLA, TF and UNIFORM_QUANTIZED")
    if proto.op_set == OpSet.UNIFORM_QUANTIZED and (resolved.activation_bits == 16 or any(
            r["activation_bits"] == 16 for r in json.loads(resolved.unit_rules))):
        raise ValueError("16-bit activations (static_range_int16x8) are not supported on the UNIFORM_QUANTIZED "
                         "op set: its kernels take 8-bit operands; use XLA or TF")
    for spec in proto.quantization_method.quantization_component_specs:
        if spec.tensor_type == _TensorType.TENSORTYPE_INT_4:
            raise ValueError(f"tensor type TENSORTYPE_INT_4 for {_Component.Name(spec.quantization_component)} "
                             "is not supported yet; tfquant supports TENSORTYPE_INT_8")
    if proto.HasField("debugger_config"):
        raise ValueError(f"debugger_config ({_DebuggerType.Name(proto.debugger_config.debugger_type)}) "
                         "is not supported yet")


def _check_enums(proto: QuantizationOptions) -> None:
    """Refuses enum numbers the proto does not define (proto3 enums accept any int)."""
    _check_enum(OpSet.DESCRIPTOR, proto.op_set, "op_set")
    _check_method_enums(proto.quantization_method, "quantization_method")
    for i, spec in enumerate(proto.unit_wise_quantization_specs):
        _check_method_enums(spec.quantization_method, f"unit_wise_quantization_specs[{i}].quantization_method")
    _check_enum(_CalibrationMethod.DESCRIPTOR, proto.calibration_options.calibration_method,
                "calibration_options.calibration_method")
    _check_enum(_DebuggerType.DESCRIPTOR, proto.debugger_config.debugger_type, "debugger_config.debugger_type")


def _check_unique_signature_keys(proto: QuantizationOptions) -> None:
    """Refuses a signature key listed twice (TF quietly quantizes it once): most likely the second
    was meant to name another signature, which would then be left out of the output."""
    repeated = [key for key, count in Counter(proto.signature_keys).items() if count > 1]
    if repeated:
        raise ValueError(f"signature_keys lists signature '{repeated[0]}' more than once")


def _check_method_enums(method: QuantizationMethod, where: str) -> None:
    _check_enum(_PresetMethod.DESCRIPTOR, method.preset_method, f"{where}.preset_method")
    for i, spec in enumerate(method.quantization_component_specs):
        prefix = f"{where}.quantization_component_specs[{i}]"
        _check_enum(_Component.DESCRIPTOR, spec.quantization_component, f"{prefix}.quantization_component")
        _check_enum(_TensorType.DESCRIPTOR, spec.tensor_type, f"{prefix}.tensor_type")


def _check_enum(descriptor: EnumDescriptor, value: int, where: str) -> None:
    if value not in descriptor.values_by_number:
        known = ", ".join(v.name for v in descriptor.values)
        raise ValueError(f"unknown {where} value {value}; known values are {known}")


def _populate_defaults(proto: QuantizationOptions) -> None:
    """TensorFlow's `_populate_quantization_options_default_values`, on our per-channel default.

    TF also refuses per-channel weights outside a few opset/method pairs; that limit is
    its own kernels', not ours, so it is not repeated here.
    """
    if proto.op_set == OpSet.OP_SET_UNSPECIFIED:
        proto.op_set = OpSet.XLA
    if not proto.tags:
        proto.tags.append("serve")
    if not proto.signature_keys:
        proto.signature_keys.append("serving_default")
    if not proto.HasField("freeze_all_variables"):
        proto.freeze_all_variables = True
    if proto.enable_legacy_weight_only:
        raise ValueError("Legacy weight-only is deprecated. Use weight-only quantization method.")
    method = proto.quantization_method
    if method.preset_method == _PresetMethod.METHOD_UNSPECIFIED:
        method.preset_method = _PresetMethod.METHOD_STATIC_RANGE_INT8
    if proto.min_num_elements_for_weights < 0:
        raise ValueError(f"min_num_elements_for_weights must not be negative, got {proto.min_num_elements_for_weights}")
    if proto.min_num_elements_for_weights == 0:
        proto.min_num_elements_for_weights = DEFAULT_MIN_NUM_ELEMENTS_FOR_WEIGHTS
    if not proto.HasField("enable_per_channel_quantization"):
        proto.enable_per_channel_quantization = True
    if (method.preset_method == _PresetMethod.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8
            and proto.op_set in (OpSet.UNIFORM_QUANTIZED, OpSet.TF)):
        raise ValueError("TF/Uniform quantized opset does not support weight-only.")
    if proto.op_set == OpSet.STABLEHLO and method.preset_method not in (
            _PresetMethod.METHOD_STATIC_RANGE_INT8, _PresetMethod.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8):
        raise ValueError("StableHLO quantized opset currently only supports static range quantization and "
                         "weight-only quantization.")
    # TF forces graph-mode calibration; kept so the filled proto reads as TF's would.
    proto.force_graph_mode_calibration = True
    if proto.HasField("debugger_config"):
        _populate_debugger_config(proto.debugger_config)
    _populate_component_specs(method)
    _populate_unit_wise_specs(proto)
    for key, dataset_file in proto.representative_datasets.items():
        if not dataset_file.HasField("tfrecord_file_path"):
            raise ValueError(f"representative_datasets['{key}'] has no tfrecord_file_path")
    if method.preset_method == _PresetMethod.METHOD_STATIC_RANGE_INT8:
        _populate_calibration_options(proto)


def _populate_debugger_config(config: DebuggerConfig) -> None:
    if not config.log_dir_path:
        config.log_dir_path = "/tmp/dumps"
    if config.debugger_type == _DebuggerType.DEBUGGER_TYPE_UNSPECIFIED:
        raise ValueError("Debugger is enabled but debugger type was not specified.")
    if config.debugger_type == _DebuggerType.DEBUGGER_TYPE_WHOLE_MODEL and not config.unquantized_dump_model_path:
        raise ValueError("Debugger type whole model verify was used but unquantized_dump_model_path was not specified.")


def _populate_component_specs(method: QuantizationMethod) -> None:
    """TF's `_populate_quantization_component_spec`: preset specs, overridden by the given ones.

    Unlike TF, an INT_4 weight or activation is kept, so that `check_supported` can say
    it is not supported yet rather than call it invalid.
    """
    int8_operands = {
        _PresetMethod.METHOD_STATIC_RANGE_INT8: (_Component.COMPONENT_ACTIVATION, _Component.COMPONENT_WEIGHT),
        _PresetMethod.METHOD_DYNAMIC_RANGE_INT8: (_Component.COMPONENT_ACTIVATION, _Component.COMPONENT_WEIGHT),
        _PresetMethod.METHOD_STATIC_RANGE_WEIGHT_ONLY_INT8: (_Component.COMPONENT_WEIGHT,),
    }.get(method.preset_method, ())
    specs = {c: QuantizationComponentSpec(quantization_component=c, tensor_type=_TensorType.TENSORTYPE_INT_8)
             for c in int8_operands}
    if _Component.COMPONENT_ACTIVATION in specs:
        specs[_Component.COMPONENT_BIAS] = QuantizationComponentSpec(
            quantization_component=_Component.COMPONENT_BIAS, tensor_type=_TensorType.TENSORTYPE_INT_32)
    for spec in method.quantization_component_specs:
        component = spec.quantization_component
        if component == _Component.COMPONENT_UNSPECIFIED:
            raise ValueError("a quantization component spec has no quantization_component")
        if component in (_Component.COMPONENT_WEIGHT, _Component.COMPONENT_ACTIVATION):
            if spec.tensor_type not in (_TensorType.TENSORTYPE_INT_8, _TensorType.TENSORTYPE_INT_4):
                raise ValueError(f"{_Component.Name(component)} cannot be {_TensorType.Name(spec.tensor_type)}: "
                                 "only int8 precision is supported for input operands")
        elif spec.tensor_type != _TensorType.TENSORTYPE_INT_32:
            raise ValueError(f"COMPONENT_BIAS cannot be {_TensorType.Name(spec.tensor_type)}: "
                             "only int32 precision is supported for bias")
        specs[component] = spec
    del method.quantization_component_specs[:]
    method.quantization_component_specs.extend(specs.values())
    expected = 3 if _Component.COMPONENT_ACTIVATION in int8_operands else len(int8_operands)
    if int8_operands and len(specs) != expected:
        raise ValueError(f"{_PresetMethod.Name(method.preset_method)} takes {expected} component specs, got "
                         + ", ".join(_Component.Name(c) for c in specs))


def _populate_unit_wise_specs(proto: QuantizationOptions) -> None:
    """TF's `_populate_unitwise_quantization_specs`, without its limit to NO_QUANTIZE or the
    top-level method: tfquant gives a unit any method."""
    for spec in proto.unit_wise_quantization_specs:
        if not spec.unit:
            raise ValueError("UnitWiseQuantizationSpec must contain at least one unit.")
        for unit in spec.unit:
            if not unit.op_type and not unit.node_name:
                raise ValueError("Either `op_type` or `node_name` must be specified.")
        method = spec.quantization_method
        if method.preset_method == _PresetMethod.METHOD_UNSPECIFIED:
            # A unit-wise spec without a method takes the top-level one.
            method.preset_method = proto.quantization_method.preset_method
        _populate_component_specs(method)


def _populate_calibration_options(proto: QuantizationOptions) -> None:
    """TF's `_populate_calibration_options`, plus range checks on the numbers it leaves alone.

    TF's `calibration_data_dir` handling (creating the directory) is left to whoever uses it.
    """
    calibration = proto.calibration_options
    params = calibration.calibration_parameters
    method = calibration.calibration_method
    if method == _CalibrationMethod.CALIBRATION_METHOD_UNSPECIFIED:
        calibration.calibration_method = _CalibrationMethod.CALIBRATION_METHOD_MIN_MAX
    elif method == _CalibrationMethod.CALIBRATION_METHOD_HISTOGRAM_PERCENTILE:
        if not params.num_bins:
            params.num_bins = DEFAULT_NUM_BINS
        if not params.min_percentile:
            params.min_percentile = DEFAULT_MIN_PERCENTILE
        if not params.max_percentile:
            params.max_percentile = DEFAULT_MAX_PERCENTILE
        if not 0 <= params.min_percentile < params.max_percentile <= 100:
            raise ValueError("calibration_options.calibration_parameters must satisfy "
                             "0 <= min_percentile < max_percentile <= 100, got "
                             f"min_percentile={params.min_percentile:g}, max_percentile={params.max_percentile:g}")
    elif method in _HISTOGRAM_MSE_METHODS:
        activation = next(spec for spec in proto.quantization_method.quantization_component_specs
                          if spec.quantization_component == _Component.COMPONENT_ACTIVATION)
        # The MSE methods quantize and dequantize with 8 bits.
        if activation.tensor_type != _TensorType.TENSORTYPE_INT_8:
            raise ValueError("Only TENSORTYPE_INT_8 is supported for HISTOGRAM_MSE calibration methods. "
                             f"calibration_method={_CalibrationMethod.Name(method)}")
        if not params.num_bins:
            params.num_bins = DEFAULT_NUM_BINS
    _check_num_bins(calibration)


def _check_num_bins(calibration: CalibrationOptions) -> None:
    """Refuses a histogram too small for its method, before any work is done.

    TF takes any number; its kernels abort the process on a negative one, and its MSE methods
    (which choose a range between two different bins) crash on a single bin. Methods without a
    histogram ignore num_bins, as TF does.
    """
    method = calibration.calibration_method
    if method not in HISTOGRAM_METHODS:
        return
    fewest = 2 if method in _HISTOGRAM_MSE_METHODS else 1
    num_bins = calibration.calibration_parameters.num_bins
    if num_bins < fewest:
        raise ValueError(f"calibration_options.calibration_parameters.num_bins must be at least {fewest} for "
                         f"{_CalibrationMethod.Name(method)}, got {num_bins}")
