// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-tf | filecheck %s

// Conv2D in int32: the input zero point is subtracted before the conv (so SAME's zero padding
// is exact), the int8 weight is cast to int32, the int32 bias is added, and the accumulator is
// requantized per channel; the quant casts become quantize / dequantize.
// CHECK-LABEL: func @conv_same
// CHECK: "tf.Round"
// CHECK: %[[Q:.*]] = "tf.Cast"(%{{.*}}) {DstT = i8, SrcT = f32, Truncate = false}
// A cast left in place would sit right after its replacement.
// CHECK-NOT: quant.
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<1> : tensor<3x3x2x3xi8>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[10, 20, 30]> : tensor<3xi32>
// CHECK-NEXT: %[[A32:.*]] = "tf.Cast"(%[[Q]]) {DstT = i32, SrcT = i8, Truncate = false}
// CHECK-NEXT: %[[ZP:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<i32>
// CHECK-NEXT: %[[CENTERED:.*]] = "tf.Sub"(%[[A32]], %[[ZP]]) {T = i32}
// CHECK-NEXT: %[[W32:.*]] = "tf.Cast"(%[[W]]) {DstT = i32, SrcT = i8, Truncate = false}
// CHECK-NEXT: %[[ACC:.*]] = "tf.Conv2D"(%[[CENTERED]], %[[W32]]) {T = i32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true} : {{.*}} -> tensor<1x4x4x3xi32>
// CHECK-NEXT: %[[BIASED:.*]] = "tf.AddV2"(%[[ACC]], %[[B]]) {T = i32}
// CHECK-NEXT: %[[F:.*]] = "tf.Cast"(%[[BIASED]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK-NEXT: %[[M:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-03, 0.00999999977, 1.500000e-02]> : tensor<3xf32>
// CHECK-NEXT: "tf.Mul"(%[[F]], %[[M]])
// CHECK: "tf.ClipByValue"
// CHECK-NEXT: %[[OUT:.*]] = "tf.Cast"({{.*}}) {DstT = i8, SrcT = f32, Truncate = false}
// CHECK-NOT: quant.
// CHECK-NEXT: "tf.Cast"(%[[OUT]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK: %[[R:.*]] = "tf.Mul"
// CHECK-NOT: tfq.quantized_op
// CHECK-NOT: quant.
// CHECK: return %[[R]]
!xq = !quant.uniform<i8:f32, 5.000000e-02:-3>
!wq = !quant.uniform<i8<-127:127>:f32:3, {1.000000e-02,2.000000e-02,3.000000e-02}>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>
!yq = !quant.uniform<i8:f32, 1.000000e-01:-128>
func.func @conv_same(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %q = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!xq>
  %wi = "tf.Const"() {value = dense<1> : tensor<3x3x2x3xi8>, dtype = i8} : () -> tensor<3x3x2x3xi8>
  %w = quant.scast %wi : tensor<3x3x2x3xi8> to tensor<3x3x2x3x!wq>
  %bi = "tf.Const"() {value = dense<[10, 20, 30]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %b = quant.scast %bi : tensor<3xi32> to tensor<3x!bq>
  %y = "tfq.quantized_op"(%q, %w, %b) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}, activation = "RELU"} : (tensor<1x4x4x2x!xq>, tensor<3x3x2x3x!wq>, tensor<3x!bq>) -> tensor<1x4x4x3x!yq>
  %r = quant.dcast %y : tensor<1x4x4x3x!yq> to tensor<1x4x4x3xf32>
  return %r : tensor<1x4x4x3xf32>
}

// -----

