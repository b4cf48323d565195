"""Checkpoint formats: Google TF BERT, bert4keras' save_weights_as_checkpoint,
Keras .weights.h5, our safetensors writer; and the bad-checkpoint errors."""

import json
import os

import numpy as np
import pytest
import torch

from models import build_transformer_model
from tests.helpers import TINY_BERT, TINY_GPT2, hf_bert, hf_gpt2, padded_ids, run_bert4keras, write_json
from toolkit.checkpoints import CheckpointError, save_tf_checkpoint

TOL = 1e-4


def google_names(state_dict):
    """HF BERT state dict -> Google TF BERT checkpoint, written the way Hugging
    Face's ``convert_bert_pytorch_checkpoint_to_original_tf`` does (an
    independent oracle for our name mapping)."""
    var_map = (("layer.", "layer_"), ("word_embeddings.weight", "word_embeddings"),
               ("position_embeddings.weight", "position_embeddings"),
               ("token_type_embeddings.weight", "token_type_embeddings"), (".", "/"),
               ("LayerNorm/weight", "LayerNorm/gamma"), ("LayerNorm/bias", "LayerNorm/beta"), ("weight", "kernel"))
    transpose = ("dense.weight", "attention.self.query", "attention.self.key", "attention.self.value")
    out = {}
    for name, t in state_dict.items():
        value = t.numpy()
        if name == "cls.predictions.bias":
            out["cls/predictions/output_bias"] = value
            continue
        if name.startswith("cls.predictions.decoder"):
            continue
        if name == "cls.seq_relationship.weight":
            out["cls/seq_relationship/output_weights"] = value  # (2, hidden), not transposed
            continue
        if name == "cls.seq_relationship.bias":
            out["cls/seq_relationship/output_bias"] = value
            continue
        if any(x in name for x in transpose) and name.endswith("weight") and "LayerNorm" not in name:
            value = value.T
        tf_name = name
        for a, b in var_map:
            tf_name = tf_name.replace(a, b)
        out[tf_name if tf_name.startswith(("bert/", "cls/")) else "bert/" + tf_name] = value
    return out


@pytest.fixture(scope="module")
def pretraining(tmp_path_factory):
    d = tmp_path_factory.mktemp("google")
    hf = hf_bert("BertForPreTraining", seed=7)
    hf.save_pretrained(d / "hf")
    cfg = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    write_json(cfg, d / "bert_config.json")
    save_tf_checkpoint(google_names(hf.state_dict()), d / "google" / "bert_model.ckpt")
    return d, hf


def test_google_tf_checkpoint_equals_hf_path(pretraining):
    d, hf = pretraining
    ids = padded_ids(2, 13, TINY_BERT["vocab_size"], [13, 7], seed=8)
    seg = (np.arange(13)[None] > 6).astype("int32").repeat(2, 0)
    g = build_transformer_model(str(d / "bert_config.json"), str(d / "google" / "bert_model.ckpt"),
                                with_nsp=True, with_mlm=True)
    h = build_transformer_model(str(d / "hf" / "config.json"), str(d / "hf"), with_nsp=True, with_mlm=True)
    (gn, gm), (hn, hm) = g.predict([ids, seg], verbose=0), h.predict([ids, seg], verbose=0)
    np.testing.assert_allclose(gm, hm, atol=1e-6)
    np.testing.assert_allclose(gn, hn, atol=1e-6)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids).long(), token_type_ids=torch.tensor(seg).long(),
                 attention_mask=torch.tensor(ids != 0).long())
    np.testing.assert_allclose(gn, torch.softmax(ref.seq_relationship_logits, -1).numpy(), atol=TOL)
    # also accepted: the checkpoint's directory
    g2 = build_transformer_model(str(d / "bert_config.json"), str(d / "google"))
    h2 = build_transformer_model(str(d / "hf" / "config.json"), str(d / "hf"))
    np.testing.assert_allclose(g2.predict([ids, seg], verbose=0), h2.predict([ids, seg], verbose=0), atol=1e-6)


