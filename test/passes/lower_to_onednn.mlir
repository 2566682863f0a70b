// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-onednn | filecheck %s

// Conv2D per channel, bias, relu; input zero point -3 with SAME padding: the int8 input is padded
// with -3 (real 0.0) and convolved VALID. _FusedQuantizedConv2D has no zero points: the input's is
// folded into the f32 bias, (bias - zp_in * sum(w)) * s_in * s_w = (10 + 3 * 18) * 5e-4 = 0.032.
// Input range -+127 * 0.05, filter range -+127 * s_w per channel (scales = range / 127). The output
// zero point is -128: the kernel writes quint8 (u8 = i8 + 128, zero point 0, range [0, 255 * 0.1]),
// its saturation at 0 is the relu. The dcast of that zero point -128 is a Dequantize of the quint8
// (SCALED, [0, 255 * 0.1]): its sign flip back from quint8 cancels the kernel's.
// CHECK-LABEL: func @conv_per_channel
// CHECK: %[[Q:.*]] = "tf.Cast"({{.*}}) {DstT = i8
// CHECK: %[[W8:.*]] = "tf.Const"() {{.*}}value = dense<1> : tensor<3x3x2x3xi8>
// CHECK-DAG: %[[PADS:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}0, 0], [1, 1], [1, 1], [0, 0]]>
// CHECK-DAG: %[[ZP:.*]] = "tf.Const"() {{.*}}value = dense<-3> : tensor<i8>
// CHECK: %[[PAD:.*]] = "tf.PadV2"(%[[Q]], %[[PADS]], %[[ZP]])
// CHECK: %[[X:.*]] = "tf.Bitcast"(%[[PAD]]) {T = i8, type = !tf_type.qint8} : (tensor<1x6x6x2xi8>)
// CHECK: %[[MIN_X:.*]] = "tf.Const"() {{.*}}value = dense<-6.350000e+00> : tensor<f32>
// CHECK: %[[MAX_X:.*]] = "tf.Const"() {{.*}}value = dense<6.350000e+00> : tensor<f32>
// CHECK: %[[W:.*]] = "tf.Bitcast"(%[[W8]]) {T = i8, type = !tf_type.qint8}
// CHECK: %[[MIN_W:.*]] = "tf.Const"() {{.*}}value = dense<[-1.270000e+00, -2.540000e+00, -3.810000e+00]> : tensor<3xf32>
// CHECK: %[[MAX_W:.*]] = "tf.Const"() {{.*}}value = dense<[1.270000e+00, 2.540000e+00, 3.810000e+00]> : tensor<3xf32>
// CHECK: %[[MIN_Y:.*]] = "tf.Const"() {{.*}}value = dense<0.000000e+00> : tensor<f32>
// CHECK: %[[MAX_Y:.*]] = "tf.Const"() {{.*}}value = dense<2.550000e+01> : tensor<f32>
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[3.200000e-02, 7.400000e-02, 1.260000e-01]> : tensor<3xf32>
// CHECK: %[[Y:.*]]:3 = "tf._FusedQuantizedConv2D"(%[[X]], %[[W]], %[[B]], %[[MIN_X]], %[[MAX_X]], %[[MIN_W]], %[[MAX_W]], %[[MIN_Y]], %[[MAX_Y]])
// CHECK-SAME: Tbias = f32, Tdevice_inputs = [], Tdevice_outputs = [], Tfilter = !tf_type.qint8
// CHECK-SAME: Thost_inputs = [!tf_type.qint8, !tf_type.qint8, f32, f32, f32, f32, f32, f32, f32], Thost_outputs = [!tf_type.quint8, f32, f32]
// CHECK-SAME: Tinput = !tf_type.qint8, Tsummand = !tf_type.quint8, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = []
// CHECK-SAME: fused_ops = ["BiasAdd", "Requantize"], is_bias_const = true, is_filter_const = true, out_type = !tf_type.quint8, padding = "VALID", strides = [1, 1, 1, 1]
// CHECK-SAME: -> (tensor<1x4x4x3x!tf_type.quint8>, tensor<f32>, tensor<f32>)
// CHECK-NOT: tf.M{{in|ax}}imum
// CHECK: %[[LO:.*]] = "tf.Const"() {{.*}}value = dense<0.000000e+00> : tensor<f32>
// CHECK: %[[HI:.*]] = "tf.Const"() {{.*}}value = dense<2.550000e+01> : tensor<f32>
// CHECK: %[[R:.*]] = "tf.Dequantize"(%[[Y]]#0, %[[LO]], %[[HI]]) {T = !tf_type.quint8, axis = -1 : i64, dtype = f32, mode = "SCALED", narrow_range = false}
// CHECK-NOT: tf.BitwiseXor
// CHECK-NOT: quant.
// CHECK: return %[[R]]

