"""Token embedding with a tied output projection."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_longctx")
class TokenEmbedding(keras.layers.Embedding):
    """Token embedding whose matrix doubles as the output projection.

    ``mode="embedding"`` (default) looks rows up: ``y = E[ids]``.
    ``mode="dense"`` projects hidden states onto the vocabulary with the same
    matrix: ``logits = h @ E^T``, the weight tying of BERT's MLM head and
    GPT-2's LM head (Press & Wolf, "Using the Output Embedding to Improve
    Language Models", 2017; as in bert4keras' ``Embedding(mode='dense')``).

    int8 (``model.quantize("int8")`` or ``quantize("int8")``): Keras' own int8
    ``Embedding`` (``E ~ E_int8 / s``, one abs-max scale ``s`` per row); the dense mode
    then follows Keras' int8 ``Dense``: the inputs are abs-max quantized per row
    (``h ~ h_int8 / r``) and ``logits = (h_int8 E_int8^T) / (r s^T)``.

    Example:

    >>> import numpy as np
    >>> emb = TokenEmbedding(100, 8)
    >>> h = emb(np.array([[1, 2, 0]]))
    >>> tuple(emb(h, mode="dense").shape)
    (1, 3, 100)
    """

    def quantize(self, mode=None, type_check=True, config=None):
        """Keras' ``Embedding.quantize`` (int8 only: the tied dense mode needs one scale per row)."""
        if mode != "int8":
            raise ValueError(f"{self.name}: TokenEmbedding quantizes to 'int8' only, got {mode!r}")
        super().quantize(mode, type_check=False, config=config)

    def _int8_call(self, inputs, mode="embedding", training=None):
        if mode == "embedding":
            return super()._int8_call(inputs)
        if mode != "dense":
            raise ValueError(f"TokenEmbedding: mode must be 'embedding' or 'dense', got {mode!r}")
        shape = ops.shape(inputs)
        flat = ops.reshape(inputs, (-1, shape[-1]))
        flat, row_scale = keras.quantizers.abs_max_quantize(flat, axis=-1)
        logits = ops.cast(ops.einsum("nd,vd->nv", flat, self._embeddings), self.compute_dtype)
        logits = ops.divide(logits, ops.multiply(row_scale, self.embeddings_scale[None, :]))
        return ops.reshape(logits, tuple(shape[:-1]) + (self.input_dim,))

    def call(self, inputs, mode="embedding"):
        if mode == "embedding":
            return super().call(inputs)
        if mode == "dense":
            kernel = ops.cast(self.embeddings, self.compute_dtype)
            # contract with the (vocab, hidden) table as stored (no transposed copy of it), on 2-D
            # inputs: TensorFlow's gradient of an einsum with '...' materialises a
            # (batch, length, vocab, hidden) tensor (29 GB for a 7k vocabulary at 32 x 128)
            shape = ops.shape(inputs)
            flat = ops.reshape(inputs, (-1, shape[-1]))
            logits = ops.einsum("nd,vd->nv", flat, kernel)
            return ops.reshape(logits, tuple(shape[:-1]) + (ops.shape(kernel)[0],))
        raise ValueError(f"TokenEmbedding: mode must be 'embedding' or 'dense', got {mode!r}")

    def compute_mask(self, inputs, mask=None):
        # Only meaningful for integer ids; the dense mode keeps the incoming mask.
        if self.mask_zero and "int" in str(getattr(inputs, "dtype", "")):
            return ops.not_equal(inputs, 0)
        return mask

    def compute_output_shape(self, input_shape, mode="embedding"):
        if mode == "dense":
            return tuple(input_shape[:-1]) + (self.input_dim,)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, mode="embedding"):
        shape = self.compute_output_shape(inputs.shape, mode=mode)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)
