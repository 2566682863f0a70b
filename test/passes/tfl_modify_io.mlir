// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-tfl-modify-io{input-type=int8 output-type=int8})' | filecheck %s --check-prefix=INT8
// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-tfl-modify-io{input-type=uint8 output-type=uint8})' | filecheck %s --check-prefix=UINT8
// RUN: tfquant-opt %s -split-input-file -tfq-tfl-modify-io | filecheck %s --check-prefix=FLOAT

!i8a = !quant.uniform<i8:f32, 0.01:-43>
!i8b = !quant.uniform<i8:f32, 0.02:-128>

// INT8-LABEL: func @io
// INT8-SAME: (%[[X:.*]]: tensor<1x4x!quant.uniform<i8:f32, 1.000000e-02:-43>>) -> tensor<1x4x!quant.uniform<i8:f32, 2.000000e-02:-128>>
// INT8-NEXT: %[[R:.*]] = "tfl.relu"(%[[X]])
// INT8-NEXT: return %[[R]]
// UINT8-LABEL: func @io
// UINT8-SAME: (%[[X:.*]]: tensor<1x4x!quant.uniform<u8:f32, 1.000000e-02:85>>) -> tensor<1x4x!quant.uniform<u8:f32, 2.000000e-02>>
// UINT8-NEXT: %[[Q:.*]] = "tfl.quantize"(%[[X]]) : {{.*}} -> tensor<1x4x!quant.uniform<i8:f32, 1.000000e-02:-43>>
// UINT8-NEXT: %[[R:.*]] = "tfl.relu"(%[[Q]])
// UINT8-NEXT: %[[O:.*]] = "tfl.quantize"(%[[R]]) : {{.*}} -> tensor<1x4x!quant.uniform<u8:f32, 2.000000e-02>>
// UINT8-NEXT: return %[[O]]
// FLOAT-LABEL: func @io
// FLOAT-SAME: (%{{.*}}: tensor<1x4xf32>) -> tensor<1x4xf32>
func.func @io(%x: tensor<1x4xf32>) -> tensor<1x4xf32> attributes {tfl.signature_key = "serving_default", tfl.signature_inputs = ["x"], tfl.signature_outputs = ["y"]} {
  %q = "tfl.quantize"(%x) : (tensor<1x4xf32>) -> tensor<1x4x!i8a>
  %0 = "tfl.relu"(%q) : (tensor<1x4x!i8a>) -> tensor<1x4x!i8b>
  %d = "tfl.dequantize"(%0) : (tensor<1x4x!i8b>) -> tensor<1x4xf32>
  return %d : tensor<1x4xf32>
}
