"""Tiny float SavedModels for the tests: each builds in well under a second.

Every builder is `build_<name>(path) -> dict` and returns at least
`{"inputs": {name: sample batch}, "signature": "serving_default"}`, plus
`"signatures": {key: {name: sample batch}}` for every signature of the model and `"cases"`,
the (signature key, inputs) pairs a test should run (the cond model has one per branch).
Weights are seeded numpy arrays held in tf.Variables, so every build of a model is the same model.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SERVING = "serving_default"


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _var(rng: np.random.Generator, shape, scale: float = 0.5, name: str | None = None) -> tf.Variable:
    return tf.Variable(rng.normal(0.0, scale, size=shape).astype(np.float32), name=name)


def _save(module: tf.Module, path: str, signatures) -> None:
    tf.saved_model.save(module, path, signatures=signatures)


def _result(inputs: dict, **extra) -> dict:
    """The builder's answer; "signatures" maps every signature key to sample inputs, and "cases" lists
    every (signature, inputs) pair a test should run (more than one per signature where it matters)."""
    out = {"inputs": inputs, "signature": SERVING, "signatures": {SERVING: inputs}}
    out.update(extra)
    out.setdefault("cases", list(out["signatures"].items()))
    return out


def build_conv_bn(path: str) -> dict:
    """Conv2D + Keras-style inference batch norm + Relu6, then Conv2D + FusedBatchNormV3 + AddV2 bias."""
    rng = _rng(1)
    m = tf.Module()
    m.k1 = _var(rng, (3, 3, 3, 8))
    m.mean1 = _var(rng, (8,), 0.1)
    m.var1 = tf.Variable(rng.uniform(0.5, 1.5, size=(8,)).astype(np.float32))
    m.gamma1 = tf.Variable(rng.uniform(0.5, 1.5, size=(8,)).astype(np.float32))
    m.beta1 = _var(rng, (8,), 0.1)
    m.k2 = _var(rng, (3, 3, 8, 16), 0.3)  # 1152 elements: above the variable threshold
    m.scale2 = tf.Variable(rng.uniform(0.5, 1.5, size=(16,)).astype(np.float32))
    m.offset2 = _var(rng, (16,), 0.1)
    m.mean2 = _var(rng, (16,), 0.1)
    m.var2 = tf.Variable(rng.uniform(0.5, 1.5, size=(16,)).astype(np.float32))
    m.bias2 = _var(rng, (16,), 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32, name="x")])
    def serve(x):
        y = tf.nn.conv2d(x, m.k1, strides=1, padding="SAME")
        y = (y - m.mean1) * tf.math.rsqrt(m.var1 + 1e-3) * m.gamma1 + m.beta1
        y = tf.nn.relu6(y)
        y = tf.nn.conv2d(y, m.k2, strides=2, padding="VALID")
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, m.scale2, m.offset2, mean=m.mean2, variance=m.var2,
                                                   epsilon=1e-3, is_training=False)
        return {"output_0": y + m.bias2}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(101).normal(size=(2, 8, 8, 3)).astype(np.float32)})


def build_matmul(path: str) -> dict:
    """Two layers of MatMul + AddV2 bias + Relu."""
    rng = _rng(2)
    m = tf.Module()
    m.w1 = _var(rng, (16, 32))
    m.b1 = _var(rng, (32,), 0.1)
    m.w2 = _var(rng, (32, 4))
    m.b2 = _var(rng, (4,), 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="x")])
    def serve(x):
        y = tf.nn.relu(tf.matmul(x, m.w1) + m.b1)
        return {"output_0": tf.nn.relu(tf.matmul(y, m.w2) + m.b2)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(102).normal(size=(3, 16)).astype(np.float32)})


def build_depthwise(path: str) -> dict:
    """DepthwiseConv2dNative + BiasAdd + Relu6."""
    rng = _rng(3)
    m = tf.Module()
    m.k = _var(rng, (3, 3, 4, 2))
    m.b = _var(rng, (8,), 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 4], tf.float32, name="x")])
    def serve(x):
        y = tf.nn.depthwise_conv2d(x, m.k, strides=[1, 1, 1, 1], padding="SAME")
        return {"output_0": tf.nn.relu6(tf.nn.bias_add(y, m.b))}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(103).normal(size=(2, 6, 6, 4)).astype(np.float32)})


def build_embedding(path: str) -> dict:
    """GatherV2 of int32 token ids from a variable table, reduce_mean over the sequence, MatMul."""
    rng = _rng(4)
    m = tf.Module()
    m.table = _var(rng, (20, 8))
    m.w = _var(rng, (8, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.int32, name="ids")])
    def serve(ids):
        e = tf.gather(m.table, ids, axis=0)
        return {"output_0": tf.matmul(tf.reduce_mean(e, axis=1), m.w)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"ids": _rng(104).integers(0, 20, size=(3, 5)).astype(np.int32)})


def build_cond(path: str) -> dict:
    """Two tf.cond: one on reduce_sum(x) > 0 (If: its true branch reads a variable, its false branch a
    captured eager tensor that is not a variable), one on a scalar bool input (StatelessIf)."""
    rng = _rng(5)
    m = tf.Module()
    m.w = _var(rng, (4, 4))
    captured = tf.constant(rng.normal(size=(4, 4)).astype(np.float32))  # eager tensor, not a variable

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                  tf.TensorSpec([], tf.bool, name="flag")])
    def serve(x, flag):
        y = tf.cond(tf.reduce_sum(x) > 0,
                    lambda: tf.matmul(x, m.w.read_value()),
                    lambda: tf.matmul(x, captured) - 1.0)
        return {"output_0": tf.cond(flag, lambda: y * 2.0, lambda: y + 1.0)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    x = np.abs(_rng(105).normal(size=(2, 4)).astype(np.float32)) + 0.1  # reduce_sum(x) > 0
    cases = [(SERVING, {"x": sx, "flag": np.bool_(flag)}) for sx in (x, -x) for flag in (True, False)]
    return _result(cases[0][1], cases=cases)


def build_two_signatures(path: str) -> dict:
    """Two tf.functions with different input names, saved as "serving_default" and "other"; each reads
    its own big weight (same shape, different values, above the exporter's variable threshold)."""
    rng = _rng(6)
    m = tf.Module()
    m.w1 = _var(rng, (40, 30), 0.2)
    m.w2 = _var(rng, (40, 30), 0.2)

    @tf.function(input_signature=[tf.TensorSpec([None, 40], tf.float32, name="features")])
    def serve(features):
        return {"logits": tf.matmul(features, m.w1)}

    @tf.function(input_signature=[tf.TensorSpec([None, 40], tf.float32, name="a"),
                                  tf.TensorSpec([None, 30], tf.float32, name="b")])
    def other(a, b):
        h = tf.matmul(a, m.w2)
        return {"sum": tf.nn.relu(h + b), "prod": h * b}

    m.serve, m.other = serve, other
    _save(m, path, {SERVING: serve, "other": other})
    r = _rng(106)
    serve_in = {"features": r.normal(size=(2, 40)).astype(np.float32)}
    other_in = {"a": serve_in["features"], "b": r.normal(size=(2, 30)).astype(np.float32)}
    return _result(serve_in, signatures={SERVING: serve_in, "other": other_in})


def build_batch_matmul(path: str) -> dict:
    """BatchMatMulV2 of the input with a weight."""
    rng = _rng(7)
    m = tf.Module()
    m.w = _var(rng, (6, 4))

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 6], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.raw_ops.BatchMatMulV2(x=x, y=m.w.read_value())}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(107).normal(size=(2, 3, 6)).astype(np.float32)})


