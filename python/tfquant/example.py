"""The bundled example: a small image classifier (conv + batch norm + ReLU6, depthwise conv,
max pool, dense) with batch-norm statistics set from data, and 128 calibration samples.

Weights are random (no download), seeded, so the example is the same on every machine.
"""
from __future__ import annotations

import os
import shutil

import numpy as np

SEED = 7
IMAGE_SIZE = 32


def build(float_dir: str) -> tuple[str, str]:
    """Write the float SavedModel to `float_dir` and its samples beside it; returns both paths."""
    import keras

    keras.utils.set_random_seed(SEED)
    layers = keras.layers
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = image
    for filters in (16, 32):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 1)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10, name="logits")(x)
    model = keras.Model(image, x)
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.0
    model(rng.uniform(-1, 1, (32, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32), training=True)
    shutil.rmtree(float_dir, ignore_errors=True)
    model.export(float_dir, verbose=False)
    samples_path = os.path.join(os.path.dirname(os.path.abspath(float_dir)), "samples.npz")
    np.savez(samples_path, image=rng.uniform(-1, 1, (128, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32))
    return float_dir, samples_path
