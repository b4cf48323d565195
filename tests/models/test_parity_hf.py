"""Same random weights, same inputs: outputs equal Hugging Face transformers (torch)."""

import os

import numpy as np
import pytest
import torch

from models import build_transformer_model
from tests.helpers import TINY_BERT, hf_bert, hf_gpt2, padded_ids

TOL = 1e-4


def _torch(ids):
    return torch.tensor(np.asarray(ids), dtype=torch.long)


@pytest.fixture(scope="module")
def bert_mlm_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_bert_mlm")
    model = hf_bert("BertForPreTraining", seed=1)
    model.save_pretrained(d)
    return str(d), model


def _batch():
    ids = padded_ids(3, 17, TINY_BERT["vocab_size"], [17, 11, 4], seed=2)
    seg = np.zeros_like(ids)
    seg[0, 9:] = 1
    seg[1, 6:11] = 1
    return ids, seg


def test_bert_model_matches_hf(tmp_path):
    hf = hf_bert("BertModel", seed=3)
    hf.save_pretrained(tmp_path)
    ids, seg = _batch()
    ours = build_transformer_model(os.path.join(tmp_path, "config.json"), str(tmp_path), with_pool=False)
    pooled_model = build_transformer_model(os.path.join(tmp_path, "config.json"), str(tmp_path), with_pool=True)
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids), token_type_ids=_torch(seg), attention_mask=_torch(ids != 0))
    out = ours.predict([ids, seg], verbose=0)
    assert out.shape == ref.last_hidden_state.shape
    np.testing.assert_allclose(out, ref.last_hidden_state.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(pooled_model.predict([ids, seg], verbose=0), ref.pooler_output.numpy(), atol=TOL, rtol=0)


def test_bert_mlm_and_nsp_match_hf(bert_mlm_dir):
    d, hf = bert_mlm_dir
    ids, seg = _batch()
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids), token_type_ids=_torch(seg), attention_mask=_torch(ids != 0))
    logits = ref.prediction_logits.numpy()
    probs = torch.softmax(ref.prediction_logits, -1).numpy()
    nsp = torch.softmax(ref.seq_relationship_logits, -1).numpy()

    mlm = build_transformer_model(os.path.join(d, "config.json"), d, with_mlm=True)
    np.testing.assert_allclose(mlm.predict([ids, seg], verbose=0), probs, atol=TOL, rtol=0)
    linear = build_transformer_model(os.path.join(d, "config.json"), d, with_mlm="linear")
    np.testing.assert_allclose(linear.predict([ids, seg], verbose=0), logits, atol=TOL * 10, rtol=1e-5)
    both = build_transformer_model(os.path.join(d, "config.json"), d, with_nsp=True, with_mlm=True)
    out_nsp, out_mlm = both.predict([ids, seg], verbose=0)
    np.testing.assert_allclose(out_nsp, nsp, atol=TOL, rtol=0)
    np.testing.assert_allclose(out_mlm, probs, atol=TOL, rtol=0)


def test_bert_from_pytorch_bin_matches_safetensors(tmp_path, bert_mlm_dir):
    d, hf = bert_mlm_dir
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")  # the classic HF .bin layout
    ids, seg = _batch()
    a = build_transformer_model(os.path.join(d, "config.json"), d, with_mlm="linear")
    b = build_transformer_model(os.path.join(d, "config.json"), str(tmp_path / "pytorch_model.bin"), with_mlm="linear")
    np.testing.assert_array_equal(a.predict([ids, seg], verbose=0), b.predict([ids, seg], verbose=0))


def test_gpt2_lm_matches_hf(tmp_path):
    hf = hf_gpt2(seed=4)
    hf.save_pretrained(tmp_path)
    lengths = [15, 9, 2]
    ids = padded_ids(3, 15, 130, lengths, seed=5)
    ours = build_transformer_model(os.path.join(tmp_path, "config.json"), str(tmp_path), model="gpt2")
    logits_model = build_transformer_model(os.path.join(tmp_path, "config.json"), str(tmp_path), model="gpt2",
                                           with_lm="linear")
    with torch.no_grad():
        ref_logits = hf(input_ids=_torch(ids), attention_mask=_torch(ids != 0)).logits
    ref = torch.softmax(ref_logits, -1).numpy()
    out = ours.predict(ids, verbose=0)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=TOL, rtol=0)
    for row, n in enumerate(lengths):  # logits at real positions
        np.testing.assert_allclose(logits_model.predict(ids, verbose=0)[row, :n], ref_logits.numpy()[row, :n],
                                   atol=TOL * 10, rtol=1e-5)


def test_keep_tokens_trims_vocabulary_rows(bert_mlm_dir):
    d, hf = bert_mlm_dir
    keep = [0, 5, 7, 9, 11, 13, 40, 41, 42, 100]
    ids = np.array([[1, 2, 3, 4, 0, 0]], "int32")
    seg = np.zeros_like(ids)
    small = build_transformer_model(os.path.join(d, "config.json"), d, with_mlm="linear", keep_tokens=keep)
    assert small.get_layer("Embedding-Token").embeddings.shape == (len(keep), TINY_BERT["hidden_size"])
    full_ids = np.array(keep)[ids]
    with torch.no_grad():
        ref = hf(input_ids=_torch(full_ids), token_type_ids=_torch(seg),
                 attention_mask=_torch(full_ids != 0)).prediction_logits.numpy()
    np.testing.assert_allclose(small.predict([ids, seg], verbose=0), ref[..., keep], atol=TOL * 10, rtol=1e-5)