// DepthwiseConv2dNative has no int32 CPU kernel: it runs in f32 on the zero-point-corrected int8
// values, its filter scaled per channel by input scale x weight scale (0.05 x [0.01, 0.02]),
// then relu6 in float and quantize at the output scale.
// CHECK-LABEL: func @depthwise
// CHECK-SAME: (%[[A:.*]]: tensor<1x5x5x2xi8>)
// CHECK-NOT: XlaConvV2
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<3x3x2x1xi8>
// CHECK: %[[AF:.*]] = "tf.Cast"(%[[A]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK: %[[CENTERED:.*]] = "tf.Sub"(%[[AF]], %{{.*}}) {T = f32}
// CHECK: %[[WF:.*]] = "tf.Cast"(%[[W]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK: %[[S:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}5.000000e-04], [1.000000e-03]]> : tensor<2x1xf32>
// CHECK: %[[WS:.*]] = "tf.Mul"(%[[WF]], %[[S]])
// CHECK: %[[D:.*]] = "tf.DepthwiseConv2dNative"(%[[CENTERED]], %[[WS]]) {T = f32, {{.*}}padding = "VALID", strides = [1, 2, 2, 1]}
// CHECK: %[[R:.*]] = "tf.Relu6"(%[[D]])
// CHECK: "tf.Mul"(%[[R]], %{{.*}})
// CHECK: "tf.Round"
// CHECK: %[[OUT:.*]] = "tf.Cast"({{.*}}) {DstT = i8, SrcT = f32
// CHECK-NEXT: return %[[OUT]]
!xq = !quant.uniform<i8:f32, 5.000000e-02:2>
!wq = !quant.uniform<i8<-127:127>:f32:2, {1.000000e-02,2.000000e-02}>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @depthwise(%x: tensor<1x5x5x2xi8>) -> tensor<1x2x2x2xi8> {
  %xq = quant.scast %x : tensor<1x5x5x2xi8> to tensor<1x5x5x2x!xq>
  %wi = "tf.Const"() {value = dense<[[[[1], [2]], [[3], [4]], [[5], [6]]], [[[1], [2]], [[3], [4]], [[5], [6]]], [[[1], [2]], [[3], [4]], [[5], [6]]]]> : tensor<3x3x2x1xi8>, dtype = i8} : () -> tensor<3x3x2x1xi8>
  %w = quant.scast %wi : tensor<3x3x2x1xi8> to tensor<3x3x2x1x!wq>
  %y = "tfq.quantized_op"(%xq, %w) {kind = "depthwise_conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "VALID", strides = [1, 2, 2, 1]}, activation = "RELU6"} : (tensor<1x5x5x2x!xq>, tensor<3x3x2x1x!wq>) -> tensor<1x2x2x2x!yq>
  %r = quant.scast %y : tensor<1x2x2x2x!yq> to tensor<1x2x2x2xi8>
  return %r : tensor<1x2x2x2xi8>
}

// -----

// BatchMatMulV2 in int32 on the zero-point-corrected input; the per-channel requantize runs along
// the last axis (0.05 x [0.01, 0.02] / 0.1).
// CHECK-LABEL: func @batch_matmul
// CHECK: %[[CENTERED:.*]] = "tf.Sub"
// CHECK-NEXT: %[[W32:.*]] = "tf.Cast"(%{{.*}}) {DstT = i32, SrcT = i8, Truncate = false} : (tensor<3x2xi8>)
// CHECK-NEXT: %[[ACC:.*]] = "tf.BatchMatMulV2"(%[[CENTERED]], %[[W32]]) {T = i32, adj_x = false, adj_y = false} : {{.*}} -> tensor<2x4x2xi32>
// CHECK-NEXT: "tf.Cast"(%[[ACC]]) {DstT = f32, SrcT = i32
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<[5.000000e-03, 0.00999999977]> : tensor<2xf32>
!xq = !quant.uniform<i8:f32, 5.000000e-02:4>
!wq = !quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @batch_matmul(%x: tensor<2x4x3xi8>) -> tensor<2x4x2xi8> {
  %xq = quant.scast %x : tensor<2x4x3xi8> to tensor<2x4x3x!xq>
  %wi = "tf.Const"() {value = dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  %y = "tfq.quantized_op"(%xq, %w) {kind = "batch_matmul", op_attrs = {T = f32, adj_x = false, adj_y = false}, activation = "NONE"} : (tensor<2x4x3x!xq>, tensor<3x2x!wq>) -> tensor<2x4x2x!yq>
  %r = quant.scast %y : tensor<2x4x2x!yq> to tensor<2x4x2xi8>
  return %r : tensor<2x4x2xi8>
}

// -----

// Einsum in int32 keeps its equation: its output order needs no Transpose.
// CHECK-LABEL: func @einsum
// CHECK: %[[CENTERED:.*]] = "tf.Sub"
// CHECK-NEXT: %[[W32:.*]] = "tf.Cast"
// CHECK-NEXT: "tf.Einsum"(%[[CENTERED]], %[[W32]]) {N = 2 : i64, T = i32, equation = "abc,cd->adb"} : {{.*}} -> tensor<2x4x5xi32>
// CHECK-NOT: "tf.Transpose"
!xq = !quant.uniform<i8:f32, 5.000000e-02:-1>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @einsum(%x: tensor<2x5x3xi8>) -> tensor<2x4x5xi8> {
  %xq = quant.scast %x : tensor<2x5x3xi8> to tensor<2x5x3x!xq>
  %wi = "tf.Const"() {value = dense<1> : tensor<3x4xi8>, dtype = i8} : () -> tensor<3x4xi8>
  %w = quant.scast %wi : tensor<3x4xi8> to tensor<3x4x!wq>
  %y = "tfq.quantized_op"(%xq, %w) {kind = "einsum", op_attrs = {N = 2 : i64, T = f32, equation = "abc,cd->adb"}, activation = "NONE"} : (tensor<2x5x3x!xq>, tensor<3x4x!wq>) -> tensor<2x4x5x!yq>
  %r = quant.scast %y : tensor<2x4x5x!yq> to tensor<2x4x5xi8>
  return %r : tensor<2x4x5xi8>
}

// -----

// Gather reads the int8 table; its result keeps the table's type (no requantize).
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:.*]]: tensor<3xi32>)
// CHECK-DAG: %[[T:.*]] = "tf.Const"() {{.*}}value = dense<7> : tensor<10x4xi8>
// CHECK-DAG: %[[AXIS:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<i32>
// CHECK: %[[G:.*]] = "tf.GatherV2"(%[[T]], %[[I]], %[[AXIS]]) {Taxis = i32, Tindices = i32, Tparams = i8, batch_dims = 0 : i64}
// CHECK-NEXT: "tf.Cast"(%[[G]]) {DstT = f32, SrcT = i8, Truncate = false}
!tq = !quant.uniform<i8<-127:127>:f32, 2.000000e-02>
func.func @gather(%i: tensor<3xi32>) -> tensor<3x4xf32> {
  %ti = "tf.Const"() {value = dense<7> : tensor<10x4xi8>, dtype = i8} : () -> tensor<10x4xi8>
  %t = quant.scast %ti : tensor<10x4xi8> to tensor<10x4x!tq>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %y = "tfq.quantized_op"(%t, %i, %axis) {kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}, activation = "NONE"} : (tensor<10x4x!tq>, tensor<3xi32>, tensor<i32>) -> tensor<3x4x!tq>
  %r = quant.dcast %y : tensor<3x4x!tq> to tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}

