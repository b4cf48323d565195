"""int8 models on Keras' own quantization (``keras.quantizers``, ``Model.quantize``).

Two ways to an int8 model, both with Keras' weight format (an int8 ``kernel`` and a float
``kernel_scale`` per ``Dense``; an int8 ``embeddings`` table and ``embeddings_scale`` per
``Embedding``), so either saves to ``.keras`` / ``.weights.h5`` and loads back quantized:

* :func:`quantize_model`: ``model.quantize("int8")`` on a built float model (one-line errors,
  without Keras' warning for every layer that has nothing to quantize);
* ``build_transformer_model(..., quantize="int8")``: the layers are created int8 and each
  float tensor read from a checkpoint is quantized as it is assigned
  (:func:`assign_quantized`), so a float copy of the whole model never exists (CPM-LM's
  2.6B parameters convert in about the int8 model's memory).

What stays float: LayerNorms, biases, the position tables (hierarchical positions read them as
before) and Performer's random features. The attention swap applies unchanged.

Example:

>>> import numpy as np
>>> from models import build_transformer_model
>>> config = {"vocab_size": 50, "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 32}
>>> model = build_transformer_model(config, model="gpt2", with_lm="linear")
>>> quantize_model(model, "int8")
>>> model.get_layer("Embedding-Token").embeddings.dtype, is_quantized(model)
('int8', True)
"""

import warnings

import keras
import numpy as np

from layers.quantized_sublayers import QUANTIZATION_MODES, check_quantization

# Keras' weight paths: an int8 weight -> the float scale it is divided by, and the axis its
# abs-max is taken over (a Dense kernel (in, out): over the inputs, one scale per output
# unit; an Embedding table (rows, dim): over each row)
SCALE_OF = {"kernel": ("kernel_scale", 0), "embeddings": ("embeddings_scale", -1)}


def is_quantized(model):
    """Whether any layer of ``model`` holds Keras-quantized weights."""
    return any(getattr(layer, "quantization_mode", None) for layer in model._flatten_layers())


def quantize_model(model, mode="int8"):
    """``model.quantize(mode)`` (Keras' own), in place. ValueError in one line for a mode
    other than ``'int8'``, a model that is already quantized or not built, or a dtype
    policy Keras does not quantize (float16 / bfloat16 variables)."""
    check_quantization(mode, "quantize")
    if mode is None:
        return
    if is_quantized(model):
        raise ValueError(f"model '{model.name}' is already quantized; quantize a float model (or load the "
                         f"quantized one as it is)")
    policy = keras.config.dtype_policy().name if model.dtype_policy is None else model.dtype_policy.name
    float_variables = {w.dtype for w in model.weights if "float" in w.dtype}
    if float_variables - {"float32"}:
        raise ValueError(f"model '{model.name}' has {sorted(float_variables)} variables (policy {policy!r}): Keras "
                         f"quantizes float32 variables; build the model in float32 (compute in mixed precision "
                         f"is fine) and quantize it then")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have a `quantize` method implemented")
        try:
            model.quantize(mode)
        except ValueError as error:
            first = next((line for line in str(error).splitlines() if line.strip()), str(error))
            raise ValueError(f"Keras cannot quantize model '{model.name}' to {mode}: {first}") from None
    if getattr(model, "transformer", None) is not None:
        model.transformer.quantization = mode  # what the model's config now says


def scale_weights(model):
    """``{path of an int8 weight: (its scale weight, the abs-max axis)}`` for ``model``."""
    by_path = {weight.path: weight for weight in model.weights}
    scales = {}
    for path, weight in by_path.items():
        head, _, leaf = path.rpartition("/")
        if weight.dtype == "int8" and leaf in SCALE_OF:
            scale_name, axis = SCALE_OF[leaf]
            scales[path] = (by_path[f"{head}/{scale_name}"], axis)
    return scales


def stored_arrays(weight, value, scales):
    """What float ``value`` becomes in ``weight``: ``[(weight, value)]`` for a float weight;
    for an int8 kernel or table (``scales``: :func:`scale_weights`), Keras' abs-max int8
    (``keras.quantizers.abs_max_quantize``, the quantizer of ``Model.quantize``) and its scale,
    ``[(weight, int8 array), (scale weight, scale array)]``. NumPy arrays."""
    if weight.path not in scales:
        return [(weight, np.asarray(value).astype(weight.dtype, copy=False))]
    scale_weight, axis = scales[weight.path]
    quantized, scale = keras.quantizers.abs_max_quantize(np.asarray(value, "float32"), axis=axis, to_numpy=True)
    scale = keras.ops.convert_to_numpy(scale).reshape(-1)  # Keras keeps one scale per output unit or row
    return [(weight, keras.ops.convert_to_numpy(quantized)), (scale_weight, scale.astype(scale_weight.dtype))]


def assign_quantized(weight, value, scales):
    """Assign float ``value`` to ``weight``, quantized when it is int8 (:func:`stored_arrays`)."""
    for target, array in stored_arrays(weight, value, scales):
        target.assign(array)


__all__ = ["QUANTIZATION_MODES", "assign_quantized", "is_quantized", "quantize_model", "scale_weights",
           "stored_arrays"]
