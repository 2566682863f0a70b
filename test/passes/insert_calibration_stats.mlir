// RUN: tfquant-opt %s -split-input-file -tfq-insert-calibration-stats | filecheck %s
// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-insert-calibration-stats{method=CALIBRATION_METHOD_HISTOGRAM_PERCENTILE})' | filecheck %s --check-prefix=METHOD

// A chain of two lifted calls: a point on the input, one shared point between the calls, one on
// the output; weights and biases get none.
// CHECK-LABEL: func @chain
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<4x2xf32>)
// CHECK: %[[P0:.*]] = "tfq.calibration_point"(%[[X]]) {activation_bits = 8 : i64, id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX"} : (tensor<4x2xf32>) -> tensor<4x2xf32>
// CHECK: %[[W:.*]] = "tf.Const"
// CHECK: %[[B:.*]] = "tf.Const"
// CHECK: %[[C1:.*]] = "tf.PartitionedCall"(%[[P0]], %[[W]], %[[B]]) {{.*}}f = @composite_matmul_with_bias_and_relu_fn_1
// CHECK: %[[P1:.*]] = "tfq.calibration_point"(%[[C1]]) {activation_bits = 8 : i64, id = 1 : i64, method = "CALIBRATION_METHOD_MIN_MAX"}
// CHECK: %[[C2:.*]] = "tf.PartitionedCall"(%[[P1]], %[[W]]) {{.*}}f = @composite_matmul_fn_2
// CHECK: %[[P2:.*]] = "tfq.calibration_point"(%[[C2]]) {activation_bits = 8 : i64, id = 2 : i64
// CHECK: return %[[P2]]
// CHECK-NOT: tfq.calibration_point
// METHOD: "tfq.calibration_point"({{.*}}method = "CALIBRATION_METHOD_HISTOGRAM_PERCENTILE"
func.func @chain(%x: tensor<4x2xf32>) -> tensor<4x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %b = "tf.Const"() {value = dense<1.0> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %0 = "tf.PartitionedCall"(%x, %w, %b) {Tin = [f32, f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_with_bias_and_relu_fn_1} : (tensor<4x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %1 = "tf.PartitionedCall"(%0, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_2} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
  return %1 : tensor<4x2xf32>
}
func.func private @composite_matmul_with_bias_and_relu_fn_1(%x: tensor<4x2xf32>, %w: tensor<2x2xf32>, %b: tensor<2xf32>) -> tensor<4x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
  %1 = "tf.BiasAdd"(%0, %b) {T = f32, data_format = "NHWC"} : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %2 = "tf.Relu"(%1) {T = f32} : (tensor<4x2xf32>) -> tensor<4x2xf32>
  return %2 : tensor<4x2xf32>
}
func.func private @composite_matmul_fn_2(%x: tensor<4x2xf32>, %w: tensor<2x2xf32>) -> tensor<4x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

// A value computed by a float op and feeding two lifted calls gets one point, placed after its
// producer and shared by both calls; the float op's other user keeps the unmarked value. Every
// user of a call result reads the point.
// CHECK-LABEL: func @shared
// CHECK: %[[T:.*]] = "tf.Tanh"
// CHECK-NEXT: %[[P0:.*]] = "tfq.calibration_point"(%[[T]]) {activation_bits = 8 : i64, id = 0 : i64
// CHECK: %[[C1:.*]] = "tf.PartitionedCall"(%[[P0]], %{{.*}}) {{.*}}f = @composite_matmul_fn_1
// CHECK-NEXT: %[[P1:.*]] = "tfq.calibration_point"(%[[C1]]) {activation_bits = 8 : i64, id = 1 : i64
// CHECK-NEXT: %[[C2:.*]] = "tf.PartitionedCall"(%[[P0]], %{{.*}}) {{.*}}f = @composite_matmul_fn_2
// CHECK-NEXT: %[[P2:.*]] = "tfq.calibration_point"(%[[C2]]) {activation_bits = 8 : i64, id = 2 : i64
// CHECK-NEXT: %[[S:.*]] = "tf.AddV2"(%[[P1]], %[[P2]])
// CHECK-NEXT: %[[N:.*]] = "tf.Neg"(%[[T]])
// CHECK-NEXT: return %[[S]], %[[N]], %[[P1]]
func.func @shared(%x: tensor<1x2xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %t = "tf.Tanh"(%x) {T = f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %0 = "tf.PartitionedCall"(%t, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %1 = "tf.PartitionedCall"(%t, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_2} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %s = "tf.AddV2"(%0, %1) {T = f32} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32>
  %n = "tf.Neg"(%t) {T = f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  return %s, %n, %0 : tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>
}
func.func private @composite_matmul_fn_1(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}
func.func private @composite_matmul_fn_2(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// A gather: no point on the int indices nor on the table and axis, one on the result. Two
// arguments feeding calls get points in argument order.
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:[a-z0-9_]+]]: tensor<3xi32>, %[[A:[a-z0-9_]+]]: tensor<1x2xf32>, %[[B:[a-z0-9_]+]]: tensor<1x2xf32>)
// CHECK-NEXT: %[[PA:.*]] = "tfq.calibration_point"(%[[A]]) {activation_bits = 8 : i64, id = 0 : i64
// CHECK-NEXT: %[[PB:.*]] = "tfq.calibration_point"(%[[B]]) {activation_bits = 8 : i64, id = 1 : i64
// CHECK: %[[G:.*]] = "tf.PartitionedCall"(%[[I]], %{{.*}}, %{{.*}}) {{.*}}f = @composite_gather_fn_1
// CHECK-NEXT: %[[PG:.*]] = "tfq.calibration_point"(%[[G]]) {activation_bits = 8 : i64, id = 2 : i64
// CHECK: "tf.PartitionedCall"(%[[PA]]
// CHECK: "tf.PartitionedCall"(%[[PB]]
// CHECK: return %[[PG]]
func.func @gather(%ids: tensor<3xi32>, %a: tensor<1x2xf32>, %b: tensor<1x2xf32>) -> (tensor<3x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) {
  %t = "tf.Const"() {value = dense<1.0> : tensor<4x2xf32>, dtype = f32} : () -> tensor<4x2xf32>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %g = "tf.PartitionedCall"(%ids, %t, %axis) {Tin = [i32, f32, i32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_gather_fn_1} : (tensor<3xi32>, tensor<4x2xf32>, tensor<i32>) -> tensor<3x2xf32>
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %0 = "tf.PartitionedCall"(%a, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_2} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %1 = "tf.PartitionedCall"(%b, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_2} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %g, %0, %1 : tensor<3x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>
}
func.func private @composite_gather_fn_1(%i: tensor<3xi32>, %t: tensor<4x2xf32>, %axis: tensor<i32>) -> tensor<3x2xf32> {
  %0 = "tf.GatherV2"(%t, %i, %axis) {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64} : (tensor<4x2xf32>, tensor<3xi32>, tensor<i32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}
func.func private @composite_matmul_fn_2(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// Negative: calls that are not lifted (no quant trait) and other ops get no points.
// CHECK-LABEL: func @not_lifted
// CHECK-NOT: tfq.calibration_point
func.func @not_lifted(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %0 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], config = "", config_proto = "", executor_type = "", f = @helper} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %1 = "tf.MatMul"(%0, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %1 : tensor<1x2xf32>
}
func.func private @helper(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// Only calls whose spec takes calibrated ranges (static) get points: dynamic range, weight-only,
// float16 and no-quantize calls get none, on their operands nor on their results.
// CHECK-LABEL: func @non_static_specs
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x2xf32>, %[[Y:[a-z0-9_]+]]: tensor<1x2xf32>)
// CHECK-NEXT: %[[PY:.*]] = "tfq.calibration_point"(%[[Y]]) {activation_bits = 8 : i64, id = 0 : i64
// CHECK-NOT: tfq.calibration_point
// CHECK: %[[D:.*]] = "tf.PartitionedCall"(%[[X]], %{{.*}}) {{.*}}method = "dynamic_range"
// CHECK-NEXT: %[[WO:.*]] = "tf.PartitionedCall"(%[[D]], %{{.*}}) {{.*}}method = "weight_only"
// CHECK-NEXT: %[[F16:.*]] = "tf.PartitionedCall"(%[[WO]], %{{.*}}) {{.*}}method = "float16"
// CHECK-NEXT: %[[NQ:.*]] = "tf.PartitionedCall"(%[[F16]], %{{.*}}) {{.*}}method = "no_quantize"
// CHECK-NEXT: %[[S:.*]] = "tf.PartitionedCall"(%[[PY]], %{{.*}}) {{.*}}method = "static"
// CHECK-NEXT: %[[PS:.*]] = "tfq.calibration_point"(%[[S]]) {activation_bits = 8 : i64, id = 1 : i64
// CHECK-NEXT: return %[[D]], %[[WO]], %[[F16]], %[[NQ]], %[[PS]]
func.func @non_static_specs(%x: tensor<1x2xf32>, %y: tensor<1x2xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %0 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "dynamic_range", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %1 = "tf.PartitionedCall"(%0, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "weight_only", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %2 = "tf.PartitionedCall"(%1, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "float16", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %3 = "tf.PartitionedCall"(%2, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "no_quantize", activation_bits = 8 : i64, per_channel = true}, tfq.float_reason = "the method is no_quantize"} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %4 = "tf.PartitionedCall"(%y, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0, %1, %2, %3, %4 : tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>
}
func.func private @composite_matmul_fn_1(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// activation_bits comes from the spec. A point shared by an 8-bit and a 16-bit call gets 16,
// whichever comes first: the input %x read by both, and the edge from an 8-bit call's result
// into a 16-bit call. Points only 8-bit calls see stay 8.
// CHECK-LABEL: func @mixed_bits
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x2xf32>, %[[Z:[a-z0-9_]+]]: tensor<1x2xf32>)
// CHECK-NEXT: %[[PX:.*]] = "tfq.calibration_point"(%[[X]]) {activation_bits = 16 : i64, id = 0 : i64
// CHECK-NEXT: %[[PZ:.*]] = "tfq.calibration_point"(%[[Z]]) {activation_bits = 8 : i64, id = 1 : i64
// CHECK: %[[C1:.*]] = "tf.PartitionedCall"(%[[PX]], %{{.*}}) {{.*}}activation_bits = 8 : i64, method = "static"
// CHECK-NEXT: %[[P1:.*]] = "tfq.calibration_point"(%[[C1]]) {activation_bits = 16 : i64, id = 2 : i64
// CHECK-NEXT: %[[C2:.*]] = "tf.PartitionedCall"(%[[P1]], %{{.*}}) {{.*}}activation_bits = 16 : i64, method = "static"
// CHECK-NEXT: %[[P2:.*]] = "tfq.calibration_point"(%[[C2]]) {activation_bits = 16 : i64, id = 3 : i64
// CHECK-NEXT: %[[C3:.*]] = "tf.PartitionedCall"(%[[PX]], %{{.*}}) {{.*}}activation_bits = 16 : i64, method = "static"
// CHECK-NEXT: %[[P3:.*]] = "tfq.calibration_point"(%[[C3]]) {activation_bits = 16 : i64, id = 4 : i64
// CHECK-NEXT: %[[C4:.*]] = "tf.PartitionedCall"(%[[PZ]], %{{.*}}) {{.*}}activation_bits = 8 : i64, method = "static"
// CHECK-NEXT: %[[P4:.*]] = "tfq.calibration_point"(%[[C4]]) {activation_bits = 8 : i64, id = 5 : i64
// CHECK-NEXT: return %[[P2]], %[[P3]], %[[P4]]
func.func @mixed_bits(%x: tensor<1x2xf32>, %z: tensor<1x2xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %0 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %1 = "tf.PartitionedCall"(%0, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "static", activation_bits = 16 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %2 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "static", activation_bits = 16 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %3 = "tf.PartitionedCall"(%z, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %1, %2, %3 : tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>
}
func.func private @composite_matmul_fn_1(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

// A point already in place (a rerun) keeps its bits when they are wider, and is not duplicated.
// CHECK-LABEL: func @rerun
// CHECK-NEXT: %[[P:.*]] = "tfq.calibration_point"(%{{.*}}) {activation_bits = 16 : i64, id = 0 : i64
// CHECK-NOT: tfq.calibration_point
// CHECK: "tf.PartitionedCall"(%[[P]], %{{.*}})
// CHECK-NEXT: %[[R:.*]] = "tfq.calibration_point"({{.*}}) {activation_bits = 8 : i64, id = 1 : i64
// CHECK-NEXT: return %[[R]]
func.func @rerun(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %p = "tfq.calibration_point"(%x) {id = 7 : i64, method = "CALIBRATION_METHOD_MIN_MAX", activation_bits = 16 : i64} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %0 = "tf.PartitionedCall"(%p, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1, tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}
func.func private @composite_matmul_fn_1(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %0 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

