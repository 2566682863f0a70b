// Malformed ops in a lifted function are errors at the op, not Python exceptions.
// RUN: tfquant-opt %s -split-input-file -tfq-quantize-composite-functions -verify-diagnostics

// A Conv2D without strides could not be lowered once quantized.
func.func @conv_without_strides(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %q = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 0.02:-10>>
  %d = quant.dcast %q : tensor<1x4x4x2x!quant.uniform<i8:f32, 0.02:-10>> to tensor<1x4x4x2xf32>
  %y = "tf.PartitionedCall"(%d, %w) {f = @composite_conv2d_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  %yq = quant.qcast %y : tensor<1x4x4x3xf32> to tensor<1x4x4x3x!quant.uniform<i8:f32, 0.03:-128>>
  %yd = quant.dcast %yq : tensor<1x4x4x3x!quant.uniform<i8:f32, 0.03:-128>> to tensor<1x4x4x3xf32>
  return %yd : tensor<1x4x4x3xf32>
}
func.func private @composite_conv2d_fn_1(%a: tensor<1x4x4x2xf32>, %w: tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32> {
  // expected-error@+1 {{'tf.Conv2D' op requires attribute 'strides' (an array of 4 integers)}}
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], padding = "SAME"} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  return %c : tensor<1x4x4x3xf32>
}

// -----

// MatMul multiplies matrices: vectors have no output-channel axis to quantize along.
func.func @matmul_of_vectors(%x: tensor<3xf32>) -> tensor<3xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %q = quant.qcast %x : tensor<3xf32> to tensor<3x!quant.uniform<i8:f32, 0.02:-10>>
  %d = quant.dcast %q : tensor<3x!quant.uniform<i8:f32, 0.02:-10>> to tensor<3xf32>
  %y = "tf.PartitionedCall"(%d, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable"} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %y : tensor<3xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<3xf32>, %w: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error@+1 {{'tf.MatMul' op operand #0 must have rank 2, got tensor<3xf32>}}
  %c = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %c : tensor<3xf32>
}

// -----

// A malformed tfq.spec on a call is an error at the call (not an internal error at 0:0):
// an unknown method.
func.func @bad_spec(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  // expected-error@+1 {{unknown quantization method 'int4'}}
  %y = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "int4", activation_bits = 8 : i64, per_channel = true}} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}

// -----

// A tfq.spec without its activation_bits and per_channel entries.
func.func @bad_spec2(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  // expected-error@+1 {{activation_bits}}
  %y = "tf.PartitionedCall"(%x, %w) {f = @composite_matmul_fn_1, config = "", config_proto = "", executor_type = "", _tfl_quant_trait = "fully_quantizable", tfq.spec = {method = "static"}} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %y : tensor<2x2xf32>
}
func.func private @composite_matmul_fn_1(%a: tensor<2x2xf32>, %w: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}
