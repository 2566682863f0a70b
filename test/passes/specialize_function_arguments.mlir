// RUN: tfquant-opt %s -split-input-file -tfq-specialize-function-arguments | filecheck %s

// An If passes a weight and an unranked-typed activation: each branch gets the weight as its own
// constant and the activation's type; the If no longer passes the weight, and its constant goes.
// CHECK-LABEL: func @if_weight
// CHECK-NOT: dense<5.000000e-01>
// CHECK: %[[IF:.*]] = "tf.If"(%{{.*}}, %[[X:.*]]) {{{.*}}Tin = [f32]
// CHECK-SAME: (tensor<i1>, tensor<?x2xf32>) -> tensor<?x2xf32>
// CHECK: return %[[IF]]
// CHECK: func private @then(%[[A:.*]]: tensor<?x2xf32>) -> tensor<?x2xf32>
// CHECK-NEXT: %[[W:.*]] = "tf.Const"() {{.*}}dense<5.000000e-01> : tensor<2x2xf32>
// CHECK-NEXT: "tf.MatMul"(%[[A]], %[[W]]) {{.*}} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
// CHECK: func private @else(%[[B:.*]]: tensor<?x2xf32>) -> tensor<?x2xf32>
// CHECK-NEXT: %[[W2:.*]] = "tf.Const"() {{.*}}dense<5.000000e-01> : tensor<2x2xf32>
// CHECK-NEXT: "tf.MatMul"(%[[B]], %[[W2]])
func.func @if_weight(%c: tensor<i1>, %x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = "tf.Const"() {dtype = f32, value = dense<0.5> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %0 = "tf.If"(%c, %x, %w) {Tcond = i1, Tin = [f32, f32], Tout = [f32], then_branch = @then, else_branch = @else, output_shapes = [#tf_type.shape<?x2>]} : (tensor<i1>, tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %0 : tensor<?x2xf32>
}
func.func private @then(%a: tensor<*xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %0 = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<*xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %0 : tensor<?x2xf32>
}
func.func private @else(%a: tensor<*xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %0 = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<*xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %1 = "tf.Neg"(%0) {T = f32} : (tensor<?x2xf32>) -> tensor<?x2xf32>
  return %1 : tensor<?x2xf32>
}

// -----

// A While body passes its weight through: the body gets it as a constant, the loop no longer
// carries it, and its result (the weight) is the caller's constant.
// CHECK-LABEL: func @while_weight
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}dense<2.500000e-01>
// CHECK: %[[L:.*]]:2 = "tf.While"(%{{.*}}, %{{.*}}) {T = [i32, f32], body = @body, cond = @cond, {{.*}}output_shapes = [#tf_type.shape<>, #tf_type.shape<?x2>]
// CHECK: return %[[L]]#1, %[[W]]
// CHECK: func private @body(%[[I:.*]]: tensor<i32>, %[[V:.*]]: tensor<?x2xf32>) -> (tensor<i32>, tensor<?x2xf32>)
// CHECK-NEXT: %[[WB:.*]] = "tf.Const"() {{.*}}dense<2.500000e-01>
// CHECK: "tf.MatMul"(%[[V]], %[[WB]])
// CHECK: return %{{.*}}, %{{.*}} : tensor<i32>, tensor<?x2xf32>
// CHECK: func private @cond(%{{.*}}: tensor<i32>, %{{.*}}: tensor<?x2xf32>) -> tensor<i1>
func.func @while_weight(%x: tensor<?x2xf32>) -> (tensor<?x2xf32>, tensor<2x2xf32>) {
  %zero = "tf.Const"() {dtype = i32, value = dense<0> : tensor<i32>} : () -> tensor<i32>
  %w = "tf.Const"() {dtype = f32, value = dense<0.25> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %0:3 = "tf.While"(%zero, %x, %w) {T = [i32, f32, f32], body = @body, cond = @cond, is_stateless = false, parallel_iterations = 10 : i64, output_shapes = [#tf_type.shape<>, #tf_type.shape<?x2>, #tf_type.shape<2x2>]} : (tensor<i32>, tensor<?x2xf32>, tensor<2x2xf32>) -> (tensor<i32>, tensor<?x2xf32>, tensor<2x2xf32>)
  return %0#1, %0#2 : tensor<?x2xf32>, tensor<2x2xf32>
}
func.func private @body(%i: tensor<i32>, %v: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> (tensor<i32>, tensor<?x2xf32>, tensor<2x2xf32>) {
  %one = "tf.Const"() {dtype = i32, value = dense<1> : tensor<i32>} : () -> tensor<i32>
  %next = "tf.AddV2"(%i, %one) {T = i32} : (tensor<i32>, tensor<i32>) -> tensor<i32>
  %0 = "tf.MatMul"(%v, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %next, %0, %w : tensor<i32>, tensor<?x2xf32>, tensor<2x2xf32>
}
func.func private @cond(%i: tensor<i32>, %v: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<i1> {
  %three = "tf.Const"() {dtype = i32, value = dense<3> : tensor<i32>} : () -> tensor<i32>
  %0 = "tf.Less"(%i, %three) {T = i32} : (tensor<i32>, tensor<i32>) -> tensor<i1>
  return %0 : tensor<i1>
}

// -----

// Two Ifs share a branch but pass it different weights: the weight stays an argument. A loop
// value the body changes is no constant either.
// CHECK-LABEL: func @differing
// CHECK: "tf.If"(%{{.*}}, %{{.*}}, %{{.*}})
// CHECK: "tf.If"(%{{.*}}, %{{.*}}, %{{.*}})
// CHECK: func private @shared(%{{.*}}: tensor<?x2xf32>, %[[W:.*]]: tensor<2x2xf32>)
// CHECK-NOT: tf.Const
// CHECK: "tf.MatMul"(%{{.*}}, %[[W]])
func.func @differing(%c: tensor<i1>, %x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w1 = "tf.Const"() {dtype = f32, value = dense<1.0> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %w2 = "tf.Const"() {dtype = f32, value = dense<2.0> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %0 = "tf.If"(%c, %x, %w1) {Tcond = i1, Tin = [f32, f32], Tout = [f32], then_branch = @shared, else_branch = @shared, output_shapes = [#tf_type.shape<?x2>]} : (tensor<i1>, tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %1 = "tf.If"(%c, %0, %w2) {Tcond = i1, Tin = [f32, f32], Tout = [f32], then_branch = @shared, else_branch = @shared, output_shapes = [#tf_type.shape<?x2>]} : (tensor<i1>, tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %1 : tensor<?x2xf32>
}
func.func private @shared(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %0 = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %0 : tensor<?x2xf32>
}
