"""Activation names used by checkpoint configs, mapped to Keras functions.

``gelu`` is the exact erf form (BERT): ``0.5 x (1 + erf(x / sqrt(2)))``.
``gelu_new`` (also ``gelu_pytorch_tanh``, ``gelu_fast``) is the tanh form of
GPT-2 and Megatron: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
(Hendrycks & Gimpel, "Gaussian Error Linear Units", 2016).
"""

import keras


@keras.saving.register_keras_serializable(package="keras_longctx")
def gelu_erf(x):
    return keras.activations.gelu(x, approximate=False)


@keras.saving.register_keras_serializable(package="keras_longctx")
def gelu_tanh(x):
    return keras.activations.gelu(x, approximate=True)


_ALIASES = {
    "gelu": gelu_erf,
    "gelu_erf": gelu_erf,
    "gelu_new": gelu_tanh,
    "gelu_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "silu": "silu",
    "swish": "silu",
}


def get_activation(name):
    """Return a Keras activation for a config's ``hidden_act`` value."""
    if callable(name) or name is None:
        return name
    key = str(name).lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return keras.activations.get(key)
    except ValueError as e:
        raise ValueError(f"Unknown activation {name!r} (hidden_act)") from e
