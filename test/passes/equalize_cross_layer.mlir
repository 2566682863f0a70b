// RUN: tfquant-opt %s -split-input-file -tfq-equalize-cross-layer | filecheck %s

// MatMul + BiasAdd + Relu -> MatMul. A's output channel ranges are r1 = (4, 0.25) (columns of
// %w1), B's input channel ranges r2 = (1, 4) (rows of %w2): s = sqrt(r1 / r2) = (2, 0.25). A's
// columns and bias are divided by s, B's rows multiplied by it: every range becomes
// sqrt(r1 r2) = (2, 1). The new constants drop tfq.variable (they no longer hold the variable's
// value); the old ones, now unused, are gone. The second sweep finds every scale 1 and changes nothing.
// CHECK-LABEL: func @matmul_relu_matmul
// CHECK-SAME: (%[[X:.*]]: tensor<?x2xf32>)
// CHECK-NEXT: %[[W1:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}2.000000e+00, -1.000000e+00], [-5.000000e-01, 5.000000e-01]]> : tensor<2x2xf32>}
// CHECK-NEXT: %[[B1:.*]] = "tf.Const"() {dtype = f32, value = dense<[5.000000e-01, 2.000000e+00]> : tensor<2xf32>}
// CHECK-NEXT: %[[H:.*]] = "tf.PartitionedCall"(%[[X]], %[[W1]], %[[B1]]) {{.*}}f = @composite_matmul_with_bias_and_relu_fn_1
// CHECK-NEXT: %[[W2:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}2.000000e+00, -1.000000e+00, 5.000000e-01], [1.000000e+00, 5.000000e-01, -2.500000e-01]]> : tensor<2x3xf32>}
// CHECK-NEXT: %[[Y:.*]] = "tf.PartitionedCall"(%[[H]], %[[W2]]) {{.*}}f = @composite_matmul_fn_1
// CHECK-NEXT: return %[[Y]]
// CHECK-NOT: tf.Const
func.func @matmul_relu_matmul(%x: tensor<?x2xf32>) -> tensor<?x3xf32> {
  %w1 = "tf.Const"() {value = dense<[[4.0, -0.25], [-1.0, 0.125]]> : tensor<2x2xf32>, dtype = f32, tfq.variable = "dense/kernel"} : () -> tensor<2x2xf32>
  %b1 = "tf.Const"() {value = dense<[1.0, 0.5]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %w2 = "tf.Const"() {value = dense<[[1.0, -0.5, 0.25], [4.0, 2.0, -1.0]]> : tensor<2x3xf32>, dtype = f32} : () -> tensor<2x3xf32>
  %h = "tf.PartitionedCall"(%x, %w1, %b1) {f = @composite_matmul_with_bias_and_relu_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  %y = "tf.PartitionedCall"(%h, %w2) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}
func.func private @composite_matmul_with_bias_and_relu_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>, %b: tensor<2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<?x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  %r = "tf.Relu"(%ba) {T = f32} : (tensor<?x2xf32>) -> tensor<?x2xf32>
  return %r : tensor<?x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x3xf32>) -> tensor<?x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x3xf32>) -> tensor<?x3xf32>
  return %m : tensor<?x3xf32>
}

// -----