def test_writers_round_trip(tmp_path, pretraining):
    d, hf = pretraining
    t = build_transformer_model(str(d / "hf" / "config.json"), str(d / "hf"), with_nsp=True, with_mlm=True,
                                return_keras_model=False)
    ids = padded_ids(2, 9, TINY_BERT["vocab_size"], [9, 5], seed=9)
    seg = np.zeros_like(ids)
    want = t.model.predict([ids, seg], verbose=0)
    # Keras weights file
    t.save_weights(str(tmp_path / "m.weights.h5"))
    k = build_transformer_model(str(d / "hf" / "config.json"), str(tmp_path / "m.weights.h5"), with_nsp=True,
                                with_mlm=True)
    for a, b in zip(k.predict([ids, seg], verbose=0), want):
        np.testing.assert_array_equal(a, b)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    # HF safetensors + config: transformers reads it back
    t.save_pretrained(str(tmp_path / "hf_out"))
    import transformers

    back = transformers.BertForPreTraining.from_pretrained(str(tmp_path / "hf_out")).eval()
    with torch.no_grad():
        ref = back(input_ids=torch.tensor(ids).long(), token_type_ids=torch.tensor(seg).long(),
                   attention_mask=torch.tensor(ids != 0).long())
    np.testing.assert_allclose(want[1], torch.softmax(ref.prediction_logits, -1).numpy(), atol=TOL)
    np.testing.assert_allclose(want[0], torch.softmax(ref.seq_relationship_logits, -1).numpy(), atol=TOL)
    # TF checkpoint under Google names
    t.save_weights_as_checkpoint(str(tmp_path / "tf" / "bert_model.ckpt"))
    g = build_transformer_model(str(d / "bert_config.json"), str(tmp_path / "tf" / "bert_model.ckpt"),
                                with_nsp=True, with_mlm=True)
    for a, b in zip(g.predict([ids, seg], verbose=0), want):
        np.testing.assert_array_equal(a, b)


def test_gpt2_writers_round_trip(tmp_path):
    hf = hf_gpt2(seed=10)
    hf.save_pretrained(tmp_path / "hf")
    t = build_transformer_model(str(tmp_path / "hf" / "config.json"), str(tmp_path / "hf"), model="gpt2",
                                return_keras_model=False)
    t.save_pretrained(str(tmp_path / "out"))
    state = t.hf_state_dict()
    for name, value in hf.state_dict().items():
        if name.startswith("transformer.") and not name.endswith(".attn.bias"):
            np.testing.assert_array_equal(state[name], value.numpy(), err_msg=name)


# ------------------------------------------------------------------ bert4keras
B4K_SCRIPT = r"""
import sys, json, numpy as np, tensorflow as tf
tf.compat.v1.disable_eager_execution()
tf.Session = tf.compat.v1.Session
tf.train.Saver = tf.compat.v1.train.Saver
from bert4keras.models import build_transformer_model
from bert4keras.backend import K
d = {d!r}


def save_as_checkpoint(model, prefix):
    # bert4keras reads the weights inside a fresh tf.Graph; under tf-keras that
    # needs the model's own session, so read them through it.
    sess = tf.compat.v1.keras.backend.get_session()
    orig = K.batch_get_value
    K.batch_get_value = lambda xs: sess.run(xs) if xs else []
    try:
        model.save_weights_as_checkpoint(prefix)
    finally:
        K.batch_get_value = orig


ids = np.load(d + '/ids.npy'); seg = np.load(d + '/seg.npy'); long_ids = np.load(d + '/long_ids.npy')
bert = build_transformer_model(d + '/bert_config.json', None, with_mlm=True, return_keras_model=False)
save_as_checkpoint(bert, d + '/b4k_bert/model.ckpt')
np.save(d + '/b4k_bert.npy', bert.model.predict([ids, seg]))
gpt = build_transformer_model(d + '/gpt_config.json', None, model='gpt2', return_keras_model=False)
save_as_checkpoint(gpt, d + '/b4k_gpt/model.ckpt')
np.save(d + '/b4k_gpt.npy', gpt.model.predict(ids))
hier = build_transformer_model(d + '/bert_config.json', d + '/google/bert_model.ckpt',
                               hierarchical_position=True)
np.save(d + '/b4k_hier.npy', hier.predict([long_ids, np.zeros_like(long_ids)]))
print('ok')
"""


