"""tfq-convert-fake-quant-to-qdq: turn TensorFlow's fake-quant ops into quantize/dequantize pairs.

Rewrites each fake-quant op of a quantization-aware-trained model,

    %y = "tf.FakeQuantWithMinMaxVars"(%x, %min, %max) {num_bits = 8, narrow_range = false}
    %y = "tf.FakeQuantWithMinMaxVarsPerChannel"(%x, %min, %max) {...}     (one range per last-axis channel)
    %y = "tf.FakeQuantWithMinMaxArgs"(%x) {min = A : f32, max = B : f32, num_bits = 8, narrow_range = false}

into the pair that carries its trained range,

    %q = quant.qcast %x : tensor<..xf32> to tensor<..x!quant.uniform<i8:f32, S:Z>>
    %y = quant.dcast %q : tensor<..x!quant.uniform<i8:f32, S:Z>> to tensor<..xf32>

(per channel: `!quant.uniform<i8:f32:AXIS, {S0:Z0,...}>` with AXIS the last axis). It runs before
constant folding, which would fold a fake-quantized weight into a plain constant and lose its range.

S and Z are TensorFlow's own (`Nudge` in tensorflow/core/kernels/fake_quant_ops_functor.h, in float32):
quant_min = narrow_range ? 1 : 0, quant_max = 2^num_bits - 1, S = (max - min) / (quant_max - quant_min),
and the zero point min/S away from quant_min, rounded and clamped to [quant_min, quant_max] so that 0.0 is
exact (a range that excludes 0 is shifted to include it, as TensorFlow does). TensorFlow counts in
[quant_min, quant_max]; the type stores the same levels signed, shifted by -2^(num_bits-1): 8 bits give
`i8` (`i8<-127:127>` with narrow range), fewer bits a narrower i8 range (`i8<-8:7>` for 4), 9 to 16 bits i16.

min and max of the Vars ops must be constants (a trained variable is imported as a tf.Const). A range
that is not finite, inverted or empty is an error; so is [0, 0] (where TensorFlow outputs zeros) except
on a constant whose values there are all zero (a dead weight channel), which any scale keeps exact.
"""
from __future__ import annotations

import math

import numpy as np

from tfquant.mlir import CompileError, ir, ops_named
from tfquant.pass_registry import register_pass
from tfquant.passes._quant import QuantParams, quantized_tensor_type
from tfquant.passes._tf_ops import bool_attribute, constant_value, create_op, defining_op, replace_op
from tfquant.passes._verify import BOOL, FLOAT, INT, OpSpec, exactly, verify_ops

VARS = "tf.FakeQuantWithMinMaxVars"
PER_CHANNEL = "tf.FakeQuantWithMinMaxVarsPerChannel"
ARGS = "tf.FakeQuantWithMinMaxArgs"
_ATTRS = {"num_bits": INT, "narrow_range": BOOL}
FAKE_QUANT_OPS = {
    VARS: OpSpec(exactly(3), float_operands=(0,), optional=_ATTRS),
    PER_CHANNEL: OpSpec(exactly(3), ranks={1: exactly(1), 2: exactly(1)}, float_operands=(0,), optional=_ATTRS),
    ARGS: OpSpec(exactly(1), float_operands=(0,), optional={**_ATTRS, "min": FLOAT, "max": FLOAT}),
}
# TensorFlow's attribute defaults.
DEFAULT_NUM_BITS = 8
DEFAULT_ARGS_RANGE = (-6.0, 6.0)


@register_pass("tfq-convert-fake-quant-to-qdq",
               "Replace tf.FakeQuantWithMinMax* ops by quant.qcast + quant.dcast of their trained ranges")
def convert_fake_quant_to_qdq(module_op: ir.Operation) -> None:
    verify_ops(module_op, FAKE_QUANT_OPS)
    for op in ops_named(module_op, *FAKE_QUANT_OPS):
        value = op.operands[0]
        params = _op_params(op)
        range_operands = list(op.operands[1:])
        with ir.InsertionPoint(op), op.location:  # building a tensor type needs a location
            quantized = create_op("quant.qcast", [value], [quantized_tensor_type(value.type, params)], {},
                                  op.location).result
            dequantized = create_op("quant.dcast", [quantized], [value.type], {}, op.location).result
        replace_op(op, [dequantized])
        _erase_unused_constants(range_operands)


def fake_quant_params(low: np.ndarray, high: np.ndarray, num_bits: int, narrow_range: bool,
                      axis: int | None) -> QuantParams:
    """The signed storage parameters of TensorFlow's fake quantization of [low, high] (one entry per
    channel of `axis`, or one for the tensor); the ranges must be valid (see `_check_ranges`)."""
    quant_min, quant_max = (1 if narrow_range else 0), 2 ** num_bits - 1
    offset = 2 ** (num_bits - 1)
    nudged = [_nudge(lo, hi, quant_min, quant_max, offset) for lo, hi in zip(low, high)]
    return QuantParams(tuple(s for s, _ in nudged), tuple(z - offset for _, z in nudged), axis,
                       quant_min - offset, quant_max - offset, 8 if num_bits <= 8 else 16)


