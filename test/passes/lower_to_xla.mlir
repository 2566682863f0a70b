// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-xla | filecheck %s

// SAME conv with a non-zero input zero point: the int8 input is padded with the zero point,
// the XlaConvV2 is VALID, and zp * sum(w) per output channel (-3 * 18 = -54) comes off in the
// one int32 add of the bias: [10, 20, 30] + 54.
// The quant casts become quantize (Mul, Round, AddV2, ClipByValue, Cast) and dequantize; the
// scasts of the constant weight and bias leave the int8 / int32 constants themselves.
// CHECK-LABEL: func @conv_same
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x4x2xf32>)
// CHECK: %[[INV:.*]] = "tf.Const"() {{.*}}value = dense<2.000000e+01> : tensor<f32>
// CHECK: %[[SCALED:.*]] = "tf.Mul"(%[[X]], %[[INV]]) {T = f32}
// CHECK: %[[ROUND:.*]] = "tf.Round"(%[[SCALED]])
// CHECK: %[[SHIFT:.*]] = "tf.AddV2"(%[[ROUND]],
// CHECK: %[[CLIP:.*]] = "tf.ClipByValue"(%[[SHIFT]],
// CHECK: %[[Q:.*]] = "tf.Cast"(%[[CLIP]]) {DstT = i8, SrcT = f32, Truncate = false}
// A cast left in place would sit right after its replacement.
// CHECK-NOT: quant.
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<1> : tensor<3x3x2x3xi8>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[10, 20, 30]> : tensor<3xi32>
// CHECK-NEXT: %[[ZP:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<i8>
// CHECK-NEXT: %[[PADS:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}0, 0], [1, 1], [1, 1], [0, 0]]>
// CHECK-NEXT: %[[P:.*]] = "tf.PadV2"(%[[Q]], %[[PADS]], %[[ZP]]) {T = i8, Tpaddings = i32} : {{.*}} -> tensor<1x6x6x2xi8>
// CHECK: %[[NOPAD:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<2x2xi32>
// CHECK: %[[ACC:.*]] = "tf.XlaConvV2"(%[[P]], %[[W]], %{{.*}}, %[[NOPAD]], %{{.*}}, %{{.*}}, %{{.*}}) {LhsT = i8, RhsT = i8, Tindices = i32, batch_group_count = 1 : i64, dimension_numbers = "\18\02 \032\02\00\01@\03P\03Z\02\01\02b\02\01\02", precision_config = "", preferred_element_type = i32} : {{.*}} -> tensor<1x4x4x3xi32>
// CHECK-NEXT: %[[OFFSET:.*]] = "tf.Const"() {{.*}}value = dense<[64, 74, 84]> : tensor<3xi32>
// CHECK-NEXT: %[[BIASED:.*]] = "tf.AddV2"(%[[ACC]], %[[OFFSET]]) {T = i32}
// CHECK-NEXT: %[[F:.*]] = "tf.Cast"(%[[BIASED]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK-NEXT: %[[M:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-03, 0.00999999977, 1.500000e-02]> : tensor<3xf32>
// CHECK-NEXT: "tf.Mul"(%[[F]], %[[M]])
// CHECK-NEXT: "tf.Round"
// CHECK-NEXT: %[[OZP:.*]] = "tf.Const"() {{.*}}value = dense<-1.280000e+02> : tensor<f32>
// CHECK-NEXT: "tf.AddV2"
// CHECK-NEXT: %[[LO:.*]] = "tf.Const"() {{.*}}value = dense<-1.280000e+02> : tensor<f32>
// CHECK-NEXT: %[[HI:.*]] = "tf.Const"() {{.*}}value = dense<1.270000e+02> : tensor<f32>
// CHECK-NEXT: "tf.ClipByValue"({{.*}}, %[[LO]], %[[HI]])
// CHECK-NEXT: %[[OUT:.*]] = "tf.Cast"({{.*}}) {DstT = i8, SrcT = f32, Truncate = false}
// CHECK-NEXT: %[[YF:.*]] = "tf.Cast"(%[[OUT]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<-1.280000e+02> : tensor<f32>
// CHECK-NEXT: %[[CENTERED:.*]] = "tf.Sub"(%[[YF]],
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<1.000000e-01> : tensor<f32>
// CHECK-NEXT: %[[R:.*]] = "tf.Mul"(%[[CENTERED]],
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

