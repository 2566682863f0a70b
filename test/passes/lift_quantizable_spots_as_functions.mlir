// RUN: tfquant-opt %s -split-input-file -tfq-lift-quantizable-spots-as-functions | filecheck %s
// RUN: tfquant-opt %s -split-input-file -tfq-lift-quantizable-spots-as-functions -mlir-print-debuginfo | filecheck %s --check-prefix=LOC

// Conv2D + BiasAdd + Relu6 becomes one call; weight and bias stay constants in the caller.
// CHECK-LABEL: func @conv_bias_relu6
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x4x2xf32>)
// CHECK-DAG: %[[W:.*]] = "tf.Const"() {{.*}} : () -> tensor<1x1x2x3xf32>
// CHECK-DAG: %[[B:.*]] = "tf.Const"() {{.*}} : () -> tensor<3xf32>
// CHECK: %[[C:.*]] = "tf.PartitionedCall"(%[[X]], %[[W]], %[[B]]) {Tin = [f32, f32, f32], Tout = [f32], _tfl_quant_trait = "fully_quantizable", config = "", config_proto = "", executor_type = "", f = @composite_conv2d_with_bias_and_relu6_fn_1} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32>
// CHECK-NOT: "tf.Conv2D"
// CHECK: return %[[C]]
// CHECK: func private @composite_conv2d_with_bias_and_relu6_fn_1(%[[A:[a-z0-9_]+]]: tensor<1x4x4x2xf32>, %[[AW:[a-z0-9_]+]]: tensor<1x1x2x3xf32>, %[[AB:[a-z0-9_]+]]: tensor<3xf32>) -> tensor<1x4x4x3xf32> attributes {tfq.weight_operand = 1 : i64}
// CHECK: %[[IC:.*]] = "tf.Conv2D"(%[[A]], %[[AW]])
// CHECK: %[[IB:.*]] = "tf.BiasAdd"(%[[IC]], %[[AB]])
// CHECK: %[[IR:.*]] = "tf.Relu6"(%[[IB]])
// CHECK: return %[[IR]]
// The call takes the conv's location, the ops inside keep theirs.
// LOC: "tf.PartitionedCall"{{.*}} loc(#[[CONV:loc[0-9]+]])
// LOC: "tf.Conv2D"{{.*}} loc(#[[CONV]])
// LOC: "tf.BiasAdd"{{.*}} loc(#[[BIAS:loc[0-9]+]])
// LOC: "tf.Relu6"{{.*}} loc(#[[RELU:loc[0-9]+]])
// LOC: #[[CONV]] = loc("model/conv")
// LOC: #[[BIAS]] = loc("model/bias")
// LOC: #[[RELU]] = loc("model/relu6")
func.func @conv_bias_relu6(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x3xf32>, dtype = f32} : () -> tensor<1x1x2x3xf32>
  %c = "tf.Conv2D"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x4x4x2xf32>, tensor<1x1x2x3xf32>) -> tensor<1x4x4x3xf32> loc("model/conv")
  %b = "tf.Const"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %a = "tf.BiasAdd"(%c, %b) {T = f32, data_format = "NHWC"} : (tensor<1x4x4x3xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32> loc("model/bias")
  %r = "tf.Relu6"(%a) {T = f32} : (tensor<1x4x4x3xf32>) -> tensor<1x4x4x3xf32> loc("model/relu6")
  return %r : tensor<1x4x4x3xf32>
}

// -----

