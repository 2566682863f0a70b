// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions='float-output=false' | filecheck %s
// RUN: tfquant-opt %s -split-input-file -tfq-assign-quantization-spec='per-channel=false' -tfq-quantize-composite-functions='float-output=false' | filecheck %s --check-prefix=PT
// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions | filecheck %s --check-prefix=FLOAT
// RUN: tfquant-opt %s -split-input-file -tfq-quantize-weights -tfq-quantize-composite-functions | filecheck %s --check-prefix=MIXED
// Calls left float say why, as a remark at the call.
// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions -verify-diagnostics

// Conv2D + BiasAdd + Relu6 between quant casts: one tfq.quantized_op in place of the call, every
// parameter in its types. Per channel, each output channel's peak maps to 127 and the bias is
// round(b / (0.02 * w_scale)) at scale 0.02 x w_scale, along axis 0.
// CHECK-LABEL: func @conv
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x4x2xf32>)
// CHECK: %[[Q:.*]] = quant.qcast %[[X]] : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 2.000000e-02:-10>>
// CHECK-NEXT: %[[WI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[\[\[}}127, -32, 127], [64, 127, -64]]]]> : tensor<1x1x2x3xi8>
// CHECK-NEXT: %[[W:.*]] = quant.scast %[[WI]] : tensor<1x1x2x3xi8> to tensor<1x1x2x3x!quant.uniform<i8<-127:127>:f32:3, {0.00787401{{[0-9]*}},0.0157480{{[0-9]*}},0.00196850{{[0-9]*}}}>>
// CHECK-NEXT: %[[BI:.*]] = "tf.Const"() {{.*}}value = dense<[635, 635, -7620]> : tensor<3xi32>
// CHECK-NEXT: %[[B:.*]] = quant.scast %[[BI]] : tensor<3xi32> to tensor<3x!quant.uniform<i32<-2147483647:2147483647>:f32:0, {1.5748031{{[0-9]*}}{{[eE]}}-4,3.149606{{[0-9]*}}{{[eE]}}-4,3.937007{{[0-9]*}}{{[eE]}}-5}>>
// CHECK-NEXT: %[[Y:.*]] = "tfq.quantized_op"(%[[Q]], %[[W]], %[[B]]) {activation = "RELU6", kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", {{.*}}padding = "SAME", strides = [1, 1, 1, 1]{{.*}}}} : ({{.*}}) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 3.000000e-02:-128>>
// CHECK-NOT: quant.qcast
// CHECK: %[[YD:.*]] = quant.dcast %[[Y]] : tensor<1x4x4x3x!quant.uniform<i8:f32, 3.000000e-02:-128>> to tensor<1x4x4x3xf32>
// CHECK-NEXT: return %[[YD]]
// CHECK-NOT: tf.PartitionedCall
// CHECK-NOT: func private @composite_conv2d
// Per tensor (the spec says per_channel = false): one scale, 2/127, and the bias at 0.02 x 2/127.
// PT-LABEL: func @conv
// PT: value = dense<{{\[\[\[\[}}64, -32, 16], [32, 127, -8]]]]> : tensor<1x1x2x3xi8>
// PT-NEXT: quant.scast {{.*}} to tensor<1x1x2x3x!quant.uniform<i8<-127:127>:f32, 0.0157480{{[0-9]*}}>>
// PT-NEXT: value = dense<[318, 635, -953]> : tensor<3xi32>
// PT-NEXT: quant.scast {{.*}} to tensor<3x!quant.uniform<i32<-2147483647:2147483647>:f32, 3.149606{{[0-9]*}}{{[eE]}}-4>>
// PT-NEXT: "tfq.quantized_op"
// With float outputs (the default), a call whose result only reaches the function's results
// returns f32 directly and the output casts go away.
// FLOAT-LABEL: func @conv
// FLOAT: %[[Y:.*]] = "tfq.quantized_op"({{.*}}) {activation = "RELU6", kind = "conv2d", {{.*}} -> tensor<1x4x4x3xf32>
// FLOAT-NOT: quant.dcast
// FLOAT: return %[[Y]]
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
// CHECK: %[[Q:.*]] = quant.qcast
// CHECK-NEXT: %[[WI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -64], [-127, 32]]> : tensor<2x2xi8>
// CHECK-NEXT: %[[W:.*]] = quant.scast %[[WI]] : tensor<2x2xi8> to tensor<2x2x!quant.uniform<i8<-127:127>:f32:0, {0.0157480{{[0-9]*}},0.0314960{{[0-9]*}}}>>
// CHECK-NEXT: "tfq.quantized_op"(%[[Q]], %[[W]]) {activation = "RELU", kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}} : (tensor<3x2x!quant.uniform<i8:f32, 5.000000e-01>>, {{.*}}) -> tensor<3x2x!quant.uniform<i8:f32, 2.500000e-01:-128>>
// CHECK-NOT: func private @composite_misnamed_fn_7
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
// CHECK: "tfq.quantized_op"({{.*}}) {activation = "NONE", kind = "depthwise_conv2d", {{.*}} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<1x1x2x1x!quant.uniform<i8<-127:127>:f32:2, {0.00787401{{[0-9]*}},0.00393700{{[0-9]*}}}>>) -> tensor<1x3x3x2x!quant.uniform<i8:f32, 1.000000e-01>>
// CHECK: value = dense<{{\[\[\[\[}}32, 64], [16, 127]]]]> : tensor<1x1x2x2xi8>
// CHECK: "tfq.quantized_op"({{.*}}) {activation = "NONE", kind = "depthwise_conv2d", {{.*}} : (tensor<1x3x3x2x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<1x1x2x2x!quant.uniform<i8<-127:127>:f32, 0.0314960{{[0-9]*}}>>) -> tensor<1x3x3x4x!quant.uniform<i8:f32, 2.000000e-01>>
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
// that the activation comes first; the weight's "d" is the output's last index: per channel on axis 1.
// CHECK-LABEL: func @einsum_weight_left
// CHECK: "tfq.quantized_op"(%{{.*}}, %{{.*}}) {activation = "NONE", kind = "einsum", op_attrs = {T = f32, equation = "abc,cd->abd"}} : (tensor<2x3x5x!quant.uniform<i8:f32, 1.000000e-01:3>>, tensor<5x4x!quant.uniform<i8<-127:127>:f32:1, {0.00393700{{[0-9]*}},0.00393700{{[0-9]*}},0.00393700{{[0-9]*}},0.00393700{{[0-9]*}}}>>) -> tensor<2x3x4x!quant.uniform<i8:f32, 2.000000e-01:1>>
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
// and the result takes its type, replacing the qcast's.
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:.*]]: tensor<3xi32>)
// CHECK-DAG: %[[AX:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<i32>
// CHECK-DAG: %[[TI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -64], [32, 0]]> : tensor<2x2xi8>
// CHECK: %[[T:.*]] = quant.scast %[[TI]] : tensor<2x2xi8> to tensor<2x2x!quant.uniform<i8<-127:127>:f32, 0.01999{{[0-9]*}}>>
// CHECK-NEXT: %[[G:.*]] = "tfq.quantized_op"(%[[T]], %[[I]], %[[AX]]) {activation = "NONE", kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}} : ({{.*}}) -> tensor<3x2x!quant.uniform<i8<-127:127>:f32, 0.01999{{[0-9]*}}>>
// CHECK-NOT: quant.qcast
// CHECK: %[[GD:.*]] = quant.dcast %[[G]]
// CHECK-NEXT: return %[[GD]]
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

