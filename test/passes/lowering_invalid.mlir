// Malformed quantized ops are errors at the op in both lowerings, not Python exceptions: the
// typed op's verifier (`_tfq.QuantizedOp.verify`) checks kind, op_attrs, activation and the
// quantization parameters carried by its operand and result types.
// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-xla -verify-diagnostics
// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-tf -verify-diagnostics

!xq = !quant.uniform<i8:f32, 5.000000e-02:-3>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01:-128>
func.func @conv_without_strides(%x: tensor<1x4x4x2x!xq>, %w: tensor<3x3x2x3x!wq>) -> tensor<1x4x4x3x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind conv2d: op_attrs requires attribute 'strides' (an array of 4 integers)}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], padding = "SAME"}, activation = "NONE"} : (tensor<1x4x4x2x!xq>, tensor<3x3x2x3x!wq>) -> tensor<1x4x4x3x!yq>
  return %y : tensor<1x4x4x3x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @kind_not_a_string(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op attribute 'kind' must be a string}}
  %y = "tfq.quantized_op"(%x, %w) {kind = 3 : i64, op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @missing_activation(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op requires attribute 'activation'}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @matmul_of_vectors(%x: tensor<3x!xq>, %w: tensor<3x2x!wq>) -> tensor<2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul operand #0 must have rank 2, got tensor<3x!quant.uniform<i8:f32, 5.000000e-02>>}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<3x!xq>, tensor<3x2x!wq>) -> tensor<2x!yq>
  return %y : tensor<2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @unknown_kind(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op has unknown kind 'conv3d'; the kinds are conv2d, depthwise_conv2d, matmul, batch_matmul, einsum, gather}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "conv3d", op_attrs = {}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @unknown_activation(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul has unknown activation 'TANH'; the activations are NONE, RELU, RELU6}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "TANH"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @weight_not_quantized(%x: tensor<4x3x!xq>, %w: tensor<3x2xi8>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the weight must have a !quant.uniform type, got tensor<3x2xi8>}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2xi8>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @integer_input(%x: tensor<4x3xi8>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the input must be f32 or !quant.uniform, got tensor<4x3xi8>}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3xi8>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32:1, {5.000000e-02,1.000000e-01,2.000000e-01}>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @per_axis_input(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the input must be quantized per tensor}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32:1, {1.000000e-01,2.000000e-01}>
func.func @per_axis_result(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the result must be f32 or quantized per tensor (f32 with a dynamic-range input)}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @dynamic_with_quantized_result(%x: tensor<4x3xf32>, %w: tensor<3x2x!wq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the result must be f32 or quantized per tensor (f32 with a dynamic-range input)}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3xf32>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32, 5.000000e-04>
func.func @quantized_bias_on_dynamic_input(%x: tensor<4x3xf32>, %w: tensor<3x2x!wq>, %b: tensor<2x!bq>) -> tensor<4x2xf32> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: with a dynamic-range input the bias must be f32}}
  %y = "tfq.quantized_op"(%x, %w, %b) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3xf32>, tensor<3x2x!wq>, tensor<2x!bq>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @float_bias_on_static_input(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>, %b: tensor<2xf32>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the bias must be !quant.uniform<i32...>, got tensor<2xf32>}}
  %y = "tfq.quantized_op"(%x, %w, %b) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>, tensor<2xf32>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!bq = !quant.uniform<i8:f32, 5.000000e-04>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @int8_bias(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>, %b: tensor<2x!bq>) -> tensor<4x2x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the bias must be !quant.uniform<i32...>, got tensor<2x!quant.uniform<i8:f32, 5.000000e-04>>}}
  %y = "tfq.quantized_op"(%x, %w, %b) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>, tensor<2x!bq>) -> tensor<4x2x!yq>
  return %y : tensor<4x2x!yq>
}

// -----

!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
func.func @integer_result(%x: tensor<4x3x!xq>, %w: tensor<3x2x!wq>) -> tensor<4x2xi8> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind matmul: the result must be f32 or !quant.uniform, got tensor<4x2xi8>}}
  %y = "tfq.quantized_op"(%x, %w) {kind = "matmul", op_attrs = {T = f32}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2xi8>
  return %y : tensor<4x2xi8>
}

// -----

!tq = !quant.uniform<i8<-127:127>:f32, 2.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @gather_retyped(%i: tensor<3xi32>, %t: tensor<10x4x!tq>, %axis: tensor<i32>) -> tensor<3x4x!yq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind gather: a gather's result must have its table's element type}}
  %y = "tfq.quantized_op"(%t, %i, %axis) {kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}, activation = "NONE"} : (tensor<10x4x!tq>, tensor<3xi32>, tensor<i32>) -> tensor<3x4x!yq>
  return %y : tensor<3x4x!yq>
}

// -----

!tq = !quant.uniform<i8<-127:127>:f32, 2.000000e-02>
func.func @gather_without_axis(%i: tensor<3xi32>, %t: tensor<10x4x!tq>) -> tensor<3x4x!tq> {
  // expected-error@+1 {{'tfq.quantized_op' op of kind gather}}
  %y = "tfq.quantized_op"(%t, %i) {kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}, activation = "NONE"} : (tensor<10x4x!tq>, tensor<3xi32>) -> tensor<3x4x!tq>
  return %y : tensor<3x4x!tq>
}

// -----

// A per-channel weight must run along the op's output channel: axis 0 of a MatMul weight
// (without transpose_b) is contracted.
!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32:0, {1.000000e-02,2.000000e-02,3.000000e-02}>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @weight_axis_not_output_channel(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %q = quant.qcast %x : tensor<4x3xf32> to tensor<4x3x!xq>
  %wi = "tf.Const"() {value = dense<1> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  // expected-error@+1 {{matmul: per-channel weight axis 0 is not the output channel axis 1}}
  %y = "tfq.quantized_op"(%q, %w) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>) -> tensor<4x2x!yq>
  %r = quant.dcast %y : tensor<4x2x!yq> to tensor<4x2xf32>
  return %r : tensor<4x2xf32>
}
