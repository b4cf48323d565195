"""int8 in the layers: the composite layers build Keras int8 ``Dense`` sublayers from their
config (``quantization``), follow a later ``quantize`` in ``get_config``, round-trip through
``.keras``; ``TokenEmbedding``'s tied dense mode in int8; bad values."""

import keras
import numpy as np
import pytest

from layers import FeedForward, MultiHeadAttention, PerformerAttention, Pooler, TaylorAttention, TokenEmbedding

X = np.random.default_rng(0).standard_normal((2, 5, 16)).astype("float32")
LAYERS = {
    "ffn": lambda q: FeedForward(32, quantization=q),
    "mha": lambda q: MultiHeadAttention(num_heads=2, head_size=8, quantization=q),
    "performer": lambda q: PerformerAttention(num_heads=2, head_size=8, nb_features=8, seed=1, quantization=q),
    "taylor": lambda q: TaylorAttention(num_heads=2, head_size=8, quantization=q),
    "pooler": lambda q: Pooler(16, quantization=q),
}


def _dense_kernels(layer):
    return [w for w in layer.weights if w.path.rpartition("/")[2] == "kernel"]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_an_int8_config_builds_int8_kernels_and_round_trips(name):
    layer = LAYERS[name]("int8")
    layer(X)
    kernels = _dense_kernels(layer)
    assert kernels and all(w.dtype == "int8" for w in kernels)
    assert all(w.dtype == "int8" for w in layer.weights if w.path.rpartition("/")[2] == "kernel")  # no float kernel
    again = type(layer).from_config(layer.get_config())
    again(X)
    assert again.get_config() == layer.get_config() and again.quantization == "int8"
    for a, b in zip(layer.weights, again.weights):
        assert a.path == b.path and a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_quantized_layer_saves_and_loads_with_the_same_outputs(name, tmp_path):
    inputs = keras.Input((5, 16))
    layer = LAYERS[name](None)
    model = keras.Model(inputs, layer(inputs))
    reference = model.predict(X, verbose=0)
    model.quantize("int8")
    assert layer.quantization == "int8" and layer.get_config()["quantization"] == "int8"
    out = model.predict(X, verbose=0)
    assert np.abs(out - reference).max() <= 0.05 * np.abs(reference).max()
    model.save(tmp_path / "int8.keras")
    loaded = keras.saving.load_model(tmp_path / "int8.keras")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), out, atol=1e-6)


def test_token_embedding_dense_mode_in_int8_follows_the_float_one(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    table = TokenEmbedding(40, 16)
    hidden = table(ids)
    model = keras.Model(ids, table(hidden, mode="dense"))
    batch = np.arange(40).reshape(2, 20) % 40  # every id, 0 included
    reference = model.predict(batch, verbose=0)
    model.quantize("int8")
    assert table.embeddings.dtype == "int8" and tuple(table.embeddings_scale.shape) == (40,)
    out = model.predict(batch, verbose=0)
    assert np.abs(out - reference).max() <= 0.03 * np.abs(reference).max()
    assert np.mean(out.argmax(-1) == reference.argmax(-1)) > 0.9
    model.save(tmp_path / "table.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "table.keras").predict(batch, verbose=0), out,
                               atol=1e-6)


def test_bad_quantization_values_name_the_layer_and_the_choices():
    with pytest.raises(ValueError, match=r"FeedForward: quantization must be None or one of \('int8',\), got 'int4'"):
        FeedForward(8, quantization="int4")
    table = TokenEmbedding(10, 4)
    table.build((None,))
    with pytest.raises(ValueError, match="TokenEmbedding quantizes to 'int8' only, got 'float8'"):
        table.quantize("float8")
