"""models/long_text_mlm.py on a tiny random MLM folder (16 positions): the chunked baseline's
windows cover every body token once and its predictions land where a direct read of each
window puts them; inside the trained positions the hierarchical model predicts what the plain
one does; each draw masks round(0.15 * n) tokens; bad input is a one-line ValueError."""

import json

import numpy as np
import pytest

from models.builder import build_transformer_model
from models.long_text_mlm import (chunked_logits, fill_masks_long, held_out_fraction, long_text_document,
                                  mask_draws, window_spans)
from models.mlm_training import load_mlm_model
from tests.mlm_assets import POSITIONS, make_tiny_mlm_folder, tiny_text
from toolkit.mlm_data import CLS, FIRST_REGULAR, SEP, UNK

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_mlm_folder(tmp_path_factory.mktemp("long_mlm") / "model")


@pytest.fixture(scope="module")
def models(folder):
    plain, tokenizer = load_mlm_model(folder)
    hierarchical = build_transformer_model(folder, folder, with_mlm="linear", hierarchical_position=0.4)
    return plain, hierarchical, tokenizer


def _predict(model, ids):
    ids = np.asarray(ids, np.int32)
    return np.asarray(model.predict([ids, np.zeros_like(ids)], verbose=0))


@pytest.mark.parametrize("length", [3, 10, 16, 17, 30, 40, 44])
def test_the_windows_cover_every_body_token_once(length):
    spans = window_spans(length, POSITIONS)
    covered = [position for start, end in spans for position in range(start, end)]
    assert covered == list(range(1, length - 1))
    assert all(end - start == POSITIONS - 2 for start, end in spans[:-1])
    assert 0 < spans[-1][1] - spans[-1][0] <= POSITIONS - 2


def test_chunked_predictions_are_put_back_in_place(models):
    plain, _, tokenizer = models
    ids, _ = long_text_document(tiny_text(), tokenizer, 40)
    inputs, _ = mask_draws(ids, 2, tokenizer.vocab_size)
    got = chunked_logits(plain, inputs, POSITIONS)
    assert got.shape == (2, 40, tokenizer.vocab_size)
    spans = window_spans(40, POSITIONS)
    for start, end in spans:
        window = np.concatenate([np.full((2, 1), CLS), inputs[:, start:end], np.full((2, 1), SEP)], axis=1)
        direct = _predict(plain, window)
        np.testing.assert_allclose(got[:, start:end], direct[:, 1:-1], atol=1e-4)
        if start == 1:
            np.testing.assert_allclose(got[:, 0], direct[:, 0], atol=1e-4)
        if end == 39:
            np.testing.assert_allclose(got[:, -1], direct[:, -1], atol=1e-4)


def test_inside_the_trained_positions_hierarchical_predicts_as_the_plain_model(models):
    plain, hierarchical, tokenizer = models
    ids, _ = long_text_document(tiny_text(), tokenizer, POSITIONS)
    inputs, _ = mask_draws(ids, 2, tokenizer.vocab_size)
    expected = _predict(plain, inputs)
    np.testing.assert_allclose(_predict(hierarchical, inputs), expected, atol=1e-5)
    np.testing.assert_allclose(chunked_logits(plain, inputs, POSITIONS), expected, atol=1e-5)
    longer, _ = long_text_document(tiny_text(), tokenizer, 3 * POSITIONS)
    assert _predict(hierarchical, longer[None]).shape == (1, 3 * POSITIONS, tokenizer.vocab_size)


def test_each_draw_masks_round_rate_n_of_the_regular_tokens():
    ids = np.array([CLS] + list(range(FIRST_REGULAR, FIRST_REGULAR + 37)) + [UNK, UNK, SEP], np.int32)
    inputs, targets = mask_draws(ids, 4, 60, rate=0.15, seed=3)
    assert inputs.shape == targets.shape == (4, len(ids))
    assert (np.count_nonzero(targets, axis=1) == round(0.15 * 37)).all()
    selected = targets > 0
    assert (targets[selected] == np.broadcast_to(ids, targets.shape)[selected]).all()
    assert not selected[:, [0, -3, -2, -1]].any()  # [CLS], [UNK], [SEP] never
    assert len({row.tobytes() for row in selected}) == 4  # independent draws
    again, _ = mask_draws(ids, 4, 60, rate=0.15, seed=3)
    np.testing.assert_array_equal(inputs, again)


def test_the_document_is_cut_or_kept_whole_and_says_so(models):
    _, _, tokenizer = models
    text = tiny_text()
    body = tokenizer.tokenize(text)[1:-1]
    ids, note = long_text_document(text, tokenizer, 40)
    assert ids.tolist() == [CLS] + tokenizer.tokens_to_ids(body[:38]) + [SEP]
    assert note == f"text has {len(body)} tokens: cut to the first 38 (40 with [CLS], [SEP])"
    ids, note = long_text_document("新年好", tokenizer, 40)
    assert len(ids) == 5 and note == "text has 3 tokens: kept whole (5 with [CLS], [SEP])"


def test_both_methods_fill_the_same_masks(folder, models):
    ids, _ = long_text_document(tiny_text(), models[2], 40)
    regular = int((ids >= FIRST_REGULAR).sum())  # [UNK] (full-width digits...) is never selected
    result = fill_masks_long(folder, tiny_text(), tokens=40, draws=3, seed=1, source="tiny.txt")
    assert result.document.source == "tiny.txt" and result.document.tokens == 40
    assert "cut to the first 38" in result.document.note
    hierarchical, chunked = result.row("hierarchical"), result.row("chunked")
    assert (hierarchical.context, chunked.context) == (40, POSITIONS)
    assert hierarchical.masked == chunked.masked == 3 * round(0.15 * regular)
    for row in result.rows:
        assert 0.0 <= row.accuracy <= 1.0 and row.cross_entropy > 0 and row.seconds > 0
    assert result.accuracy_gain() == pytest.approx(100 * (hierarchical.accuracy - chunked.accuracy))


@pytest.mark.parametrize("overrides, message", [
    ({"tokens": 257}, "tokens 257 is more than the model reads: 16**2 = 256 tokens"),
    ({"tokens": 2}, "tokens must be >= 3"),
    ({"text": ""}, "the text has no tokens (it is empty or holds only whitespace)"),
    ({"text": " \n\t"}, "the text has no tokens"),
    ({"alpha": 1.0}, "alpha must lie in (0, 1)"),
    ({"draws": 0}, "draws must be >= 1"),
], ids=["tokens-past-16**2", "tokens-2", "empty-text", "whitespace-text", "alpha-1", "draws-0"])
def test_bad_input_is_a_one_line_value_error(folder, overrides, message):
    settings = {"text": "新年好", "tokens": 40, **overrides}
    with pytest.raises(ValueError) as error:
        fill_masks_long(folder, **settings)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_held_out_share_comes_from_the_run(tmp_path):
    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    config = model_dir / "config.json"
    config.write_text(json.dumps({"training": {"steps": 3}}))
    assert held_out_fraction(str(model_dir)) == 0.02
    (tmp_path / "run" / "train_config.json").write_text(json.dumps({"held_out": 0.05}))
    assert held_out_fraction(str(model_dir)) == 0.05
    config.write_text(json.dumps({"training": {"held_out": 0.1}}))
    assert held_out_fraction(str(model_dir)) == 0.1
