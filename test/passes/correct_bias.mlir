// RUN: tfquant-opt %s -split-input-file -tfq-correct-bias | filecheck %s
// A call with a shift but no bias says so, as a remark at the call.
// RUN: tfquant-opt %s -split-input-file -tfq-correct-bias -verify-diagnostics

// The measured shift is subtracted from the bias the composite's BiasAdd reads: [0.5, -0.25] -
// [0.125, -0.5] = [0.375, 0.25], in a new constant, and tfq.bias_shift is gone. The other call
// sharing the bias constant (no shift) keeps it unchanged. A Relu unit's shift (measured before
// the Relu) is subtracted the same way, here from bias operand 2 of a conv.
// CHECK-LABEL: func @corrected
// CHECK-SAME: (%[[X:.*]]: tensor<?x2xf32>, %[[IMG:.*]]: tensor<1x2x2x1xf32>)
// CHECK-NEXT: %[[W:.*]] = "tf.Const"() {{.*}}tensor<2x2xf32>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {dtype = f32, value = dense<[5.000000e-01, -2.500000e-01]> : tensor<2xf32>}
// CHECK-NEXT: %[[K:.*]] = "tf.Const"() {{.*}}tensor<1x1x1x2xf32>
// CHECK-NEXT: %[[BC:.*]] = "tf.Const"() {dtype = f32, value = dense<[3.750000e-01, 2.500000e-01]> : tensor<2xf32>}
// CHECK-NEXT: %[[Y:.*]] = "tf.PartitionedCall"(%[[X]], %[[W]], %[[BC]]) {_tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_with_bias_fn_1, tfq.spec = {{.*}}} :
// CHECK-NEXT: %[[Z:.*]] = "tf.PartitionedCall"(%[[X]], %[[W]], %[[B]])
// CHECK-NEXT: %[[BR:.*]] = "tf.Const"() {dtype = f32, value = dense<[-1.000000e+00, 1.500000e+00]> : tensor<2xf32>}
// CHECK-NEXT: %[[R:.*]] = "tf.PartitionedCall"(%[[IMG]], %[[K]], %[[BR]]) {{.*}}f = @composite_conv2d_with_bias_and_relu_fn_1
// CHECK-NEXT: return %[[Y]], %[[Z]], %[[R]]
// CHECK-NOT: tfq.bias_shift
func.func @corrected(%x: tensor<?x2xf32>, %img: tensor<1x2x2x1xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>, tensor<1x2x2x2xf32>) {
  %w = "tf.Const"() {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %b = "tf.Const"() {value = dense<[0.5, -0.25]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %k = "tf.Const"() {value = dense<[[[[1.0, -1.0]]]]> : tensor<1x1x1x2xf32>, dtype = f32} : () -> tensor<1x1x1x2xf32>
  %bk = "tf.Const"() {value = dense<[-1.0, 2.0]> : tensor<2xf32>, dtype = f32, tfq.variable = "conv/bias"} : () -> tensor<2xf32>
  %y = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "static", activation_bits = 8 : i64, per_channel = true}, tfq.bias_shift = dense<[0.125, -0.5]> : tensor<2xf32>} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  %z = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  %r = "tf.PartitionedCall"(%img, %k, %bk) {f = @composite_conv2d_with_bias_and_relu_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.bias_shift = dense<[0.0, 0.5]> : tensor<2xf32>} : (tensor<1x2x2x1xf32>, tensor<1x1x1x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  return %y, %z, %r : tensor<?x2xf32>, tensor<?x2xf32>, tensor<1x2x2x2xf32>
}
func.func private @composite_matmul_with_bias_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>, %b: tensor<2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<?x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %ba : tensor<?x2xf32>
}
func.func private @composite_conv2d_with_bias_and_relu_fn_1(%a: tensor<1x2x2x1xf32>, %w: tensor<1x1x1x2xf32>, %b: tensor<2xf32>) -> tensor<1x2x2x2xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x2x2x1xf32>, tensor<1x1x1x2xf32>) -> tensor<1x2x2x2xf32>
  %ba = "tf.BiasAdd"(%c, %b) {T = f32, data_format = "NHWC"} : (tensor<1x2x2x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %r = "tf.Relu"(%ba) {T = f32} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}

// -----

// No bias to correct, or a bias that is not a constant: the attribute goes, with a remark; the
// calls are otherwise unchanged.
// CHECK-LABEL: func @no_bias
// CHECK-SAME: (%[[X:.*]]: tensor<?x2xf32>, %[[B:.*]]: tensor<2xf32>)
// CHECK-NEXT: %[[W:.*]] = "tf.Const"() {dtype = f32, value = dense<{{\[\[}}1.000000e+00, 2.000000e+00], [3.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>}
// CHECK-NEXT: "tf.PartitionedCall"(%[[X]], %[[W]]) {_tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_1} :
// CHECK-NEXT: "tf.PartitionedCall"(%[[X]], %[[W]], %[[B]]) {_tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_with_bias_fn_1} :
func.func @no_bias(%x: tensor<?x2xf32>, %b: tensor<2xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>) {
  %w = "tf.Const"() {value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  // expected-remark@+1 {{its output's mean shift could not be corrected: it has no bias}}
  %y = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.bias_shift = dense<[0.125, -0.5]> : tensor<2xf32>} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  // expected-remark@+1 {{its output's mean shift could not be corrected: its bias is not a float constant}}
  %z = "tf.PartitionedCall"(%x, %w, %b) {f = @composite_matmul_with_bias_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.bias_shift = dense<[0.125, -0.5]> : tensor<2xf32>} : (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %y, %z : tensor<?x2xf32>, tensor<?x2xf32>
}
func.func private @composite_matmul_with_bias_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>, %b: tensor<2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  %ba = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<?x2xf32>, tensor<2xf32>) -> tensor<?x2xf32>
  return %ba : tensor<?x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<?x2xf32>, %w: tensor<2x2xf32>) -> tensor<?x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %m : tensor<?x2xf32>
}
