"""TaylorAttention: feature map identity, linear mode == quadratic mode (causal or not,
masked, any chunk size), probabilities, auto mode, cache decoding, masks, serialization,
training, bad inputs."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from layers import MultiHeadAttention, TaylorAttention
from layers.taylor_attention import taylor_feature_dim, taylor_features

H, DK = 2, 4
B, N, C = 2, 12, 5  # one shape almost everywhere (JAX compiles each eager op once per shape)


def np64(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def padding(b=B, n=N):
    mask = np.ones((b, n), bool)
    mask[0, n - 7:] = False
    mask[1, n - 2:] = False
    return mask


def np_taylor_attention(q, k, v, key_mask=None, causal=False, full_mask=None):
    """float64 reference: w = 1 + s + s^2 / 2, s = q.k / sqrt(d), masked, row-normalised."""
    q, k, v = (np.asarray(t, "float64") for t in (q, k, v))
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    w = 1 + s + s**2 / 2
    mask = np.ones(w.shape, bool)
    if key_mask is not None:
        mask &= np.asarray(key_mask, bool)[:, None, None, :]
    if full_mask is not None:
        mask &= np.asarray(full_mask, bool)[:, None]
    if causal:
        mask &= np.tril(np.ones(w.shape[-2:], bool))
    w = np.where(mask, w, 0.0)
    p = w / w.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", p, v), p


def heads(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((B, N, H, DK)).astype("float32") for _ in range(3)]


def pair(**kw):
    """A linear and a quadratic layer sharing the same weights."""
    lin = TaylorAttention(num_heads=H, head_size=DK, mode="linear", **kw)
    quad = TaylorAttention(num_heads=H, head_size=DK, mode="quadratic", **kw)
    x = np.zeros((B, N, 16), "float32")
    lin(x), quad(x)
    quad.set_weights(lin.get_weights())
    return lin, quad


def test_feature_map_inner_product_is_the_taylor_kernel():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 5, 7))
    fx, fy = np64(taylor_features(x)), np64(taylor_features(y))
    assert fx.shape == (5, taylor_feature_dim(7)) == (5, 1 + 7 + 28)
    s = np.sum(x * y, axis=-1) / math.sqrt(7)
    np.testing.assert_allclose(np.sum(fx * fy, axis=-1), 1 + s + s**2 / 2, rtol=1e-5)
    # unscaled variant (attention_scale=False): s = x.y
    fx, fy = np64(taylor_features(x, 1.0)), np64(taylor_features(y, 1.0))
    s = np.sum(x * y, axis=-1)
    np.testing.assert_allclose(np.sum(fx * fy, axis=-1), 1 + s + s**2 / 2, rtol=1e-5)


@pytest.mark.parametrize("causal, chunk_size", [
    (False, C),
    (True, 4),  # divides the length 12
    (True, C),  # does not: padded internally
])
def test_linear_mode_equals_quadratic_mode(causal, chunk_size):
    q, k, v = heads()
    mask = padding()
    lin = TaylorAttention(num_heads=H, head_size=DK, mode="linear", chunk_size=chunk_size)
    quad = TaylorAttention(num_heads=H, head_size=DK, mode="quadratic")
    lin.build((None, None, 16)), quad.build((None, None, 16))
    km = ops.convert_to_tensor(mask)
    a = np64(lin.attend(q, k, v, key_mask=km, causal=causal))
    b = np64(quad.attend(q, k, v, key_mask=km, causal=causal))
    ref, _ = np_taylor_attention(q, k, v, key_mask=mask, causal=causal)
    assert np.max(np.abs(a - b)) / np.max(np.abs(b)) < 1e-5
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b, ref, rtol=1e-4, atol=1e-5)


def test_full_layers_agree_across_modes():
    lin, quad = pair(chunk_size=C)
    x = np.random.default_rng(1).standard_normal((B, N, 16)).astype("float32")
    mask = padding()
    for causal in (False, True):
        a = np64(lin(x, attention_mask=mask, use_causal_mask=causal))
        b = np64(quad(x, attention_mask=mask, use_causal_mask=causal))
        assert np.max(np.abs(a - b)) / np.max(np.abs(b)) < 1e-5


def test_weights_are_positive_probabilities():
    q, k, _ = heads()
    q, k = 3 * q, 3 * k  # large scores, including very negative ones
    mask = padding()
    layer = TaylorAttention(num_heads=H, head_size=DK)
    lq = ops.arange(N)[:, None] >= ops.arange(N)[None, :]
    full = ops.logical_and(ops.convert_to_tensor(mask)[:, None, None, :], lq[None, None])
    p = np64(layer.attention_weights(q, k, full))
    _, ref = np_taylor_attention(q, k, q, key_mask=mask, causal=True)
    np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    allowed = np.broadcast_to(np64(full).astype(bool), p.shape)
    assert np.all(p[allowed] > 0) and np.all(p[~allowed] == 0)
    s = np.linspace(-50, 50, 1001)
    assert np.min(1 + s + s**2 / 2) >= 0.5


def test_auto_mode_rule():
    layer = TaylorAttention(num_heads=H, head_size=64)
    f = layer.feature_dim
    assert f == 1 + 64 + 64 * 65 // 2 == 2145
    assert layer.resolve_mode(512, 512) == "quadratic"
    assert layer.resolve_mode(2 * f, 2 * f) == "quadratic"  # n^2 <= f * 2n  <=>  n <= 2f
    assert layer.resolve_mode(2 * f + 1, 2 * f + 1) == "linear"
    assert layer.resolve_mode(None, 100) == "linear"
    assert layer.resolve_mode(10**5, 10**5, full_mask=True) == "quadratic"
    assert layer.resolve_mode(10**5, 10**5, decoding=True) == "quadratic"
    assert TaylorAttention(num_heads=1, head_size=4, mode="linear").resolve_mode(2, 2) == "linear"
    assert TaylorAttention(num_heads=1, head_size=4, mode="linear").resolve_mode(1, 9, decoding=True) == "quadratic"


def test_full_mask_works_in_quadratic_and_auto_modes():
    x = np.random.default_rng(0).standard_normal((B, N, 16)).astype("float32")
    full = np.tril(np.ones((N, N), bool))[None].repeat(B, 0)
    layer = TaylorAttention(num_heads=H, head_size=DK)  # auto -> quadratic
    np.testing.assert_allclose(np64(layer(x, attention_mask=full)), np64(layer(x, use_causal_mask=True)),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="full"):
        TaylorAttention(num_heads=H, head_size=DK, mode="linear")(x, attention_mask=full)
    with pytest.raises(ValueError, match="full"):  # already when a functional model is built
        TaylorAttention(num_heads=H, head_size=DK, mode="linear")(
            keras.Input((N, 16)), attention_mask=keras.Input((N, N), dtype="bool"))


def test_cache_decoding_matches_full_causal_pass():
    layer = TaylorAttention(num_heads=H, head_size=DK, mode="linear", chunk_size=C)
    x = np.random.default_rng(0).standard_normal((B, N, 16)).astype("float32")
    full = np64(layer(x, use_causal_mask=True))
    cache = ops.zeros((B, 2, H, N, DK))  # (batch, 2, heads, max_len, size)
    steps = []
    for t in range(N):
        o, cache = layer(x[:, t:t + 1], use_causal_mask=True, cache=cache, cache_index=t)
        steps.append(np64(o))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_padded_tokens_do_not_change_real_outputs(causal):
    layer = TaylorAttention(num_heads=H, head_size=DK, mode="linear", chunk_size=C)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, N, 16)).astype("float32")
    mask = padding()
    y = np.where(mask[:, :, None], x, 30.0 * rng.standard_normal(x.shape)).astype("float32")
    a = np64(layer(x, attention_mask=mask, use_causal_mask=causal))
    b = np64(layer(y, attention_mask=mask, use_causal_mask=causal))
    np.testing.assert_allclose(a[mask], b[mask], rtol=1e-5, atol=1e-6)


def test_same_trainable_weights_as_multi_head_attention():
    x = np.zeros((B, N, 16), "float32")
    mha, tay = MultiHeadAttention(num_heads=H, head_size=DK), TaylorAttention(num_heads=H, head_size=DK)
    mha(x), tay(x)
    assert [w.shape for w in mha.get_weights()] == [w.shape for w in tay.get_weights()]
    tay.set_weights(mha.get_weights())


def test_get_config_round_trip():
    layer = TaylorAttention(num_heads=3, head_size=4, mode="linear", chunk_size=32, attention_scale=False, name="t")
    config = layer.get_config()
    clone = TaylorAttention.from_config(config)
    assert clone.get_config() == config
    assert (clone.mode, clone.chunk_size, clone.attention_scale) == ("linear", 32, False)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, TaylorAttention) and restored.get_config() == config


def _model(layer, length=None):
    x = keras.Input((length, 16))
    m = keras.Input((length,), dtype="bool")
    y = layer(x, attention_mask=m, use_causal_mask=True)
    return keras.Model([x, m], keras.layers.Dense(3)(y))


def test_keras_save_load_reproduces_outputs(tmp_path):
    layer = TaylorAttention(num_heads=H, head_size=DK, mode="linear", chunk_size=C)
    model = _model(layer)
    x = np.random.rand(B, N, 16).astype("float32")
    mask = padding()
    ref = np64(model.predict([x, mask], verbose=0))
    path = str(tmp_path / "taylor.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    new = [lay for lay in loaded.layers if isinstance(lay, TaylorAttention)][0]
    assert new.get_config() == layer.get_config()
    np.testing.assert_allclose(np64(loaded.predict([x, mask], verbose=0)), ref, rtol=1e-6, atol=1e-6)
    q = np.random.rand(B, N, H, DK).astype("float32")
    np.testing.assert_array_equal(np64(new.feature_map(q)), np64(layer.feature_map(q)))


def test_training_step_gives_finite_loss_and_updates_weights():
    model = _model(TaylorAttention(num_heads=H, head_size=DK, mode="linear", chunk_size=C), N)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.rand(B, N, 16).astype("float32")
    before = [np64(w) for w in model.trainable_weights]
    loss = model.train_on_batch([x, padding()], np.random.rand(B, N, 3).astype("float32"))
    assert np.isfinite(loss)
    after = [np64(w) for w in model.trainable_weights]
    assert all(np.all(np.isfinite(w)) for w in after)
    assert all(not np.allclose(a, b) for a, b in zip(before, after))


def test_bad_inputs():
    with pytest.raises(ValueError, match="mode"):
        TaylorAttention(num_heads=H, head_size=DK, mode="cubic")
    with pytest.raises(ValueError, match="chunk_size"):
        TaylorAttention(num_heads=H, head_size=DK, chunk_size=0)
    layer = TaylorAttention(num_heads=H, head_size=DK)
    x = np.random.rand(B, N, 16).astype("float32")
    with pytest.raises(ValueError, match="attention_bias"):
        layer(x, attention_bias=np.zeros((B, H, N, N), "float32"))
    with pytest.raises(ValueError, match="rank"):
        layer(x, attention_mask=np.ones((B, 1, N, N), "float32"))