def build_einsum(path: str) -> dict:
    """tf.einsum "bij,jk->bik" with a variable."""
    rng = _rng(8)
    m = tf.Module()
    m.w = _var(rng, (6, 5))

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 6], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.einsum("bij,jk->bik", x, m.w)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(108).normal(size=(2, 3, 6)).astype(np.float32)})


def build_multi_output(path: str) -> dict:
    """Several outputs with distinct names and dtypes; inputs not named "x", listed out of alphabetical order."""
    rng = _rng(9)
    m = tf.Module()
    m.w = _var(rng, (4, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="pixels"),
                                  tf.TensorSpec([], tf.float32, name="beta")])
    def serve(pixels, beta):
        logits = tf.matmul(pixels, m.w) * beta
        return {"scores": tf.nn.softmax(logits), "logits": logits,
                "classes": tf.argmax(logits, axis=-1, output_type=tf.int32)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    r = _rng(109)
    return _result({"pixels": r.normal(size=(3, 4)).astype(np.float32), "beta": np.float32(0.5)})


def build_embedding_output(path: str) -> dict:
    """GatherV2 whose result is itself a signature output ("embeddings"), and also feeds a MatMul."""
    rng = _rng(10)
    m = tf.Module()
    m.table = _var(rng, (20, 8))
    m.w = _var(rng, (8, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.int32, name="ids")])
    def serve(ids):
        e = tf.gather(m.table, ids, axis=0)
        return {"embeddings": e, "output_0": tf.matmul(tf.reduce_mean(e, axis=1), m.w)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"ids": _rng(110).integers(0, 20, size=(3, 5)).astype(np.int32)})


