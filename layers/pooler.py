"""BERT pooler: the first ([CLS]) token through a dense layer."""

import keras

from layers.quantized_sublayers import QuantizedSublayers


@keras.saving.register_keras_serializable(package="keras_longctx")
class Pooler(QuantizedSublayers, keras.layers.Layer):
    """``pooled = tanh(h_0 W + b)`` where ``h_0`` is the hidden state of the
    first token (Devlin et al., "BERT", 2018, section 3.1; ``bert/pooler/dense``).

    Example:

    >>> import numpy as np
    >>> tuple(Pooler(8)(np.ones((2, 5, 8), "float32")).shape)
    (2, 8)
    """

    def __init__(self, units, activation="tanh", kernel_initializer="glorot_uniform", quantization=None, **kwargs):
        super().__init__(**kwargs)
        self.init_quantization(quantization)
        self.units = int(units)
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.dense = keras.layers.Dense(self.units, activation=self.activation,
                                        kernel_initializer=self.kernel_initializer, name="dense",
                                        dtype=self.sublayer_dtype())
        self.dense.build((input_shape[0], input_shape[-1]))
        self.built = True

    def call(self, inputs):
        return self.dense(inputs[:, 0])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      **self.quantization_config())
        return config
