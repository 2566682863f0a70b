// RUN: not tfquant-opt %s -split-input-file -tfq-prepare-lifting 2>&1 >/dev/null | filecheck %s

// A parse error names the file, line and column, and shows the line with a caret.
func.func @bad(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "tf.Relu"(%x) : (tensor<2xf32>) -> tensor<3xf32>
  // CHECK: errors.mlir:[[# @LINE + 1]]:10: error: use of value '%0' expects different type than prior uses
  return %0 : tensor<2xf32>
  // CHECK-NEXT: return {{.+}} : tensor<2xf32>
  // CHECK-NEXT: {{^         \^$}}
}

// -----

// Each chunk of a split file reports its own errors with the line numbers of the whole file.
// CHECK: errors.mlir:[[# @LINE + 1]]:16: error: expected ':'
func.func @f(%x tensor<2xf32>) {
  return
}
