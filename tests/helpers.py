"""Tiny models and oracles shared by the tests."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_BERT = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
                 layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                 initializer_range=0.2, model_type="bert")

TINY_GPT2 = dict(vocab_size=130, n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=None,
                 activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                 layer_norm_epsilon=1e-5, initializer_range=0.2, model_type="gpt2")


def write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def hf_randomize(model, seed=0):
    """Give every parameter (LayerNorms and biases too) random values so that
    a wrong mapping cannot hide behind ones and zeros."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.2 if p.ndim > 1 else 0.1)
                    + (1.0 if name.endswith(("LayerNorm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0))
    return model.eval()


def hf_bert(kind="BertModel", seed=0, **overrides):
    import transformers

    cfg = transformers.BertConfig(**{**TINY_BERT, **overrides})
    cfg._attn_implementation = "eager"
    return hf_randomize(getattr(transformers, kind)(cfg), seed)


def hf_gpt2(seed=0, **overrides):
    import transformers

    cfg = transformers.GPT2Config(**{**TINY_GPT2, **overrides})
    cfg._attn_implementation = "eager"
    return hf_randomize(transformers.GPT2LMHeadModel(cfg), seed)


def padded_ids(batch, length, vocab, lengths, seed=0, low=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(low, vocab, size=(batch, length))
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    return ids.astype("int32")


def every_id_batch(lengths, length, vocab, seed=0, pad=None, side="right", exclude=()):
    """``(ids, mask)``, int32 ``(len(lengths), length)``: row ``r`` holds ``lengths[r]``
    real tokens (``mask`` 1) on the ``side`` given and padding (``mask`` 0) elsewhere.

    The real tokens hold every id of ``range(vocab)`` except ``exclude`` at least
    once, in random order; id 0 (unless excluded) sits inside the text, at
    positions 2 and 5 of the first row. Padding slots hold ``pad`` (None: random ids)."""
    rng = np.random.default_rng(seed)
    allowed = np.array([i for i in range(vocab) if i not in set(exclude)])
    zeros = 2 if 0 in allowed else 0
    others = allowed[allowed != 0]
    fill = int(sum(lengths)) - len(others) - zeros
    if fill < 0:
        raise ValueError(f"{sum(lengths)} real slots cannot hold all {len(allowed)} ids")
    tokens = np.concatenate([others, rng.choice(allowed, fill)])
    rng.shuffle(tokens)
    if zeros:
        tokens = np.insert(tokens, [2, 4], 0)  # final positions 2 and 5
    ids = rng.integers(0, vocab, size=(len(lengths), length)) if pad is None else np.full((len(lengths), length), pad)
    mask = np.zeros((len(lengths), length), "int32")
    start = 0
    for r, n in enumerate(lengths):
        cols = slice(0, n) if side == "right" else slice(length - n, length)
        ids[r, cols], mask[r, cols] = tokens[start:start + n], 1
        start += n
    return ids.astype("int32"), mask


def run_bert4keras(script, timeout=600):
    """Run ``script`` (Python source) with bert4keras on tf-keras in a
    subprocess; return its stdout. Fails loudly if bert4keras is missing."""
    env = dict(os.environ, TF_KERAS="1", TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="-1", KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"bert4keras subprocess failed:\n{proc.stderr[-4000:]}")
    return proc.stdout
