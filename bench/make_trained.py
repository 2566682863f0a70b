"""Add trained models to a zoo directory (besides the zoo's own digits_cnn): real data, and synthesized audio.

    .venv/bin/python bench/make_trained.py ZOO_DIR [--only cancer_mlp digits_mlp]

Real data that scikit-learn ships inside its wheel (no download, works offline):

* cancer_mlp: an MLP (30 -> 64 -> 32 -> 2, ReLU) on the Wisconsin breast-cancer table
  (`load_breast_cancer`, 569 rows), features standardized by a Normalization layer inside the
  model (so the SavedModel takes the raw measurements); 400 rows train, 169 evaluate.
* digits_mlp: a wider MLP (64 -> 256 -> 256 -> 10, ReLU) on the 8x8 digits (`load_digits`),
  flattened; the zoo's digits_cnn split (1400 train, 397 evaluate).

Data synthesized here (seeded, deterministic):

* audio_pitch: the issue's kind of pitch model, whose front end takes logs of tiny values. Input a
  raw frame (1024 samples at 16 kHz, name "audio"); in the graph, a CQT-like filterbank (Hann-windowed
  cosines and sines at 2 bins a semitone, MIDI 48-124, two MatMuls with constant bases),
  power = re^2 + im^2, log(power + 1e-10), a per-frame normalization (minus the mean, divided by the
  std); then a trained MLP (153 -> 256 -> 128 -> 48 logits, one per semitone MIDI 52-99). Trained on
  16000 harmonic tones (random fundamental, up to 10 harmonics with random decay, white noise 10-40 dB
  under the tone, a level uniform over -52..0 dB, a 1e-5 noise floor) for 8 epochs (~20 s); eval
  512 such tones with labels; calib 224 tones, 64 quiet ones (-90..-70 dB) and 32 frames of noise
  floor alone. Float accuracy 0.994. The level range is tuned so that TensorFlow's quantizers are
  bad for the issue's reason: int8 rounds a quiet frame's input (quantize_saved_model, 6.4 dB SQNR)
  or its bins' power (the TFLite converter, which quantizes the log too: 1.4 dB) to zero, whose log
  is log(1e-10); -60 dB gives 3.1 and 1.5 dB, -40 dB 13.4 and 1.6 dB. The fix the accuracy tools
  should find: tfquant with the two front-end MatMuls at 16-bit activations
  (`units=[{"node_name": ".*log_spectrum.*", "method": "static_range_int16x8"}]`) gives 27.2 dB at
  the int8 size; kept float, 43.2 dB at 3.3x the size.

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


# audio_pitch: frames of SAMPLE_RATE audio, FRAME samples long; classes are the semitones
# MIDI FIRST_NOTE .. FIRST_NOTE + N_NOTES - 1; the filterbank has BINS_PER_SEMITONE bins a semitone
# from MIDI LOWEST_BIN to HIGHEST_BIN (below Nyquist).
SAMPLE_RATE, FRAME = 16000, 1024
FIRST_NOTE, N_NOTES = 52, 48
LOWEST_BIN, HIGHEST_BIN, BINS_PER_SEMITONE = 48, 124, 2
LOG_EPS = 1e-10          # the front end's log(power + LOG_EPS): the log of tiny values
GAIN_DB = (-52.0, 0.0)   # a tone's peak level, uniform in dB: the wide dynamic range
NOISE_FLOOR = 1e-5       # a microphone's self-noise (amplitude), under every frame


def midi_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


def filterbank() -> tuple[np.ndarray, np.ndarray]:
    """A CQT-like filterbank over one frame: Hann-windowed cosines and sines at log-spaced
    frequencies, (FRAME, bins) each, so that x @ re and x @ im are the bins' real and imaginary parts."""
    freqs = midi_hz(np.arange(LOWEST_BIN, HIGHEST_BIN + 1e-9, 1.0 / BINS_PER_SEMITONE))
    t = np.arange(FRAME) / SAMPLE_RATE
    window = np.hanning(FRAME)[:, None] / FRAME * 4.0  # a full-scale sine's bin is ~1 in magnitude
    phase = 2 * np.pi * t[:, None] * freqs[None, :]
    return (window * np.cos(phase)).astype(np.float32), (window * -np.sin(phase)).astype(np.float32)


