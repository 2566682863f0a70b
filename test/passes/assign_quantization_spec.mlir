// RUN: tfquant-opt %s -tfq-assign-quantization-spec | filecheck %s
// RUN: tfquant-opt %s -tfq-assign-quantization-spec='method=dynamic_range per-channel=false min-weight-elements=4' | filecheck %s --check-prefix=DYN
// RUN: tfquant-opt %s -tfq-assign-quantization-spec='method=weight_only' | filecheck %s --check-prefix=SMALL
// RUN: tfquant-opt %s -tfq-assign-quantization-spec='activation-bits=16' | filecheck %s --check-prefix=W16
// RUN: tfquant-opt %s -tfq-assign-quantization-spec='units=[{"op_type":"Conv2D","method":"no_quantize"},{"node_name":"model/dense_1/.*","method":"dynamic_range"},{"node_name":"model/dense.*","method":"static","activation_bits":16},{"func_name":"other","method":"weight_only"},{"op_type":"Mat","method":"float16"}] min-weight-elements=2' | filecheck %s --check-prefix=UNITS
// The remarks of calls left float, in the same run.
// RUN: tfquant-opt %s -tfq-assign-quantization-spec='units=[{"op_type":"Conv2D","method":"no_quantize"},{"node_name":"model/dense_1/.*","method":"dynamic_range"},{"node_name":"model/dense.*","method":"static","activation_bits":16},{"func_name":"other","method":"weight_only"},{"op_type":"Mat","method":"float16"}] min-weight-elements=2' -verify-diagnostics
// A unit-wise spec that matches no call (op_type matches in full: "Mat" is not "MatMul") is a warning naming it.
// RUN: tfquant-opt %s -tfq-assign-quantization-spec='units=[{"op_type":"Conv2D","method":"no_quantize"},{"node_name":"model/dense_1/.*","method":"dynamic_range"},{"node_name":"model/dense.*","method":"static","activation_bits":16},{"func_name":"other","method":"weight_only"},{"op_type":"Mat","method":"float16"}] min-weight-elements=2' 2>&1 >/dev/null | filecheck %s --check-prefix=WARN
// WARN: unit-wise quantization spec 4 (op_type='Mat') matches no quantizable op
// WARN-NOT: unit-wise quantization spec {{[0-3]}}
// Malformed unit-wise specs are errors, and nothing runs.
// RUN: not tfquant-opt %s -tfq-assign-quantization-spec='units=[{"method":"static"}]' 2>&1 | filecheck %s --check-prefix=NONAME
// NONAME: error: unit-wise spec 0 names no op_type, node_name or func_name
// RUN: not tfquant-opt %s -tfq-assign-quantization-spec='units=[{"op_type":"MatMul","bits":16}]' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// UNKNOWN: error: unit-wise spec 0 has unknown key 'bits'
// RUN: not tfquant-opt %s -tfq-assign-quantization-spec='units=[{"op_type":"(","method":"static"}]' 2>&1 | filecheck %s --check-prefix=REGEX
// REGEX: error: unit-wise spec 0: op_type '(' is not a regular expression
// RUN: not tfquant-opt %s -tfq-assign-quantization-spec='units=[{"op_type":"MatMul","method":"int4"}]' 2>&1 | filecheck %s --check-prefix=METHOD
// METHOD: error: unknown quantization method 'int4'
// RUN: not tfquant-opt %s -tfq-assign-quantization-spec='units={"op_type":"MatMul"}' 2>&1 | filecheck %s --check-prefix=LIST
// LIST: error: unit-wise specs must be a JSON list
// RUN: not tfquant-opt %s -tfq-assign-quantization-spec='units=[{op_type:MatMul}]' 2>&1 | filecheck %s --check-prefix=JSON
// JSON: error: unit-wise specs are not valid JSON

