// RUN: tfquant-opt %s -split-input-file -tfq-tfl-quantize | filecheck %s

// A calibrated conv: int8 per-channel weights in [-127, 127], an int32 bias at input x weight
// scale, its result at its calibrated range; the reshape reads the conv's own result and keeps its
// scale; softmax writes its fixed 1/256 scale.
// CHECK-LABEL: func @conv_reshape_softmax
// CHECK: %[[Q:.*]] = quant.qcast %arg0 {{.*}} to tensor<1x4x4x1x!quant.uniform<i8:f32, 0.011764705882352941:-43>>
// CHECK-DAG: %[[W:.*]] = "tfl.pseudo_qconst"() {qtype = tensor<2x3x3x1x!quant.uniform<i8<-127:127>:f32:0, {0.003937007874015748,0.0078740157480314959}>>, value = dense<{{\[\[\[\[127\], \[64\], \[-127\]\]}}
// CHECK-DAG: %[[B:.*]] = "tfl.pseudo_qconst"() {qtype = tensor<2x!quant.uniform<i32<-2147483647:2147483647>:f32:0, {4.6317739694302917E-5,9.2635479388605835E-5}>>, value = dense<[2159, 1080]> : tensor<2xi32>}
// CHECK: %[[C:.*]] = "tfl.conv_2d"(%[[Q]], %[[W]], %[[B]]) {{.*}}tfl.version = 3 : i32} : {{.*}} -> tensor<1x4x4x2x!quant.uniform<i8:f32, 0.0078431372549019607:-128>>
// CHECK-NOT: tfq.spec
// CHECK: %[[R:.*]] = "tfl.reshape"(%[[C]], %{{.*}}) {{.*}} -> tensor<1x32x!quant.uniform<i8:f32, 0.0078431372549019607:-128>>
// CHECK: "tfl.softmax"(%[[R]]) {{.*}}tfl.version = 2 : i32} : {{.*}} -> tensor<1x32x!quant.uniform<i8:f32, 3.906250e-03:-128>>
func.func @conv_reshape_softmax(%x: tensor<1x4x4x1xf32>) -> tensor<1x32xf32> {
  %q0 = quant.qcast %x : tensor<1x4x4x1xf32> to tensor<1x4x4x1x!quant.uniform<i8:f32, 0.011764705882352941:-43>>
  %x0 = quant.dcast %q0 : tensor<1x4x4x1x!quant.uniform<i8:f32, 0.011764705882352941:-43>> to tensor<1x4x4x1xf32>
  %w = "tfl.pseudo_const"() {value = dense<[[[[0.5], [0.25], [-0.5]], [[0.1], [0.2], [0.3]], [[0.0], [0.0], [0.0]]], [[[1.0], [0.0], [-1.0]], [[0.0], [0.0], [0.0]], [[0.0], [0.0], [0.0]]]]> : tensor<2x3x3x1xf32>} : () -> tensor<2x3x3x1xf32>
  %b = "tfl.pseudo_const"() {value = dense<0.1> : tensor<2xf32>} : () -> tensor<2xf32>
  %shape = "tfl.pseudo_const"() {value = dense<[1, 32]> : tensor<2xi32>} : () -> tensor<2xi32>
  %0 = "tfl.conv_2d"(%x0, %w, %b) {tfl.options = "Conv2DOptions", padding = 0 : i32, strideW = 1 : i32, strideH = 1 : i32, fusedActivationFunction = 1 : i32, dilationWFactor = 1 : i32, dilationHFactor = 1 : i32, tfl.version = 1 : i32, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}} : (tensor<1x4x4x1xf32>, tensor<2x3x3x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32>
  %q1 = quant.qcast %0 : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 0.0078431372549019607:-128>>
  %x1 = quant.dcast %q1 : tensor<1x4x4x2x!quant.uniform<i8:f32, 0.0078431372549019607:-128>> to tensor<1x4x4x2xf32>
  %1 = "tfl.reshape"(%x1, %shape) {tfl.version = 1 : i32, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}} : (tensor<1x4x4x2xf32>, tensor<2xi32>) -> tensor<1x32xf32>
  %q2 = quant.qcast %1 : tensor<1x32xf32> to tensor<1x32x!quant.uniform<i8:f32, 0.0078:-128>>
  %x2 = quant.dcast %q2 : tensor<1x32x!quant.uniform<i8:f32, 0.0078:-128>> to tensor<1x32xf32>
  %2 = "tfl.softmax"(%x2) {beta = 1.0 : f32, tfl.version = 1 : i32, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}} : (tensor<1x32xf32>) -> tensor<1x32xf32>
  %q3 = quant.qcast %2 : tensor<1x32xf32> to tensor<1x32x!quant.uniform<i8:f32, 0.0039:-128>>
  %x3 = quant.dcast %q3 : tensor<1x32x!quant.uniform<i8:f32, 0.0039:-128>> to tensor<1x32xf32>
  return %x3 : tensor<1x32xf32>
}

