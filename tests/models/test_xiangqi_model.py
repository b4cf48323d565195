"""models/xiangqi.py + scripts/train_xiangqi.py: ICCS encoding round trip, a
few training steps lower the loss, --resume continues from the last checkpoint
with the same optimizer step (and ends where an uninterrupted run ends), and the
batched KV-cache MoveScorer equals one full forward pass per candidate."""

import csv
import doctest
import json
import os
import random

import numpy as np
import pytest

import models.xiangqi as xq
from models.xiangqi import (ANY_TOKEN, END, VOCAB, MoveScorer, build_xiangqi_model, decode_game, encode_game,
                            load_xiangqi_model, mirror_moves, save_xiangqi_model, split_games)
from scripts import train_xiangqi
from toolkit.xiangqi.records import GameRecord, GameWriter
from toolkit.xiangqi.rules import Position

TINY = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
TINY_ARGS = ["--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64", "--max-len", "96",
             "--batch-size", "4", "--quiet"]


def random_games(n, seed=0, plies=30):
    rng = random.Random(seed)
    games = []
    for i in range(n):
        pos = Position()
        for _ in range(plies):
            legal = pos.legal_moves()
            if not legal:
                break
            pos.push(rng.choice(legal))
        games.append(GameRecord(moves=pos.moves, result=rng.choice(["red", "black", "draw"]),
                                termination="move_limit", source="test", id=f"t{i}"))
    return games


@pytest.fixture(scope="module")
def games_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("xq") / "games.jsonl"
    with GameWriter(str(path)) as w:
        for g in random_games(12):
            w.write(g.to_json())
    return str(path)


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


def test_docstring_examples():
    assert doctest.testmod(xq).failed == 0


def _definition_masks(moves):
    """legal_char_masks written from its definition with pyffish's legal move lists."""
    pos, rows = Position(), []
    for move in moves:
        legal = pos.legal_moves()
        rows.append([sum(1 << xq.CHAR_ID[c] for c in {m[k] for m in legal if m[:k] == move[:k]})
                     for k in range(4)])
        pos.push(move)
    return np.asarray(rows, np.int32).reshape(-1, 4)


