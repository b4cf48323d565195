"""PerformerAttention (FAVOR+): feature-map parity with NumPy, exactness of the linear
algorithms against the explicit Q'K'^T product, approximation quality, causality, cache
decoding, masks, serialization, training and redraw policy."""

import contextlib

import keras
import numpy as np
import pytest
from keras import ops

from layers import MultiHeadAttention, PerformerAttention
from layers.performer_attention import numpy_projection_matrix, projection_matrix

try:  # multi-threaded OpenBLAS crawls on a small, shared machine; one thread is plenty here
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    def threadpool_limits(limits=None):
        return contextlib.nullcontext()

H, DK = 2, 8
# one shape almost everywhere: JAX compiles each eager op once per shape
B, N, M, C = 2, 12, 16, 5


def np64(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


# ------------------------------------------------------------------ NumPy float64 reference
def np_favor(x, w, is_query, eps=1e-6, key_mask=None, stabilizer="global"):
    """FAVOR+ positive features exp(w.x^ - |x^|^2/2 - c) + eps/m, written independently from the
    layer: c = log-sum-exp of the exponents per query; for keys the max over valid keys of each
    key's log-sum-exp ('global') or the first valid key's ('causal', per-key exponent mass
    clipped at e^60)."""
    x = np.asarray(x, "float64") / x.shape[-1] ** 0.25
    w = np.asarray(w, "float64")
    m = w.shape[0]
    expo = x @ w.T - 0.5 * np.sum(x**2, axis=-1, keepdims=True)
    top = expo.max(axis=-1, keepdims=True)
    lse = top + np.log(np.exp(expo - top).sum(axis=-1, keepdims=True))
    valid = np.ones(x.shape[:2], bool) if key_mask is None else np.asarray(key_mask, bool)
    if is_query:
        return np.exp(expo - lse) + eps / m
    if stabilizer == "global":
        stab = np.where(valid[:, :, None, None], lse, -np.inf).max(axis=1, keepdims=True)
        feats = np.exp(expo - stab)
    else:
        first = valid.argmax(axis=1)
        stab = lse[np.arange(len(first)), first][:, None]
        feats = np.exp(expo - lse + np.minimum(lse - stab, 60.0))
    return (feats + eps / m) * valid[:, :, None, None]


def np_relu(x, w, eps=1e-3):
    return np.maximum(np.asarray(x, "float64") @ w.T, 0) / np.sqrt(w.shape[0]) + eps


def np_kernel_attention(qf, kf, v, key_mask=None, causal=False):
    """Explicit (masked) Q'K'^T, row-normalised, times V."""
    a = np.einsum("bqhm,bkhm->bhqk", qf, kf)
    lq, lk = a.shape[-2:]
    mask = np.ones(a.shape, bool)
    if key_mask is not None:
        mask &= np.asarray(key_mask, bool)[:, None, None, :]
    if causal:
        mask &= np.tril(np.ones((lq, lk), bool))
    a = np.where(mask, a, 0.0)
    return np.einsum("bhqk,bkhd->bqhd", a / a.sum(-1, keepdims=True), np.asarray(v, "float64"))


def rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def make_layer(**kw):
    kw.setdefault("nb_features", M)
    kw.setdefault("chunk_size", C)
    kw.setdefault("seed", 3)
    layer = PerformerAttention(num_heads=H, head_size=DK, **kw)
    layer.build((None, None, 16))
    return layer


def heads(b=B, n=N, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((b, n, H, DK)) * scale).astype("float32") for _ in range(3)]


def padding(b=B, n=N):
    mask = np.ones((b, n), bool)
    mask[0, n - 7:] = False
    mask[1, n - 2:] = False
    return mask


