"""models/xiangqi.py, models/xiangqi_losses.py and models/xiangqi_training.py: the losses
against NumPy, a few training steps lower the loss (and the legal-mass term), a run
stopped and resumed continues from the last checkpoint with the same optimizer step (and
ends where an uninterrupted run ends), --init-from, and the batched KV-cache MoveScorer
equals one full forward pass per candidate. The data side: tests/toolkit/test_xiangqi_training_data.py;
the script: tests/scripts/test_train_xiangqi.py."""

import csv
import json
import os

import numpy as np
import pytest

import models.xiangqi as xq
from models import xiangqi_losses
from models.training import latest_checkpoint, make_optimizer
from models.xiangqi import MoveScorer, build_xiangqi_model, load_xiangqi_model, save_xiangqi_model
from models.xiangqi_training import train_xiangqi_model
from tests.toolkit.xiangqi_games import random_games, write_games
from toolkit.xiangqi.rules import Position
from toolkit.xiangqi.training_data import batch_for_step, compute_legal_masks, load_games
from toolkit.xiangqi.training_options import XiangqiTrainingOptions
from toolkit.xiangqi.vocabulary import SPECIALS, VOCAB

TINY = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
TINY_OPTIONS = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_len": 96, "batch_size": 4,
                "quiet": True}


@pytest.fixture(scope="module")
def games_file(tmp_path_factory):
    return write_games(tmp_path_factory.mktemp("xq") / "games.jsonl", random_games(12))


def tiny_options(games_file, out, **change):
    """Options of a tiny run (1 layer, hidden 32, 96 tokens, batch 4), as ``scripts/train_xiangqi.py`` makes them."""
    return XiangqiTrainingOptions(**{"games": [games_file], "out": str(out), **TINY_OPTIONS, **change})


