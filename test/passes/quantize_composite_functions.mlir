// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions='float-output=false' | filecheck %s
// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions='per-channel=false float-output=false' | filecheck %s --check-prefix=PT
// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions | filecheck %s --check-prefix=FLOAT

// Conv2D + BiasAdd + Relu6 between quant casts: an int8 call of @quantized_..._fn_1. Per channel,
// each output channel's peak maps to 127 and the bias is round(b / (0.02 * w_scale)).
// CHECK-LABEL: func @conv
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x4x2xf32>)
// CHECK: %[[Q:.*]] = quant.qcast %[[X]] {{.*}} to tensor<1x4x4x2x!quant.uniform<i8:f32, 2.000000e-02:-10>>
// CHECK: %[[XI:.*]] = quant.scast %[[Q]] {{.*}} to tensor<1x4x4x2xi8>
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[\[\[}}127, -32, 127], [64, 127, -64]]]]> : tensor<1x1x2x3xi8>
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[635, 635, -7620]> : tensor<3xi32>
// CHECK: %[[Y:.*]] = "tf.PartitionedCall"(%[[XI]], %[[W]], %[[B]]) {_tfq_kind = "conv2d", _tfq_quantized = true, {{.*}}f = @quantized_conv2d_with_bias_and_relu6_fn_1} {{.*}} -> tensor<1x4x4x3xi8>
// CHECK: %[[YQ:.*]] = quant.scast %[[Y]] : tensor<1x4x4x3xi8> to tensor<1x4x4x3x!quant.uniform<i8:f32, 3.000000e-02:-128>>
// CHECK-NOT: quant.qcast
// CHECK: %[[YD:.*]] = quant.dcast %[[YQ]]
// CHECK: return %[[YD]]
// CHECK-NOT: composite_conv2d
// CHECK: func private @quantized_conv2d_with_bias_and_relu6_fn_1(%[[A:.*]]: tensor<1x4x4x2xi8>, %[[AW:.*]]: tensor<1x1x2x3xi8>, %[[AB:.*]]: tensor<3xi32>) -> tensor<1x4x4x3xi8>
// CHECK: %[[R:.*]] = "tfq.quantized_op"(%[[A]], %[[AW]], %[[AB]]) {activation = "RELU6", input_scale = 2.000000e-02 : f64, input_zero_point = -10 : i64, kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", {{.*}}padding = "SAME", strides = [1, 1, 1, 1]{{.*}}}, output_scale = 3.000000e-02 : f64, output_zero_point = -128 : i64, weight_axis = 3 : i64, weight_scales = dense<[0.0078{{[0-9]*}}, 0.0157{{[0-9]*}}, 0.00196{{[0-9]*}}]> : tensor<3xf64>}
// CHECK-NEXT: return %[[R]]
// Per tensor: one scale (2/127), weight_axis -1.
// PT-LABEL: func @conv
// PT: value = dense<{{\[\[\[\[}}64, -32, 16], [32, 127, -8]]]]> : tensor<1x1x2x3xi8>
// PT: value = dense<[318, 635, -953]> : tensor<3xi32>
// PT: weight_axis = -1 : i64, weight_scales = dense<0.0157{{[0-9]*}}> : tensor<1xf64>
// With float outputs (the default), a call whose result only reaches the function's results
// returns f32 directly and the output casts go away.
// FLOAT-LABEL: func @conv
// FLOAT: %[[Y:.*]] = "tf.PartitionedCall"({{.*}}) {{.*}}f = @quantized_conv2d_with_bias_and_relu6_fn_1} {{.*}} -> tensor<1x4x4x3xf32>
// FLOAT-NOT: quant.dcast
// FLOAT: return %[[Y]]
// FLOAT: func private @quantized_conv2d_with_bias_and_relu6_fn_1({{.*}}) -> tensor<1x4x4x3xf32>
// FLOAT: "tfq.quantized_op"{{.*}}float_output = true
func.func @conv(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = "tf.Const"() {value = dense<[[[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]]]> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %b = "tf.Const"() {value = dense<[0.1, 0.2, -0.3]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %q = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 0.02:-10>>
  %d = quant.dcast %q : tensor<1x4x4x2x!quant.uniform<i8:f32, 0.02:-10>> to tensor<1x4x4x2xf32>
  %y = "tf.PartitionedCall"(%d, %w, %b) {f = @composite_conv2d_with_bias_and_relu6_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
  %yq = quant.qcast %y : tensor<1x4x4x3xf32> to tensor<1x4x4x3x!quant.uniform<i8:f32, 0.03:-128>>
  %yd = quant.dcast %yq : tensor<1x4x4x3x!quant.uniform<i8:f32, 0.03:-128>> to tensor<1x4x4x3xf32>
  return %yd : tensor<1x4x4x3xf32>
}
func.func private @composite_conv2d_with_bias_and_relu6_fn_1(%a: tensor<1x4x4x2xf32>, %w: tensor<1x1x2x3xf32>, %b: tensor<3xf32>) -> tensor<1x4x4x3xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  %ba = "tf.BiasAdd"(%c, %b) {T = f32, data_format = "NHWC"} : (tensor<1x4x4x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
  %r = "tf.Relu6"(%ba) {T = f32} : (tensor<1x4x4x3xf32>) -> tensor<1x4x4x3xf32>
  return %r : tensor<1x4x4x3xf32>
}

// -----

// Kind and fusions come from the body, not the name. MatMul with transpose_b: channels on axis 0;
// no bias, so no bias operand; a Relu fused.
// CHECK-LABEL: func @matmul_transposed
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -64], [-127, 32]]> : tensor<2x2xi8>
// CHECK: "tf.PartitionedCall"(%{{.*}}, %[[W]]) {_tfq_kind = "matmul", {{.*}}f = @quantized_misnamed_fn_7} : (tensor<3x2xi8>, tensor<2x2xi8>) -> tensor<3x2xi8>
// CHECK: func private @quantized_misnamed_fn_7
// CHECK: activation = "RELU", {{.*}}kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}, {{.*}}weight_axis = 0 : i64
func.func @matmul_transposed(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = "tf.Const"() {value = dense<[[2.0, -1.0], [-4.0, 1.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %q = quant.qcast %x : tensor<3x2xf32> to tensor<3x2x!quant.uniform<i8:f32, 0.5:0>>
  %d = quant.dcast %q : tensor<3x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<3x2xf32>
  %y = "tf.PartitionedCall"(%d, %w) {f = @composite_misnamed_fn_7, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %yq = quant.qcast %y : tensor<3x2xf32> to tensor<3x2x!quant.uniform<i8:f32, 0.25:-128>>
  %yd = quant.dcast %yq : tensor<3x2x!quant.uniform<i8:f32, 0.25:-128>> to tensor<3x2xf32>
  return %yd : tensor<3x2xf32>
}
func.func private @composite_misnamed_fn_7(%a: tensor<3x2xf32>, %w: tensor<2x2xf32>) -> tensor<3x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = true} : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %r = "tf.Relu"(%m) {T = f32} : (tensor<3x2xf32>) -> tensor<3x2xf32>
  return %r : tensor<3x2xf32>
}

// -----

// Depthwise with channel multiplier 1 is per channel on axis 2; with multiplier 2, per tensor.
// CHECK-LABEL: func @depthwise
// CHECK: f = @quantized_depthwise_conv2d_fn_1
// CHECK: f = @quantized_depthwise_conv2d_fn_2
// CHECK: func private @quantized_depthwise_conv2d_fn_1
// CHECK: kind = "depthwise_conv2d", {{.*}}weight_axis = 2 : i64, weight_scales = dense<{{.*}}> : tensor<2xf64>
// CHECK: func private @quantized_depthwise_conv2d_fn_2
// CHECK: kind = "depthwise_conv2d", {{.*}}weight_axis = -1 : i64, weight_scales = dense<{{.*}}> : tensor<1xf64>
func.func @depthwise(%x: tensor<1x3x3x2xf32>) -> (tensor<1x3x3x2xf32>, tensor<1x3x3x4xf32>) {
  %w1 = "tf.Const"() {value = dense<[[[[1.0], [0.5]]]]> : tensor<1x1x2x1xf32>, dtype = f32} : () -> tensor<1x1x2x1xf32>
  %w2 = "tf.Const"() {value = dense<[[[[1.0, 2.0], [0.5, 4.0]]]]> : tensor<1x1x2x2xf32>, dtype = f32} : () -> tensor<1x1x2x2xf32>
  %q = quant.qcast %x : tensor<1x3x3x2xf32> to tensor<1x3x3x2x!quant.uniform<i8:f32, 0.1:0>>
  %d = quant.dcast %q : tensor<1x3x3x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<1x3x3x2xf32>
  %y1 = "tf.PartitionedCall"(%d, %w1) {f = @composite_depthwise_conv2d_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x3x3x2xf32>, tensor<1x1x2x1xf32>) -> tensor<1x3x3x2xf32>
  %y1q = quant.qcast %y1 : tensor<1x3x3x2xf32> to tensor<1x3x3x2x!quant.uniform<i8:f32, 0.1:0>>
  %y1d = quant.dcast %y1q : tensor<1x3x3x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<1x3x3x2xf32>
  %y2 = "tf.PartitionedCall"(%d, %w2) {f = @composite_depthwise_conv2d_fn_2, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x3x3x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x3x3x4xf32>
  %y2q = quant.qcast %y2 : tensor<1x3x3x4xf32> to tensor<1x3x3x4x!quant.uniform<i8:f32, 0.2:0>>
  %y2d = quant.dcast %y2q : tensor<1x3x3x4x!quant.uniform<i8:f32, 0.2:0>> to tensor<1x3x3x4xf32>
  return %y1d, %y2d : tensor<1x3x3x2xf32>, tensor<1x3x3x4xf32>
}
func.func private @composite_depthwise_conv2d_fn_1(%a: tensor<1x3x3x2xf32>, %w: tensor<1x1x2x1xf32>) -> tensor<1x3x3x2xf32> {
  %c = "tf.DepthwiseConv2dNative"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x3x3x2xf32>, tensor<1x1x2x1xf32>) -> tensor<1x3x3x2xf32>
  return %c : tensor<1x3x3x2xf32>
}
func.func private @composite_depthwise_conv2d_fn_2(%a: tensor<1x3x3x2xf32>, %w: tensor<1x1x2x2xf32>) -> tensor<1x3x3x4xf32> {
  %c = "tf.DepthwiseConv2dNative"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x3x3x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x3x3x4xf32>
  return %c : tensor<1x3x3x4xf32>
}

// -----

// An einsum with the weight on the left (tfq.weight_operand = 0) swaps its equation's terms so
// that the activation comes first; the weight's "d" is the output's last index: per channel.
// CHECK-LABEL: func @einsum_weight_left
// CHECK: "tf.PartitionedCall"(%{{.*}}, %{{.*}}) {_tfq_kind = "einsum"
// CHECK: func private @quantized_einsum_fn_1
// CHECK: kind = "einsum", op_attrs = {T = f32, equation = "abc,cd->abd"}, {{.*}}weight_axis = 1 : i64, weight_scales = dense<{{.*}}> : tensor<4xf64>
func.func @einsum_weight_left(%x: tensor<2x3x5xf32>) -> tensor<2x3x4xf32> {
  %w = "tf.Const"() {value = dense<0.5> : tensor<5x4xf32>, dtype = f32} : () -> tensor<5x4xf32>
  %q = quant.qcast %x : tensor<2x3x5xf32> to tensor<2x3x5x!quant.uniform<i8:f32, 0.1:3>>
  %d = quant.dcast %q : tensor<2x3x5x!quant.uniform<i8:f32, 0.1:3>> to tensor<2x3x5xf32>
  %y = "tf.PartitionedCall"(%d, %w) {f = @composite_einsum_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x3x5xf32>, tensor<5x4xf32>) -> tensor<2x3x4xf32>
  %yq = quant.qcast %y : tensor<2x3x4xf32> to tensor<2x3x4x!quant.uniform<i8:f32, 0.2:1>>
  %yd = quant.dcast %yq : tensor<2x3x4x!quant.uniform<i8:f32, 0.2:1>> to tensor<2x3x4xf32>
  return %yd : tensor<2x3x4xf32>
}
func.func private @composite_einsum_fn_1(%a: tensor<2x3x5xf32>, %w: tensor<5x4xf32>) -> tensor<2x3x4xf32> attributes {tfq.weight_operand = 0 : i64} {
  %e = "tf.Einsum"(%w, %a) {T = f32, equation = "cd,abc->abd"} : (tensor<5x4xf32>, tensor<2x3x5xf32>) -> tensor<2x3x4xf32>
  return %e : tensor<2x3x4xf32>
}

// -----

// A gather needs no output calibration: the int8 table is per tensor (peak 2.54 -> scale 0.02),
// and the result takes its parameters, replacing the qcast's.
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:.*]]: tensor<3xi32>)
// CHECK-DAG: %[[T:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -64], [32, 0]]> : tensor<2x2xi8>
// CHECK-DAG: %[[AX:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<i32>
// CHECK: %[[G:.*]] = "tf.PartitionedCall"(%[[T]], %[[I]], %[[AX]]) {_tfq_kind = "gather", {{.*}}f = @quantized_gather_fn_1} : (tensor<2x2xi8>, tensor<3xi32>, tensor<i32>) -> tensor<3x2xi8>
// CHECK: %[[GQ:.*]] = quant.scast %[[G]] : tensor<3x2xi8> to tensor<3x2x!quant.uniform<i8:f32, 0.01999{{[0-9]*}}>>
// CHECK-NOT: quant.qcast
// CHECK: %[[GD:.*]] = quant.dcast %[[GQ]]
// CHECK: return %[[GD]]
// CHECK: func private @quantized_gather_fn_1
// CHECK: kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}, output_scale = 0.01999{{[0-9]*}} : f64, output_zero_point = 0 : i64
func.func @gather(%i: tensor<3xi32>) -> tensor<3x2xf32> {
  %t = "tf.Const"() {value = dense<[[2.54, -1.27], [0.64, 0.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %y = "tf.PartitionedCall"(%i, %t, %axis) {f = @composite_gather_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<3xi32>, tensor<2x2xf32>, tensor<i32>) -> tensor<3x2xf32>
  %yq = quant.qcast %y : tensor<3x2xf32> to tensor<3x2x!quant.uniform<i8:f32, 0.05:7>>
  %yd = quant.dcast %yq : tensor<3x2x!quant.uniform<i8:f32, 0.05:7>> to tensor<3x2xf32>
  return %yd : tensor<3x2xf32>
}
func.func private @composite_gather_fn_1(%i: tensor<3xi32>, %t: tensor<2x2xf32>, %axis: tensor<i32>) -> tensor<3x2xf32> {
  %g = "tf.GatherV2"(%t, %i, %axis) {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64} : (tensor<2x2xf32>, tensor<3xi32>, tensor<i32>) -> tensor<3x2xf32>
  return %g : tensor<3x2xf32>
}

// -----

// Same-scale ops between quantized calls run on int8 and forward the producer's type A
// (0.25:-3): Reshape then Pad (zero point -3, so PadV2 pads with -3). The consumer then reads A.
// CHECK-LABEL: func @same_scale_chain
// CHECK: %[[Y1:.*]] = "tf.PartitionedCall"({{.*}}f = @quantized_matmul_fn_1
// CHECK: %[[R:.*]] = "tf.Reshape"(%[[Y1]], %{{.*}}) {T = i8, Tshape = i32} : (tensor<2x4xi8>, tensor<2xi32>) -> tensor<4x2xi8>
// CHECK: %[[ZP:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<i8>
// CHECK: %[[P:.*]] = "tf.PadV2"(%[[R]], %{{.*}}, %[[ZP]]) {T = i8, Tpaddings = i32} : (tensor<4x2xi8>, tensor<2x2xi32>, tensor<i8>) -> tensor<6x2xi8>
// CHECK: "tf.PartitionedCall"(%[[P]], {{.*}}f = @quantized_matmul_fn_2
// CHECK: func private @quantized_matmul_fn_2
// CHECK: input_scale = 2.500000e-01 : f64, input_zero_point = -3 : i64
func.func @same_scale_chain(%x: tensor<2x2xf32>) -> tensor<6x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x4xf32>, dtype = f32} : () -> tensor<2x4xf32>
  %w2 = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %shape = "tf.Const"() {value = dense<[4, 2]> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %pads = "tf.Const"() {value = dense<[[1, 1], [0, 0]]> : tensor<2x2xi32>, dtype = i32} : () -> tensor<2x2xi32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.1:0>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<2x2xf32>
  %y1 = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %y1q = quant.qcast %y1 : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 0.25:-3>>
  %y1d = quant.dcast %y1q : tensor<2x4x!quant.uniform<i8:f32, 0.25:-3>> to tensor<2x4xf32>
  %r = "tf.Reshape"(%y1d, %shape) {T = f32, Tshape = i32} : (tensor<2x4xf32>, tensor<2xi32>) -> tensor<4x2xf32>
  %rq = quant.qcast %r : tensor<4x2xf32> to tensor<4x2x!quant.uniform<i8:f32, 0.3:5>>
  %rd = quant.dcast %rq : tensor<4x2x!quant.uniform<i8:f32, 0.3:5>> to tensor<4x2xf32>
  %p = "tf.Pad"(%rd, %pads) {T = f32, Tpaddings = i32} : (tensor<4x2xf32>, tensor<2x2xi32>) -> tensor<6x2xf32>
  %pq = quant.qcast %p : tensor<6x2xf32> to tensor<6x2x!quant.uniform<i8:f32, 0.4:5>>
  %pd = quant.dcast %pq : tensor<6x2x!quant.uniform<i8:f32, 0.4:5>> to tensor<6x2xf32>
  %y2 = "tf.PartitionedCall"(%pd, %w2) {f = @composite_matmul_fn_2, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<6x2xf32>, tensor<2x2xf32>) -> tensor<6x2xf32>
  %y2q = quant.qcast %y2 : tensor<6x2xf32> to tensor<6x2x!quant.uniform<i8:f32, 0.5:0>>
  %y2d = quant.dcast %y2q : tensor<6x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<6x2xf32>
  return %y2d : tensor<6x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %m : tensor<2x4xf32>
}
func.func private @composite_matmul_fn_2(%a: tensor<6x2xf32>, %w: tensor<2x2xf32>) -> tensor<6x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<6x2xf32>, tensor<2x2xf32>) -> tensor<6x2xf32>
  return %m : tensor<6x2xf32>
}

