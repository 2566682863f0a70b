"""tfquant-opt: run tfquant's passes (and upstream ones) on an .mlir file, like mlir-opt.

    tfquant-opt in.mlir --pass-pipeline='builtin.module(tfq-prepare-lifting)' [-o out.mlir]
    tfquant-opt in.mlir -split-input-file -tfq-prepare-lifting -cse
    tfquant-opt --list-passes

Errors print as `file:line:col: error: message` with the source line, and exit with status 1; a
Python exception in a pass is an error naming the pass (its traceback only with --debug). A run
that fails or is interrupted (Ctrl-C: status 130) leaves the -o file as it was.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from dataclasses import dataclass

from tfquant.mlir import Diagnostic, collecting_remarks, format_diagnostic, ir, new_context
from tfquant.pass_registry import registered_passes
from tfquant.pipeline import Pipeline, PassSpec, parse_options, parse_pipeline, pass_manager

SPLIT_MARKER = re.compile(r"^// -----", re.MULTILINE)
FIXED_FLAGS = ("pass-pipeline", "split-input-file", "list-passes", "mlir-print-ir-after-all",
               "mlir-print-debuginfo", "mlir-print-op-generic", "verify-diagnostics", "remarks", "debug", "help")
# argparse's own one-letter flags (-h, -o FILE): not pass names.
SHORT_FLAGS = ("h", "o")
EXPECTED = re.compile(r"expected-(error|warning|note|remark)\s*(@[+-]?\d+|@above|@below)?\s*\{\{(.*?)\}\}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfquant-opt", description="Run tfquant passes on an MLIR file, like mlir-opt.",
        epilog="Each registered pass is also a flag: -tfq-NAME or -tfq-NAME='opt=value ...' (see --list-passes).")
    parser.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' for stdin)")
    parser.add_argument("-o", dest="output", default="-", help="output file ('-' for stdout)")
    parser.add_argument("--pass-pipeline", help="e.g. 'builtin.module(tfq-prepare-lifting,cse)'")
    parser.add_argument("--split-input-file", action="store_true", help="process chunks split by '// -----'")
    parser.add_argument("--list-passes", action="store_true", help="print the registered passes and exit")
    parser.add_argument("--mlir-print-ir-after-all", action="store_true", help="print the IR after each pass")
    parser.add_argument("--mlir-print-debuginfo", action="store_true", help="print locations")
    parser.add_argument("--mlir-print-op-generic", action="store_true", help="print ops in generic form")
    parser.add_argument("--verify-diagnostics", action="store_true",
                        help="check errors and remarks against expected-error/remark {{...}} comments")
    parser.add_argument("--remarks", action="store_true",
                        help="print remarks to stderr (why a unit stays float, ...)")
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks, also of internal errors in passes")
    return parser


def _split_pass_flags(argv: list[str]) -> tuple[list[str], list[PassSpec]]:
    """Separate per-pass flags (-tfq-x, -tfq-x=opts, -cse) from the fixed flags."""
    rest, passes = [], []
    registered = registered_passes()
    for arg in argv:
        match = re.fullmatch(r"--?([A-Za-z][\w.-]*)(?:=(.*))?", arg, re.DOTALL)
        if match is None or match.group(1) in FIXED_FLAGS or match.group(1) in SHORT_FLAGS:
            rest.append("--" + arg.lstrip("-") if match and match.group(1) in FIXED_FLAGS else arg)
            continue
        name, options = match.group(1), match.group(2)
        if name in registered:
            passes.append(PassSpec(name, parse_options(name, options or "")))
        else:
            text = name if options is None else f"{name}{{{options}}}"
            passes.extend(parse_pipeline(text).passes)
    return rest, passes


@dataclass
class _Chunk:
    text: str | bytes
    first_line: int


def _chunks(source: str | bytes, split: bool) -> list[_Chunk]:
    if not split or isinstance(source, bytes):
        return [_Chunk(source, 1)]
    chunks, start = [], 0
    for match in SPLIT_MARKER.finditer(source):
        chunks.append(_Chunk(source[start:match.start()], source.count("\n", 0, start) + 1))
        line_end = source.find("\n", match.start())
        start = len(source) if line_end < 0 else line_end + 1
    chunks.append(_Chunk(source[start:], source.count("\n", 0, start) + 1))
    return chunks


def _diagnostics(error: ir.MLIRError, source: str, filename: str) -> list[Diagnostic]:
    found = []
    for info in error.error_diagnostics:
        found.append(format_diagnostic(info.location, info.message, source, filename))
        for note in info.notes:
            found.append(format_diagnostic(note.location, note.message, source, filename, "note"))
    if not found:
        found.append(Diagnostic(filename, str(error)))
    return found


def _run_chunk(chunk: _Chunk, pipeline: Pipeline, args, filename: str, source: str) -> tuple[str | None, list[Diagnostic]]:
    """The chunk's output text (None on failure) and its diagnostics: errors, and remarks when asked
    for (`--remarks`, or `--verify-diagnostics`, which checks them too)."""
    ctx = new_context()
    padded = chunk.text if isinstance(chunk.text, bytes) else "\n" * (chunk.first_line - 1) + chunk.text
    remarks: list[Diagnostic] = []

    def collect(loc: ir.Location, message: str) -> None:
        if args.remarks or args.verify_diagnostics:
            remarks.append(format_diagnostic(loc, message, source, filename, "remark"))

    try:
        with ctx, collecting_remarks(collect):
            module = ir.Module.parse(padded)
            pass_manager(pipeline, args.mlir_print_ir_after_all, debug=args.debug).run(module.operation)
            text = module.operation.get_asm(enable_debug_info=args.mlir_print_debuginfo,
                                            print_generic_op_form=args.mlir_print_op_generic)
    except ir.MLIRError as error:
        return None, remarks + _diagnostics(error, source, filename)
    return text, remarks


def _expected_diagnostics(source: str) -> list[tuple[int, str, str]]:
    expected = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in EXPECTED.finditer(line):
            offset = match.group(2)
            target = number
            if offset in ("@above",):
                target = number - 1
            elif offset in ("@below",):
                target = number + 1
            elif offset:
                target = number + int(offset[1:])
            expected.append((target, match.group(1), match.group(3)))
    return expected


def _verify(source: str, filename: str, produced: list[Diagnostic]) -> list[str]:
    """Problems found matching produced diagnostics against expected-* comments (empty: all good)."""
    expected = _expected_diagnostics(source)
    problems = []
    unmatched = list(produced)
    for line, severity, message in expected:
        hit = next((d for d in unmatched if d.severity == severity and d.where.split(":")[-2:-1] == [str(line)]
                    and message in d.message), None)
        if hit is None:
            problems.append(f"{filename}:{line}: error: expected {severity} \"{message}\" was not produced")
        else:
            unmatched.remove(hit)
    for diagnostic in unmatched:
        problems.append(f"{diagnostic.where}: error: unexpected {diagnostic.severity}: {diagnostic.message}")
    return problems


BYTECODE_MAGIC = b"ML\xefR"


def _read(path: str, filename: str) -> str | bytes:
    """The input text, or its bytes when it is MLIR bytecode (as `tfquant quantize --dump-ir` writes)."""
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    if data.startswith(BYTECODE_MAGIC):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    # The MLIR lexer stops at a NUL byte: a binary file would parse as a truncated module.
    if text is None or "\0" in text:
        raise ValueError(f"{filename} is not an MLIR file: expected MLIR text (UTF-8) or MLIR bytecode")
    return text


def run(argv: list[str]) -> int:
    rest, flag_passes = _split_pass_flags(argv)
    args = _parser().parse_args(rest)
    if args.list_passes:
        for name, registered in registered_passes().items():
            print(f"  {name}: {registered.summary}")
            for option in registered.options:
                print(f"      {option.name}: {option.help}; {option.allowed()}, "
                      f"default {option.format(option.default)}")
        return 0
    pipeline = parse_pipeline(args.pass_pipeline) if args.pass_pipeline else Pipeline(())
    pipeline = pipeline + Pipeline(tuple(flag_passes))
    filename = "<stdin>" if args.input == "-" else args.input
    source = _read(args.input, filename)
    outputs, diagnostics = [], []
    for chunk in _chunks(source, args.split_input_file):
        text, chunk_diagnostics = _run_chunk(chunk, pipeline, args, filename, source)
        outputs.append(text if text is not None else "")
        diagnostics.extend(chunk_diagnostics)
    if args.verify_diagnostics:
        problems = _verify(source, filename, diagnostics)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)
    errors = [d for d in diagnostics if d.severity != "remark"]
    if args.output == "-":
        sys.stdout.write("// -----\n".join(outputs))
    elif not errors:
        # Like mlir-opt, a failed run keeps no output file: -o may name an earlier result or the input.
        _replace_file(args.output, "// -----\n".join(outputs))
    return 1 if errors else 0


def _replace_file(path: str, text: str) -> None:
    """Write `path` through a temporary file in its directory, so that it is never left half written."""
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:  # also Ctrl-C: no temporary file is left behind
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("tfquant-opt: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
    except (ValueError, OSError) as error:
        if "--debug" in argv:
            traceback.print_exc()
        print(f"tfquant-opt: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # an unexpected failure: still one line unless --debug
        if "--debug" in argv:
            traceback.print_exc()
        print(f"tfquant-opt: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