def build_cond_dense(path: str) -> dict:
    """MatMul + bias + Relu outside any branch, then tf.cond (If) whose branches each hold a MatMul."""
    rng = _rng(11)
    m = tf.Module()
    m.w = _var(rng, (8, 8))
    m.b = _var(rng, (8,), 0.1)
    m.w_true = _var(rng, (8, 4))
    m.w_false = _var(rng, (8, 4))

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def serve(x):
        h = tf.nn.relu(tf.matmul(x, m.w) + m.b)
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: tf.matmul(h, m.w_true), lambda: tf.matmul(h, m.w_false) - 1.0)
        return {"output_0": y}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    x = np.abs(_rng(111).normal(size=(2, 8)).astype(np.float32)) + 0.1  # reduce_sum(x) > 0
    return _result({"x": x}, cases=[(SERVING, {"x": x}), (SERVING, {"x": -x})])


def build_wide_channels(path: str) -> dict:
    """A 256x256 MatMul + bias whose output channels' weight ranges span two decades (per-channel matters)."""
    rng = _rng(12)
    m = tf.Module()
    column_scales = np.logspace(-2, 0, 256).astype(np.float32)
    m.w = tf.Variable(rng.normal(0.0, 0.1, size=(256, 256)).astype(np.float32) * column_scales)
    m.b = _var(rng, (256,), 0.01)

    @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.matmul(x, m.w) + m.b}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(112).normal(size=(2, 256)).astype(np.float32)})


def build_while(path: str) -> dict:
    """A tf.while_loop (While: its body reads a variable) running a MatMul + Relu `n` times, `n` an input."""
    rng = _rng(13)
    m = tf.Module()
    m.w = _var(rng, (8, 8), 0.3)

    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x"),
                                  tf.TensorSpec([], tf.int32, name="n")])
    def serve(x, n):
        _, y = tf.while_loop(lambda i, y: i < n, lambda i, y: (i + 1, tf.nn.relu(tf.matmul(y, m.w))),
                             [tf.constant(0), x])
        return {"output_0": y}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    x = _rng(113).normal(size=(3, 8)).astype(np.float32)
    cases = [(SERVING, {"x": x, "n": np.int32(n)}) for n in (0, 3)]
    return _result(cases[1][1], cases=cases)


def build_slot_variables(path: str) -> dict:
    """A Dense + Relu whose object graph holds an optimizer's slot variables, as Keras 2's
    `model.save()` after `fit()` writes: `tf.saved_model.load` fails on it with
    "'_UserObject' object has no attribute 'add_slot'". `tf.compat.v1.train.AdamOptimizer`
    (in TensorFlow itself, unlike tf_keras) is trackable and writes the same slot references.
    "functions" runs the original, since it cannot be loaded to compare with."""
    rng = _rng(14)
    m = tf.Module()
    m.w = _var(rng, (6, 5), name="dense/kernel")
    m.b = _var(rng, (5,), 0.1, name="dense/bias")
    optimizer = tf.compat.v1.train.AdamOptimizer(0.01)
    batch = tf.constant(rng.normal(size=(4, 6)).astype(np.float32))
    optimizer.minimize(lambda: tf.reduce_sum(tf.square(tf.matmul(batch, m.w) + m.b)), var_list=[m.w, m.b])
    m.optimizer = optimizer

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.nn.relu(tf.matmul(x, m.w) + m.b)}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    return _result({"x": _rng(114).normal(size=(3, 6)).astype(np.float32)},
                   functions={SERVING: serve.get_concrete_function()})


TF1_TAGS = ["serve", "cpu"]