// -----

// 16-bit activations: symmetric int16, an int64 bias (i64 values behind an i32 type), quantizedBiasType
// INT64, the 16x8 opcode version.
// A concatenation's inputs take its result's range (the layers or inputs writing them then write
// its scale, with no requantize between).
// CHECK-LABEL: func @fc_16x8_and_concat
// CHECK: %[[B:.*]] = "tfl.pseudo_qconst"() {qtype = tensor<2x!quant.uniform<i32<-2147483647:2147483647>:f32:0, {1.9685039370078741E-6,3.9370078740157482E-6}>>, value = dense<[50800, -25400]> : tensor<2xi64>}
// CHECK: "tfl.fully_connected"(%{{.*}}, %{{.*}}, %[[B]]) {{.*}}quantizedBiasType = 4 : i32, tfl.options = "FullyConnectedOptions", tfl.version = 4 : i32} : {{.*}} -> tensor<1x2x!quant.uniform<i16<-32767:32767>:f32, 1.000000e-03>>
// CHECK: %[[A:.*]] = quant.qcast %arg1 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 4.000000e-03>>
// CHECK-NOT: tfl.quantize
// CHECK: "tfl.concatenation"(%[[A]], {{.*}} -> tensor<1x4x!quant.uniform<i8:f32, 4.000000e-03>>
func.func @fc_16x8_and_concat(%x: tensor<1x3xf32>, %y: tensor<1x2xf32>, %z: tensor<1x2xf32>) -> (tensor<1x2xf32>, tensor<1x4xf32>) {
  %q0 = quant.qcast %x : tensor<1x3xf32> to tensor<1x3x!quant.uniform<i16<-32767:32767>:f32, 0.0005>>
  %x0 = quant.dcast %q0 : tensor<1x3x!quant.uniform<i16<-32767:32767>:f32, 0.0005>> to tensor<1x3xf32>
  %w = "tfl.pseudo_const"() {value = dense<[[0.5, 0.25, -0.5], [1.0, 0.0, 0.127]]> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %b = "tfl.pseudo_const"() {value = dense<[0.1, -0.1]> : tensor<2xf32>} : () -> tensor<2xf32>
  %0 = "tfl.fully_connected"(%x0, %w, %b) {tfl.options = "FullyConnectedOptions", fusedActivationFunction = 0 : i32, keepNumDims = false, asymmetricQuantizeInputs = false, quantizedBiasType = 0 : i32, tfl.version = 1 : i32, tfq.spec = {activation_bits = 16 : i64, method = "static", per_channel = true}} : (tensor<1x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %q1 = quant.qcast %0 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i16<-32767:32767>:f32, 0.001>>
  %x1 = quant.dcast %q1 : tensor<1x2x!quant.uniform<i16<-32767:32767>:f32, 0.001>> to tensor<1x2xf32>
  %q2 = quant.qcast %y : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.002:0>>
  %y0 = quant.dcast %q2 : tensor<1x2x!quant.uniform<i8:f32, 0.002:0>> to tensor<1x2xf32>
  %q3 = quant.qcast %z : tensor<1x2xf32> to tensor<1x2x!quant.uniform<i8:f32, 0.004:0>>
  %z0 = quant.dcast %q3 : tensor<1x2x!quant.uniform<i8:f32, 0.004:0>> to tensor<1x2xf32>
  %1 = "tfl.concatenation"(%y0, %z0) {axis = 1 : i32, fusedActivationFunction = 0 : i32, tfl.version = 1 : i32, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}} : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x4xf32>
  %q4 = quant.qcast %1 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 0.004:0>>
  %x4 = quant.dcast %q4 : tensor<1x4x!quant.uniform<i8:f32, 0.004:0>> to tensor<1x4xf32>
  return %x1, %x4 : tensor<1x2xf32>, tensor<1x4xf32>
}

// -----

// Dynamic range: the fully connected reads its int8 per-channel weight directly (hybrid kernel,
// inputs quantized asymmetrically at run time); the embedding lookup reads its int8 table and its
// rows are dequantized after it.
// CHECK-LABEL: func @dynamic_range
// CHECK: %[[W:.*]] = "tfl.pseudo_qconst"() {qtype = tensor<2x3x!quant.uniform<i8<-127:127>:f32:0
// CHECK: "tfl.fully_connected"(%arg0, %[[W]], %{{.*}}) {asymmetricQuantizeInputs = true, {{.*}}tfl.version = 12 : i32} : (tensor<1x3xf32>, {{.*}}) -> tensor<1x2xf32>
// CHECK: %[[T:.*]] = "tfl.pseudo_qconst"() {qtype = tensor<4x3x!quant.uniform<i8<-127:127>:f32, 0.0078740157480314959>>
// CHECK: %[[G:.*]] = "tfl.gather"(%[[T]], %arg1) {{.*}}tfl.version = 2 : i32} : {{.*}} -> tensor<2x3x!quant.uniform<i8<-127:127>:f32, 0.0078740157480314959>>
// CHECK: %[[R:.*]] = "tfl.dequantize"(%[[G]]) : {{.*}} -> tensor<2x3xf32>
// CHECK: return %{{.*}}, %[[R]]
func.func @dynamic_range(%x: tensor<1x3xf32>, %ids: tensor<2xi32>) -> (tensor<1x2xf32>, tensor<2x3xf32>) {
  %w = "tfl.pseudo_const"() {value = dense<[[0.5, 0.25, -0.5], [1.0, 0.0, 0.127]]> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %b = "tfl.pseudo_const"() {value = dense<[0.1, -0.1]> : tensor<2xf32>} : () -> tensor<2xf32>
  %0 = "tfl.fully_connected"(%x, %w, %b) {tfl.options = "FullyConnectedOptions", fusedActivationFunction = 0 : i32, keepNumDims = false, asymmetricQuantizeInputs = false, tfl.version = 1 : i32, tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = true}} : (tensor<1x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %table = "tfl.pseudo_const"() {value = dense<[[1.0, 0.5, 0.0], [0.25, -1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]> : tensor<4x3xf32>} : () -> tensor<4x3xf32>
  %1 = "tfl.gather"(%table, %ids) {axis = 0 : i32, batchDims = 0 : i32, tfl.version = 1 : i32, tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = true}} : (tensor<4x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>
  return %0, %1 : tensor<1x2xf32>, tensor<2x3xf32>
}

// -----

// float16: a constant two ops read is stored once as float16 and dequantized once.
// CHECK-LABEL: func @float16_shared
// CHECK: %[[H:.*]] = "tfl.pseudo_const"() {value = dense<5.000000e-01> : tensor<4xf16>}
// CHECK-NEXT: %[[D:.*]] = "tfl.dequantize"(%[[H]]) : (tensor<4xf16>) -> tensor<4xf32>
// CHECK-NOT: tfl.dequantize
// CHECK: "tfl.add"(%arg0, %[[D]])
// CHECK: "tfl.mul"(%{{.*}}, %[[D]])
func.func @float16_shared(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c = "tfl.pseudo_const"() {value = dense<0.5> : tensor<4xf32>} : () -> tensor<4xf32>
  %0 = "tfl.add"(%x, %c) {fusedActivationFunction = 0 : i32, tfq.spec = {activation_bits = 8 : i64, method = "float16", per_channel = true}} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = "tfl.mul"(%0, %c) {fusedActivationFunction = 0 : i32, tfq.spec = {activation_bits = 8 : i64, method = "float16", per_channel = true}} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// Mixed widths: fc2 has 16-bit activations between int8 fc1 and fc3. fc2 reads the int16
// requantization of fc1's int8 result and writes int16; fc3 reads the int8 requantization of it
// (the qcast/dcast pairs tfq-tfl-post-quantize turns into tfl.quantize).
// CHECK-LABEL: func @mixed_widths
// CHECK: %[[F1:.*]] = "tfl.fully_connected"({{.*}} -> tensor<1x4x!quant.uniform<i8:f32, 5.000000e-02:2>>
// CHECK: %[[Q1W:.*]] = quant.qcast %{{.*}} to tensor<1x4x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-04>>
// CHECK: %[[F2:.*]] = "tfl.fully_connected"(%[[Q1W]], {{.*}} -> tensor<1x4x!quant.uniform<i16<-32767:32767>:f32, 3.000000e-04>>
// CHECK: %[[Q2N:.*]] = quant.qcast %{{.*}} to tensor<1x4x!quant.uniform<i8:f32, 4.000000e-02:1>>
// CHECK: "tfl.fully_connected"(%[[Q2N]], {{.*}} -> tensor<1x4x!quant.uniform<i8:f32, 3.000000e-02:-1>>
func.func @mixed_widths(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %w = "tfl.pseudo_const"() {value = dense<0.5> : tensor<4x4xf32>} : () -> tensor<4x4xf32>
  %none = "tfl.no_value"() {value} : () -> none
  %q0 = quant.qcast %x : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 0.1:-3>>
  %d0 = quant.dcast %q0 : tensor<1x4x!quant.uniform<i8:f32, 0.1:-3>> to tensor<1x4xf32>
  %0 = "tfl.fully_connected"(%d0, %w, %none) {fusedActivationFunction = 0 : i32, keepNumDims = false, tfl.options = "FullyConnectedOptions", tfl.version = 1 : i32, weightsFormat = 0 : i32, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}} : (tensor<1x4xf32>, tensor<4x4xf32>, none) -> tensor<1x4xf32>
  %q1 = quant.qcast %0 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 0.05:2>>
  %d1 = quant.dcast %q1 : tensor<1x4x!quant.uniform<i8:f32, 0.05:2>> to tensor<1x4xf32>
  %q1w = quant.qcast %d1 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i16<-32767:32767>:f32, 0.0002>>
  %d1w = quant.dcast %q1w : tensor<1x4x!quant.uniform<i16<-32767:32767>:f32, 0.0002>> to tensor<1x4xf32>
  %1 = "tfl.fully_connected"(%d1w, %w, %none) {fusedActivationFunction = 0 : i32, keepNumDims = false, tfl.options = "FullyConnectedOptions", tfl.version = 1 : i32, weightsFormat = 0 : i32, tfq.spec = {activation_bits = 16 : i64, method = "static", per_channel = true}} : (tensor<1x4xf32>, tensor<4x4xf32>, none) -> tensor<1x4xf32>
  %q2 = quant.qcast %1 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i16<-32767:32767>:f32, 0.0003>>
  %d2 = quant.dcast %q2 : tensor<1x4x!quant.uniform<i16<-32767:32767>:f32, 0.0003>> to tensor<1x4xf32>
  %q2n = quant.qcast %d2 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 0.04:1>>
  %d2n = quant.dcast %q2n : tensor<1x4x!quant.uniform<i8:f32, 0.04:1>> to tensor<1x4xf32>
  %2 = "tfl.fully_connected"(%d2n, %w, %none) {fusedActivationFunction = 0 : i32, keepNumDims = false, tfl.options = "FullyConnectedOptions", tfl.version = 1 : i32, weightsFormat = 0 : i32, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}} : (tensor<1x4xf32>, tensor<4x4xf32>, none) -> tensor<1x4xf32>
  %q3 = quant.qcast %2 : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 0.03:-1>>
  %d3 = quant.dcast %q3 : tensor<1x4x!quant.uniform<i8:f32, 0.03:-1>> to tensor<1x4xf32>
  return %d3 : tensor<1x4xf32>
}