// Same-scale ops between quantized ops run on int8 and forward the producer's type A
// (0.25:-3): Reshape then Pad (zero point -3, so PadV2 pads with -3). The consumer then reads A.
// CHECK-LABEL: func @same_scale_chain
// CHECK: %[[Y1:.*]] = "tfq.quantized_op"({{.*}}kind = "matmul"{{.*}} -> tensor<2x4x!quant.uniform<i8:f32, 2.500000e-01:-3>>
// CHECK-NEXT: %[[Y1I:.*]] = quant.scast %[[Y1]] : tensor<2x4x!quant.uniform<i8:f32, 2.500000e-01:-3>> to tensor<2x4xi8>
// CHECK-NEXT: %[[R:.*]] = "tf.Reshape"(%[[Y1I]], %{{.*}}) {T = i8, Tshape = i32} : (tensor<2x4xi8>, tensor<2xi32>) -> tensor<4x2xi8>
// CHECK-NEXT: %[[ZP:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<i8>
// CHECK-NEXT: %[[P:.*]] = "tf.PadV2"(%[[R]], %{{.*}}, %[[ZP]]) {T = i8, Tpaddings = i32} : (tensor<4x2xi8>, tensor<2x2xi32>, tensor<i8>) -> tensor<6x2xi8>
// CHECK-NEXT: %[[PQ:.*]] = quant.scast %[[P]] : tensor<6x2xi8> to tensor<6x2x!quant.uniform<i8:f32, 2.500000e-01:-3>>
// CHECK-NOT: quant.qcast
// CHECK: "tfq.quantized_op"(%[[PQ]], %{{.*}}) {{.*}}kind = "matmul"{{.*}} : (tensor<6x2x!quant.uniform<i8:f32, 2.500000e-01:-3>>, {{.*}}) -> tensor<6x2x!quant.uniform<i8:f32, 5.000000e-01>>
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
// Each says why in tfq.float_reason (and a remark).
// CHECK-LABEL: func @not_quantized
// CHECK-NOT: tfq.quantized_op
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_1, tfq.float_reason = "no calibration data reached its input"}
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_1, tfq.float_reason = "no calibration data reached its output"}
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_matmul_with_sigmoid_fn_2
// CHECK-NOT: tfq.quantized_op
// CHECK: func private @composite_matmul_fn_1
// CHECK: func private @composite_matmul_with_sigmoid_fn_2
func.func @not_quantized(%x: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  // expected-remark@+1 {{stays float: no calibration data reached its input}}
  %y1 = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %y1q = quant.qcast %y1 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.5:0>>
  %y1d = quant.dcast %y1q : tensor<2x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<2x2xf32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.1:0>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<2x2xf32>
  // expected-remark@+1 {{stays float: no calibration data reached its output}}
  %y2 = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %y2a = quant.qcast %y2 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.5:0>>
  %y2b = quant.qcast %y2 : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.25:0>>
  %y2ad = quant.dcast %y2a : tensor<2x2x!quant.uniform<i8:f32, 0.5:0>> to tensor<2x2xf32>
  %y2bd = quant.dcast %y2b : tensor<2x2x!quant.uniform<i8:f32, 0.25:0>> to tensor<2x2xf32>
  // expected-remark@+1 {{stays float: no quantized form for this pattern}}
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
// of the weight (0 here); one with the weight on the left stays float.
// CHECK-LABEL: func @concat_and_batch_matmul
// CHECK: %[[C:.*]] = "tf.ConcatV2"(%{{.*}}, %{{.*}}, %{{.*}}) {N = 2 : i64, T = i8, Tidx = i32} : (tensor<2x2x3xi8>, tensor<2x2x3xi8>, tensor<i32>) -> tensor<2x4x3xi8>
// CHECK-NEXT: %[[CQ:.*]] = quant.scast %[[C]] : tensor<2x4x3xi8> to tensor<2x4x3x!quant.uniform<i8:f32, 1.000000e-01:2>>
// CHECK: "tfq.quantized_op"(%[[CQ]], %{{.*}}) {activation = "NONE", kind = "batch_matmul", op_attrs = {T = f32, adj_x = false, adj_y = true}} : (tensor<2x4x3x!quant.uniform<i8:f32, 1.000000e-01:2>>, tensor<5x3x!quant.uniform<i8<-127:127>:f32:0, {{.*}}>>) -> tensor<2x4x5x!quant.uniform<i8:f32, 2.000000e-01>>
// CHECK: "tf.PartitionedCall"({{.*}}) {_tfl_quant_trait = "fully_quantizable", {{.*}}f = @composite_batch_matmul_fn_2
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
  // expected-remark@+1 {{stays float: no quantized form for this pattern}}
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

// With float outputs, a Pad between a quantized op and a float op does not make the op's
// result int8: only a same-scale op whose result is quantized again runs on int8.
// FLOAT-LABEL: func @pad_then_float
// FLOAT: %[[Y:.*]] = "tfq.quantized_op"({{.*}}) {{.*}} -> tensor<2x3xf32>
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

// -----

// Dynamic range (from the call's spec): the f32 input stays (the lowering quantizes it per batch),
// the weight is int8 (per channel, or per tensor when the spec says so), the bias stays f32 and
// the result is f32; no quant cast is left around the op.
// CHECK-LABEL: func @dynamic_range
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x2xf32>)
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[1.000000e-01, -2.000000e-01, 3.000000e-01]> : tensor<3xf32>
// CHECK-NEXT: %[[WI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -32, 127], [64, 127, -64]]> : tensor<2x3xi8>
// CHECK-NEXT: %[[W:.*]] = quant.scast %[[WI]] : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {0.00787401{{[0-9]*}},0.0157480{{[0-9]*}},0.00196850{{[0-9]*}}}>>
// CHECK-NEXT: %[[Y:.*]] = "tfq.quantized_op"(%[[X]], %[[W]], %[[B]]) {activation = "RELU", kind = "matmul", {{.*}}} : (tensor<2x2xf32>, {{.*}}, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[WT:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}64, -32, 16], [32, 127, -8]]> : tensor<2x3xi8>
// CHECK-NEXT: %[[WTQ:.*]] = quant.scast %[[WT]] : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32, 0.0157480{{[0-9]*}}>>
// CHECK-NEXT: %[[Z:.*]] = "tfq.quantized_op"(%[[X]], %[[WTQ]], %[[B]]) {{.*}} -> tensor<2x3xf32>
// CHECK-NOT: quant.
// CHECK: return %[[Y]], %[[Z]]
// CHECK-NOT: func private @composite
func.func @dynamic_range(%x: tensor<2x2xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %b = "tf.Const"() {value = dense<[0.1, -0.2, 0.3]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %y = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_and_relu_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "dynamic_range", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %z = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_and_relu_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "dynamic_range", activation_bits = 8 : i64, per_channel = false}} : (tensor<2x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %y, %z : tensor<2x3xf32>, tensor<2x3xf32>
}
func.func private @composite_matmul_with_bias_and_relu_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %r = "tf.Relu"(%ba) {T = f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %r : tensor<2x3xf32>
}

