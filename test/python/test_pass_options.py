"""Typed pass options: values checked when a pipeline is parsed or built, errors that say what is allowed."""
from __future__ import annotations

import pytest

from tfquant.options import CalibrationOptions
from tfquant.pass_registry import PassOption
from tfquant.passes.insert_calibration_stats import CALIBRATION_METHODS
from tfquant.pipeline import make_pipeline


def test_calibration_method_choices_are_tensorflows_names():
    names = set(CalibrationOptions.CalibrationMethod.keys()) - {"CALIBRATION_METHOD_UNSPECIFIED"}
    assert set(CALIBRATION_METHODS) == names


@pytest.mark.parametrize("option, text, value", [
    (PassOption("n", int, 1, ""), "12", 12),
    (PassOption("x", float, 1.0, ""), "0.25", 0.25),
    (PassOption("x", float, 1.0, ""), "3", 3.0),
    (PassOption("b", bool, True, ""), "FALSE", False),
    (PassOption("b", bool, True, ""), "1", True),
    (PassOption("m", str, "a", "", choices=("a", "b")), "b", "b"),
])
def test_option_text_parses_to_its_type(option, text, value):
    parsed = option.parse(text, "tfq-test")
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("option, text, allowed", [
    (PassOption("n", int, 1, ""), "1.5", "int (an integer)"),
    (PassOption("x", float, 1.0, ""), "fast", "float (a finite number)"),
    (PassOption("x", float, 1.0, ""), "nan", "float (a finite number)"),
    (PassOption("b", bool, True, ""), "yes", "bool (true or false)"),
    (PassOption("m", str, "a", "", choices=("a", "b")), "c", "one of a, b"),
])
def test_invalid_option_text_names_pass_option_and_allowed_values(option, text, allowed):
    with pytest.raises(ValueError) as error:
        option.parse(text, "tfq-test")
    assert str(error.value) == f"invalid value {text!r} for option '{option.name}' of pass 'tfq-test': expected {allowed}"


def test_values_given_from_python_are_checked_too():
    with pytest.raises(ValueError, match="option 'method' of pass 'tfq-insert-calibration-stats': expected one of"):
        make_pipeline(("tfq-insert-calibration-stats", {"method": "MIN_MAX"}))
    with pytest.raises(ValueError, match="option 'per-channel' .* expected bool"):
        make_pipeline(("tfq-assign-quantization-spec", {"per-channel": 1}))
    with pytest.raises(ValueError, match="option 'n' of pass 'tfq-test': expected int"):
        PassOption("n", int, 1, "").check(True, "tfq-test")
    assert make_pipeline(("tfq-assign-quantization-spec", {"per-channel": False})).passes[0].options == \
        {"per-channel": False}


def test_command_line_methods_are_the_options_methods():
    from tfquant import options
    from tfquant.tools import cli
    assert cli.METHODS == tuple(options.METHODS)
    assert cli.EXTENSION_OPSETS == tuple(options.EXTENSION_OPSETS)