def test_legal_mass_term_and_rate_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, len(VOCAB))).astype("float32") * 3
    target = rng.integers(6, len(VOCAB), size=(2, 5)).astype("int32")
    target[1, 3:] = 0  # padding
    bits = np.zeros((2, 5), np.int32)
    for i, j in np.ndindex(2, 5):
        if target[i, j]:
            chosen = {int(target[i, j])} | set(rng.choice(np.arange(6, len(VOCAB)), 3).tolist())
            bits[i, j] = sum(1 << c for c in chosen)
    bits[0, 4] = 0  # a target without a mask (the end token): no legal term there
    y = np.stack([target, bits], -1)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    on = bits != 0
    allowed = (bits[..., None] >> np.arange(len(VOCAB))) & 1
    expected = -np.log((p * allowed).sum(-1)[on]).mean()
    rate = np.take_along_axis(allowed, p.argmax(-1)[..., None], -1)[..., 0][on].mean()
    ce = -np.log(np.take_along_axis(p, target[..., None], -1)[..., 0])[target != 0].mean()
    assert float(xiangqi_losses.legal_mass_nll(y, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(xiangqi_losses.legal_char_rate(y, logits)) == pytest.approx(rate)
    assert float(xiangqi_losses.masked_ce(y, logits)) == pytest.approx(ce, rel=1e-5)
    assert float(xiangqi_losses.masked_ce(target, logits)) == pytest.approx(ce, rel=1e-5)  # y without masks
    both = xiangqi_losses.make_loss(0.5)
    assert float(both(y, logits)) == pytest.approx(ce + 0.5 * expected, rel=1e-5)
    assert xiangqi_losses.make_loss(0.0) is xiangqi_losses.masked_ce


def _optimizer(steps, lr):
    return make_optimizer(lr, steps, min_lr_ratio=0.1, weight_decay=0.01)


def test_training_with_the_legal_mass_term(games_file, tmp_path):
    games = load_games([games_file])
    masks = compute_legal_masks(games, None, workers=1, quiet=True)
    settings = tiny_options(games_file, "unused").batch_settings()
    x, y = batch_for_step(games, 0, settings, masks)
    model = build_xiangqi_model(TINY)
    model.compile(optimizer=_optimizer(30, 3e-3), loss=xiangqi_losses.make_loss(1.0),
                  metrics=[xiangqi_losses.legal_char_rate, xiangqi_losses.legal_mass_nll])
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    for step in range(30):
        model.train_on_batch(*batch_for_step(games, step, settings, masks))
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["legal_mass_nll"] < before["legal_mass_nll"] - 0.3, (before, after)
    assert after["legal_char_rate"] > before["legal_char_rate"] + 0.2, (before, after)
    # the run: masks kept in OUT, the cross-entropy and the legal rate logged, both panels plotted
    out = str(tmp_path / "run")
    summary = train_xiangqi_model(tiny_options(games_file, out, steps=2, checkpoint_every=2, legal_weight=0.5,
                                               workers=1, val_fraction=0.3))
    assert os.path.exists(os.path.join(out, "legal_masks.npz"))
    row = list(csv.DictReader(open(os.path.join(out, "log.csv"))))[-1]
    assert float(row["loss"]) > float(row["masked_ce"]) and 0 <= float(row["val_legal_char_rate"]) <= 1
    assert summary == json.load(open(os.path.join(out, "train_summary.json")))
    assert summary["legal_weight"] == 0.5 and 0 <= summary["final_val_legal_char_rate"] <= 1
    assert os.path.getsize(os.path.join(out, "loss.png")) > 1000


def test_training_lowers_the_loss(games_file):
    games = load_games([games_file])
    settings = tiny_options(games_file, "unused").batch_settings()
    model = build_xiangqi_model(TINY)
    model.compile(optimizer=_optimizer(30, 3e-3), loss=xiangqi_losses.masked_ce)
    x, y = batch_for_step(games, 0, settings)
    before = float(model.evaluate(x, y, verbose=0))
    for step in range(30):
        model.train_on_batch(*batch_for_step(games, step, settings))
    after = float(model.evaluate(x, y, verbose=0))
    assert np.isfinite(before) and after < before - 0.3, (before, after)
    assert before == pytest.approx(np.log(len(VOCAB)), abs=0.3)  # untrained: about uniform


def _final_weights(out):
    return load_xiangqi_model(out).get_weights()


def _state(out):
    return json.load(open(os.path.join(latest_checkpoint(os.path.join(out, "checkpoints")), "state.json")))


def test_resume_continues_with_the_same_optimizer_step(games_file, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert train_xiangqi_model(tiny_options(games_file, out, steps=6, checkpoint_every=2, stop_after=3)) is None
    assert _state(out)["step"] == 3  # "killed" after 3 steps: the checkpoint is there
    assert "stopped at step 3; rerun with --resume" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "model.weights.h5"))
    summary = train_xiangqi_model(tiny_options(games_file, out, steps=6, checkpoint_every=2, resume=True))
    assert "at step 3 (optimizer.iterations=3)" in capsys.readouterr().err
    assert _state(out)["step"] == 6 and summary["steps"] == 6
    assert json.load(open(os.path.join(out, "train_summary.json")))["steps"] == 6
    rows = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
    assert [int(float(r["step"])) for r in rows] == [2, 3, 5, 6]  # appended on resume (3 -> epoch 2: 4, 5)
    assert os.path.getsize(os.path.join(out, "loss.png")) > 1000
    # the resumed run ends exactly where an uninterrupted one does
    straight = str(tmp_path / "straight")
    train_xiangqi_model(tiny_options(games_file, straight, steps=6, checkpoint_every=2))
    for a, b in zip(_final_weights(out), _final_weights(straight)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_init_from_starts_at_the_saved_weights(games_file, tmp_path, capsys):
    base = str(tmp_path / "base")
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    save_xiangqi_model(model, base)
    out = str(tmp_path / "cont")
    options = dict(steps=2, checkpoint_every=2, lr=0.0, layers=None, hidden=None, heads=None, intermediate=None,
                   init_from=base)
    train_xiangqi_model(tiny_options(games_file, out, **options))  # lr 0: the result is the starting point
    assert "initialised from" in capsys.readouterr().err
    assert json.load(open(os.path.join(out, "config.json")))["num_hidden_layers"] == 2
    for a, b in zip(_final_weights(out), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="hidden_size=64 differs .*; leave out --hidden or give 32"):
        train_xiangqi_model(tiny_options(games_file, tmp_path / "x", **dict(options, hidden=64)))
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        train_xiangqi_model(tiny_options(games_file, tmp_path / "y", **dict(options, init_from=str(tmp_path))))


@pytest.mark.parametrize("bucket", [8, 128])
def test_cache_reuse_across_moves_equals_fresh_scoring(bucket):
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    reuse, fresh = MoveScorer(model, bucket=bucket, reserve=12), MoveScorer(model, reuse=False)
    g = random_games(1, seed=4, plies=40)[0]
    # one game ply by ply (through the reserve, then a refill), then another game, then a condition change
    cases = [(g.moves[:i], "red") for i in range(10)] + [(g.moves[:i], "red") for i in (12, 20)] \
        + [(random_games(1, seed=9, plies=6)[0].moves, "red"), (g.moves[:5], "black")]
    legal = [Position.from_moves(h).legal_moves() for h, _ in cases]
    expected = [fresh.score(h, moves, c, greedy=True) for (h, c), moves in zip(cases, legal)]
    prefills = []
    prefill = reuse.decoder.prefill  # (the decoder may be shared with `fresh`: count from here on)
    reuse.decoder.prefill = lambda *a, **k: prefills.append(1) or prefill(*a, **k)
    for (history, cond), moves, (b, gb) in zip(cases, legal, expected):
        a, ga = reuse.score(history, moves, cond, greedy=True)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
        assert ga == gb
    # bucket 128: the first position, the other game and the condition change; bucket 8: the small
    # cache runs out now and then and is refilled
    if bucket == 128:
        assert len(prefills) == 3, len(prefills)
    else:
        assert 3 < len(prefills) < len(cases) - 3, len(prefills)


def test_batched_scoring_equals_full_forward(tmp_path):
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    save_xiangqi_model(model, str(tmp_path / "m"))
    model = load_xiangqi_model(str(tmp_path / "m"))
    scorer = MoveScorer(model)
    g = random_games(1, seed=3, plies=25)[0]
    for history, cond in ((g.moves[:0], "any"), (g.moves[:7], "red"), (g.moves, "black")):
        pos = Position.from_moves(history)
        legal = pos.legal_moves()
        batched, greedy = scorer.score(history, legal, cond, greedy=True)
        assert len(batched) == len(legal) and len(greedy) == 4
        full = [scorer.full_forward_score(history, mv, cond) for mv in legal]
        np.testing.assert_allclose(batched, full, atol=1e-4)
        # the unconstrained greedy move: argmax character by character, full forward passes
        ids, chars = scorer.prompt(history, cond), []
        for _ in range(4):
            out = np.asarray(model.predict_on_batch(np.asarray([ids], np.int32)))[0, -1]
            chars.append(int(np.argmax(out)))
            ids = ids + chars[-1:]
        assert greedy == "".join(VOCAB[i] if i >= len(SPECIALS) else "?" for i in chars)


def test_many_games_scored_in_one_pass_equal_one_at_a_time():
    """``score_many``: positions of 3 games (different lengths, one with no moves yet, one with no
    candidates) in one batched pass equal ``score`` of each; with ``keep=3`` the games interleave
    without a prefill each time (each game extends its own kept cache)."""
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    games = random_games(3, seed=11, plies=30)
    one_at_a_time = MoveScorer(model, reuse=False)
    many = MoveScorer(model, keep=3)
    prefills = []
    prefill = many.decoder.prefill  # the model's one decoder: both scorers call it
    for plies in (0, 6, 7, 20):
        requests = [(g.moves[:plies + i], Position.from_moves(g.moves[:plies + i]).legal_moves(), cond)
                    for i, (g, cond) in enumerate(zip(games, ("red", "black", "any")))]
        requests.append((games[0].moves[:3], [], "red"))
        many.decoder.prefill = lambda *a, **k: prefills.append(1) or prefill(*a, **k)
        got = many.score_many(requests)
        many.decoder.prefill = prefill
        assert len(got) == 4 and len(got[3]) == 0
        for request, scores in zip(requests[:3], got):
            np.testing.assert_allclose(scores, one_at_a_time.score(*request), atol=1e-4)
    assert len(prefills) == 3, prefills  # the 3 games' first positions; then steps (none for no candidates)


def test_top_move_is_the_most_probable_string():
    """``top_move`` equals the argmax of the joint probability of all 25^4 strings, brute force,
    in a position where the character-by-character greedy move is not that string."""
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    gamma = next(w for w in model.weights if w.path == "Output-Norm/gamma")
    gamma.assign(np.asarray(gamma) * 6)  # peaked like a trained model (a flat one is slow to search)
    scorer = MoveScorer(model)
    history, cond, v = random_games(1, seed=6, plies=3)[0].moves, "red", len(VOCAB)
    logits0, state = scorer._history(scorer.prompt(history, cond))
    prefixes = np.stack(np.meshgrid(*[np.arange(v)] * 3, indexing="ij"), -1).reshape(-1, 3).astype(np.int32)
    lp = xq._log_softmax(scorer.decoder.score_continuations(prefixes, state))  # (v^3, 3, v)
    rows = np.arange(len(prefixes))
    joint = (xq._log_softmax(logits0)[prefixes[:, 0]] + lp[rows, 0, prefixes[:, 1]]
             + lp[rows, 1, prefixes[:, 2]])[:, None] + lp[:, 2, :]
    best = np.unravel_index(np.argmax(joint), joint.shape)
    expected = "".join(VOCAB[i] if i >= len(SPECIALS) else "?" for i in list(prefixes[best[0]]) + [best[1]])
    assert scorer.top_move(history, cond) == expected
    assert scorer.top_move(history, cond, rows=7) == expected  # the round size changes nothing
    assert scorer.score(history, [], cond, greedy=True)[1] != expected, "greedy is the top move: a weak case"


def test_warmup_traces_the_shapes_of_a_game():
    """After ``warmup`` a game's first 40 plies, played from either side, trace
    nothing new: the step functions only trace (run their Python body) for a
    new input shape, so no call of the traced body may happen after it."""
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    scorer = MoveScorer(model)
    traced = []
    forward = scorer.decoder._forward
    scorer.decoder._forward = lambda *a, **k: traced.append(1) or forward(*a, **k)
    scorer.warmup()
    assert traced, "warmup traced nothing"
    assert not scorer._kept
    n = len(traced)
    g = random_games(1, seed=5, plies=40)[0]
    for start in (0, 1):  # the player is red (plies 0, 2, ...) or black (1, 3, ...)
        for i in range(start, len(g.moves), 2):
            scorer.score(g.moves[:i], Position.from_moves(g.moves[:i]).legal_moves(), "red" if start == 0 else "black")
    assert len(traced) == n, f"{len(traced) - n} traces after the warm-up"