def _nudge(low: np.float32, high: np.float32, quant_min: int, quant_max: int, zero_range_point: int
           ) -> tuple[float, int]:
    """TensorFlow's `Nudge` in float32 as its kernel computes it: (scale, zero point in [quant_min, quant_max]).

    [0, 0] (allowed only where the values are zero) has no scale: 1.0 with `zero_range_point`.
    """
    if low == high == 0:
        return 1.0, zero_range_point
    scale = (high - low) / np.float32(quant_max - quant_min)
    zero_point_from_min = np.float32(quant_min) - low / scale
    if zero_point_from_min < quant_min:
        return float(scale), quant_min
    if zero_point_from_min > quant_max:
        return float(scale), quant_max
    # std::round: halves away from zero (the value is positive here); exact in float64.
    return float(scale), math.floor(float(zero_point_from_min) + 0.5)


def _op_params(op: ir.Operation) -> QuantParams:
    """The quantization parameters of one fake-quant op, or a CompileError at it."""
    num_bits = ir.IntegerAttr(op.attributes["num_bits"]).value if "num_bits" in op.attributes else DEFAULT_NUM_BITS
    if not 2 <= num_bits <= 16:
        raise CompileError(f"'{op.name}' op num_bits must be between 2 and 16, got {num_bits}", op.location)
    low, high = _ranges(op)
    axis = _channel_axis(op, len(low)) if op.name == PER_CHANNEL else None
    _check_ranges(op, low, high)
    return fake_quant_params(low, high, num_bits, bool_attribute(op, "narrow_range"), axis)


def _ranges(op: ir.Operation) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of `op` as float32 vectors: one entry, or one per channel."""
    if op.name == ARGS:
        low, high = (ir.FloatAttr(op.attributes[name]).value if name in op.attributes else default
                     for name, default in zip(("min", "max"), DEFAULT_ARGS_RANGE))
        return np.array([low], np.float32), np.array([high], np.float32)
    low, high = constant_value(op.operands[1]), constant_value(op.operands[2])
    if low is None or high is None:
        raise CompileError(f"'{op.name}' op needs constant min and max (its trained range), "
                           "got a value computed at run time", op.location)
    low, high = np.asarray(low, np.float32).reshape(-1), np.asarray(high, np.float32).reshape(-1)
    if op.name == VARS and (low.size, high.size) != (1, 1):
        raise CompileError(f"'{op.name}' op min and max must be scalars, got {low.size} and {high.size} values",
                           op.location)
    if low.size != high.size:
        raise CompileError(f"'{op.name}' op min and max must have one value per channel, "
                           f"got {low.size} and {high.size}", op.location)
    return low, high


def _channel_axis(op: ir.Operation, channels: int) -> int:
    """The last axis of the per-channel op's input, which must have `channels` entries."""
    value_type = op.operands[0].type
    if not isinstance(value_type, ir.RankedTensorType) or value_type.rank == 0:
        raise CompileError(f"'{op.name}' op needs an input of known rank, got {value_type}", op.location)
    last = value_type.shape[-1]
    if not ir.ShapedType.is_dynamic_size(last) and last != channels:
        raise CompileError(f"'{op.name}' op has {channels} ranges for {last} channels", op.location)
    return value_type.rank - 1


def _check_ranges(op: ir.Operation, low: np.ndarray, high: np.ndarray) -> None:
    """Refuse ranges no quantized type expresses: not finite, inverted, or empty (TensorFlow outputs NaN
    or a constant there); [0, 0] passes where the input is a constant that is zero in it."""
    zero = (low == 0) & (high == 0)
    bad = ~(np.isfinite(low) & np.isfinite(high)) | (low > high) | ((low == high) & ~zero)
    if zero.any():
        bad |= zero & _nonzero_channels(op.operands[0], len(low))
    if bad.any():
        index = int(np.argmax(bad))
        where = f" for channel {index}" if op.name == PER_CHANNEL else ""
        raise CompileError(f"'{op.name}' op has an invalid range [{float(low[index])}, {float(high[index])}]{where}",
                           op.location)


def _nonzero_channels(value: ir.Value, channels: int) -> np.ndarray:
    """Per channel (of the last axis, or one for the tensor): whether `value` may hold a nonzero there."""
    array = constant_value(value)
    if array is None:
        return np.ones(channels, bool)
    return np.any(np.asarray(array).reshape(-1, channels) != 0, axis=0)


def _erase_unused_constants(values: list[ir.Value]) -> None:
    """Erase the range constants the rewritten op alone used (min and max may be one constant)."""
    unused: list[ir.Operation] = []
    for value in values:
        op = defining_op(value)
        if op is not None and op.name == "tf.Const" and not list(value.uses) and op not in unused:
            unused.append(op)
    for op in unused:
        op.erase()
