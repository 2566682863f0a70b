// The last cases are errors, so the output check runs under `not`; -verify-diagnostics checks the errors.
// RUN: not tfquant-opt %s -split-input-file -tfq-apply-calibration-stats 2>/dev/null | filecheck %s
// RUN: tfquant-opt %s -split-input-file -tfq-apply-calibration-stats -verify-diagnostics

// Calibrated points around a lifted call become qcast/dcast pairs: [-1, 1] -> scale 2/255, zero
// point 0 (not printed); [0, 6] -> scale 6/255, zero point -128; [-2, -1] is widened to [-2, 0]
// -> scale 2/255, zero point 127. Unranked and dynamic shapes keep their shape.
// CHECK-LABEL: func @calibrated
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x2xf32>, %[[Y:[a-z0-9_]+]]: tensor<?x4xf32>, %[[Z:[a-z0-9_]+]]: tensor<*xf32>)
// CHECK: %[[Q0:.*]] = quant.qcast %[[X]] : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.0078431372549019607>>
// CHECK-NEXT: %[[D0:.*]] = quant.dcast %[[Q0]] : tensor<1x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<1x2xf32>
// CHECK: %[[C:.*]] = "tf.PartitionedCall"(%[[D0]], %{{.*}})
// CHECK-NEXT: %[[Q1:.*]] = quant.qcast %[[C]] : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.023529411764705882:-128>>
// CHECK-NEXT: %[[D1:.*]] = quant.dcast %[[Q1]] : tensor<1x2x!quant.uniform<i8:f32, 0.023529411764705882:-128>> to tensor<1x2xf32>
// CHECK-NEXT: %[[Q2:.*]] = quant.qcast %[[Y]] : tensor<?x4xf32> to tensor<?x4x!quant.uniform<i8:f32, 0.0078431372549019607:127>>
// CHECK-NEXT: %[[D2:.*]] = quant.dcast %[[Q2]] : {{.*}} to tensor<?x4xf32>
// CHECK-NEXT: %[[Q3:.*]] = quant.qcast %[[Z]] : tensor<*xf32> to tensor<*x!quant.uniform<i8:f32, 0.0078431372549019607:127>>
// CHECK-NEXT: %[[D3:.*]] = quant.dcast %[[Q3]] : {{.*}} to tensor<*xf32>
// CHECK-NOT: tfq.calibration_point
// CHECK: return %[[D1]], %[[D2]], %[[D3]]
func.func @calibrated(%x: tensor<1x2xf32>, %y: tensor<?x4xf32>, %z: tensor<*xf32>) -> (tensor<1x2xf32>, tensor<?x4xf32>, tensor<*xf32>) {
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = -1.0 : f32, max = 1.0 : f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %1 = "tf.PartitionedCall"(%0, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %2 = "tfq.calibration_point"(%1) {id = 1 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %3 = "tfq.calibration_point"(%y) {id = 2 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = -2.0 : f32, max = -1.0 : f32} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  %4 = "tfq.calibration_point"(%z) {id = 3 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = -2.0 : f32, max = -1.0 : f32} : (tensor<*xf32>) -> tensor<*xf32>
  return %2, %3, %4 : tensor<1x2xf32>, tensor<?x4xf32>, tensor<*xf32>
}
func.func private @composite_matmul_fn_1(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// A point that calibration never reached (no min/max) is removed: the call reads its input
// directly and stays float; a calibrated neighbour still gets its pair.
// CHECK-LABEL: func @uncalibrated
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x2xf32>)
// CHECK: %[[C:.*]] = "tf.PartitionedCall"(%[[X]], %{{.*}})
// CHECK-NEXT: %[[Q:.*]] = quant.qcast %[[C]] : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.0039215686274509803:-128>>
// CHECK-NEXT: %[[D:.*]] = quant.dcast %[[Q]]
// CHECK-NOT: tfq.calibration_point
// CHECK: return %[[D]]
func.func @uncalibrated(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX"} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %1 = "tf.PartitionedCall"(%0, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %2 = "tfq.calibration_point"(%1) {id = 1 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = 0.5 : f32, max = 1.0 : f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  return %2 : tensor<1x2xf32>
}
func.func private @composite_matmul_fn_1(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// activation_bits = 16 gives the int16 symmetric type: zero point 0, scale max(|min|, |max|) / 32767
// ([-1, 3] -> 3/32767, [-0.5, 0.25] -> 0.5/32767), storage narrowed to [-32767, 32767]; an explicit
// activation_bits = 8 is the default int8 asymmetric type.
// CHECK-LABEL: func @sixteen_bits
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x2xf32>, %[[Y:[a-z0-9_]+]]: tensor<3xf32>, %[[Z:[a-z0-9_]+]]: tensor<3xf32>)
// CHECK: %[[Q0:.*]] = quant.qcast %[[X]] : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i16<-32767:32767>:f32, 9.15555284279915{{[0-9]*}}E-5>>
// CHECK-NEXT: %[[D0:.*]] = quant.dcast %[[Q0]] : tensor<1x2x!quant.uniform<i16<-32767:32767>:f32, 9.15555284279915{{[0-9]*}}E-5>> to tensor<1x2xf32>
// CHECK-NEXT: %[[Q1:.*]] = quant.qcast %[[Y]] : tensor<3xf32> to tensor<3x!quant.uniform<i16<-32767:32767>:f32, 1.52592547379985{{[0-9]*}}E-5>>
// CHECK-NEXT: %[[D1:.*]] = quant.dcast %[[Q1]]
// CHECK-NEXT: %[[Q2:.*]] = quant.qcast %[[Z]] : tensor<3xf32> to tensor<3x!quant.uniform<i8:f32, 0.0029411764705882353:42>>
// CHECK-NEXT: %[[D2:.*]] = quant.dcast %[[Q2]]
// CHECK-NOT: tfq.calibration_point
// CHECK: return %[[D0]], %[[D1]], %[[D2]]
func.func @sixteen_bits(%x: tensor<1x2xf32>, %y: tensor<3xf32>, %z: tensor<3xf32>) -> (tensor<1x2xf32>, tensor<3xf32>, tensor<3xf32>) {
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", activation_bits = 16 : i64, min = -1.0 : f32, max = 3.0 : f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %1 = "tfq.calibration_point"(%y) {id = 1 : i64, method = "CALIBRATION_METHOD_MIN_MAX", activation_bits = 16 : i64, min = -0.5 : f32, max = 0.25 : f32} : (tensor<3xf32>) -> tensor<3xf32>
  %2 = "tfq.calibration_point"(%z) {id = 2 : i64, method = "CALIBRATION_METHOD_MIN_MAX", activation_bits = 8 : i64, min = -0.5 : f32, max = 0.25 : f32} : (tensor<3xf32>) -> tensor<3xf32>
  return %0, %1, %2 : tensor<1x2xf32>, tensor<3xf32>, tensor<3xf32>
}

// -----

// Negative: activation bits other than 8 or 16 are refused at the point.
func.func @four_bits(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+1 {{'tfq.calibration_point' op activation_bits must be 8 or 16, got 4}}
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", activation_bits = 4 : i64, min = -1.0 : f32, max = 1.0 : f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// Negative: a range with min > max is refused at the point's location.
func.func @inverted(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+1 {{calibration point has an invalid range [1.0, -1.0]}}
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = 1.0 : f32, max = -1.0 : f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// Negative: a range that is not a float is refused at the point, not read as one.
func.func @string_range(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+1 {{'tfq.calibration_point' op attribute 'min' must be a float, got "low"}}
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = "low", max = 1.0 : f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

// Negative: a calibration point measures a float tensor; an integer one has no range to quantize.
func.func @integer_point(%x: tensor<2xi32>) -> tensor<2xi32> {
  // expected-error@+1 {{'tfq.calibration_point' op operand #0 must be a float tensor, got tensor<2xi32>}}
  %0 = "tfq.calibration_point"(%x) {id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX", min = 0.0 : f32, max = 1.0 : f32} : (tensor<2xi32>) -> tensor<2xi32>
  return %0 : tensor<2xi32>
}
