// Inputs and outputs that cannot take the asked type are errors naming them.
// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-tfl-modify-io{input-type=int16})' -verify-diagnostics


!i8a = !quant.uniform<i8:f32, 0.01:-43>

// An input quantized to 8 bits cannot be int16.
// expected-error @+1 {{input 'x' is quantized to 8 bits, not int16}}
func.func @wrong_width(%x: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {tfl.signature_key = "serving_default", tfl.signature_inputs = ["x"], tfl.signature_outputs = ["y"]} {
  %q = "tfl.quantize"(%x) : (tensor<1x4xf32>) -> tensor<1x4x!i8a>
  %d = "tfl.dequantize"(%q) : (tensor<1x4x!i8a>) -> tensor<1x4xf32>
  return %d : tensor<1x4xf32>
}

// -----

// An input a float op reads cannot be integer.
// expected-error @+1 {{input 'x' is not quantized (an op reading it stayed float), so it cannot be int16}}
func.func @float_input(%x: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {tfl.signature_key = "serving_default", tfl.signature_inputs = ["x"], tfl.signature_outputs = ["y"]} {
  %0 = "tfl.log"(%x) : (tensor<1x4xf32>) -> tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}
