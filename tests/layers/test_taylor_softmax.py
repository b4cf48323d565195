"""TaylorSoftmax layer and taylor_softmax_crossentropy loss."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from layers import TaylorSoftmax, taylor_softmax_crossentropy
from layers.taylor_softmax import taylor_exp


def np64(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def np_taylor(x, order):
    return sum(np.asarray(x, "float64") ** k / math.factorial(k) for k in range(order + 1))


@pytest.mark.parametrize("order", [2, 4, 6])
def test_values_positive_and_normalised(order):
    x = np.random.default_rng(0).standard_normal((3, 5, 7)).astype("float32") * 4
    x[0, 0, :3] = [-30.0, -5.0, 40.0]  # far from 0, both signs
    for axis in (-1, 1):
        p = np64(TaylorSoftmax(order=order, axis=axis)(x))
        f = np_taylor(x, order)
        np.testing.assert_allclose(p, f / f.sum(axis=axis, keepdims=True), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-5)
        assert np.all(p > 0)
    t = np.linspace(-20, 20, 4001)
    assert np.all(np64(taylor_exp(t, order)) > 0)
    assert np.min(np_taylor(t, 2)) >= 0.5 - 1e-12  # 1 + x + x^2/2 = ((x + 1)^2 + 1) / 2


def test_order_2_example_and_approaches_softmax_near_zero():
    p = np64(TaylorSoftmax()(np.array([[0.0, 1.0, -1.0]], "float32")))
    np.testing.assert_allclose(p, [[0.25, 0.625, 0.125]], rtol=1e-6)
    x = np.array([[0.01, -0.02, 0.03]], "float32")
    np.testing.assert_allclose(np64(TaylorSoftmax(order=4)(x)), np64(ops.softmax(x)), rtol=1e-6)


def test_mask():
    x = np.array([[1.0, 2.0, 3.0, 4.0]], "float32")
    mask = np.array([[True, True, False, True]])
    p = np64(TaylorSoftmax()(x, mask=mask))
    f = np_taylor(x, 2) * mask
    np.testing.assert_allclose(p, f / f.sum(), rtol=1e-6)
    assert p[0, 2] == 0


@pytest.mark.parametrize("order", [1, 3, 5, 0, -2, 2.5, True])
def test_bad_order(order):
    with pytest.raises(ValueError, match="order"):
        TaylorSoftmax(order=order)
    with pytest.raises(ValueError, match="order"):
        taylor_softmax_crossentropy(np.eye(3), np.zeros((3, 3)), order=order)


def test_crossentropy_values_sparse_and_soft_labels():
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((6, 5)) * 3).astype("float32")
    labels = rng.integers(0, 5, size=6)
    onehot = np.eye(5)[labels]
    f = np_taylor(z, 2)
    ref = -np.log(f[np.arange(6), labels] / f.sum(-1))
    np.testing.assert_allclose(np64(taylor_softmax_crossentropy(onehot, z)), ref, rtol=1e-5)
    np.testing.assert_allclose(np64(taylor_softmax_crossentropy(labels, z, sparse=True)), ref, rtol=1e-5)
    np.testing.assert_allclose(np64(taylor_softmax_crossentropy(labels[:, None], z, sparse=True)), ref, rtol=1e-5)
    soft = rng.dirichlet(np.ones(5), size=6)
    ref_soft = -(soft * np.log(f / f.sum(-1, keepdims=True))).sum(-1)
    np.testing.assert_allclose(np64(taylor_softmax_crossentropy(soft, z)), ref_soft, rtol=1e-5)
    f4 = np_taylor(z, 4)
    np.testing.assert_allclose(np64(taylor_softmax_crossentropy(onehot, z, order=4)),
                               -np.log(f4[np.arange(6), labels] / f4.sum(-1)), rtol=1e-5)
    # same as the cross-entropy of the layer's probabilities
    p = np64(TaylorSoftmax()(z))
    np.testing.assert_allclose(np64(taylor_softmax_crossentropy(onehot, z)), -np.log(p[np.arange(6), labels]),
                               rtol=1e-5)


def test_layer_config_and_serialization():
    layer = TaylorSoftmax(order=4, axis=1, name="ts")
    config = layer.get_config()
    clone = TaylorSoftmax.from_config(config)
    assert clone.get_config() == config and (clone.order, clone.axis) == (4, 1)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, TaylorSoftmax) and restored.get_config() == config
    registered = keras.saving.get_registered_object("keras_longctx>taylor_softmax_crossentropy")
    assert registered is taylor_softmax_crossentropy
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(taylor_softmax_crossentropy)) is taylor_softmax_crossentropy


def test_training_and_keras_save_load(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = np.eye(3)[rng.integers(0, 3, size=32)].astype("float32")
    inp = keras.Input((4,))
    logits = keras.layers.Dense(3)(inp)
    model = keras.Model(inp, [logits, TaylorSoftmax(order=2)(logits)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=[taylor_softmax_crossentropy, None])
    before = [np64(w) for w in model.trainable_weights]
    history = model.fit(x, [y, y], batch_size=32, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(not np.allclose(a, b) for a, b in zip(before, [np64(w) for w in model.trainable_weights]))
    path = str(tmp_path / "taylor_softmax.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_allclose(np64(a), np64(b), rtol=1e-6)
    assert loaded.loss[0] is taylor_softmax_crossentropy or "taylor_softmax_crossentropy" in str(loaded.loss)
