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
