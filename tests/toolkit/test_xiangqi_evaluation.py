"""toolkit.xiangqi.evaluation with cheap fake scorers: the held-out figures (top-1,
greedy and top-move legality, positions spread over the games), the held-out
split of record files, the random-mover matches of each player kind and the
conditioning comparison (a same-size match reused), the report, and merging an
earlier run's figures (a bad file as one line)."""

import io
import json

import pytest

from toolkit.xiangqi.evaluation import (EvalPlan, engine_match_sizes, held_out_accuracy, held_out_games,
                                        load_merge, make_players, merge_into, plan_from, report, run_conditioning,
                                        run_matches)
from toolkit.xiangqi.player import RandomPlayer, play_game
from toolkit.xiangqi.records import GameRecord, append_game, read_games
from toolkit.xiangqi.training_data import split_games


def random_games(count, plies=12):
    games = []
    for seed in range(count):
        pos, _ = play_game(RandomPlayer(seed), RandomPlayer(100 + seed), max_plies=plies)
        games.append(GameRecord(moves=pos.moves, result="draw"))
    return games


class KnowsTheGames:
    """Scores the recorded move of a position highest; its greedy decode is that move
    (``greedy_ok``) or '????', its top move an illegal string; records the conditions."""

    def __init__(self, games, greedy_ok=True):
        self.next_move = {tuple(g.moves[:ply]): g.moves[ply] for g in games for ply in range(len(g.moves))}
        self.greedy_ok, self.conditions, self.histories = greedy_ok, [], []

    def score(self, history, candidates, condition=None, greedy=False):
        recorded = self.next_move[tuple(history)]
        self.conditions.append(condition)
        self.histories.append(list(history))
        scores = [1.0 if move == recorded else 0.0 for move in candidates]
        return (scores, recorded if self.greedy_ok else "????") if greedy else scores

    def top_move(self, history, condition=None):
        return "a0a0"


def test_held_out_accuracy_counts_hits_and_legal_decodes():
    games = random_games(1)  # one game: each position's history names its recorded move
    scorer = KnowsTheGames(games)
    figures = held_out_accuracy(scorer, games, 5, "any")
    assert figures["positions"] == 5 and figures["top1_accuracy"] == 1.0
    assert figures["greedy_legal_rate"] == 1.0 and figures["top_move_legal_rate"] == 0.0
    assert figures["seconds_per_position"] > 0 and set(scorer.conditions) == {"any"}
    assert [len(history) for history in scorer.histories] == [0, 2, 4, 6, 8]  # spread: every 12 // 5 plies
    blind = KnowsTheGames(games, greedy_ok=False)
    assert held_out_accuracy(blind, games, 100, "own")["greedy_legal_rate"] == 0.0
    assert set(blind.conditions) == {"red", "black"}  # own: the side to move's win token
    assert len(blind.conditions) == sum(len(g.moves) for g in games)  # fewer positions than asked: all of them
    assert held_out_accuracy(scorer, [], 5, "any") is None


def test_held_out_games_are_the_validation_split_of_every_file(tmp_path):
    games = random_games(8)
    paths = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    for index, game in enumerate(games):
        append_game(paths[index % 2], game)
    held_out = held_out_games(paths, 0.5)
    expected = [g for path in paths for g in split_games(read_games(path)[0], 0.5)[1]]
    assert held_out and [g.moves for g in held_out] == [g.moves for g in expected]
    assert held_out_games(paths, 0.0) == []


class FirstMoveScorer:
    def score(self, history, candidates, condition=None):
        return [-float(rank) for rank in range(len(candidates))]


def test_matches_per_player_kind_and_the_conditioning_comparison():
    plan = EvalPlan(random_games=2, engine_games=0, conditioning_games=2, max_plies=12)
    players = make_players(FirstMoveScorer(), plan)
    res, flushed, log = {"matches": {}}, [], io.StringIO()
    run_matches(players, plan, res, lambda: flushed.append(len(res["matches"])), log=log)
    run_conditioning(FirstMoveScorer(), players, plan, res, log=log)
    assert flushed == [1, 2]  # after each match
    assert set(res["matches"]) == {"vs random mover (guarded, own-win token)",
                                   "vs random mover (model + mate in one, own-win token)",
                                   "vs random mover (guarded, `<any>` token)"}  # the same-size own match reused
    for summary in res["matches"].values():
        assert summary["games"] == 2 and summary["illegal_moves"] == 0 and summary["wall_seconds"] >= 0
    assert res["matches"]["vs random mover (guarded, `<any>` token)"]["condition"] == "any"
    assert res["conditioning"]["player"] == "guarded" and res["conditioning"]["games"] == 2
    assert "[random own guarded] {" in log.getvalue() and "[cond any] {" in log.getvalue()
    bigger = EvalPlan(random_games=2, engine_games=0, conditioning_games=4, players=("model",), max_plies=12)
    run_conditioning(FirstMoveScorer(), make_players(FirstMoveScorer(), bigger), bigger, res, log=log)
    assert "vs random mover (model + mate in one, own-win token), 4 games" in res["matches"]


