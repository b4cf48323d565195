"""Position-wise feed-forward block."""

import keras

from layers.activations import get_activation
from layers.quantized_sublayers import QuantizedSublayers


@keras.saving.register_keras_serializable(package="keras_longctx")
class FeedForward(QuantizedSublayers, keras.layers.Layer):
    """``FFN(x) = act(x W1 + b1) W2 + b2`` applied at every position
    (Vaswani et al., "Attention Is All You Need", 2017, eq. 2).

    Weights, in order: ``intermediate`` kernel/bias (d x units) and ``output``
    kernel/bias (units x d), the layout of Google's BERT checkpoints.
    ``quantization='int8'``: both are Keras int8 ``Dense`` layers (see
    :mod:`layers.quantized_sublayers`).

    Example:

    >>> import numpy as np
    >>> tuple(FeedForward(32, activation="gelu")(np.ones((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(self, units, activation="gelu", use_bias=True, output_dim=None,
                 kernel_initializer="glorot_uniform", quantization=None, **kwargs):
        super().__init__(**kwargs)
        self.init_quantization(quantization)
        self.units = int(units)
        self.activation = activation
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        out = self.output_dim or input_shape[-1]
        self.intermediate = keras.layers.Dense(
            self.units, activation=get_activation(self.activation), use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer, name="intermediate", dtype=self.sublayer_dtype())
        self.intermediate.build(input_shape)
        self.output_dense = keras.layers.Dense(
            out, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
            name="output", dtype=self.sublayer_dtype())
        self.output_dense.build(tuple(input_shape[:-1]) + (self.units,))
        self.built = True

    def call(self, inputs):
        return self.output_dense(self.intermediate(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation if isinstance(self.activation, str) else keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            output_dim=self.output_dim,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            **self.quantization_config(),
        )
        return config
