func.func @serving_default(%x: tensor<2x4xf32>) -> tensor<2x3xf32> {
  %w = "tf.Const"() {value = dense<0.5> : tensor<4x3xf32>, dtype = f32} : () -> tensor<4x3xf32>
  %y = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32> loc("model/dense/MatMul")
  return %y : tensor<2x3xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x4xf32>, %w: tensor<4x3xf32>) -> tensor<2x3xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  return %m : tensor<2x3xf32>
}
