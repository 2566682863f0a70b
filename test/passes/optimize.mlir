// RUN: tfquant-opt %s -split-input-file -tfq-optimize | filecheck %s

// A qcast back to the type its dcast came from cancels; the dead dcast goes too.
// CHECK-LABEL: func @requantize_cancels
// CHECK-SAME: (%[[X:.*]]: tensor<4xi8>)
// CHECK: %[[Q:.*]] = quant.scast %[[X]]
// CHECK-NOT: quant.dcast
// CHECK-NOT: quant.qcast
// CHECK: %[[S:.*]] = quant.scast %[[Q]]
// CHECK: return %[[S]]
func.func @requantize_cancels(%x: tensor<4xi8>) -> tensor<4xi8> {
  %q = quant.scast %x : tensor<4xi8> to tensor<4x!quant.uniform<i8:f32, 0.5:1>>
  %d = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.5:1>> to tensor<4xf32>
  %q2 = quant.qcast %d : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.5:1>>
  %s = quant.scast %q2 : tensor<4x!quant.uniform<i8:f32, 0.5:1>> to tensor<4xi8>
  return %s : tensor<4xi8>
}

// -----

// A qcast to another type is a real requantize and stays.
// CHECK-LABEL: func @requantize_stays
// CHECK: quant.dcast
// CHECK: quant.qcast {{.*}} to tensor<4x!quant.uniform<i8:f32, 2.500000e-01:1>>
func.func @requantize_stays(%x: tensor<4xi8>) -> tensor<4xi8> {
  %q = quant.scast %x : tensor<4xi8> to tensor<4x!quant.uniform<i8:f32, 0.5:1>>
  %d = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.5:1>> to tensor<4xf32>
  %q2 = quant.qcast %d : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.25:1>>
  %s = quant.scast %q2 : tensor<4x!quant.uniform<i8:f32, 0.25:1>> to tensor<4xi8>
  return %s : tensor<4xi8>
}

// -----

// Cast round trips through a wider type are exact and go (i8 -> i32 -> i8, i8 -> f32 -> i8);
// through a narrower one (i32 -> i8 -> i32) or to another type (i8 -> f32 -> i32) they stay.
// CHECK-LABEL: func @cast_round_trips
// CHECK-SAME: (%[[X:[^:]*]]: tensor<4xi8>, %[[Y:[^:]*]]: tensor<4xi32>)
// CHECK: %[[F:.*]] = "tf.Cast"(%[[X]]) {{.*}} -> tensor<4xf32>
// CHECK: %[[N:.*]] = "tf.Cast"(%[[Y]]) {{.*}} -> tensor<4xi8>
// CHECK: %[[NW:.*]] = "tf.Cast"(%[[N]]) {{.*}} -> tensor<4xi32>
// CHECK: %[[FI:.*]] = "tf.Cast"(%[[F]]) {{.*}} -> tensor<4xi32>
// CHECK-NOT: tf.Cast
// CHECK: return %[[X]], %[[X]], %[[NW]], %[[FI]]
func.func @cast_round_trips(%x: tensor<4xi8>, %y: tensor<4xi32>) -> (tensor<4xi8>, tensor<4xi8>, tensor<4xi32>, tensor<4xi32>) {
  %a = "tf.Cast"(%x) {SrcT = i8, DstT = i32, Truncate = false} : (tensor<4xi8>) -> tensor<4xi32>
  %b = "tf.Cast"(%a) {SrcT = i32, DstT = i8, Truncate = false} : (tensor<4xi32>) -> tensor<4xi8>
  %c = "tf.Cast"(%x) {SrcT = i8, DstT = f32, Truncate = false} : (tensor<4xi8>) -> tensor<4xf32>
  %d = "tf.Cast"(%c) {SrcT = f32, DstT = i8, Truncate = false} : (tensor<4xf32>) -> tensor<4xi8>
  %n = "tf.Cast"(%y) {SrcT = i32, DstT = i8, Truncate = false} : (tensor<4xi32>) -> tensor<4xi8>
  %nw = "tf.Cast"(%n) {SrcT = i8, DstT = i32, Truncate = false} : (tensor<4xi8>) -> tensor<4xi32>
  %fi = "tf.Cast"(%c) {SrcT = f32, DstT = i32, Truncate = false} : (tensor<4xf32>) -> tensor<4xi32>
  return %b, %d, %nw, %fi : tensor<4xi8>, tensor<4xi8>, tensor<4xi32>, tensor<4xi32>
}

