"""models/weights_stream.py: a Keras .weights.h5 written from streamed arrays through a
tiny shadow model loads into the full-size model with exactly the weights it was given
(GPT-2 from HF names, BERT from bert4keras names), has the same datasets as Keras' own
save_weights, and bad streams fail with clear errors and leave no file."""

import doctest
import os

import h5py
import numpy as np
import pytest

from models import build_transformer_model
from models import weights_stream
from models.weights_stream import shadow_config, write_weights_streaming
from toolkit.checkpoints import CheckpointError

GPT2 = {"model_type": "gpt2", "vocab_size": 23, "n_embd": 12, "n_layer": 2, "n_head": 3, "n_inner": 20,
        "n_positions": 16}
BERT = {"model_type": "bert", "vocab_size": 31, "hidden_size": 12, "num_hidden_layers": 2,
        "num_attention_heads": 3, "intermediate_size": 20, "max_position_embeddings": 16, "type_vocab_size": 2,
        "hidden_act": "gelu"}


def test_docstring_example():
    assert doctest.testmod(weights_stream).failed == 0


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_streamed_file_equals_keras_save(kind, tmp_path):
    cfg = GPT2 if kind == "gpt2" else BERT
    kwargs = dict(model=kind) if kind == "gpt2" else dict(model="bert", with_mlm=True, with_pool=True)
    full = build_transformer_model(cfg, return_keras_model=False, **kwargs)
    shadow = build_transformer_model(shadow_config(cfg), return_keras_model=False, **kwargs)
    assert shadow.model.count_params() < full.model.count_params() / 4
    assert len(shadow.model.weights) == len(full.model.weights)
    path = str(tmp_path / "streamed.weights.h5")
    if kind == "gpt2":
        n = write_weights_streaming(shadow, full.hf_state_dict().items(), path, fmt="hf")
    else:
        n = write_weights_streaming(shadow, full.tf_state_dict().items(), path, fmt="tf")
    assert n == len(full.model.weights)
    keras_path = str(tmp_path / "keras.weights.h5")
    full.model.save_weights(keras_path)
    assert _datasets(path) == _datasets(keras_path)  # same dataset paths and shapes
    loaded = build_transformer_model(cfg, path, **kwargs)
    for a, b in zip(loaded.get_weights(), full.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["keras.weights.h5", "streamed.weights.h5"]  # no temp file left


def test_bad_streams_fail_and_leave_no_file(tmp_path):
    full = build_transformer_model(GPT2, model="gpt2", return_keras_model=False)
    shadow = build_transformer_model(shadow_config(GPT2), model="gpt2", return_keras_model=False)
    state = full.hf_state_dict()
    path = str(tmp_path / "m.weights.h5")
    missing = [(k, v) for k, v in state.items() if k != "transformer.h.1.mlp.c_fc.weight"]
    with pytest.raises(CheckpointError, match=r"no value was given for 1 weight.*h\.1\.mlp\.c_fc\.weight"):
        write_weights_streaming(shadow, missing, path)
    unknown = list(state.items()) + [("transformer.h.7.mlp.c_fc.weight", np.zeros((12, 20), "float32"))]
    with pytest.raises(CheckpointError, match=r"'transformer\.h\.7\.mlp\.c_fc\.weight' matches no weight"):
        write_weights_streaming(shadow, unknown, path)
    twice = list(state.items()) + [("transformer.wte.weight", state["transformer.wte.weight"])]
    with pytest.raises(CheckpointError, match="second value"):
        write_weights_streaming(shadow, twice, path)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        write_weights_streaming(shadow, state.items(), str(tmp_path / "m.h5"))
    assert os.listdir(tmp_path) == []  # nothing half-written
    # a wrong shape is caught when the file is loaded, naming the layer
    bad = dict(state, **{"transformer.h.0.mlp.c_fc.weight": np.zeros((12, 21), "float32")})
    write_weights_streaming(shadow, bad.items(), path)
    with pytest.raises(CheckpointError, match=r"m\.weights\.h5' does not fit this model: weight "
                                              r"'Transformer-0-FeedForward/intermediate/kernel' has shape \(12, 20\) "
                                              r"but the file holds \(12, 21\)"):
        build_transformer_model(GPT2, path, model="gpt2")


def test_shadow_config_keeps_the_structure():
    s = shadow_config(dict(GPT2, n_embd=2560, n_head=32, n_inner=10240, vocab_size=30000, n_positions=1024))
    assert (s["n_layer"], s["n_head"], s["n_embd"], s["n_inner"], s["vocab_size"]) == (2, 32, 32, 4, 4)
    with pytest.raises(ValueError, match="head count"):
        shadow_config({"n_embd": 8})
