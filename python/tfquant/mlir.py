"""The one place tfquant imports the MLIR Python bindings from.

Everything else does `from tfquant.mlir import ir, ...`, so that another provider of the
upstream bindings is a one-file change. Also holds the small helpers every pass needs:
a context that accepts TensorFlow's unregistered dialects, op walks, locations and
diagnostics formatted as `mlir-opt` prints them.
"""
from __future__ import annotations

import contextlib
import io
import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from iree.compiler import ir, passmanager, rewrite  # noqa: F401  (re-exported)
from iree.compiler.dialects import func  # noqa: F401  (re-exported)

ir._globals.append_dialect_search_prefix("tfquant._pydialects")

__all__ = ["ir", "passmanager", "rewrite", "func", "new_context", "ops_named", "walk_ops",
           "name_of", "CompileError", "format_diagnostic", "parse_module", "module_funcs",
           "symbol_table", "clone_module", "i64_attr", "str_attr", "parse_type_cached", "emit_remark", "collecting_remarks",
           "enclosing_function_name"]


def new_context() -> ir.Context:
    """A fresh context that holds generic tf.* / tfl.* / tfq.* ops.

    One context per compilation: dense constants live as long as their context.
    """
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = True
    return ctx


# Per context: type text -> the parsed type's C API capsule. A capsule is a bare pointer (types
# live as long as their context), so the cache holds no reference to the context and its
# entry goes when the context does; an `ir.Type` value would keep the context alive.
_PARSED_TYPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def parse_type_cached(text: str, context: ir.Context) -> ir.Type:
    """`ir.Type.parse(text, context)`, cached per context (parsing a quant type takes ~0.1 ms)."""
    types = _PARSED_TYPES.setdefault(context, {})
    if text not in types:
        types[text] = ir.Type.parse(text, context)._CAPIPtr
    return ir.Type._CAPICreate(types[text]).maybe_downcast()


def walk_ops(root: ir.Operation, predicate: Callable[[ir.Operation], bool]) -> list[ir.Operation]:
    """All ops under `root` (pre-order) for which `predicate` holds."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if predicate(op):
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def ops_named(root: ir.Operation, *names: str) -> list[ir.Operation]:
    """All ops under `root` whose name is one of `names`."""
    wanted = set(names)
    return walk_ops(root, lambda op: op.name in wanted)


def module_funcs(module: ir.Module | ir.Operation) -> list[ir.Operation]:
    """The func.func ops at the top level of a module."""
    body = module.body if isinstance(module, ir.Module) else module.regions[0].blocks[0]
    return [op.operation for op in body.operations if op.operation.name == "func.func"]


def symbol_table(module: ir.Module | ir.Operation) -> dict[str, ir.Operation]:
    """Top-level func.func ops of a module by symbol name."""
    return {ir.StringAttr(f.attributes["sym_name"]).value: f for f in module_funcs(module)}


def name_of(loc: ir.Location) -> str:
    """The node name a location carries (`loc("a/b")` -> "a/b"), or "" when it has none."""
    attr = loc.attr
    text = str(attr)
    if text.startswith('loc("'):
        end = text.find('"', 5)
        # loc("file":line:col) is a file location, not a name.
        return "" if text[end + 1:end + 2] == ":" else text[5:end]
    if text.startswith("loc(fused["):
        start = text.find('"')
        if start >= 0:
            return text[start + 1:text.find('"', start + 1)]
    return ""


class CompileError(Exception):
    """An error about one op; `location` is the op's location (printed as file:line:col or its name)."""

    def __init__(self, message: str, location: ir.Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{describe_location(self.location)}: error: {self.message}"


def describe_location(loc: ir.Location) -> str:
    """`file:line:col` for a file location, the quoted node name for a name location."""
    text = str(loc.attr)
    m = _FILE_LINE_COL.search(text)
    if m:
        return f"{m.group(1)}:{m.group(2)}:{m.group(3)}"
    name = name_of(loc)
    return f'loc("{name}")' if name else text


_FILE_LINE_COL = re.compile(r'"([^"]*)":(\d+):(\d+)')


@dataclass
class Diagnostic:
    """One diagnostic: where, what, and the source line it points at (if known)."""
    where: str
    message: str
    severity: str = "error"
    source_line: str | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = f"{self.where}: {self.severity}: {self.message}"
        if self.source_line is not None and self.column is not None:
            text += f"\n{self.source_line}\n{' ' * (self.column - 1)}^"
        return text


def format_diagnostic(loc: ir.Location, message: str, source: str | None = None,
                      filename: str | None = None, severity: str = "error") -> Diagnostic:
    """A diagnostic as mlir-opt prints it; `filename` replaces the parser's "-" buffer name."""
    m = _FILE_LINE_COL.search(str(loc.attr))
    if m:
        line, col = int(m.group(2)), int(m.group(3))
        name = filename if (filename and m.group(1) in ("-", "<stdin>")) else m.group(1)
        src_line = None
        if isinstance(source, str):
            lines = source.splitlines()
            if 0 < line <= len(lines):
                src_line = lines[line - 1]
        return Diagnostic(f"{name}:{line}:{col}", message, severity, src_line, col)
    return Diagnostic(describe_location(loc), message, severity)


# The bindings emit only error diagnostics from Python (`Location.emit_remark` is the optimization-
# remark API), so passes report remarks (why a unit stays float) here, to whoever collects them.
_REMARK_SINKS: list[Callable[[ir.Location, str], None]] = []


def emit_remark(loc: ir.Location, message: str) -> None:
    """Report a remark at `loc` to the active `collecting_remarks` blocks (none: it is dropped)."""
    for sink in _REMARK_SINKS:
        sink(loc, message)


@contextlib.contextmanager
def collecting_remarks(sink: Callable[[ir.Location, str], None]) -> Iterator[None]:
    """Within the block, every remark a pass emits goes to `sink(location, message)`."""
    _REMARK_SINKS.append(sink)
    try:
        yield
    finally:
        _REMARK_SINKS.remove(sink)


def enclosing_function_name(op: ir.Operation) -> str:
    """The name of the func.func holding `op` ("" outside any)."""
    parent = op.parent
    while parent is not None and parent.operation.name != "func.func":
        parent = parent.operation.parent
    return ir.StringAttr(parent.operation.attributes["sym_name"]).value if parent is not None else ""


def parse_module(text: str, ctx: ir.Context) -> ir.Module:
    """Parse MLIR text (generic tf.* ops allowed) in `ctx`; raises ir.MLIRError."""
    with ctx:
        return ir.Module.parse(text)


def clone_module(module: ir.Module) -> ir.Module:
    """A copy of `module` in its context (through bytecode: fast for large constants)."""
    buffer = io.BytesIO()
    module.operation.write_bytecode(buffer)
    return ir.Module.parse(buffer.getvalue(), context=module.context)


def i64_attr(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(value))


def str_attr(value: str) -> ir.StringAttr:
    return ir.StringAttr.get(value)
