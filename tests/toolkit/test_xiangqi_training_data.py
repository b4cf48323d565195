"""toolkit/xiangqi/vocabulary.py, training_data.py and training_options.py (NumPy only): the
ICCS encoding round trip, the legal-character masks against their definition, the held-out
split, the length-grouped resumable batch stream, the masks' cache and the options' checks."""

import doctest

import numpy as np
import pytest

from tests.toolkit.xiangqi_games import random_games
from toolkit.xiangqi import training_data, vocabulary
from toolkit.xiangqi.records import GameRecord
from toolkit.xiangqi.rules import Position
from toolkit.xiangqi.training_data import BatchSettings, batch_for_step, compute_legal_masks, split_games
from toolkit.xiangqi.training_options import XiangqiTrainingOptions
from toolkit.xiangqi.vocabulary import (ANY_TOKEN, CHAR_ID, END, SPECIALS, VOCAB, decode_game, encode_game,
                                        legal_char_masks, mirror_masks, mirror_moves)


def test_encoding_round_trip():
    assert len(VOCAB) == 25 and VOCAB[0] == "<pad>" and VOCAB[ANY_TOKEN] == "<any>"
    for g in random_games(2, seed=5, plies=12):
        for result in ("red", "black", "draw", None):
            for over in (True, False):
                ids = encode_game(g.moves, result, over=over)
                assert len(ids) == 1 + 4 * len(g.moves) + over
                assert (ids[-1] == END) == over
                assert decode_game(ids) == (result, g.moves, over)
                assert decode_game(ids + [0, 0]) == (result, g.moves, over)  # padding ignored
        m = mirror_moves(g.moves)
        Position.from_moves(m)  # the mirrored game is legal too
        assert mirror_moves(m) == g.moves
    with pytest.raises(ValueError):
        decode_game([1, 6, 15, 7])
    fake = [GameRecord(moves=[f"a{i % 10}b{j % 10}" for j in range(i)]) for i in range(1, 41)]
    train, val = split_games(fake, 0.25)
    assert len(train) + len(val) == 40 and val and train
    assert split_games(list(reversed(fake)), 0.25)[1] == val[::-1]  # deterministic, order-free


@pytest.mark.parametrize("module", [vocabulary, training_data])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0 or module is training_data


def _definition_masks(moves):
    """legal_char_masks written from its definition with pyffish's legal move lists."""
    pos, rows = Position(), []
    for move in moves:
        legal = pos.legal_moves()
        rows.append([sum(1 << CHAR_ID[c] for c in {m[k] for m in legal if m[:k] == move[:k]})
                     for k in range(4)])
        pos.push(move)
    return np.asarray(rows, np.int32).reshape(-1, 4)


def test_legal_char_masks_equal_their_definition():
    games = random_games(4, seed=11, plies=60)
    for g in games:
        masks = legal_char_masks(g.moves)
        np.testing.assert_array_equal(masks, _definition_masks(g.moves))
        ids = np.asarray(encode_game(g.moves, over=False)[1:]).reshape(-1, 4)
        assert ((masks >> ids) & 1).all()  # every real character is a legal continuation
        np.testing.assert_array_equal(mirror_masks(masks), legal_char_masks(mirror_moves(g.moves)))
    assert bin(int(masks[0, 0])).count("1") > 1 and (masks[:, 3] > 0).all()
    with pytest.raises(ValueError, match=r"ply 3: 'h2e2' is not legal"):
        legal_char_masks(["h2e2", "h9g7", "h2e2"])


