"""tfq-prepare-lifting on a real Keras MobileNetV2 (small input, random weights): every batch
norm folds into the conv weights and the outputs stay the float model's."""
import numpy as np
import pytest
import tensorflow as tf

import tfquant
from tfquant.mlir import ops_named
from tfquant.pipeline import run_pipeline


@pytest.mark.slow
def test_mobilenet_v2_batch_norms_fold(tmp_path):
    import keras
    keras.utils.set_random_seed(3)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10,
                                           classifier_activation=None)
    rng = np.random.default_rng(3)
    for layer in model.layers:  # batch-norm statistics from data, so that activations are realistic
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32), training=True)
    path = str(tmp_path / "mobilenet_v2")
    model.export(path, verbose=False)

    module = tfquant.import_saved_model(path, ["serving_default"])
    assert ops_named(module.operation, "tf.FusedBatchNormV3", "tf.Rsqrt", "tf.Mul")
    run_pipeline(module, "builtin.module(tfq-prepare-lifting)")
    assert not ops_named(module.operation, "tf.FusedBatchNormV3", "tf.Rsqrt", "tf.Mul", "tf.Identity")
    assert len(ops_named(module.operation, "tf.BiasAdd")) >= 50

    images = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    # Keras numbers its input names per process ("keras_tensor_2" after other tests built models).
    (input_name,) = signature.structured_input_signature[1]
    expected = signature(**{input_name: images})
    with module.context:
        actual = tfquant.to_concrete_function(module, "serving_default")(**{input_name: tf.constant(images)})
    # Folding changes float rounding in each of 52 layers: the zoo's 224x224 MobileNetV2 moves by
    # 7e-6 of its largest output, this 0.35-width one with untrained weights by 2e-5.
    for name, value in expected.items():
        reference = value.numpy()
        np.testing.assert_allclose(actual[name].numpy(), reference, rtol=0, atol=5e-5 * np.abs(reference).max())
        assert np.linalg.norm(actual[name].numpy() - reference) <= 2e-5 * np.linalg.norm(reference)