// -----

// 16-bit activations: the input is the i16 symmetric qcast value, the weight int8 per channel, the
// bias int32 at 0.001 x w_scale (0.1 / (0.001 / 127) = 12700, ...), the result i16.
// CHECK-LABEL: func @int16_activations
// CHECK: %[[Q:.*]] = quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i16<-32767:32767>:f32, 1.000000e-03>>
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -32, 127], [64, 127, -64]]> : tensor<2x3xi8>
// CHECK-NEXT: %[[W:.*]] = quant.scast %{{.*}} : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {0.00787401{{[0-9]*}},0.0157480{{[0-9]*}},0.00196850{{[0-9]*}}}>>
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<[12700, -12700, 152400]> : tensor<3xi32>
// CHECK-NEXT: %[[B:.*]] = quant.scast %{{.*}} : tensor<3xi32> to tensor<3x!quant.uniform<i32<-2147483647:2147483647>:f32:0, {7.874015{{[0-9]*}}{{[eE]}}-6,1.574803{{[0-9]*}}{{[eE]}}-5,1.968503{{[0-9]*}}{{[eE]}}-6}>>
// CHECK-NEXT: %[[Y:.*]] = "tfq.quantized_op"(%[[Q]], %[[W]], %[[B]]) {{.*}} -> tensor<2x3x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-03>>
// CHECK-NEXT: quant.dcast %[[Y]] : tensor<2x3x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-03>> to tensor<2x3xf32>
func.func @int16_activations(%x: tensor<2x2xf32>) -> tensor<2x3xf32> {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %b = "tf.Const"() {value = dense<[0.1, -0.2, 0.3]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i16<-32767:32767>:f32, 0.001>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i16<-32767:32767>:f32, 0.001>> to tensor<2x2xf32>
  %y = "tf.PartitionedCall"(%d, %w, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "static", activation_bits = 16 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %yq = quant.qcast %y : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i16<-32767:32767>:f32, 0.002>>
  %yd = quant.dcast %yq : tensor<2x3x!quant.uniform<i16<-32767:32767>:f32, 0.002>> to tensor<2x3xf32>
  return %yd : tensor<2x3xf32>
}
func.func private @composite_matmul_with_bias_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %ba : tensor<2x3xf32>
}

// -----

// A QAT weight dcast(qcast(tf.Const)) with a per-channel trained type keeps its trained scales
// (0.01, 0.02, 0.004, also when the spec says per tensor): 0.26 / 0.004 = 65; the bias is at
// 0.02 x the trained scales (0.3 / 8e-5 = 3750). The float weight and its casts are gone.
// CHECK-LABEL: func @qat_weight
// CHECK-NOT: () -> tensor<2x3xf32>
// CHECK: "tf.Const"() {{.*}}value = dense<{{\[\[}}100, -25, 65], [50, 100, -31]]> : tensor<2x3xi8>
// CHECK-NEXT: %[[W:.*]] = quant.scast %{{.*}} : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,4.000000e-03}>>
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<[500, 500, -3750]> : tensor<3xi32>
// CHECK-NEXT: %[[B:.*]] = quant.scast %{{.*}} : tensor<3xi32> to tensor<3x!quant.uniform<i32<-2147483647:2147483647>:f32:0, {2.000000e-04,4.000000e-04,8.000000e-05}>>
// CHECK-NEXT: "tfq.quantized_op"(%{{.*}}, %[[W]], %[[B]])
// CHECK-NEXT: quant.dcast %{{.*}} : tensor<2x3x!quant.uniform<i8:f32, 3.000000e-02:-1>> to tensor<2x3xf32>
// CHECK-NEXT: return
// PT-LABEL: func @qat_weight
// PT: quant.scast %{{.*}} : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,4.000000e-03}>>
func.func @qat_weight(%x: tensor<2x2xf32>) -> tensor<2x3xf32> {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.26], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %wq = quant.qcast %w : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {0.01, 0.02, 0.004}>>
  %wd = quant.dcast %wq : tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {0.01, 0.02, 0.004}>> to tensor<2x3xf32>
  %b = "tf.Const"() {value = dense<[0.1, 0.2, -0.3]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.02:-10>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i8:f32, 0.02:-10>> to tensor<2x2xf32>
  %y = "tf.PartitionedCall"(%d, %wd, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %yq = quant.qcast %y : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 0.03:-1>>
  %yd = quant.dcast %yq : tensor<2x3x!quant.uniform<i8:f32, 0.03:-1>> to tensor<2x3xf32>
  return %yd : tensor<2x3xf32>
}
func.func private @composite_matmul_with_bias_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %ba : tensor<2x3xf32>
}

// -----

// One module, one method per call (from each call's spec), through tfq-quantize-weights then the
// quantize pass: static int8 and int16 become quantized ops (float output: they feed the
// results), dynamic range a quantized op on the f32 input; weight-only keeps the call on a
// dequantized int8 weight, float16 on a cast f16 weight, no_quantize keeps the float weight. The
// composite function stays for the calls left.
// MIXED-LABEL: func @mixed_methods
// MIXED-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x4xf32>)
// MIXED: %[[F:.*]] = "tf.Const"() {{.*}}value = dense<{{.*}}> : tensor<4x4xf32>
// MIXED-NEXT: %[[Q8:.*]] = quant.qcast %[[X]] : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:3>>
// MIXED-NEXT: %[[Q16:.*]] = quant.qcast %[[X]] : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-04>>
// MIXED: %[[S8:.*]] = "tfq.quantized_op"(%[[Q8]], %{{.*}}) {{.*}} : (tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:3>>, tensor<4x4x!quant.uniform<i8<-127:127>:f32:1, {{.*}}>>) -> tensor<2x4xf32>
// MIXED: %[[S16:.*]] = "tfq.quantized_op"(%[[Q16]], %{{.*}}) {{.*}} : (tensor<2x4x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-04>>, tensor<4x4x!quant.uniform<i8<-127:127>:f32, 0.0157480{{[0-9]*}}>>) -> tensor<2x4xf32>
// MIXED: %[[DR:.*]] = "tfq.quantized_op"(%[[X]], %{{.*}}) {{.*}} : (tensor<2x4xf32>, tensor<4x4x!quant.uniform<i8<-127:127>:f32:1, {{.*}}>>) -> tensor<2x4xf32>
// MIXED: %[[WOI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -32, 32, 0], [64, 127, -16, 127], [0, 0, 64, -127], [127, 64, 127, 127]]> : tensor<4x4xi8>
// MIXED-NEXT: %[[WOQ:.*]] = quant.scast %[[WOI]] : tensor<4x4xi8> to tensor<4x4x!quant.uniform<i8<-127:127>:f32:1, {0.00787401{{[0-9]*}},0.0157480{{[0-9]*}},0.00787401{{[0-9]*}},0.00787401{{[0-9]*}}}>>
// MIXED-NEXT: %[[WOD:.*]] = quant.dcast %[[WOQ]] : {{.*}} to tensor<4x4xf32>
// MIXED-NEXT: %[[WO:.*]] = "tf.PartitionedCall"(%[[X]], %[[WOD]]) {{.*}}method = "weight_only"
// MIXED-NEXT: %[[H:.*]] = "tf.Const"() {{.*}} : tensor<4x4xf16>
// MIXED-NEXT: %[[HC:.*]] = "tf.Cast"(%[[H]]) {DstT = f32, SrcT = f16{{.*}}} : (tensor<4x4xf16>) -> tensor<4x4xf32>
// MIXED-NEXT: %[[F16:.*]] = "tf.PartitionedCall"(%[[X]], %[[HC]]) {{.*}}method = "float16"
// MIXED-NEXT: %[[NQ:.*]] = "tf.PartitionedCall"(%[[X]], %[[F]]) {{.*}}method = "no_quantize"
// MIXED-NEXT: return %[[S8]], %[[S16]], %[[DR]], %[[WO]], %[[F16]], %[[NQ]]
// MIXED: func private @composite_matmul_fn_1
func.func @mixed_methods(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25, 0.0], [0.5, 2.0, -0.125, 1.0], [0.0, 0.0, 0.5, -1.0], [1.0, 1.0, 1.0, 1.0]]> : tensor<4x4xf32>, dtype = f32} : () -> tensor<4x4xf32>
  %q8 = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 0.05:3>>
  %d8 = quant.dcast %q8 : tensor<2x4x!quant.uniform<i8:f32, 0.05:3>> to tensor<2x4xf32>
  %q16 = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i16<-32767:32767>:f32, 0.0002>>
  %d16 = quant.dcast %q16 : tensor<2x4x!quant.uniform<i16<-32767:32767>:f32, 0.0002>> to tensor<2x4xf32>
  %s8 = "tf.PartitionedCall"(%d8, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %s8q = quant.qcast %s8 : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 0.1:-2>>
  %s8d = quant.dcast %s8q : tensor<2x4x!quant.uniform<i8:f32, 0.1:-2>> to tensor<2x4xf32>
  %s16 = "tf.PartitionedCall"(%d16, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "static", activation_bits = 16 : i64, per_channel = false}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %s16q = quant.qcast %s16 : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i16<-32767:32767>:f32, 0.0004>>
  %s16d = quant.dcast %s16q : tensor<2x4x!quant.uniform<i16<-32767:32767>:f32, 0.0004>> to tensor<2x4xf32>
  %dr = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "dynamic_range", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %wo = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "weight_only", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %f16 = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "float16", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %nq = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "no_quantize", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  return %s8d, %s16d, %dr, %wo, %f16, %nq : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x4xf32>, %w: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  return %m : tensor<2x4xf32>
}

// -----

// A static call whose result has no quant cast but a float reader (calibration kept no point on
// it): the quantized op returns f32 to that reader.
// FLOAT-LABEL: func @float_reader
// FLOAT: %[[Y:.*]] = "tfq.quantized_op"({{.*}}) {{.*}} -> tensor<2x2xf32>
// FLOAT: %[[R:.*]] = "tf.Relu"(%[[Y]])
// FLOAT: return %[[R]]
func.func @float_reader(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.1:0>>
  %d = quant.dcast %q : tensor<2x2x!quant.uniform<i8:f32, 0.1:0>> to tensor<2x2xf32>
  %y = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_fn_9, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %r = "tf.Relu"(%y) {T = f32} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  return %r : tensor<2x2xf32>
}
func.func private @composite_matmul_fn_9(%a: tensor<2x2xf32>, %w: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}