// -----

// Dead constants, quant casts and pure tf ops go, chains included; ops with effects and unknown
// ops stay even when unused.
// CHECK-LABEL: func @dead_ops
// CHECK-NOT: tf.Const
// CHECK-NOT: tf.Mul
// CHECK-NOT: tf.Round
// CHECK-NOT: quant.
// CHECK: "tf.Assert"
// CHECK: "tf.Softmax"
// CHECK: return
func.func @dead_ops(%x: tensor<4xf32>, %p: tensor<i1>) -> tensor<4xf32> {
  %c = "tf.Const"() {value = dense<2.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %m = "tf.Mul"(%x, %c) {T = f32} : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %r = "tf.Round"(%m) {T = f32} : (tensor<4xf32>) -> tensor<4xf32>
  %q = quant.qcast %r : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.5>>
  %s = quant.scast %q : tensor<4x!quant.uniform<i8:f32, 0.5>> to tensor<4xi8>
  "tf.Assert"(%p, %x) {T = [f32], summarize = 3 : i64} : (tensor<i1>, tensor<4xf32>) -> ()
  %u = "tf.Softmax"(%x) {T = f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %x : tensor<4xf32>
}

// -----

// A zero-point correction and a bias on an int32 accumulator merge into one constant offset.
// CHECK-LABEL: func @merged_offsets
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x3xi32>)
// CHECK-NOT: tf.Sub
// CHECK: %[[C:.*]] = "tf.Const"() {{.*}}value = dense<[9, 18, -27]> : tensor<3xi32>
// CHECK: %[[Y:.*]] = "tf.AddV2"(%[[X]], %[[C]])
// CHECK: return %[[Y]]
func.func @merged_offsets(%x: tensor<2x3xi32>) -> tensor<2x3xi32> {
  %corr = "tf.Const"() {value = dense<[1, 2, 3]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %bias = "tf.Const"() {value = dense<[10, 20, -24]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %a = "tf.Sub"(%x, %corr) {T = i32} : (tensor<2x3xi32>, tensor<3xi32>) -> tensor<2x3xi32>
  %b = "tf.AddV2"(%a, %bias) {T = i32} : (tensor<2x3xi32>, tensor<3xi32>) -> tensor<2x3xi32>
  return %b : tensor<2x3xi32>
}

// -----

// Negative: float offsets are not reassociated (rounding would change), nor are offsets of
// different shapes.
// CHECK-LABEL: func @kept_offsets
// CHECK: "tf.Sub"
// CHECK: "tf.AddV2"
// CHECK: "tf.Sub"
// CHECK: "tf.AddV2"
func.func @kept_offsets(%x: tensor<2x3xf32>, %y: tensor<2x3xi32>) -> (tensor<2x3xf32>, tensor<2x3xi32>) {
  %c1 = "tf.Const"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %c2 = "tf.Const"() {value = dense<0.5> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %a = "tf.Sub"(%x, %c1) {T = f32} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %b = "tf.AddV2"(%a, %c2) {T = f32} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %i1 = "tf.Const"() {value = dense<1> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %i2 = "tf.Const"() {value = dense<[1, 2, 3]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %c = "tf.Sub"(%y, %i1) {T = i32} : (tensor<2x3xi32>, tensor<i32>) -> tensor<2x3xi32>
  %d = "tf.AddV2"(%c, %i2) {T = i32} : (tensor<2x3xi32>, tensor<3xi32>) -> tensor<2x3xi32>
  return %b, %d : tensor<2x3xf32>, tensor<2x3xi32>
}
