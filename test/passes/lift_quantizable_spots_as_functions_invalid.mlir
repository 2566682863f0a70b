// Malformed ops the lifting pass reads are errors at the op, not Python exceptions.
// RUN: tfquant-opt %s -split-input-file -tfq-lift-quantizable-spots-as-functions -verify-diagnostics

func.func @one_operand_bias_add(%x: tensor<1x4xf32>) -> tensor<1x3xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<4x3xf32>, dtype = f32} : () -> tensor<4x3xf32>
  %y = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x4xf32>, tensor<4x3xf32>) -> tensor<1x3xf32>
  // expected-error@+1 {{'tf.BiasAdd' op expects 2 operands, got 1}}
  %z = "tf.BiasAdd"(%y) {T = f32, data_format = "NHWC"} : (tensor<1x3xf32>) -> tensor<1x3xf32>
  return %z : tensor<1x3xf32>
}

// -----

func.func @gather_without_axis(%i: tensor<3xi32>) -> tensor<3x2xf32> {
  %t = "tf.Const"() {value = dense<1.0> : tensor<4x2xf32>, dtype = f32} : () -> tensor<4x2xf32>
  // expected-error@+1 {{'tf.GatherV2' op expects 3 operands, got 2}}
  %y = "tf.GatherV2"(%t, %i) {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64} : (tensor<4x2xf32>, tensor<3xi32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}