// Two MatMuls in a chain: with bias and relu, then with relu only (no bias); one counter for N.
// CHECK-LABEL: func @matmul_chain
// CHECK: %[[M1:.*]] = "tf.PartitionedCall"(%{{.*}}, %{{.*}}, %{{.*}}) {{.*}}f = @composite_matmul_with_bias_and_relu_fn_1}
// CHECK: %[[M2:.*]] = "tf.PartitionedCall"(%[[M1]], %{{.*}}) {{.*}}f = @composite_matmul_with_relu_fn_2}
// CHECK: return %[[M2]]
// CHECK: func private @composite_matmul_with_bias_and_relu_fn_1
// CHECK: "tf.MatMul"
// CHECK: "tf.BiasAdd"
// CHECK: "tf.Relu"
// CHECK: func private @composite_matmul_with_relu_fn_2
// CHECK: "tf.MatMul"
// CHECK-NEXT: "tf.Relu"
func.func @matmul_chain(%x: tensor<4x2xf32>) -> tensor<4x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %b = "tf.Const"() {value = dense<1.0> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %m = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
  %a = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  %r = "tf.Relu"(%a) {T = f32} : (tensor<4x2xf32>) -> tensor<4x2xf32>
  %m2 = "tf.MatMul"(%r, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<4x2xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
  %r2 = "tf.Relu"(%m2) {T = f32} : (tensor<4x2xf32>) -> tensor<4x2xf32>
  return %r2 : tensor<4x2xf32>
}

// -----

// Depthwise conv alone; the name skips symbols that already exist.
// CHECK-LABEL: func @depthwise
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_depthwise_conv2d_fn_2}
// CHECK: func private @composite_depthwise_conv2d_fn_1()
// CHECK: func private @composite_depthwise_conv2d_fn_2
// CHECK: "tf.DepthwiseConv2dNative"
func.func @depthwise(%x: tensor<1x3x3x2xf32>) -> tensor<1x3x3x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x1xf32>, dtype = f32} : () -> tensor<1x1x2x1xf32>
  %d = "tf.DepthwiseConv2dNative"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]} : (tensor<1x3x3x2xf32>, tensor<1x1x2x1xf32>) -> tensor<1x3x3x2xf32>
  return %d : tensor<1x3x3x2xf32>
}
func.func private @composite_depthwise_conv2d_fn_1() {
  return
}

// -----

// Einsum and BatchMatMulV2 with the constant on the left: the call takes the activation first,
// the body keeps the op's operand order and tfq.weight_operand records it.
// CHECK-LABEL: func @weight_on_the_left
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x6xf32>)
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : () -> tensor<5x6xf32>
// CHECK: %[[E:.*]] = "tf.PartitionedCall"(%[[X]], %[[W]]) {{.*}}f = @composite_einsum_fn_1}
// CHECK: %[[V:.*]] = "tf.Const"() {{.*}} : () -> tensor<3x3xf32>
// CHECK: "tf.PartitionedCall"(%[[E]], %[[V]]) {{.*}}f = @composite_batch_matmul_fn_2}
// CHECK: func private @composite_einsum_fn_1(%[[A:[a-z0-9_]+]]: tensor<2x3x6xf32>, %[[AW:[a-z0-9_]+]]: tensor<5x6xf32>) -> tensor<2x3x5xf32> attributes {tfq.weight_operand = 0 : i64}
// CHECK: "tf.Einsum"(%[[AW]], %[[A]]) {{.*}}equation = "kj,bij->bik"
// CHECK: func private @composite_batch_matmul_fn_2(%[[BA:[a-z0-9_]+]]: tensor<2x3x5xf32>, %[[BW:[a-z0-9_]+]]: tensor<3x3xf32>) -> tensor<2x3x5xf32> attributes {tfq.weight_operand = 0 : i64}
// CHECK: "tf.BatchMatMulV2"(%[[BW]], %[[BA]])
func.func @weight_on_the_left(%x: tensor<2x3x6xf32>) -> tensor<2x3x5xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<5x6xf32>, dtype = f32} : () -> tensor<5x6xf32>
  %e = "tf.Einsum"(%w, %x) {N = 2 : i64, T = f32, equation = "kj,bij->bik"} : (tensor<5x6xf32>, tensor<2x3x6xf32>) -> tensor<2x3x5xf32>
  %v = "tf.Const"() {value = dense<1.0> : tensor<3x3xf32>, dtype = f32} : () -> tensor<3x3xf32>
  %b = "tf.BatchMatMulV2"(%v, %e) {T = f32, adj_x = false, adj_y = false} : (tensor<3x3xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  return %b : tensor<2x3x5xf32>
}

// -----

