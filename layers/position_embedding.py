"""Learned absolute position embedding, optionally hierarchically decomposed."""

import keras
from keras import ops


def resolve_alpha(hierarchical):
    """``None``/``False`` -> ``None``; ``True`` -> 0.4; a float in (0, 1) -> itself."""
    if hierarchical is None or hierarchical is False:
        return None
    if hierarchical is True:
        return 0.4
    alpha = float(hierarchical)
    if not 0.0 < alpha < 1.0:
        raise ValueError(
            f"hierarchical position alpha must lie in (0, 1) (or be True for 0.4), got {hierarchical!r}"
        )
    return alpha


@keras.saving.register_keras_serializable(package="keras_longctx")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embedding ``P`` (``input_dim`` x ``output_dim``).

    Plain: position ``t < n`` gets ``p_t`` (row ``t`` of ``P``), ``n = input_dim``.

    Hierarchical decomposition (Su Jianlin, "层次分解位置编码，让BERT可以处理超长文本",
    kexue.fm/archives/7947, 2020): with ``alpha`` (0.4 by default),
    ``u_i = (p_i - alpha * p_0) / (1 - alpha)`` and position ``t = i * n + j``
    (``0 <= i, j < n``) gets ``alpha * u_i + (1 - alpha) * u_j``. For ``t < n``
    (``i = 0``) this equals ``p_t`` exactly, so a trained model is unchanged on
    short inputs, and lengths up to ``n**2`` become possible without training.

    Args:
        input_dim: number of trained positions ``n``.
        output_dim: embedding width.
        merge_mode: ``"add"`` returns ``inputs + P[positions]``; ``"zero"``
            returns the embeddings alone (batch 1, broadcastable).
        hierarchical: ``None`` (off), ``True`` (alpha 0.4) or a float alpha.
        embeddings_initializer: initializer of ``P``.

    Example:

    >>> import numpy as np
    >>> layer = PositionEmbedding(16, 4, hierarchical=True)
    >>> tuple(layer(np.zeros((2, 100, 4), "float32")).shape)  # 100 > 16 positions
    (2, 100, 4)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        merge_mode="add",
        hierarchical=None,
        embeddings_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if merge_mode not in ("add", "zero"):
            raise ValueError(f"PositionEmbedding: merge_mode must be 'add' or 'zero', got {merge_mode!r}")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.merge_mode = merge_mode
        self.hierarchical = hierarchical
        self.alpha = resolve_alpha(hierarchical)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

    @property
    def max_length(self):
        return self.input_dim**2 if self.alpha is not None else self.input_dim

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
        )
        self.built = True

    def check_length(self, seq_len):
        """Raise a clear error if a static length ``seq_len`` exceeds the limit."""
        if seq_len is None or seq_len <= self.max_length:
            return
        if self.alpha is None:
            raise ValueError(
                f"Input length {seq_len} exceeds the model's {self.input_dim} positions "
                f"(layer '{self.name}'). Build the model with hierarchical_position=True "
                f"(or a float alpha) to read up to {self.input_dim ** 2} tokens, or truncate "
                f"the input (maxlen={self.input_dim})."
            )
        raise ValueError(
            f"Input length {seq_len} exceeds {self.max_length} = {self.input_dim}**2 positions, "
            f"the limit of hierarchical position embeddings (layer '{self.name}')."
        )

    def embeddings_for(self, position_ids):
        """Embeddings of integer ``position_ids`` (any shape)."""
        table = ops.cast(self.embeddings, self.compute_dtype)
        if self.alpha is None:
            return ops.take(table, position_ids, axis=0)
        alpha = self.alpha
        u = (table - alpha * table[:1]) / (1.0 - alpha)
        low_ids = position_ids % self.input_dim
        high = ops.take(u, position_ids // self.input_dim, axis=0)
        low = ops.take(u, low_ids, axis=0)
        mixed = alpha * high + (1.0 - alpha) * low
        # Positions below n are the trained rows exactly (not up to rounding).
        trained = ops.take(table, low_ids, axis=0)
        return ops.where(ops.expand_dims(position_ids < self.input_dim, -1), trained, mixed)

    def call(self, inputs, start_index=0):
        """``start_index``: the position of ``inputs[:, 0]``, a Python int, a
        scalar tensor, or a ``(batch,)`` tensor of per-row offsets (left-padded
        batches in cached decoding; negative positions are clipped to 0); or a
        ``(batch, length)`` tensor, the position of every token (a tree of
        continuations, where siblings share a position)."""
        seq_len = inputs.shape[1]
        static = isinstance(seq_len, int) and isinstance(start_index, int)
        if static:
            self.check_length(seq_len + start_index)
        else:
            seq_len = ops.shape(inputs)[1]
            if len(getattr(start_index, "shape", ())) == 0:  # per-row offsets are checked by the caller
                _runtime_length_check(self, seq_len + start_index)
        if static and self.alpha is None:
            emb = ops.expand_dims(ops.cast(self.embeddings, self.compute_dtype)[start_index: start_index + seq_len], 0)
        else:
            start = ops.cast(start_index, "int32")
            positions = ops.arange(seq_len, dtype="int32")
            if len(getattr(start, "shape", ())) == 2:
                positions = ops.maximum(start, 0)
            elif len(getattr(start, "shape", ())) == 1:
                positions = ops.maximum(positions[None, :] + start[:, None], 0)
            else:
                positions = (positions + start)[None, :]
            emb = self.embeddings_for(positions)
        if self.merge_mode == "add":
            return inputs + emb
        return emb

    def compute_output_shape(self, input_shape):
        if self.merge_mode == "zero":
            return (1, input_shape[1], self.output_dim)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            merge_mode=self.merge_mode,
            hierarchical=self.hierarchical,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


def _runtime_length_check(layer, seq_len):
    """Length check when the length is only known at run time (TF graphs with a
    ``None`` sequence axis). JAX and torch always see static shapes."""
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if layer.alpha is None:
        msg = (
            f"Input length exceeds the model's {layer.input_dim} positions (layer '{layer.name}'). "
            f"Build the model with hierarchical_position=True (or a float alpha) to read up to "
            f"{layer.input_dim ** 2} tokens, or truncate the input (maxlen={layer.input_dim})."
        )
    else:
        msg = f"Input length exceeds {layer.max_length} positions (layer '{layer.name}')."
    tf.debugging.assert_less_equal(tf.cast(seq_len, tf.int64), tf.constant(layer.max_length, tf.int64), message=msg)
