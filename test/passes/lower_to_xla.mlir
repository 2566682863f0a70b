// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-xla | filecheck %s

// SAME conv with a non-zero input zero point: the int8 input is padded with the zero point,
// the XlaConvV2 is VALID, and zp * sum(w) is subtracted per output channel (-3 * 18 = -54).
// The quant casts become quantize (Mul, Round, AddV2, ClipByValue, Cast) and dequantize.
// CHECK-LABEL: func @conv_same
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x4x2xf32>)
// CHECK: %[[INV:.*]] = "tf.Const"() {{.*}}value = dense<2.000000e+01> : tensor<f32>
// CHECK: %[[SCALED:.*]] = "tf.Mul"(%[[X]], %[[INV]]) {T = f32}
// CHECK: %[[ROUND:.*]] = "tf.Round"(%[[SCALED]])
// CHECK: %[[SHIFT:.*]] = "tf.AddV2"(%[[ROUND]],
// CHECK: %[[CLIP:.*]] = "tf.ClipByValue"(%[[SHIFT]],
// CHECK: %[[Q:.*]] = "tf.Cast"(%[[CLIP]]) {DstT = i8, SrcT = f32, Truncate = false}
// A cast left in place would sit right after its replacement.
// CHECK-NOT: quant.
// CHECK: %[[Y:.*]] = "tf.PartitionedCall"(%[[Q]],
// CHECK-NOT: quant.
// CHECK: %[[YF:.*]] = "tf.Cast"(%[[Y]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK: %[[CENTERED:.*]] = "tf.Sub"(%[[YF]],
// CHECK: %[[R:.*]] = "tf.Mul"(%[[CENTERED]],
// CHECK-NOT: quant.
// CHECK: return %[[R]]
// CHECK: func private @quantized_conv2d_with_bias_and_relu_fn_1
// CHECK-SAME: (%[[A:.*]]: tensor<1x4x4x2xi8>, %[[W:.*]]: tensor<3x3x2x3xi8>, %[[B:.*]]: tensor<3xi32>) -> tensor<1x4x4x3xi8>
// CHECK: %[[PADS:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}0, 0], [1, 1], [1, 1], [0, 0]]>
// CHECK: %[[ZP:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<i8>
// CHECK: %[[P:.*]] = "tf.PadV2"(%[[A]], %[[PADS]], %[[ZP]]) {T = i8, Tpaddings = i32} : {{.*}} -> tensor<1x6x6x2xi8>
// CHECK: %[[NOPAD:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<2x2xi32>
// CHECK: %[[ACC:.*]] = "tf.XlaConvV2"(%[[P]], %[[W]], %{{.*}}, %[[NOPAD]], %{{.*}}, %{{.*}}, %{{.*}}) {LhsT = i8, RhsT = i8, Tindices = i32, batch_group_count = 1 : i64, dimension_numbers = "\18\02 \032\02\00\01@\03P\03Z\02\01\02b\02\01\02", precision_config = "", preferred_element_type = i32} : {{.*}} -> tensor<1x4x4x3xi32>
// CHECK: %[[CORR:.*]] = "tf.Const"() {{.*}}value = dense<-54> : tensor<3xi32>
// CHECK: %[[SUB:.*]] = "tf.Sub"(%[[ACC]], %[[CORR]]) {T = i32}
// CHECK: %[[BIASED:.*]] = "tf.AddV2"(%[[SUB]], %[[B]]) {T = i32}
// CHECK: %[[F:.*]] = "tf.Cast"(%[[BIASED]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK: %[[M:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-03, 0.00999999977, 1.500000e-02]> : tensor<3xf32>
// CHECK: "tf.Mul"(%[[F]], %[[M]])
// CHECK: "tf.Round"
// CHECK: "tf.AddV2"
// CHECK: "tf.ClipByValue"
// CHECK: %[[OUT:.*]] = "tf.Cast"({{.*}}) {DstT = i8, SrcT = f32, Truncate = false}
// CHECK-NOT: tfq.quantized_op
// CHECK-NOT: quant.
// CHECK: return %[[OUT]]