func.func @conv_per_channel(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %xq = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 5.000000e-02:-3>>
  %w = "tf.Const"() {value = dense<1> : tensor<3x3x2x3xi8>, dtype = i8} : () -> tensor<3x3x2x3xi8>
  %wq = quant.scast %w : tensor<3x3x2x3xi8> to tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32:3, {1.000000e-02,2.000000e-02,3.000000e-02}>>
  %b = "tf.Const"() {value = dense<[10, 20, 30]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %bq = quant.scast %b : tensor<3xi32> to tensor<3x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>>
  %y = "tfq.quantized_op"(%xq, %wq, %bq) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}, activation = "RELU"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 5.000000e-02:-3>>, tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32:3, {1.000000e-02,2.000000e-02,3.000000e-02}>>, tensor<3x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>>) -> tensor<1x4x4x3x!quant.uniform<i8:f32, 1.000000e-01:-128>>
  %r = quant.dcast %y : tensor<1x4x4x3x!quant.uniform<i8:f32, 1.000000e-01:-128>> to tensor<1x4x4x3xf32>
  return %r : tensor<1x4x4x3xf32>
}

// -----

// Float output (no requantize): unit scales (input, filter ranges -+127) and out_type qint32 give
// exactly acc + bias in integers (zero bias: no bias operand, input zero point 0: no compensation,
// SAME passed through). The kernel's Relu serves relu6 too; then x s_in x s_w = 5e-4 and Relu6.
// CHECK-LABEL: func @conv_float_output_relu6
// CHECK: %[[ONE_LO:.*]] = "tf.Const"() {{.*}}value = dense<-1.270000e+02> : tensor<f32>
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<0.000000e+00> : tensor<3xf32>
// CHECK: %[[ACC:.*]]:3 = "tf._FusedQuantizedConv2D"(%{{.*}}, %{{.*}}, %[[B]], %[[ONE_LO]], %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}})
// CHECK-SAME: Thost_outputs = [!tf_type.qint32, f32, f32]
// CHECK-SAME: Tsummand = !tf_type.qint32
// CHECK-SAME: fused_ops = ["BiasAdd", "Relu"]
// CHECK-SAME: out_type = !tf_type.qint32, padding = "SAME"
// CHECK: %[[I32:.*]] = "tf.Bitcast"(%[[ACC]]#0) {T = !tf_type.qint32, type = i32}
// CHECK: %[[F:.*]] = "tf.Cast"(%[[I32]]) {DstT = f32
// CHECK: %[[S:.*]] = "tf.Const"() {{.*}}value = dense<5.000000e-04> : tensor<f32>
// CHECK: %[[R:.*]] = "tf.Mul"(%[[F]], %[[S]])
// CHECK: %[[R6:.*]] = "tf.Relu6"(%[[R]])
// CHECK: return %[[R6]]

func.func @conv_float_output_relu6(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %xq = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i8:f32, 5.000000e-02:0>>
  %w = "tf.Const"() {value = dense<2> : tensor<3x3x2x3xi8>, dtype = i8} : () -> tensor<3x3x2x3xi8>
  %wq = quant.scast %w : tensor<3x3x2x3xi8> to tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%xq, %wq) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}, activation = "RELU6"} : (tensor<1x4x4x2x!quant.uniform<i8:f32, 5.000000e-02:0>>, tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<1x4x4x3xf32>
  return %y : tensor<1x4x4x3xf32>
}

// -----

