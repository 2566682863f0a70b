// RUN: tfquant-opt %s -tfq-tfl-convert-qdq | filecheck %s

// A QAT model's float conversion: each quantize/dequantize pair (uint8, TensorFlow's nudged trained
// range; per channel on the weight) becomes qcast/dcast of the int8 twin type.
// CHECK-LABEL: func @qat_conv
// CHECK: %[[Q:.*]] = quant.qcast %arg0 : tensor<1x4x4x1xf32> to tensor<1x4x4x1x!quant.uniform<i8:f32, 0.0078431377187371254:-1>>
// CHECK: %[[X:.*]] = quant.dcast %[[Q]]
// CHECK: %[[WQ:.*]] = quant.qcast %{{.*}} : tensor<2x1x1x1xf32> to tensor<2x1x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.015748031437397003,0.031496062874794006}>>
// CHECK: %[[W:.*]] = quant.dcast %[[WQ]]
// CHECK: "tfl.conv_2d"(%[[X]], %[[W]], %{{.*}})
// CHECK-NOT: tfl.quantize
// CHECK-NOT: tfl.dequantize
func.func @qat_conv(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %q = "tfl.quantize"(%x) : (tensor<1x4x4x1xf32>) -> tensor<1x4x4x1x!quant.uniform<u8:f32, 0.0078431377187371254:127>>
  %d = "tfl.dequantize"(%q) : (tensor<1x4x4x1x!quant.uniform<u8:f32, 0.0078431377187371254:127>>) -> tensor<1x4x4x1xf32>
  %w = "tfl.pseudo_const"() {value = dense<[[[[0.5]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %wq = "tfl.quantize"(%w) : (tensor<2x1x1x1xf32>) -> tensor<2x1x1x1x!quant.uniform<u8<1:255>:f32:0, {0.015748031437397003:128,0.031496062874794006:128}>>
  %wd = "tfl.dequantize"(%wq) : (tensor<2x1x1x1x!quant.uniform<u8<1:255>:f32:0, {0.015748031437397003:128,0.031496062874794006:128}>>) -> tensor<2x1x1x1xf32>
  %b = "tfl.pseudo_const"() {value = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %0 = "tfl.conv_2d"(%d, %wd, %b) {fusedActivationFunction = 1 : i32, padding = 0 : i32, strideW = 1 : i32, strideH = 1 : i32, dilationWFactor = 1 : i32, dilationHFactor = 1 : i32} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32>
  return %0 : tensor<1x4x4x2xf32>
}
