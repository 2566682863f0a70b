"""TensorFlow ops for quantized arithmetic, as generic tf.* ops at the current insertion point:
small builders (constants, casts, binary ops, transposes), and quantize (f32 -> integer storage),
dequantize (storage -> f32) and requantize (int32 accumulator -> storage with the fused
activation), each at the storage width its QuantParams say. Rescaling is done
in f32 (as TensorFlow's own TF-opset lowering does), rounding half to even (tf.Round).
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import ir
from tfquant.passes._quant import INT8_MAX, INT8_MIN, WEIGHT_MAX, QuantParams, retyped
from tfquant.passes._tf_ops import create_const, create_op, named_loc, type_attr

# The steps of an int8 value: 255 between -128 and 127.
INT8_STEPS = INT8_MAX - INT8_MIN


# ---- types and small op builders -------------------------------------------------------------

def i8() -> ir.Type:
    return ir.IntegerType.get_signless(8)


def integer(bits: int) -> ir.Type:
    return ir.IntegerType.get_signless(bits)


def i32() -> ir.Type:
    return ir.IntegerType.get_signless(32)


def f32() -> ir.Type:
    return ir.F32Type.get()


def rank(value: ir.Value) -> int:
    return ir.RankedTensorType(value.type).rank


def emit(name: str, operands: list[ir.Value], result_type: ir.Type, attrs: dict[str, ir.Attribute],
         loc: ir.Location) -> ir.Value:
    return create_op(name, operands, [result_type], attrs, loc).result


def const(array: np.ndarray, loc: ir.Location) -> ir.Value:
    return create_const(np.asarray(array), loc)


def cast(value: ir.Value, element: ir.Type, loc: ir.Location) -> ir.Value:
    """tf.Cast of `value` to `element` (float -> int truncates toward zero; callers round first);
    `value` itself when it has that element type already."""
    if ir.ShapedType(value.type).element_type == element:
        return value
    return emit("tf.Cast", [value], retyped(value.type, element),
                {"SrcT": type_attr(value), "DstT": ir.TypeAttr.get(element), "Truncate": ir.BoolAttr.get(False)},
                named_loc(loc, "cast"))


def binary(name: str, lhs: ir.Value, rhs: ir.Value, loc: ir.Location) -> ir.Value:
    """An elementwise tf op whose result has `lhs`'s type (`rhs` broadcasts into it)."""
    return emit(name, [lhs, rhs], lhs.type, {"T": type_attr(lhs)}, named_loc(loc, name[3:].lower()))


def transpose(value: ir.Value, perm: list[int], loc: ir.Location) -> ir.Value:
    """tf.Transpose by `perm`; `value` itself for the identity."""
    if perm == sorted(perm):
        return value
    shape = ir.RankedTensorType(value.type).shape
    result_type = ir.RankedTensorType.get([shape[p] for p in perm], ir.ShapedType(value.type).element_type)
    return emit("tf.Transpose", [value, const(np.array(perm, np.int32), named_loc(loc, "perm"))], result_type,
                {"T": type_attr(value), "Tperm": ir.TypeAttr.get(i32())}, named_loc(loc, "transpose"))


def along_axis(vector: np.ndarray, value_rank: int, axis: int | None) -> np.ndarray:
    """A per-axis vector shaped to broadcast along `axis` of a rank-`value_rank` tensor (scalar if length 1)."""
    vector = np.asarray(vector).reshape(-1)
    if vector.size == 1 or axis is None:
        return vector.reshape(())
    # Trailing ones only: [C] for the last axis, [C, 1] for the one before, ...
    return vector.reshape([vector.size] + [1] * (value_rank - 1 - axis % value_rank))


def _round_shift_clip_cast(scaled: ir.Value, zero_point: np.ndarray, low: int, high: int, bits: int,
                           loc: ir.Location) -> ir.Value:
    """Round(scaled) + zero_point, clipped to [low, high], as a `bits` integer."""
    shifted = emit("tf.Round", [scaled], scaled.type, {"T": type_attr(scaled)}, named_loc(loc, "round"))
    if np.any(zero_point):
        shifted = binary("tf.AddV2", shifted, const(zero_point.astype(np.float32), named_loc(loc, "zero_point")), loc)
    return _clip_cast(shifted, low, high, bits, loc)


def _clip_cast(value: ir.Value, low: int, high: int, bits: int, loc: ir.Location) -> ir.Value:
    """`value` clipped to [low, high], as a `bits` integer."""
    clipped = emit("tf.ClipByValue", [value, const(np.float32(low), named_loc(loc, "min")),
                                      const(np.float32(high), named_loc(loc, "max"))],
                   value.type, {"T": type_attr(value)}, named_loc(loc, "clip"))
    return cast(clipped, integer(bits), loc)


# ---- quantize / dequantize / requantize ------------------------------------------------------

def emit_quantize(value: ir.Value, params: QuantParams, loc: ir.Location) -> ir.Value:
    """f32 -> integer storage: clip(round(x / scale) + zero_point) (per axis: vectors along the axis)."""
    value_rank = rank(value) if params.axis is not None else 0
    inverse = along_axis(1.0 / np.asarray(params.scales), value_rank, params.axis).astype(np.float32)
    scaled = binary("tf.Mul", value, const(inverse, named_loc(loc, "inverse_scale")), loc)
    zero_point = along_axis(np.asarray(params.zero_points), value_rank, params.axis)
    return _round_shift_clip_cast(scaled, zero_point, params.storage_min, params.storage_max, params.storage_bits, loc)


