"""tfq-lower-to-onednn: lower quantized ops to the oneDNN int8 kernels that stock tensorflow-cpu registers.

    conv2d            -> _FusedQuantizedConv2D
    depthwise_conv2d  -> _FusedQuantizedDepthwiseConv2D
    matmul, batch_matmul, einsum -> _QuantizedMatMul on 2-D operands (the activation flattened to
                         [free, contracted], the weight constant rearranged to [contracted, free], as
                         tfq-lower-to-uniform-quantized plans it), where the op maps onto one 2-D dot
with the bias, the activation and the requantize (or, for a float output, the dequantize) fused
into the kernel; activations stay 8-bit from layer to layer (`tf.Bitcast` int8 <-> qint8, or a
sign flip to quint8, around each kernel; the pairs between two kernels fold away). Everything else is lowered
as tfq-lower-to-xla lowers it (`lower_with_product(emit_xla_product)`): gather, dynamic range,
16-bit or unsigned activations, a batch matmul / einsum whose weight shares batch dimensions with
the activation (there is no `_QuantizedBatchMatMul` kernel in TF 2.21), non-constant weights or biases.

The kernels' semantics (TF 2.21, oneDNN v3; established by experiment against exact integer
arithmetic in numpy, /tmp/onednn_sem/*.py, every case bit-exact):

_FusedQuantizedConv2D / _FusedQuantizedDepthwiseConv2D
  host inputs: input (qint8 or quint8), filter (qint8 constant, HWIO / [h, w, C, M]), [bias], min_input,
  max_input, min_filter, max_filter, [min_freezed_output, max_freezed_output]; fused_ops one of
  [BiasAdd], [BiasAdd, Relu], [BiasAdd, Requantize], [BiasAdd, Relu, Requantize], ... (no Relu6);
  out_type qint32 / qint8 / quint8 (no float output); Tsummand = out_type unless Sum is fused;
  is_filter_const must be true; padding SAME / VALID / EXPLICIT (explicit_paddings), strides,
  dilations all honoured (NHWC).
  No zero point anywhere (the SCALED scheme):
      s_in  = max(|min_input|, |max_input|) / (127 qint8 | 255 quint8)
      s_w[c] = max(|min_filter[c]|, |max_filter[c]|) / 127   (min/max_filter scalars or one per
               output channel; depthwise: C*M, channel c*M + m)
      acc[c] = sum(x * w) over the window, zero padding (x = 0)
      Requantize: out = saturate(round(act(s_in * s_w[c] * acc + bias[c]) / s_out)),
               s_out = max(|min_freezed_output|, |max_freezed_output|) / (127 qint8 | 255 quint8),
               act = relu when fused, bias f32 in real units;
      qint32 out: round((s_in * s_w[c] * acc + bias) / (s_in * max_c s_w[c])) (one common scale:
               per-channel scales are rounded away; with unit scales it is exactly acc + bias).
  A qint32 bias is read as bias * s_in * s_w[c] (oneDNN v3 takes f32 bias; TF converts).
_QuantizedMatMul
  host inputs: a [M, K] (qint8/quint8), b [K, N] (qint8; transpose_a/b honoured), bias [N] (required:
  every fusion starts with BiasAdd), min_a, max_a, min_b, max_b (scalars or [N]),
  [min_freezed_output, max_freezed_output]; fused_ops [BiasAdd(, Relu|Relu6|...)(, Dequantize |
  Requantize)]; Tout f32 (Dequantize) or qint8 / quint8 (Requantize).
      input_quant_mode SCALED:    s_a = max(|min_a|, |max_a|) / 127, real a = s_a * q
      input_quant_mode MIN_FIRST: s_a = (max_a - min_a) / 127 (qint8), real a = min_a + s_a * q
                                  (the kernel folds -min_a * sum(w) into a f32 bias)
      s_b[n] = max(|min_b[n]|, |max_b[n]|) / 127
      y = act(s_a * s_b[n] * acc + bias[n])     (bias f32 in real units; Relu6 clips at 6.0 in real units)
      Dequantize: out = y (f32)
      Requantize, output_quant_mode MIN_FIRST: out = saturate(round(y * L / (max - min) - min * L / (max - min))),
               L = 127 (qint8) or 255 (quint8): with min = -z * s, max = (L - z) * s that is
               saturate(round(y / s) + z), an asymmetric output with any zero point z.
  The [BiasAdd] and [BiasAdd, Relu] (qint32) fusions do not scale: not used.

The mapping used (exact: the IR's v2 types need no change for this opset). With s, zp the IR's
scale and zero point, zp_k the zero point the kernel's input stands for:
  input as qint8 (the int8 storage bitcast): SCALED, min/max_input = -+127 s, zp_k = zp;
  input as quint8 (u8 = i8 + 128: the storage XOR 0x80, then bitcast): min/max_input = 0, 255 s,
      zp_k = zp + 128. Used where zp = -128 (a relu output: zp_k = 0, nothing to pad or compensate)
      and always for depthwise (oneDNN's s8-input depthwise runs ~3x slower than its u8 one).
  zp_k folded into the f32 bias (sum((x - zp_k) * w) = sum(x * w) - zp_k * sum(w)):
      bias_f[c] = (bias_i32[c] - zp_k * sum(w[.., c])) * s_in * s_w[c]
  and where a conv pads (SAME, EXPLICIT) with zp_k != 0 the int8 input is first padded with zp
  (tf.PadV2; real 0.0) and convolved VALID, as tfq-lower-to-xla does.
  conv output (the kernel has no output zero point):
      zp_out = -128 and no clip inside [-128, 127]: out_type quint8, min/max_freezed_output = 0, 255 s_out
          (u8 = i8 + 128; saturating at 0 is the relu), then XOR 0x80 back to int8 storage;
      otherwise out_type qint8, min/max_freezed_output = -+127 s_out and zp_out * s_out added to the
          bias, so saturate(round(y / s_out + zp_out)) = clip(round(y / s_out) + zp_out, -128, 127);
          the kernel's Relu is not used (it would clip at real -zp_out * s_out): relu / relu6 are the
          clip of `activation_bounds` (tf.Maximum / tf.Minimum on the int8 output, only where that range
          is narrower than [-128, 127]).
  conv float output: unit scales (min/max_input -+127 or 0, 255; min/max_filter -+127), bias_f =
  bias_i32 - zp_k * sum(w) (integers), out_type qint32: the kernel returns exactly
  acc - zp_k * sum(w) + bias (the Relu fused for relu and relu6, which commute with positive
  scaling), then Cast -> Mul by s_in * s_w[c] (-> Relu6), as tfq-lower-to-xla does after its product.
  matmul: the same input and bias; Requantize with output_quant_mode MIN_FIRST and the activation
  fused (quint8 min/max 0, 255 s where zp_out = -128, else qint8 -zp s, (127 - zp) s); Dequantize
  fusion for a float output.
  Two sign flips between a kernel writing quint8 and one reading it cancel (`fold_sign_flip_pairs`),
  then the Bitcast pair (`fold_bitcast_pairs`): in a CNN the relu outputs pass from kernel to kernel
  as quint8 with nothing in between.
  quant.qcast / quant.dcast with zero point -128: QuantizeV2 / Dequantize to / from quint8 (SCALED,
  min_range 0, max_range 255 s, round half to even, ensure_minimum_range 0): q_u8 = clip(round(x *
  (255 / max_range)), 0, 255) and x = q_u8 * (max_range / 255), the sign flip again folding with the
  kernel's; (255 / max_range may differ from 1 / s in the last bit: an exact tie can round the other
  way). Other casts: the TF ops of tfq-lower-to-xla.
Results equal tfq-lower-to-xla's to rounding: both round half to even, but the kernels scale in f32
in another order (s_in * s_w * acc + bias, then / s_out), so a product within float rounding of a
half step may round the other way (an output step, rarely).

On CPUs without VNNI (before Cascade Lake / Zen 4) oneDNN's u8 x s8 products go through 16-bit
pairs that can saturate; this CPU has avx512_vnni and every check above is exact.
Where TensorFlow's oneDNN is off (`TF_ENABLE_ONEDNN_OPTS=0`: `IsMklEnabled()` False) or the kernels
are not registered, the pass refuses with a CompileError rather than emit a model that might not run.
"""
from __future__ import annotations

