import keras
import numpy as np
import pytest

from layers import TokenEmbedding
from tests.layers.layer_checks import check_config_round_trip, check_gradients, check_save_load


def test_lookup_and_tied_projection():
    layer = TokenEmbedding(50, 8)
    ids = np.array([[3, 4, 0]])
    h = keras.ops.convert_to_numpy(layer(ids))
    e = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_allclose(h[0, 1], e[4])
    logits = keras.ops.convert_to_numpy(layer(h, mode="dense"))
    np.testing.assert_allclose(logits, h @ e.T, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        layer(h, mode="bogus")


def test_config_save_gradients(tmp_path):
    ids = np.array([[1, 2, 3], [4, 5, 0]], "int32")
    layer = TokenEmbedding(20, 4, mask_zero=True)
    check_config_round_trip(layer)
    check_save_load(TokenEmbedding(20, 4), ids, tmp_path)
    check_gradients(TokenEmbedding(20, 4), ids)


def test_mask_only_for_ids():
    layer = TokenEmbedding(20, 4, mask_zero=True)
    ids = np.array([[1, 0]], "int32")
    assert keras.ops.convert_to_numpy(layer.compute_mask(ids)).tolist() == [[True, False]]
    # changing a padded id changes only the padded row
    a = keras.ops.convert_to_numpy(layer(np.array([[1, 2, 0]])))
    b = keras.ops.convert_to_numpy(layer(np.array([[1, 2, 5]])))
    np.testing.assert_array_equal(a[:, :2], b[:, :2])