# ------------------------------------------------------------------ feature maps
def test_projection_matrix_draws():
    w = numpy_projection_matrix(20, 8, "orthogonal", seed=0)
    assert w.shape == (20, 8)
    for rows in (w[:8], w[8:16]):
        unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        np.testing.assert_allclose(unit @ unit.T, np.eye(8), atol=1e-10)
    assert numpy_projection_matrix(5, 8, "iid", seed=0).shape == (5, 8)
    np.testing.assert_array_equal(numpy_projection_matrix(5, 8, seed=1), numpy_projection_matrix(5, 8, seed=1))
    # the in-graph redraw (keras.random + ops.qr): orthogonal blocks, rows with norm^2 ~ chi^2_d
    # (mean d) and, averaged over 100 draws, an unbiased softmax-kernel estimate
    seed = keras.random.SeedGenerator(0)
    draws = np.stack([np64(projection_matrix(M, DK, "orthogonal", seed)) for _ in range(100)])
    for rows in (draws[0, :8], draws[0, 8:]):
        unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        np.testing.assert_allclose(unit @ unit.T, np.eye(8), atol=1e-5)
    assert not np.allclose(draws[0], draws[1])
    w = draws.reshape(-1, DK)
    assert abs(np.mean(np.sum(w**2, axis=1)) - DK) < 0.5
    x, y = np.random.default_rng(0).standard_normal((2, DK)) * 0.3 / DK**0.25
    estimate = np.mean(np.exp(w @ x - x @ x / 2) * np.exp(w @ y - y @ y / 2))
    np.testing.assert_allclose(estimate, np.exp(x @ y), rtol=0.08)