import numpy as np

from tfquant.mlir import CompileError, ir, ops_named, parse_type_cached
from tfquant.pass_registry import register_pass
from tfquant.passes import _tfq
from tfquant.passes._dot2d import dot_plan, flat_size, leading_shape_and, reshape, tiled_weight_scales
from tfquant.passes._lowering import (QuantizedOp, channel_scales, default_lower_cast, float_activation,
                                      lower_quantized_module, lower_with_product, pad_spatially, spatial_pads)
from tfquant.passes._qint import bitcast, fold_bitcast_pairs, qint, to_quantized, to_storage
from tfquant.passes._quant import INT8_MAX, INT8_MIN, WEIGHT_MAX, QuantParams, retyped
from tfquant.passes._tf_arith import activation_bounds, binary, cast, const, emit, f32, i8, transpose
from tfquant.passes._tf_ops import constant_value, create_op, defining_op, erase_dead_ops, function_blocks, named_loc
from tfquant.passes.lower_to_xla import emit_xla_product

KERNELS = ("_FusedQuantizedConv2D", "_FusedQuantizedDepthwiseConv2D", "_QuantizedMatMul")
CONVOLUTIONS = {"conv2d": "tf._FusedQuantizedConv2D", "depthwise_conv2d": "tf._FusedQuantizedDepthwiseConv2D"}
DOTS = ("matmul", "batch_matmul", "einsum")

