"""Add a Keras-2-style model to a zoo directory: one library function per layer call, optimizer slots.

    .venv/bin/python bench/make_layered.py ZOO_DIR

Keras 2's `model.save()` (tf_keras, not installed here) writes a SavedModel whose signature
calls the model's function, which calls one traced function per layer, and whose object graph
holds the optimizer's slot variables. This builds the same structure without tf_keras: an
8-layer emotion-classifier-sized CNN (48x48 grey images, 7 classes) of tf.Modules, each layer's
`__call__` a tf.function, trained for a few steps with `tf.compat.v1.train.AdamOptimizer`.
`tf.saved_model.load` cannot rebuild it ('_UserObject' object has no attribute 'add_slot');
TensorFlow's quantizer and tfquant read the MetaGraph. Written as ZOO_DIR/layered_cnn in the
zoo's layout (saved_model/, calib.npz, eval.npz, meta.json), so `compare_ptq.py --models
layered_cnn` and `import_export.py` take it like any zoo model.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

NAME = "layered_cnn"
SEED = 7


class Conv(tf.Module):
    def __init__(self, rng, k: int, c_in: int, c_out: int, stride: int, name: str):
        super().__init__(name=name)
        self.kernel = tf.Variable(rng.normal(0, (2 / (k * k * c_in)) ** 0.5, (k, k, c_in, c_out)).astype(np.float32))
        self.bias = tf.Variable(np.zeros(c_out, np.float32))
        self.stride = stride

    @tf.function
    def __call__(self, x):
        return tf.nn.relu(tf.nn.conv2d(x, self.kernel, self.stride, "SAME") + self.bias)


class Dense(tf.Module):
    def __init__(self, rng, c_in: int, c_out: int, relu: bool, name: str):
        super().__init__(name=name)
        self.kernel = tf.Variable(rng.normal(0, (2 / c_in) ** 0.5, (c_in, c_out)).astype(np.float32))
        self.bias = tf.Variable(np.zeros(c_out, np.float32))
        self.relu = relu

    @tf.function
    def __call__(self, x):
        y = tf.matmul(x, self.kernel) + self.bias
        return tf.nn.relu(y) if self.relu else y


class Classifier(tf.Module):
    def __init__(self, rng):
        super().__init__(name="emotion")
        self.blocks = [Conv(rng, 3, 1, 32, 1, "conv1"), Conv(rng, 3, 32, 32, 2, "conv2"),
                       Conv(rng, 3, 32, 64, 1, "conv3"), Conv(rng, 3, 64, 64, 2, "conv4"),
                       Conv(rng, 3, 64, 128, 2, "conv5"), Conv(rng, 3, 128, 128, 2, "conv6")]
        self.head = [Dense(rng, 3 * 3 * 128, 256, True, "dense1"), Dense(rng, 256, 7, False, "logits")]

    @tf.function
    def __call__(self, image):
        x = image
        for block in self.blocks:
            x = block(x)
        x = tf.reshape(x, [-1, 3 * 3 * 128])
        for layer in self.head:
            x = layer(x)
        return x


def main(zoo_dir: str) -> None:
    rng = np.random.default_rng(SEED)
    model = Classifier(rng)
    optimizer = tf.compat.v1.train.AdamOptimizer(1e-3)
    images = rng.uniform(0, 1, (256, 48, 48, 1)).astype(np.float32)
    labels = (images.reshape(256, -1).mean(1) * 70).astype(np.int32) % 7  # a learnable toy target
    for step in range(20):
        batch = slice(step * 12 % 240, step * 12 % 240 + 16)
        optimizer.minimize(lambda: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels[batch], model(images[batch]))), var_list=model.trainable_variables)
    model.optimizer = optimizer

    @tf.function(input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.float32, name="image")])
    def serve(image):
        return {"logits": model(image)}

    root = os.path.join(zoo_dir, NAME)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    model.serve = serve
    tf.saved_model.save(model, os.path.join(root, "saved_model"), signatures={"serving_default": serve})
    np.savez(os.path.join(root, "calib.npz"), image=images[:100])
    np.savez(os.path.join(root, "eval.npz"), image=images[192:])
    with open(os.path.join(root, "meta.json"), "w") as f:
        json.dump({"input": "image", "outputs": ["logits"], "n_calib": 100, "n_eval": 64}, f, indent=2)
    from tensorflow.python.saved_model import loader_impl
    (meta_graph,) = loader_impl.parse_saved_model(os.path.join(root, "saved_model")).meta_graphs
    print(NAME, f"{len(meta_graph.graph_def.library.function)} library functions")


if __name__ == "__main__":
    main(sys.argv[1])