@pytest.fixture(scope="module")
def bert4keras_outputs(pretraining):
    d, _ = pretraining
    rng = np.random.default_rng(11)
    ids = padded_ids(2, 12, TINY_BERT["vocab_size"], [12, 12], seed=12)
    np.save(d / "ids.npy", ids)
    np.save(d / "seg.npy", (np.arange(12)[None] > 5).astype("int32").repeat(2, 0))
    np.save(d / "long_ids.npy", rng.integers(1, TINY_BERT["vocab_size"], size=(2, 1500)).astype("int32"))
    gpt_cfg = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    write_json(gpt_cfg, d / "gpt_config.json")
    out = run_bert4keras(B4K_SCRIPT.format(d=str(d)))
    assert "ok" in out
    return d


def test_bert4keras_bert_checkpoint_loads(bert4keras_outputs):
    d = bert4keras_outputs
    ids, seg = np.load(d / "ids.npy"), np.load(d / "seg.npy")
    ours = build_transformer_model(str(d / "bert_config.json"), str(d / "b4k_bert" / "model.ckpt"), with_mlm=True)
    np.testing.assert_allclose(ours.predict([ids, seg], verbose=0), np.load(d / "b4k_bert.npy"), atol=TOL)


def test_bert4keras_gpt2_checkpoint_loads(bert4keras_outputs):
    d = bert4keras_outputs
    ids = np.load(d / "ids.npy")
    ours = build_transformer_model(str(d / "gpt_config.json"), str(d / "b4k_gpt" / "model.ckpt"), model="gpt2")
    np.testing.assert_allclose(ours.predict(ids, verbose=0), np.load(d / "b4k_gpt.npy"), atol=TOL)


def test_hierarchical_positions_match_bert4keras_at_1500(bert4keras_outputs):
    d = bert4keras_outputs
    long_ids = np.load(d / "long_ids.npy")
    ours = build_transformer_model(str(d / "bert_config.json"), str(d / "google" / "bert_model.ckpt"),
                                   hierarchical_position=True)
    got = ours.predict([long_ids, np.zeros_like(long_ids)], verbose=0)
    assert got.shape == (2, 1500, TINY_BERT["hidden_size"])
    np.testing.assert_allclose(got, np.load(d / "b4k_hier.npy"), atol=TOL)


# ------------------------------------------------------------------ bad inputs
def test_missing_variable_is_named(tmp_path, pretraining):
    d, hf = pretraining
    names = google_names(hf.state_dict())
    del names["bert/encoder/layer_1/attention/self/key/kernel"]
    save_tf_checkpoint(names, tmp_path / "bad" / "bert_model.ckpt")
    with pytest.raises(CheckpointError, match=r"bert/encoder/layer_1/attention/self/key/kernel"):
        build_transformer_model(str(d / "bert_config.json"), str(tmp_path / "bad" / "bert_model.ckpt"))


def test_wrong_shape_names_variable_and_both_shapes(tmp_path, pretraining):
    d, hf = pretraining
    names = google_names(hf.state_dict())
    names["bert/encoder/layer_0/intermediate/dense/kernel"] = np.zeros((32, 48), "float32")
    save_tf_checkpoint(names, tmp_path / "bad" / "bert_model.ckpt")
    with pytest.raises(CheckpointError) as e:
        build_transformer_model(str(d / "bert_config.json"), str(tmp_path / "bad" / "bert_model.ckpt"))
    msg = str(e.value)
    assert "bert/encoder/layer_0/intermediate/dense/kernel" in msg and "(32, 48)" in msg and "(32, 64)" in msg


def test_vocab_rows_mismatch(pretraining):
    d, _ = pretraining
    with pytest.raises(CheckpointError, match=r"word_embeddings.*\(120, 32\).*\(100, 32\)"):
        build_transformer_model(str(d / "bert_config.json"), str(d / "hf"), vocab_size=100)


def test_config_missing_key(tmp_path):
    cfg = {k: v for k, v in TINY_BERT.items() if k != "num_attention_heads"}
    path = write_json(cfg, tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"config\.json.*num_attention_heads"):
        build_transformer_model(path)


def test_missing_checkpoint_path(tmp_path):
    path = write_json(TINY_BERT, tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="nowhere"):
        build_transformer_model(path, str(tmp_path / "nowhere" / "bert_model.ckpt"))
