// Malformed quantized ops are errors at the op in both lowerings, not Python exceptions.
// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-xla -verify-diagnostics
// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-tf -verify-diagnostics

func.func private @conv_without_strides(%x: tensor<1x4x4x2xi8>, %w: tensor<3x3x2x3xi8>) -> tensor<1x4x4x3xi8> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind conv2d: op_attrs requires attribute 'strides' (an array of 4 integers)}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], padding = "SAME"}, input_scale = 0.05 : f64, input_zero_point = -3 : i64, weight_scales = dense<0.01> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.1 : f64, output_zero_point = -128 : i64, activation = "NONE"} : (tensor<1x4x4x2xi8>, tensor<3x3x2x3xi8>) -> tensor<1x4x4x3xi8>
  return %y : tensor<1x4x4x3xi8>
}

// -----

func.func private @string_scale(%x: tensor<4x3xi8>, %w: tensor<3x2xi8>) -> tensor<4x2xi8> {
  // expected-error@+1 {{'tfq.quantized_op' op attribute 'input_scale' must be a float, got "0.05"}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, input_scale = "0.05", input_zero_point = 0 : i64, weight_scales = dense<0.01> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.1 : f64, output_zero_point = 0 : i64, activation = "NONE"} : (tensor<4x3xi8>, tensor<3x2xi8>) -> tensor<4x2xi8>
  return %y : tensor<4x2xi8>
}

// -----

func.func private @matmul_of_vectors(%x: tensor<3xi8>, %w: tensor<3x2xi8>) -> tensor<2xi8> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul operand #0 must have rank 2, got tensor<3xi8>}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, input_scale = 0.05 : f64, input_zero_point = 0 : i64, weight_scales = dense<0.01> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.1 : f64, output_zero_point = 0 : i64, activation = "NONE"} : (tensor<3xi8>, tensor<3x2xi8>) -> tensor<2xi8>
  return %y : tensor<2xi8>
}

// -----

func.func private @unknown_kind(%x: tensor<4x3xi8>, %w: tensor<3x2xi8>) -> tensor<4x2xi8> {
  // expected-error@+1 {{'tfq.quantized_op' op has unknown kind 'conv3d'; the kinds are conv2d, depthwise_conv2d, matmul, batch_matmul, einsum, gather}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "conv3d", op_attrs = {}, input_scale = 0.05 : f64, input_zero_point = 0 : i64, weight_scales = dense<0.01> : tensor<1xf64>, weight_axis = -1 : i64, output_scale = 0.1 : f64, output_zero_point = 0 : i64, activation = "NONE"} : (tensor<4x3xi8>, tensor<3x2xi8>) -> tensor<4x2xi8>
  return %y : tensor<4x2xi8>
}
