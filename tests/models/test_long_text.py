"""Hierarchical positions in the builder, and the position limit error."""

import numpy as np
import pytest

from models import build_transformer_model
from tests.helpers import TINY_BERT, TINY_GPT2, padded_ids


def _models(**kw):
    plain = build_transformer_model(TINY_BERT, return_keras_model=False, **kw)
    hier = build_transformer_model(TINY_BERT, hierarchical_position=True, return_keras_model=False, **kw)
    hier.model.set_weights(plain.model.get_weights())
    return plain.model, hier.model


def test_below_n_identical_to_plain_model():
    plain, hier = _models(with_mlm=True)
    ids = padded_ids(2, 64, TINY_BERT["vocab_size"], [64, 30], seed=1)  # n = 64 positions
    seg = np.zeros_like(ids)
    np.testing.assert_array_equal(plain.predict([ids, seg], verbose=0), hier.predict([ids, seg], verbose=0))


def test_beyond_n_works_and_differs_by_position():
    _, hier = _models()
    ids = np.full((1, 300), 7, "int32")
    out = hier.predict([ids, np.zeros_like(ids)], verbose=0)
    assert out.shape == (1, 300, TINY_BERT["hidden_size"]) and np.isfinite(out).all()
    # the same token at positions 10 and 10 + 64 must be told apart
    assert np.abs(out[0, 10] - out[0, 74]).max() > 1e-3


@pytest.mark.parametrize("alpha", [0.2, 0.4])
def test_float_alpha(alpha):
    t = build_transformer_model(TINY_BERT, hierarchical_position=alpha, return_keras_model=False)
    layer = t.model.get_layer("Embedding-Position")
    assert layer.alpha == alpha and layer.max_length == 64 * 64


def test_too_long_input_says_limit_and_fix():
    plain, _ = _models()
    ids = np.ones((1, 65), "int32")
    with pytest.raises(Exception, match=r"64 positions.*hierarchical_position=True"):
        plain.predict([ids, np.zeros_like(ids)], verbose=0)
    with pytest.raises(ValueError, match=r"max_length=100 exceeds the model's 64 positions"):
        build_transformer_model(TINY_BERT, max_length=100)


def test_too_long_for_hierarchical_and_gpt2():
    gpt = build_transformer_model(TINY_GPT2, model="gpt2")
    ids = np.ones((1, 80), "int32")
    with pytest.raises(Exception, match=r"64 positions"):
        gpt.predict(ids, verbose=0)
    with pytest.raises(ValueError, match="4096"):
        build_transformer_model(TINY_BERT, hierarchical_position=True, max_length=5000)
