import keras
import numpy as np
import pytest

from layers import MultiHeadAttention
from tests.layers.layer_checks import check_config_round_trip, check_gradients, check_save_load


def _np(x):
    return keras.ops.convert_to_numpy(x)


def reference(layer, x, mask2d=None, causal=False, full=None):
    """NumPy float64 multi-head attention with the layer's weights."""
    w = [_np(v).astype("float64") for v in layer.weights]
    wq, bq, wk, bk, wv, bv, wo, bo = w
    h, d = layer.num_heads, layer.head_size
    b, n, _ = x.shape
    q = (x @ wq + bq).reshape(b, n, h, d)
    k = (x @ wk + bk).reshape(b, n, h, d)
    v = (x @ wv + bv).reshape(b, n, h, d)
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d)
    allowed = np.ones((b, 1, n, n), bool)
    if mask2d is not None:
        allowed &= mask2d.astype(bool)[:, None, None, :]
    if full is not None:
        allowed &= full.astype(bool)[:, None]
    if causal:
        allowed &= np.tril(np.ones((n, n), bool))[None, None]
    s = np.where(allowed, s, -1e9)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bhqk,bkhd->bqhd", p, v).reshape(b, n, h * d)
    return o @ wo + bo


@pytest.mark.parametrize("causal", [False, True])
def test_matches_numpy(causal):
    layer = MultiHeadAttention(3, 4, kernel_initializer="random_normal")
    x = np.random.rand(2, 7, 12).astype("float32")
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3])
    out = _np(layer(x, attention_mask=mask, use_causal_mask=causal))
    np.testing.assert_allclose(out, reference(layer, x.astype("float64"), mask, causal), atol=1e-5)
    full = np.random.rand(2, 7, 7) > 0.3
    full[..., 0] = True
    out = _np(layer(x, attention_mask=full.astype("float32")))
    np.testing.assert_allclose(out, reference(layer, x.astype("float64"), full=full), atol=1e-5)


def test_padding_does_not_leak():
    layer = MultiHeadAttention(2, 4)
    x = np.random.rand(1, 6, 8).astype("float32")
    y = x.copy()
    y[:, 4:] = 100.0
    mask = np.array([[1, 1, 1, 1, 0, 0]])
    np.testing.assert_allclose(_np(layer(x, attention_mask=mask))[:, :4], _np(layer(y, attention_mask=mask))[:, :4],
                               atol=1e-6)


def test_kv_cache_equals_full_causal():
    layer = MultiHeadAttention(2, 4)
    x = np.random.rand(2, 5, 8).astype("float32")
    full = _np(layer(x, use_causal_mask=True))
    cache = np.zeros((2, 2, 2, 5, 4), "float32")  # (batch, k/v, heads, max_len, size)
    outs = []
    for t in range(5):
        o, cache = layer(x[:, t:t + 1], use_causal_mask=True, cache=cache, cache_index=t)
        outs.append(_np(o))
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)


@pytest.mark.parametrize("cls", ["softmax", "performer"])
def test_shared_prefix_cache_equals_per_row_update(cls):
    """``cache_mode='prefix'``: rows of new tokens attend to one read-only batch-1 cache (masked) and,
    causally, to their own tokens; equal to writing them into a per-row copy of the cache."""
    from layers import PerformerAttention

    layer = (MultiHeadAttention(2, 4) if cls == "softmax"
             else PerformerAttention(2, 4, nb_features=8, seed=0))
    ctx = np.random.rand(1, 5, 8).astype("float32")
    cache = np.zeros((1, 2, 2, 9, 4), "float32")
    _, cache = layer(ctx, use_causal_mask=True, cache=cache, cache_index=0)
    prefix_mask = np.zeros((1, 9), bool)
    prefix_mask[0, :5] = True
    new = np.random.rand(3, 2, 8).astype("float32")
    out, same = layer(new, attention_mask=prefix_mask, use_causal_mask=True, cache=cache, cache_index=5,
                      cache_mode="prefix")
    np.testing.assert_array_equal(_np(same), _np(cache))  # read-only
    rows = np.repeat(_np(cache), 3, axis=0)
    mask = np.repeat(prefix_mask, 3, axis=0)
    mask[:, 5:7] = True
    ref, _ = layer(new, attention_mask=mask, use_causal_mask=True, cache=rows, cache_index=5)
    np.testing.assert_allclose(_np(out), _np(ref), atol=1e-5)
    with pytest.raises(ValueError, match="cache_mode"):
        layer(new, cache=cache, cache_index=5, cache_mode="append")


def test_a_tree_of_continuations_equals_each_path_causally():
    """A ``(batch, new, prefix + new)`` mask in prefix mode: new tokens 0 <- 1 <- 3 and 0 <- 2 (a
    tree, each seeing the prefix and its ancestors) give what each root-to-leaf path gives alone."""
    from layers import PerformerAttention

    layer = MultiHeadAttention(2, 4)
    ctx = np.random.rand(2, 5, 8).astype("float32")
    cache = np.zeros((2, 2, 2, 7, 4), "float32")
    _, cache = layer(ctx, use_causal_mask=True, cache=cache, cache_index=0)
    prefix = np.zeros((2, 7), bool)
    prefix[0, :5], prefix[1, 2:5] = True, True
    parents = [-1, 0, 0, 1]
    tree = np.zeros((4, 4), bool)
    for node, parent in enumerate(parents):
        tree[node, node] = True
        while parent >= 0:
            tree[node, parent], parent = True, parents[parent]
    mask = np.concatenate([np.repeat(prefix[:, None], 4, axis=1), np.repeat(tree[None], 2, axis=0)], axis=-1)
    new = np.random.rand(2, 4, 8).astype("float32")
    out, same = layer(new, attention_mask=mask, use_causal_mask=True, cache=cache, cache_index=5,
                      cache_mode="prefix")
    np.testing.assert_array_equal(_np(same), _np(cache))
    for path in ([0, 1, 3], [0, 2]):
        ref, _ = layer(new[:, path], attention_mask=prefix, use_causal_mask=True, cache=cache, cache_index=5,
                       cache_mode="prefix")
        np.testing.assert_allclose(_np(out)[:, path], _np(ref), atol=1e-5)
    with pytest.raises(ValueError, match="tree mask .* softmax attention only"):
        PerformerAttention(2, 4, nb_features=8, seed=0)(new, attention_mask=mask, cache=cache, cache_index=5,
                                                        cache_mode="prefix")


def test_bad_mask_rank():
    layer = MultiHeadAttention(2, 4)
    x = np.random.rand(1, 3, 8).astype("float32")
    with pytest.raises(ValueError, match=r"rank 2 .* or 3 .* got rank 4"):
        layer(x, attention_mask=np.ones((1, 1, 3, 3), "float32"))
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(0, 4)


def test_config_save_gradients(tmp_path):
    x = np.random.rand(2, 5, 8).astype("float32")
    check_config_round_trip(MultiHeadAttention(2, 4, attention_dropout=0.1, key_size=3))
    check_save_load(MultiHeadAttention(2, 4), x, tmp_path, {"use_causal_mask": True})
    check_gradients(MultiHeadAttention(2, 4), x)
