"""The KV-cache decoder's int8 hot path: on Keras' torch backend, every int8 ``Dense`` and
the int8 tied LM head run torch's fbgemm kernel (:mod:`toolkit.int8_kernels`) on Keras' own
int8 weights, inside a step traced by TorchScript.

Keras' int8 ``Dense`` quantizes its inputs and multiplies int8 by int8 with the backend's
generic kernels; on this CPU that reads int8 weights no faster than float32 ones (measured:
``model.quantize("int8")`` decodes at 0.94x float32 on TensorFlow, 1.01x on JAX). fbgemm's
VNNI kernel reads them at memory speed. The weights stay Keras' (``model.quantize``, save and
load unchanged); the fbgemm copies are packed once per decoder.

Example (``KERAS_BACKEND=torch``):

>>> from models import build_transformer_model, quantize_model      # doctest: +SKIP
>>> model = build_transformer_model(config, checkpoint, model="gpt2", quantize="int8")  # doctest: +SKIP
>>> generate(model, prompts, 128)     # fbgemm products, traced step  # doctest: +SKIP
"""

import contextlib
import os

import keras
import numpy as np
from keras import ops

from layers.token_embedding import TokenEmbedding
from toolkit.int8_kernels import int8_linear


def fast_int8_kernels(model):
    """``{layer: fbgemm linear}`` for the int8 ``Dense`` layers and the int8 ``TokenEmbedding``
    (its tied dense mode) of ``model``; empty for a float model."""
    kernels = {}
    for layer in model._flatten_layers():
        if getattr(layer, "quantization_mode", None) != "int8":
            continue
        if isinstance(layer, keras.layers.Dense):
            kernels[layer] = int8_linear(ops.convert_to_numpy(layer._kernel), ops.convert_to_numpy(layer.kernel_scale))
        elif isinstance(layer, TokenEmbedding):
            kernels[layer] = int8_linear(ops.convert_to_numpy(layer._embeddings),
                                         ops.convert_to_numpy(layer.embeddings_scale), transposed=True)
    return kernels


@contextlib.contextmanager
def routed_to(kernels):
    """Within the block, each layer of ``kernels`` computes its int8 products with its fbgemm
    linear (the layer's ``_int8_call``, Keras' int8 entry point, is shadowed, then restored)."""
    for layer, linear in kernels.items():
        layer._int8_call = _fast_call(layer, linear)
    try:
        yield
    finally:
        for layer in kernels:
            del layer._int8_call


def _fast_call(layer, linear):
    original = type(layer)._int8_call.__get__(layer)

    def project(inputs, units):
        shape = ops.shape(inputs)
        flat = ops.reshape(ops.cast(inputs, "float32"), (-1, shape[-1]))
        return ops.cast(ops.reshape(linear(flat), tuple(shape[:-1]) + (units,)), layer.compute_dtype)

    if isinstance(layer, TokenEmbedding):
        def call(inputs, mode="embedding", training=None):
            return project(inputs, layer.input_dim) if mode == "dense" else original(inputs, mode=mode)
        return call

    def call(inputs, training=None):
        outputs = project(inputs, layer.units)
        if layer.bias is not None:
            outputs = ops.add(outputs, layer.bias)
        return layer.activation(outputs) if layer.activation is not None else outputs
    return call


def decoding_speeds(config, prompt, new, batches, repeats):
    """Greedy tok/s of a random GPT-2 of ``config`` on this backend, float32 then int8
    (``quantize_model``), per batch size; and ``floor``: the int8 products of its weight shapes
    alone (fbgemm, no attention or loop). ``scripts/bench_generate.py`` runs it on torch."""
    import torch

    from models.builder import build_transformer_model
    from models.quantization import quantize_model
    from toolkit.benchmarking import median_time
    from toolkit.generation import generate

    torch.set_num_threads(os.cpu_count())
    model = build_transformer_model(config, model="gpt2", with_lm="linear")
    speeds = {"float32": {}, "int8": {}, "floor": {}}
    for kind in ("float32", "int8"):
        if kind == "int8":
            quantize_model(model, "int8")
        for batch in batches:
            speeds[kind][batch] = batch * new / median_time(lambda: generate(model, [prompt] * batch, new), repeats)
    hidden, rng = config["n_embd"], np.random.default_rng(0)
    shapes = [(hidden, 3 * hidden), (hidden, hidden), (hidden, 4 * hidden), (4 * hidden, hidden)] * config["n_layer"]
    shapes.append((hidden, config["vocab_size"]))
    linears = [int8_linear(rng.integers(-127, 128, shape, dtype=np.int8), np.ones(shape[1], "float32"))
               for shape in shapes]
    for batch in batches:
        inputs = torch.randn(batch, 4 * hidden)

        def products():
            with torch.inference_mode():
                for (rows, _), linear in zip(shapes, linears):
                    linear(inputs[:, :rows])
        speeds["floor"][batch] = batch / median_time(products, 20)
    return speeds