// MatMul with transpose_b and a zero input zero point: XlaDotV2 contracting lhs dim 1 with
// rhs dim 1, no correction; a per-tensor weight gives a scalar multiplier 0.05 x 0.01 / 0.1.
// CHECK-LABEL: func @matmul
// CHECK-SAME: (%[[A:.*]]: tensor<4x3xi8>)
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<2x3xi8>
// CHECK-NEXT: %[[ACC:.*]] = "tf.XlaDotV2"(%[[A]], %[[W]]) {LhsT = i8, RhsT = i8, dimension_numbers = "\0A\01\01\12\01\01", precision_config = "", preferred_element_type = i32} : (tensor<4x3xi8>, tensor<2x3xi8>) -> tensor<4x2xi32>
// CHECK-NOT: "tf.Sub"
// CHECK: %[[F:.*]] = "tf.Cast"(%[[ACC]])
// CHECK-NEXT: %[[M:.*]] = "tf.Const"() {{.*}}value = dense<5.000000e-03> : tensor<f32>
// CHECK-NEXT: "tf.Mul"(%[[F]], %[[M]])
// CHECK-NEXT: "tf.Round"
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<5.000000e+00> : tensor<f32>
!xq = !quant.uniform<i8:f32, 5.000000e-02>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!yq = !quant.uniform<i8:f32, 1.000000e-01:5>
func.func @matmul(%x: tensor<4x3xi8>) -> tensor<4x2xi8> {
  %xq = quant.scast %x : tensor<4x3xi8> to tensor<4x3x!xq>
  %wi = "tf.Const"() {value = dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8>, dtype = i8} : () -> tensor<2x3xi8>
  %w = quant.scast %wi : tensor<2x3xi8> to tensor<2x3x!wq>
  %y = "tfq.quantized_op"(%xq, %w) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<2x3x!wq>) -> tensor<4x2x!yq>
  %r = quant.scast %y : tensor<4x2x!yq> to tensor<4x2xi8>
  return %r : tensor<4x2xi8>
}

// -----