// -----

// A float-output matmul (f32 result type): the int32 accumulator (+ int32 bias) times input scale
// x weight scale per channel, then the fused Relu in float; no requantize, no int8 result.
// CHECK-LABEL: func @float_output
// CHECK: %[[ACC:.*]] = "tf.MatMul"
// CHECK-NEXT: %[[BIASED:.*]] = "tf.AddV2"(%[[ACC]], %{{.*}})
// CHECK-NEXT: %[[S:.*]] = "tf.Const"() {{.*}}value = dense<[1.000000e-03, 2.000000e-03]> : tensor<2xf32>
// CHECK-NEXT: %[[F:.*]] = "tf.Cast"(%[[BIASED]]) {DstT = f32, SrcT = i32
// CHECK-NEXT: %[[Y:.*]] = "tf.Mul"(%[[F]], %[[S]])
// CHECK-NEXT: %[[R:.*]] = "tf.Relu"(%[[Y]]) {T = f32}
// CHECK-NOT: tf.Round
// CHECK: return %[[R]] : tensor<4x2xf32>
!xq = !quant.uniform<i8:f32, 1.000000e-01>
!wq = !quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32:0, {1.000000e-03,2.000000e-03}>
func.func @float_output(%x: tensor<4x3xi8>) -> tensor<4x2xf32> {
  %xq = quant.scast %x : tensor<4x3xi8> to tensor<4x3x!xq>
  %wi = "tf.Const"() {value = dense<1> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  %bi = "tf.Const"() {value = dense<[10, 20]> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %b = quant.scast %bi : tensor<2xi32> to tensor<2x!bq>
  %y = "tfq.quantized_op"(%xq, %w, %b) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "RELU"} : (tensor<4x3x!xq>, tensor<3x2x!wq>, tensor<2x!bq>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// Dynamic range: the input quantized per batch at run time (asymmetric int8 with a run-time zero
// point), an int32 MatMul on int32 casts of both, the zero point's share (zp x column sums 9, 12)
// off, then x (weight scale x the run-time input scale), the f32 bias and Relu.
// CHECK-LABEL: func @dynamic_range
// CHECK-SAME: (%[[X:.*]]: tensor<4x3xf32>)
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<3x2xi8>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-01, -2.500000e-01]> : tensor<2xf32>
// CHECK: "tf.Min"
// CHECK: "tf.Max"
// CHECK: %[[SPREAD:.*]] = "tf.Sub"
// CHECK: %[[FLOOR:.*]] = "tf.Maximum"(%[[SPREAD]], %{{.*}})
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<0.00392156886> : tensor<f32>
// CHECK-NEXT: %[[SCALE:.*]] = "tf.Mul"(%[[FLOOR]],
// CHECK: "tf.RealDiv"(%{{.*}}, %[[SCALE]])
// CHECK: "tf.Round"
// CHECK: %[[ZP:.*]] = "tf.Round"
// CHECK-NEXT: "tf.AddV2"(%{{.*}}, %[[ZP]])
// CHECK: %[[XI:.*]] = "tf.Cast"({{.*}}) {DstT = i8, SrcT = f32, Truncate = false}
// CHECK-NEXT: %[[X32:.*]] = "tf.Cast"(%[[XI]]) {DstT = i32, SrcT = i8, Truncate = false}
// CHECK-NEXT: %[[W32:.*]] = "tf.Cast"(%[[W]]) {DstT = i32, SrcT = i8, Truncate = false}
// CHECK-NEXT: %[[ACC:.*]] = "tf.MatMul"(%[[X32]], %[[W32]]) {T = i32, transpose_a = false, transpose_b = false} : (tensor<4x3xi32>, tensor<3x2xi32>) -> tensor<4x2xi32>
// CHECK-NEXT: %[[ACCF:.*]] = "tf.Cast"(%[[ACC]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<{{\[\[}}9.000000e+00, 1.200000e+01]]> : tensor<1x2xf32>
// CHECK-NEXT: %[[SHARE:.*]] = "tf.Mul"(%{{.*}}, %[[ZP]])
// CHECK-NEXT: %[[CENTERED:.*]] = "tf.Sub"(%[[ACCF]], %[[SHARE]])
// CHECK-NEXT: %[[WS:.*]] = "tf.Const"() {{.*}}value = dense<[0.00999999977, 2.000000e-02]> : tensor<2xf32>
// CHECK-NEXT: %[[S:.*]] = "tf.Mul"(%[[WS]], %[[SCALE]])
// CHECK-NEXT: %[[REAL:.*]] = "tf.Mul"(%[[CENTERED]], %[[S]])
// CHECK-NEXT: %[[BIASED:.*]] = "tf.BiasAdd"(%[[REAL]], %[[B]])
// CHECK-NEXT: %[[R:.*]] = "tf.Relu"(%[[BIASED]])
// CHECK-NEXT: return %[[R]]
!wq = !quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>
func.func @dynamic_range(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %wi = "tf.Const"() {value = dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  %b = "tf.Const"() {value = dense<[0.5, -0.25]> : tensor<2xf32>, dtype = f32} : () -> tensor<2xf32>
  %y = "tfq.quantized_op"(%x, %w, %b) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "RELU"} : (tensor<4x3xf32>, tensor<3x2x!wq>, tensor<2xf32>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// A 16-bit input: quantized to i16 (clip at +-32767), cast to f32 for the MatMul (exact below
// 2**24, f32 rounding above) with no zero point to subtract, then requantized to the i16 output.
// CHECK-LABEL: func @int16_input
// CHECK: %[[XI:.*]] = "tf.Cast"({{.*}}) {DstT = i16, SrcT = f32, Truncate = false} : (tensor<4x3xf32>) -> tensor<4x3xi16>
// CHECK-NEXT: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<3x2xi8>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[100, -200]> : tensor<2xi32>
// CHECK-NEXT: %[[XF:.*]] = "tf.Cast"(%[[XI]]) {DstT = f32, SrcT = i16, Truncate = false}
// CHECK-NEXT: %[[WF:.*]] = "tf.Cast"(%[[W]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK-NEXT: %[[ACC:.*]] = "tf.MatMul"(%[[XF]], %[[WF]]) {T = f32
// CHECK-NEXT: %[[BF:.*]] = "tf.Cast"(%[[B]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK-NEXT: "tf.AddV2"(%[[ACC]], %[[BF]]) {T = f32}
// CHECK: "tf.Const"() {{.*}}value = dense<-3.276700e+04> : tensor<f32>
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<3.276700e+04> : tensor<f32>
// CHECK-NEXT: "tf.ClipByValue"
// CHECK-NEXT: "tf.Cast"({{.*}}) {DstT = i16, SrcT = f32, Truncate = false} : (tensor<4x2xf32>) -> tensor<4x2xi16>
!xq = !quant.uniform<i16<-32767:32767>:f32, 1.000000e-03>
!wq = !quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32:0, {1.000000e-05,2.000000e-05}>
!yq = !quant.uniform<i16<-32767:32767>:f32, 2.000000e-03>
func.func @int16_input(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %q = quant.qcast %x : tensor<4x3xf32> to tensor<4x3x!xq>
  %wi = "tf.Const"() {value = dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  %bi = "tf.Const"() {value = dense<[100, -200]> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %b = quant.scast %bi : tensor<2xi32> to tensor<2x!bq>
  %y = "tfq.quantized_op"(%q, %w, %b) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>, tensor<2x!bq>) -> tensor<4x2x!yq>
  %r = quant.dcast %y : tensor<4x2x!yq> to tensor<4x2xf32>
  return %r : tensor<4x2xf32>
}
