"""Same random weights, same inputs: outputs equal Hugging Face transformers (torch).

The inputs hold every id of the (tiny) vocabulary, id 0 inside the text, with and without
padding: for GPT-2 id 0 is a real token (``!`` in OpenAI's vocabulary), padding comes only
from a config's ``pad_token_id`` or an attention mask; for BERT id 0 is ``[PAD]``."""

import os

import numpy as np
import pytest
import torch

from models import build_transformer_model
from tests.helpers import TINY_BERT, TINY_GPT2, every_id_batch, hf_bert, hf_gpt2

TOL = 1e-4


def _torch(ids):
    return torch.tensor(np.asarray(ids), dtype=torch.long)


@pytest.fixture(scope="module")
def bert_mlm_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_bert_mlm")
    model = hf_bert("BertForPreTraining", seed=1)
    model.save_pretrained(d)
    return str(d), model


def _batch(pad=0):
    """Every id of the vocabulary but ``pad`` as a real token, ``pad`` as right padding (rows 2 and 3)."""
    ids, _ = every_id_batch([50, 40, 35], 50, TINY_BERT["vocab_size"], seed=2, pad=pad, exclude=(pad,))
    seg = np.zeros_like(ids)
    seg[0, 25:] = 1
    seg[1, 16:40] = 1
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


def test_bert_pad_token_id_from_config_matches_hf(tmp_path):
    """A config's ``pad_token_id`` (here 7) is BERT's padding: id 0 is then a real token."""
    hf = hf_bert("BertModel", seed=6, pad_token_id=7)
    hf.save_pretrained(tmp_path)
    ours = build_transformer_model(os.path.join(tmp_path, "config.json"), str(tmp_path))
    ids, seg = _batch(pad=7)
    assert (ids == 0).sum() >= 2 and (ids == 7).sum() > 0
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids), token_type_ids=_torch(seg), attention_mask=_torch(ids != 7))
    np.testing.assert_allclose(ours.predict([ids, seg], verbose=0), ref.last_hidden_state.numpy(), atol=TOL, rtol=0)
    full = ids[:1]  # no padding at all
    with torch.no_grad():
        ref = hf(input_ids=_torch(full), token_type_ids=_torch(seg[:1])).last_hidden_state.numpy()
    np.testing.assert_allclose(ours.predict([full, seg[:1]], verbose=0), ref, atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_gpt2")
    model = hf_gpt2(seed=4)  # GPT-2's own config: no pad_token_id
    model.save_pretrained(d)
    return str(d), model


def _gpt2(directory, **kwargs):
    return build_transformer_model(os.path.join(directory, "config.json"), directory, model="gpt2", **kwargs)


def _assert_gpt2_matches(ours_probs, ours_logits, ref_logits, mask):
    real = np.asarray(mask, bool)  # padded positions' outputs are not compared
    np.testing.assert_allclose(ours_logits[real], ref_logits[real], atol=TOL * 10, rtol=1e-5)
    probs = torch.softmax(torch.tensor(ref_logits), -1).numpy()
    np.testing.assert_allclose(ours_probs[real], probs[real], atol=TOL, rtol=0)


def test_gpt2_lm_matches_hf_with_id_0_in_the_text(gpt2_dir):
    """No padding: every id, 0 included (at positions 2 and 5 and elsewhere), is a real token, as in HF."""
    d, hf = gpt2_dir
    ids, mask = every_id_batch([60, 60, 60], 60, TINY_GPT2["vocab_size"], seed=5)
    assert ids[0, 2] == ids[0, 5] == 0 and set(range(TINY_GPT2["vocab_size"])) <= set(ids.ravel().tolist())
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids)).logits.numpy()
    ours, logits = _gpt2(d), _gpt2(d, with_lm="linear")
    assert ours.transformer_info and len(ours.inputs) == 1
    _assert_gpt2_matches(ours.predict(ids, verbose=0), logits.predict(ids, verbose=0), ref, mask)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("source", ["config", "argument"])
def test_gpt2_pad_token_id_matches_hf_attention_mask(tmp_path, gpt2_dir, side, source):
    """A pad id from the config (or ``build_transformer_model(pad_token_id=...)``) masks exactly the
    keys HF's attention_mask masks; id 0 stays a real token."""
    pad = TINY_GPT2["vocab_size"] - 1
    d, hf = gpt2_dir
    if source == "config":
        d = str(tmp_path)
        hf_gpt2(seed=4, pad_token_id=pad).save_pretrained(d)
    kwargs = {} if source == "config" else {"pad_token_id": pad}
    ids, mask = every_id_batch([60, 50, 40], 60, TINY_GPT2["vocab_size"], seed=7, pad=pad, side=side, exclude=(pad,))
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids), attention_mask=_torch(mask)).logits.numpy()
    ours, logits = _gpt2(d, **kwargs), _gpt2(d, with_lm="linear", **kwargs)
    assert ours.transformer.pad_token_id == pad
    _assert_gpt2_matches(ours.predict(ids, verbose=0), logits.predict(ids, verbose=0), ref, mask)


@pytest.mark.parametrize("side", ["right", "left"])
def test_gpt2_mask_input_matches_hf_attention_mask(gpt2_dir, side):
    """``mask_input=True``: an ``Input-Mask`` input (1 = token, 0 = padding) masks exactly what HF's
    attention_mask does, whatever ids the padding holds (0 among them)."""
    d, hf = gpt2_dir
    ids, mask = every_id_batch([60, 50, 40], 60, TINY_GPT2["vocab_size"], seed=8, side=side)
    ids[1, mask[1] == 0] = 0  # padding that looks like a real token: only the mask tells
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids), attention_mask=_torch(mask)).logits.numpy()
    ours, logits = _gpt2(d, mask_input=True), _gpt2(d, with_lm="linear", mask_input=True)
    assert [x.name for x in ours.inputs] == ["Input-Token", "Input-Mask"]
    _assert_gpt2_matches(ours.predict([ids, mask], verbose=0), logits.predict([ids, mask], verbose=0), ref, mask)
    full = np.ones_like(mask)  # an all-ones mask: the plain model
    with torch.no_grad():
        ref = hf(input_ids=_torch(ids)).logits.numpy()
    _assert_gpt2_matches(ours.predict([ids, full], verbose=0), logits.predict([ids, full], verbose=0), ref, full)


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
