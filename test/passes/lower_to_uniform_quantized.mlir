// RUN: tfquant-opt %s -split-input-file -tfq-lower-to-uniform-quantized | filecheck %s

// Conv2D per channel with bias and relu: the f32 input is quantized straight to qint8 and read
// by the convolution (no Bitcast between them); the int8 weight constant is bitcast to qint8.
// The qint32 accumulator's scales are input x weight scale per channel (0.05 x [0.01, 0.02, 0.03]);
// the int32 bias is added at those scales, and the requantize clips to the relu's range (from the
// output zero point -128). The dcast reads the requantized qint8 directly.
// CHECK-LABEL: func @conv_per_channel
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x4x2xf32>)
// CHECK: %[[Q:.*]] = "tf.UniformQuantize"(%[[X]], %{{.*}}, %{{.*}}) {Tin = f32, Tout = !tf_type.qint8, quantization_axis = -1 : i64, quantization_max_val = 127 : i64, quantization_min_val = -128 : i64}
// CHECK: %[[W8:.*]] = "tf.Const"() {{.*}}value = dense<1> : tensor<3x3x2x3xi8>
// CHECK: %[[B32:.*]] = "tf.Const"() {{.*}}value = dense<[10, 20, 30]> : tensor<3xi32>
// CHECK: %[[W:.*]] = "tf.Bitcast"(%[[W8]]) {T = i8, type = !tf_type.qint8}
// CHECK: %[[ACC_S:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-04, 1.000000e-03, 1.500000e-03]> : tensor<3xf32>
// CHECK: %[[ACC_Z:.*]] = "tf.Const"() {{.*}}value = dense<0> : tensor<3xi32>
// CHECK: %[[ACC:.*]] = "tf.UniformQuantizedConvolution"(%[[Q]], %[[W]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[ACC_S]], %[[ACC_Z]])
// CHECK-SAME: Tin = !tf_type.qint8, Tout = !tf_type.qint32
// CHECK-SAME: feature_group_count = 1 : i64
// CHECK-SAME: output_quantization_axis = 3 : i64
// CHECK-SAME: padding = "SAME", rhs_dilation = [1, 1], rhs_quantization_axis = 3 : i64, rhs_quantization_max_val = 127 : i64, rhs_quantization_min_val = -127 : i64, window_strides = [1, 1]
// CHECK-SAME: -> tensor<1x4x4x3x!tf_type.qint32>
// CHECK: %[[B:.*]] = "tf.Bitcast"(%[[B32]]) {T = i32, type = !tf_type.qint32}
// CHECK: %[[BIASED:.*]] = "tf.UniformQuantizedAdd"(%[[ACC]], %[[B]], %[[ACC_S]], %[[ACC_Z]], %[[ACC_S]], %[[ACC_Z]], %[[ACC_S]], %[[ACC_Z]])
// CHECK-SAME: lhs_quantization_axis = 3 : i64
// CHECK-SAME: rhs_quantization_axis = 0 : i64
// CHECK: %[[OUT_S:.*]] = "tf.Const"() {{.*}}value = dense<1.000000e-01> : tensor<f32>
// CHECK: %[[OUT_Z:.*]] = "tf.Const"() {{.*}}value = dense<-128> : tensor<i32>
// CHECK: %[[Y:.*]] = "tf.UniformRequantize"(%[[BIASED]], %[[ACC_S]], %[[ACC_Z]], %[[OUT_S]], %[[OUT_Z]])
// CHECK-SAME: input_quantization_axis = 3 : i64
// CHECK-SAME: output_quantization_axis = -1 : i64, output_quantization_max_val = 127 : i64, output_quantization_min_val = -128 : i64
// CHECK-NOT: tf.Bitcast
// CHECK: %[[R:.*]] = "tf.UniformDequantize"(%[[Y]], %{{.*}}, %{{.*}}) {Tin = !tf_type.qint8, Tout = f32
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

