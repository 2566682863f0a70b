"""The README's Python examples run as written, in order, on the bundled Keras example model."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    with open(README, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) == 2, "the README has two runnable Python examples: quantizing, and the accuracy tools"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    report = namespace["quantized"].quantization_report
    assert report.quantized_layers == {"Conv2D": (3, 3), "DepthwiseConv2dNative": (1, 1), "MatMul": (1, 1)}
    assert min(report.sqnr_db.values()) > 30.0
    assert report.output_bytes * 3 < report.input_bytes
    printed = capsys.readouterr().out
    assert "Number of quantized layers in the model" in printed and "output_0" in printed
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    report = namespace["quantized"].quantization_report
    assert min(report.sqnr_db.values()) >= 30.0
    assert len(report.layers.layers) == 5
    assert "held out of calibration" in capsys.readouterr().out
    assert {"sqnr.png", "sqnr.json", "layers.json"} <= set(os.listdir(tmp_path))
