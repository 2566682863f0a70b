// A calibration point whose range is empty: tfq-apply-calibration-stats fails on it.
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %y = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = 1.0 : f32, max = -1.0 : f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %y : tensor<2xf32>
}