// MatMul + BiasAdd + Relu with a non-zero input zero point and per-channel weights (an MLP
// layer): the offset -zp x the weight's column sums (-(-128) x [9, 12]) and the bias are one int32
// constant along the output channels, added once ([1152, 1536] + [100, -200]).
// CHECK-LABEL: func @matmul_bias
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<3x2xi8>
// CHECK: %[[ACC:.*]] = "tf.XlaDotV2"(%{{.*}}, %[[W]]) {{.*}} -> tensor<4x2xi32>
// CHECK-NEXT: %[[OFFSET:.*]] = "tf.Const"() {{.*}}value = dense<[1252, 1336]> : tensor<2xi32>
// CHECK-NEXT: %[[BIASED:.*]] = "tf.AddV2"(%[[ACC]], %[[OFFSET]]) {T = i32} : (tensor<4x2xi32>, tensor<2xi32>)
// CHECK-NEXT: "tf.Cast"(%[[BIASED]]) {DstT = f32, SrcT = i32
// CHECK-NOT: "tf.Sub"
// CHECK: return
!xq = !quant.uniform<i8:f32, 5.000000e-02:-128>
!wq = !quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32:0, {5.000000e-04,1.000000e-03}>
!yq = !quant.uniform<i8:f32, 1.000000e-01:-128>
func.func @matmul_bias(%x: tensor<4x3xi8>) -> tensor<4x2xi8> {
  %xq = quant.scast %x : tensor<4x3xi8> to tensor<4x3x!xq>
  %wi = "tf.Const"() {value = dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  %bi = "tf.Const"() {value = dense<[100, -200]> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %b = quant.scast %bi : tensor<2xi32> to tensor<2x!bq>
  %y = "tfq.quantized_op"(%xq, %w, %b) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "RELU"} : (tensor<4x3x!xq>, tensor<3x2x!wq>, tensor<2x!bq>) -> tensor<4x2x!yq>
  %r = quant.scast %y : tensor<4x2x!yq> to tensor<4x2xi8>
  return %r : tensor<4x2xi8>
}

// -----

// Negative: offset + bias would not fit int32 (2147483000 + 1152), so they stay two adds.
// CHECK-LABEL: func @matmul_bias_overflow
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<2147483000> : tensor<2xi32>
// CHECK: %[[ACC:.*]] = "tf.XlaDotV2"
// CHECK-NEXT: %[[OFFSET:.*]] = "tf.Const"() {{.*}}value = dense<[1152, 1536]> : tensor<2xi32>
// CHECK-NEXT: %[[CORRECTED:.*]] = "tf.AddV2"(%[[ACC]], %[[OFFSET]]) {T = i32}
// CHECK-NEXT: "tf.AddV2"(%[[CORRECTED]], %[[B]]) {T = i32}
!xq = !quant.uniform<i8:f32, 5.000000e-02:-128>
!wq = !quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32:0, {5.000000e-04,1.000000e-03}>
!yq = !quant.uniform<i8:f32, 1.000000e-01:-128>
func.func @matmul_bias_overflow(%x: tensor<4x3xi8>) -> tensor<4x2xi8> {
  %xq = quant.scast %x : tensor<4x3xi8> to tensor<4x3x!xq>
  %wi = "tf.Const"() {value = dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %w = quant.scast %wi : tensor<3x2xi8> to tensor<3x2x!wq>
  %bi = "tf.Const"() {value = dense<2147483000> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %b = quant.scast %bi : tensor<2xi32> to tensor<2x!bq>
  %y = "tfq.quantized_op"(%xq, %w, %b) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "NONE"} : (tensor<4x3x!xq>, tensor<3x2x!wq>, tensor<2x!bq>) -> tensor<4x2x!yq>
  %r = quant.scast %y : tensor<4x2x!yq> to tensor<4x2xi8>
  return %r : tensor<4x2xi8>
}

// -----

// Einsum whose output order differs from XlaDotV2's (batch, lhs free, rhs free): a Transpose
// follows, and the zero-point offset (-zp x sum(w) = 3) is laid out in the output's order (4x1,
// without the leading 1 that broadcasts anyway). The bias runs along the last axis (b, 5 wide):
// offset and bias together would be a 4x5 constant, more than the two apart, so they stay two adds.
// CHECK-LABEL: func @einsum
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[1, 2, 3, 4, 5]> : tensor<5xi32>
// CHECK-NEXT: %[[ACC:.*]] = "tf.XlaDotV2"(%{{.*}}, %{{.*}}) {LhsT = i8, RhsT = i8, dimension_numbers = "\0A\01\02\12\01\00", {{.*}}} : (tensor<2x5x3xi8>, tensor<3x4xi8>) -> tensor<2x5x4xi32>
// CHECK-NEXT: %[[PERM:.*]] = "tf.Const"() {{.*}}value = dense<[0, 2, 1]> : tensor<3xi32>
// CHECK-NEXT: %[[T:.*]] = "tf.Transpose"(%[[ACC]], %[[PERM]]) {T = i32, Tperm = i32} : {{.*}} -> tensor<2x4x5xi32>
// CHECK-NEXT: %[[OFFSET:.*]] = "tf.Const"() {{.*}}value = dense<3> : tensor<4x1xi32>
// CHECK-NEXT: %[[CORRECTED:.*]] = "tf.AddV2"(%[[T]], %[[OFFSET]]) {T = i32}
// CHECK-NEXT: "tf.AddV2"(%[[CORRECTED]], %[[B]]) {T = i32}
!xq = !quant.uniform<i8:f32, 5.000000e-02:-1>
!wq = !quant.uniform<i8<-127:127>:f32, 1.000000e-02>
!bq = !quant.uniform<i32<-2147483647:2147483647>:f32, 5.000000e-04>
!yq = !quant.uniform<i8:f32, 1.000000e-01>
func.func @einsum(%x: tensor<2x5x3xi8>) -> tensor<2x4x5xi8> {
  %xq = quant.scast %x : tensor<2x5x3xi8> to tensor<2x5x3x!xq>
  %wi = "tf.Const"() {value = dense<1> : tensor<3x4xi8>, dtype = i8} : () -> tensor<3x4xi8>
  %w = quant.scast %wi : tensor<3x4xi8> to tensor<3x4x!wq>
  %bi = "tf.Const"() {value = dense<[1, 2, 3, 4, 5]> : tensor<5xi32>, dtype = i32} : () -> tensor<5xi32>
  %b = quant.scast %bi : tensor<5xi32> to tensor<5x!bq>
  %y = "tfq.quantized_op"(%xq, %w, %b) {kind = "einsum", op_attrs = {N = 2 : i64, T = f32, equation = "abc,cd->adb"}, activation = "NONE"} : (tensor<2x5x3x!xq>, tensor<3x4x!wq>, tensor<5x!bq>) -> tensor<2x4x5x!yq>
  %r = quant.scast %y : tensor<2x4x5x!yq> to tensor<2x4x5xi8>
  return %r : tensor<2x4x5xi8>
}

// -----

// Gather reads the int8 table; its result keeps the table's type (no requantize) and its
// dcast becomes the dequantize.
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:.*]]: tensor<3xi32>)
// CHECK-DAG: %[[T:.*]] = "tf.Const"() {{.*}}value = dense<7> : tensor<10x4xi8>
// CHECK-DAG: %[[AXIS:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<i32>
// CHECK: %[[G:.*]] = "tf.GatherV2"(%[[T]], %[[I]], %[[AXIS]]) {Taxis = i32, Tindices = i32, Tparams = i8, batch_dims = 0 : i64} : {{.*}} -> tensor<3x4xi8>
// CHECK-NEXT: %[[F:.*]] = "tf.Cast"(%[[G]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK-NOT: "tf.Sub"
// CHECK: "tf.Mul"(%[[F]],
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

