"""Layers that turn token or segment ids into attention masks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_longctx")
class PaddingMask(keras.layers.Layer):
    """Key padding mask ``(batch, length)``, True for a real token.

    Called on ``token_ids``: ``token_ids != pad_id`` (bert4keras' id-0
    padding with the default ``pad_id=0``). Called on ``[token_ids,
    attention_mask]``: ``attention_mask != 0`` and, unless ``pad_id`` is None,
    ``token_ids != pad_id``. ``pad_id=None`` (no id is padding) needs the
    attention mask.

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(PaddingMask()(np.array([[5, 6, 0]]))).tolist()
    [[True, True, False]]
    >>> keras.ops.convert_to_numpy(PaddingMask(pad_id=None)([np.array([[0, 6, 7]]), np.array([[1, 1, 0]])])).tolist()
    [[True, True, False]]
    """

    def __init__(self, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = None if pad_id is None else int(pad_id)

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            token_ids, attention_mask = inputs
            mask = ops.not_equal(attention_mask, 0)
            if self.pad_id is None:
                return mask
            return ops.logical_and(mask, ops.not_equal(token_ids, self.pad_id))
        if self.pad_id is None:
            raise ValueError(f"{self.name}: pad_id is None (no id is padding): call the layer on "
                             "[token_ids, attention_mask]")
        return ops.not_equal(inputs, self.pad_id)

    def compute_output_spec(self, inputs):
        token_ids = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        return keras.KerasTensor(token_ids.shape, dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update(pad_id=self.pad_id)
        return config


@keras.saving.register_keras_serializable(package="keras_longctx")
class UniLMMask(keras.layers.Layer):
    """UniLM's sequence-to-sequence mask (Dong et al., "Unified Language Model
    Pre-training", 2019): with ``c = cumsum(segment_ids)``, query ``i`` sees key
    ``j`` iff ``c_j <= c_i``: the source (segment 0) is bidirectional, the target
    (segment 1) sees the source and its own past. Combined with the padding mask
    (keys whose id is ``pad_id``; ``None``: no id is padding).

    Example:

    >>> import numpy as np
    >>> m = UniLMMask()([np.array([[3, 4, 5, 0]]), np.array([[0, 1, 1, 0]])])
    >>> tuple(m.shape)
    (1, 4, 4)
    """

    def __init__(self, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = None if pad_id is None else int(pad_id)

    def call(self, inputs):
        token_ids, segment_ids = inputs
        idx = ops.cumsum(ops.cast(segment_ids, "int32"), axis=1)
        mask = idx[:, None, :] <= idx[:, :, None]
        if self.pad_id is None:
            return mask
        return ops.logical_and(mask, ops.not_equal(token_ids, self.pad_id)[:, None, :])

    def compute_output_spec(self, inputs):
        shape = inputs[0].shape
        return keras.KerasTensor((shape[0], shape[1], shape[1]), dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update(pad_id=self.pad_id)
        return config