// Depthwise, per channel along the input channels, multiplier 2: one group per input channel, the
// [3, 3, 2, 2] filter as [3, 3, 1, 4] (output feature c * 2 + m), the scales repeated over the
// multiplier; relu6 with output zero point 0 and scale 0.1 clips to [0, 60].
// CHECK-LABEL: func @depthwise_multiplier
// CHECK-SAME: (%[[X8:.*]]: tensor<1x5x5x2xi8>)
// CHECK: %[[W8:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[\[\[}}1, 2, 3, 4]], {{\[\[}}5, 6, 7, 8]], {{.*}} : tensor<3x3x1x4xi8>
// CHECK: %[[W:.*]] = "tf.Bitcast"(%[[W8]])
// CHECK: %[[W_S:.*]] = "tf.Const"() {{.*}}value = dense<[0.00999999977, 0.00999999977, 2.000000e-02, 2.000000e-02]> : tensor<4xf32>
// CHECK: %[[X:.*]] = "tf.Bitcast"(%[[X8]]) {T = i8, type = !tf_type.qint8}
// CHECK: %[[ACC:.*]] = "tf.UniformQuantizedConvolution"(%[[X]], %[[W]], %{{.*}}, %{{.*}}, %[[W_S]],
// CHECK-SAME: feature_group_count = 2 : i64
// CHECK-SAME: padding = "VALID"
// CHECK-SAME: rhs_quantization_axis = 3 : i64
// CHECK-SAME: window_strides = [2, 2]
// CHECK-SAME: -> tensor<1x2x2x4x!tf_type.qint32>
// CHECK: %[[Y:.*]] = "tf.UniformRequantize"(%[[ACC]],
// CHECK-SAME: output_quantization_max_val = 60 : i64, output_quantization_min_val = 0 : i64
// CHECK: %[[Y8:.*]] = "tf.Bitcast"(%[[Y]]) {T = !tf_type.qint8, type = i8}
// CHECK: return %[[Y8]] : tensor<1x2x2x4xi8>

func.func @depthwise_multiplier(%s: tensor<1x5x5x2xi8>) -> tensor<1x2x2x4xi8> {
  %x = quant.scast %s : tensor<1x5x5x2xi8> to tensor<1x5x5x2x!quant.uniform<i8:f32, 5.000000e-02:2>>
  %w = "tf.Const"() {value = dense<[[[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[1, 2], [3, 4]]], [[[5, 6], [7, 8]], [[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[1, 2], [3, 4]]]]> : tensor<3x3x2x2xi8>, dtype = i8} : () -> tensor<3x3x2x2xi8>
  %wq = quant.scast %w : tensor<3x3x2x2xi8> to tensor<3x3x2x2x!quant.uniform<i8<-127:127>:f32:2, {1.000000e-02,2.000000e-02}>>
  %y = "tfq.quantized_op"(%x, %wq) {kind = "depthwise_conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "VALID", strides = [1, 2, 2, 1]}, activation = "RELU6"} : (tensor<1x5x5x2x!quant.uniform<i8:f32, 5.000000e-02:2>>, tensor<3x3x2x2x!quant.uniform<i8<-127:127>:f32:2, {1.000000e-02,2.000000e-02}>>) -> tensor<1x2x2x4x!quant.uniform<i8:f32, 1.000000e-01>>
  %r = quant.scast %y : tensor<1x2x2x4x!quant.uniform<i8:f32, 1.000000e-01>> to tensor<1x2x2x4xi8>
  return %r : tensor<1x2x2x4xi8>
}

// -----

// MatMul with transpose_b, per tensor: the weight constant is stored transposed ([K, N], as the
// 2-D dot takes it) and the old one is erased; all scales are scalars. Relu6 at output scale 0.05
// and zero point -128 clips to [-128, -128 + 120].
// CHECK-LABEL: func @matmul_transpose_b_per_tensor
// CHECK-NOT: tensor<2x3xi8>
// CHECK: %[[W8:.*]] = "tf.Const"() {{.*}}value = dense<{{\[\[}}1, 4], [2, 5], [3, 6]]> : tensor<3x2xi8>
// CHECK: "tf.UniformQuantizedDot"
// CHECK-SAME: lhs_quantization_axis = -1 : i64
// CHECK-SAME: output_quantization_axis = -1 : i64
// CHECK-SAME: rhs_quantization_axis = -1 : i64
// CHECK-SAME: (tensor<4x3x!tf_type.qint8>, tensor<3x2x!tf_type.qint8>, tensor<f32>, tensor<i32>, tensor<f32>, tensor<i32>, tensor<f32>, tensor<i32>) -> tensor<4x2x!tf_type.qint32>
// CHECK: "tf.UniformRequantize"
// CHECK-SAME: output_quantization_max_val = -8 : i64, output_quantization_min_val = -128 : i64

func.func @matmul_transpose_b_per_tensor(%s: tensor<4x3xi8>) -> tensor<4x2xi8> {
  %x = quant.scast %s : tensor<4x3xi8> to tensor<4x3x!quant.uniform<i8:f32, 1.000000e-01:5>>
  %w = "tf.Const"() {value = dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8>, dtype = i8} : () -> tensor<2x3xi8>
  %wq = quant.scast %w : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32, 2.000000e-02>>
  %y = "tfq.quantized_op"(%x, %wq) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = true}, activation = "RELU6"} : (tensor<4x3x!quant.uniform<i8:f32, 1.000000e-01:5>>, tensor<2x3x!quant.uniform<i8<-127:127>:f32, 2.000000e-02>>) -> tensor<4x2x!quant.uniform<i8:f32, 5.000000e-02:-128>>
  %r = quant.scast %y : tensor<4x2x!quant.uniform<i8:f32, 5.000000e-02:-128>> to tensor<4x2xi8>
  return %r : tensor<4x2xi8>
}

