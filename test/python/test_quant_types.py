"""Quant types built by passes/_quant.py: parsed once per context, without keeping the context alive."""
from __future__ import annotations

import gc

from tfquant.mlir import ir, new_context
from tfquant.passes._quant import QuantParams, parse_uniform, quantized_tensor_type


def _quantize_type(ctx: ir.Context, params: QuantParams) -> str:
    with ctx, ir.Location.unknown():
        like = ir.RankedTensorType.get([2, 3], ir.F32Type.get())
        first, second = quantized_tensor_type(like, params), quantized_tensor_type(like, params)
        assert first == second
        return str(first)


def test_quantized_type_round_trips_its_parameters():
    params = QuantParams((0.25,), (-3,))
    text = _quantize_type(new_context(), params)
    assert text == "tensor<2x3x!quant.uniform<i8:f32, 2.500000e-01:-3>>"
    assert parse_uniform(text[len("tensor<2x3x"):-1]) == params


def test_cached_quant_type_does_not_keep_its_context_alive():
    gc.collect()
    live = ir.Context._get_live_count()  # other tests' cached imports may be alive
    _quantize_type(new_context(), QuantParams((0.5,), (1,)))
    gc.collect()
    assert ir.Context._get_live_count() == live
    # A new context (possibly at the freed one's address) parses its own type.
    assert _quantize_type(new_context(), QuantParams((0.5,), (1,))).endswith("5.000000e-01:1>>")


def test_widths_signedness_and_narrow_ranges_are_read_from_the_type():
    """i8, u8, i16, i32, narrow ranges and per-axis scales: each survives text and back."""
    cases = {
        "!quant.uniform<u8:f32, 2.500000e-01:128>": QuantParams((0.25,), (128,), None, 0, 255, 8, False),
        "!quant.uniform<i8<-127:127>:f32:1, {5.000000e-01,2.500000e-01}>":
            QuantParams((0.5, 0.25), (0, 0), 1, -127, 127),
        "!quant.uniform<i16<-32767:32767>:f32, 1.000000e-03>": QuantParams((0.001,), (0,), None, -32767, 32767),
        "!quant.uniform<i32:f32:0, {1.000000e-04,2.000000e-04}>":
            QuantParams((1e-4, 2e-4), (0, 0), 0, -2 ** 31, 2 ** 31 - 1),
    }
    ctx = new_context()
    for text, params in cases.items():
        parsed = parse_uniform(text)
        assert parsed == params
        assert parsed.storage_dtype == {"u8": "uint8", "i8": "int8", "i16": "int16", "i32": "int32"}[text[15:18].rstrip("<:")]
        assert _quantize_type(ctx, params) == f"tensor<2x3x{text}>"
