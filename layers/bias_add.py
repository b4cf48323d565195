"""A lone trainable bias (the MLM head's output bias)."""

import keras


@keras.saving.register_keras_serializable(package="keras_longctx")
class BiasAdd(keras.layers.Layer):
    """``y = x + b`` with ``b`` of the last axis' size; BERT's ``cls/predictions/output_bias``.

    Example:

    >>> import numpy as np
    >>> tuple(BiasAdd()(np.ones((2, 3), "float32")).shape)
    (2, 3)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")
        self.built = True

    def call(self, inputs):
        return inputs + keras.ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
