// A fake quant whose range no quantized type expresses is an error at the op.
// RUN: tfquant-opt %s -split-input-file -tfq-convert-fake-quant-to-qdq -verify-diagnostics

// The range must be known when compiling: here it is computed at run time.
func.func @range_not_constant(%x: tensor<4xf32>, %lo: tensor<f32>) -> tensor<4xf32> {
  %hi = "tf.Const"() {value = dense<1.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVars' op needs constant min and max (its trained range), got a value computed at run time}}
  %0 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// TensorFlow outputs NaN for a NaN range.
func.func @nan_range(%x: tensor<4xf32>) -> tensor<4xf32> {
  %lo = "tf.Const"() {value = dense<0x7FC00000> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %hi = "tf.Const"() {value = dense<1.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVars' op has an invalid range [nan, 1.0]}}
  %0 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// An inverted range (TensorFlow outputs a constant there).
func.func @inverted(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxArgs' op has an invalid range [2.0, -1.0]}}
  %0 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = 2.0 : f32, max = -1.0 : f32, narrow_range = false, num_bits = 8 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// An empty range other than [0, 0] (TensorFlow outputs NaN).
func.func @empty(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxArgs' op has an invalid range [1.0, 1.0]}}
  %0 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = 1.0 : f32, max = 1.0 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// [0, 0] on values that are not all zero (TensorFlow outputs zeros, no scale reproduces that):
// channel 1 of this weight holds 0.5.
func.func @zero_range_nonzero_channel() -> tensor<2x2xf32> {
  %w = "tf.Const"() {value = dense<[[0.5, 0.5], [-0.5, 0.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %lo = "tf.Const"() {value = dense<[-1.0, 0.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %hi = "tf.Const"() {value = dense<[1.0, 0.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVarsPerChannel' op has an invalid range [0.0, 0.0] for channel 1}}
  %0 = "tf.FakeQuantWithMinMaxVarsPerChannel"(%w, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

// [0, 0] on an activation.
func.func @zero_range_activation(%x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = "tf.Const"() {value = dense<0.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVars' op has an invalid range [0.0, 0.0]}}
  %0 = "tf.FakeQuantWithMinMaxVars"(%x, %zero, %zero) {narrow_range = false, num_bits = 8 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @too_many_bits(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxArgs' op num_bits must be between 2 and 16, got 17}}
  %0 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = -1.0 : f32, max = 1.0 : f32, num_bits = 17 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @vector_range_per_tensor(%x: tensor<2xf32>) -> tensor<2xf32> {
  %lo = "tf.Const"() {value = dense<[-1.0, -2.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %hi = "tf.Const"() {value = dense<[1.0, 2.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVars' op min and max must be scalars, got 2 and 2 values}}
  %0 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @channel_count(%x: tensor<1x3xf32>) -> tensor<1x3xf32> {
  %lo = "tf.Const"() {value = dense<[-1.0, -2.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %hi = "tf.Const"() {value = dense<[1.0, 2.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVarsPerChannel' op has 2 ranges for 3 channels}}
  %0 = "tf.FakeQuantWithMinMaxVarsPerChannel"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<1x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x3xf32>
  return %0 : tensor<1x3xf32>
}

// -----

// The quantized axis of a per-channel type is a number: the input's rank must be known.
func.func @per_channel_unranked(%x: tensor<*xf32>) -> tensor<*xf32> {
  %lo = "tf.Const"() {value = dense<[-1.0, -2.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %hi = "tf.Const"() {value = dense<[1.0, 2.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxVarsPerChannel' op needs an input of known rank, got tensor<*xf32>}}
  %0 = "tf.FakeQuantWithMinMaxVarsPerChannel"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<*xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// -----

// Fake quantization is of floats.
func.func @integer_input(%x: tensor<4xi32>) -> tensor<4xi32> {
  // expected-error@+1 {{'tf.FakeQuantWithMinMaxArgs' op operand #0 must be a float tensor, got tensor<4xi32>}}
  %0 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = -1.0 : f32, max = 1.0 : f32} : (tensor<4xi32>) -> tensor<4xi32>
  return %0 : tensor<4xi32>
}
