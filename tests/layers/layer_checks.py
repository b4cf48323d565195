"""Checks every layer gets: config round trip, .keras save/load, gradients, masks."""

import os

import keras
import numpy as np


def wrap(layer, inputs, call_kwargs=None):
    """A functional model around ``layer`` for NumPy ``inputs`` (list or array)."""
    call_kwargs = call_kwargs or {}
    arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    tensors = [keras.Input(a.shape[1:], dtype=str(a.dtype), batch_size=None) for a in arrays]
    args = tensors if isinstance(inputs, (list, tuple)) else tensors[0]
    out = layer(args, **call_kwargs)
    return keras.Model(tensors, out)


def check_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone


def check_save_load(layer, inputs, tmp_path, call_kwargs=None):
    model = wrap(layer, inputs, call_kwargs)
    feed = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    want = model.predict(feed, verbose=0)
    path = os.path.join(str(tmp_path), "layer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    got = loaded.predict(feed, verbose=0)
    for a, b in zip(keras.tree.flatten(want), keras.tree.flatten(got)):
        np.testing.assert_array_equal(a, b)
    return loaded


def check_gradients(layer, inputs, call_kwargs=None):
    """One SGD step on a squared-output loss: loss finite, every trainable
    weight moved (non-zero gradient) and stayed finite."""
    model = wrap(layer, inputs, call_kwargs)
    feed = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    before = [np.array(w) for w in model.trainable_weights]
    assert before, "layer has no trainable weights"
    target = np.zeros(model.output.shape[1:], "float32")[None].repeat(len(feed[0]), 0) + 0.5
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loss = model.train_on_batch(feed, target)
    assert np.isfinite(loss)
    for w, b in zip(model.trainable_weights, before):
        a = np.array(w)
        assert np.isfinite(a).all(), w.path
        assert not np.array_equal(a, b), f"no gradient reached {w.path}"
