"""Softmax multi-head attention with masks, bias and a key/value cache."""

import math

import keras
from keras import ops

from layers.quantized_sublayers import QuantizedSublayers

NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="keras_longctx")
class MultiHeadAttention(QuantizedSublayers, keras.layers.Layer):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017, eq. 1):

        Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + B + M) V

    per head, with ``Q = x W_q + b_q`` etc., heads concatenated and projected by
    ``W_o``. ``M`` is 0 where attention is allowed and -1e9 elsewhere.

    Masks (combined by logical AND):
      * ``attention_mask``: ``(batch, key_len)`` padding mask (1 = real token)
        or ``(batch, query_len, key_len)`` full mask (e.g. UniLM's prefix mask);
        bool, int or float 0/1.
      * ``use_causal_mask=True``: query ``i`` sees keys ``j <= i`` (offset by
        ``cache_index`` when decoding with a cache).
      * ``attention_bias``: an additive ``(batch or 1, heads or 1, q, k)`` bias.

    Key/value cache (incremental decoding): pass ``cache`` of shape
    ``(batch, 2, num_heads, max_len, head_size)`` (heads before positions, so
    a step reads the cache without transposing it) and ``cache_index`` (where the
    new keys go); the call returns ``(output, updated_cache)``. The queries are
    the new positions only and attend to the whole cache, so ``attention_mask``
    (if given) must cover ``max_len`` keys.

    Shared read-only prefix (scoring many continuations of one context, e.g.
    every candidate move of a position): ``cache_mode='prefix'`` with a cache of
    batch 1 (or ``batch``) and ``attention_mask`` its ``(1 or batch, max_len)``
    key mask. Each of the ``batch`` rows of new tokens attends to the masked
    prefix and, causally, to its own new tokens; a ``(batch, new, max_len +
    new)`` ``attention_mask`` instead is the whole mask over [prefix | new]
    keys (no causal part added: a tree of continuations, each token seeing its
    ancestors, as in speculative decoding's tree attention; softmax attention
    only). The cache is neither written nor
    copied per row (the call returns it unchanged), so the cost is that of the new
    tokens only. Equals writing the new keys at ``cache_index`` of a per-row copy
    of the cache (``cache_mode='update'``, the default).

    Subclasses (``PerformerAttention``, ``TaylorAttention``) keep the weights
    and the call contract and override :meth:`attend`.

    Weights, in order: query, key, value and output kernels/biases, Google BERT's
    ``attention/self/{query,key,value}`` and ``attention/output/dense`` layout.
    ``quantization='int8'``: the four are Keras int8 ``Dense`` layers (see
    :mod:`layers.quantized_sublayers`).

    Example:

    >>> import numpy as np
    >>> mha = MultiHeadAttention(num_heads=2, head_size=4)
    >>> x = np.random.rand(1, 6, 8).astype("float32")
    >>> tuple(mha(x, attention_mask=np.array([[1, 1, 1, 1, 0, 0]])).shape)
    (1, 6, 8)
    """

    def __init__(
        self,
        num_heads,
        head_size,
        output_dim=None,
        key_size=None,
        use_bias=True,
        attention_scale=True,
        attention_dropout=0.0,
        kernel_initializer="glorot_uniform",
        quantization=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.init_quantization(quantization)
        if int(num_heads) < 1 or int(head_size) < 1:
            raise ValueError(f"{type(self).__name__}: num_heads and head_size must be >= 1, got {num_heads}, {head_size}")
        self.num_heads = int(num_heads)
        self.head_size = int(head_size)
        self.output_dim = output_dim
        self.key_size = int(key_size or head_size)
        self.use_bias = use_bias
        self.attention_scale = attention_scale
        self.attention_dropout = float(attention_dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    # ------------------------------------------------------------------ build
    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        out_dim = self.output_dim or query_shape[-1]

        def dense(units, name, in_shape):
            layer = keras.layers.Dense(units, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                                       name=name, dtype=self.sublayer_dtype())
            layer.build(in_shape)
            return layer

        self.query_dense = dense(self.num_heads * self.key_size, "query", query_shape)
        self.key_dense = dense(self.num_heads * self.key_size, "key", key_shape)
        self.value_dense = dense(self.num_heads * self.head_size, "value", value_shape)
        self.output_dense = dense(out_dim, "output", tuple(query_shape[:-1]) + (self.num_heads * self.head_size,))
        self.dropout = keras.layers.Dropout(self.attention_dropout, dtype=self.dtype_policy)
        self.built = True

    # ------------------------------------------------------------------- call
    def call(
        self,
        query,
        value=None,
        key=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        cache=None,
        cache_index=None,
        cache_mode="update",
        training=None,
    ):
        value = query if value is None else value
        key = value if key is None else key
        q = self._split_heads(self.query_dense(query), self.key_size)
        k = self._split_heads(self.key_dense(key), self.key_size)
        v = self._split_heads(self.value_dense(value), self.head_size)

        if cache_mode not in ("update", "prefix"):
            raise ValueError(f"{self.name}: cache_mode must be 'update' or 'prefix', got {cache_mode!r}")
        softmax_kernel = type(self).attend is MultiHeadAttention.attend  # softmax: the cached paths need no transpose
        returned_cache = cache  # 'prefix' hands the cache back unchanged
        if cache is not None and cache_mode == "prefix" and softmax_kernel:
            o = self._attend_prefix(q, k, v, cache, attention_mask, training)
        elif cache is not None:
            if cache_index is None:
                raise ValueError(f"{self.name}: cache_index is required with cache")
            index = ops.cast(cache_index, "int32")
            if cache_mode == "prefix":  # subclasses: a per-row copy of the prefix, then the usual update
                if attention_mask is not None and len(attention_mask.shape) == 3:
                    raise ValueError(f"{self.name}: a tree mask (rank 3) in cache_mode='prefix' is for softmax "
                                     f"attention only; {type(self).__name__} takes the prefix's key mask")
                cache, attention_mask = _prefix_per_row(cache, attention_mask, q, index)
            # one in-place update of the (b, 2, h, t, d) cache with the new (b, 2, h, lq, d) slice, then
            # views of its two halves (no stack: a full copy of the cache per layer and token)
            new = ops.cast(ops.stack([k, v], axis=1), cache.dtype)  # (b, 2, lq, h, d): small
            cache = ops.slice_update(cache, [0, 0, 0, index, 0], ops.transpose(new, (0, 1, 3, 2, 4)))
            k, v = cache[:, 0], cache[:, 1]
            if cache_mode == "update":
                returned_cache = cache
            if softmax_kernel:
                o = self._attend_cached(q, k, v, attention_mask, attention_bias, use_causal_mask, index, training)
            else:  # subclasses keep the (batch, length, heads, size) contract
                k, v = ops.transpose(k, (0, 2, 1, 3)), ops.transpose(v, (0, 2, 1, 3))
                key_mask, full_mask = self._normalize_mask(attention_mask, q, k)
                o = self.attend(q, k, v, key_mask=key_mask, full_mask=full_mask, causal=bool(use_causal_mask),
                                attention_bias=attention_bias, query_offset=index, training=training)
        else:
            key_mask, full_mask = self._normalize_mask(attention_mask, q, k)
            if attention_bias is not None and ops.ndim(attention_bias) not in (3, 4):
                raise ValueError(
                    f"{self.name}: attention_bias must have rank 3 or 4, got shape {attention_bias.shape}")
            o = self.attend(q, k, v, key_mask=key_mask, full_mask=full_mask, causal=bool(use_causal_mask),
                            attention_bias=attention_bias, training=training)
        shape = ops.shape(o)
        o = ops.reshape(o, (shape[0], shape[1], self.num_heads * self.head_size))
        o = self.output_dense(o)
        if cache is not None:
            return o, returned_cache
        return o

    def _attend_cached(self, q, k, v, attention_mask, attention_bias, causal, index, training):
        """Softmax attention of new queries ``(b, lq, h, d)`` over a cache laid
        out ``(b, h, max_len, d)``: plain batched matmuls, no cache transpose."""
        q = ops.transpose(q, (0, 2, 1, 3))
        key_mask, full_mask = self._normalize_mask(attention_mask, q, k)
        mask = self.combined_mask(ops.shape(q)[2], ops.shape(k)[2], key_mask, full_mask, causal, index)
        probs = self._probabilities(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), mask, attention_bias, v.dtype,
                                    training)
        return ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))

    def _attend_prefix(self, q, k, v, cache, prefix_mask, training):
        """New queries/keys/values ``(b, lq, h, d)`` over a read-only prefix cache
        ``(1 or b, 2, h, max_len, d)`` (keys masked by ``prefix_mask`` ``(1 or b,
        max_len)``) plus the new keys, causally; one softmax over both parts. A
        ``(b, lq, max_len + lq)`` ``prefix_mask`` is the whole mask instead."""
        q = ops.transpose(q, (0, 2, 1, 3))  # (b, h, lq, d)
        kn, vn = ops.transpose(k, (0, 2, 1, 3)), ops.transpose(v, (0, 2, 1, 3))
        kp, vp = ops.cast(cache[:, 0], q.dtype), ops.cast(cache[:, 1], q.dtype)  # (1 or b, h, t, d)
        lq, t = ops.shape(q)[2], ops.shape(kp)[2]
        scores = ops.concatenate([ops.matmul(q, ops.transpose(kp, (0, 1, 3, 2))),
                                  ops.matmul(q, ops.transpose(kn, (0, 1, 3, 2)))], axis=-1)
        if prefix_mask is not None and len(prefix_mask.shape) == 3:  # the whole mask, [prefix | new] keys
            return self._prefix_output(scores, ops.cast(prefix_mask, "bool")[:, None], vp, vn, t, training)
        key_mask = None
        if prefix_mask is not None:
            if len(prefix_mask.shape) != 2:
                raise ValueError(f"{self.name}: with cache_mode='prefix', attention_mask must be the prefix's "
                                 f"(1 or batch, max_len) key mask or a (batch, new, max_len + new) mask of "
                                 f"both; got shape {tuple(prefix_mask.shape)}")
            key_mask = ops.concatenate([ops.cast(prefix_mask, "bool"),
                                        ops.ones((ops.shape(prefix_mask)[0], lq), "bool")], axis=-1)
        # keys are [prefix | new]: new query i (at offset t) sees every prefix key and new keys <= i
        mask = self.combined_mask(lq, t + lq, key_mask, None, True, query_offset=t)
        return self._prefix_output(scores, mask, vp, vn, t, training)

    def _prefix_output(self, scores, mask, vp, vn, t, training):
        """softmax over [prefix | new] keys, then the values of both parts; ``(b, lq, h, d)``."""
        probs = self._probabilities(scores, mask, None, vn.dtype, training)
        o = ops.matmul(probs[..., :t], vp) + ops.matmul(probs[..., t:], vn)
        return ops.transpose(o, (0, 2, 1, 3))

    def _probabilities(self, scores, mask, attention_bias, dtype, training):
        """softmax(scores / sqrt(d) + bias, masked) in float32, then dropout; scores ``(b, h, q, k)``."""
        if self.attention_scale:
            scores = scores / math.sqrt(self.key_size)
        scores = ops.cast(scores, "float32")
        if attention_bias is not None:
            bias = ops.cast(attention_bias, "float32")
            scores = scores + (bias[:, None] if len(bias.shape) == 3 else bias)
        if mask is not None:
            scores = ops.where(mask, scores, NEG_INF)
        return self.dropout(ops.cast(ops.softmax(scores, axis=-1), dtype), training=training)

    def _split_heads(self, x, size):
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.num_heads, size))

    def _normalize_mask(self, mask, q, k):
        """Split a user mask into a key padding mask ``(b, k)`` or a full ``(b, q, k)`` mask."""
        if mask is None:
            return None, None
        rank = len(mask.shape)
        if rank == 2:
            return ops.cast(mask, "bool"), None
        if rank == 3:
            return None, ops.cast(mask, "bool")
        raise ValueError(
            f"{self.name}: attention_mask must have rank 2 (batch, key_len) or 3 "
            f"(batch, query_len, key_len); got rank {rank} with shape {tuple(mask.shape)}"
        )

    # ------------------------------------------------------------------ attend
    def combined_mask(self, q_len, k_len, key_mask, full_mask, causal, query_offset=None):
        """Boolean mask broadcastable to ``(batch, 1, q_len, k_len)``, or None."""
        mask = None
        if key_mask is not None:
            mask = key_mask[:, None, None, :]
        if full_mask is not None:
            m = full_mask[:, None, :, :]
            mask = m if mask is None else ops.logical_and(mask, m)
        if causal:
            qi = ops.arange(q_len, dtype="int32")
            if query_offset is not None:
                qi = qi + query_offset
            kj = ops.arange(k_len, dtype="int32")
            m = (kj[None, :] <= qi[:, None])[None, None]
            mask = m if mask is None else ops.logical_and(mask, m)
        return mask

    def attend(self, q, k, v, key_mask=None, full_mask=None, causal=False, attention_bias=None,
               query_offset=None, training=None):
        """Softmax attention on split heads: q ``(b, lq, h, dk)``, k ``(b, lk, h, dk)``,
        v ``(b, lk, h, dv)`` -> ``(b, lq, h, dv)``."""
        mask = self.combined_mask(ops.shape(q)[1], ops.shape(k)[1], key_mask, full_mask, causal, query_offset)
        probs = self._probabilities(ops.einsum("bqhd,bkhd->bhqk", q, k), mask, attention_bias, v.dtype, training)
        return ops.einsum("bhqk,bkhd->bqhd", probs, v)

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_size=self.head_size,
            output_dim=self.output_dim,
            key_size=self.key_size,
            use_bias=self.use_bias,
            attention_scale=self.attention_scale,
            attention_dropout=self.attention_dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            **self.quantization_config(),
        )
        return config


def _prefix_per_row(cache, attention_mask, query, index):
    """A batch-1 prefix cache (and its key mask) copied to every query row, the new
    positions ``index ...`` of the mask marked as keys."""
    rows = ops.shape(query)[0]
    cache = ops.broadcast_to(cache, (rows,) + tuple(ops.shape(cache)[1:]))
    if attention_mask is not None:
        attention_mask = ops.broadcast_to(attention_mask, (rows,) + tuple(ops.shape(attention_mask)[1:]))
        new_keys = ops.ones((rows, ops.shape(query)[1]), "int32")
        attention_mask = ops.cast(ops.slice_update(ops.cast(attention_mask, "int32"), [0, index], new_keys), "bool")
    return cache, attention_mask