// Dynamic range: the f32 input is quantized per batch at run time (asymmetric int8: scale
// (max(x, 0) - min(x, 0)) / 255, floored so that an all-zero batch stays finite, zero point
// round(-128 - min / scale)), XlaDotV2 gives int32, the zero point's share (zp x the weight's
// column sums 1+3+5 = 9, 2+4+6 = 12) comes off, and the result is x (weight scale per channel x
// the run-time input scale) in f32, then the f32 bias and the fused Relu. No quant type and no
// requantize remain.
// CHECK-LABEL: func @dynamic_range
// CHECK-SAME: (%[[X:.*]]: tensor<4x3xf32>)
// CHECK: %[[W:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-01, -2.500000e-01]> : tensor<2xf32>
// CHECK: %[[FLAT:.*]] = "tf.Reshape"(%[[X]], %{{.*}}) {{.*}} -> tensor<?xf32>
// CHECK: %[[MIN:.*]] = "tf.Min"(%[[FLAT]], %{{.*}}) {{{.*}}keep_dims = false} : {{.*}} -> tensor<f32>
// CHECK-NEXT: %[[LOW:.*]] = "tf.Minimum"(%[[MIN]], %{{.*}})
// CHECK: %[[MAX:.*]] = "tf.Max"(%[[FLAT]], %{{.*}})
// CHECK-NEXT: %[[HIGH:.*]] = "tf.Maximum"(%[[MAX]], %{{.*}})
// CHECK-NEXT: %[[SPREAD:.*]] = "tf.Sub"(%[[HIGH]], %[[LOW]])
// CHECK: %[[FLOOR:.*]] = "tf.Maximum"(%[[SPREAD]], %{{.*}})
// CHECK-NEXT: %[[STEP:.*]] = "tf.Const"() {{.*}}value = dense<0.00392156886> : tensor<f32>
// CHECK-NEXT: %[[SCALE:.*]] = "tf.Mul"(%[[FLOOR]], %[[STEP]])
// CHECK: %[[INV:.*]] = "tf.RealDiv"(%{{.*}}, %[[SCALE]])
// CHECK-NEXT: %[[SCALED:.*]] = "tf.Mul"(%[[X]], %[[INV]])
// CHECK-NEXT: %[[ROUND:.*]] = "tf.Round"(%[[SCALED]])
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<-1.280000e+02> : tensor<f32>
// CHECK-NEXT: %[[LOWSTEPS:.*]] = "tf.Mul"(%[[LOW]], %[[INV]])
// CHECK-NEXT: %[[ZPF:.*]] = "tf.Sub"(%{{.*}}, %[[LOWSTEPS]])
// CHECK-NEXT: %[[ZP:.*]] = "tf.Round"(%[[ZPF]])
// CHECK-NEXT: %[[SHIFTED:.*]] = "tf.AddV2"(%[[ROUND]], %[[ZP]])
// CHECK-NEXT: %[[LO:.*]] = "tf.Const"() {{.*}}value = dense<-1.280000e+02> : tensor<f32>
// CHECK-NEXT: %[[HI:.*]] = "tf.Const"() {{.*}}value = dense<1.270000e+02> : tensor<f32>
// CHECK-NEXT: %[[CLIP:.*]] = "tf.ClipByValue"(%[[SHIFTED]], %[[LO]], %[[HI]])
// CHECK-NEXT: %[[XI:.*]] = "tf.Cast"(%[[CLIP]]) {DstT = i8, SrcT = f32, Truncate = false}
// CHECK-NEXT: %[[ACC:.*]] = "tf.XlaDotV2"(%[[XI]], %[[W]]) {LhsT = i8, RhsT = i8, dimension_numbers = "\0A\01\01\12\01\00", precision_config = "", preferred_element_type = i32} : (tensor<4x3xi8>, tensor<3x2xi8>) -> tensor<4x2xi32>
// CHECK-NEXT: %[[ACCF:.*]] = "tf.Cast"(%[[ACC]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK-NEXT: %[[SUMS:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}9.000000e+00, 1.200000e+01]]> : tensor<1x2xf32>
// CHECK-NEXT: %[[SHARE:.*]] = "tf.Mul"(%[[SUMS]], %[[ZP]])
// CHECK-NEXT: %[[CENTERED:.*]] = "tf.Sub"(%[[ACCF]], %[[SHARE]])
// CHECK-NEXT: %[[WS:.*]] = "tf.Const"() {{.*}}value = dense<[0.00999999977, 2.000000e-02]> : tensor<2xf32>
// CHECK-NEXT: %[[S:.*]] = "tf.Mul"(%[[WS]], %[[SCALE]])
// CHECK-NEXT: %[[REAL:.*]] = "tf.Mul"(%[[CENTERED]], %[[S]])
// CHECK-NEXT: %[[BIASED:.*]] = "tf.BiasAdd"(%[[REAL]], %[[B]]) {T = f32, data_format = "NHWC"}
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

