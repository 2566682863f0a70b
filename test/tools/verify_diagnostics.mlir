// RUN: tfquant-opt %s -split-input-file --verify-diagnostics
// A wrong expectation makes --verify-diagnostics fail:
// RUN: sed -e 's/prior uses/later uses/' %s > %t.mlir
// RUN: not tfquant-opt %t.mlir -split-input-file --verify-diagnostics 2>&1 | filecheck %s
// CHECK: expected error "use of value '{{%[a-z0-9]+}}' expects different type than later uses" was not produced

func.func @bad(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-note@+1 {{prior use here}}
  %0 = "tf.Relu"(%x) : (tensor<2xf32>) -> tensor<3xf32>
  // expected-error@+1 {{use of value '%0' expects different type than prior uses}}
  return %0 : tensor<2xf32>
}
