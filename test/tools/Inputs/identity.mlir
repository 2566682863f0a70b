func.func @identity(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tf.Identity"(%x) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
