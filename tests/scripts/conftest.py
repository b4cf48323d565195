"""Fixtures shared by the script tests."""

import numpy as np
import pytest

from models.xiangqi import build_xiangqi_model, save_xiangqi_model


@pytest.fixture(scope="session")
def tiny_xiangqi_model(tmp_path_factory):
    """A directory with a 1-layer random Xiangqi GPT (config.json + weights), peaked logits."""
    d = tmp_path_factory.mktemp("tiny_xq")
    model = build_xiangqi_model({"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                                 "intermediate_size": 64})
    # logits as peaked as a trained model's: a flat distribution makes the exact top-move search
    # of scripts/eval_xiangqi.py (MoveScorer.top_move) expand thousands of prefixes
    gamma = next(w for w in model.weights if w.path == "Output-Norm/gamma")
    gamma.assign(np.asarray(gamma) * 6)
    save_xiangqi_model(model, str(d))
    return str(d)
