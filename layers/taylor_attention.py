"""Second-order Taylor attention: exact, and linear-time through an explicit feature map."""

import math

import keras
import numpy as np
from keras import ops

from layers.linear_attention import linear_attention
from layers.multi_head_attention import MultiHeadAttention

MODES = ("auto", "quadratic", "linear")


def taylor_feature_dim(dim):
    """Size ``1 + d + d (d + 1) / 2`` of the Taylor feature map."""
    return 1 + dim + dim * (dim + 1) // 2


def taylor_features(x, scale=None):
    """``phi(x) = [1, x^, vec(x^ x^T) / sqrt(2)]`` with ``x^ = scale * x``
    (``scale = d^-1/4`` by default), compressed to the ``d (d + 1) / 2`` products
    ``x^_i x^_j, i <= j``: diagonal terms carry ``1 / sqrt(2)`` and off-diagonal
    ones ``1`` (= ``sqrt(2) / sqrt(2)``, for the two symmetric entries), so that
    exactly ``phi(q) . phi(k) = 1 + s + s^2 / 2`` with ``s = scale^2 q . k``.

    ``x``: ``(..., d)`` -> ``(..., 1 + d + d (d + 1) / 2)`` float32.
    """
    x = ops.cast(x, "float32")
    d = x.shape[-1]
    scale = d ** -0.25 if scale is None else scale
    x = x * scale
    i, j = np.triu_indices(d)
    weight = ops.convert_to_tensor(np.where(i == j, 1.0 / math.sqrt(2.0), 1.0), dtype="float32")
    i, j = ops.convert_to_tensor(i, dtype="int32"), ops.convert_to_tensor(j, dtype="int32")
    second = ops.take(x, i, axis=-1) * ops.take(x, j, axis=-1) * weight
    return ops.concatenate([ops.ones_like(x[..., :1]), x, second], axis=-1)