def test_length_grouped_batches_pad_to_their_longest_game():
    games = [g for plies in range(2, 40, 3) for g in random_games(2, seed=plies, plies=plies)]
    settings = BatchSettings(batch_size=3, max_len=96, length_groups=4)
    spans = []
    for step in range(4):  # group 0: 12 games sorted by length, cut into 4 batches, shuffled
        x, y = batch_for_step(games, step, settings)
        real = (y != 0).sum(axis=1)  # targets per sequence
        assert x.shape == y.shape and x.shape[0] == 3
        assert x.shape[1] == min(96, -(-real.max() // 64) * 64)  # padded to the longest, rounded up to 64
        both = (y[:, :-1] != 0) & (x[:, 1:] != 0)
        assert both.any() and (x[:, 1:][both] == y[:, :-1][both]).all()  # y is x shifted by one
        spans.append((real.min(), real.max()))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # batches do not overlap in length
    assert any(x.shape[1] < 96 for x, _ in (batch_for_step(games, s, settings) for s in range(4)))
    training_data._GROUP_CACHE.clear()
    again = batch_for_step(games, 2, settings)  # a function of (seed, step) only
    training_data._GROUP_CACHE.clear()
    np.testing.assert_array_equal(batch_for_step(games, 6, settings)[0], batch_for_step(list(games), 6, settings)[0])
    np.testing.assert_array_equal(again[0], batch_for_step(games, 2, settings)[0])
    one = BatchSettings(batch_size=3, max_len=96, length_groups=1)
    assert batch_for_step(games, 0, one)[0].shape[0] == 3


def test_the_group_cache_tells_settings_apart():
    """Two streams over the same games with other settings do not share cached batches."""
    games = random_games(8, seed=2, plies=20)
    short, longer = BatchSettings(batch_size=2, max_len=16), BatchSettings(batch_size=2, max_len=96)
    training_data._GROUP_CACHE.clear()
    fresh = batch_for_step(games, 0, longer)
    assert batch_for_step(games, 0, short)[0].shape[1] == 16
    again = batch_for_step(games, 0, longer)  # same seed and group: not the cached 16-token sequences
    np.testing.assert_array_equal(again[0], fresh[0])
    np.testing.assert_array_equal(again[1], fresh[1])


def test_legal_masks_are_kept_and_ride_along_the_stream(tmp_path, monkeypatch):
    games = random_games(12)
    masks = compute_legal_masks(games, str(tmp_path), workers=1, quiet=True)
    assert [len(m) for m in masks] == [len(g.moves) for g in games]
    monkeypatch.setattr(training_data, "_mask_one", lambda job: pytest.fail("recomputed"))
    again = compute_legal_masks(games, str(tmp_path), workers=1, quiet=True)  # from the file
    for a, b in zip(masks, again):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    settings = BatchSettings(batch_size=4, max_len=96)
    x, y = batch_for_step(games, 0, settings, masks)
    x0, y0 = batch_for_step(games, 0, settings)  # same stream, masks or not
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y[..., 0], y0)
    on = y[..., 1] != 0
    assert on.sum() == ((y0 >= len(SPECIALS))).sum()  # a mask on every move character, none elsewhere
    assert ((y[..., 1][on] >> y[..., 0][on]) & 1).all()


@pytest.mark.parametrize("change, message", [
    ({"steps": 0}, "--steps must be >= 1, got 0"),
    ({"max_len": 4}, "--max-len must be >= 8, got 4"),
    ({"warmup": -1}, "--warmup must be >= 0, got -1"),
    ({"legal_weight": float("nan")}, "--legal-weight must be a finite number >= 0, got nan"),
    ({"p_any": 1.5}, "--p-any must be between 0 and 1, got 1.5"),
    ({"val_fraction": -0.1}, "--val-fraction must be between 0 and 1, got -0.1"),
    ({"games": ["no/such/games.jsonl"]}, "--games no/such/games.jsonl: no such file"),
])
def test_training_options_name_the_bad_value(change, message, tmp_path):
    games = tmp_path / "games.jsonl"
    games.write_text("")
    options = XiangqiTrainingOptions(**{"games": [str(games)], "out": str(tmp_path / "run"), **change})
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        options.check()
    assert str(error.value).startswith(message)
    assert XiangqiTrainingOptions(games=[str(games)], out="run").check().batch_settings() == \
        BatchSettings(batch_size=16, max_len=512, p_any=0.2, mirror=True, length_groups=8, seed=0)