// Depthwise (multiplier 1) -> 1x1 Conv2D. The depthwise filter's channel c is [:, :, c, 0], with
// ranges r1 = (4, 0.5); the conv's input channel c is [:, :, c, :], with ranges r2 = (1, 8):
// s = (2, 0.25), and every range becomes (2, 2).
// CHECK-LABEL: func @depthwise_conv
// CHECK-NEXT: %[[DW:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[\[\[}}1.000000e+00], [2.000000e+00]], {{\[\[}}-2.000000e+00], [1.000000e+00]]]]> : tensor<1x2x2x1xf32>}
// CHECK-NEXT: %[[H:.*]] = "tf.PartitionedCall"(%{{.*}}, %[[DW]]) {{.*}}f = @composite_depthwise_conv2d_fn_1
// CHECK-NEXT: %[[K:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[\[\[}}2.000000e+00, 1.000000e+00, -5.000000e-01], [5.000000e-01, -2.000000e+00, 2.500000e-01]]]]> : tensor<1x1x2x3xf32>}
// CHECK-NEXT: %[[Y:.*]] = "tf.PartitionedCall"(%[[H]], %[[K]]) {{.*}}f = @composite_conv2d_fn_1
// CHECK-NEXT: return %[[Y]]
func.func @depthwise_conv(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %dw = "tf.Const"() {value = dense<[[[[2.0], [0.5]], [[-4.0], [0.25]]]]> : tensor<1x2x2x1xf32>, dtype = f32} : () -> tensor<1x2x2x1xf32>
  %k = "tf.Const"() {value = dense<[[[[1.0, 0.5, -0.25], [2.0, -8.0, 1.0]]]]> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %h = "tf.PartitionedCall"(%x, %dw) {f = @composite_depthwise_conv2d_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x4x4x2xf32>, tensor<1x2x2x1xf32>) -> tensor<1x4x4x2xf32>
  %y = "tf.PartitionedCall"(%h, %k) {f = @composite_conv2d_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  return %y : tensor<1x4x4x3xf32>
}
func.func private @composite_depthwise_conv2d_fn_1(%a: tensor<1x4x4x2xf32>, %w: tensor<1x2x2x1xf32>) -> tensor<1x4x4x2xf32> {
  %c = "tf.DepthwiseConv2dNative"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x4x4x2xf32>, tensor<1x2x2x1xf32>) -> tensor<1x4x4x2xf32>
  return %c : tensor<1x4x4x2xf32>
}
func.func private @composite_conv2d_fn_1(%a: tensor<1x4x4x2xf32>, %w: tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  return %c : tensor<1x4x4x3xf32>
}

// -----

// A weight constant shared with another call: A and B get new constants (B's filter is
// [out, in] with transpose_b, so its input channels are its columns); the other call keeps the
// original %w1, unchanged.
// CHECK-LABEL: func @shared_weight
// CHECK-SAME: (%[[X:.*]]: tensor<?x2xf32>)
// CHECK-NEXT: %[[W1:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}4.000000e+00, -2.500000e-01], [-1.000000e+00, 1.250000e-01]]> : tensor<2x2xf32>}
// CHECK-NEXT: %[[W1E:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}2.000000e+00, -1.000000e+00], [-5.000000e-01, 5.000000e-01]]> : tensor<2x2xf32>}
// CHECK-NEXT: %[[H:.*]] = "tf.PartitionedCall"(%[[X]], %[[W1E]]) {{.*}}f = @composite_matmul_and_relu_fn_1
// CHECK-NEXT: %[[W2:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}2.000000e+00, 1.000000e+00], [-1.000000e+00, 5.000000e-01]]> : tensor<2x2xf32>}
// CHECK-NEXT: %[[Y:.*]] = "tf.PartitionedCall"(%[[H]], %[[W2]]) {{.*}}f = @composite_matmul_fn_2
// CHECK-NEXT: %[[Z:.*]] = "tf.PartitionedCall"(%[[X]], %[[W1]]) {{.*}}f = @composite_matmul_and_relu_fn_1
// CHECK-NEXT: return %[[Y]], %[[Z]]
func.func @shared_weight(%x: tensor<?x2xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>) {
  %w1 = "tf.Const"() {value = dense<[[4.0, -0.25], [-1.0, 0.125]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %w2 = "tf.Const"() {value = dense<[[1.0, 4.0], [-0.5, 2.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %h = "tf.PartitionedCall"(%x, %w1) {f = @composite_matmul_and_relu_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %y = "tf.PartitionedCall"(%h, %w2) {f = @composite_matmul_fn_2, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %z = "tf.PartitionedCall"(%x, %w1) {f = @composite_matmul_and_relu_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %y, %z : tensor<?x2xf32>, tensor<?x2xf32>
}
func.func private @composite_matmul_and_relu_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %r = "tf.Relu"(%m) {T = f32} : (tensor<?x2xf32>) -> tensor<?x2xf32>
  return %r : tensor<?x2xf32>
}
func.func private @composite_matmul_fn_2(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = true} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %m : tensor<?x2xf32>
}

// -----

// Left alone: a Relu6 unit (its clip at 6 does not scale), a unit whose result is also returned,
// and a grouped conv reading a conv's output (its filter has 2 input channels for 4 channels).
// CHECK-LABEL: func @not_equalized
// CHECK-NEXT: %[[W1:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}4.000000e+00, -2.500000e-01], [-1.000000e+00, 1.250000e-01]]>
// CHECK-NEXT: %[[W2:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}1.000000e+00, -5.000000e-01], [4.000000e+00, 2.000000e+00]]>
// CHECK-NEXT: %[[K1:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[\[\[}}4.000000e+00, 2.000000e+00, 1.000000e+00, 2.500000e-01]]]]>
// CHECK-NEXT: %[[K2:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[\[\[}}1.000000e+00, 2.000000e+00, 4.000000e+00, 8.000000e+00]]]]>
// CHECK-NEXT: %[[H6:.*]] = "tf.PartitionedCall"(%{{.*}}, %[[W1]]) {{.*}}f = @composite_matmul_and_relu6_fn_1
// CHECK-NEXT: "tf.PartitionedCall"(%[[H6]], %[[W2]])
// CHECK-NEXT: %[[H:.*]] = "tf.PartitionedCall"(%{{.*}}, %[[W1]]) {{.*}}f = @composite_matmul_fn_1
// CHECK-NEXT: "tf.PartitionedCall"(%[[H]], %[[W2]])
// CHECK-NEXT: %[[C:.*]] = "tf.PartitionedCall"(%{{.*}}, %[[K1]]) {{.*}}f = @composite_conv2d_fn_1
// CHECK-NEXT: "tf.PartitionedCall"(%[[C]], %[[K2]]) {{.*}}f = @composite_conv2d_fn_2
// CHECK-NOT: tf.Const
func.func @not_equalized(%x: tensor<?x2xf32>, %img: tensor<1x4x4x1xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<1x4x4x4xf32>) {
  %w1 = "tf.Const"() {value = dense<[[4.0, -0.25], [-1.0, 0.125]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %w2 = "tf.Const"() {value = dense<[[1.0, -0.5], [4.0, 2.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %k1 = "tf.Const"() {value = dense<[[[[4.0, 2.0, 1.0, 0.25]]]]> : tensor<1x1x1x4xf32>, dtype = f32} : () -> tensor<1x1x1x4xf32>
  %k2 = "tf.Const"() {value = dense<[[[[1.0, 2.0, 4.0, 8.0]]]]> : tensor<1x1x1x4xf32>, dtype = f32} : () -> tensor<1x1x1x4xf32>
  %h6 = "tf.PartitionedCall"(%x, %w1) {f = @composite_matmul_and_relu6_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %y6 = "tf.PartitionedCall"(%h6, %w2) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %h = "tf.PartitionedCall"(%x, %w1) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %y = "tf.PartitionedCall"(%h, %w2) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %c = "tf.PartitionedCall"(%img, %k1) {f = @composite_conv2d_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x4x4x1xf32>, tensor<1x1x1x4xf32>) -> tensor<1x4x4x4xf32>
  %g = "tf.PartitionedCall"(%c, %k2) {f = @composite_conv2d_fn_2, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x4x4x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x4x4x4xf32>
  return %y6, %y, %h, %g : tensor<?x2xf32>, tensor<?x2xf32>, tensor<?x2xf32>, tensor<1x4x4x4xf32>
}
func.func private @composite_matmul_and_relu6_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %r = "tf.Relu6"(%m) {T = f32} : (tensor<?x2xf32>) -> tensor<?x2xf32>
  return %r : tensor<?x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %m : tensor<?x2xf32>
}
func.func private @composite_conv2d_fn_1(%a: tensor<1x4x4x1xf32>, %w: tensor<1x1x1x4xf32>) -> tensor<1x4x4x4xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x1xf32>, tensor<1x1x1x4xf32>) -> tensor<1x4x4x4xf32>
  return %c : tensor<1x4x4x4xf32>
}
func.func private @composite_conv2d_fn_2(%a: tensor<1x4x4x4xf32>, %w: tensor<1x1x1x4xf32>) -> tensor<1x4x4x4xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x4x4x4xf32>
  return %c : tensor<1x4x4x4xf32>
}