// -----

// Calls that do not qualify stay float, and their composite functions stay: an input that is not
// a dcast, results cast to two different types, and a body with an op that is not a fusion.
// CHECK-LABEL: func @not_quantized
// CHECK-NOT: _tfq_quantized
// CHECK: f = @composite_matmul_fn_1
// CHECK: f = @composite_matmul_fn_1
// CHECK: f = @composite_matmul_with_sigmoid_fn_2
// CHECK-NOT: quantized_
// CHECK: func private @composite_matmul_fn_1
// CHECK: func private @composite_matmul_with_sigmoid_fn_2
func.func @not_quantized(%x: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %y1 = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %y1q = quant.qcast %y1 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.5:0>>
  %y1d = quant.dcast %y1q : tensor<2x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<2x2xf32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.1:0>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<2x2xf32>
  %y2 = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %y2a = quant.qcast %y2 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.5:0>>
  %y2b = quant.qcast %y2 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.25:0>>
  %y2ad = quant.dcast %y2a : tensor<2x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<2x2xf32>
  %y2bd = quant.dcast %y2b : tensor<2x2x!quant.uniform<i8:f32, 0.25:0>> to tensor<2x2xf32>
  %y3 = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_with_sigmoid_fn_2, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %y3q = quant.qcast %y3 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.5:0>>
  %y3d = quant.dcast %y3q : tensor<2x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<2x2xf32>
  return %y1d, %y2bd, %y3d : tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}