_lower_as_xla = lower_with_product(emit_xla_product)


@register_pass("tfq-lower-to-onednn",
               "Lower quantized ops to oneDNN's fused int8 kernels (_FusedQuantizedConv2D, "
               "_FusedQuantizedDepthwiseConv2D, _QuantizedMatMul) with bias, activation and requantize fused")
def lower_to_onednn(module_op: ir.Operation) -> None:
    if ops_named(module_op, _tfq.QuantizedOp.OPERATION_NAME):
        require_onednn()
    lower_quantized_module(module_op, lower_onednn, lower_onednn_cast)
    fold_sign_flip_pairs(module_op)
    fold_bitcast_pairs(module_op)


def require_onednn() -> None:
    """Raise unless this TensorFlow runs the oneDNN int8 kernels."""
    from tensorflow.python.framework import kernels
    from tensorflow.python.util import _pywrap_util_port
    if not _pywrap_util_port.IsMklEnabled():
        raise CompileError("the ONEDNN opset needs TensorFlow's oneDNN kernels: oneDNN is off in this TensorFlow "
                           "(TF_ENABLE_ONEDNN_OPTS=0, or a build without oneDNN); unset TF_ENABLE_ONEDNN_OPTS or "
                           "choose the XLA opset")
    missing = [name for name in KERNELS if not kernels.get_registered_kernels_for_op(name).kernel]
    if missing:
        raise CompileError(f"the ONEDNN opset needs TensorFlow's oneDNN kernels: {', '.join(missing)} "
                           f"{'is' if len(missing) == 1 else 'are'} not registered in this TensorFlow; "
                           f"choose the XLA opset")


def lower_onednn(q: QuantizedOp) -> ir.Value:
    """The oneDNN lowering of `q` (int8 storage, or f32 for a float output); the XLA form where no
    kernel computes it exactly."""
    if not _int8_static(q) or constant_value(q.w) is None or (q.bias is not None and constant_value(q.bias) is None):
        return _lower_as_xla(q)
    if q.kind in CONVOLUTIONS:
        if q.string("data_format", "NHWC") != "NHWC":
            return _lower_as_xla(q)
        return _convolution(q)
    if q.kind in DOTS:
        plan = dot_plan(q)
        return _lower_as_xla(q) if plan is None else _matmul(q, plan)
    return _lower_as_xla(q)


def _int8_static(q: QuantizedOp) -> bool:
    """Static range with signed 8-bit activations and a symmetric signed 8-bit weight."""
    if q.kind == "gather" or q.dynamic:
        return False
    activations = [q.input] + ([] if q.output is None else [q.output])
    return (all(p.storage_bits == 8 and p.signed for p in activations) and
            q.weight.storage_bits == 8 and q.weight.signed and not any(q.weight.zero_points))


# ---- shared pieces -------------------------------------------------------------------------------

def _f32(value: float, loc: ir.Location) -> ir.Value:
    return const(np.float32(value), loc)


def _range(scales: np.ndarray, limit: float, loc: ir.Location, name: str) -> list[ir.Value]:
    """(min, max) = (-limit * s, limit * s): a scalar for one scale, else a vector."""
    scales = np.asarray(scales, np.float64).reshape(-1)
    values = scales[0] if scales.size == 1 else scales
    return [const(np.asarray(-limit * values, np.float32), named_loc(loc, f"min_{name}")),
            const(np.asarray(limit * values, np.float32), named_loc(loc, f"max_{name}"))]