// An embedding lookup, also when its result is the function's result: the call takes the indices,
// the table and the axis.
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:.*]]: tensor<3x5xi32>)
// CHECK-DAG: %[[T:.*]] = "tf.Const"() {{.*}} : () -> tensor<20x8xf32>
// CHECK-DAG: %[[AX:.*]] = "tf.Const"() {{.*}} : () -> tensor<i32>
// CHECK: %[[G:.*]] = "tf.PartitionedCall"(%[[I]], %[[T]], %[[AX]]) {{.*}}f = @composite_gather_fn_1}
// CHECK: return %[[G]]
// CHECK: func private @composite_gather_fn_1(%[[A:[a-z0-9_]+]]: tensor<3x5xi32>, %[[AT:[a-z0-9_]+]]: tensor<20x8xf32>, %[[AA:[a-z0-9_]+]]: tensor<i32>) -> tensor<3x5x8xf32> attributes {tfq.weight_operand = 0 : i64}
// CHECK: "tf.GatherV2"(%[[AT]], %[[A]], %[[AA]])
func.func @gather(%ids: tensor<3x5xi32>) -> tensor<3x5x8xf32> {
  %t = "tf.Const"() {value = dense<1.0> : tensor<20x8xf32>, dtype = f32} : () -> tensor<20x8xf32>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %g = "tf.GatherV2"(%t, %ids, %axis) {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64} : (tensor<20x8xf32>, tensor<3x5xi32>, tensor<i32>) -> tensor<3x5x8xf32>
  return %g : tensor<3x5x8xf32>
}

// -----

// Private functions are lifted too, composite functions are not.
// CHECK-LABEL: func private @branch
// CHECK: "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_1}
// CHECK-LABEL: func private @composite_matmul_fn_0
// CHECK-NEXT: "tf.Const"
// CHECK-NEXT: "tf.MatMul"
func.func private @branch(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %m = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %m : tensor<1x2xf32>
}
func.func private @composite_matmul_fn_0(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %m = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %m : tensor<1x2xf32>
}

// -----

// Fusion stops where a value has a second user: the conv result feeds a BiasAdd and the return,
// so the conv is lifted alone; a BiasAdd with two users keeps the Relu outside.
// CHECK-LABEL: func @multi_use
// CHECK: %[[C:.*]] = "tf.PartitionedCall"({{.*}}f = @composite_conv2d_fn_1}
// CHECK: "tf.BiasAdd"(%[[C]]
// CHECK: %[[M:.*]] = "tf.PartitionedCall"({{.*}}f = @composite_matmul_with_bias_fn_2}
// CHECK: "tf.Relu"(%[[M]])
// CHECK: return
func.func @multi_use(%x: tensor<1x2x2x1xf32>, %y: tensor<1x1xf32>) -> (tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>) {
  %w = "tf.Const"() {value = dense<1.0> : tensor<1x1x1x1xf32>, dtype = f32} : () -> tensor<1x1x1x1xf32>
  %b = "tf.Const"() {value = dense<1.0> : tensor<1xf32>, dtype = f32} : () -> tensor<1xf32>
  %c = "tf.Conv2D"(%x, %w) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x2x2x1xf32>, tensor<1x1x1x1xf32>) -> tensor<1x2x2x1xf32>
  %a = "tf.BiasAdd"(%c, %b) {T = f32, data_format = "NHWC"} : (tensor<1x2x2x1xf32>, tensor<1xf32>) -> tensor<1x2x2x1xf32>
  %v = "tf.Const"() {value = dense<1.0> : tensor<1x1xf32>, dtype = f32} : () -> tensor<1x1xf32>
  %m = "tf.MatMul"(%y, %v) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x1xf32>
  %mb = "tf.BiasAdd"(%m, %b) {T = f32, data_format = "NHWC"} : (tensor<1x1xf32>, tensor<1xf32>) -> tensor<1x1xf32>
  %r = "tf.Relu"(%mb) {T = f32} : (tensor<1x1xf32>) -> tensor<1x1xf32>
  return %a, %c, %r, %mb : tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>, tensor<1x1xf32>, tensor<1x1xf32>
}

// -----

