// A bias shift that does not fit the call is an error at the call.
// RUN: tfquant-opt %s -split-input-file -tfq-correct-bias -verify-diagnostics

// Three values for a bias of two.
func.func @wrong_length(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %b = "tf.Const"() {value = dense<0.5> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{tfq.bias_shift has 3 values but the bias has 2}}
  %y = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.bias_shift = dense<[0.1, 0.2, 0.3]> : tensor<3xf32>} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}
func.func private @composite_matmul_with_bias_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>, %b: tensor<2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<?x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %ba : tensor<?x2xf32>
}

// -----

// A shift that is not a vector of floats.
func.func @not_floats(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %b = "tf.Const"() {value = dense<0.5> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{tfq.bias_shift must be a rank-1 dense float tensor, got dense<[1, 2]> : tensor<2xi32>}}
  %y = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.bias_shift = dense<[1, 2]> : tensor<2xi32>} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}
func.func private @composite_matmul_with_bias_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>, %b: tensor<2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<?x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %ba : tensor<?x2xf32>
}
