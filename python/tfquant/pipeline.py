"""Pass pipelines: parsed from and printed as `--pass-pipeline` strings, run on a module.

`str(Pipeline)` is `builtin.module(tfq-a{opt=v},cse)` and `parse_pipeline` reads it back to an
equal pipeline. Our passes run as Python passes in the bindings' PassManager, mixed with
upstream ones (`cse`, `symbol-dce`, `canonicalize{...}`), which go to the PassManager as text.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tfquant.mlir import ir, passmanager
from tfquant.pass_registry import closest_pass_names, lookup_pass


@dataclass(frozen=True)
class PassSpec:
    """One pipeline element: a pass name and its options (upstream passes keep theirs as text)."""
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    upstream_text: str | None = None

    def __str__(self) -> str:
        if self.upstream_text is not None:
            return self.upstream_text
        registered = lookup_pass(self.name)
        if not self.options:
            return self.name
        body = " ".join(f"{k}={registered.option(k).format(v)}" for k, v in self.options.items())
        return f"{self.name}{{{body}}}"


@dataclass(frozen=True)
class Pipeline:
    """An ordered list of passes."""
    passes: tuple[PassSpec, ...]

    def __str__(self) -> str:
        return "builtin.module(" + ",".join(str(p) for p in self.passes) + ")"

    def __add__(self, other: "Pipeline") -> "Pipeline":
        return Pipeline(self.passes + other.passes)


def make_pipeline(*elements: str | tuple[str, dict[str, Any]]) -> Pipeline:
    """A pipeline from names or (name, options) pairs, options checked against the registry."""
    specs = []
    for element in elements:
        name, options = (element, {}) if isinstance(element, str) else element
        specs.append(pass_spec(name, options))
    return Pipeline(tuple(specs))


def pass_spec(name: str, options: dict[str, Any] | None = None) -> PassSpec:
    """A checked PassSpec for one of our passes; options keep the order the pass declares them."""
    registered = _require_pass(name)
    options = options or {}
    for key, value in options.items():
        registered.option(key).check(value, name)
    ordered = {o.name: options[o.name] for o in registered.options if o.name in options}
    return PassSpec(name, ordered)


def _require_pass(name: str):
    registered = lookup_pass(name)
    if registered is None:
        raise ValueError(_unknown_pass_message(name))
    return registered


def _unknown_pass_message(name: str) -> str:
    close = closest_pass_names(name)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; run tfquant-opt --list-passes for the list"
    return f"unknown pass '{name}'{hint}"


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on `separator` outside of (), {} and quotes."""
    parts, depth, current, quote = [], 0, [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def parse_options(name: str, text: str) -> dict[str, Any]:
    """`a=1 b=true` -> {"a": 1, "b": True}, typed by the pass's declared options."""
    registered = _require_pass(name)
    options = {}
    for item in split_top_level(text.strip(), " "):
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"option '{item}' of pass '{name}' has no value (expected {item}=VALUE)")
        key, value = item.split("=", 1)
        options[key] = registered.option(key).parse(value.strip("'\""), name)
    return pass_spec(name, options).options


def parse_pipeline(text: str) -> Pipeline:
    """Parse `builtin.module(p1,p2{opt=v},...)` (the `builtin.module(...)` wrapper is optional)."""
    text = text.strip()
    if text.startswith("builtin.module(") and text.endswith(")"):
        text = text[len("builtin.module("):-1]
    specs = []
    for item in split_top_level(text):
        name, _, rest = item.partition("{")
        name = name.strip()
        if lookup_pass(name) is not None:
            specs.append(PassSpec(name, parse_options(name, rest.rstrip("}"))))
        else:
            _check_upstream(item, name)
            specs.append(PassSpec(name, upstream_text=item))
    return Pipeline(tuple(specs))


def _check_upstream(item: str, name: str) -> None:
    try:
        with ir.Context():
            passmanager.PassManager.parse(f"builtin.module({item})")
    except ValueError as error:
        if "does not refer to a registered pass" in str(error) or name.startswith("tfq-"):
            raise ValueError(_unknown_pass_message(name)) from None
        raise ValueError(f"invalid pass '{item}': {str(error).splitlines()[-1]}") from None


