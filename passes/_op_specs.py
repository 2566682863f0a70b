"""What the passes know about each op, as one table per dialect.

For each quantizable op: the kind its quantized form computes, which operands may be the
weight, along which weight axis a per-channel quantization runs, whether it takes a fused bias
and activation, and whether an integer kernel exists for it on every opset. Beside them: the
same-scale ops (their quantized result has their input's scale and zero point), the ops with a
fixed output range (softmax, logistic, tanh), and the fusible bias and activation ops.

The passes read `TF` (the SavedModel path); the TFLite path adds a `tfl` table of the same
form, so a new dialect or op is an entry here, not a change to every pass.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# (the main op's attributes as {name: python value}, the weight's shape) -> channel axis or None.
ChannelAxis = Callable[[Mapping[str, object], tuple[int, ...]], "int | None"]


@dataclass(frozen=True)
class QuantizableOp:
    """One op that tfquant quantizes, seen from the passes."""
    kind: str
    # The operands the weight may be, in the order they are tried.
    weight_operands: tuple[int, ...] = (1,)
    channel_axis: ChannelAxis = lambda attrs, shape: None
    # Whether a BiasAdd and an activation after it are fused into the quantized op.
    takes_fusions: bool = True
    # Only these data formats are lifted (None: any).
    data_formats: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DialectOpSpecs:
    """The quantization properties of one dialect's ops."""
    quantizable: Mapping[str, QuantizableOp]
    same_scale: frozenset[str]
    # op -> the (min, max) its output always lies in.
    fixed_output_range: Mapping[str, tuple[float, float]]
    bias_add: str
    # op -> the activation name a quantized op fuses ("RELU", "RELU6").
    activations: Mapping[str, str]
    kinds: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", {name: op.kind for name, op in self.quantizable.items()})

    def op_for_kind(self, kind: str) -> str:
        """The op whose quantized form is `kind`."""
        return next(name for name, op in self.quantizable.items() if op.kind == kind)

    def activation_op(self, activation: str) -> str:
        """The op applying a fused activation ("RELU" -> "tf.Relu")."""
        return next(name for name, act in self.activations.items() if act == activation)


def _einsum_channel_axis(attrs: Mapping[str, object], shape: tuple[int, ...]) -> int | None:
    """The weight axis of the output's last index when the activation lacks that index, else None.

    Only then is it an output channel along which the bias (added on the last axis) runs too.
    """
    equation = str(attrs.get("equation", ""))
    if "->" not in equation or "." in equation:
        return None
    inputs, output = equation.replace(" ", "").split("->")
    terms = inputs.split(",")
    if len(terms) != 2 or len(terms[1]) != len(shape) or not output:
        return None
    label = output[-1]
    return terms[1].index(label) if label in terms[1] and label not in terms[0] else None


TF = DialectOpSpecs(
    quantizable={
        "tf.Conv2D": QuantizableOp("conv2d", channel_axis=lambda attrs, shape: 3, data_formats=("NHWC",)),
        # Per channel only with a channel multiplier of 1: then output channel c is filter[:, :, c, 0].
        "tf.DepthwiseConv2dNative": QuantizableOp(
            "depthwise_conv2d", channel_axis=lambda attrs, shape: 2 if shape[3] == 1 else None,
            data_formats=("NHWC",)),
        "tf.MatMul": QuantizableOp("matmul", channel_axis=lambda attrs, shape: 0 if attrs.get("transpose_b") else 1),
        "tf.BatchMatMulV2": QuantizableOp(
            "batch_matmul", weight_operands=(1, 0),
            channel_axis=lambda attrs, shape: len(shape) - (2 if attrs.get("adj_y") else 1)),
        "tf.Einsum": QuantizableOp("einsum", weight_operands=(1, 0), channel_axis=_einsum_channel_axis),
        # An embedding lookup: the weight is the table, quantized per tensor.
        "tf.GatherV2": QuantizableOp("gather", weight_operands=(0,), takes_fusions=False),
    },
    same_scale=frozenset({"tf.Reshape", "tf.Identity", "tf.MaxPool", "tf.Squeeze", "tf.ExpandDims",
                          "tf.Transpose", "tf.Pad", "tf.ConcatV2"}),
    fixed_output_range={"tf.Softmax": (0.0, 1.0), "tf.Sigmoid": (0.0, 1.0), "tf.Tanh": (-1.0, 1.0)},
    bias_add="tf.BiasAdd",
    activations={"tf.Relu": "RELU", "tf.Relu6": "RELU6"},
)


# --- TFLite -----------------------------------------------------------------------------------

# How a TFLite op's result is quantized (the TFLite quantization spec).
OWN_RANGE = "own"     # its own calibrated range
SAME_SCALE = "same"   # its (first) activation's scale and zero point
# Fixed output ranges are given as (int8 params, int16 params): (scale, zero point).