func.func @conv_same(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %q = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 5.000000e-02:-3>>
  %s = quant.scast %q : tensor<1x4x4x2x!quant.uniform<i8:f32, 5.000000e-02:-3>> to tensor<1x4x4x2xi8>
  %w = "tf.Const"() {value = dense<1> : tensor<3x3x2x3xi8>, dtype = i8} : () -> tensor<3x3x2x3xi8>
  %b = "tf.Const"() {value = dense<[10, 20, 30]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %y = "tf.PartitionedCall"(%s, %w, %b) {f = @quantized_conv2d_with_bias_and_relu_fn_1, _tfq_quantized = true, config = "", config_proto = "", executor_type = "", Tin = [i8, i8, i32], Tout = [i8]} : (tensor<1x4x4x2xi8>, tensor<3x3x2x3xi8>, tensor<3xi32>) -> tensor<1x4x4x3xi8>
  %yq = quant.scast %y : tensor<1x4x4x3xi8> to tensor<1x4x4x3x!quant.uniform<i8:f32, 1.000000e-01:-128>>
  %r = quant.dcast %yq : tensor<1x4x4x3x!quant.uniform<i8:f32, 1.000000e-01:-128>> to tensor<1x4x4x3xf32>
  return %r : tensor<1x4x4x3xf32>
}
func.func private @quantized_conv2d_with_bias_and_relu_fn_1(%x: tensor<1x4x4x2xi8>, %w: tensor<3x3x2x3xi8>, %b: tensor<3xi32>) -> tensor<1x4x4x3xi8> {
  %y = "tfq.quantized_op"(%x, %w, %b) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}, input_scale = 0.05 : f64, input_zero_point = -3 : i64, weight_scales = dense<[0.01, 0.02, 0.03]> : tensor<3xf64>, weight_axis = 3 : i64, output_scale = 0.1 : f64, output_zero_point = -128 : i64, activation = "RELU"} : (tensor<1x4x4x2xi8>, tensor<3x3x2x3xi8>, tensor<3xi32>) -> tensor<1x4x4x3xi8>
  return %y : tensor<1x4x4x3xi8>
}

// -----

// DepthwiseConv2dNative has no int32 CPU kernel: it runs in f32 on the zero-point-corrected int8
// values, its filter scaled per channel by input scale x weight scale (0.05 x [0.01, 0.02]),
// then relu6 in float and quantize at the output scale.
// CHECK-LABEL: func private @quantized_depthwise_conv2d_fn_1
// CHECK-SAME: (%[[A:.*]]: tensor<1x5x5x2xi8>, %[[W:.*]]: tensor<3x3x2x1xi8>)
// CHECK-NOT: XlaConvV2
// CHECK: %[[AF:.*]] = "tf.Cast"(%[[A]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK: %[[CENTERED:.*]] = "tf.Sub"(%[[AF]], %{{.*}}) {T = f32}
// CHECK: %[[WF:.*]] = "tf.Cast"(%[[W]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK: %[[S:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}5.000000e-04], [1.000000e-03]]> : tensor<2x1xf32>
// CHECK: %[[WS:.*]] = "tf.Mul"(%[[WF]], %[[S]])
// CHECK: %[[D:.*]] = "tf.DepthwiseConv2dNative"(%[[CENTERED]], %[[WS]]) {T = f32, {{.*}}padding = "VALID", strides = [1, 2, 2, 1]}
// CHECK: %[[R:.*]] = "tf.Relu6"(%[[D]])
// CHECK: "tf.Mul"(%[[R]], %{{.*}})
// CHECK: "tf.Round"
// CHECK: "tf.Cast"({{.*}}) {DstT = i8, SrcT = f32

