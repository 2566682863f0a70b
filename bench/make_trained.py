"""Add models trained on real data to a zoo directory (besides the zoo's own digits_cnn).

    .venv/bin/python bench/make_trained.py ZOO_DIR [--only cancer_mlp digits_mlp]

Real data that scikit-learn ships inside its wheel (no download, works offline):

* cancer_mlp: an MLP (30 -> 64 -> 32 -> 2, ReLU) on the Wisconsin breast-cancer table
  (`load_breast_cancer`, 569 rows), features standardized by a Normalization layer inside the
  model (so the SavedModel takes the raw measurements); 400 rows train, 169 evaluate.
* digits_mlp: a wider MLP (64 -> 256 -> 256 -> 10, ReLU) on the 8x8 digits (`load_digits`),
  flattened; the zoo's digits_cnn split (1400 train, 397 evaluate).

(`fetch_olivetti_faces` and keras.datasets would need the network; neither is cached here.)
Each is written as ZOO_DIR/NAME in the zoo's layout (saved_model/, calib.npz, eval.npz with
`__labels__`, meta.json with the float accuracy) by the zoo's own `build`, so
`compare_latency.py`, `compare_methods.py` and `compare_ptq.py --models NAME` take it like any
zoo model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "zoo"))

import numpy as np  # noqa: E402
import keras  # noqa: E402
import make_zoo  # noqa: E402  (the zoo's layout: build(name, out_dir) over make_zoo.MODELS)

SEED = 1234


def _fit(model, x, y, epochs):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def cancer_mlp():
    """MLP on scikit-learn's breast-cancer table (binary, 30 features)."""
    from sklearn.datasets import load_breast_cancer
    keras.utils.set_random_seed(SEED)
    d = load_breast_cancer()
    x, y = d.data.astype(np.float32), d.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    n_train = 400
    L = keras.layers
    inp = keras.Input((30,), name="features")
    norm = L.Normalization()
    norm.adapt(x[:n_train])
    h = L.Dense(64, activation="relu")(norm(inp))
    h = L.Dense(32, activation="relu")(h)
    out = L.Dense(2, name="logits")(h)
    m = _fit(keras.Model(inp, out), x[:n_train], y[:n_train], epochs=40)
    return m, x[:256], x[n_train:], y[n_train:]


def digits_mlp():
    """A wider MLP on scikit-learn's 8x8 digits, flattened (same split as the zoo's digits_cnn)."""
    from sklearn.datasets import load_digits
    keras.utils.set_random_seed(SEED)
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0).reshape(-1, 64)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    n_train = 1400
    L = keras.layers
    inp = keras.Input((64,), name="pixels")
    h = L.Dense(256, activation="relu")(inp)
    h = L.Dense(256, activation="relu")(h)
    out = L.Dense(10, name="logits")(h)
    m = _fit(keras.Model(inp, out), x[:n_train], y[:n_train], epochs=30)
    return m, x[:256], x[n_train:], y[n_train:]


MODELS = {"cancer_mlp": cancer_mlp, "digits_mlp": digits_mlp}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo_dir")
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    make_zoo.MODELS.update(MODELS)
    for name in args.only or MODELS:
        meta = make_zoo.build(name, args.zoo_dir)
        print(name, json.dumps(meta), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
