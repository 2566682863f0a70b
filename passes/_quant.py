"""Quantization parameters and `!quant.uniform` types, shared by the quantization passes.

The IR contract between the passes (each stage is valid MLIR that tfquant-opt reads and writes):

1. tfq-lift-quantizable-spots-as-functions: each quantizable pattern becomes
     %y = "tf.PartitionedCall"(%x, %w[, %b]) {f = @composite_conv2d_with_bias_and_relu6_fn_1,
            config = "", config_proto = "", executor_type = "", Tin = [...], Tout = [...],
            _tfl_quant_trait = "fully_quantizable"}
   calling a private function that holds the original float ops. Weights and biases are tf.Const
   operands of the call (a QAT weight: `quant.dcast(quant.qcast(tf.Const))`); the function's
   `tfq.weight_operand` says which operand of its main op is the weight.
2. tfq-assign-quantization-spec: each lifted call gets its `tfq.spec` (`_spec.UnitSpec`: method,
   activation bits, per-channel); a call it leaves float gets `tfq.float_reason` and a remark.
3. tfq-insert-calibration-stats: `%x2 = "tfq.calibration_point"(%x) {id = N : i64, method = "...",
   activation_bits = B}` (same type in and out) on every float activation operand and result of a
   call whose method needs ranges. Calibration writes the chosen range onto each point as `min`/`max`.
4. tfq-apply-calibration-stats: a point with `min`/`max` becomes
     %q = quant.qcast %x : tensor<..xf32> to tensor<..x!quant.uniform<i8:f32, S:Z>>   (i16: S:0)
     %x2 = quant.dcast %q : ... to tensor<..xf32>
5. tfq-quantize-composite-functions: a lifted call is replaced in place by one `tfq.quantized_op`
   (`_tfq.QuantizedOp`) whose operand and result types carry every quantization parameter:
     %y = "tfq.quantized_op"(%xq, %wq[, %bq]) {kind = "conv2d", op_attrs = {...}, activation = "RELU6"}
   with %xq the qcast value (static) or the float activation (dynamic range), %wq = quant.scast of an
   int8 tf.Const (per-axis type when per channel), %bq = quant.scast of an int32 tf.Const at scale
   input scale x weight scale (f32 for dynamic range), and a `!quant.uniform` result (static) or
   f32 (dynamic range, or a result that reaches no quantized op). Same-scale ops between quantized
   values run on the integer storage. tfq-quantize-weights makes weight-only and float16 weights
   narrow with a dequantize (or cast) before the float op.
6. tfq-lower-to-xla / -tf / -uniform-quantized: `tfq.quantized_op`, and the remaining
   quant.qcast / quant.dcast / quant.scast, become TensorFlow ops; no `!quant` type is left.

Nothing is assumed about widths: storage bits, signedness, narrow range, scales and axis are
read from the types (`parse_uniform`). Weights are symmetric int8 in [-127, 127]; int8
activations asymmetric in [-128, 127]; int16 activations symmetric in [-32767, 32767].
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from tfquant.mlir import ir, parse_type_cached

INT8_MIN, INT8_MAX = -128, 127
WEIGHT_MAX = 127
INT16_MAX = 32767
INT32_LIMIT = 2 ** 31 - 1


@dataclass(frozen=True)
class QuantParams:
    """Per-tensor (scales of length 1) or per-axis affine parameters: real = scale * (q - zero_point),
    q stored as a `storage_bits` integer (signed, or unsigned: `!quant.uniform<u8...>`) within
    [storage_min, storage_max] (by default the narrowest of 8, 16 and 32 bits holding that range)."""
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int | None = None
    storage_min: int = INT8_MIN
    storage_max: int = INT8_MAX
    storage_bits: int | None = None
    signed: bool = True

    def __post_init__(self) -> None:
        if self.storage_bits is None:
            bits = next(b for b in (8, 16, 32) if _full_range(b, self.signed)[0] <= self.storage_min and
                        self.storage_max <= _full_range(b, self.signed)[1])
            object.__setattr__(self, "storage_bits", bits)

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]

    @property
    def storage_dtype(self) -> np.dtype:
        return np.dtype(f"{'' if self.signed else 'u'}int{self.storage_bits}")


def _full_range(bits: int, signed: bool) -> tuple[int, int]:
    """The values a `bits` integer holds."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def activation_params(range_min: float, range_max: float, bits: int = 8) -> QuantParams:
    """Activation parameters for a calibrated range, 0.0 exact: int8 asymmetric; int16 symmetric
    with zero point 0 (as TFLite's 16x8 mode, so that products need no zero-point correction)."""
    low, high = min(float(range_min), 0.0), max(float(range_max), 0.0)
    if high - low < 1e-9:
        high = low + 1e-9
    if bits == 16:
        return QuantParams((max(-low, high) / INT16_MAX,), (0,), None, -INT16_MAX, INT16_MAX)
    scale = (high - low) / (INT8_MAX - INT8_MIN)
    zero_point = int(np.clip(round(INT8_MIN - low / scale), INT8_MIN, INT8_MAX))
    return QuantParams((scale,), (zero_point,))