// -----

// An einsum whose output interleaves the weight's free dimension: the activation is flattened to
// [?, 3] (Reshape takes qint8), the dot is per channel along axis 1, the product is reshaped back
// in qint8 and transposed to the output order on the int8 storage (no qint8 Transpose kernel).
// CHECK-LABEL: func @einsum_transposed_output
// CHECK-SAME: (%[[X8:.*]]: tensor<?x5x3xi8>)
// CHECK: %[[X:.*]] = "tf.Bitcast"(%[[X8]])
// CHECK: %[[SHAPE:.*]] = "tf.Const"() {{.*}}value = dense<[-1, 3]> : tensor<2xi32>
// CHECK: %[[FLAT:.*]] = "tf.Reshape"(%[[X]], %[[SHAPE]]) {T = !tf_type.qint8, Tshape = i32} : {{.*}} -> tensor<?x3x!tf_type.qint8>
// CHECK: %[[ACC:.*]] = "tf.UniformQuantizedDot"(%[[FLAT]],
// CHECK-SAME: output_quantization_axis = 1 : i64
// CHECK-SAME: rhs_quantization_axis = 1 : i64
// CHECK-SAME: -> tensor<?x4x!tf_type.qint32>
// CHECK: %[[Y:.*]] = "tf.UniformRequantize"(%[[ACC]],
// CHECK-SAME: input_quantization_axis = 1 : i64
// CHECK: %[[BACK:.*]] = "tf.Reshape"(%[[Y]], %{{.*}}) {T = !tf_type.qint8, Tshape = i32} : {{.*}} -> tensor<?x5x4x!tf_type.qint8>
// CHECK: %[[Y8:.*]] = "tf.Bitcast"(%[[BACK]]) {T = !tf_type.qint8, type = i8}
// CHECK: %[[PERM:.*]] = "tf.Const"() {{.*}}value = dense<[0, 2, 1]> : tensor<3xi32>
// CHECK: %[[T:.*]] = "tf.Transpose"(%[[Y8]], %[[PERM]]) {T = i8, Tperm = i32} : {{.*}} -> tensor<?x4x5xi8>
// CHECK: return %[[T]]

func.func @einsum_transposed_output(%s: tensor<?x5x3xi8>) -> tensor<?x4x5xi8> {
  %x = quant.scast %s : tensor<?x5x3xi8> to tensor<?x5x3x!quant.uniform<i8:f32, 1.000000e-01>>
  %w = "tf.Const"() {value = dense<1> : tensor<3x4xi8>, dtype = i8} : () -> tensor<3x4xi8>
  %wq = quant.scast %w : tensor<3x4xi8> to tensor<3x4x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02,4.000000e-02}>>
  %y = "tfq.quantized_op"(%x, %wq) {kind = "einsum", op_attrs = {N = 2 : i64, T = f32, equation = "abc,cd->adb"}, activation = "NONE"} : (tensor<?x5x3x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<3x4x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02,4.000000e-02}>>) -> tensor<?x4x5x!quant.uniform<i8:f32, 2.000000e-01>>
  %r = quant.scast %y : tensor<?x4x5x!quant.uniform<i8:f32, 2.000000e-01>> to tensor<?x4x5xi8>
  return %r : tensor<?x4x5xi8>
}

// -----

// A float output: the biased qint32 accumulator is dequantized at its own scales, then relu in f32.
// CHECK-LABEL: func @float_output
// CHECK: %[[ACC:.*]] = "tf.UniformQuantizedDot"
// CHECK: %[[BIASED:.*]] = "tf.UniformQuantizedAdd"(%[[ACC]],
// CHECK: %[[F:.*]] = "tf.UniformDequantize"(%[[BIASED]], %{{.*}}, %{{.*}}) {Tin = !tf_type.qint32, Tout = f32, quantization_axis = 1 : i64
// CHECK: %[[R:.*]] = "tf.Relu"(%[[F]]) {T = f32}
// CHECK-NOT: tf.UniformRequantize
// CHECK: return %[[R]] : tensor<4x2xf32>