func.func @depthwise(%x: tensor<1x5x5x2xi8>) -> tensor<1x2x2x2xi8> {
  %w = "tf.Const"() {value = dense<[[[[1], [2]], [[3], [4]], [[5], [6]]], [[[1], [2]], [[3], [4]], [[5], [6]]], [[[1], [2]], [[3], [4]], [[5], [6]]]]> : tensor<3x3x2x1xi8>, dtype = i8} : () -> tensor<3x3x2x1xi8>
  %y = "tf.PartitionedCall"(%x, %w) {f = @quantized_depthwise_conv2d_fn_1, _tfq_quantized = true, config = "", config_proto = "", executor_type = "", Tin = [i8, i8], Tout = [i8]} : (tensor<1x5x5x2xi8>, tensor<3x3x2x1xi8>) -> tensor<1x2x2x2xi8>
  return %y : tensor<1x2x2x2xi8>
}
func.func private @quantized_depthwise_conv2d_fn_1(%x: tensor<1x5x5x2xi8>, %w: tensor<3x3x2x1xi8>) -> tensor<1x2x2x2xi8> {
  %y = "tfq.quantized_op"(%x, %w) {kind = "depthwise_conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "VALID", strides = [1, 2, 2, 1]}, input_scale = 0.05 : f64, input_zero_point = 2 : i64, weight_scales = dense<[0.01, 0.02]> : tensor<2xf64>, weight_axis = 2 : i64, output_scale = 0.1 : f64, output_zero_point = 0 : i64, activation = "RELU6"} : (tensor<1x5x5x2xi8>, tensor<3x3x2x1xi8>) -> tensor<1x2x2x2xi8>
  return %y : tensor<1x2x2x2xi8>
}

// -----

// MatMul with transpose_b and a zero input zero point: XlaDotV2 contracting lhs dim 1 with
// rhs dim 1, no correction; a per-tensor weight gives a scalar multiplier.
// CHECK-LABEL: func private @quantized_matmul_fn_1
// CHECK-SAME: (%[[A:.*]]: tensor<4x3xi8>, %[[W:.*]]: tensor<2x3xi8>)
// CHECK: %[[ACC:.*]] = "tf.XlaDotV2"(%[[A]], %[[W]]) {LhsT = i8, RhsT = i8, dimension_numbers = "\0A\01\01\12\01\01", precision_config = "", preferred_element_type = i32} : (tensor<4x3xi8>, tensor<2x3xi8>) -> tensor<4x2xi32>
// CHECK-NOT: "tf.Sub"
// CHECK: %[[F:.*]] = "tf.Cast"(%[[ACC]])
// CHECK: %[[M:.*]] = "tf.Const"() {{.*}}value = dense<5.000000e-03> : tensor<f32>
// CHECK: "tf.Mul"(%[[F]], %[[M]])

func.func @matmul(%x: tensor<4x3xi8>) -> tensor<4x2xi8> {
  %w = "tf.Const"() {value = dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8>, dtype = i8} : () -> tensor<2x3xi8>
  %y = "tf.PartitionedCall"(%x, %w) {f = @quantized_matmul_fn_1, _tfq_quantized = true, config = "", config_proto = "", executor_type = "", Tin = [i8, i8], Tout = [i8]} : (tensor<4x3xi8>, tensor<2x3xi8>) -> tensor<4x2xi8>
  return %y : tensor<4x2xi8>
}
func.func private @quantized_matmul_fn_1(%x: tensor<4x3xi8>, %w: tensor<2x3xi8>) -> tensor<4x2xi8> {
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}, input_scale = 0.05 : f64, input_zero_point = 0 : i64, weight_scales = dense<0.01> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.1 : f64, output_zero_point = 5 : i64, activation = "NONE"} : (tensor<4x3xi8>, tensor<2x3xi8>) -> tensor<4x2xi8>
  return %y : tensor<4x2xi8>
}

// -----

// Einsum whose output order differs from XlaDotV2's (batch, lhs free, rhs free): a Transpose
// follows, and the zero-point correction is laid out in the output's order (1x4x1).
// CHECK-LABEL: func private @quantized_einsum_fn_1
// CHECK: %[[ACC:.*]] = "tf.XlaDotV2"(%{{.*}}, %{{.*}}) {LhsT = i8, RhsT = i8, dimension_numbers = "\0A\01\02\12\01\00", {{.*}}} : (tensor<2x5x3xi8>, tensor<3x4xi8>) -> tensor<2x5x4xi32>
// CHECK: %[[PERM:.*]] = "tf.Const"() {{.*}}value = dense<[0, 2, 1]> : tensor<3xi32>
// CHECK: %[[T:.*]] = "tf.Transpose"(%[[ACC]], %[[PERM]]) {T = i32, Tperm = i32} : {{.*}} -> tensor<2x4x5xi32>
// CHECK: %[[CORR:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<1x4x1xi32>
// CHECK: "tf.Sub"(%[[T]], %[[CORR]])