def _types(types: list[ir.Type]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.TypeAttr.get(t) for t in types])


def _strings(values: list[str]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.StringAttr.get(v) for v in values])


def _kernel(name: str, operands: list[ir.Value], results: list[ir.Type], attrs: dict[str, ir.Attribute],
            loc: ir.Location) -> ir.Value:
    """A oneDNN kernel op: every operand a host input, every result a host output; its first result."""
    element = [ir.ShapedType(v.type).element_type for v in operands]
    op = create_op(name, operands, results,
                   {**attrs, "Thost_inputs": _types(element), "Thost_outputs": _types(
                       [ir.ShapedType(t).element_type for t in results]),
                    "Tdevice_inputs": ir.ArrayAttr.get([]), "Tdevice_outputs": ir.ArrayAttr.get([])}, loc)
    return op.results[0]


def _scalar_f32() -> ir.Type:
    return ir.RankedTensorType.get([], f32())


def _bias_int(q: QuantizedOp, channels: int) -> np.ndarray:
    """The int32 bias as int64, repeated to `channels` (a bias along the last of several free dims)."""
    if q.bias is None:
        return np.zeros(channels, np.int64)
    bias = np.asarray(constant_value(q.bias), np.int64).reshape(-1)
    return np.tile(bias, channels // bias.size)


def _clip(value: ir.Value, low: int, high: int, loc: ir.Location) -> ir.Value:
    """int8 `value` clipped to [low, high] where that is narrower than the int8 range (Maximum /
    Minimum: ClipByValue on int8 is ~3x slower)."""
    element = ir.TypeAttr.get(ir.ShapedType(value.type).element_type)
    if low > INT8_MIN:
        value = emit("tf.Maximum", [value, const(np.int8(low), named_loc(loc, "min"))], value.type, {"T": element},
                     named_loc(loc, "clip_min"))
    if high < INT8_MAX:
        value = emit("tf.Minimum", [value, const(np.int8(high), named_loc(loc, "max"))], value.type, {"T": element},
                     named_loc(loc, "clip_max"))
    return value


# ---- int8 storage <-> quint8 ------------------------------------------------------------------------
#
# A value with zero point -128 (a relu output) is u8 = i8 + 128 with zero point 0: the kernels read
# and write it as quint8 (no padding with the zero point, no compensation; oneDNN's depthwise kernel
# is ~3x faster on u8 than on s8 input). Between the int8 storage the IR carries and quint8 the bits
# differ by the sign bit: BitwiseXor 0x80 (+128 mod 256) and a Bitcast; two flips between two
# kernels cancel (`fold_sign_flip_pairs`).

SIGN_BIT = -128  # 0x80 as int8


def _quint8() -> ir.Type:
    return parse_type_cached("!tf_type.quint8", ir.Context.current)


def _flip_sign(value: ir.Value, loc: ir.Location) -> ir.Value:
    """int8 bits XOR 0x80: i8 <-> (u8 - 128)."""
    return emit("tf.BitwiseXor", [value, const(np.int8(SIGN_BIT), named_loc(loc, "sign_bit"))], value.type,
                {"T": ir.TypeAttr.get(i8())}, named_loc(loc, "flip_sign"))


def _to_quint8(value: ir.Value, loc: ir.Location) -> ir.Value:
    """int8 storage x as quint8 x + 128."""
    return bitcast(_flip_sign(value, loc), _quint8(), loc)


def _from_quint8(value: ir.Value, loc: ir.Location) -> ir.Value:
    """quint8 u as int8 storage u - 128."""
    return _flip_sign(bitcast(value, i8(), loc), loc)


def _is_sign_flip(op: ir.Operation) -> bool:
    if op.name != "tf.BitwiseXor":
        return False
    mask = constant_value(op.operands[1])
    return mask is not None and mask.shape == () and int(mask) == SIGN_BIT


def fold_sign_flip_pairs(module_op: ir.Operation) -> None:
    """flip(flip(v)) -> v (a kernel's quint8 output read by a kernel as quint8), then drop dead flips."""
    for op in ops_named(module_op, "tf.BitwiseXor"):
        inner = defining_op(op.operands[0])
        if _is_sign_flip(op) and inner is not None and _is_sign_flip(inner):
            op.results[0].replace_all_uses_with(inner.operands[0])
    for block in function_blocks(module_op):
        erase_dead_ops(block, frozenset({"tf.BitwiseXor", "tf.Const"}))


def _input_operands(q: QuantizedOp, x: ir.Value, unsigned: bool, unit_scale: bool, loc: ir.Location):
    """(the activation as qint8 or quint8, its element type, its zero point as the kernel reads it,
    [min_input, max_input]): qint8 x with s = max|range| / 127, or quint8 x + 128 with s = max / 255;
    with `unit_scale` s = 1 (the raw product)."""
    scale = 1.0 if unit_scale else q.input.scale
    if unsigned:
        xq = _to_quint8(x, named_loc(loc, "input"))
        return xq, _quint8(), q.input.zero_point - INT8_MIN, [_f32(0.0, named_loc(loc, "min_input")),
                                                              _f32(255.0 * scale, named_loc(loc, "max_input"))]
    return (to_quantized(x, named_loc(loc, "input")), qint(8), q.input.zero_point,
            _range(np.asarray([scale]), 127.0, loc, "input"))


# ---- quant.qcast / quant.dcast -------------------------------------------------------------------

def lower_onednn_cast(op: ir.Operation, params: QuantParams) -> ir.Value:
    """A cast of an int8 value with zero point -128 (a relu output) as one op on quint8 (u8 = i8 + 128,
    zero point 0), whose sign flip folds with a kernel's: QuantizeV2 / Dequantize, SCALED with
    [min_range, max_range] = [0, 255 s] (round half to even; 6 elementwise ops -> 1, ~2.4x faster);
    any other cast as the TF ops of tfq-lower-to-xla."""
    if (params.axis is not None or params.storage_bits != 8 or not params.signed or params.zero_point != INT8_MIN or
            (params.storage_min, params.storage_max) != (INT8_MIN, INT8_MAX)):
        return default_lower_cast(op, params)
    loc, value = op.location, op.operands[0]
    attrs = {"mode": ir.StringAttr.get("SCALED"), "narrow_range": ir.BoolAttr.get(False),
             "axis": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), -1)}
    ranges = [_f32(0.0, named_loc(loc, "min_range")), _f32(255.0 * params.scale, named_loc(loc, "max_range"))]
    if op.name == "quant.qcast":
        results = [retyped(value.type, _quint8()), _scalar_f32(), _scalar_f32()]
        quantized = create_op("tf.QuantizeV2", [value, *ranges], results,
                              {**attrs, "T": ir.TypeAttr.get(_quint8()),
                               "round_mode": ir.StringAttr.get("HALF_TO_EVEN"),
                               "ensure_minimum_range": ir.FloatAttr.get(ir.F32Type.get(), 0.0)},
                              named_loc(loc, "quantize")).results[0]
        return _from_quint8(quantized, loc)
    quantized = _to_quint8(value, loc)
    return emit("tf.Dequantize", [quantized, *ranges], retyped(value.type, f32()),
                {**attrs, "T": ir.TypeAttr.get(_quint8()), "dtype": ir.TypeAttr.get(f32())},
                named_loc(loc, "dequantize"))


