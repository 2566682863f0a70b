"""The README's Python example runs as written, on the bundled Keras example model."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    with open(README, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) == 1, "the README has one runnable Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    report = namespace["quantized"].quantization_report
    assert report.quantized_layers == {"Conv2D": (3, 3), "DepthwiseConv2dNative": (1, 1), "MatMul": (1, 1)}
    assert min(report.sqnr_db.values()) > 30.0
    assert report.output_bytes * 3 < report.input_bytes
    printed = capsys.readouterr().out
    assert "Number of quantized layers in the model" in printed and "output_0" in printed
