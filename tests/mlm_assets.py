"""Tiny masked-LM model folders and a script runner shared by the long-text tests."""

import os
import subprocess
import sys

import numpy as np

from models.mlm_training import build_mlm_model, save_mlm_model
from tests.helpers import ROOT
from tests.toolkit.assets import chinese_bert_vocab, peoples_daily_sentences
from toolkit.mlm_data import cut_vocabulary, encode_documents, standard_tokenizer

POSITIONS = 16
TINY_MLM = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
            "max_position_embeddings": POSITIONS}


def tiny_text(characters=400):
    """About ``characters`` characters of People's Daily (every token of it is in the tiny vocabulary)."""
    return "".join(peoples_daily_sentences(characters))


def make_tiny_mlm_folder(directory, characters=400):
    """A :func:`models.mlm_training.save_mlm_model` folder of a 1-layer random BERT with 16
    positions over the vocabulary of ``tiny_text(characters)``; every weight random (the
    position embeddings too), so that a wrong position or window cannot hide."""
    tokenizer = standard_tokenizer(chinese_bert_vocab())
    vocabulary = cut_vocabulary(encode_documents([tiny_text(characters)], tokenizer), tokenizer)
    model = build_mlm_model(TINY_MLM, vocabulary.size)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        values = rng.normal(0.0, 0.3, weight.shape) + (1.0 if weight.path.endswith("gamma") else 0.0)
        weight.assign(values.astype("float32"))
    return save_mlm_model(model, str(directory), vocabulary)


def run_script(name, *args, timeout=300):
    """``scripts/<name>.py`` with ``args`` in a subprocess (the test's Keras backend)."""
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", name + ".py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