def pass_manager(pipeline: Pipeline, print_ir_after_all: bool = False,
                 dump_dir: str | None = None, debug: bool = False) -> passmanager.PassManager:
    """A PassManager running `pipeline` (needs an active context).

    `dump_dir` receives the module after each pass, one file per pass (constants elided). With
    `debug`, an unexpected exception in one of our passes propagates instead of becoming a diagnostic.
    """
    pm = passmanager.PassManager("builtin.module")
    for spec in pipeline.passes:
        if spec.upstream_text is not None:
            pm.add(spec.upstream_text)
            continue
        registered = lookup_pass(spec.name)
        options = dict(spec.options)
        pm.add(lambda op, handle, registered=registered, options=options: registered.run(op, handle, options, debug),
               name=registered.function.__name__, argument=registered.name, description=registered.summary)
    if print_ir_after_all:
        pm.enable_ir_printing(print_after_all=True)
    elif dump_dir is not None:
        pm.enable_ir_printing(print_after_all=True, large_elements_limit=16, tree_printing_dir_path=dump_dir)
    return pm


def run_pipeline(module: ir.Module, pipeline: Pipeline | str | Sequence[str],
                 print_ir_after_all: bool = False, dump_dir: str | None = None) -> ir.Module:
    """Run `pipeline` on `module` in place; raises ir.MLIRError with the diagnostics on failure.

    With `dump_dir`, also writes there the module before the pipeline (`input.mlirbc`, bytecode
    that tfquant-opt reads), the pipeline string (`pipeline.txt`) and the module after each pass.
    """
    if isinstance(pipeline, str):
        pipeline = parse_pipeline(pipeline)
    elif not isinstance(pipeline, Pipeline):
        pipeline = make_pipeline(*pipeline)
    if dump_dir is not None:
        _dump_input(module, pipeline, dump_dir)
    with module.context:
        pass_manager(pipeline, print_ir_after_all, dump_dir).run(module.operation)
    return module


def _dump_input(module: ir.Module, pipeline: Pipeline, dump_dir: str) -> None:
    import os
    os.makedirs(dump_dir, exist_ok=True)
    with open(os.path.join(dump_dir, "input.mlirbc"), "wb") as f:
        module.operation.write_bytecode(f)
    with open(os.path.join(dump_dir, "pipeline.txt"), "w", encoding="utf-8") as f:
        f.write(str(pipeline) + "\n")


PRE_CALIBRATION = "pre_calibration"
CALIBRATE = "calibrate"
QUANTIZE = "quantize"
LOWER = "lower"
_LOWERING = {"XLA": "tfq-lower-to-xla", "TF": "tfq-lower-to-tf", "UNIFORM_QUANTIZED": "tfq-lower-to-uniform-quantized",
             "ONEDNN": "tfq-lower-to-onednn"}


@dataclass(frozen=True)
class Stage:
    """One step of a quantization run: a pass pipeline, or (CALIBRATE, no pipeline) running the
    representative dataset through the instrumented module."""
    name: str
    pipeline: Pipeline | None = None


def build(options, calibrate: bool = True, equalize: bool = False) -> tuple[Stage, ...]:
    """The stages a method needs, from resolved options (`tfquant.options.ResolvedOptions`).

    PRE_CALIBRATION lifts the quantizable units and gives each its spec (and, with `calibrate`,
    puts calibration points on what needs ranges); CALIBRATE, only with `calibrate`, sets those
    ranges; QUANTIZE turns each unit into its quantized form; LOWER lowers to the opset and cleans
    up. Methods without ranges to calibrate (dynamic range, weight-only, float16, a QAT model whose
    fake-quant ops carry them) are built with `calibrate=False`. `equalize` runs cross-layer
    equalization on the lifted units; with `calibrate`, QUANTIZE first corrects the biases the
    accuracy tools measured (`tfq.bias_shift`, none otherwise).
    """
    if options.opset not in _LOWERING:
        raise ValueError(f"op set {options.opset} is not supported; tfquant supports {', '.join(_LOWERING)}")
    spec = {"method": options.unit_method, "activation-bits": options.activation_bits,
            "per-channel": options.per_channel, "min-weight-elements": options.min_num_elements_for_weights,
            "units": options.unit_rules}
    prepare = make_pipeline("tfq-specialize-function-arguments", "tfq-convert-fake-quant-to-qdq", "tfq-prepare-lifting",
                            "tfq-lift-quantizable-spots-as-functions",
                            *(("tfq-equalize-cross-layer",) if equalize else ()), ("tfq-assign-quantization-spec", spec))
    quantize = make_pipeline("tfq-quantize-weights", "tfq-quantize-composite-functions")
    if calibrate:
        prepare += make_pipeline(("tfq-insert-calibration-stats", {"method": options.calibration_method}))
        quantize = make_pipeline("tfq-apply-calibration-stats", "tfq-correct-bias") + quantize
    lower = make_pipeline("tfq-optimize", _LOWERING[options.opset], "tfq-inline", "tfq-optimize") + \
        parse_pipeline("symbol-dce")
    return (Stage(PRE_CALIBRATION, prepare), *((Stage(CALIBRATE),) if calibrate else ()),
            Stage(QUANTIZE, quantize), Stage(LOWER, lower))