def build_tf1_builder(path: str) -> dict:
    """A TF1 `SavedModelBuilder` model with tags ["serve", "cpu"] and signature "predict": a
    reference variable (VariableV2) and a resource variable, restored by the graph's own saver."""
    rng = _rng(15)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x = tf.compat.v1.placeholder(tf.float32, [None, 6], name="x")
        w = tf.compat.v1.Variable(rng.normal(0, 0.5, size=(6, 4)).astype(np.float32), name="w", use_resource=False)
        b = tf.compat.v1.Variable(rng.normal(0, 0.1, size=(4,)).astype(np.float32), name="b", use_resource=True)
        y = tf.nn.relu(tf.matmul(x, w) + b, name="y")
        session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(path)
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(session, TF1_TAGS, signature_def_map={"predict": signature})
        builder.save()
    inputs = {"x": _rng(115).normal(size=(3, 6)).astype(np.float32)}
    return _result(inputs, signature="predict", signatures={"predict": inputs}, tags=TF1_TAGS)


def build_dynamic_conv(path: str) -> dict:
    """Conv2D + Relu on a [None, None, None, 3] input: the output's TensorSpec is [None, None, None, 8]
    (a vocabulary file is an asset, and assets.extra holds a file, both to be carried over)."""
    rng = _rng(16)
    m = tf.Module()
    m.k = _var(rng, (3, 3, 3, 8), 0.3)
    vocab = os.path.join(os.path.dirname(path), "vocab.txt")
    with open(vocab, "w") as f:
        f.write("a\nb\n")
    m.vocab = tf.saved_model.Asset(vocab)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
    def serve(image):
        return {"features": tf.nn.relu(tf.nn.conv2d(image, m.k, strides=1, padding="SAME"))}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "warmup.txt"), "w") as f:
        f.write("warm up\n")
    return _result({"image": _rng(116).normal(size=(2, 6, 5, 3)).astype(np.float32)})


MODELS = {
    "conv_bn": build_conv_bn,
    "matmul": build_matmul,
    "depthwise": build_depthwise,
    "embedding": build_embedding,
    "cond": build_cond,
    "two_signatures": build_two_signatures,
    "batch_matmul": build_batch_matmul,
    "einsum": build_einsum,
    "multi_output": build_multi_output,
    "embedding_output": build_embedding_output,
    "cond_dense": build_cond_dense,
    "wide_channels": build_wide_channels,
    "while": build_while,
    "slot_variables": build_slot_variables,
    "tf1_builder": build_tf1_builder,
    "dynamic_conv": build_dynamic_conv,
}


def build_cond_conv(path: str) -> dict:
    """tf.cond (If) on reduce_sum(x) > 0 whose branches each hold a Conv2D reading its own variable:
    + bias + Relu in the true branch, alone then - 1 in the false branch."""
    rng = _rng(17)
    m = tf.Module()
    m.k_true = _var(rng, (3, 3, 3, 4), 0.3)
    m.b_true = _var(rng, (4,), 0.1)
    m.k_false = _var(rng, (3, 3, 3, 4), 0.3)

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 3], tf.float32, name="x")])
    def serve(x):
        y = tf.cond(tf.reduce_sum(x) > 0,
                    lambda: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, m.k_true, 1, "SAME"), m.b_true)),
                    lambda: tf.nn.conv2d(x, m.k_false, 1, "SAME") - 1.0)
        return {"output_0": y}

    m.serve = serve
    _save(m, path, {SERVING: serve})
    x = np.abs(_rng(117).normal(size=(2, 6, 6, 3)).astype(np.float32)) + 0.1  # reduce_sum(x) > 0
    return _result({"x": x}, cases=[(SERVING, {"x": x}), (SERVING, {"x": -x})])


def build_shared_weight(path: str) -> dict:
    """Two signatures, "serving_default" (dense + Relu) and "scores" (dense then Softmax, another input
    name), both reading one 256x256 weight variable."""
    rng = _rng(18)
    m = tf.Module()
    m.w = _var(rng, (256, 256), 0.1)

    @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32, name="x")])
    def serve(x):
        return {"output_0": tf.nn.relu(tf.matmul(x, m.w))}

    @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32, name="features")])
    def scores(features):
        return {"probabilities": tf.nn.softmax(tf.matmul(features, m.w))}

    m.serve, m.scores = serve, scores
    _save(m, path, {SERVING: serve, "scores": scores})
    r = _rng(118)
    serve_in = {"x": r.normal(size=(2, 256)).astype(np.float32)}
    scores_in = {"features": r.normal(size=(2, 256)).astype(np.float32)}
    return _result(serve_in, signatures={SERVING: serve_in, "scores": scores_in})


MODELS.update(cond_conv=build_cond_conv, shared_weight=build_shared_weight)
