import keras
import numpy as np
import pytest

from layers import PositionEmbedding
from tests.layers.layer_checks import check_config_round_trip, check_gradients, check_save_load


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_plain_adds_rows():
    layer = PositionEmbedding(10, 4, embeddings_initializer="random_normal")
    x = np.random.rand(2, 6, 4).astype("float32")
    np.testing.assert_allclose(_np(layer(x)), x + _np(layer.embeddings)[:6][None], rtol=1e-6)


def test_hierarchical_formula_against_numpy():
    n, alpha = 8, 0.4
    layer = PositionEmbedding(n, 3, hierarchical=True, embeddings_initializer="random_normal")
    out = _np(layer(np.zeros((1, 50, 3), "float32")))[0]
    p = _np(layer.embeddings).astype("float64")
    u = (p - alpha * p[:1]) / (1 - alpha)
    for t in range(50):
        i, j = divmod(t, n)
        np.testing.assert_allclose(out[t], alpha * u[i] + (1 - alpha) * u[j], atol=1e-5)
    np.testing.assert_array_equal(out[:n], p[:n].astype("float32"))  # exact below n


def test_per_row_and_per_token_start_index():
    """``start_index`` of shape (batch,): row offsets; of shape (batch, length): every token's own
    position (siblings of a tree share one), both through the hierarchical formula past ``n``."""
    layer = PositionEmbedding(8, 3, hierarchical=True, embeddings_initializer="random_normal")
    x = np.zeros((2, 3, 3), "float32")
    every = keras.ops.convert_to_numpy(layer(np.zeros((1, 40, 3), "float32")))[0]
    rows = keras.ops.convert_to_numpy(layer(x, start_index=np.array([2, 30], "int32")))
    np.testing.assert_allclose(rows, np.stack([every[2:5], every[30:33]]), atol=1e-6)
    positions = np.array([[5, 6, 6], [0, 33, 33]], "int32")
    tokens = keras.ops.convert_to_numpy(layer(x, start_index=positions))
    np.testing.assert_allclose(tokens, every[positions], atol=1e-6)


def test_limits_and_bad_alpha():
    with pytest.raises(ValueError, match=r"10 positions.*hierarchical_position=True"):
        PositionEmbedding(10, 4)(np.zeros((1, 11, 4), "float32"))
    with pytest.raises(ValueError, match="100"):
        PositionEmbedding(10, 4, hierarchical=0.3)(np.zeros((1, 101, 4), "float32"))
    with pytest.raises(ValueError, match="alpha"):
        PositionEmbedding(10, 4, hierarchical=1.5)


def test_config_save_gradients(tmp_path):
    x = np.random.rand(2, 30, 4).astype("float32")
    clone = check_config_round_trip(PositionEmbedding(8, 4, hierarchical=0.3))
    assert clone.alpha == 0.3
    check_save_load(PositionEmbedding(8, 4, hierarchical=True, embeddings_initializer="random_normal"), x, tmp_path)
    check_gradients(PositionEmbedding(8, 4, hierarchical=True), x)


def test_positions_independent_of_other_tokens():
    # the mask test of a position embedding: output at t depends on x_t only
    layer = PositionEmbedding(8, 4, hierarchical=True, embeddings_initializer="random_normal")
    x = np.random.rand(1, 20, 4).astype("float32")
    y = x.copy()
    y[:, 15:] = 9.0
    np.testing.assert_array_equal(_np(layer(x))[:, :15], _np(layer(y))[:, :15])
