// RUN: tfquant-opt %s -split-input-file -tfq-inline | filecheck %s

// Private composite_/quantized_ functions are inlined (their ops keep their locations) and erased;
// a public function, a function with another name, and a function still referenced stay.
// CHECK-LABEL: func @main
// CHECK-SAME: (%[[X:.*]]: tensor<2x2xi8>, %[[F:.*]]: tensor<2x2xf32>)
// CHECK: %[[W:.*]] = "tf.Const"
// CHECK: %[[Q:.*]] = "tfq.quantized_op"(%[[X]], %[[W]]) {kind = "matmul"}
// CHECK: %[[M:.*]] = "tf.MatMul"(%[[F]], %[[F]])
// CHECK: %[[R:.*]] = "tf.Relu"(%[[M]])
// CHECK: %[[P:.*]] = "tf.PartitionedCall"(%[[F]]) {{.*}}f = @public_fn
// CHECK: %[[O:.*]] = "tf.StatefulPartitionedCall"(%[[F]]) {{.*}}f = @other_fn
// CHECK: return %[[Q]], %[[R]], %[[P]], %[[O]]
// CHECK-NOT: @quantized_matmul_fn_1
// CHECK-NOT: @composite_matmul_with_relu_fn_2
// CHECK-DAG: func @public_fn
// CHECK-DAG: func private @other_fn
func.func @main(%x: tensor<2x2xi8>, %f: tensor<2x2xf32>) -> (tensor<2x2xi8>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) {
  %w = "tf.Const"() {value = dense<1> : tensor<2x2xi8>, dtype = i8} : () -> tensor<2x2xi8>
  %q = "tf.PartitionedCall"(%x, %w) {f = @quantized_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfq_quantized = true} : (tensor<2x2xi8>, tensor<2x2xi8>) -> tensor<2x2xi8>
  %r = "tf.StatefulPartitionedCall"(%f, %f) {f = @composite_matmul_with_relu_fn_2, config = "", config_proto = "", executor_type = ""} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %p = "tf.PartitionedCall"(%f) {f = @public_fn, config = "", config_proto = "", executor_type = ""} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %o = "tf.StatefulPartitionedCall"(%f) {f = @other_fn, config = "", config_proto = "", executor_type = ""} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  return %q, %r, %p, %o : tensor<2x2xi8>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>
}
func.func private @quantized_matmul_fn_1(%a: tensor<2x2xi8>, %b: tensor<2x2xi8>) -> tensor<2x2xi8> {
  %0 = "tfq.quantized_op"(%a, %b) {kind = "matmul"} : (tensor<2x2xi8>, tensor<2x2xi8>) -> tensor<2x2xi8>
  return %0 : tensor<2x2xi8>
}
func.func private @composite_matmul_with_relu_fn_2(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %0 = "tf.MatMul"(%a, %b) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %1 = "tf.Relu"(%0) {T = f32} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  return %1 : tensor<2x2xf32>
}
func.func @public_fn(%a: tensor<2x2xf32>) -> tensor<2x2xf32> {
  return %a : tensor<2x2xf32>
}
func.func private @other_fn(%a: tensor<2x2xf32>) -> tensor<2x2xf32> {
  return %a : tensor<2x2xf32>
}

// -----

// A composite function whose body returns an argument, called twice: both calls are inlined
// with their own operands; a call inside an inlined body is inlined in turn.
// CHECK-LABEL: func @nested
// CHECK-SAME: (%[[A:[^:]*]]: tensor<2xf32>, %[[B:[^:]*]]: tensor<2xf32>)
// CHECK-NOT: PartitionedCall
// CHECK: %[[N:.*]] = "tf.Neg"(%[[A]])
// CHECK: return %[[N]], %[[B]]
// CHECK-NOT: func private
func.func @nested(%a: tensor<2xf32>, %b: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) {
  %0 = "tf.PartitionedCall"(%a) {f = @composite_outer_fn_1, config = "", config_proto = "", executor_type = ""} : (tensor<2xf32>) -> tensor<2xf32>
  %1 = "tf.PartitionedCall"(%b) {f = @composite_identity_fn_2, config = "", config_proto = "", executor_type = ""} : (tensor<2xf32>) -> tensor<2xf32>
  return %0, %1 : tensor<2xf32>, tensor<2xf32>
}
func.func private @composite_outer_fn_1(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tf.PartitionedCall"(%x) {f = @composite_identity_fn_2, config = "", config_proto = "", executor_type = ""} : (tensor<2xf32>) -> tensor<2xf32>
  %1 = "tf.Neg"(%0) {T = f32} : (tensor<2xf32>) -> tensor<2xf32>
  return %1 : tensor<2xf32>
}
func.func private @composite_identity_fn_2(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}