def synthesize_tones(rng: np.random.Generator, n: int, gain_db=GAIN_DB) -> tuple[np.ndarray, np.ndarray]:
    """n harmonic tones (labels: semitone class): a fundamental within 0.3 semitone of its class,
    up to 10 harmonics with random decaying amplitudes and phases (none above 0.9 Nyquist),
    white noise 10-40 dB under the tone, a level uniform in dB over `gain_db`, and the noise floor."""
    labels = rng.integers(0, N_NOTES, n)
    f0 = midi_hz(FIRST_NOTE + labels + rng.uniform(-0.3, 0.3, n))
    t = np.arange(FRAME) / SAMPLE_RATE
    tone = np.zeros((n, FRAME))
    decay = rng.uniform(0.3, 1.5, n)
    for h in range(1, 11):
        amplitude = rng.uniform(0.2, 1.0, n) * h ** -decay * (h * f0 < 0.45 * SAMPLE_RATE)
        tone += amplitude[:, None] * np.sin(2 * np.pi * h * f0[:, None] * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    tone /= np.abs(tone).max(axis=1, keepdims=True)
    snr = 10 ** (rng.uniform(10, 40, n) / 20)
    tone += rng.standard_normal((n, FRAME)) / snr[:, None] / 3
    gain = 10 ** (rng.uniform(*gain_db, n) / 20) / np.abs(tone).max(axis=1)
    audio = tone * gain[:, None] + NOISE_FLOOR * rng.standard_normal((n, FRAME))
    return audio.astype(np.float32), labels.astype(np.int64)


class LogSpectrum(keras.layers.Layer):
    """The front end: the filterbank's power per bin, its log, normalized per frame (mean 0, std 1)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        re, im = filterbank()
        self.re = self.add_weight(shape=re.shape, initializer=keras.initializers.Constant(re), trainable=False,
                                  name="basis_re")
        self.im = self.add_weight(shape=im.shape, initializer=keras.initializers.Constant(im), trainable=False,
                                  name="basis_im")

    def call(self, audio):
        ops = keras.ops
        re, im = ops.matmul(audio, self.re), ops.matmul(audio, self.im)
        log_power = ops.log(re * re + im * im + LOG_EPS)
        centered = log_power - ops.mean(log_power, axis=-1, keepdims=True)
        return centered / ops.sqrt(ops.mean(centered * centered, axis=-1, keepdims=True))


def audio_pitch():
    """Pitch class (48 semitones) of a 1024-sample frame at 16 kHz, through a log-power filterbank
    front end in the graph (the issue's pitch model: logs of tiny values, then a division)."""
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    x_train, y_train = synthesize_tones(rng, 16000)
    x_eval, y_eval = synthesize_tones(rng, 512)
    tones, _ = synthesize_tones(rng, 224)
    quiet, _ = synthesize_tones(rng, 64, gain_db=(-90.0, -70.0))
    silent = (NOISE_FLOOR * rng.standard_normal((32, FRAME))).astype(np.float32)
    calib = np.concatenate([tones, quiet, silent])[rng.permutation(320)]
    L = keras.layers
    inp = keras.Input((FRAME,), name="audio")
    h = LogSpectrum(name="log_spectrum")(inp)
    h = L.Dense(256, activation="relu")(h)
    h = L.Dense(128, activation="relu")(h)
    out = L.Dense(N_NOTES, name="logits")(h)
    m = _fit(keras.Model(inp, out), x_train, y_train, epochs=8)
    return m, calib, x_eval, y_eval


MODELS = {"cancer_mlp": cancer_mlp, "digits_mlp": digits_mlp, "audio_pitch": audio_pitch}


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