def weight_params(weight: np.ndarray, axis: int | None) -> QuantParams:
    """Symmetric int8 parameters in [-127, 127], per `axis` or per tensor (axis None)."""
    if axis is None:
        peak = np.array([np.max(np.abs(weight))]) if weight.size else np.array([0.0])
    else:
        moved = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
        peak = np.max(np.abs(moved), axis=1) if moved.size else np.zeros(weight.shape[axis])
    scales = np.where(peak > 0, peak / WEIGHT_MAX, 1.0).astype(np.float64)
    return QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis, -WEIGHT_MAX, WEIGHT_MAX)


def _along_axis(values: tuple, params: QuantParams, ndim: int) -> np.ndarray:
    """Per-axis `values` shaped to broadcast along the parameters' axis of an `ndim` tensor."""
    array = np.asarray(values, np.float64)
    if params.axis is None:
        return array[0]
    shape = [1] * ndim
    shape[params.axis] = -1
    return array.reshape(shape)


def quantize_weight(weight: np.ndarray, params: QuantParams, half_up: bool = False) -> np.ndarray:
    """Storage values of a weight for `params`: round(w / scale) + zero point, clipped.

    Rounds half to even, or with `half_up` half upwards, as TensorFlow's fake-quant kernels do
    (a QAT weight then lands on exactly the step it was trained at).
    """
    # In place: a weight of a model past 2 GB is hundreds of MB, and each temporary is twice that.
    # asarray: a 0-d weight divided by a scale is a numpy scalar, which out= cannot write to.
    scaled = np.asarray(weight / _along_axis(params.scales, params, weight.ndim))
    if half_up:
        scaled += 0.5
        np.floor(scaled, out=scaled)
    else:
        np.round(scaled, out=scaled)
    if any(params.zero_points):
        scaled += _along_axis(params.zero_points, params, weight.ndim)
    np.clip(scaled, params.storage_min, params.storage_max, out=scaled)
    return scaled.astype(params.storage_dtype)


def dequantize_weight(storage: np.ndarray, params: QuantParams) -> np.ndarray:
    """The float32 values that storage values stand for under `params`."""
    zero_points = _along_axis(params.zero_points, params, storage.ndim)
    return ((storage - zero_points) * _along_axis(params.scales, params, storage.ndim)).astype(np.float32)


def widen_for_bias(weights: QuantParams, bias: np.ndarray, input_scale: float) -> QuantParams:
    """`weights` with each scale raised just enough for its bias to fit int32 at input x weight scale.

    A channel whose weights are all near zero (a dead channel after batch-norm folding) gets a
    tiny scale, and its bias in units of input scale x that scale would overflow int32.
    """
    needed = np.abs(np.asarray(bias, np.float64)).reshape(-1) / (input_scale * INT32_LIMIT)
    if len(weights.scales) == 1:
        needed = np.array([needed.max(initial=0.0)])
    scales = np.maximum(np.asarray(weights.scales), needed)
    if np.array_equal(scales, weights.scales):
        return weights
    return replace(weights, scales=tuple(float(s) for s in scales))


def bias_params(input_scale: float, weights: QuantParams, bits: int = 32) -> QuantParams:
    """Bias parameters: scale input scale x weight scale, per channel (axis 0) when the weight is,
    stored in `bits` (32; 64 for TFLite's 16x8 kernels)."""
    scales = tuple(input_scale * s for s in weights.scales)
    limit = 2 ** (bits - 1) - 1
    return QuantParams(scales, (0,) * len(scales), None if weights.axis is None else 0, -limit, limit, bits)