# ---- convolutions --------------------------------------------------------------------------------

def _convolution(q: QuantizedOp) -> ir.Value:
    loc = named_loc(q.loc, "onednn")
    weight = q.weight_array()
    depthwise = q.kind == "depthwise_conv2d"
    # quint8 input: always for a depthwise conv (oneDNN's is ~3x faster on u8), for a conv where the
    # zero point is -128 (then the kernel's zero padding is real 0.0 and nothing is compensated).
    unsigned = depthwise or q.input.zero_point == INT8_MIN
    kernel_zero_point = q.input.zero_point - INT8_MIN if unsigned else q.input.zero_point
    x, padding = q.x, q.string("padding")
    explicit = q.attrs.get("explicit_paddings", ir.ArrayAttr.get([]))
    if kernel_zero_point and padding != "VALID":
        # Zero padding would stand for -zp * s_in: pad with the zero point (real 0.0), convolve VALID.
        pads = spatial_pads(q)
        if pads is None:
            raise q.error("SAME padding with a stride above 1 needs static spatial dimensions")
        if any(p != (0, 0) for p in pads):
            x = pad_spatially(q.x, pads, const(np.array(q.input.zero_point, q.input.storage_dtype),
                                                named_loc(loc, "zero_point")), loc)
        padding, explicit = "VALID", ir.ArrayAttr.get([])
    xq, input_type, zero_point, input_range = _input_operands(q, x, unsigned, q.float_output, loc)
    weight_sum = weight.astype(np.int64).sum(axis=(0, 1) if depthwise else (0, 1, 2)).reshape(-1)
    scales, _ = channel_scales(q)
    compensated = _bias_int(q, weight_sum.size) - zero_point * weight_sum  # sum((x - zp) * w) + bias
    real_scale = q.input.scale * scales
    wq = to_quantized(q.w, named_loc(loc, "filter"))
    qint8, qint32 = qint(8), qint(32)
    dilations = q.attrs.get("dilations", ir.ArrayAttr.get([ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 1)] * 4))
    attrs = {"Tinput": ir.TypeAttr.get(input_type), "Tfilter": ir.TypeAttr.get(qint8),
             "Tbias": ir.TypeAttr.get(f32()), "strides": q.attrs["strides"], "padding": ir.StringAttr.get(padding),
             "explicit_paddings": explicit, "dilations": dilations, "data_format": ir.StringAttr.get("NHWC"),
             "is_filter_const": ir.BoolAttr.get(True), "is_bias_const": ir.BoolAttr.get(True)}
    shape = list(ir.RankedTensorType(q.result_type).shape)

    def kernel(bias: np.ndarray, ranges: list[ir.Value], out_type: ir.Type, fused: list[str]) -> ir.Value:
        operands = [xq, wq, const(bias.astype(np.float32), named_loc(loc, "bias")), *input_range, *ranges]
        return _kernel(CONVOLUTIONS[q.kind], operands,
                       [ir.RankedTensorType.get(shape, out_type), _scalar_f32(), _scalar_f32()],
                       {**attrs, "out_type": ir.TypeAttr.get(out_type), "Tsummand": ir.TypeAttr.get(out_type),
                        "fused_ops": _strings(fused)}, loc)

    if q.float_output:
        # Unit scales: the kernel returns exactly acc - zp * sum(w) + bias (relu commutes with the scaling).
        relu = q.activation in ("RELU", "RELU6")
        accumulator = kernel(compensated, _range(np.ones(1), WEIGHT_MAX, loc, "filter"), qint32,
                             ["BiasAdd", "Relu"] if relu else ["BiasAdd"])
        scale = real_scale.reshape(-1)
        value = binary("tf.Mul", cast(to_storage(accumulator, loc), f32(), loc),
                       const((scale if scale.size > 1 else scale.reshape([])).astype(np.float32),
                             named_loc(loc, "scale")), named_loc(loc, "dequantize"))
        return float_activation(value, q.activation, loc) if q.activation == "RELU6" else value
    out = q.output
    low, high = activation_bounds(out, q.activation)
    filter_range = _range(scales, WEIGHT_MAX, loc, "filter")
    if out.zero_point == INT8_MIN and (low, high) == (INT8_MIN, INT8_MAX):
        # quint8 out = i8 + 128, zero point 0: saturating at 0 is the relu.
        value = kernel(compensated * real_scale, filter_range + [
            _f32(0.0, named_loc(loc, "min_freezed_output")),
            _f32(255.0 * out.scale, named_loc(loc, "max_freezed_output"))],
            _quint8(), ["BiasAdd", "Requantize"])
        return _from_quint8(value, named_loc(loc, "output"))
    # qint8 has no zero point either: z_out * s_out goes into the bias; saturate, clip to the activation.
    value = kernel(compensated * real_scale + out.zero_point * out.scale,
                   filter_range + _range(np.asarray([out.scale]), 127.0, loc, "freezed_output"), qint8,
                   ["BiasAdd", "Requantize"])
    return _clip(to_storage(value, loc), low, high, loc)