def emit_dequantize(value: ir.Value, params: QuantParams, loc: ir.Location) -> ir.Value:
    """integer storage -> f32: (q - zero_point) * scale (per axis: vectors along the axis)."""
    value_rank = rank(value) if params.axis is not None else 0
    real = cast(value, f32(), loc)
    if any(params.zero_points):
        zero_point = along_axis(np.asarray(params.zero_points), value_rank, params.axis).astype(np.float32)
        real = binary("tf.Sub", real, const(zero_point, named_loc(loc, "zero_point")), loc)
    scale = along_axis(np.asarray(params.scales), value_rank, params.axis).astype(np.float32)
    return binary("tf.Mul", real, const(scale, named_loc(loc, "scale")), loc)


def _reduce(name: str, flat: ir.Value, loc: ir.Location) -> ir.Value:
    """tf.Min / tf.Max of a flat f32 tensor, as a scalar."""
    return emit(name, [flat, const(np.array(0, np.int32), named_loc(loc, "axis"))], ir.RankedTensorType.get([], f32()),
                {"T": type_attr(flat), "Tidx": ir.TypeAttr.get(i32()), "keep_dims": ir.BoolAttr.get(False)},
                named_loc(loc, name[3:].lower()))


def emit_dynamic_quantize(value: ir.Value, loc: ir.Location,
                          asymmetric: bool) -> tuple[ir.Value, ir.Value, ir.Value | None]:
    """f32 -> (int8 values, their f32 scalar scale, their f32 scalar zero point or None), over the
    whole tensor at run time, 0.0 exact (a tiny floor keeps an all-zero batch finite):
    asymmetric: scale = (max(x, 0) - min(x, 0)) / 255, zero point = round(-128 - min / scale);
    symmetric: scale = max|x| / 127, zero point 0."""
    flat = emit("tf.Reshape", [value, const(np.array([-1], np.int32), named_loc(loc, "shape"))],
                ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size()], f32()),
                {"T": type_attr(value), "Tshape": ir.TypeAttr.get(i32())}, named_loc(loc, "flatten"))
    zero = const(np.float32(0.0), named_loc(loc, "zero"))
    if asymmetric:
        low = binary("tf.Minimum", _reduce("tf.Min", flat, loc), zero, loc)
        high = binary("tf.Maximum", _reduce("tf.Max", flat, loc), zero, loc)
        spread, steps = binary("tf.Sub", high, low, loc), INT8_STEPS
    else:
        magnitude = emit("tf.Abs", [flat], flat.type, {"T": type_attr(flat)}, named_loc(loc, "abs"))
        spread, steps = _reduce("tf.Max", magnitude, loc), WEIGHT_MAX
    spread = binary("tf.Maximum", spread, const(np.float32(1e-30), named_loc(loc, "floor")), loc)
    scale = binary("tf.Mul", spread, const(np.float32(1 / steps), named_loc(loc, "per_step")), loc)
    inverse = binary("tf.RealDiv", const(np.float32(1.0), named_loc(loc, "one")), scale, loc)
    scaled = emit("tf.Round", [binary("tf.Mul", value, inverse, loc)], value.type, {"T": type_attr(value)},
                  named_loc(loc, "round"))
    if not asymmetric:
        return _clip_cast(scaled, -WEIGHT_MAX, WEIGHT_MAX, 8, loc), scale, None
    # -128 - low / scale lies in [-128, 127] by construction; rounding keeps it there.
    zero_point = emit("tf.Round", [binary("tf.Sub", const(np.float32(-128.0), named_loc(loc, "min_level")),
                                          binary("tf.Mul", low, inverse, loc), loc)],
                      low.type, {"T": type_attr(low)}, named_loc(loc, "zero_point"))
    return _clip_cast(binary("tf.AddV2", scaled, zero_point, loc), -128, 127, 8, loc), scale, zero_point


def activation_bounds(output: QuantParams, activation: str) -> tuple[int, int]:
    """The storage range the fused activation leaves: relu clips at the zero point, relu6 also at 6.0."""
    low, high = output.storage_min, output.storage_max
    if activation in ("RELU", "RELU6"):
        low = max(low, output.zero_point)
    if activation == "RELU6":
        high = min(high, output.zero_point + int(round(6.0 / output.scale)))
    return low, high


def emit_requantize(accumulator: ir.Value, multiplier: np.ndarray, output: QuantParams, activation: str,
                    loc: ir.Location) -> ir.Value:
    """int32 accumulator -> storage: clip(round(acc * multiplier) + output zero point) to the activation's range.

    `multiplier` (input_scale * weight_scale / output_scale) is a scalar or broadcasts along the channel axis.
    """
    real = cast(accumulator, f32(), loc)
    scaled = binary("tf.Mul", real, const(multiplier.astype(np.float32), named_loc(loc, "multiplier")), loc)
    low, high = activation_bounds(output, activation)
    return _round_shift_clip_cast(scaled, np.array(output.zero_point), low, high, output.storage_bits, loc)
