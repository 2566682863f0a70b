"""Quantization parameters and `!quant.uniform` types, shared by the quantization passes.

The IR contract between the passes (each stage is valid MLIR that tfquant-opt reads and writes):

1. tfq-lift-quantizable-spots-as-functions: each quantizable pattern becomes
     %y = "tf.PartitionedCall"(%x, %w[, %b]) {f = @composite_conv2d_with_bias_and_relu6_fn_1,
            config = "", config_proto = "", executor_type = "", Tin = [...], Tout = [...],
            _tfl_quant_trait = "fully_quantizable"}
   calling a private function that holds the original float ops. Weights and biases are tf.Const
   operands of the call (never captured inside the function); the function's
   `tfq.weight_operand` says which operand of its main op is the weight.
2. tfq-insert-calibration-stats: `%x2 = "tfq.calibration_point"(%x) {id = N : i64, method = "..."}`
   (same type in and out) on every float activation operand and result of a lifted call.
   Calibration writes the chosen range onto each point as `min`/`max` f32 attributes.
3. tfq-apply-calibration-stats: a point with `min`/`max` becomes
     %q = quant.qcast %x : tensor<..xf32> to tensor<..x!quant.uniform<i8:f32, S:Z>>
     %x2 = quant.dcast %q : ... to tensor<..xf32>
4. tfq-quantize-composite-functions: a lifted call whose activation operands come from
   `quant.dcast` and whose result goes to `quant.qcast` is replaced by a call of
   `@quantized_<op>[_with_<fusions>]_fn_N` on int8 storage values (`quant.scast` at the
   boundaries, the call marked `_tfq_quantized = true` and `_tfq_kind = KIND`), whose body is one op
     %y = "tfq.quantized_op"(%x_i8, %w_i8[, %bias_i32]) {
            kind = "conv2d" | "depthwise_conv2d" | "matmul" | "batch_matmul" | "einsum" | "gather",
            op_attrs = {the float op's own attributes: strides, padding, dilations, transpose_b, equation, ...},
            input_scale = F64, input_zero_point = I64,
            weight_scales = dense<...> : tensor<Cxf64> (C = 1 for per-tensor), weight_axis = I64 (-1: per tensor),
            output_scale = F64, output_zero_point = I64,
            activation = "NONE" | "RELU" | "RELU6"}
   (for "gather": operands are the int8 table, the indices and the axis; the output takes the
   table's per-tensor parameters). With `float_output = true` the op returns f32 (accumulator x
   input scale x weight scale, then the activation): used when the result reaches no quantized op. Same-scale ops (Reshape, MaxPool, ...) between quantized
   values run on the int8 storage values.
5. tfq-lower-to-xla / tfq-lower-to-tf: `tfq.quantized_op`, and the remaining quant.qcast /
   quant.dcast / quant.scast, become plain TensorFlow ops; no `!quant` type is left.

Weights are symmetric int8 in [-127, 127] (per output channel or per tensor); activations
asymmetric int8 in [-128, 127]; bias int32 with scale = input scale x weight scale.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tfquant.mlir import ir, parse_type_cached
from tfquant.passes._verify import BOOL, DICT, FLOAT, FLOATS, INT, STRING, OpSpec

INT8_MIN, INT8_MAX = -128, 127
QUANTIZED_OP = "tfq.quantized_op"
# What the lowering reads from a tfq.quantized_op (step 4 above); its kind's float op says more.
QUANTIZED_OP_SPEC = OpSpec(range(2, 4), required={
    "kind": STRING, "op_attrs": DICT, "input_scale": FLOAT, "input_zero_point": INT, "weight_scales": FLOATS,
    "weight_axis": INT, "output_scale": FLOAT, "output_zero_point": INT, "activation": STRING,
}, optional={"float_output": BOOL})
# On a quantized call: the kind of its tfq.quantized_op ("conv2d", ...), which the report counts.
QUANTIZED_KIND = "_tfq_kind"
WEIGHT_MAX = 127


@dataclass(frozen=True)
class QuantParams:
    """Per-tensor (scales of length 1) or per-axis affine int8 parameters: real = scale * (q - zero_point)."""
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int | None = None
    storage_min: int = INT8_MIN
    storage_max: int = INT8_MAX

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


def activation_params(range_min: float, range_max: float) -> QuantParams:
    """Asymmetric int8 parameters for a calibrated range, nudged so that 0.0 is exact."""
    low, high = min(float(range_min), 0.0), max(float(range_max), 0.0)
    if high - low < 1e-9:
        high = low + 1e-9
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


def quantize_weight(weight: np.ndarray, params: QuantParams) -> np.ndarray:
    """int8 values of a weight for symmetric `params`."""
    scales = np.asarray(params.scales)
    if params.axis is not None:
        shape = [1] * weight.ndim
        shape[params.axis] = -1
        scales = scales.reshape(shape)
    # In place: a weight of a model past 2 GB is hundreds of MB, and each temporary is twice that.
    scaled = weight / scales
    np.round(scaled, out=scaled)
    np.clip(scaled, -WEIGHT_MAX, WEIGHT_MAX, out=scaled)
    return scaled.astype(np.int8)


INT32_LIMIT = 2 ** 31 - 1


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
    return QuantParams(tuple(float(s) for s in scales), weights.zero_points, weights.axis,
                       weights.storage_min, weights.storage_max)


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: tuple[float, ...]) -> np.ndarray:
    """int32 bias with scale input_scale * weight_scale (per channel when the weight is)."""
    scales = input_scale * np.asarray(weight_scales)
    return np.clip(np.round(bias / scales), -INT32_LIMIT, INT32_LIMIT).astype(np.int32)


def uniform_type_text(params: QuantParams, expressed: str = "f32") -> str:
    """`!quant.uniform<...>` text for `params` (floats printed exactly with repr)."""
    storage = _storage_text(params.storage_min, params.storage_max)
    if params.axis is None:
        return f"!quant.uniform<{storage}:{expressed}, {params.scale!r}:{params.zero_point}>"
    pairs = ",".join(f"{s!r}:{z}" for s, z in zip(params.scales, params.zero_points))
    return f"!quant.uniform<{storage}:{expressed}:{params.axis}, {{{pairs}}}>"


def _storage_text(storage_min: int, storage_max: int) -> str:
    """The narrowest of i8 / i16 holding [storage_min, storage_max], with the range where it is narrower
    than the type's (`i8<-127:127>`); 9- to 16-bit ranges (fake quant with num_bits > 8) need i16."""
    bits = 8 if INT8_MIN <= storage_min and storage_max <= INT8_MAX else 16
    if (storage_min, storage_max) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1):
        return f"i{bits}"
    return f"i{bits}<{storage_min}:{storage_max}>"


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
    """`like` with an i8 (or i32) element type."""
    return retyped(like, ir.IntegerType.get_signless(bits, like.context))


_UNIFORM = re.compile(r"!quant\.uniform<i(\d+)(?:<(-?\d+):(-?\d+)>)?:f\d+(?::(\d+))?, (.*)>$")
_PAIR = re.compile(r"([-+0-9.eE]+)(?::(-?\d+))?")


def parse_uniform(element: ir.Type | str) -> QuantParams | None:
    """QuantParams of a `!quant.uniform` element type (or its text), None for any other type."""
    match = _UNIFORM.match(str(element))
    if match is None:
        return None
    bits, low, high, axis, body = match.groups()
    pairs = _PAIR.findall(body.strip("{}"))
    scales = tuple(float(s) for s, _ in pairs)
    zero_points = tuple(int(z) if z else 0 for _, z in pairs)
    storage_min = int(low) if low is not None else -(2 ** (int(bits) - 1))
    storage_max = int(high) if high is not None else 2 ** (int(bits) - 1) - 1
    return QuantParams(scales, zero_points, int(axis) if axis is not None else None, storage_min, storage_max)
