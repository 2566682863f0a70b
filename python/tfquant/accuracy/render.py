"""The per-layer report for people and tools: a terminal table, a PNG plot, JSON, and node data that
ai-edge-model-explorer overlays on the model's graph.

Node data keys (what model-explorer matches a value to a node by, measured on its 0.1.34 adapters):
on the TFLite path a unit's name is its op's output tensor name, which both TFLite adapters list
as the node's `tensor_name` output metadata, so the names are keys as they are. On the SavedModel
path model-explorer's TF adapters number the nodes of each function graph ("0", "1", ...) and
carry the TF node name as the node's `namespace`; the overlay is therefore keyed by the node ids
of the graph the default SavedModel adapter (`builtin_tf_mlir`) builds, under that graph's id, so
that it colors nothing in a graph another adapter numbered differently.
"""
from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence

from tfquant._files import write_atomically
from tfquant.accuracy.layers import FLOAT, INT8, INT16, LayerError, LayerReport

# The units the table points out: this many with the lowest local SQNR.
WORST_COUNT = 3
# Unit names longer than this are shortened to their tail in the table.
TABLE_NAME_WIDTH = 40
PLOT_NAME_WIDTH = 24

# The overlay's metrics: what each colors the nodes by.
OVERLAY_METRICS: dict[str, Callable[[LayerError], float]] = {
    "local": lambda layer: layer.local_sqnr_db,
    "accumulated": lambda layer: layer.accumulated_sqnr_db,
}
# JSON has no infinity (model-explorer's JSON.parse rejects `Infinity`): an error-free unit's
# SQNR is written as this many dB, a unit with no signal as minus this.
OVERLAY_INF_DB = 999.0
# Without a target, node colors step at 10 and 5 dB under this SQNR and at it.
DEFAULT_COLOR_TARGET_DB = 30.0
_RED, _ORANGE, _YELLOW, _GREEN = "#d32f2f", "#f57c00", "#fbc02d", "#388e3c"
_KEPT_COLORS = {INT16: "#90caf9", FLOAT: "#ffcc80"}


# ----------------------------------------------------------------------------------------- table

def table(report: LayerReport) -> str:
    """The report as text for a terminal: one row per unit in graph order, the worst units marked,
    then the findings, the model's SQNR per output, the tools' effects and the target."""
    lines = [f"Per-layer SQNR in dB on {_count(report.held_out_samples, 'sample')} held out of calibration "
             f"({report.path} path).",
             "local: the unit alone quantized; accumulated: the unit's output in the quantized model."]
    lines += _unit_rows(report) if report.layers else ["No quantizable units."]
    lines += _findings_lines(report)
    lines += _model_sqnr_lines(report)
    lines += _tools_lines(report)
    lines.append(_target_line(report))
    return "\n".join(lines) + "\n"


def short_name(name: str, width: int) -> str:
    """`name` if it fits in `width` characters, else "..." and as much of its tail as fits: the last
    scopes and the op say most about a node, and the numbers that tell repeated blocks apart
    (`block_7/conv`) end their scope names."""
    return name if len(name) <= width else "..." + name[len(name) - (width - 3):]


def worst(report: LayerReport) -> list[LayerError]:
    """The units with the lowest local SQNR, worst first (error-free units are never among them)."""
    return [layer for layer in report.ranked() if layer.local_sqnr_db != math.inf][:WORST_COUNT]