func.func @float_output(%s: tensor<4x3xi8>) -> tensor<4x2xf32> {
  %x = quant.scast %s : tensor<4x3xi8> to tensor<4x3x!quant.uniform<i8:f32, 1.000000e-01>>
  %w = "tf.Const"() {value = dense<1> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %wq = quant.scast %w : tensor<3x2xi8> to tensor<3x2x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>>
  %b = "tf.Const"() {value = dense<[10, 20]> : tensor<2xi32>, dtype = i32} : () -> tensor<2xi32>
  %bq = quant.scast %b : tensor<2xi32> to tensor<2x!quant.uniform<i32:f32:0, {1.000000e-03,2.000000e-03}>>
  %y = "tfq.quantized_op"(%x, %wq, %bq) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "RELU"} : (tensor<4x3x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<3x2x!quant.uniform<i8<-127:127>:f32:1, {1.000000e-02,2.000000e-02}>>, tensor<2x!quant.uniform<i32:f32:0, {1.000000e-03,2.000000e-03}>>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// Dynamic range: the f32 input goes to the Hybrid kernel (it quantizes per batch at run time),
// then the f32 bias and relu6.
// CHECK-LABEL: func @dynamic_range_conv
// CHECK-SAME: (%[[X:.*]]: tensor<?x4x4x2xf32>)
// CHECK: %[[B:.*]] = "tf.Const"() {{.*}}value = dense<[5.000000e-01, -5.000000e-01, 1.000000e+00]> : tensor<3xf32>
// CHECK: %[[W:.*]] = "tf.Bitcast"
// CHECK: %[[Y:.*]] = "tf.UniformQuantizedConvolutionHybrid"(%[[X]], %[[W]], %{{.*}}, %{{.*}}) {Tlhs = f32, Tout = f32, Trhs = !tf_type.qint8,
// CHECK-SAME: rhs_quantization_axis = 3 : i64
// CHECK-SAME: -> tensor<?x4x4x3xf32>
// CHECK: %[[BIASED:.*]] = "tf.BiasAdd"(%[[Y]], %[[B]])
// CHECK: %[[R:.*]] = "tf.Relu6"(%[[BIASED]])
// CHECK: return %[[R]]

func.func @dynamic_range_conv(%x: tensor<?x4x4x2xf32>) -> tensor<?x4x4x3xf32> {
  %w = "tf.Const"() {value = dense<1> : tensor<3x3x2x3xi8>, dtype = i8} : () -> tensor<3x3x2x3xi8>
  %wq = quant.scast %w : tensor<3x3x2x3xi8> to tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32:3, {1.000000e-02,2.000000e-02,3.000000e-02}>>
  %b = "tf.Const"() {value = dense<[0.5, -0.5, 1.0]> : tensor<3xf32>, dtype = f32} : () -> tensor<3xf32>
  %y = "tfq.quantized_op"(%x, %wq, %b) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}, activation = "RELU6"} : (tensor<?x4x4x2xf32>, tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32:3, {1.000000e-02,2.000000e-02,3.000000e-02}>>, tensor<3xf32>) -> tensor<?x4x4x3xf32>
  return %y : tensor<?x4x4x3xf32>
}

// -----

// CHECK-LABEL: func @dynamic_range_matmul
// CHECK: %[[Y:.*]] = "tf.UniformQuantizedDotHybrid"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {Tlhs = f32, Tout = f32, Trhs = !tf_type.qint8, rhs_quantization_axis = -1 : i64
// CHECK-SAME: -> tensor<?x2xf32>
// CHECK-NEXT: return %[[Y]]

func.func @dynamic_range_matmul(%x: tensor<?x3xf32>) -> tensor<?x2xf32> {
  %w = "tf.Const"() {value = dense<1> : tensor<3x2xi8>, dtype = i8} : () -> tensor<3x2xi8>
  %wq = quant.scast %w : tensor<3x2xi8> to tensor<3x2x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%x, %wq) {kind = "matmul", op_attrs = {T = f32, transpose_a = false, transpose_b = false}, activation = "NONE"} : (tensor<?x3xf32>, tensor<3x2x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}

// -----

// Gather: GatherV2 on the int8 table; the result keeps the table's parameters.
// CHECK-LABEL: func @gather
// CHECK-SAME: (%[[I:.*]]: tensor<3xi32>)
// CHECK: %[[T:.*]] = "tf.Const"() {{.*}}value = dense<7> : tensor<10x4xi8>
// CHECK: %[[G:.*]] = "tf.GatherV2"(%[[T]], %[[I]], %{{.*}}) {Taxis = i32, Tindices = i32, Tparams = i8, batch_dims = 0 : i64}
// CHECK-NEXT: return %[[G]]