@keras.saving.register_keras_serializable(package="keras_longctx")
class TaylorAttention(MultiHeadAttention):
    """Drop-in :class:`MultiHeadAttention` whose ``exp`` is replaced by its
    second-order Taylor polynomial (de Brebisson & Vincent, "An Exploration of
    Softmax Alternatives Belonging to the Spherical Loss Family", ICLR 2016; Su
    Jianlin, "exp(x)在x=0处的偶数阶泰勒展开式总是正的", kexue.fm; the same feature map
    is used by the "Based" linear attention of Arora et al., 2024):

        w_ij = f(s_ij) / sum_j' f(s_ij'),   f(s) = 1 + s + s^2 / 2,   s_ij = q_i . k_j / sqrt(d)

    ``f(s) = ((s + 1)^2 + 1) / 2 >= 1/2``, so every row is a proper probability
    distribution. Two exact ways to compute it:

    * ``mode='quadratic'``: the ``n_q x n_k`` weights, masked entries zeroed before
      normalising (supports full ``(b, q, k)`` masks and attention dropout);
    * ``mode='linear'``: ``f(q . k) = phi(q) . phi(k)`` with
      ``phi(x) = [1, x / d^(1/4), vec(x x^T) / (sqrt(2) sqrt(d))]`` compressed to
      the ``d (d + 1) / 2`` unique products (:func:`taylor_features`,
      ``F = 1 + d + d (d + 1) / 2`` features, 2145 for ``d = 64``), then
      :func:`layers.linear_attention.linear_attention` (bidirectional or causal
      chunked prefix sums), ``O(n F d_v)`` time and ``O(n F + (n / c) F d_v)`` memory;
    * ``mode='auto'`` (default) compares the dominant costs, ``n_q n_k (d_k + d_v)``
      for quadratic and ``(n_q + n_k) F d_v`` for linear, in the simplified form
      ``n_q * n_k <= F * (n_q + n_k)`` -> quadratic, else linear (i.e. linear once
      ``n`` exceeds about ``2 F``, 4290 tokens for ``d = 64``). Unknown (symbolic)
      lengths choose linear; a full mask forces quadratic.

    With a key/value cache the quadratic mode is used. ``attention_bias`` has no
    meaning for this kernel: ``ValueError``. ``attention_dropout`` only acts in the
    quadratic mode. ``attention_scale=False`` uses ``s = q . k``.

    Example:

    >>> import numpy as np
    >>> att = TaylorAttention(num_heads=2, head_size=4, mode="linear")
    >>> x = np.random.rand(2, 50, 8).astype("float32")
    >>> tuple(att(x, attention_mask=np.ones((2, 50)), use_causal_mask=True).shape)
    (2, 50, 8)
    """

    def __init__(self, num_heads, head_size, mode="auto", chunk_size=128, **kwargs):
        super().__init__(num_heads, head_size, **kwargs)
        if mode not in MODES:
            raise ValueError(f"{type(self).__name__}: mode must be one of {MODES}, got {mode!r}")
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or int(chunk_size) < 1:
            raise ValueError(f"{type(self).__name__}: chunk_size must be an integer >= 1, got {chunk_size!r}")
        self.mode = mode
        self.chunk_size = int(chunk_size)

    @property
    def feature_dim(self):
        return taylor_feature_dim(self.key_size)

    @property
    def _scale(self):
        return 1.0 / math.sqrt(self.key_size) if self.attention_scale else 1.0

    def resolve_mode(self, q_len, k_len, full_mask=False, decoding=False):
        """The mode actually used for static lengths ``q_len``, ``k_len`` (None = unknown)."""
        if decoding:
            return "quadratic"
        if self.mode != "auto":
            return self.mode
        if full_mask:
            return "quadratic"
        if q_len is None or k_len is None:
            return "linear"
        return "quadratic" if q_len * k_len <= self.feature_dim * (q_len + k_len) else "linear"

    def feature_map(self, x):
        """Taylor features of split heads ``(batch, len, heads, key_size)`` (any leading axes)."""
        return taylor_features(x, math.sqrt(self._scale))

    def attention_weights(self, q, k, mask=None):
        """Normalised ``(batch, heads, q, k)`` weights (quadratic mode)."""
        s = ops.einsum("bqhd,bkhd->bhqk", ops.cast(q, "float32"), ops.cast(k, "float32")) * self._scale
        w = 1.0 + s + 0.5 * ops.square(s)
        if mask is not None:
            w = ops.where(mask, w, ops.zeros_like(w))
        den = ops.sum(w, axis=-1, keepdims=True)
        ok = den > 0
        return ops.where(ok, w / ops.where(ok, den, ops.ones_like(den)), ops.zeros_like(w))

    def _check_inputs(self, full_mask, attention_bias):
        if attention_bias is not None:
            raise ValueError(f"{self.name}: TaylorAttention does not support attention_bias; use MultiHeadAttention")
        if self.mode == "linear" and full_mask is not None:
            raise ValueError(f"{self.name}: mode='linear' cannot use a full (batch, query_len, key_len) "
                             "attention_mask; use mode='quadratic' or 'auto', or a (batch, key_len) padding mask")

    def compute_output_spec(self, query, value=None, key=None, attention_mask=None, attention_bias=None, **kwargs):
        # fail when a functional model is built, not only when it first runs
        full = attention_mask if attention_mask is not None and len(attention_mask.shape) == 3 else None
        self._check_inputs(full, attention_bias)
        return super().compute_output_spec(query, value, key, attention_mask=attention_mask,
                                           attention_bias=attention_bias, **kwargs)

    def attend(self, q, k, v, key_mask=None, full_mask=None, causal=False, attention_bias=None,
               query_offset=None, training=None):
        self._check_inputs(full_mask, attention_bias)
        decoding = query_offset is not None
        mode = self.resolve_mode(q.shape[1], k.shape[1], full_mask is not None, decoding)
        if mode == "linear" and causal and q.shape[1] is not None and k.shape[1] is not None \
                and q.shape[1] != k.shape[1]:
            mode = "quadratic"
        if mode == "quadratic":
            mask = self.combined_mask(ops.shape(q)[1], ops.shape(k)[1], key_mask, full_mask, causal, query_offset)
            probs = self.attention_weights(q, k, mask)
            probs = self.dropout(ops.cast(probs, v.dtype), training=training)
            return ops.einsum("bhqk,bkhd->bqhd", probs, v)
        # heads first: transposing the key_size-wide q, k, v is cheap and makes every F-wide contraction
        # a plain batched matrix product
        to_heads = (lambda x: ops.transpose(x, (0, 2, 1, 3)))
        out = linear_attention(self.feature_map(to_heads(q)), self.feature_map(to_heads(k)), to_heads(v),
                               key_mask=key_mask, causal=causal, chunk_size=self.chunk_size, layout="bhld")
        return ops.cast(to_heads(out), v.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, chunk_size=self.chunk_size)
        return config