def test_engine_match_sizes_and_the_plan_from_options():
    class Options:
        random_games, engine_games, engine_depths, conditioning_games = 3, 0, [1], None
        conditioning_opponent, write = "engine", True

    plan = plan_from(Options())
    assert plan.conditioning_size() == 3 and plan.opening_plies == EvalPlan().opening_plies
    assert engine_match_sizes(plan) == [3]
    assert engine_match_sizes(EvalPlan(engine_games=5, engine_depths=())) == []
    assert engine_match_sizes(EvalPlan(engine_games=5, conditioning_games=0)) == [5]


def summary(games, wins, draws, losses, seconds):
    return {"games": games, "wins": wins, "draws": draws, "losses": losses, "score": (wins + draws / 2) / games,
            "elo": None, "elo_low": None, "elo_high": None, "mean_plies": 40.5, "seconds_per_move": seconds}


def test_report_lines():
    figures = {"positions": 6, "top1_accuracy": 0.5, "greedy_legal_rate": 0.25, "top_move_legal_rate": 0.75,
               "seconds_per_position": 0.1234}
    res = {"model": "m", "val_games": 3, "note": "A note.", "accuracy_any": figures,
           "matches": {"vs random mover (guarded, own-win token)": summary(2, 1, 1, 0, 0.1),
                       "vs random mover (guarded, `<any>` token)": summary(2, 0, 2, 0, 0.3)},
           "conditioning": {"opponent": "random mover", "player": "guarded", "games": 2, "own": 0.75, "any": 0.5}}
    lines = report(res, "python scripts/eval_xiangqi.py", "a machine", "2026-01-01").splitlines()
    assert lines[:4] == ["Machine: a machine; date 2026-01-01; model `m`.",
                         "Command: `python scripts/eval_xiangqi.py`", "", "A note."]
    assert lines[5] == ("- Held-out next move (`<any>` token, 6 positions of 3 held-out engine games): top-1 among "
                        "legal moves 50.0%, greedy 4-char move legal 25.0% (goal 98%), most probable 4-char move "
                        "legal 75.0%, 0.123 s per scoring pass")
    assert "| vs random mover (guarded, own-win token) | 2 | +1 =1 -0 | 0.750 | n/a (2 games; an Elo estimate " \
           "needs >= 10) | 40.5 | 0.100 |" in lines
    assert ("Conditioning (random mover, guarded player): own-win token score 0.750 vs `<any>` 0.500 (2 games "
            "each, same model, same seeds): difference +0.250.") in lines
    assert lines[-1] == "Seconds per model move (mean over the matches): 0.200 (goal < 0.2)."
    res["commands"] = ["first", "second"]
    assert "Commands: `first`; then `second`" in report(res, "ignored", "m", "d")


def test_merge_an_earlier_run(tmp_path):
    old = {"model": "old", "complete": True, "commands": ["c1"], "val_games": 9, "accuracy_any": {"positions": 1},
           "matches": {"a": 1}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    res = {"model": "new", "matches": {"b": 2}, "val_games": 0}
    assert merge_into(res, load_merge(str(path)), have_val=False) == ["c1"]
    assert res == {"model": "new", "matches": {"b": 2, "a": 1}, "val_games": 9, "accuracy_any": {"positions": 1}}
    res = {"model": "new", "matches": {}, "val_games": 4}
    merge_into(res, old, have_val=True)
    assert res["val_games"] == 4 and res["accuracy_any"] == {"positions": 1}  # this run's held-out figures kept


@pytest.mark.parametrize("text,needle", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes"),
    ("[1, 2]", "not the --json file of an earlier run (no figures object)"),
    ('{"matches": []}', "not the --json file of an earlier run (no figures object)"),
])
def test_a_file_that_is_no_earlier_run_is_a_one_line_error(tmp_path, text, needle):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_merge(str(path))
    assert str(error.value).startswith(f"--merge {path}: {needle}") and "\n" not in str(error.value)