# ---- dots ----------------------------------------------------------------------------------------

def _matmul(q: QuantizedOp, plan) -> ir.Value:
    loc = named_loc(q.loc, "onednn")
    n = int(np.prod(plan.free_w))
    scales = tiled_weight_scales(q, plan)
    weight = np.transpose(q.weight_array(), plan.w_perm).reshape(plan.contracted, n)
    weight_sum = weight.astype(np.int64).sum(axis=0)
    real_scale = q.input.scale * scales

    m = flat_size(plan.free_x)
    in_loc = named_loc(loc, "input")
    # Transpose (no qint8 kernel) on the int8 storage, then to qint8 / quint8 (folds with a producing
    # kernel's conversion when there is no transpose), then Reshape (which takes qint8 and quint8).
    # quint8 where the zero point is -128: the producing kernel then writes it so.
    x_free_first = transpose(q.x, plan.x_perm, in_loc)
    xq, input_type, zero_point, input_range = _input_operands(q, x_free_first, q.input.zero_point == INT8_MIN,
                                                              False, loc)
    x = reshape(xq, [m, plan.contracted], in_loc)
    # The weight constant as it is where that is its [K, N] layout, else a rearranged copy (the
    # original, then dead, is erased with the other dead ops).
    same_layout = plan.w_perm == sorted(plan.w_perm) and list(ir.RankedTensorType(q.w.type).shape) == list(weight.shape)
    wq = to_quantized(q.w if same_layout else const(weight, named_loc(loc, "weight")), named_loc(loc, "weight"))
    fused = ["BiasAdd"] + ([{"RELU": "Relu", "RELU6": "Relu6"}[q.activation]] if q.activation != "NONE" else [])
    qint8 = qint(8)
    bias = (_bias_int(q, n) - zero_point * weight_sum) * real_scale  # f32, real units: sum((x - zp) * w) + bias
    operands = [x, wq, const(bias.astype(np.float32), named_loc(loc, "bias")), *input_range,
                *_range(scales, WEIGHT_MAX, loc, "weight")]
    attrs = {"T1": ir.TypeAttr.get(input_type), "T2": ir.TypeAttr.get(qint8), "Tbias": ir.TypeAttr.get(f32()),
             "U": ir.TypeAttr.get(f32()), "transpose_a": ir.BoolAttr.get(False), "transpose_b": ir.BoolAttr.get(False),
             "is_weight_const": ir.BoolAttr.get(True), "is_bias_const": ir.BoolAttr.get(True),
             "input_quant_mode": ir.StringAttr.get("SCALED")}
    if q.float_output:
        value = _kernel("tf._QuantizedMatMul", operands, [ir.RankedTensorType.get([m, n], f32())],
                        {**attrs, "Tout": ir.TypeAttr.get(f32()), "fused_ops": _strings(fused + ["Dequantize"]),
                         "output_quant_mode": ir.StringAttr.get("SCALED")}, loc)
    else:
        # MIN_FIRST: out = saturate(round(y / s + zp)) with min = -zp * s, max = (limit - zp) * s;
        # quint8 (u8 = i8 + 128, zp + 128 = 0) where the zero point is -128 and no clip remains.
        out = q.output
        unsigned_out = out.zero_point == INT8_MIN and (out.storage_min, out.storage_max) == (INT8_MIN, INT8_MAX)
        out_type, zp, limit = (_quint8(), 0, 255) if unsigned_out else (qint8, out.zero_point, INT8_MAX)
        operands += [_f32(-zp * out.scale, named_loc(loc, "min_freezed_output")),
                     _f32((limit - zp) * out.scale, named_loc(loc, "max_freezed_output"))]
        value = _kernel("tf._QuantizedMatMul", operands,
                        [ir.RankedTensorType.get([m, n], out_type), _scalar_f32(), _scalar_f32()],
                        {**attrs, "Tout": ir.TypeAttr.get(out_type), "fused_ops": _strings(fused + ["Requantize"]),
                         "output_quant_mode": ir.StringAttr.get("MIN_FIRST")}, loc)
    out_loc = named_loc(loc, "output")
    dynamic = ir.ShapedType.get_dynamic_size()
    out_shape = None
    if plan.free_x.count(dynamic) > 1:  # a reshape back to several dynamic dims reads the run-time shape
        out_shape = leading_shape_and(x_free_first, len(plan.free_x), plan.free_w, out_loc)
    value = reshape(value, plan.free_x + plan.free_w, out_loc, out_shape)  # Reshape takes qint8
    if not q.float_output:
        if unsigned_out:
            value = _from_quint8(value, out_loc)
        else:
            value = _clip(to_storage(value, loc), q.output.storage_min, q.output.storage_max, loc)
    return transpose(value, plan.out_perm, out_loc)

