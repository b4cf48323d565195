"""Layers that turn token or segment ids into attention masks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_longctx")
class PaddingMask(keras.layers.Layer):
    """``mask[b, t] = token_ids[b, t] != pad_id`` (bert4keras' id-0 padding).

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(PaddingMask()(np.array([[5, 6, 0]]))).tolist()
    [[True, True, False]]
    """

    def __init__(self, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)

    def call(self, token_ids):
        return ops.not_equal(token_ids, self.pad_id)

    def compute_output_spec(self, token_ids):
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
    (segment 1) sees the source and its own past. Combined with the padding mask.

    Example:

    >>> import numpy as np
    >>> m = UniLMMask()([np.array([[3, 4, 5, 0]]), np.array([[0, 1, 1, 0]])])
    >>> tuple(m.shape)
    (1, 4, 4)
    """

    def call(self, inputs):
        token_ids, segment_ids = inputs
        idx = ops.cumsum(ops.cast(segment_ids, "int32"), axis=1)
        mask = idx[:, None, :] <= idx[:, :, None]
        return ops.logical_and(mask, ops.not_equal(token_ids, 0)[:, None, :])

    def compute_output_spec(self, inputs):
        shape = inputs[0].shape
        return keras.KerasTensor((shape[0], shape[1], shape[1]), dtype="bool")