// Negative: no constant weight, a non-float32 activation, an NCHW conv, a gather with a
// non-constant table, and a BiasAdd of a non-constant are not lifted (the matmul alone is).
// CHECK-LABEL: func @not_lifted
// CHECK: "tf.MatMul"(%{{.*}}, %{{.*}}) {{.*}}(tensor<1x2xf32>, tensor<2x2xf32>)
// CHECK: "tf.MatMul"(%{{.*}}, %{{.*}}) {{.*}}(tensor<1x2xf16>, tensor<2x2xf16>)
// CHECK: "tf.Conv2D"
// CHECK: "tf.GatherV2"
// CHECK: %[[P:.*]] = "tf.PartitionedCall"({{.*}}f = @composite_matmul_fn_1}
// CHECK: "tf.BiasAdd"(%[[P]]
// CHECK-NOT: tf.PartitionedCall
// CHECK: return
func.func @not_lifted(%x: tensor<1x2xf32>, %y: tensor<2x2xf32>, %h: tensor<1x2xf16>, %i: tensor<1x1x2x2xf32>, %ids: tensor<3xi32>, %bias: tensor<2xf32>) -> (tensor<1x2xf32>, tensor<1x2xf16>, tensor<1x2x2x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>) {
  %m = "tf.MatMul"(%x, %y) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %wh = "tf.Const"() {value = dense<1.0> : tensor<2x2xf16>, dtype = f16} : () -> tensor<2x2xf16>
  %mh = "tf.MatMul"(%h, %wh) {T = f16, transpose_a = false, transpose_b = false} : (tensor<1x2xf16>, tensor<2x2xf16>) -> tensor<1x2xf16>
  %wc = "tf.Const"() {value = dense<1.0> : tensor<1x1x2x2xf32>, dtype = f32} : () -> tensor<1x1x2x2xf32>
  %c = "tf.Conv2D"(%i, %wc) {T = f32, data_format = "NCHW", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %g = "tf.GatherV2"(%y, %ids, %axis) {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64} : (tensor<2x2xf32>, tensor<3xi32>, tensor<i32>) -> tensor<3x2xf32>
  %w = "tf.Const"() {value = dense<1.0> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %m2 = "tf.MatMul"(%x, %w) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %ba = "tf.BiasAdd"(%m2, %bias) {T = f32, data_format = "NHWC"} : (tensor<1x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  return %m, %mh, %c, %g, %ba : tensor<1x2xf32>, tensor<1x2xf16>, tensor<1x2x2x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>
}

// -----

// A QAT weight, quant.dcast(quant.qcast(tf.Const)) with its trained (per-channel) type, is a weight:
// the call takes the dcast's result, and the pair stays in the caller for the quantize pass.
// CHECK-LABEL: func @qat_weights
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<1x2x2x2xf32>, %[[Y:[a-z0-9_]+]]: tensor<1x2xf32>, %[[I:[a-z0-9_]+]]: tensor<3xi32>)
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : () -> tensor<1x1x2x2xf32>
// CHECK-NEXT: %[[WQ:.*]] = quant.qcast %[[W]] : tensor<1x1x2x2xf32> to tensor<1x1x2x2x!quant.uniform<i8<-127:127>:f32:3, {0.0078740157480314959,0.003937007874015748:42}>>
// CHECK-NEXT: %[[WD:.*]] = quant.dcast %[[WQ]]
// CHECK: %[[C:.*]] = "tf.PartitionedCall"(%[[X]], %[[WD]], %{{.*}}) {{.*}}f = @composite_conv2d_with_bias_and_relu_fn_1} : (tensor<1x2x2x2xf32>, tensor<1x1x2x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
// CHECK: %[[VD:.*]] = quant.dcast %{{.*}} : tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<2x2xf32>
// CHECK: "tf.PartitionedCall"(%[[Y]], %[[VD]]) {{.*}}f = @composite_matmul_fn_2}
// CHECK: %[[TD:.*]] = quant.dcast %{{.*}} : tensor<4x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<4x2xf32>
// CHECK: "tf.PartitionedCall"(%[[I]], %[[TD]], %{{.*}}) {{.*}}f = @composite_gather_fn_3}
// CHECK-NOT: "tf.Conv2D"
// CHECK: func private @composite_conv2d_with_bias_and_relu_fn_1(%{{.*}}: tensor<1x2x2x2xf32>, %{{.*}}: tensor<1x1x2x2xf32>, %{{.*}}: tensor<2xf32>) -> tensor<1x2x2x2xf32> attributes {tfq.weight_operand = 1 : i64}
// CHECK-NOT: quant.
// CHECK: "tf.Conv2D"
func.func @qat_weights(%x: tensor<1x2x2x2xf32>, %y: tensor<1x2xf32>, %ids: tensor<3xi32>) -> (tensor<1x2x2x2xf32>, tensor<1x2xf32>, tensor<3x2xf32>) {
  %w = "tf.Const"() {value = dense<[[[[0.5, 0.1], [-0.3, -0.2]]]]> : tensor<1x1x2x2xf32>, dtype = f32} : () -> tensor<1x1x2x2xf32>
  %wq = quant.qcast %w : tensor<1x1x2x2xf32> to tensor<1x1x2x2x!quant.uniform<i8<-127:127>:f32:3, {0.0078740157480314959,0.003937007874015748:42}>>
  %wd = quant.dcast %wq : tensor<1x1x2x2x!quant.uniform<i8<-127:127>:f32:3, {0.0078740157480314959,0.003937007874015748:42}>> to tensor<1x1x2x2xf32>
  %b = "tf.Const"() {value = dense<1.0> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %c = "tf.Conv2D"(%x, %wd) {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : (tensor<1x2x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32>
  %a = "tf.BiasAdd"(%c, %b) {T = f32, data_format = "NHWC"} : (tensor<1x2x2x2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %r = "tf.Relu"(%a) {T = f32} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %v = "tf.Const"() {value = dense<0.5> : tensor<2x2xf32>, dtype = f32} : () -> tensor<2x2xf32>
  %vq = quant.qcast %v : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>>
  %vd = quant.dcast %vq : tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<2x2xf32>
  %m = "tf.MatMul"(%y, %vd) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %t = "tf.Const"() {value = dense<0.25> : tensor<4x2xf32>, dtype = f32} : () -> tensor<4x2xf32>
  %tq = quant.qcast %t : tensor<4x2xf32> to tensor<4x2x!quant.uniform<i8:f32, 0.0078431372549019607>>
  %td = quant.dcast %tq : tensor<4x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<4x2xf32>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %g = "tf.GatherV2"(%td, %ids, %axis) {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64} : (tensor<4x2xf32>, tensor<3xi32>, tensor<i32>) -> tensor<3x2xf32>
  return %r, %m, %g : tensor<1x2x2x2xf32>, tensor<1x2xf32>, tensor<3x2xf32>
}

// -----

// A QAT weight on the left of an Einsum: its qdq pair marks the constant side, as a tf.Const does.
// CHECK-LABEL: func @qat_weight_on_the_left
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x6xf32>)
// CHECK: %[[WD:.*]] = quant.dcast
// CHECK: "tf.PartitionedCall"(%[[X]], %[[WD]]) {{.*}}f = @composite_einsum_fn_1}
// CHECK: func private @composite_einsum_fn_1({{.*}}) -> tensor<2x3x5xf32> attributes {tfq.weight_operand = 0 : i64}
func.func @qat_weight_on_the_left(%x: tensor<2x3x6xf32>) -> tensor<2x3x5xf32> {
  %w = "tf.Const"() {value = dense<1.0> : tensor<5x6xf32>, dtype = f32} : () -> tensor<5x6xf32>
  %wq = quant.qcast %w : tensor<5x6xf32> to tensor<5x6x!quant.uniform<i8:f32, 0.0078431372549019607>>
  %wd = quant.dcast %wq : tensor<5x6x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<5x6xf32>
  %e = "tf.Einsum"(%wd, %x) {N = 2 : i64, T = f32, equation = "kj,bij->bik"} : (tensor<5x6xf32>, tensor<2x3x6xf32>) -> tensor<2x3x5xf32>
  return %e : tensor<2x3x5xf32>
}

// -----

// Negative: a qdq pair of an activation is no weight (two activations are not lifted), and a
// dcast that does not dequantize a qcast of a constant is not one either.
// CHECK-LABEL: func @qat_not_weights
// CHECK-NOT: tf.PartitionedCall
// CHECK: "tf.MatMul"
// CHECK: "tf.MatMul"
// CHECK-NOT: tf.PartitionedCall
// CHECK: return
func.func @qat_not_weights(%x: tensor<1x2xf32>, %y: tensor<2x2xf32>, %s: tensor<2x2xi8>) -> (tensor<1x2xf32>, tensor<1x2xf32>) {
  %yq = quant.qcast %y : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>>
  %yd = quant.dcast %yq : tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<2x2xf32>
  %m = "tf.MatMul"(%x, %yd) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %sq = quant.scast %s : tensor<2x2xi8> to tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>>
  %sd = quant.dcast %sq : tensor<2x2x!quant.uniform<i8:f32, 0.0078431372549019607>> to tensor<2x2xf32>
  %m2 = "tf.MatMul"(%x, %sd) {T = f32, transpose_a = false, transpose_b = false} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %m, %m2 : tensor<1x2xf32>, tensor<1x2xf32>
}