def test_feature_map_parity_with_numpy():
    layer = make_layer()
    w = np64(layer.projection)
    q, k, _ = heads()
    mask = padding()
    np.testing.assert_allclose(np64(layer.feature_map(q, True)), np_favor(q, w, True), rtol=1e-5, atol=1e-9)
    for causal, stab in ((False, "global"), (True, "causal")):
        for km in (None, mask):
            got = np64(layer.feature_map(k, False, key_mask=km, causal=causal))
            np.testing.assert_allclose(got, np_favor(k, w, False, key_mask=km, stabilizer=stab), rtol=1e-5, atol=1e-9)
    relu = make_layer(kernel="relu")
    np.testing.assert_allclose(np64(relu.feature_map(q, True)), np_relu(q, np64(relu.projection)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("feature_type", ["orthogonal", "iid"])
def test_draws_give_an_unbiased_softmax_kernel_estimate(feature_type):
    """mean_r exp(w_r.x - |x|^2/2) exp(w_r.y - |y|^2/2) -> exp(x.y) for m >> d. Catches the
    Householder-QR sign bias of unfixed orthogonal blocks (rows' mean ~ -0.05 per coordinate,
    which puts the estimate ~18% low for x = y = 0.15 * ones)."""
    w = numpy_projection_matrix(100000, 16, feature_type, seed=0)
    assert np.max(np.abs(w.mean(axis=0))) < 0.02
    rng = np.random.default_rng(1)
    for x, y in [(np.full(16, 0.15), np.full(16, 0.15)), tuple(rng.standard_normal((2, 16)) * 0.25)]:
        estimate = np.mean(np.exp(w @ x - x @ x / 2) * np.exp(w @ y - y @ y / 2))
        np.testing.assert_allclose(estimate, np.exp(x @ y), rtol=2e-2)


# ------------------------------------------------------------------ exactness vs the quadratic product
@pytest.mark.parametrize("kernel, causal, chunk_size", [
    ("softmax", False, C),
    ("softmax", True, 4),  # divides the length 12
    ("softmax", True, C),  # does not: padded internally
    ("relu", False, C),
    ("relu", True, C),
])
def test_attend_equals_explicit_quadratic(kernel, causal, chunk_size):
    layer = make_layer(chunk_size=chunk_size, kernel=kernel)
    w = np64(layer.projection)
    q, k, v = heads()
    mask = padding()
    out = np64(layer.attend(q, k, v, key_mask=ops.convert_to_tensor(mask), causal=causal))
    if kernel == "softmax":
        qf = np_favor(q, w, True)
        kf = np_favor(k, w, False, key_mask=mask, stabilizer="causal" if causal else "global")
    else:
        qf, kf = np_relu(q, w), np_relu(k, w) * mask[:, :, None, None]
    ref = np_kernel_attention(qf, kf, v, key_mask=mask, causal=causal)
    assert rel_err(out, ref) < 1e-5
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_full_call_matches_numpy_pipeline():
    layer = make_layer()
    x = np.random.default_rng(0).standard_normal((B, N, 16)).astype("float32")
    mask = padding()
    out = np64(layer(x, attention_mask=mask, use_causal_mask=True))
    wq, bq, wk, bk, wv, bv, wo, bo = [np64(t) for t in layer.trainable_weights]
    q, k, v = [(x @ w_ + b_).reshape(B, N, H, DK) for w_, b_ in ((wq, bq), (wk, bk), (wv, bv))]
    w = np64(layer.projection)
    o = np_kernel_attention(np_favor(q, w, True), np_favor(k, w, False, key_mask=mask, stabilizer="causal"), v,
                            key_mask=mask, causal=True)
    ref = o.reshape(B, N, H * DK) @ wo + bo
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_same_trainable_weights_as_multi_head_attention():
    x = np.random.rand(B, N, 16).astype("float32")
    mha = MultiHeadAttention(num_heads=H, head_size=DK)
    perf = make_layer()
    mha(x), perf(x)
    assert [w.shape for w in mha.trainable_weights] == [w.shape for w in perf.trainable_weights]
    for src, dst in zip(mha.trainable_weights, perf.trainable_weights):
        dst.assign(src)
    assert [v.path.split("/")[-2:] for v in perf.trainable_weights] == \
        [v.path.split("/")[-2:] for v in mha.trainable_weights]


# ------------------------------------------------------------------ approximation quality
def test_approximation_error_falls_with_nb_features_and_orthogonal_beats_iid():
    """Raw q, k, v (n=1024, d=64), float64 NumPy FAVOR+ (``np_favor``, checked against the
    layer above) with the layer's projection draws: relative error vs exact softmax
    attention, mean over 8 draws. Logits have std ~0.16 (inputs * 0.4), the regime of a
    freshly initialised model, where the orthogonal gain is clear (~10-15%)."""
    n, d, seeds = 1024, 64, 8
    data = []
    for s in range(4):
        rng = np.random.default_rng(s)
        q, k = rng.standard_normal((2, 1, n, 1, d)) * 0.4
        v = rng.standard_normal((1, n, 1, d))
        logits = q[0, :, 0] @ k[0, :, 0].T / np.sqrt(d)
        p = np.exp(logits - logits.max(1, keepdims=True))
        data.append((q, k, v[0, :, 0], (p / p.sum(1, keepdims=True)) @ v[0, :, 0]))
    err = {}
    with threadpool_limits(limits=1):
        for feature_type in ("orthogonal", "iid"):
            for m in (16, 64, 256, 1024):
                errs = []
                for s in range(seeds):
                    q, k, v, exact = data[s % 4]
                    w = numpy_projection_matrix(m, d, feature_type, seed=1000 * (feature_type == "iid") + s)
                    qf, kf = np_favor(q, w, True)[0, :, 0], np_favor(k, w, False)[0, :, 0]
                    out = (qf @ (kf.T @ v)) / (qf @ kf.sum(0))[:, None]  # linear-time form
                    errs.append(np.linalg.norm(out - exact) / np.linalg.norm(exact))
                err[feature_type, m] = float(np.mean(errs))
    for feature_type in ("orthogonal", "iid"):
        e = [err[feature_type, m] for m in (16, 64, 256, 1024)]
        assert all(a > b for a, b in zip(e, e[1:])), (feature_type, e)
        assert e[-1] < 0.5 * e[1]  # ~1/sqrt(m): 16x the features, ~4x smaller error
    for m in (64, 256, 1024):
        assert err["orthogonal", m] < 0.95 * err["iid", m], err


def test_softmax_features_approximate_layer_softmax_attention():
    # many features: the whole layer is close to exact causal softmax attention with its weights
    x = (np.random.default_rng(0).standard_normal((B, N, 16)) * 0.3).astype("float32")
    perf = PerformerAttention(num_heads=H, head_size=DK, nb_features=1024, seed=0)
    out = np64(perf(x, use_causal_mask=True))
    wq, bq, wk, bk, wv, bv, wo, bo = [np64(t) for t in perf.trainable_weights]
    q, k, v = [(x @ w_ + b_).reshape(B, N, H, DK) for w_, b_ in ((wq, bq), (wk, bk), (wv, bv))]
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(DK) + np.where(np.tril(np.ones((N, N))), 0, -np.inf)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    o = np.einsum("bhqk,bkhd->bqhd", p / p.sum(-1, keepdims=True), v)
    ref = o.reshape(B, N, H * DK) @ wo + bo
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 0.05


# ------------------------------------------------------------------ causality, cache, masks
def test_causal_outputs_ignore_future_tokens():
    layer = make_layer()
    x = np.random.default_rng(0).standard_normal((B, N, 16)).astype("float32")
    y = x.copy()
    y[:, 7:] = 50.0 * np.random.default_rng(1).standard_normal((B, N - 7, 16))  # huge future keys
    a, b = np64(layer(x, use_causal_mask=True)), np64(layer(y, use_causal_mask=True))
    np.testing.assert_allclose(a[:, :7], b[:, :7], rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(b))


def test_causal_stabiliser_keeps_features_above_epsilon_at_large_head_size():
    """The last causal query sees every key, so (stabilisers cancel) its output must match
    the bidirectional one (global stabiliser) - exactly without epsilon, and closely with it
    at d=128, i.e. the causal key stabiliser does not push the features down to epsilon."""
    from layers.linear_attention import linear_attention
    from layers.performer_attention import softmax_kernel_features

    rng = np.random.default_rng(0)
    q, k = (rng.standard_normal((2, 1, 64, 1, 128)) * 0.5).astype("float32")
    v = rng.standard_normal((1, 64, 1, 128)).astype("float32")
    w = numpy_projection_matrix(256, 128, seed=0)
    for eps, rtol in ((0.0, 1e-4), (1e-6, 1e-3)):
        qf = softmax_kernel_features(q, w, True, epsilon=eps)
        kc = softmax_kernel_features(k, w, False, epsilon=eps, key_stabilizer="causal")
        causal = np64(linear_attention(qf, kc, v, causal=True, chunk_size=16))
        bidir = np64(linear_attention(qf, softmax_kernel_features(k, w, False, epsilon=eps), v))
        np.testing.assert_allclose(causal[:, -1], bidir[:, -1], rtol=rtol, atol=rtol / 10)
    assert np.median(np64(kc).max(axis=-1)) * np.sqrt(256) > 1e-2  # typical keys far above eps = 1e-6


def test_cache_decoding_matches_full_causal_pass():
    layer = make_layer()
    n = N
    x = np.random.default_rng(0).standard_normal((B, n, 16)).astype("float32")
    full = np64(layer(x, use_causal_mask=True))
    cache = ops.zeros((B, 2, H, n, DK))  # (batch, 2, heads, max_len, size)
    steps = []
    o, cache = layer(x[:, :9], use_causal_mask=True, cache=cache, cache_index=0)  # a 9-token prompt
    steps.append(np64(o))
    for t in range(9, n):  # then one token at a time
        o, cache = layer(x[:, t:t + 1], use_causal_mask=True, cache=cache, cache_index=t)
        steps.append(np64(o))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_padded_tokens_do_not_change_real_outputs(causal):
    layer = make_layer()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, N, 16)).astype("float32")
    mask = padding()
    y = np.where(mask[:, :, None], x, 30.0 * rng.standard_normal(x.shape)).astype("float32")
    a = np64(layer(x, attention_mask=mask, use_causal_mask=causal))
    b = np64(layer(y, attention_mask=mask, use_causal_mask=causal))
    np.testing.assert_allclose(a[mask], b[mask], rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(b))


