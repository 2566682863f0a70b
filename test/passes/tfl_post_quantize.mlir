// RUN: tfquant-opt %s -split-input-file -tfq-tfl-post-quantize | filecheck %s
// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-tfl-post-quantize{integer-only=true})' -verify-diagnostics

!i8a = !quant.uniform<i8:f32, 0.01:-43>
!i8b = !quant.uniform<i8:f32, 0.02:-128>
!i8c = !quant.uniform<i8:f32, 0.04:-128>

// The calibration pair on the input becomes a tfl.quantize; the pair left on the conv's result
// folds away (the reshape reads the conv directly); the dcast at the output becomes a
// tfl.dequantize; the float constants nothing reads any more are erased.
// CHECK-LABEL: func @chain
// CHECK: %[[Q:.*]] = "tfl.quantize"(%arg0) : (tensor<1x4xf32>) -> tensor<1x4x!quant.uniform<i8:f32, 1.000000e-02:-43>>
// CHECK-NOT: tfl.pseudo_const"() {value = dense<5.000000e-01>
// CHECK: %[[C:.*]] = "tfl.fully_connected"(%[[Q]]
// CHECK: %[[R:.*]] = "tfl.reshape"(%[[C]]
// CHECK: %[[D:.*]] = "tfl.dequantize"(%[[R]]) : (tensor<2x2x!quant.uniform<i8:f32, 2.000000e-02:-128>>) -> tensor<2x2xf32>
// CHECK: return %[[D]]
func.func @chain(%x: tensor<1x4xf32>) -> tensor<2x2xf32> {
  %q0 = quant.qcast %x : tensor<1x4xf32> to tensor<1x4x!i8a>
  %x0 = quant.dcast %q0 : tensor<1x4x!i8a> to tensor<1x4xf32>
  %w_float = "tfl.pseudo_const"() {value = dense<0.5> : tensor<4x4xf32>} : () -> tensor<4x4xf32>
  %w = "tfl.pseudo_qconst"() {qtype = tensor<4x4x!quant.uniform<i8<-127:127>:f32, 0.004>>, value = dense<127> : tensor<4x4xi8>} : () -> tensor<4x4x!quant.uniform<i8<-127:127>:f32, 0.004>>
  %b = "tfl.no_value"() {value} : () -> none
  %shape = "tfl.pseudo_const"() {value = dense<[2, 2]> : tensor<2xi32>} : () -> tensor<2xi32>
  %0 = "tfl.fully_connected"(%q0, %w, %b) {fusedActivationFunction = 0 : i32} : (tensor<1x4x!i8a>, tensor<4x4x!quant.uniform<i8<-127:127>:f32, 0.004>>, none) -> tensor<1x4x!i8b>
  %d0 = quant.dcast %0 : tensor<1x4x!i8b> to tensor<1x4xf32>
  %q1 = quant.qcast %d0 : tensor<1x4xf32> to tensor<1x4x!i8b>
  %x1 = quant.dcast %q1 : tensor<1x4x!i8b> to tensor<1x4xf32>
  %1 = "tfl.reshape"(%0, %shape) : (tensor<1x4x!i8b>, tensor<2xi32>) -> tensor<2x2x!i8b>
  %d1 = quant.dcast %1 : tensor<2x2x!i8b> to tensor<2x2xf32>
  %q2 = quant.qcast %d1 : tensor<2x2xf32> to tensor<2x2x!i8b>
  %x2 = quant.dcast %q2 : tensor<2x2x!i8b> to tensor<2x2xf32>
  return %x2 : tensor<2x2xf32>
}

// -----

!i8a = !quant.uniform<i8:f32, 0.01:-43>
!i8b = !quant.uniform<i8:f32, 0.02:-128>
!i8c = !quant.uniform<i8:f32, 0.04:-128>

// A requantize of an own-range result nothing else reads: the op writes the new type itself.
// A requantize of a function argument stays.
// CHECK-LABEL: func @fold_requantize
// CHECK: %[[A:.*]] = "tfl.add"{{.*}} -> tensor<4x!quant.uniform<i8:f32, 4.000000e-02:-128>>
// CHECK-NOT: "tfl.quantize"(%[[A]])
// CHECK: "tfl.concatenation"(%[[A]]
func.func @fold_requantize(%x: tensor<4x!i8a>, %y: tensor<4x!i8c>) -> tensor<8x!i8c> {
  %0 = "tfl.add"(%x, %x) {fusedActivationFunction = 0 : i32} : (tensor<4x!i8a>, tensor<4x!i8a>) -> tensor<4x!i8b>
  %1 = "tfl.quantize"(%0) : (tensor<4x!i8b>) -> tensor<4x!i8c>
  %2 = "tfl.concatenation"(%1, %y) {axis = 0 : i32, fusedActivationFunction = 0 : i32} : (tensor<4x!i8c>, tensor<4x!i8c>) -> tensor<8x!i8c>
  return %2 : tensor<8x!i8c>
}

// -----

!i8a = !quant.uniform<i8:f32, 0.01:-43>

// Integer-only mode: an op left float is an error at the op, with the reason it stayed float.
func.func @float_op_left(%x: tensor<4xf32>) -> tensor<4xf32> {
  %q0 = quant.qcast %x : tensor<4xf32> to tensor<4x!i8a>
  %x0 = quant.dcast %q0 : tensor<4x!i8a> to tensor<4xf32>
  // expected-error @+1 {{LOG cannot be quantized (tfquant has no quantized form of LOG), and integer-only mode leaves no op float}}
  %0 = "tfl.log"(%x0) {tfq.float_reason = "tfquant has no quantized form of LOG"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

!i8a = !quant.uniform<i8:f32, 0.01:-43>

// SHAPE reads the quantized value as it is: no dequantize for it.
// CHECK-LABEL: func @shape_reader
// CHECK: %[[R:.*]] = "tfl.relu"
// CHECK-NEXT: "tfl.shape"(%[[R]]) {{.*}} : (tensor<?x4x!quant.uniform<i8:f32, 1.000000e-02:-43>>) -> tensor<2xi32>
func.func @shape_reader(%x: tensor<?x4x!i8a>) -> tensor<2xi32> {
  %0 = "tfl.relu"(%x) : (tensor<?x4x!i8a>) -> tensor<?x4x!i8a>
  %d = quant.dcast %0 : tensor<?x4x!i8a> to tensor<?x4xf32>
  %1 = "tfl.shape"(%d) {outType = 2 : i32} : (tensor<?x4xf32>) -> tensor<2xi32>
  return %1 : tensor<2xi32>
}
