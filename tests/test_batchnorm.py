"""Precise BatchNorm statistics (``openl3lite.training.batchnorm``) on a small nested model."""

import numpy as np
import pytest


def _nested_model():
    import keras

    keras.utils.set_random_seed(3)
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="dense"),
                              keras.layers.BatchNormalization(name="bn_inner")], name="inner")
    model = keras.Sequential([keras.Input((5,)), inner,
                              keras.layers.BatchNormalization(name="bn_outer")], name="outer")
    return model, inner


def test_moving_statistics_become_the_average_of_batch_statistics():
    from openl3lite.training.batchnorm import batchnorm_layers, recompute_batchnorm_statistics

    model, inner = _nested_model()
    bn_inner, bn_outer = inner.get_layer("bn_inner"), model.get_layer("bn_outer")
    assert batchnorm_layers(model) == [bn_inner, bn_outer]
    weights_before = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(n, 5)).astype("float32") for n in (8, 16, 12)]

    assert recompute_batchnorm_statistics(model, iter(batches)) == 3

    kernel, bias = inner.get_layer("dense").get_weights()
    hidden = [b @ kernel + bias for b in batches]
    np.testing.assert_allclose(np.asarray(bn_inner.moving_mean),
                               np.mean([h.mean(axis=0) for h in hidden], axis=0),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn_inner.moving_variance),
                               np.mean([h.var(axis=0) for h in hidden], axis=0),
                               rtol=1e-4, atol=1e-4)
    # the outer layer saw each batch normalised by its own statistics: mean 0, variance ~1
    np.testing.assert_allclose(np.asarray(bn_outer.moving_mean), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn_outer.moving_variance), 1.0, atol=1e-2)
    assert bn_inner.momentum == bn_outer.momentum == 0.99
    trainable_before = [w for w, v in zip(weights_before, model.weights) if v.trainable]
    for before, now in zip(trainable_before, model.trainable_weights):
        np.testing.assert_array_equal(before, np.asarray(now))

    # inference now normalises a batch like training mode did
    out_train = np.asarray(model(batches[0], training=True))
    recompute_batchnorm_statistics(model, [batches[0]])
    np.testing.assert_allclose(np.asarray(model(batches[0], training=False)), out_train,
                               atol=1e-2)


def test_only_the_given_layers_are_recomputed_and_bad_calls_refused():
    from openl3lite.training.batchnorm import recompute_batchnorm_statistics

    model, inner = _nested_model()
    bn_inner, bn_outer = inner.get_layer("bn_inner"), model.get_layer("bn_outer")
    batch = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    recompute_batchnorm_statistics(model, [batch], layers=[bn_outer])
    kernel, bias = inner.get_layer("dense").get_weights()
    batch_mean = (batch @ kernel + bias).mean(axis=0)
    assert np.abs(batch_mean).max() > 0.1
    # not chosen: an ordinary training-mode update (momentum 0.99), not a replacement
    np.testing.assert_allclose(np.asarray(bn_inner.moving_mean), 0.01 * batch_mean, atol=1e-5)
    assert bn_outer.momentum == 0.99
    with pytest.raises(ValueError, match="no batches"):
        recompute_batchnorm_statistics(model, [])
    import keras

    plain = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        recompute_batchnorm_statistics(plain, [batch])