def quantize_bias(bias: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integer storage of a bias for `bias_params`."""
    return np.clip(np.round(bias / np.asarray(params.scales)), params.storage_min,
                   params.storage_max).astype(params.storage_dtype)


def eight_bit_twin(params: QuantParams, signed: bool) -> QuantParams:
    """The 8-bit parameters of the given signedness that hold the same reals as `params` (int8 and
    uint8 differ by 128 in zero point and range); other widths as they are."""
    if params.signed == signed or params.storage_bits != 8:
        return params
    shift = -128 if signed else 128
    return replace(params, zero_points=tuple(z + shift for z in params.zero_points),
                   storage_min=params.storage_min + shift, storage_max=params.storage_max + shift, signed=signed)


def _float_text(value: float) -> str:
    """`repr` (exact), with the decimal point MLIR's parser needs: 8e-05 -> 8.0e-05."""
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def uniform_type_text(params: QuantParams, expressed: str = "f32") -> str:
    """`!quant.uniform<...>` text for `params` (floats printed exactly)."""
    storage = f"{'i' if params.signed else 'u'}{params.storage_bits}"
    if (params.storage_min, params.storage_max) != _full_range(params.storage_bits, params.signed):
        storage += f"<{params.storage_min}:{params.storage_max}>"
    if params.axis is None:
        return f"!quant.uniform<{storage}:{expressed}, {_float_text(params.scale)}:{params.zero_point}>"
    pairs = ",".join(f"{_float_text(s)}:{z}" for s, z in zip(params.scales, params.zero_points))
    return f"!quant.uniform<{storage}:{expressed}:{params.axis}, {{{pairs}}}>"


def retyped(like: ir.Type, element: ir.Type) -> ir.Type:
    """`like` (a ranked or unranked tensor type) with element type `element`."""
    if isinstance(like, ir.RankedTensorType):
        return ir.RankedTensorType.get(list(ir.RankedTensorType(like).shape), element)
    return ir.UnrankedTensorType.get(element)


def quantized_tensor_type(like: ir.Type, params: QuantParams) -> ir.Type:
    """`like` (a float tensor type) with its element type replaced by the quant type for `params`."""
    element = parse_type_cached(uniform_type_text(params, str(ir.ShapedType(like).element_type)), like.context)
    return retyped(like, element)


def storage_tensor_type(like: ir.Type, bits: int = 8) -> ir.Type:
    """`like` with a signless integer element type of `bits`."""
    return retyped(like, ir.IntegerType.get_signless(bits, like.context))


def tensor_params(value_type: ir.Type) -> QuantParams | None:
    """QuantParams of a tensor type whose element type is `!quant.uniform`, else None."""
    if not isinstance(value_type, ir.ShapedType):
        return None
    return parse_uniform(ir.ShapedType(value_type).element_type)


def storage_type_of(value_type: ir.Type) -> ir.Type:
    """The integer storage tensor type of a quantized tensor type."""
    return storage_tensor_type(value_type, tensor_params(value_type).storage_bits)


_UNIFORM = re.compile(r"!quant\.uniform<([iu])(\d+)(?:<(-?\d+):(-?\d+)>)?:f\d+(?::(\d+))?, (.*)>$")
_PAIR = re.compile(r"([-+0-9.eE]+)(?::(-?\d+))?")


def parse_uniform(element: ir.Type | str) -> QuantParams | None:
    """QuantParams of a `!quant.uniform` element type (or its text), None for any other type."""
    match = _UNIFORM.match(str(element))
    if match is None:
        return None
    sign, bits, low, high, axis, body = match.groups()
    pairs = _PAIR.findall(body.strip("{}"))
    scales = tuple(float(s) for s, _ in pairs)
    zero_points = tuple(int(z) if z else 0 for _, z in pairs)
    full_min, full_max = _full_range(int(bits), sign == "i")
    return QuantParams(scales, zero_points, int(axis) if axis is not None else None,
                       int(low) if low is not None else full_min, int(high) if high is not None else full_max,
                       int(bits), sign == "i")
