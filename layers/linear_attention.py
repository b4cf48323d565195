"""Shared kernelized ("linear") attention given feature maps, ``keras.ops`` only.

For non-negative feature maps ``phi`` the attention weights
``A[i, j] = phi(q_i) . phi(k_j)`` give, with ``Q' = phi(Q)``, ``K' = phi(K)``
(Katharopoulos et al., "Transformers are RNNs", 2020; Choromanski et al.,
"Rethinking Attention with Performers", 2020):

* bidirectional: ``out = D^-1 (Q' (K'^T V))`` with ``D = diag(Q' (K'^T 1))``,
  time and memory ``O(n m d)``;
* causal (``A`` restricted to ``j <= i``): the sequence is cut into chunks of
  ``c`` positions. Inside a chunk the masked product ``tril(Q'_t K'_t^T) V_t`` is
  computed exactly; across chunks the state ``S_t = sum_{s < t} K'_s^T V_s``
  (an ``m x d`` matrix) and normaliser ``z_t = sum_{s < t} K'_s^T 1`` come from an
  exclusive cumulative sum over the chunk axis (``ops.cumsum`` of the per-chunk
  summaries, shifted by one chunk). No Python loop over positions or chunks;
  memory ``O(n m + (n / c) m d + n c)`` per head.

Masked keys (``key_mask == False``) have their features zeroed, so they enter
neither the numerator nor the denominator. Query rows that see no key at all get
a zero output (instead of 0/0).

Example:

>>> import numpy as np
>>> qf = np.random.rand(1, 10, 2, 8).astype("float32")   # (batch, len, heads, m)
>>> kf = np.random.rand(1, 10, 2, 8).astype("float32")
>>> v = np.random.rand(1, 10, 2, 4).astype("float32")
>>> tuple(linear_attention(qf, kf, v, causal=True, chunk_size=4).shape)
(1, 10, 2, 4)
"""

from keras import ops

LAYOUTS = ("blhd", "bhld")


def _safe_divide(num, den):
    """``num / den[..., None]`` with 0 where ``den == 0`` (rows with no visible key)."""
    ok = den > 0
    den = ops.where(ok, den, ops.ones_like(den))
    return ops.where(ok[..., None], num / den[..., None], ops.zeros_like(num))


def _mask_keys(k_feat, key_mask, heads_first=False):
    if key_mask is None:
        return k_feat
    mask = ops.cast(key_mask, "bool")
    mask = mask[:, None, :, None] if heads_first else mask[:, :, None, None]
    return ops.where(mask, k_feat, ops.zeros_like(k_feat))


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"linear_attention: layout must be one of {LAYOUTS}, got {layout!r}")
    return layout == "bhld"


def quadratic_kernel_attention(q_feat, k_feat, v, mask=None):
    """Explicit ``(Q' K'^T) V`` with an optional boolean ``mask`` broadcastable
    to ``(batch, heads, q_len, k_len)``: ``O(n^2)``, exact for the same features
    (used for decoding with a key/value cache and as a reference)."""
    weights = ops.einsum("bqhm,bkhm->bhqk", q_feat, k_feat)
    if mask is not None:
        weights = ops.where(mask, weights, ops.zeros_like(weights))
    num = ops.einsum("bhqk,bkhd->bqhd", weights, ops.cast(v, weights.dtype))
    den = ops.transpose(ops.sum(weights, axis=-1), (0, 2, 1))  # (b, q, h)
    return _safe_divide(num, den)


def _bidirectional(q_feat, k_feat, v, key_mask, q_offset, k_offset, key_scale):
    """The bidirectional case of :func:`linear_attention`, heads first."""
    # a ones column on v gives the normaliser K'^T 1 in the same contraction (one pass over the features)
    v1 = ops.concatenate([v, ops.ones_like(v[..., :1])], axis=-1)
    mask = None if key_mask is None else ops.cast(key_mask, "bool")[:, None, :, None]
    if mask is not None:
        v1 = ops.where(mask, v1, ops.zeros_like(v1))  # masked keys: (d + 1)-wide zeros, not n x m ones
    if key_scale is None:
        kv = ops.einsum("bhkm,bhkd->bhmd", k_feat, v1)  # (b, h, m, d + 1)
    else:
        kv = ops.einsum("bhkm,bhkd->bhmd", k_feat, ops.cast(key_scale, v1.dtype) * v1)
    if k_offset:
        kv = kv + k_offset * ops.sum(v1, axis=2, keepdims=True)
    out = ops.matmul(q_feat, kv)
    if q_offset:
        out = out + q_offset * ops.sum(kv, axis=2, keepdims=True)
    # no visible key: numerator and denominator are both exactly 0, and 0 / tiny = 0
    return out[..., :-1] / ops.maximum(out[..., -1:], 1e-30)


