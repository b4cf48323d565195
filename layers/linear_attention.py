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


def _safe_divide(num, den):
    """``num / den[..., None]`` with 0 where ``den == 0`` (rows with no visible key)."""
    ok = den > 0
    den = ops.where(ok, den, ops.ones_like(den))
    return ops.where(ok[..., None], num / den[..., None], ops.zeros_like(num))


def _mask_keys(k_feat, key_mask):
    if key_mask is None:
        return k_feat
    mask = ops.cast(key_mask, "bool")[:, :, None, None]
    return ops.where(mask, k_feat, ops.zeros_like(k_feat))


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


def linear_attention(q_feat, k_feat, v, key_mask=None, causal=False, chunk_size=128):
    """Kernelized attention with feature maps already applied.

    Args:
      q_feat: ``(batch, q_len, heads, m)`` non-negative query features.
      k_feat: ``(batch, k_len, heads, m)`` non-negative key features.
      v: ``(batch, k_len, heads, d)`` values.
      key_mask: optional ``(batch, k_len)`` bool, False = padding.
      causal: query ``i`` attends to keys ``j <= i`` (requires ``q_len == k_len``).
      chunk_size: chunk length ``c`` of the causal algorithm; lengths that are
        not a multiple of ``c`` are zero-padded internally.

    Returns:
      ``(batch, q_len, heads, d)`` in the dtype of the features.
    """
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"linear_attention: chunk_size must be >= 1, got {chunk_size}")
    k_feat = _mask_keys(k_feat, key_mask)
    v = ops.cast(v, k_feat.dtype)
    if not causal:
        # a ones column on v gives the normaliser K'^T 1 in the same contraction (one pass over the features)
        v1 = ops.concatenate([v, ops.ones_like(v[..., :1])], axis=-1)
        kv = ops.einsum("bkhm,bkhd->bhmd", k_feat, v1)
        out = ops.einsum("bqhm,bhmd->bqhd", q_feat, kv)
        return _safe_divide(out[..., :-1], out[..., -1])

    lq, lk = q_feat.shape[1], k_feat.shape[1]
    if lq is not None and lk is not None and lq != lk:
        raise ValueError(f"linear_attention: causal needs q_len == k_len, got {lq} and {lk}")
    shape = ops.shape(q_feat)
    b, n, h, m = shape[0], shape[1], shape[2], shape[3]
    d = ops.shape(v)[-1]
    c = chunk_size
    pad = (c - n % c) % c

    def chunked(x):
        # (b, n, h, f) -> (b, T, c, h, f), zero padded at the end
        width = ops.shape(x)[-1]
        x = ops.concatenate([x, ops.zeros((b, pad, h, width), dtype=x.dtype)], axis=1)
        return ops.reshape(x, (b, -1, c, h, width))

    qc, kc, vc = chunked(q_feat), chunked(k_feat), chunked(v)

    # exact masked products inside each chunk
    tril = ops.tril(ops.ones((c, c), dtype="bool"))
    w = ops.einsum("btqhm,btkhm->bthqk", qc, kc)
    w = ops.where(tril, w, ops.zeros_like(w))
    num = ops.einsum("bthqk,btkhd->btqhd", w, vc)
    den = ops.transpose(ops.sum(w, axis=-1), (0, 1, 3, 2))  # (b, T, c, h)

    # state carried from the previous chunks: exclusive cumsum over the chunk axis
    kv = ops.einsum("btkhm,btkhd->bthmd", kc, vc)  # (b, T, h, m, d)
    ksum = ops.sum(kc, axis=2)  # (b, T, h, m)
    kv = ops.cumsum(kv, axis=1)
    ksum = ops.cumsum(ksum, axis=1)
    kv = ops.concatenate([ops.zeros_like(kv[:, :1]), kv[:, :-1]], axis=1)
    ksum = ops.concatenate([ops.zeros_like(ksum[:, :1]), ksum[:, :-1]], axis=1)
    num = num + ops.einsum("btqhm,bthmd->btqhd", qc, kv)
    den = den + ops.einsum("btqhm,bthm->btqh", qc, ksum)

    out = _safe_divide(num, den)
    out = ops.reshape(out, (b, -1, h, d))
    return out[:, :n]