def _unit_rows(report: LayerReport) -> list[str]:
    ranks = {layer.index: rank for rank, layer in enumerate(worst(report), 1)}
    columns: list[tuple[str, list[str], bool]] = [
        ("#", [str(layer.index) for layer in report.layers], True),
        ("unit", [short_name(layer.name, TABLE_NAME_WIDTH) for layer in report.layers], False),
        ("op", [layer.op_type for layer in report.layers], False),
        ("local", [db(layer.local_sqnr_db) for layer in report.layers], True),
        ("accum", [db(layer.accumulated_sqnr_db) for layer in report.layers], True),
        ("worst", [f"<< {ranks[layer.index]}" if layer.index in ranks else "" for layer in report.layers], False),
        ("input range", [_range(layer.input_range) for layer in report.layers], False),
        ("output range", [_range(layer.output_range) for layer in report.layers], False),
        ("clipped", [_clipped(layer) for layer in report.layers], True),
        ("gain if float", [_signed_db(layer.sensitivity_db) for layer in report.layers], True),
        ("cost", [_cost(layer) for layer in report.layers], False),
        ("kept as", [_kept(layer) for layer in report.layers], False),
    ]
    # Columns no unit has data for (costs and sensitivities are only measured by some runs) are left out.
    columns = [column for column in columns if any(cell.strip("-") for cell in column[1])]
    rows = [[header for header, _, _ in columns]] + [list(cells) for cells in zip(*(c[1] for c in columns))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    aligned = [[cell.rjust(w) if right else cell.ljust(w) for cell, w, (_, _, right) in zip(row, widths, columns)]
               for row in rows]
    lines = ["  ".join(row).rstrip() for row in aligned]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ranked = worst(report)
    if ranked:
        lines.append("Worst units (lowest local SQNR):")
        lines += [f"  << {rank}  {layer.name}: {db(layer.local_sqnr_db)} dB" for rank, layer in enumerate(ranked, 1)]
    return lines


def _findings_lines(report: LayerReport) -> list[str]:
    if not report.findings:
        return ["Findings: none."]
    lines = ["Findings:"]
    for finding in report.findings:
        blamed = f" (blames {', '.join(finding.units)})" if finding.units else ""
        lines.append(f"  [{finding.kind}] {finding.where}: {finding.message}{blamed}")
    return lines


def _model_sqnr_lines(report: LayerReport) -> list[str]:
    outputs = list(report.model_sqnr_db) + [k for k in report.baseline_sqnr_db if k not in report.model_sqnr_db]
    if not outputs:
        return ["Model SQNR: not measured."]
    lines = ["Model SQNR in dB (baseline -> final):" if report.baseline_sqnr_db else "Model SQNR in dB:"]
    for output in outputs:
        final = db(report.model_sqnr_db[output]) if output in report.model_sqnr_db else "-"
        if output in report.baseline_sqnr_db:
            final = f"{db(report.baseline_sqnr_db[output])} -> {final}"
        lines.append(f"  {output}: {final}")
    return lines


def _tools_lines(report: LayerReport) -> list[str]:
    lines = []
    for label, effects in (("Applied", report.applied), ("Rejected", report.rejected)):
        if effects:
            lines.append(f"{label}: " + ", ".join(f"{tool} ({_signed_db(effect)} dB)"
                                                  for tool, effect in effects.items()))
    return lines


def _target_line(report: LayerReport) -> str:
    if report.target_sqnr_db is None:
        return "Target: none."
    target = f"Target {db(report.target_sqnr_db)} dB"
    lowest = min(report.model_sqnr_db.items(), key=lambda item: item[1], default=None)
    met = report.target_met
    if met is None:
        if lowest is None:
            return f"{target}: not measured."
        # No verdict from the fallback (a report built without it): judged on the worst output.
        met = lowest[1] >= report.target_sqnr_db
    where = f" (lowest output {lowest[0]}: {db(lowest[1])} dB)" if lowest else ""
    return f"{target}: {'met' if met else 'NOT met'}{where}."


def db(value: float) -> str:
    """An SQNR as the report prints it: one decimal, "inf" and "-inf" exact."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.1f}"


def _signed_db(value: float | None) -> str:
    if value is None:
        return "-"
    return db(value) if math.isinf(value) else f"{value:+.1f}"


def _range(bounds: tuple[float, float] | None) -> str:
    return "-" if bounds is None else f"[{bounds[0]:.4g}, {bounds[1]:.4g}]"


def _clipped(layer: LayerError) -> str:
    return "-" if not layer.values else f"{layer.clipped} ({100 * layer.clipped_fraction:.2f}%)"


def _cost(layer: LayerError) -> str:
    parts = []
    if layer.size_cost_bytes:
        size = layer.size_cost_bytes
        parts.append(f"{size / 1024:+.1f} KiB" if abs(size) >= 1024 else f"{size:+d} B")
    if layer.latency_cost_s is not None:
        parts.append(f"{layer.latency_cost_s * 1e3:+.2f} ms")
    return ", ".join(parts) or "-"


def _kept(layer: LayerError) -> str:
    return f"{layer.kept_as}: {layer.reason}" if layer.reason else layer.kept_as


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


# ------------------------------------------------------------------------------------------ plot

def plot(report: LayerReport, path: str) -> None:
    """Write a PNG of the local and accumulated SQNR of each unit in graph order to `path`: fallen-back
    units shaded, the target as a dashed line, infinite SQNRs drawn at the plot's edge."""
    from matplotlib.figure import Figure   # the Agg canvas, without pyplot: no display, no global state
    from matplotlib.patches import Patch

    positions = list(range(len(report.layers)))
    local = [layer.local_sqnr_db for layer in report.layers]
    accumulated = [layer.accumulated_sqnr_db for layer in report.layers]
    bottom, top = _plot_limits(local + accumulated, report.target_sqnr_db)
    figure = Figure(figsize=(min(max(6.0, 0.3 * len(positions) + 2.0), 40.0), 4.8), layout="constrained")
    axes = figure.subplots()
    legend = []
    for kept_as, color in _KEPT_COLORS.items():
        shaded = [position for position, layer in enumerate(report.layers) if layer.kept_as == kept_as]
        for position in shaded:
            axes.axvspan(position - 0.5, position + 0.5, color=color, alpha=0.5, linewidth=0)
        if shaded:
            legend.append(Patch(color=color, alpha=0.5, label=f"kept {kept_as}"))
    for values, label, marker, color in ((local, "local", "o", "tab:blue"),
                                         (accumulated, "accumulated", "s", "tab:purple")):
        clipped = [min(max(v, bottom), top) for v in values]
        legend += axes.plot(positions, clipped, marker=marker, markersize=4, color=color, label=f"{label} SQNR")
        _mark_infinite(axes, positions, values, top, bottom, color)
    if report.target_sqnr_db is not None:
        legend.append(axes.axhline(report.target_sqnr_db, color=_RED, linestyle="--",
                                   label=f"target {db(report.target_sqnr_db)} dB"))
    axes.set_ylim(bottom, top)
    axes.set_xlim(-0.5, max(len(positions) - 0.5, 0.5))
    axes.set_xticks(positions, [f"{layer.index} {short_name(layer.name, PLOT_NAME_WIDTH)}" for layer in report.layers],
                    rotation=60, ha="right", rotation_mode="anchor", fontsize=7)
    for label, layer in zip(axes.get_xticklabels(), report.layers):
        if layer.kept_as != INT8:
            label.set_fontweight("bold")
    axes.set_ylabel("SQNR (dB)")
    axes.set_xlabel("unit, in graph order (infinite SQNR drawn at the edge: ^ inf, v -inf)", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(handles=legend, fontsize=7, loc="best")
    axes.set_title(_plot_title(report), fontsize=9)
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    write_atomically(path, png.getvalue())


def _plot_limits(values: Sequence[float], target: float | None) -> tuple[float, float]:
    """The y range: every finite value and the target, with room above for the infinite ones."""
    finite = [v for v in values if math.isfinite(v)] + ([target] if target is not None else [])
    if not finite:
        return 0.0, 60.0
    return min(0.0, min(finite) - 5.0), max(finite) + 10.0


def _mark_infinite(axes, positions: Sequence[int], values: Sequence[float], top: float, bottom: float,
                   color: str) -> None:
    for value, edge, marker in ((math.inf, top, "^"), (-math.inf, bottom, "v")):
        at = [p for p, v in zip(positions, values) if v == value]
        if at:
            axes.plot(at, [edge] * len(at), linestyle="none", marker=marker, markersize=9, color=color, clip_on=False)


def _plot_title(report: LayerReport) -> str:
    if not report.model_sqnr_db:
        sqnr = "not measured"
    else:
        sqnr = "; ".join(f"{output} {db(value)} dB" + (f" (baseline {db(report.baseline_sqnr_db[output])})"
                                                        if output in report.baseline_sqnr_db else "")
                         for output, value in report.model_sqnr_db.items())
    return (f"Model SQNR: {sqnr}\nper unit, on {_count(report.held_out_samples, 'held-out sample')}; "
            f"{len(report.fallen_back())} of {len(report.layers)} units not int8")


# ------------------------------------------------------------------------------- JSON and overlay

def write_json(report: LayerReport, path: str) -> None:
    """Write `report.to_dict()` as JSON (infinities as null) to `path`."""
    write_atomically(path, json.dumps(report.to_dict(), indent=2, allow_nan=False).encode())


def write_overlay(report: LayerReport, path: str, model_path: str | None = None, metric: str = "local") -> None:
    """Write model-explorer node data to `path` coloring each unit by its `metric` SQNR ("local" or
    "accumulated"; one file per metric), red low to green high.

    With `model_path` (the model the report is about, as model-explorer opens it) the units are
    looked up in the graph model-explorer's default adapter builds for it, every unit must be found,
    and the data is keyed by that graph's id. Without it the data applies to whichever graph is
    shown, keyed by the units' names: TFLite output tensor names are keys model-explorer matches,
    SavedModel node names are not (its nodes are numbered), so a SavedModel report needs `model_path`.
    Needs ai-edge-model-explorer installed only with `model_path`.
    """
    if metric not in OVERLAY_METRICS:
        raise ValueError(f"unknown overlay metric {metric!r}; expected one of {sorted(OVERLAY_METRICS)}")
    values = {layer.name: _overlay_value(OVERLAY_METRICS[metric](layer)) for layer in report.layers}
    if model_path is None:
        if report.path != "tflite":
            raise ValueError("model-explorer numbers the nodes of a SavedModel's graphs: pass model_path, the "
                             "SavedModel the report is about, to key the overlay by its node ids")
        data = _graph_node_data(report, metric, values)
    else:
        graph_id, keys = _explorer_keys(report, model_path)
        data = {graph_id: _graph_node_data(report, metric, {keys[name]: v for name, v in values.items()})}
    write_atomically(path, json.dumps(data, indent=2, allow_nan=False).encode())


def _overlay_value(sqnr: float) -> float:
    return max(-OVERLAY_INF_DB, min(OVERLAY_INF_DB, sqnr))


def _graph_node_data(report: LayerReport, metric: str, values: dict[str, float]) -> dict:
    """model-explorer's `GraphNodeData` as JSON: per key a `NodeDataResult`, and `ThresholdItem`s that
    color a value by the first threshold it does not exceed."""
    target = report.target_sqnr_db if report.target_sqnr_db is not None else DEFAULT_COLOR_TARGET_DB
    steps = ((target - 10.0, _RED), (target - 5.0, _ORANGE), (target, _YELLOW), (OVERLAY_INF_DB, _GREEN))
    return {"name": f"{metric} SQNR (dB)",
            "results": {key: {"value": value} for key, value in values.items()},
            "thresholds": [{"value": bound, "bgColor": color} for bound, color in steps]}


def _explorer_keys(report: LayerReport, model_path: str) -> tuple[str, dict[str, str]]:
    """The id of the graph of `model_path` that holds the report's units, as model-explorer's default
    adapter builds it, and each unit's node data key in it."""
    graphs = _explorer_graphs(model_path, report.path)
    names = [layer.name for layer in report.layers]
    keyed = [(graph["id"], _node_keys(graph, report.path)) for graph in graphs]
    graph_id, keys = max(keyed, key=lambda item: sum(name in item[1] for name in names))
    missing = [name for name in names if name not in keys]
    if missing:
        raise ValueError(f"{len(missing)} of {len(names)} units are not nodes of model-explorer's graph "
                         f"{graph_id!r} of {model_path}: {', '.join(missing[:5])}")
    return graph_id, keys


def _node_keys(graph: dict, report_path: str) -> dict[str, str]:
    """Unit name -> node data key for the nodes of a model-explorer graph: on the TFLite path each
    output tensor name is its own key, on the SavedModel path a TF node name (the node's namespace)
    maps to the node's id."""
    if report_path != "tflite":
        return {node["namespace"]: node["id"] for node in graph["nodes"]}
    return {attr["value"]: attr["value"] for node in graph["nodes"] for output in node.get("outputsMetadata", [])
            for attr in output["attrs"] if attr["key"] == "tensor_name"}


def _explorer_graphs(model_path: str, report_path: str) -> list[dict]:
    """The graphs model-explorer's default adapter for the report's format builds for `model_path`,
    as JSON-ready dicts."""
    try:
        from model_explorer.builtin_tf_mlir_adapter import BuiltinTfMlirAdapter
        from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter
    except ImportError as error:
        raise ImportError("keying the overlay by a model's graph needs model-explorer: "
                          "pip install ai-edge-model-explorer") from error
    adapter = BuiltinTfliteFlatbufferAdapter() if report_path == "tflite" else BuiltinTfMlirAdapter()
    converted = adapter.convert(model_path, {})
    return [graph for collection in converted["graphCollections"] for graph in collection.graphs]
