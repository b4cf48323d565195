"""FeedForward, BiasAdd, Pooler, PaddingMask, UniLMMask."""

import keras
import numpy as np

from layers import BiasAdd, FeedForward, PaddingMask, Pooler, UniLMMask, gelu_erf, gelu_tanh, get_activation
from tests.layers.layer_checks import check_config_round_trip, check_gradients, check_save_load


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_feed_forward(tmp_path):
    layer = FeedForward(16, activation="gelu_new")
    x = np.random.rand(2, 5, 8).astype("float32")
    y = _np(layer(x))
    w1, b1, w2, b2 = [_np(w) for w in layer.weights]
    h = x @ w1 + b1
    h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    np.testing.assert_allclose(y, h @ w2 + b2, atol=1e-5)
    # position-wise: changing position 4 leaves positions 0-3 unchanged
    x2 = x.copy()
    x2[:, 4] = 7
    np.testing.assert_array_equal(_np(layer(x2))[:, :4], y[:, :4])
    check_config_round_trip(layer)
    check_save_load(FeedForward(16), x, tmp_path)
    check_gradients(FeedForward(16), x)


def test_activations():
    x = np.linspace(-3, 3, 7).astype("float32")
    from math import erf

    np.testing.assert_allclose(_np(gelu_erf(x)), [0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x], atol=1e-6)
    assert get_activation("gelu_new") is gelu_tanh and get_activation("gelu") is gelu_erf
    assert np.abs(_np(gelu_erf(x)) - _np(gelu_tanh(x))).max() > 1e-5


def test_bias_add_and_pooler(tmp_path):
    x = np.random.rand(2, 5, 8).astype("float32")
    check_config_round_trip(BiasAdd())
    check_save_load(BiasAdd(), x, tmp_path)
    check_gradients(BiasAdd(), x)
    pooler = Pooler(8)
    out = _np(pooler(x))
    k, b = [_np(w) for w in pooler.weights]
    np.testing.assert_allclose(out, np.tanh(x[:, 0] @ k + b), atol=1e-5)
    x2 = x.copy()
    x2[:, 1:] = 3.0  # only the first token matters
    np.testing.assert_array_equal(_np(pooler(x2)), out)
    check_config_round_trip(pooler)
    check_save_load(Pooler(8), x, tmp_path)
    check_gradients(Pooler(8), x)


def test_masks(tmp_path):
    ids = np.array([[5, 6, 7, 0, 0]])
    seg = np.array([[0, 0, 1, 1, 0]])
    assert _np(PaddingMask()(ids)).tolist() == [[True, True, True, False, False]]
    m = _np(UniLMMask()([ids, seg]))[0]
    expected = np.array([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0]], bool)  # cumsum(seg) = 0 0 1 2 2; ids 3-4 pad
    np.testing.assert_array_equal(m, expected)
    check_config_round_trip(PaddingMask(pad_id=3))
    check_save_load(PaddingMask(), ids.astype("int32"), tmp_path)
