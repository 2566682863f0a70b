// RUN: tfquant-opt %s -split-input-file -tfq-convert-fake-quant-to-qdq | filecheck %s

// FakeQuantWithMinMaxVars with constant (trained) ranges becomes a qcast/dcast pair, and the range
// constants it alone used are erased. [-1, 1] in 8 bits: scale 2/255 in float32, TensorFlow's zero
// point 127 (127.49999 rounded) stored signed as -1. An unranked input keeps its type.
// CHECK-LABEL: func @vars
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x3xf32>, %[[U:[a-z0-9_]+]]: tensor<*xf32>)
// CHECK-NOT: "tf.Const"
// CHECK: %[[Q:.*]] = quant.qcast %[[X]] : tensor<2x3xf32> to tensor<2x3x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>
// CHECK-NEXT: %[[D:.*]] = quant.dcast %[[Q]] : tensor<2x3x!quant.uniform<i8:f32, 0.0078431377187371254:-1>> to tensor<2x3xf32>
// CHECK-NEXT: %[[QU:.*]] = quant.qcast %[[U]] : tensor<*xf32> to tensor<*x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>
// CHECK-NEXT: %[[DU:.*]] = quant.dcast %[[QU]] : tensor<*x!quant.uniform<i8:f32, 0.0078431377187371254:-1>> to tensor<*xf32>
// CHECK-NOT: tf.FakeQuant
// CHECK: return %[[D]], %[[DU]]
func.func @vars(%x: tensor<2x3xf32>, %u: tensor<*xf32>) -> (tensor<2x3xf32>, tensor<*xf32>) {
  %lo = "tf.Const"() {value = dense<-1.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %hi = "tf.Const"() {value = dense<1.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %0 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<2x3xf32>, tensor<f32>, tensor<f32>) -> tensor<2x3xf32>
  %1 = "tf.FakeQuantWithMinMaxVars"(%u, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<*xf32>, tensor<f32>, tensor<f32>) -> tensor<*xf32>
  return %0, %1 : tensor<2x3xf32>, tensor<*xf32>
}

// -----

// FakeQuantWithMinMaxArgs reads its range from attributes (TensorFlow's defaults: [-6, 6], 8 bits).
// A range that excludes 0 is moved to include it as TensorFlow's nudging does: [0.5, 2] becomes
// [0, 1.5] (zero point at the bottom, -128), [-2, -0.5] becomes [-1.5, 0] (zero point 127).
// [-6, 6]: 6 / (12 / 255) is 127.5 in float32, which TensorFlow rounds up to 128, stored as 0.
// CHECK-LABEL: func @args
// CHECK: quant.qcast %{{.*}} : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.0058823530562222004:-128>>
// CHECK: quant.qcast %{{.*}} : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.0058823530562222004:127>>
// CHECK: quant.qcast %{{.*}} : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.047058824449777603>>
// CHECK-NOT: tf.FakeQuant
func.func @args(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %0 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = 0.5 : f32, max = 2.0 : f32, narrow_range = false, num_bits = 8 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = -2.0 : f32, max = -0.5 : f32, narrow_range = false, num_bits = 8 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "tf.FakeQuantWithMinMaxArgs"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %0, %1, %2 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// A per-channel fake quant of a conv weight (narrow range, as QAT quantizes weights) gives the
// weight constant a per-axis type on its last axis; the conv reads the dcast. Channel 1's range
// [-0.5, 0.25] puts its zero point at 1 + 0.5 / (0.75 / 254) = 170.33 -> 170, stored as 42.
// CHECK-LABEL: func @per_channel_weight
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : () -> tensor<1x1x2x2xf32>
// CHECK-NEXT: %[[Q:.*]] = quant.qcast %[[W]] : tensor<1x1x2x2xf32> to tensor<1x1x2x2x!quant.uniform<i8<-127:127>:f32:3, {0.0078740157186985015,0.0029527558945119381:42}>>
// CHECK-NEXT: %[[D:.*]] = quant.dcast %[[Q]]
// CHECK-NEXT: "tf.Conv2D"(%{{.*}}, %[[D]])
func.func @per_channel_weight(%x: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = "tf.Const"() {value = dense<[[[[0.5, 0.1], [-0.3, -0.2]]]]> : tensor<1x1x2x2xf32>, dtype = f32} : () -> tensor<1x1x2x2xf32>
  %lo = "tf.Const"() {value = dense<[-1.0, -0.5]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %hi = "tf.Const"() {value = dense<[1.0, 0.25]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %fw = "tf.FakeQuantWithMinMaxVarsPerChannel"(%w, %lo, %hi) {narrow_range = true, num_bits = 8 : i64} : (tensor<1x1x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x1x2x2xf32>
  %c = "tf.Conv2D"(%x, %fw) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x2x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %c : tensor<1x2x2x2xf32>
}

// -----

// Per channel on an activation with a dynamic batch: the axis is the last one. A weight channel
// whose range is [0, 0] and whose values are all zero (a dead channel) gets scale 1.0, which keeps
// it exact.
// CHECK-LABEL: func @per_channel_activation
// CHECK: quant.qcast %{{.*}} : tensor<?x3xf32> to tensor<?x3x!quant.uniform<i8:f32:1, {0.0078431377187371254:-1,0.0098039219155907631:-77,0.011764706112444401:-128}>>
// CHECK: quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32:1, {0.0078431377187371254:-1,1.000000e+00}>>
func.func @per_channel_activation(%x: tensor<?x3xf32>) -> (tensor<?x3xf32>, tensor<2x2xf32>) {
  %lo = "tf.Const"() {value = dense<[-1.0, -0.5, 0.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %hi = "tf.Const"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %0 = "tf.FakeQuantWithMinMaxVarsPerChannel"(%x, %lo, %hi) {narrow_range = false, num_bits = 8 : i64} : (tensor<?x3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  %w = "tf.Const"() {value = dense<[[0.5, 0.0], [-0.5, 0.0]]> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %wlo = "tf.Const"() {value = dense<[-1.0, 0.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %whi = "tf.Const"() {value = dense<[1.0, 0.0]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %1 = "tf.FakeQuantWithMinMaxVarsPerChannel"(%w, %wlo, %whi) {narrow_range = false, num_bits = 8 : i64} : (tensor<2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2xf32>
  return %0, %1 : tensor<?x3xf32>, tensor<2x2xf32>
}

// -----

// Fewer than 8 bits store in i8 with the narrower range, shifted by -2^(bits-1): 4 bits are
// [-8, 7], [-7, 7] with narrow range. 9 to 16 bits store in i16: 16 bits are the whole of i16,
// [-32767, 32767] with narrow range.
// CHECK-LABEL: func @bit_widths
// CHECK: quant.qcast %{{.*}} to tensor<4x!quant.uniform<i8<-8:7>:f32, 0.13333334028720856:-1>>
// CHECK: quant.qcast %{{.*}} to tensor<4x!quant.uniform<i8<-7:7>:f32, 0.1428571492433548>>
// CHECK: quant.qcast %{{.*}} to tensor<4x!quant.uniform<i16:f32, 3.0518043786287308E-5>>
// CHECK: quant.qcast %{{.*}} to tensor<4x!quant.uniform<i16<-32767:32767>:f32, 3.0518509447574615E-5>>
// CHECK: quant.qcast %{{.*}} to tensor<4x!quant.uniform<i16<-2048:2047>:f32, 4.8840051749721169E-4:-1>>
func.func @bit_widths(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %lo = "tf.Const"() {value = dense<-1.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %hi = "tf.Const"() {value = dense<1.0> : tensor<f32>, dtype = f32} : () -> tensor<f32>
  %0 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 4 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  %1 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = true, num_bits = 4 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  %2 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 16 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  %3 = "tf.FakeQuantWithMinMaxArgs"(%x) {min = -1.0 : f32, max = 1.0 : f32, narrow_range = true, num_bits = 16 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  %4 = "tf.FakeQuantWithMinMaxVars"(%x, %lo, %hi) {narrow_range = false, num_bits = 12 : i64} : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  return %0, %1, %2, %3, %4 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
