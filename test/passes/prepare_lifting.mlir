// RUN: tfquant-opt %s -split-input-file -tfq-prepare-lifting | filecheck %s

// Identity chains are removed.
// CHECK-LABEL: func @identity_chain
// CHECK-SAME: (%[[X:.*]]: tensor<2xf32>)
// CHECK-NOT: tf.Identity
// CHECK: %[[R:.*]] = "tf.Relu"(%[[X]])
// CHECK: return %[[R]]
func.func @identity_chain(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tf.Identity"(%x) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
  %1 = "tf.Identity"(%0) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
  %2 = "tf.Relu"(%1) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
  %3 = "tf.Identity"(%2) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %3 : tensor<2xf32>
}

// -----

// A batch norm written as Mul and AddV2 on constants folds into the conv weight and a BiasAdd;
// the Rsqrt on constants is evaluated by TensorFlow.
// CHECK-LABEL: func @conv_mul_add
// CHECK-NOT: tf.Rsqrt
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[\[\[}}2.000000e+00, 1.000000e+00, 0.666666686], [2.000000e+00, 1.000000e+00, 0.666666686]]]]>
// CHECK: %[[C:.*]] = "tf.Conv2D"(%{{.*}}, %[[W]])
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]>
// CHECK-NOT: tf.Mul
// CHECK: %[[R:.*]] = "tf.BiasAdd"(%[[C]], %[[B]]) {{.*}}data_format = "NHWC"
// CHECK-NOT: tf.AddV2
// CHECK: return %[[R]]
func.func @conv_mul_add(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %v = "tf.Const"() {value = dense<[1.0, 4.0, 9.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %two = "tf.Const"() {value = dense<2.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %r = "tf.Rsqrt"(%v) {T = f32} : (tensor<3xf32>) -> tensor<3xf32>
  %s = "tf.Mul"(%r, %two) {T = f32} : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %c = "tf.Conv2D"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  %m = "tf.Mul"(%c, %s) {T = f32} : (tensor<1x4x4x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
  %b = "tf.Const"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %a = "tf.AddV2"(%m, %b) {T = f32} : (tensor<1x4x4x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
  return %a : tensor<1x4x4x3xf32>
}

// -----

// Mul after BiasAdd scales both the weight and the bias; a constant on the left works too.
// CHECK-LABEL: func @matmul_bias_mul
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}3.000000e+00, 6.000000e+00]]>
// CHECK: %[[M:.*]] = "tf.MatMul"(%{{.*}}, %[[W]])
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[3.000000e+00, 1.200000e+01]>
// CHECK: %[[R:.*]] = "tf.BiasAdd"(%[[M]], %[[B]])
// CHECK-NOT: tf.Mul
// CHECK: return %[[R]]
func.func @matmul_bias_mul(%x: tensor<4x1xf32>) -> tensor<4x2xf32> {
  %w = "tf.Const"() {value = dense<[[1.0, 2.0]]> : tensor<1x2xf32>, dtype = f32} : () -> tensor<1x2xf32>
  %b = "tf.Const"() {value = dense<[1.0, 4.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %s = "tf.Const"() {value = dense<3.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %m = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<4x1xf32>, tensor<1x2xf32>) -> tensor<4x2xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %r = "tf.Mul"(%s, %ba) {T = f32} : (tensor<f32>, tensor<4x2xf32>) -> tensor<4x2xf32>
  return %r : tensor<4x2xf32>
}

// -----

// FusedBatchNormV3 in inference mode folds into a depthwise conv: s = scale / sqrt(var + eps).
// CHECK-LABEL: func @depthwise_fused_bn
// CHECK-NOT: tf.FusedBatchNormV3
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[\[\[}}5.000000e-01], [2.500000e-01]]]]>
// CHECK: %[[D:.*]] = "tf.DepthwiseConv2dNative"(%{{.*}}, %[[W]])
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-01, 0.000000e+00]>
// CHECK: "tf.BiasAdd"(%[[D]], %[[B]])
func.func @depthwise_fused_bn(%x: tensor<1x3x3x2xf32>) -> tensor<1x3x3x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x1xf32>, dtype = f32} : () -> tensor<1x1x2x1xf32>
  %d = "tf.DepthwiseConv2dNative"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x3x3x2xf32>, tensor<1x1x2x1xf32>) -> tensor<1x3x3x2xf32>
  %scale = "tf.Const"() {value = dense<[1.0, 1.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %offset = "tf.Const"() {value = dense<[1.0, 1.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %mean = "tf.Const"() {value = dense<[1.0, 4.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %var = "tf.Const"() {value = dense<[4.0, 16.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %y:6 = "tf.FusedBatchNormV3"(%d, %scale, %offset, %mean, %var) {T = f32, U = f32, data_format = "NHWC", epsilon = 0.0 : f32, exponential_avg_factor = 1.0 : f32, is_training = false} : (tensor<1x3x3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<1x3x3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<*xf32>)
  return %y#0 : tensor<1x3x3x2xf32>
}

// -----

// Negative: a conv whose result has a second user keeps its weight, and an add of a non
// per-channel constant stays an AddV2.
// CHECK-LABEL: func @not_folded
// CHECK: "tf.Mul"
// CHECK: "tf.AddV2"
func.func @not_folded(%x: tensor<1x2x2x1xf32>) -> (tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x1x1xf32>, dtype = f32} : () -> tensor<1x1x1x1xf32>
  %c = "tf.Conv2D"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x2x2x1xf32>, tensor<1x1x1x1xf32>) -> tensor<1x2x2x1xf32>
  %s = "tf.Const"() {value = dense<2.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %m = "tf.Mul"(%c, %s) {T = f32} : (tensor<1x2x2x1xf32>, tensor<f32>) -> tensor<1x2x2x1xf32>
  %p = "tf.Const"() {value = dense<[[[[1.0], [2.0]], [[3.0], [4.0]]]]> : tensor<1x2x2x1xf32>, dtype = f32} : () -> tensor<1x2x2x1xf32>
  %a = "tf.AddV2"(%x, %p) {T = f32} : (tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>) -> tensor<1x2x2x1xf32>
  return %m, %c : tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>
}

// -----

// Negative: a batch norm in training mode is left alone.
// CHECK-LABEL: func @training_bn
// CHECK: "tf.FusedBatchNormV3"
func.func @training_bn(%x: tensor<1x1x1x1xf32>) -> tensor<1x1x1x1xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x1x1xf32>, dtype = f32} : () -> tensor<1x1x1x1xf32>
  %c = "tf.Conv2D"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x1x1x1xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x1x1xf32>
  %p = "tf.Const"() {value = dense<1.0> : tensor<1xf32>, dtype = f32} : () -> tensor<1xf32>
  %y:6 = "tf.FusedBatchNormV3"(%c, %p, %p, %p, %p) {T = f32, U = f32, data_format = "NHWC", epsilon = 0.001 : f32, exponential_avg_factor = 1.0 : f32, is_training = true} : (tensor<1x1x1x1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> (tensor<1x1x1x1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<*xf32>)
  return %y#0 : tensor<1x1x1x1xf32>
}

// -----

// Stateful ops are not folded even when every operand is a constant: a random op's value is not
// a function of its operands. The Shape of a constant, stateless, is still folded.
// CHECK-LABEL: func @stateful_random
// CHECK: %[[SHAPE:.*]] = "tf.Const"() {{.*}}value = dense<2> : tensor<1xi32>
// CHECK: "tf.RandomUniformInt"(%[[SHAPE]], %{{.*}}, %{{.*}})
// CHECK: "tf.TruncatedNormal"(%[[SHAPE]])
// CHECK: "tf.Multinomial"(%{{.*}}, %{{.*}})
// CHECK-NOT: "tf.Shape"
// CHECK: return
func.func @stateful_random() -> (tensor<2xi32>, tensor<2xf32>, tensor<1x3xi64>, tensor<1xi32>) {
  %shape = "tf.Const"() {value = dense<2> : tensor<1xi32>, dtype = i32} : () -> tensor<1xi32>
  %low = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %high = "tf.Const"() {value = dense<10> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %ints = "tf.RandomUniformInt"(%shape, %low, %high) {T = i32, Tout = i32, seed = 0 : i64, seed2 = 0 : i64} : (tensor<1xi32>, tensor<i32>, tensor<i32>) -> tensor<2xi32>
  %normal = "tf.TruncatedNormal"(%shape) {T = i32, dtype = f32, seed = 0 : i64, seed2 = 0 : i64} : (tensor<1xi32>) -> tensor<2xf32>
  %logits = "tf.Const"() {value = dense<[[0.0, 1.0]]> : tensor<1x2xf32>, dtype = f32} : () -> tensor<1x2xf32>
  %count = "tf.Const"() {value = dense<3> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %samples = "tf.Multinomial"(%logits, %count) {T = f32, output_dtype = i64, seed = 0 : i64, seed2 = 0 : i64} : (tensor<1x2xf32>, tensor<i32>) -> tensor<1x3xi64>
  %folded = "tf.Shape"(%shape) {T = i32, out_type = i32} : (tensor<1xi32>) -> tensor<1xi32>
  return %ints, %normal, %samples, %folded : tensor<2xi32>, tensor<2xf32>, tensor<1x3xi64>, tensor<1xi32>
}

// -----

// MatMul's transpose attributes are false when absent, as in TensorFlow.
// CHECK-LABEL: func @matmul_default_attributes
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}3.000000e+00, 6.000000e+00]]>
// CHECK: %[[M:.*]] = "tf.MatMul"(%{{.*}}, %[[W]]) {T = f32}
// CHECK-NOT: tf.Mul
// CHECK: return %[[M]]
func.func @matmul_default_attributes(%x: tensor<4x1xf32>) -> tensor<4x2xf32> {
  %w = "tf.Const"() {value = dense<[[1.0, 2.0]]> : tensor<1x2xf32>, dtype = f32} : () -> tensor<1x2xf32>
  %s = "tf.Const"() {value = dense<3.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %m = "tf.MatMul"(%x, %w) {T = f32} : (tensor<4x1xf32>, tensor<1x2xf32>) -> tensor<4x2xf32>
  %r = "tf.Mul"(%m, %s) {T = f32} : (tensor<4x2xf32>, tensor<f32>) -> tensor<4x2xf32>
  return %r : tensor<4x2xf32>
}
