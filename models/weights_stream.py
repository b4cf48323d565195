"""Write a Keras ``.weights.h5`` file from streamed ``(name, array)`` pairs without
building the full-size model: the converter's way of staying near the size of
the checkpoint it reads.

Keras 3 lays a ``.weights.h5`` file out by the model's structure (groups such
as ``layers/layer_normalization_4/vars/0``, numbered per class in layer order),
never by the weights' shapes. So a *shadow*: the same architecture with tiny
sizes (same layer count, hidden size = heads, vocabulary 4, ...), gives the
exact layout. Each shadow weight is filled with its own index, the shadow is
saved with ``keras.Model.save_weights``, and the dataset holding index ``i`` is
where weight ``i`` of the full model goes. The full-size arrays then arrive one
at a time (split, transposed into Keras layout as :meth:`Transformer.assign_from_named_arrays`
does) and go straight into the file, which is written under a temporary name
and renamed when every weight is in.

Peak memory: one merged tensor and its Keras-layout part(s), instead of the
whole float32 model. An int8 shadow (built with ``quantization='int8'``) gives an int8
file: each tensor is quantized as it is written (:func:`models.quantization.stored_arrays`),
and the file loads into the same model built with ``quantize='int8'``.

>>> import numpy as np, os, tempfile
>>> from models import build_transformer_model
>>> cfg = {"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2,
...        "n_inner": 16, "n_positions": 12}
>>> full = build_transformer_model(cfg, model="gpt2", return_keras_model=False)
>>> shadow = build_transformer_model(shadow_config(cfg), model="gpt2", return_keras_model=False)
>>> path = os.path.join(tempfile.mkdtemp(), "model.weights.h5")
>>> write_weights_streaming(shadow, full.hf_state_dict().items(), path) == len(full.model.weights)
True
>>> loaded = build_transformer_model(cfg, path, model="gpt2")
>>> all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), full.model.get_weights()))
True
"""

import os
import tempfile

import numpy as np

from models.quantization import scale_weights, stored_arrays
from toolkit.checkpoints import CheckpointError, atomic_path

# GPT-2 (Hugging Face keys) and BERT sizes that do not change the layer structure
_SHRINK = {"n_embd": "heads", "hidden_size": "heads", "n_inner": 4, "intermediate_size": 4, "vocab_size": 4,
           "n_positions": 4, "max_position_embeddings": 4, "n_ctx": 4, "type_vocab_size": 2}


def shadow_config(config):
    """``config`` (a dict with Hugging Face GPT-2 or BERT keys) with every size that
    only sets weight shapes made tiny; the layer count, head count and flags stay, so
    the built model has the same layers in the same order."""
    heads = config.get("n_head", config.get("num_attention_heads"))
    if heads is None:
        raise ValueError("shadow_config: the config gives no head count (n_head / num_attention_heads)")
    out = dict(config)
    for key, size in _SHRINK.items():
        if key in out and out[key] is not None:
            out[key] = int(heads) if size == "heads" else size
    return out


def _dataset_paths(shadow):
    """``{id(keras weight): h5 dataset path}`` of the shadow's layout, and the group
    skeleton ``[(group path, attrs)]`` to recreate."""
    import h5py
    import keras

    weights = list(shadow.model.weights)
    if len(weights) >= 2 ** 24:
        raise ValueError("too many weights to tag with float32 indices")
    saved = [keras.ops.convert_to_numpy(w) for w in weights]
    tmpdir = tempfile.mkdtemp(prefix="shadow-")
    path = os.path.join(tmpdir, "shadow.weights.h5")
    try:
        for i, w in enumerate(weights):
            w.assign(_tag(i, w))
        shadow.model.save_weights(path)
        where, groups = {}, []
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    tag = _read_tag(obj[()])
                    if 0 <= tag < len(weights) and np.array_equal(obj[()], _tag(tag, weights[tag])):
                        where[id(weights[tag])] = name
                else:
                    groups.append((name, dict(obj.attrs)))
            f.visititems(visit)
            root_attrs = dict(f.attrs)
    finally:
        for w, value in zip(weights, saved):
            w.assign(value)
        if os.path.exists(path):
            os.remove(path)
        os.rmdir(tmpdir)
    missing = [w.path for w in weights if id(w) not in where]
    if missing:
        raise RuntimeError(f"could not locate {len(missing)} weight(s) in the Keras weights layout: {missing[:3]}")
    return where, groups, root_attrs


def _tag(index, weight):
    """``weight`` filled with its index (an int8 weight: the index's 4 bytes, then zeros)."""
    if weight.dtype != "int8":
        return np.full(tuple(weight.shape), index, dtype=weight.dtype)
    if int(np.prod(weight.shape)) < 4:
        raise ValueError(f"int8 weight '{weight.path}' has fewer than 4 values: it cannot be tagged")
    tag = np.zeros(int(np.prod(weight.shape)), "int8")
    tag[:4] = np.frombuffer(np.int32(index).tobytes(), "int8")
    return tag.reshape(tuple(weight.shape))


def _read_tag(value):
    value = np.asarray(value).reshape(-1)
    if value.dtype == np.int8:
        return int(np.frombuffer(value[:4].tobytes(), "int32")[0]) if value.size >= 4 else -1
    return int(value[0]) if value.size else -1


def write_weights_streaming(shadow, named_arrays, path, fmt="hf"):
    """Write ``path`` (a Keras ``.weights.h5``) for the full-size version of
    ``shadow``'s architecture from ``(name, array)`` pairs (``fmt='hf'``: Hugging
    Face names and layout, ``'tf'``: bert4keras names), one at a time. Every weight
    must get exactly one value (CheckpointError names what is missing or unknown);
    shapes are the arrays' own: loading the file into the full model checks them.
    The file appears only when complete. Returns the number of weights written."""
    import h5py

    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"Keras weights file name must end with '.weights.h5', got '{path}'")
    where, groups, root_attrs = _dataset_paths(shadow)
    scales = scale_weights(shadow.model)  # an int8 shadow: each tensor is quantized as it is written
    written = {}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(root_attrs)
            for name, attrs in groups:
                f.require_group(name).attrs.update(attrs)
            for layer_name, w, source, part in shadow.iter_named_parts(named_arrays, fmt):
                if where[id(w)] in written:
                    raise CheckpointError(f"'{source}' gives layer '{layer_name}' weight '{w.path}' a second "
                                          f"value (the first came from '{written[where[id(w)]]}')")
                for weight, array in stored_arrays(w, part, scales):
                    f.create_dataset(where[id(weight)], data=np.ascontiguousarray(array))
                    written[where[id(weight)]] = source
    return len(written)


__all__ = ["shadow_config", "write_weights_streaming"]