@dataclass(frozen=True)
class TflOp:
    """How one TFLite builtin op is quantized (TFLite's int8 and 16x8 quantization specs).

    `activations` are the operands quantized as activations (asymmetric int8 / symmetric int16;
    a constant one is quantized from its own range); `weight` the operand quantized as a symmetric
    narrow-range int8 weight, per channel along `channel_axis`; `bias` the operand quantized at
    input scale x weight scale (int32, int64 with 16-bit activations). `int16` says whether a 16x8
    kernel exists; `hybrid_version` whether a dynamic-range kernel reads int8 weights with float
    inputs (else dynamic-range weights stay float) and its opcode version; `version` the opcode
    version of the quantized kernel (TensorFlow's converter writes the same for int8 and 16x8).
    Other operands (shapes, axes, indices, paddings) are left as they are.
    """
    activations: tuple[int, ...] | None = (0,)   # None: every operand (concatenation)
    output: object = OWN_RANGE
    weight: int | None = None
    channel_axis: int | None = None
    bias: int | None = None
    int16: bool = True
    hybrid_version: int | None = None
    version: int = 2
    lookup: bool = False

    @property
    def hybrid_weight(self) -> int | None:
        """The operand a dynamic-range kernel reads as int8."""
        return 0 if self.lookup else self.weight


def _fixed(int8: tuple[float, int], int16: tuple[float, int]) -> tuple[tuple[float, int], tuple[float, int]]:
    return int8, int16


# The versions are those TensorFlow 2.21's converter writes (../shared/notes/tflite-converter §10).
TFL: Mapping[str, TflOp] = {
    "tfl.conv_2d": TflOp(weight=1, channel_axis=0, bias=2, hybrid_version=5, version=3),
    "tfl.depthwise_conv_2d": TflOp(weight=1, channel_axis=3, bias=2, hybrid_version=6, version=3),
    "tfl.fully_connected": TflOp(weight=1, channel_axis=0, bias=2, hybrid_version=12, version=4),
    "tfl.transpose_conv": TflOp(activations=(2,), weight=1, channel_axis=0, bias=3, hybrid_version=3, version=3),
    "tfl.batch_matmul": TflOp(activations=(0, 1)),
    "tfl.add": TflOp(activations=(0, 1)),
    "tfl.sub": TflOp(activations=(0, 1)),
    "tfl.mul": TflOp(activations=(0, 1)),
    # TensorFlow's converter writes a 16x8 form, but LiteRT has no int16 kernel for it.
    "tfl.squared_difference": TflOp(activations=(0, 1), int16=False),
    "tfl.mean": TflOp(),
    "tfl.gelu": TflOp(),
    "tfl.hard_swish": TflOp(int16=False, version=1),
    "tfl.average_pool_2d": TflOp(output=SAME_SCALE),
    "tfl.max_pool_2d": TflOp(output=SAME_SCALE),
    "tfl.reshape": TflOp(output=SAME_SCALE, version=1),
    "tfl.squeeze": TflOp(output=SAME_SCALE, version=1),
    "tfl.expand_dims": TflOp(output=SAME_SCALE, version=1),
    "tfl.transpose": TflOp(output=SAME_SCALE),
    "tfl.pad": TflOp(output=SAME_SCALE),
    "tfl.padv2": TflOp(output=SAME_SCALE),
    "tfl.strided_slice": TflOp(output=SAME_SCALE),
    "tfl.slice": TflOp(output=SAME_SCALE),
    "tfl.gather": TflOp(output=SAME_SCALE, hybrid_version=2, lookup=True),
    "tfl.resize_bilinear": TflOp(output=SAME_SCALE, version=3),
    "tfl.resize_nearest_neighbor": TflOp(output=SAME_SCALE),
    # Every input takes the output's scale (an input at another scale is requantized first).
    "tfl.concatenation": TflOp(activations=None, output=SAME_SCALE),
    "tfl.relu": TflOp(),
    "tfl.relu6": TflOp(),
    "tfl.leaky_relu": TflOp(),
    "tfl.softmax": TflOp(output=_fixed((1 / 256, -128), (1 / 32768, 0))),
    "tfl.logistic": TflOp(output=_fixed((1 / 256, -128), (1 / 32768, 0))),
    "tfl.tanh": TflOp(output=_fixed((1 / 128, 0), (1 / 32768, 0))),
}


# Ops that read only their operand's shape: they read a quantized value as it is.
SHAPE_READERS = frozenset({"tfl.shape", "tfl.rank"})

# Float ops, and the operands of theirs, where a value that int8 rounding turns into 0 gives Inf or
# NaN (a divisor, a log, a reciprocal root); the units feeding them stay float.
ZERO_SENSITIVE: Mapping[str, tuple[int, ...]] = {
    "tfl.div": (1,), "tfl.floor_div": (1,), "tfl.floor_mod": (1,), "tfl.log": (0,), "tfl.rsqrt": (0,),
    "tfl.pow": (0,),
}
# The same for tf ops (the SavedModel path's preprocessing detector watches them), with the roots.
TF_ZERO_SENSITIVE: Mapping[str, tuple[int, ...]] = {
    "tf.Log": (0,), "tf.Log1p": (0,), "tf.Sqrt": (0,), "tf.Rsqrt": (0,), "tf.Reciprocal": (0,), "tf.Inv": (0,),
    "tf.RealDiv": (1,), "tf.Div": (1,), "tf.DivNoNan": (1,), "tf.FloorDiv": (1,), "tf.Pow": (0,),
}
