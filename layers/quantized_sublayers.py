"""Keras' int8 quantization for layers that hold ``Dense`` sublayers.

Keras quantizes the leaf ``Dense`` / ``EinsumDense`` / ``Embedding`` layers of a model
(``model.quantize("int8")``, see ``keras.quantizers``): each kernel becomes int8 with one
float scale per output unit (``w_int8 = round(w * s)``, ``s = 127 / max |w|`` over the
kernel's input axis: abs-max quantization, Jacob et al., "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", 2018), and each call quantizes its
inputs the same way per row. A layer that builds its ``Dense`` sublayers in ``build()`` does
not save which of them were quantized, so a reloaded model would rebuild float kernels and
fail to read the int8 ones (Keras' own ``MultiHeadAttention`` has this problem).

:class:`QuantizedSublayers` fixes that for the layers of this package: their config carries
``quantization`` (``None`` or ``'int8'``, read from the sublayers, so it also follows a later
``model.quantize``), and ``build()`` gives the sublayers :meth:`sublayer_dtype`: Keras' own
``int8_from_<policy>`` dtype policy, under which ``Dense`` builds its int8 kernel and scale
directly (no float kernel is ever allocated).

Example:

>>> import numpy as np, keras
>>> from layers import FeedForward
>>> ffn = FeedForward(16, quantization="int8")
>>> tuple(ffn(np.ones((1, 3, 8), "float32")).shape), ffn.intermediate.kernel.dtype
((1, 3, 8), 'int8')
>>> FeedForward.from_config(ffn.get_config()).quantization
'int8'
"""

import keras

QUANTIZATION_MODES = ("int8",)


def check_quantization(mode, where="quantization"):
    """``mode`` if it is None or a supported mode, else ValueError naming it and the choices."""
    if mode is not None and mode not in QUANTIZATION_MODES:
        raise ValueError(f"{where} must be None or one of {QUANTIZATION_MODES}, got {mode!r}")
    return mode


def quantized_policy(mode, policy):
    """Keras' dtype policy that quantizes with ``mode`` on top of ``policy`` (a policy or its name)."""
    name = getattr(policy, "name", policy)
    base = name.split("_from_", 1)[-1]  # an already quantized policy: its float part
    return keras.dtype_policies.get(f"{mode}_from_{base}")


class QuantizedSublayers:
    """Mixin for a ``keras.layers.Layer`` whose ``build()`` creates ``Dense`` sublayers:
    call ``init_quantization(quantization)`` in ``__init__``, create the sublayers with
    ``dtype=self.sublayer_dtype()`` and add :meth:`quantization_config` to ``get_config``."""

    def init_quantization(self, quantization):
        self._quantization = check_quantization(quantization, f"{type(self).__name__}: quantization")

    @property
    def quantization(self):
        """``'int8'`` once a sublayer is quantized (here or by ``model.quantize``), else the
        constructor's value."""
        for layer in self._flatten_layers(include_self=False):
            if getattr(layer, "quantization_mode", None):
                return layer.quantization_mode
        return self._quantization

    def sublayer_dtype(self):
        """The dtype policy a ``Dense`` sublayer is created with."""
        if self._quantization is None:
            return self.dtype_policy
        return quantized_policy(self._quantization, self.dtype_policy)

    def quantization_config(self):
        return {"quantization": self.quantization}