// A 16-bit input: the qcast quantizes to i16 symmetric (x / 0.001, clip to [-32767, 32767], no
// zero point); the product runs on f32 casts of both (XLA's int16 kernels are ~35x slower on CPU),
// the bias is added in f32, and the requantize clips to the i16 output's range before its
// dequantize (x 0.002).
// CHECK-LABEL: func @int16_input
// CHECK-SAME: (%[[X:.*]]: tensor<4x3xf32>)
// CHECK-NEXT: %[[INV:.*]] = "tf.Const"() {{.*}}value = dense<1.000000e+03> : tensor<f32>
// CHECK-NEXT: %[[SCALED:.*]] = "tf.Mul"(%[[X]], %[[INV]])
// CHECK-NEXT: %[[ROUND:.*]] = "tf.Round"(%[[SCALED]])
// CHECK-NEXT: %[[LO:.*]] = "tf.Const"() {{.*}}value = dense<-3.276700e+04> : tensor<f32>
// CHECK-NEXT: %[[HI:.*]] = "tf.Const"() {{.*}}value = dense<3.276700e+04> : tensor<f32>
// CHECK-NEXT: %[[CLIP:.*]] = "tf.ClipByValue"(%[[ROUND]], %[[LO]], %[[HI]])
// CHECK-NEXT: %[[XI:.*]] = "tf.Cast"(%[[CLIP]]) {DstT = i16, SrcT = f32, Truncate = false} : (tensor<4x3xf32>) -> tensor<4x3xi16>
// CHECK-NEXT: %[[W:.*]] = "tf.Const"() {{.*}} : tensor<3x2xi8>
// CHECK-NEXT: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[100, -200]> : tensor<2xi32>
// CHECK-NEXT: %[[XF:.*]] = "tf.Cast"(%[[XI]]) {DstT = f32, SrcT = i16, Truncate = false}
// CHECK-NEXT: %[[WF:.*]] = "tf.Cast"(%[[W]]) {DstT = f32, SrcT = i8, Truncate = false}
// CHECK-NEXT: %[[ACC:.*]] = "tf.MatMul"(%[[XF]], %[[WF]]) {T = f32, {{.*}}} : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
// CHECK-NEXT: %[[BF:.*]] = "tf.Cast"(%[[B]]) {DstT = f32, SrcT = i32, Truncate = false}
// CHECK-NEXT: %[[BIASED:.*]] = "tf.AddV2"(%[[ACC]], %[[BF]]) {T = f32}
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<[5.000000e-03, 0.00999999977]> : tensor<2xf32>
// CHECK-NEXT: "tf.Mul"
// CHECK-NEXT: "tf.Round"
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<-3.276700e+04> : tensor<f32>
// CHECK-NEXT: "tf.Const"() {{.*}}value = dense<3.276700e+04> : tensor<f32>
// CHECK-NEXT: "tf.ClipByValue"
// CHECK-NEXT: %[[OUT:.*]] = "tf.Cast"({{.*}}) {DstT = i16, SrcT = f32, Truncate = false} : (tensor<4x2xf32>) -> tensor<4x2xi16>
// CHECK-NEXT: %[[OUTF:.*]] = "tf.Cast"(%[[OUT]]) {DstT = f32, SrcT = i16, Truncate = false}
// CHECK-NEXT: %[[OS:.*]] = "tf.Const"() {{.*}}value = dense<2.000000e-03> : tensor<f32>
// CHECK-NEXT: %[[R:.*]] = "tf.Mul"(%[[OUTF]], %[[OS]])
// CHECK-NEXT: return %[[R]]

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