func.func @einsum(%x: tensor<2x5x3xi8>) -> tensor<2x4x5xi8> {
  %w = "tf.Const"() {value = dense<1> : tensor<3x4xi8>, dtype = i8} : () -> tensor<3x4xi8>
  %y = "tf.PartitionedCall"(%x, %w) {f = @quantized_einsum_fn_1, _tfq_quantized = true, config = "", config_proto = "", executor_type = "", Tin = [i8, i8], Tout = [i8]} : (tensor<2x5x3xi8>, tensor<3x4xi8>) -> tensor<2x4x5xi8>
  return %y : tensor<2x4x5xi8>
}
func.func private @quantized_einsum_fn_1(%x: tensor<2x5x3xi8>, %w: tensor<3x4xi8>) -> tensor<2x4x5xi8> {
  %y = "tfq.quantized_op"(%x, %w) {kind = "einsum", op_attrs = {N = 2 : i64, T = f32, equation = "abc,cd->adb"}, input_scale = 0.05 : f64, input_zero_point = -1 : i64, weight_scales = dense<0.01> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.1 : f64, output_zero_point = 0 : i64, activation = "NONE"} : (tensor<2x5x3xi8>, tensor<3x4xi8>) -> tensor<2x4x5xi8>
  return %y : tensor<2x4x5xi8>
}

// -----

// Gather reads the int8 table; its result keeps the table's parameters (no requantize).
// CHECK-LABEL: func @gather
// CHECK: %[[Y:.*]] = "tf.PartitionedCall"
// CHECK: %[[F:.*]] = "tf.Cast"(%[[Y]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK-NOT: "tf.Sub"
// CHECK: "tf.Mul"(%[[F]],
// CHECK-LABEL: func private @quantized_gather_fn_1
// CHECK-SAME: (%[[I:.*]]: tensor<3xi32>, %[[T:.*]]: tensor<10x4xi8>, %[[AXIS:.*]]: tensor<i32>)
// CHECK: %[[G:.*]] = "tf.GatherV2"(%[[T]], %[[I]], %[[AXIS]]) {Taxis = i32, Tindices = i32, Tparams = i8, batch_dims = 0 : i64} : {{.*}} -> tensor<3x4xi8>
// CHECK-NEXT: return %[[G]]

func.func @gather(%i: tensor<3xi32>) -> tensor<3x4xf32> {
  %t = "tf.Const"() {value = dense<7> : tensor<10x4xi8>, dtype = i8} : () -> tensor<10x4xi8>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %y = "tf.PartitionedCall"(%i, %t, %axis) {f = @quantized_gather_fn_1, _tfq_quantized = true, config = "", config_proto = "", executor_type = "", Tin = [i32, i8, i32], Tout = [i8]} : (tensor<3xi32>, tensor<10x4xi8>, tensor<i32>) -> tensor<3x4xi8>
  %yq = quant.scast %y : tensor<3x4xi8> to tensor<3x4x!quant.uniform<i8:f32, 2.000000e-02>>
  %r = quant.dcast %yq : tensor<3x4x!quant.uniform<i8:f32, 2.000000e-02>> to tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}
func.func private @quantized_gather_fn_1(%i: tensor<3xi32>, %t: tensor<10x4xi8>, %axis: tensor<i32>) -> tensor<3x4xi8> {
  %y = "tfq.quantized_op"(%t, %i, %axis) {kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}, input_scale = 0.02 : f64, input_zero_point = 0 : i64, weight_scales = dense<0.02> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.02 : f64, output_zero_point = 0 : i64, activation = "NONE"} : (tensor<10x4xi8>, tensor<3xi32>, tensor<i32>) -> tensor<3x4xi8>
  return %y : tensor<3x4xi8>
}