func.func private @composite_matmul_with_sigmoid_fn_2(%a: tensor<2x2xf32>, %w: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %s = "tf.Sigmoid"(%m) {T = f32} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  return %s : tensor<2x2xf32>
}

// -----

// Same-scale ops stay float when their inputs differ in type (ConcatV2) or feed a float op.
// CHECK-LABEL: func @same_scale_not_quantized
// CHECK: "tf.ConcatV2"({{.*}}) {N = 2 : i64, T = f32, Tidx = i32}
// CHECK: "tf.Reshape"({{.*}}) {T = f32, Tshape = i32}
func.func @same_scale_not_quantized(%x: tensor<2x2xf32>, %z: tensor<2x2xf32>) -> (tensor<4x2xf32>, tensor<4xf32>) {
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %shape = "tf.Const"() {value = dense<[4]> : tensor<1xi32>, dtype = i32} : () -> tensor<1xi32>
  %q1 = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.1:0>>
  %d1 = quant.dcast %q1 : tensor<2x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<2x2xf32>
  %q2 = quant.qcast %z : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.2:0>>
  %d2 = quant.dcast %q2 : tensor<2x2x!quant.uniform<i8:f32, 0.2:0>> to tensor<2x2xf32>
  %c = "tf.ConcatV2"(%d1, %d2, %axis) {N = 2 : i64, T = f32, Tidx = i32} : (tensor<2x2xf32>, tensor<2x2xf32>, tensor<i32>) -> tensor<4x2xf32>
  %cq = quant.qcast %c : tensor<4x2xf32> to tensor<4x2x!quant.uniform<i8:f32, 0.2:0>>
  %cd = quant.dcast %cq : tensor<4x2x!quant.uniform<i8:f32, 0.2:0>> to tensor<4x2xf32>
  %r = "tf.Reshape"(%d1, %shape) {T = f32, Tshape = i32} : (tensor<2x2xf32>, tensor<1xi32>) -> tensor<4xf32>
  %e = "tf.Exp"(%r) {T = f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %cd, %e : tensor<4x2xf32>, tensor<4xf32>
}

// -----

// ConcatV2 of inputs of one type runs on int8; BatchMatMulV2 with adj_y is per channel on axis -2
// of the weight; one with the weight on the left stays float.
// CHECK-LABEL: func @concat_and_batch_matmul
// CHECK: %[[C:.*]] = "tf.ConcatV2"(%{{.*}}, %{{.*}}, %{{.*}}) {N = 2 : i64, T = i8, Tidx = i32} : (tensor<2x2x3xi8>, tensor<2x2x3xi8>, tensor<i32>) -> tensor<2x4x3xi8>
// CHECK: "tf.PartitionedCall"(%[[C]], %{{.*}}) {_tfq_kind = "batch_matmul", {{.*}}f = @quantized_batch_matmul_fn_1}
// CHECK: "tf.PartitionedCall"({{.*}}) {_tfl_quant_trait = "fully_quantizable", {{.*}}f = @composite_batch_matmul_fn_2}
// CHECK: func private @quantized_batch_matmul_fn_1
// CHECK: input_scale = 1.000000e-01 : f64, input_zero_point = 2 : i64, kind = "batch_matmul", op_attrs = {T = f32, adj_x = false, adj_y = true}, {{.*}}weight_axis = 0 : i64, weight_scales = dense<{{.*}}> : tensor<5xf64>
func.func @concat_and_batch_matmul(%x: tensor<2x2x3xf32>, %z: tensor<2x2x3xf32>) -> (tensor<2x4x5xf32>, tensor<2x3xf32>) {
  %axis = "tf.Const"() {value = dense<1> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %w = "tf.Const"() {value = dense<0.5> : tensor<5x3xf32>, dtype = f32} : () -> tensor<5x3xf32>
  %wl = "tf.Const"() {value = dense<0.5> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %q1 = quant.qcast %x : tensor<2x2x3xf32> to tensor<2x2x3x!quant.uniform<i8:f32, 0.1:2>>
  %d1 = quant.dcast %q1 : tensor<2x2x3x!quant.uniform<i8:f32, 0.1:2>> to tensor<2x2x3xf32>
  %q2 = quant.qcast %z : tensor<2x2x3xf32> to tensor<2x2x3x!quant.uniform<i8:f32, 0.1:2>>
  %d2 = quant.dcast %q2 : tensor<2x2x3x!quant.uniform<i8:f32, 0.1:2>> to tensor<2x2x3xf32>
  %c = "tf.ConcatV2"(%d1, %d2, %axis) {N = 2 : i64, T = f32, Tidx = i32} : (tensor<2x2x3xf32>, tensor<2x2x3xf32>, tensor<i32>) -> tensor<2x4x3xf32>
  %cq = quant.qcast %c : tensor<2x4x3xf32> to tensor<2x4x3x!quant.uniform<i8:f32, 0.3:0>>
  %cd = quant.dcast %cq : tensor<2x4x3x!quant.uniform<i8:f32, 0.3:0>> to tensor<2x4x3xf32>
  %y = "tf.PartitionedCall"(%cd, %w) {f = @composite_batch_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x4x3xf32>, tensor<5x3xf32>) -> tensor<2x4x5xf32>
  %yq = quant.qcast %y : tensor<2x4x5xf32> to tensor<2x4x5x!quant.uniform<i8:f32, 0.2:0>>
  %yd = quant.dcast %yq : tensor<2x4x5x!quant.uniform<i8:f32, 0.2:0>> to tensor<2x4x5xf32>
  %x2 = "tf.Const"() {value = dense<1.0> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %xq = quant.qcast %x2 : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 0.1:0>>
  %xd = quant.dcast %xq : tensor<2x3x!quant.uniform<i8:f32, 0.1:0>> to tensor<2x3xf32>
  %l = "tf.PartitionedCall"(%xd, %wl) {f = @composite_batch_matmul_fn_2, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x3xf32>, tensor<2x2xf32>) -> tensor<2x3xf32>
  %lq = quant.qcast %l : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 0.2:0>>
  %ld = quant.dcast %lq : tensor<2x3x!quant.uniform<i8:f32, 0.2:0>> to tensor<2x3xf32>
  return %yd, %ld : tensor<2x4x5xf32>, tensor<2x3xf32>
}
func.func private @composite_batch_matmul_fn_1(%a: tensor<2x4x3xf32>, %w: tensor<5x3xf32>) -> tensor<2x4x5xf32> {
  %m = "tf.BatchMatMulV2"(%a, %w) {T = f32, adj_x = false, adj_y = true} : (tensor<2x4x3xf32>, tensor<5x3xf32>) -> tensor<2x4x5xf32>
  return %m : tensor<2x4x5xf32>
}
func.func private @composite_batch_matmul_fn_2(%a: tensor<2x3xf32>, %w: tensor<2x2xf32>) -> tensor<2x3xf32> attributes {tfq.weight_operand = 0 : i64} {
  %m = "tf.BatchMatMulV2"(%w, %a) {T = f32, adj_x = false, adj_y = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %m : tensor<2x3xf32>
}

// -----

// With float outputs, a Pad between a quantized call and a float op does not make the call's
// result int8: only a same-scale op whose result is quantized again runs on int8.
// FLOAT-LABEL: func @pad_then_float
// FLOAT: %[[Y:.*]] = "tf.PartitionedCall"({{.*}}) {{.*}}f = @quantized_matmul_fn_1} {{.*}} -> tensor<2x3xf32>
// FLOAT: %[[P:.*]] = "tf.Pad"(%[[Y]], %{{.*}}) {{.*}} -> tensor<4x3xf32>
// FLOAT: "tf.Tanh"(%[[P]])
func.func @pad_then_float(%x: tensor<2x2xf32>) -> tensor<4x3xf32> {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.02:-10>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i8:f32, 0.02:-10>> to tensor<2x2xf32>
  %y = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %yq = quant.qcast %y : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 0.03:-1>>
  %yd = quant.dcast %yq : tensor<2x3x!quant.uniform<i8:f32, 0.03:-1>> to tensor<2x3xf32>
  %pads = "tf.Const"() {value = dense<[[1, 1], [0, 0]]> : tensor<2x2xi32>, dtype = i32} : () -> tensor<2x2xi32>
  %p = "tf.Pad"(%yd, %pads) {T = f32, Tpaddings = i32} : (tensor<2x3xf32>, tensor<2x2xi32>) -> tensor<4x3xf32>
  %t = "tf.Tanh"(%p) {T = f32} : (tensor<4x3xf32>) -> tensor<4x3xf32>
  return %t : tensor<4x3xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %m : tensor<2x3xf32>
}