def test_legal_char_masks_equal_their_definition():
    games = random_games(4, seed=11, plies=60)
    for g in games:
        masks = xq.legal_char_masks(g.moves)
        np.testing.assert_array_equal(masks, _definition_masks(g.moves))
        ids = np.asarray(encode_game(g.moves, over=False)[1:]).reshape(-1, 4)
        assert ((masks >> ids) & 1).all()  # every real character is a legal continuation
        np.testing.assert_array_equal(xq.mirror_masks(masks), xq.legal_char_masks(mirror_moves(g.moves)))
    assert bin(int(masks[0, 0])).count("1") > 1 and (masks[:, 3] > 0).all()
    with pytest.raises(ValueError, match=r"ply 3: 'h2e2' is not legal"):
        xq.legal_char_masks(["h2e2", "h9g7", "h2e2"])


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
    assert float(train_xiangqi.legal_mass_nll(y, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(train_xiangqi.legal_char_rate(y, logits)) == pytest.approx(rate)
    assert float(train_xiangqi.masked_ce(y, logits)) == pytest.approx(ce, rel=1e-5)
    assert float(train_xiangqi.masked_ce(target, logits)) == pytest.approx(ce, rel=1e-5)  # y without masks
    both = train_xiangqi.make_loss(0.5)
    assert float(both(y, logits)) == pytest.approx(ce + 0.5 * expected, rel=1e-5)
    assert train_xiangqi.make_loss(0.0) is train_xiangqi.masked_ce


def test_training_with_the_legal_mass_term(games_file, tmp_path, monkeypatch):
    args = train_xiangqi.parse_args(["--games", games_file, "--out", "unused", "--steps", "30", "--lr", "3e-3",
                                     "--legal-weight", "1"] + TINY_ARGS)
    games = train_xiangqi.load_games([games_file])
    masks = train_xiangqi.compute_legal_masks(games, str(tmp_path), workers=1, quiet=True)
    assert [len(m) for m in masks] == [len(g.moves) for g in games]
    monkeypatch.setattr(train_xiangqi, "_mask_one", lambda job: pytest.fail("recomputed"))
    again = train_xiangqi.compute_legal_masks(games, str(tmp_path), workers=1, quiet=True)  # from the file
    for a, b in zip(masks, again):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    x, y = train_xiangqi.batch_for_step(games, 0, args, masks)
    x0, y0 = train_xiangqi.batch_for_step(games, 0, args)  # same stream, masks or not
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y[..., 0], y0)
    on = y[..., 1] != 0
    assert on.sum() == ((y0 >= len(xq.SPECIALS))).sum()  # a mask on every move character, none elsewhere
    assert ((y[..., 1][on] >> y[..., 0][on]) & 1).all()
    model = build_xiangqi_model(TINY)
    model.compile(optimizer=train_xiangqi.make_optimizer(args), loss=train_xiangqi.make_loss(1.0),
                  metrics=[train_xiangqi.legal_char_rate, train_xiangqi.legal_mass_nll])
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    for step in range(30):
        model.train_on_batch(*train_xiangqi.batch_for_step(games, step, args, masks))
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["legal_mass_nll"] < before["legal_mass_nll"] - 0.3, (before, after)
    assert after["legal_char_rate"] > before["legal_char_rate"] + 0.2, (before, after)
    # the script: masks kept in OUT, the cross-entropy and the legal rate logged, both panels plotted
    out = str(tmp_path / "run")
    assert train_xiangqi.main(["--games", games_file, "--out", out, "--steps", "2", "--checkpoint-every", "2",
                               "--legal-weight", "0.5", "--workers", "1", "--val-fraction", "0.3"] + TINY_ARGS) == 0
    assert os.path.exists(os.path.join(out, "legal_masks.npz"))
    row = list(csv.DictReader(open(os.path.join(out, "log.csv"))))[-1]
    assert float(row["loss"]) > float(row["masked_ce"]) and 0 <= float(row["val_legal_char_rate"]) <= 1
    summary = json.load(open(os.path.join(out, "train_summary.json")))
    assert summary["legal_weight"] == 0.5 and 0 <= summary["final_val_legal_char_rate"] <= 1
    assert os.path.getsize(os.path.join(out, "loss.png")) > 1000


def test_training_lowers_the_loss(games_file):
    args = train_xiangqi.parse_args(["--games", games_file, "--out", "unused", "--steps", "30", "--lr", "3e-3"]
                                    + TINY_ARGS)
    games = train_xiangqi.load_games([games_file])
    model = build_xiangqi_model(TINY)
    model.compile(optimizer=train_xiangqi.make_optimizer(args), loss=train_xiangqi.masked_loss)
    x, y = train_xiangqi.batch_for_step(games, 0, args)
    before = float(model.evaluate(x, y, verbose=0))
    for step in range(30):
        model.train_on_batch(*train_xiangqi.batch_for_step(games, step, args))
    after = float(model.evaluate(x, y, verbose=0))
    assert np.isfinite(before) and after < before - 0.3, (before, after)
    assert before == pytest.approx(np.log(len(VOCAB)), abs=0.3)  # untrained: about uniform


def test_length_grouped_batches_pad_to_their_longest_game():
    games = [g for plies in range(2, 40, 3) for g in random_games(2, seed=plies, plies=plies)]
    args = train_xiangqi.parse_args(["--games", "unused", "--out", "unused", "--max-len", "96", "--batch-size", "3",
                                     "--length-groups", "4"])
    spans = []
    for step in range(4):  # group 0: 12 games sorted by length, cut into 4 batches, shuffled
        x, y = train_xiangqi.batch_for_step(games, step, args)
        real = (y != 0).sum(axis=1)  # targets per sequence
        assert x.shape == y.shape and x.shape[0] == 3
        assert x.shape[1] == min(96, -(-real.max() // 64) * 64)  # padded to the longest, rounded up to 64
        both = (y[:, :-1] != 0) & (x[:, 1:] != 0)
        assert both.any() and (x[:, 1:][both] == y[:, :-1][both]).all()  # y is x shifted by one
        spans.append((real.min(), real.max()))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # batches do not overlap in length
    assert any(x.shape[1] < 96 for x, _ in (train_xiangqi.batch_for_step(games, s, args) for s in range(4)))
    train_xiangqi._GROUP_CACHE.clear()
    again = train_xiangqi.batch_for_step(games, 2, args)  # a function of (seed, step) only
    train_xiangqi._GROUP_CACHE.clear()
    np.testing.assert_array_equal(train_xiangqi.batch_for_step(games, 6, args)[0],
                                  train_xiangqi.batch_for_step(list(games), 6, args)[0])
    np.testing.assert_array_equal(again[0], train_xiangqi.batch_for_step(games, 2, args)[0])
    one = train_xiangqi.parse_args(["--games", "u", "--out", "u", "--max-len", "96", "--batch-size", "3",
                                    "--length-groups", "1"])
    assert train_xiangqi.batch_for_step(games, 0, one)[0].shape[0] == 3


def _final_weights(out):
    return load_xiangqi_model(out).get_weights()


def test_resume_continues_with_the_same_optimizer_step(games_file, tmp_path, capsys):
    out = str(tmp_path / "run")
    common = ["--games", games_file, "--out", out, "--steps", "6", "--checkpoint-every", "2"] + TINY_ARGS
    assert train_xiangqi.main(common + ["--stop-after", "3"]) == 0  # "killed" after 3 steps
    ck = train_xiangqi.latest_checkpoint(out)
    assert json.load(open(os.path.join(ck, "state.json")))["step"] == 3
    assert not os.path.exists(os.path.join(out, "model.weights.h5"))
    capsys.readouterr()
    assert train_xiangqi.main(common + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "at step 3 (optimizer.iterations=3)" in err
    assert json.load(open(os.path.join(train_xiangqi.latest_checkpoint(out), "state.json")))["step"] == 6
    summary = json.load(open(os.path.join(out, "train_summary.json")))
    assert summary["steps"] == 6
    rows = list(csv.DictReader(open(os.path.join(out, "log.csv"))))
    assert [int(float(r["step"])) for r in rows] == [2, 3, 5, 6]  # appended on resume (3 -> epoch 2: 4, 5)
    assert os.path.getsize(os.path.join(out, "loss.png")) > 1000
    # the resumed run ends exactly where an uninterrupted one does
    straight = str(tmp_path / "straight")
    assert train_xiangqi.main(["--games", games_file, "--out", straight, "--steps", "6",
                               "--checkpoint-every", "2"] + TINY_ARGS) == 0
    for a, b in zip(_final_weights(out), _final_weights(straight)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_init_from_starts_at_the_saved_weights(games_file, tmp_path, capsys):
    base = str(tmp_path / "base")
    model = build_xiangqi_model(dict(TINY, num_hidden_layers=2))
    save_xiangqi_model(model, base)
    out = str(tmp_path / "cont")
    args = ["--games", games_file, "--out", out, "--steps", "2", "--checkpoint-every", "2", "--lr", "0",
            "--max-len", "96", "--batch-size", "4", "--quiet", "--init-from", base]
    assert train_xiangqi.main(args) == 0  # lr 0: the result is the starting point
    assert "initialised from" in capsys.readouterr().err
    assert json.load(open(os.path.join(out, "config.json")))["num_hidden_layers"] == 2
    for a, b in zip(_final_weights(out), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(SystemExit, match="hidden_size=64 differs"):
        train_xiangqi.main(args[:-2] + ["--init-from", base, "--hidden", "64", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="config.json not found"):
        train_xiangqi.main(args[:-2] + ["--init-from", str(tmp_path), "--out", str(tmp_path / "y")])


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
        assert greedy == "".join(xq.VOCAB[i] if i >= len(xq.SPECIALS) else "?" for i in chars)


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
    expected = "".join(VOCAB[i] if i >= len(xq.SPECIALS) else "?" for i in list(prefixes[best[0]]) + [best[1]])
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
    assert scorer._last is None
    n = len(traced)
    g = random_games(1, seed=5, plies=40)[0]
    for start in (0, 1):  # the player is red (plies 0, 2, ...) or black (1, 3, ...)
        for i in range(start, len(g.moves), 2):
            scorer.score(g.moves[:i], Position.from_moves(g.moves[:i]).legal_moves(), "red" if start == 0 else "black")
    assert len(traced) == n, f"{len(traced) - n} traces after the warm-up"