// Depthwise per channel, input zero point -128: quint8 input (a sign flip of the int8 storage,
// range [0, 255 * 0.05]), no padding, nothing compensated. Relu6 with output scale 0.1 and zero
// point -128 ends at storage -128 + 60 = -68, inside the int8 range: qint8 output (the output zero
// point in the bias: 100 * 5e-4 - 12.8 = -12.75), clipped to [-128, -68]: a Minimum (the
// saturation is the lower bound).
// CHECK-LABEL: func @depthwise_relu6_clip
// CHECK-SAME: (%[[X8:.*]]: tensor<1x5x5x2xi8>)
// CHECK: %[[SIGN:.*]] = "tf.Const"() {{.*}}value = dense<-128> : tensor<i8>
// CHECK: %[[FLIP:.*]] = "tf.BitwiseXor"(%[[X8]], %[[SIGN]]) {T = i8}
// CHECK: %[[X:.*]] = "tf.Bitcast"(%[[FLIP]]) {T = i8, type = !tf_type.quint8}
// CHECK: %[[MIN_X:.*]] = "tf.Const"() {{.*}}value = dense<0.000000e+00> : tensor<f32>
// CHECK: %[[MAX_X:.*]] = "tf.Const"() {{.*}}value = dense<1.275000e+01> : tensor<f32>
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[-1.275000e+01, -1.260000e+01]> : tensor<2xf32>
// CHECK: %[[Y:.*]]:3 = "tf._FusedQuantizedDepthwiseConv2D"(%[[X]], %{{.*}}, %[[B]], %[[MIN_X]], %[[MAX_X]],
// CHECK-SAME: Tinput = !tf_type.quint8
// CHECK-SAME: fused_ops = ["BiasAdd", "Requantize"]
// CHECK-SAME: out_type = !tf_type.qint8, padding = "SAME"
// CHECK-SAME: tensor<2xf32>, tensor<f32>, tensor<f32>, tensor<2xf32>, tensor<2xf32>, tensor<f32>, tensor<f32>)
// CHECK: %[[Y8:.*]] = "tf.Bitcast"(%[[Y]]#0) {T = !tf_type.qint8, type = i8}
// CHECK-NOT: tf.Maximum
// CHECK: %[[HI:.*]] = "tf.Const"() {{.*}}value = dense<-68> : tensor<i8>
// CHECK: %[[C:.*]] = "tf.Minimum"(%[[Y8]], %[[HI]]) {T = i8}
// CHECK: return %[[C]]

