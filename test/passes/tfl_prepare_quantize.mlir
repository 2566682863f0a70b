// RUN: tfquant-opt %s -split-input-file -tfq-tfl-prepare-quantize | filecheck %s
// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-tfl-prepare-quantize{activation-bits=16})' | filecheck %s --check-prefix=I16
// RUN: tfquant-opt %s -split-input-file '--pass-pipeline=builtin.module(tfq-tfl-prepare-quantize{method=dynamic_range min-weight-elements=8})' | filecheck %s --check-prefix=DYN
// RUN: tfquant-opt %s -split-input-file --remarks -tfq-tfl-prepare-quantize 2>&1 >/dev/null | filecheck %s --check-prefix=REMARK
// RUN: tfquant-opt %s -split-input-file -tfq-tfl-prepare-quantize='units=[{"node_name":"fc2","method":"static","activation_bits":16}]' 2>/dev/null | filecheck %s --check-prefix=MIX

// A conv feeding a reshape and a float-only op: one point on the input, one shared point on the
// conv's result (the reshape's input), one on the reshape's result; weights and biases get none;
// tfl.exp has no quantized form and stays float with a remark.
// CHECK-LABEL: func @conv_reshape_exp
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x4x4x1xf32>
// CHECK: %[[P0:.*]] = "tfq.calibration_point"(%[[X]]) {activation_bits = 8 : i64, id = 0 : i64, method = "CALIBRATION_METHOD_MIN_MAX"}
// CHECK: %[[C:.*]] = "tfl.conv_2d"(%[[P0]], %{{.*}}, %{{.*}}) {{.*}}tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}
// CHECK: %[[P1:.*]] = "tfq.calibration_point"(%[[C]]) {activation_bits = 8 : i64, id = 1 : i64
// CHECK: %[[R:.*]] = "tfl.reshape"(%[[P1]], %{{.*}})
// CHECK: %[[P2:.*]] = "tfq.calibration_point"(%[[R]]) {activation_bits = 8 : i64, id = 2 : i64
// CHECK: "tfl.exp"(%[[P2]]) {{{.*}}tfq.float_reason = "tfquant has no quantized form of EXP", tfq.spec = {{.*}}"no_quantize"
// CHECK-NOT: tfq.calibration_point
// I16: "tfq.calibration_point"(%{{.*}}) {activation_bits = 16 : i64, id = 0 : i64
// DYN-NOT: tfq.calibration_point
// DYN: "tfl.conv_2d"{{.*}}tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = true}
// DYN-NOT: tfl.reshape{{.*}}tfq.spec
// REMARK: remark: stays float: tfquant has no quantized form of EXP
func.func @conv_reshape_exp(%x: tensor<1x4x4x1xf32>) -> tensor<1x32xf32> {
  %w = "tfl.pseudo_const"() {value = dense<0.5> : tensor<2x3x3x1xf32>} : () -> tensor<2x3x3x1xf32> loc("w")
  %b = "tfl.pseudo_const"() {value = dense<0.1> : tensor<2xf32>} : () -> tensor<2xf32> loc("b")
  %shape = "tfl.pseudo_const"() {value = dense<[1, 32]> : tensor<2xi32>} : () -> tensor<2xi32> loc("shape")
  %0 = "tfl.conv_2d"(%x, %w, %b) {tfl.options = "Conv2DOptions", padding = 0 : i32, strideW = 1 : i32, strideH = 1 : i32, fusedActivationFunction = 1 : i32, dilationWFactor = 1 : i32, dilationHFactor = 1 : i32, tfl.version = 1 : i32} : (tensor<1x4x4x1xf32>, tensor<2x3x3x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32> loc("conv")
  %1 = "tfl.reshape"(%0, %shape) {tfl.version = 1 : i32} : (tensor<1x4x4x2xf32>, tensor<2xi32>) -> tensor<1x32xf32> loc("reshape")
  %2 = "tfl.exp"(%1) {tfl.version = 1 : i32} : (tensor<1x32xf32>) -> tensor<1x32xf32> loc("exp")
  return %2 : tensor<1x32xf32>
}

// -----

// An add of an activation and a constant: a point on the activation only; a QAT range (a
// qcast/dcast pair) is kept and gets no point.
// CHECK-LABEL: func @add_const_and_qat
// CHECK: %[[P0:.*]] = "tfq.calibration_point"(%arg0)
// CHECK: "tfl.add"(%[[P0]], %{{.*}})
// CHECK: %[[P1:.*]] = "tfq.calibration_point"
// CHECK: %[[D:.*]] = quant.dcast
// CHECK: "tfl.mul"(%[[P1]], %[[D]])
// CHECK-NOT: "tfq.calibration_point"(%[[D]])
func.func @add_const_and_qat(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  %c = "tfl.pseudo_const"() {value = dense<1.5> : tensor<4xf32>} : () -> tensor<4xf32>
  %0 = "tfl.add"(%x, %c) {fusedActivationFunction = 0 : i32} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %q = quant.qcast %y : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1:-3>>
  %d = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.1:-3>> to tensor<4xf32>
  %1 = "tfl.mul"(%0, %d) {fusedActivationFunction = 0 : i32} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// x / sqrt(mean(x * x) + eps): the add reaching the divisor through the float sqrt stays float
// (int8 rounding could make it 0), and so does the reshape between them (same scale); the mean
// and the mul before the add stay int8 (the add's float eps keeps the sum positive).
// CHECK-LABEL: func @normalize
// CHECK: "tfl.mul"{{.*}}method = "static"
// CHECK: "tfl.mean"{{.*}}method = "static"
// CHECK: "tfl.add"{{.*}}tfq.float_reason = "its result reaches DIV (div), where int8 rounding could turn a small value into 0"
// CHECK: "tfl.reshape"{{.*}}tfq.float_reason = "its result reaches DIV (div)
// REMARK: remark: stays float: its result reaches DIV (div), where int8 rounding could turn a small value into 0
func.func @normalize(%x: tensor<1x8xf32>) -> tensor<1x8xf32> {
  %axis = "tfl.pseudo_const"() {value = dense<1> : tensor<1xi32>} : () -> tensor<1xi32>
  %eps = "tfl.pseudo_const"() {value = dense<1.0e-6> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %shape = "tfl.pseudo_const"() {value = dense<[1, 1]> : tensor<2xi32>} : () -> tensor<2xi32>
  %0 = "tfl.mul"(%x, %x) {fusedActivationFunction = 0 : i32} : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32> loc("mul")
  %1 = "tfl.mean"(%0, %axis) {keepDims = true} : (tensor<1x8xf32>, tensor<1xi32>) -> tensor<1x1xf32> loc("mean")
  %2 = "tfl.add"(%1, %eps) {fusedActivationFunction = 0 : i32} : (tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x1xf32> loc("add")
  %3 = "tfl.reshape"(%2, %shape) : (tensor<1x1xf32>, tensor<2xi32>) -> tensor<1x1xf32> loc("reshape")
  %4 = "tfl.sqrt"(%3) : (tensor<1x1xf32>) -> tensor<1x1xf32> loc("sqrt")
  %5 = "tfl.div"(%x, %4) {fusedActivationFunction = 0 : i32} : (tensor<1x8xf32>, tensor<1x1xf32>) -> tensor<1x8xf32> loc("div")
  return %5 : tensor<1x8xf32>
}

// -----

// Mixed widths: fc2 has 16-bit activations (a unit rule), fc1 and fc3 int8. Each value read at two
// widths has a point per width, the second reading the first: fc2 reads a 16-bit point chained
// after fc1's 8-bit one, fc3 an 8-bit point chained after fc2's 16-bit one.
// MIX-LABEL: func @mixed_widths
// MIX: %[[P0:.*]] = "tfq.calibration_point"(%arg0) {activation_bits = 8 : i64, id = 0 : i64
// MIX: %[[F1:.*]] = "tfl.fully_connected"(%[[P0]],
// MIX: %[[P1:.*]] = "tfq.calibration_point"(%[[F1]]) {activation_bits = 8 : i64, id = 1 : i64
// MIX: %[[P1W:.*]] = "tfq.calibration_point"(%[[P1]]) {activation_bits = 16 : i64, id = 2 : i64
// MIX: %[[F2:.*]] = "tfl.fully_connected"(%[[P1W]], {{.*}}tfq.spec = {activation_bits = 16 : i64
// MIX: %[[P2:.*]] = "tfq.calibration_point"(%[[F2]]) {activation_bits = 16 : i64, id = 3 : i64
// MIX: %[[P2N:.*]] = "tfq.calibration_point"(%[[P2]]) {activation_bits = 8 : i64, id = 4 : i64
// MIX: %[[F3:.*]] = "tfl.fully_connected"(%[[P2N]], {{.*}}tfq.spec = {activation_bits = 8 : i64
// MIX: "tfq.calibration_point"(%[[F3]]) {activation_bits = 8 : i64, id = 5 : i64
func.func @mixed_widths(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %w = "tfl.pseudo_const"() {value = dense<0.5> : tensor<4x4xf32>} : () -> tensor<4x4xf32> loc("w")
  %none = "tfl.no_value"() {value} : () -> none loc("none")
  %0 = "tfl.fully_connected"(%x, %w, %none) {fusedActivationFunction = 0 : i32, keepNumDims = false, tfl.options = "FullyConnectedOptions", tfl.version = 1 : i32, weightsFormat = 0 : i32} : (tensor<1x4xf32>, tensor<4x4xf32>, none) -> tensor<1x4xf32> loc("fc1")
  %1 = "tfl.fully_connected"(%0, %w, %none) {fusedActivationFunction = 0 : i32, keepNumDims = false, tfl.options = "FullyConnectedOptions", tfl.version = 1 : i32, weightsFormat = 0 : i32} : (tensor<1x4xf32>, tensor<4x4xf32>, none) -> tensor<1x4xf32> loc("fc2")
  %2 = "tfl.fully_connected"(%1, %w, %none) {fusedActivationFunction = 0 : i32, keepNumDims = false, tfl.options = "FullyConnectedOptions", tfl.version = 1 : i32, weightsFormat = 0 : i32} : (tensor<1x4xf32>, tensor<4x4xf32>, none) -> tensor<1x4xf32> loc("fc3")
  return %2 : tensor<1x4xf32>
}