def test_fully_masked_rows_are_zero_not_nan():
    layer = make_layer()
    q, k, v = heads()
    out = np64(layer.attend(q, k, v, key_mask=ops.zeros((B, N), dtype="bool")))
    np.testing.assert_array_equal(out, 0.0)


# ------------------------------------------------------------------ serialization, training, redraw
def test_get_config_round_trip():
    layer = PerformerAttention(num_heads=3, head_size=4, nb_features=10, kernel="relu", feature_type="iid",
                               redraw=5, chunk_size=16, epsilon=1e-4, seed=7, name="perf")
    config = layer.get_config()
    clone = PerformerAttention.from_config(config)
    assert clone.get_config() == config
    assert (clone.nb_features, clone.kernel, clone.feature_type, clone.redraw, clone.chunk_size, clone.epsilon,
            clone.seed) == (10, "relu", "iid", 5, 16, 1e-4, 7)
    layer.build((None, None, 12)), clone.build((None, None, 12))
    np.testing.assert_array_equal(np64(layer.projection), np64(clone.projection))  # same seed, same draw
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, PerformerAttention) and restored.get_config() == config


def _model(layer, length=None):
    x = keras.Input((length, 16))
    m = keras.Input((length,), dtype="bool")
    y = layer(x, attention_mask=m, use_causal_mask=True)
    return keras.Model([x, m], keras.layers.Dense(3)(y))


