// RUN: tfquant-opt %s -split-input-file -tfq-quantize-weights | filecheck %s

// Weight-only per channel: the f32 weight becomes an int8 tf.Const, scast to its per-axis type
// (MatMul: output channels on axis 1, each peak at 127) and dequantized before the float call,
// which stays a call of the float composite function. Per tensor: one scale, 2/127.
// CHECK-LABEL: func @weight_only
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x2xf32>)
// CHECK-NEXT: %[[WI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}127, -32, 127], [64, 127, -64]]> : tensor<2x3xi8>
// CHECK-NEXT: %[[WQ:.*]] = quant.scast %[[WI]] : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:1, {0.00787401{{[0-9]*}},0.0157480{{[0-9]*}},0.00196850{{[0-9]*}}}>>
// CHECK-NEXT: %[[WD:.*]] = quant.dcast %[[WQ]] : {{.*}} to tensor<2x3xf32>
// CHECK-NEXT: %[[Y:.*]] = "tf.PartitionedCall"(%[[X]], %[[WD]]) {{.*}}f = @composite_matmul_fn_1, tfq.spec = {activation_bits = 8 : i64, method = "weight_only", per_channel = true}}
// CHECK-NEXT: %[[TI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}64, -32, 16], [32, 127, -8]]> : tensor<2x3xi8>
// CHECK-NEXT: %[[TQ:.*]] = quant.scast %[[TI]] : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32, 0.0157480{{[0-9]*}}>>
// CHECK-NEXT: %[[TD:.*]] = quant.dcast %[[TQ]] : {{.*}} to tensor<2x3xf32>
// CHECK-NEXT: %[[Z:.*]] = "tf.PartitionedCall"(%[[X]], %[[TD]]) {{.*}}per_channel = false}}
// CHECK-NOT: xf32>}
// CHECK: return %[[Y]], %[[Z]]
// CHECK: func private @composite_matmul_fn_1
func.func @weight_only(%x: tensor<2x2xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %y = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "weight_only", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %z = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "weight_only", activation_bits = 8 : i64, per_channel = false}} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %y, %z : tensor<2x3xf32>, tensor<2x3xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %m : tensor<2x3xf32>
}

// -----

// A weight-only conv is per channel on axis 3; its bias stays f32.
// CHECK-LABEL: func @weight_only_conv
// CHECK: %[[WI:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[\[\[}}127, -32, 127], [64, 127, -64]]]]> : tensor<1x1x2x3xi8>
// CHECK-NEXT: %[[WQ:.*]] = quant.scast %[[WI]] : tensor<1x1x2x3xi8> to tensor<1x1x2x3x!quant.uniform<i8<-127:127>:f32:3, {{.*}}>>
// CHECK-NEXT: %[[WD:.*]] = quant.dcast %[[WQ]]
// CHECK-NEXT: "tf.PartitionedCall"(%{{.*}}, %[[WD]], %[[B:.*]]) {{.*}}method = "weight_only"
func.func @weight_only_conv(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = "tf.Const"() {value = dense<[[[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]]]> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %b = "tf.Const"() {value = dense<[0.1, 0.2, -0.3]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %y = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_conv2d_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "weight_only", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
  return %y : tensor<1x4x4x3xf32>
}
func.func private @composite_conv2d_with_bias_fn_1(%a: tensor<1x4x4x2xf32>, %w: tensor<1x1x2x3xf32>, %b: tensor<3xf32>) -> tensor<1x4x4x3xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  %ba = "tf.BiasAdd"(%c, %b) {T = f32, data_format = "NHWC"} : (tensor<1x4x4x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
  return %ba : tensor<1x4x4x3xf32>
}

// -----

// float16: the weight becomes an f16 tf.Const cast back to f32 before the float call (0.1 is
// stored as its nearest f16, 0.0999755859).
// CHECK-LABEL: func @float16
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x2xf32>)
// CHECK-NEXT: %[[H:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}1.000000e+00, -5.000000e-01, 9.997550e-02], [5.000000e-01, 2.000000e+00, -1.250000e-01]]> : tensor<2x3xf16>
// CHECK-NEXT: %[[C:.*]] = "tf.Cast"(%[[H]]) {DstT = f32, SrcT = f16, Truncate = false} : (tensor<2x3xf16>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[Y:.*]] = "tf.PartitionedCall"(%[[X]], %[[C]]) {{.*}}method = "float16"
// CHECK-NOT: quant.
// CHECK: return %[[Y]]
func.func @float16(%x: tensor<2x2xf32>) -> tensor<2x3xf32> {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.1], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %y = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "float16", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %m : tensor<2x3xf32>
}

// -----

// Other methods, and calls without a spec, are untouched: the float weight stays, shared.
// CHECK-LABEL: func @other_methods
// CHECK-NEXT: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<2x3xf32>
// CHECK-NOT: quant.
// CHECK-NOT: tf.Cast
// CHECK: "tf.PartitionedCall"(%{{.*}}, %[[W]]) {{.*}}method = "static"
// CHECK-NEXT: "tf.PartitionedCall"(%{{.*}}, %[[W]]) {{.*}}method = "dynamic_range"
// CHECK-NEXT: "tf.PartitionedCall"(%{{.*}}, %[[W]]) {{.*}}method = "no_quantize"
// CHECK-NEXT: "tf.PartitionedCall"(%{{.*}}, %[[W]]) {{.*}}f = @composite_matmul_fn_1} :
func.func @other_methods(%x: tensor<2x2xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %w = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25], [0.5, 2.0, -0.125]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %a = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %b = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "dynamic_range", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "no_quantize", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %d = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %a, %b, %c, %d : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %m : tensor<2x3xf32>
}