// By default every lifted call is static int8 per channel. A call whose composite has no
// quantized form (MatMul + Sigmoid) stays float: method no_quantize and the reason. A call that
// is not lifted gets no spec.
// CHECK-LABEL: func @serving_default
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_conv2d_fn_1, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}}
// CHECK-NEXT: "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_2, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}}
// CHECK-NEXT: "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_2, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}}
// CHECK-NEXT: "tf.PartitionedCall"({{.*}}f = @composite_matmul_with_sigmoid_fn_3, tfq.float_reason = "no quantized form for this pattern", tfq.spec = {activation_bits = 8 : i64, method = "no_quantize", per_channel = true}}
// CHECK-NEXT: "tf.PartitionedCall"({{.*}}f = @helper} :
// CHECK-LABEL: func @other
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_4, tfq.spec = {activation_bits = 8 : i64, method = "static", per_channel = true}}
// CHECK-NOT: tfq.spec
// Top-level dynamic range per tensor: weights of at least min-weight-elements (4) elements are
// quantized; @other's 2-element weight stays float and says so.
// DYN-LABEL: func @serving_default
// DYN: @composite_conv2d_fn_1, tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = false}}
// DYN-NEXT: @composite_matmul_fn_2, tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = false}}
// DYN-NEXT: @composite_matmul_fn_2, tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = false}}
// DYN-LABEL: func @other
// DYN: @composite_matmul_fn_4, tfq.float_reason = "its weight has 2 elements, fewer than min_num_elements_for_weights (4)", tfq.spec = {activation_bits = 8 : i64, method = "no_quantize", per_channel = true}}
// Weight-only with the default min-weight-elements (1024): these small weights all stay float.
// SMALL: @composite_conv2d_fn_1, tfq.float_reason = "its weight has 6 elements, fewer than min_num_elements_for_weights (1024)", tfq.spec = {{{.*}}method = "no_quantize"
// SMALL-NEXT: @composite_matmul_fn_2, tfq.float_reason = "its weight has 4 elements, fewer than min_num_elements_for_weights (1024)"
// SMALL-NEXT: @composite_matmul_fn_2, tfq.float_reason = "its weight has 4 elements, fewer than min_num_elements_for_weights (1024)"
// SMALL-NOT: method = "weight_only"
// The top-level activation bits reach every static call.
// W16: @composite_conv2d_fn_1, tfq.spec = {activation_bits = 16 : i64, method = "static", per_channel = true}}
// W16-NEXT: @composite_matmul_fn_2, tfq.spec = {activation_bits = 16 : i64, method = "static", per_channel = true}}
// W16-NEXT: @composite_matmul_fn_2, tfq.spec = {activation_bits = 16 : i64, method = "static", per_channel = true}}
// Unit-wise specs, first match wins: the Conv2D (op_type) is excluded; model/dense_1 (node_name)
// is dynamic range although spec 2 matches it too; model/dense takes spec 2's 16 bits; @other's
// call (func_name) is weight-only, its 2 elements reaching min-weight-elements.
// UNITS-LABEL: func @serving_default
// UNITS: @composite_conv2d_fn_1, tfq.float_reason = "excluded by unit-wise quantization spec 0 (op_type='Conv2D')", tfq.spec = {activation_bits = 8 : i64, method = "no_quantize", per_channel = true}}
// UNITS-NEXT: @composite_matmul_fn_2, tfq.spec = {activation_bits = 16 : i64, method = "static", per_channel = true}}
// UNITS-NEXT: @composite_matmul_fn_2, tfq.spec = {activation_bits = 8 : i64, method = "dynamic_range", per_channel = true}}
// UNITS-NEXT: @composite_matmul_with_sigmoid_fn_3, tfq.float_reason = "no quantized form for this pattern"
// UNITS-LABEL: func @other
// UNITS: @composite_matmul_fn_4, tfq.spec = {activation_bits = 8 : i64, method = "weight_only", per_channel = true}}
func.func @serving_default(%img: tensor<1x4x4x2xf32>, %x: tensor<1x2xf32>) -> (tensor<1x4x4x3xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) {
  %wc = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  // expected-remark@+1 {{stays float: excluded by unit-wise quantization spec 0 (op_type='Conv2D')}}
  %0 = "tf.PartitionedCall"(%img, %wc) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_conv2d_fn_1} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  %1 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_2} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("model/dense/MatMul")
  %2 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_2} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("model/dense_1/MatMul")
  // expected-remark@+1 {{stays float: no quantized form for this pattern}}
  %3 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_with_sigmoid_fn_3} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %4 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], config = "", config_proto = "", executor_type = "", f = @helper} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0, %1, %2, %3, %4 : tensor<1x4x4x3xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>
}
func.func @other(%x: tensor<1x2xf32>) -> tensor<1x1xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x1xf32>, dtype = f32} : () -> tensor<2x1xf32>
  %0 = "tf.PartitionedCall"(%x, %w) {Tin = [f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_matmul_fn_4} : (tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x1xf32>
  return %0 : tensor<1x1xf32>
}
func.func private @composite_conv2d_fn_1(%a: tensor<1x4x4x2xf32>, %w: tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32> {
  %c = "tf.Conv2D"(%a, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32>
  return %c : tensor<1x4x4x3xf32>
}
func.func private @composite_matmul_fn_2(%a: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %m : tensor<1x2xf32>
}
func.func private @composite_matmul_with_sigmoid_fn_3(%a: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %s = "tf.Sigmoid"(%m) {T = f32} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  return %s : tensor<1x2xf32>
}
func.func private @composite_matmul_fn_4(%a: tensor<1x2xf32>, %w: tensor<2x1xf32>) -> tensor<1x1xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x1xf32>
  return %m : tensor<1x1xf32>
}
func.func private @helper(%a: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %m = "tf.MatMul"(%a, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %m : tensor<1x2xf32>
}