def linear_attention(q_feat, k_feat, v, key_mask=None, causal=False, chunk_size=128, layout="blhd",
                     q_offset=0.0, k_offset=0.0, key_scale=None):
    """Kernelized attention with feature maps already applied.

    Args:
      q_feat: ``(batch, q_len, heads, m)`` non-negative query features.
      k_feat: ``(batch, k_len, heads, m)`` non-negative key features.
      v: ``(batch, k_len, heads, d)`` values.
      key_mask: optional ``(batch, k_len)`` bool, False = padding.
      causal: query ``i`` attends to keys ``j <= i`` (requires ``q_len == k_len``).
      chunk_size: chunk length ``c`` of the causal algorithm; lengths that are
        not a multiple of ``c`` are zero-padded internally.
      layout: ``'blhd'`` (the shapes above) or ``'bhld'``: heads before positions
        for all three inputs and the output. The computation runs heads-first, so
        that every contraction is a plain batched matrix product; ``'bhld'``
        inputs skip the transposes of the ``m``-wide features.
      q_offset, k_offset: constants added to every query / unmasked key feature
        (FAVOR+'s ``epsilon / sqrt(m)``): the features used are ``q_feat + q_offset``
        and ``k_feat + k_offset``. Bidirectional attention folds them into the
        contractions, ``(E_q + a)(E_k + b)^T V = E_q (E_k^T V) + b E_q 1 (1^T V) +
        a 1 1^T (E_k^T V + b 1 1^T V)``, on ``(m, d)``-sized terms, so the ``n x m``
        sums are never formed; causal attention adds them to the features.
      key_scale: optional non-negative per-key factor, ``(batch, k_len, heads, 1)``
        (``'bhld'``: ``(batch, heads, k_len, 1)``): the key features used are
        ``key_scale * k_feat`` (+ ``k_offset``). Applied to the ``d + 1``-wide values
        rather than the ``m``-wide features (FAVOR+ keys come as a softmax times a
        per-key scale, see :func:`layers.performer_attention.softmax_kernel_features`).

    Returns:
      ``(batch, q_len, heads, d)`` (``layout='bhld'``: ``(batch, heads, q_len, d)``)
      in the dtype of the features.
    """
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"linear_attention: chunk_size must be >= 1, got {chunk_size}")
    if not _check_layout(layout):
        to_heads = (lambda x: ops.transpose(x, (0, 2, 1, 3)))
        out = linear_attention(to_heads(q_feat), to_heads(k_feat), to_heads(v), key_mask=key_mask, causal=causal,
                               chunk_size=chunk_size, layout="bhld", q_offset=q_offset, k_offset=k_offset,
                               key_scale=None if key_scale is None else to_heads(key_scale))
        return to_heads(out)
    # heads-first from here: q_feat (b, h, n, m), k_feat (b, h, n, m), v (b, h, n, d)
    q_offset, k_offset = float(q_offset), float(k_offset)
    if causal:
        q_feat = q_feat + q_offset if q_offset else q_feat
        k_feat = k_feat + k_offset if k_offset else k_feat
        if key_scale is not None:
            k_feat = k_feat * ops.cast(key_scale, k_feat.dtype)
    v = ops.cast(v, k_feat.dtype)
    if not causal:
        return _bidirectional(q_feat, k_feat, v, key_mask, q_offset, k_offset, key_scale)
    k_feat = _mask_keys(k_feat, key_mask, heads_first=True)

    lq, lk = q_feat.shape[2], k_feat.shape[2]
    if lq is not None and lk is not None and lq != lk:
        raise ValueError(f"linear_attention: causal needs q_len == k_len, got {lq} and {lk}")
    shape = ops.shape(q_feat)
    b, h, n = shape[0], shape[1], shape[2]
    d = ops.shape(v)[-1]
    c = chunk_size
    pad = (c - n % c) % c

    def chunked(x):
        # (b, h, n, f) -> (b, h, T, c, f), zero padded at the end
        width = ops.shape(x)[-1]
        x = ops.concatenate([x, ops.zeros((b, h, pad, width), dtype=x.dtype)], axis=2)
        return ops.reshape(x, (b, h, -1, c, width))

    qc, kc = chunked(q_feat), chunked(k_feat)
    # a ones column on v: numerators and normalisers come out of the same products
    vc = chunked(ops.concatenate([v, ops.ones_like(v[..., :1])], axis=-1))  # (b, h, T, c, d + 1)

    # exact masked products inside each chunk
    tril = ops.tril(ops.ones((c, c), dtype="bool"))
    w = ops.einsum("bhtqm,bhtkm->bhtqk", qc, kc)
    w = ops.where(tril, w, ops.zeros_like(w))
    out = ops.matmul(w, vc)  # (b, h, T, c, d + 1)

    # state carried from the previous chunks: exclusive cumsum over the chunk axis
    kv = ops.einsum("bhtkm,bhtkd->bhtmd", kc, vc)  # (b, h, T, m, d + 1)
    kv = ops.cumsum(kv, axis=2)
    kv = ops.concatenate([ops.zeros_like(kv[:, :, :1]), kv[:, :, :-1]], axis=2)
    out = out + ops.matmul(qc, kv)

    out = _safe_divide(out[..., :-1], out[..., -1])
    out = ops.reshape(out, (b, h, -1, d))
    return out[:, :, :n]
