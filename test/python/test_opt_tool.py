"""tfquant-opt as a tool: exit statuses, what it leaves on disk when a run fails, bad inputs, Ctrl-C."""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tfquant import pass_registry
from tfquant.tools.opt import main

INPUTS = os.path.join(os.path.dirname(__file__), "..", "tools", "Inputs")
IDENTITY = os.path.join(INPUTS, "identity.mlir")
INVALID_RANGE = os.path.join(INPUTS, "invalid_range.mlir")


def test_failed_run_leaves_an_existing_output_file_untouched(tmp_path, capsys):
    output = tmp_path / "out.mlir"
    output.write_text("previous result\n")
    unparsable = tmp_path / "unparsable.mlir"
    unparsable.write_text("func.func @f( {\n")
    assert main([str(unparsable), "-o", str(output)]) == 1
    assert main([INVALID_RANGE, "-tfq-apply-calibration-stats", "-o", str(output)]) == 1
    assert output.read_text() == "previous result\n"
    assert "invalid range" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["out.mlir", "unparsable.mlir"]


def test_output_naming_the_input_is_kept_when_a_pass_fails(tmp_path):
    path = tmp_path / "in.mlir"
    shutil.copy(INVALID_RANGE, path)
    assert main([str(path), "-tfq-apply-calibration-stats", "-o", str(path)]) == 1
    with open(INVALID_RANGE) as original:
        assert path.read_text() == original.read()
    assert os.listdir(tmp_path) == ["in.mlir"]


def test_successful_run_replaces_the_output_file(tmp_path):
    output = tmp_path / "out.mlir"
    output.write_text("previous result\n")
    assert main([IDENTITY, "-tfq-prepare-lifting", "-o", str(output)]) == 0
    assert "return %arg0" in output.read_text()
    assert os.listdir(tmp_path) == ["out.mlir"]


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xfe\x00binary", b"module {}\x00"])
def test_binary_input_is_a_clear_error(tmp_path, capsys, data):
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert main([str(path), "-o", str(tmp_path / "out.mlir")]) == 1
    err = capsys.readouterr().err
    assert err == (f"tfquant-opt: error: {path} is not an MLIR file: "
                   "expected MLIR text (UTF-8) or MLIR bytecode\n")
    assert os.listdir(tmp_path) == ["weights.bin"]


@pytest.fixture
def failing_pass(monkeypatch):
    """`failing_pass(exception)`: tfq-optimize, for one test, raises `exception`."""
    def replace(exception: BaseException) -> None:
        def fail(module_op):
            raise exception

        registered = pass_registry.lookup_pass("tfq-optimize")
        monkeypatch.setitem(pass_registry._PASSES, "tfq-optimize", dataclasses.replace(registered, function=fail))

    return replace


def test_interrupt_during_a_pass_exits_130_in_one_line_leaving_no_output(tmp_path, capsys, failing_pass):
    failing_pass(KeyboardInterrupt())
    output = tmp_path / "out.mlir"
    assert main([IDENTITY, "-tfq-optimize", "-o", str(output)]) == 130
    assert capsys.readouterr().err == "tfquant-opt: interrupted\n"
    assert os.listdir(tmp_path) == []


def test_a_pass_bug_is_an_error_naming_the_pass_without_traceback(capsys, failing_pass):
    failing_pass(KeyError("strides"))
    assert main([IDENTITY, "-tfq-optimize"]) == 1
    assert capsys.readouterr().err == \
        f"{IDENTITY}:0:0: error: internal error in pass 'tfq-optimize': KeyError: 'strides'\n"


def test_debug_shows_the_traceback_of_a_pass_bug(capsys, failing_pass):
    failing_pass(KeyError("strides"))
    assert main([IDENTITY, "-tfq-optimize", "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in fail" in err
    assert err.endswith("tfquant-opt: error: KeyError: 'strides'\n")


def _blocked_reading_stdin(pid: int) -> bool:
    """Whether the process waits in read(0, ...) (x86-64 and arm64 Linux number read 0 and 63)."""
    with open(f"/proc/{pid}/syscall") as f:
        fields = f.read().split()
    return len(fields) > 1 and fields[0] in ("0", "63") and fields[1] == "0x0"


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/syscall"), reason="needs Linux /proc")
def test_ctrl_c_exits_130_in_one_line(tmp_path):
    tool = shutil.which("tfquant-opt", path=os.path.dirname(sys.executable))
    process = subprocess.Popen([tool, "-", "-o", str(tmp_path / "out.mlir")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _blocked_reading_stdin(process.pid):
            assert time.monotonic() < deadline and process.poll() is None, "tfquant-opt never read its input"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert err.decode() == "tfquant-opt: interrupted\n"
    assert os.listdir(tmp_path) == []