def test_keras_save_load_reproduces_outputs(tmp_path):
    layer = PerformerAttention(num_heads=H, head_size=DK, nb_features=M, chunk_size=C, redraw=3)  # seed None
    model = _model(layer)
    x = np.random.rand(B, N, 16).astype("float32")
    mask = padding()
    layer.step.assign(2)
    ref = np64(model.predict([x, mask], verbose=0))
    path = str(tmp_path / "performer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    new = [lay for lay in loaded.layers if isinstance(lay, PerformerAttention)][0]
    np.testing.assert_array_equal(np64(new.projection), np64(layer.projection))
    assert int(np64(new.step)) == 2
    np.testing.assert_allclose(np64(loaded.predict([x, mask], verbose=0)), ref, rtol=1e-6, atol=1e-6)
    q = np.random.rand(B, N, H, DK).astype("float32")
    np.testing.assert_array_equal(np64(new.feature_map(q, True)), np64(layer.feature_map(q, True)))


def test_training_updates_weights_and_redraws_inside_fit():
    layer = make_layer(redraw=2)
    model = _model(layer, N)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.rand(B, N, 16).astype("float32")
    mask = padding()
    y = np.random.rand(B, N, 3).astype("float32")
    before = [np64(w) for w in model.trainable_weights]
    w0 = np64(layer.projection)
    history = model.fit([x, mask], y, batch_size=B, epochs=1, verbose=0)  # training step 1: no redraw
    assert np.isfinite(history.history["loss"][0])
    after = [np64(w) for w in model.trainable_weights]
    assert all(np.all(np.isfinite(w)) for w in after)
    changed = [not np.allclose(a, b) for a, b in zip(before, after)]
    assert all(changed), changed  # all q/k/v/output kernels and biases got a gradient
    np.testing.assert_array_equal(np64(layer.projection), w0)
    model.fit([x, mask], y, batch_size=B, epochs=1, verbose=0)  # training step 2: redraw
    assert int(np64(layer.step)) == 2
    assert not np.allclose(np64(layer.projection), w0)


def test_redraw_policy():
    x = np.random.rand(B, N, 16).astype("float32")
    every2 = PerformerAttention(num_heads=H, head_size=DK, nb_features=M, chunk_size=C, redraw=2, seed=0)
    never = PerformerAttention(num_heads=H, head_size=DK, nb_features=M, chunk_size=C, redraw="never", seed=0)
    every2(x), never(x)
    w0 = np64(every2.projection)
    np.testing.assert_array_equal(w0, np64(never.projection))
    for _ in range(3):  # inference never redraws nor counts
        every2(x), every2(x, training=False)
    np.testing.assert_array_equal(np64(every2.projection), w0)
    assert int(np64(every2.step)) == 0
    every2(x, training=True)
    np.testing.assert_array_equal(np64(every2.projection), w0)
    every2(x, training=True)  # 2nd training step: redraw
    w2 = np64(every2.projection)
    assert not np.allclose(w2, w0) and np.all(np.isfinite(w2))
    every2(x, training=True)
    np.testing.assert_array_equal(np64(every2.projection), w2)
    for _ in range(4):
        never(x, training=True)
    np.testing.assert_array_equal(np64(never.projection), w0)


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("kwargs, word", [
    (dict(nb_features=0), "nb_features"),
    (dict(nb_features=-3), "nb_features"),
    (dict(nb_features=2.5), "nb_features"),
    (dict(kernel="gaussian"), "kernel"),
    (dict(feature_type="sobol"), "feature_type"),
    (dict(redraw="sometimes"), "redraw"),
    (dict(redraw=0), "redraw"),
    (dict(redraw=True), "redraw"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        PerformerAttention(num_heads=H, head_size=DK, **kwargs)


def test_bad_inputs():
    layer = make_layer()
    x = np.random.rand(B, N, 16).astype("float32")
    with pytest.raises(ValueError, match="full"):
        layer(x, attention_mask=np.ones((B, N, N), bool))
    with pytest.raises(ValueError, match="full"):  # already when a functional model is built
        layer(keras.Input((N, 16)), attention_mask=keras.Input((N, N), dtype="bool"))
    with pytest.raises(ValueError, match="attention_bias"):
        layer(x, attention_bias=np.zeros((B, H, N, N), "float32"))
    with pytest.raises(ValueError, match="rank"):
        layer(x, attention_mask=np.ones((B, 1, N, N), "float32"))
    with pytest.raises(ValueError, match="shape"):
        layer.set_projection_matrix(np.zeros((M, DK + 1)))
    w = np.random.rand(M, DK)
    layer.set_projection_matrix(w)
    np.testing.assert_allclose(np64(layer.projection), w, rtol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_heads_first_layout_and_folded_offsets(causal):
    """``layout='bhld'`` gives the transposed result of ``'blhd'``; ``q_offset`` / ``k_offset``
    equal adding the constants to the (unmasked) features explicitly; a bad layout is refused."""
    from layers.linear_attention import linear_attention

    rng = np.random.default_rng(3)
    qf, kf = rng.random((2, B, N, H, M)).astype("float32")
    v = rng.standard_normal((B, N, H, DK)).astype("float32")
    km = np.ones((B, N), bool)
    km[1, 8:] = False
    kf[~km] = 0.0  # feature maps give masked keys exactly 0
    ref = np64(linear_attention(qf, kf, v, key_mask=km, causal=causal, chunk_size=C))
    t = (lambda a: np.transpose(a, (0, 2, 1, 3)))
    got = np64(linear_attention(t(qf), t(kf), t(v), key_mask=km, causal=causal, chunk_size=C, layout="bhld"))
    np.testing.assert_allclose(t(got), ref, rtol=1e-5, atol=1e-6)

    a, b = 0.3, 0.05
    explicit = np64(linear_attention(qf + a, np.where(km[:, :, None, None], kf + b, 0.0).astype("float32"), v,
                                     key_mask=km, causal=causal, chunk_size=C))
    folded = np64(linear_attention(qf, kf, v, key_mask=km, causal=causal, chunk_size=C, q_offset=a, k_offset=b))
    np.testing.assert_allclose(folded, explicit, rtol=1e-5, atol=1e-6)
    assert np.abs(folded - ref).max() > 1e-3  # the offsets do change the result
    with pytest.raises(ValueError, match="layout"):
        linear_attention(qf, kf, v, layout="hbld")