func.func @depthwise_relu6_clip(%x: tensor<1x5x5x2xi8>) -> tensor<1x5x5x2xi8> {
  %xq = quant.scast %x : tensor<1x5x5x2xi8> to tensor<1x5x5x2x!quant.uniform<i8:f32, 5.000000e-02:-128>>
  %w = "tf.Const"() {value = dense<3> : tensor<3x3x2x1xi8>, dtype = i8} : () -> tensor<3x3x2x1xi8>
  %wq = quant.scast %w : tensor<3x3x2x1xi8> to tensor<3x3x2x1x!quant.uniform<i8<-127:127>:f32:2, {1.000000e-02,2.000000e-02}>>
  %b = "tf.Const"() {value = dense<[100, 200]> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %bq = quant.scast %b : tensor<2xi32> to tensor<2x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03}>>
  %y = "tfq.quantized_op"(%xq, %wq, %bq) {kind = "depthwise_conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1]}, activation = "RELU6"} : (tensor<1x5x5x2x!quant.uniform<i8:f32, 5.000000e-02:-128>>, tensor<3x3x2x1x!quant.uniform<i8<-127:127>:f32:2, {1.000000e-02,2.000000e-02}>>, tensor<2x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03}>>) -> tensor<1x5x5x2x!quant.uniform<i8:f32, 1.000000e-01:-128>>
  %r = quant.scast %y : tensor<1x5x5x2x!quant.uniform<i8:f32, 1.000000e-01:-128>> to tensor<1x5x5x2xi8>
  return %r : tensor<1x5x5x2xi8>
}

// -----

// Two matmuls: the first requantizes with relu6 fused and an asymmetric output (MIN_FIRST: min =
// -zp * s = 2.0, max = (127 - zp) * s = 4.54); it feeds the second as qint8 with no Bitcast pair
// between them. The second has a float output (Dequantize fusion, a zero bias); its transpose_b
// weight is a new [K, N] constant. Input zero point 10 in the bias: (1 - 10 * 8) * 5e-4 = -0.0395.
// CHECK-LABEL: func @matmul_relu6_chain
// CHECK-SAME: (%[[X8:.*]]: tensor<4x8xi8>)
// CHECK: %[[X:.*]] = "tf.Bitcast"(%[[X8]]) {T = i8, type = !tf_type.qint8}
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[-3.950000e-02, -7.800000e-02, -1.155000e-01]> : tensor<3xf32>
// CHECK: %[[LO:.*]] = "tf.Const"() {{.*}}value = dense<2.000000e+00> : tensor<f32>
// CHECK: %[[HI:.*]] = "tf.Const"() {{.*}}value = dense<4.540000e+00> : tensor<f32>
// CHECK: %[[H:.*]]:3 = "tf._QuantizedMatMul"(%[[X]], %{{.*}}, %[[B]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LO]], %[[HI]])
// CHECK-SAME: T1 = !tf_type.qint8, T2 = !tf_type.qint8, Tbias = f32
// CHECK-SAME: Thost_outputs = [!tf_type.qint8, f32, f32], Tout = !tf_type.qint8, U = f32
// CHECK-SAME: fused_ops = ["BiasAdd", "Relu6", "Requantize"], input_quant_mode = "SCALED", is_bias_const = true, is_weight_const = true, output_quant_mode = "MIN_FIRST", transpose_a = false, transpose_b = false
// CHECK-NOT: tf.Bitcast"(%{{.*}}) {T = !tf_type.qint8
// CHECK: %[[W2:.*]] = "tf.Const"() {{.*}}value = dense<1> : tensor<3x2xi8>
// CHECK: %[[W2Q:.*]] = "tf.Bitcast"(%[[W2]])
// CHECK: %[[Y:.*]] = "tf._QuantizedMatMul"(%[[H]]#0, %[[W2Q]],
// CHECK-SAME: Thost_outputs = [f32], Tout = f32
// CHECK-SAME: fused_ops = ["BiasAdd", "Dequantize"]
// CHECK-SAME: -> tensor<4x2xf32>
// CHECK: return %[[Y]]

func.func @matmul_relu6_chain(%x: tensor<4x8xi8>) -> tensor<4x2xf32> {
  %xq = quant.scast %x : tensor<4x8xi8> to tensor<4x8x!quant.uniform<i8:f32, 5.000000e-02:10>>
  %w = "tf.Const"() {value = dense<1> : tensor<8x3xi8>, dtype = i8} : () -> tensor<8x3xi8>
  %wq = quant.scast %w : tensor<8x3xi8> to tensor<8x3x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02}>>
  %b = "tf.Const"() {value = dense<[1, 2, 3]> : tensor<3xi32>, dtype = i32} : () -> tensor<3xi32>
  %bq = quant.scast %b : tensor<3xi32> to tensor<3x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>>
  %h = "tfq.quantized_op"(%xq, %wq, %bq) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "RELU6"} : (tensor<4x8x!quant.uniform<i8:f32, 5.000000e-02:10>>, tensor<8x3x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02}>>, tensor<3x!quant.uniform<i32:f32:0, {5.000000e-04,1.000000e-03,1.500000e-03}>>) -> tensor<4x3x!quant.uniform<i8:f32, 2.000000e-02:-100>>
  %w2 = "tf.Const"() {value = dense<1> : tensor<2x3xi8>, dtype = i8} : () -> tensor<2x3xi8>
  %w2q = quant.scast %w2 : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%h, %w2q) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}, activation = "NONE"} : (tensor<4x3x!quant.uniform<i8:f32, 2.000000e-02:-100>>, tensor<2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// A weight with batch dimensions of its own: no 2-D matmul computes it (and TF 2.21 registers no
// _QuantizedBatchMatMul), so it is lowered as tfq-lower-to-xla lowers it.
// CHECK-LABEL: func @batched_weight_falls_back
// CHECK: "tf.XlaDotV2"
// CHECK-NOT: _QuantizedMatMul
// CHECK: return

func.func @batched_weight_falls_back(%x: tensor<2x5x16xi8>) -> tensor<2x5x8xi8> {
  %xq = quant.scast %x : tensor<2x5x16xi8> to tensor<2x5x16x!quant.uniform<i8:f32, 5.000000e-02:1>>
  %w = "tf.Const"() {value = dense<1> : tensor<2x8x16xi8>, dtype = i8} : () -> tensor<2x8x16xi8>
  %wq = quant.scast %w : tensor<2x8x16xi8> to tensor<2x8x16x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%xq, %wq) {kind = "batch_matmul", op_attrs = {T = f32, adj_x = false, adj_y = true}, activation = "NONE"} : (tensor<2x5x16x!quant.uniform<i8:f32, 5.000000e-02:1>>, tensor<2x8x16x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<2x5x8x!quant.uniform<i8:f32, 1.000000e-01:0>>
  %r = quant.scast %y : tensor<2x5x8x!quant.uniform<i8:f32, 1.000000e-01:0>> to tensor<2x5x8xi8>
  return %r : tensor<2x5x8xi8>
}
