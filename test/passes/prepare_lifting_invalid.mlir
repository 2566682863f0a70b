// Malformed ops prepare-lifting reads are errors at the op, not Python exceptions.
// RUN: tfquant-opt %s -split-input-file -tfq-prepare-lifting -verify-diagnostics

func.func @string_epsilon(%x: tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x1xf32>, dtype = f32} : () -> tensor<1x1x2x1xf32>
  %d = "tf.DepthwiseConv2dNative"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x1x1x2xf32>, tensor<1x1x2x1xf32>) -> tensor<1x1x1x2xf32>
  %p = "tf.Const"() {value = dense<1.0> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{'tf.FusedBatchNormV3' op attribute 'epsilon' must be a float, got "0.001"}}
  %y:6 = "tf.FusedBatchNormV3"(%d, %p, %p, %p, %p) {T = f32, U = f32, data_format = "NHWC", epsilon = "0.001", is_training = false} : (tensor<1x1x1x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<1x1x1x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<*xf32>)
  return %y#0 : tensor<1x1x1x2xf32>
}

// -----

func.func @depthwise_filter_of_rank_3(%x: tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x2x1xf32>, dtype = f32} : () -> tensor<1x2x1xf32>
  // expected-error@+1 {{'tf.DepthwiseConv2dNative' op operand #1 must have rank 4, got tensor<1x2x1xf32>}}
  %d = "tf.DepthwiseConv2dNative"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x1x1x2xf32>, tensor<1x2x1xf32>) -> tensor<1x1x1x2xf32>
  %s = "tf.Const"() {value = dense<2.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %m = "tf.Mul"(%d, %s) {T = f32} : (tensor<1x1x1x2xf32>, tensor<f32>) -> tensor<1x1x1x2xf32>
  return %m : tensor<1x1x1x2xf32>
}