func.func @gather(%i: tensor<3xi32>) -> tensor<3x4xi8> {
  %t = "tf.Const"() {value = dense<7> : tensor<10x4xi8>, dtype = i8} : () -> tensor<10x4xi8>
  %tq = quant.scast %t : tensor<10x4xi8> to tensor<10x4x!quant.uniform<i8:f32, 2.000000e-02>>
  %axis = "tf.Const"() {value = dense<0> : tensor<i32>, dtype = i32} : () -> tensor<i32>
  %y = "tfq.quantized_op"(%tq, %i, %axis) {kind = "gather", op_attrs = {Taxis = i32, Tindices = i32, Tparams = f32, batch_dims = 0 : i64}, activation = "NONE"} : (tensor<10x4x!quant.uniform<i8:f32, 2.000000e-02>>, tensor<3xi32>, tensor<i32>) -> tensor<3x4x!quant.uniform<i8:f32, 2.000000e-02>>
  %r = quant.scast %y : tensor<3x4x!quant.uniform<i8:f32, 2.000000e-02>> to tensor<3x4xi8>
  return %r : tensor<3x4xi8>
}

// -----

// 16-bit activations: the kernels take qint8 only, so the op is lowered as tfq-lower-to-tf
// lowers it (a Conv2D on f32 casts) and its casts become plain TF ops.
// CHECK-LABEL: func @int16_activations
// CHECK-NOT: Uniform
// CHECK: "tf.Cast"({{.*}}) {DstT = i16, SrcT = f32
// CHECK: "tf.Conv2D"({{.*}}) {T = f32
// CHECK-NOT: Uniform
// CHECK: return

func.func @int16_activations(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x3xf32> {
  %xq = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!quant.uniform<i16<-32767:32767>:f32, 1.000000e-04>>
  %w = "tf.Const"() {value = dense<1> : tensor<3x3x2x3xi8>, dtype = i8} : () -> tensor<3x3x2x3xi8>
  %wq = quant.scast %w : tensor<3x3x2x3xi8> to tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%xq, %wq) {kind = "conv2d", op_attrs = {T = f32, data_format = "NHWC", dilations = [1, 1, 1, 1], explicit_paddings = [], padding = "SAME", strides = [1, 1, 1, 1], use_cudnn_on_gpu = true}, activation = "NONE"} : (tensor<1x4x4x2x!quant.uniform<i16<-32767:32767>:f32, 1.000000e-04>>, tensor<3x3x2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<1x4x4x3x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-04>>
  %r = quant.dcast %y : tensor<1x4x4x3x!quant.uniform<i16<-32767:32767>:f32, 2.000000e-04>> to tensor<1x4x4x3xf32>
  return %r : tensor<1x4x4x3xf32>
}

// -----

// A weight with batch dimensions of its own: no 2-D dot expresses it, so the op is lowered as
// tfq-lower-to-tf lowers it (int32 BatchMatMulV2 and a TF requantize).
// CHECK-LABEL: func @batch_matmul_batched_weight
// CHECK-NOT: tf.UniformQuantizedDot
// CHECK: "tf.BatchMatMulV2"({{.*}}) {T = i32, adj_x = false, adj_y = true}
// CHECK-NOT: tf.UniformQuantizedDot
// CHECK: return
func.func @batch_matmul_batched_weight(%s: tensor<2x4x3xi8>) -> tensor<2x4x2xi8> {
  %x = quant.scast %s : tensor<2x4x3xi8> to tensor<2x4x3x!quant.uniform<i8:f32, 1.000000e-01>>
  %w = "tf.Const"() {value = dense<1> : tensor<2x2x3xi8>, dtype = i8} : () -> tensor<2x2x3xi8>
  %wq = quant.scast %w : tensor<2x2x3xi8> to tensor<2x2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>
  %y = "tfq.quantized_op"(%x, %wq) {kind = "batch_matmul", op_attrs = {T = f32, adj_x = false, adj_y = true}, activation = "NONE"} : (tensor<2x4x3x!quant.uniform<i8:f32, 1.000000e-01>>, tensor<2x2x3x!quant.uniform<i8<-127:127>:f32, 1.000000e-02>>) -> tensor<2x4x2x!quant.uniform<i8:f32, 2.000000e-01>>
  %r = quant.scast %y : tensor<2x4x2x!quant.uniform<i8:f32, 2.000000e-01>> to tensor<2x4x2xi8>
  return %r : tensor<2x4x2xi8>
}
