"""toolkit.xiangqi.selfplay: search limits and opening draws from the settings,
the resume bookkeeping of the output file (a partial last line cut, every id
counted done, only valid games counted), and play_games in one process: games
appended as they end, a failed game reported and counted, the same game for the
same seed and index. The engine is required: without fairy-stockfish the tests
that play FAIL (no skip)."""

import io
import json
import random

import pytest

from toolkit.xiangqi import selfplay
from toolkit.xiangqi.engine import PVLine, UciEngine, find_engine
from toolkit.xiangqi.records import GameRecord
from toolkit.xiangqi.rules import Position, first_illegal
from toolkit.xiangqi.selfplay import (SelfPlaySettings, choose_opening_move, existing_ids, game_id, indices_to_play,
                                      play_games, play_selfplay_game, sample_limit)

TINY = SelfPlaySettings(depths=None, nodes=(100, 200), opening_plies=2, multipv=3, max_plies=16, seed=3)


def test_search_limits_come_from_the_given_ranges():
    rng = random.Random(0)
    depths = [sample_limit(rng, SelfPlaySettings(depths=(2, 3)))["depth"] for _ in range(50)]
    assert set(depths) == {2, 3}
    nodes = [sample_limit(rng, SelfPlaySettings(depths=None, nodes=(10, 1000)))["nodes"] for _ in range(200)]
    assert 10 <= min(nodes) < 100 < max(nodes) <= 1000  # log-uniform: both decades
    kinds = {next(iter(sample_limit(rng, SelfPlaySettings(depths=(1, 1), nodes=(5, 5))))) for _ in range(50)}
    assert kinds == {"depth", "nodes"}


def line(move, score):
    return PVLine(multipv=1, depth=1, score_cp=score, mate=None, pv=[move], nodes=1)


def test_opening_moves_are_drawn_from_the_legal_candidates():
    legal = set(Position().legal_moves())
    lines = [line("h2e2", 30), line("b2e2", -2000), line("a0a0", 500)]  # a0a0: not legal, never drawn
    rng = random.Random(0)
    soft = [choose_opening_move(rng, lines, legal, SelfPlaySettings(temperature=100.0)) for _ in range(200)]
    assert soft.count("h2e2") == 200  # 20 pawns worse: e^-20.3
    uniform = [choose_opening_move(rng, lines, legal, SelfPlaySettings(opening_sampling="uniform"))
               for _ in range(200)]
    assert set(uniform) == {"h2e2", "b2e2"}
    assert choose_opening_move(rng, [line("a0a0", 0)], legal, SelfPlaySettings()) is None


def record(index, seed=3, moves=("h2e2", "h9g7")):
    return json.dumps(GameRecord(moves=list(moves), result="draw", id=game_id(seed, index)).to_json())


def test_resume_cuts_a_partial_line_and_counts_every_id_done(tmp_path):
    path = tmp_path / "sub" / "games.jsonl"
    assert indices_to_play(str(path), 3, 3) == (0, [0, 1, 2]) and path.parent.is_dir()
    illegal = record(1, moves=("a0a5",))  # its index is done, but it is no valid game
    path.write_text(record(0) + "\n" + illegal + "\n" + record(4, moves=("b2e2",)) + "\n" + '{"id": "s3-00')
    log = io.StringIO()
    have, todo = indices_to_play(str(path), 4, 3, log=log)
    assert have == 2 and todo == [2, 3]
    assert log.getvalue().startswith("removed a partial last line (") and path.read_text().endswith("\n")
    assert existing_ids(str(path)) == (2, {"s3-0000000", "s3-0000001", "s3-0000004"})


def engine_path():
    try:
        return find_engine()
    except Exception as error:
        pytest.fail(f"fairy-stockfish is required (apt-get install fairy-stockfish): {error}")


def test_play_games_appends_games_and_counts_a_failure(tmp_path, monkeypatch):
    real = selfplay.play_selfplay_game

    def fails_on_one(engine, settings, index):
        if index == 1:
            raise ValueError("no game today")
        return real(engine, settings, index)

    monkeypatch.setattr(selfplay, "play_selfplay_game", fails_on_one)
    path, log, seen = tmp_path / "games.jsonl", io.StringIO(), []
    failures = play_games(TINY, engine_path(), [0, 1, 2], str(path), on_game=seen.append, log=log)
    assert failures == 1 and log.getvalue() == "game s3-0000001 failed: ValueError: no game today\n"
    games = [json.loads(text) for text in path.read_text().splitlines()]
    assert [g["id"] for g in games] == ["s3-0000000", "s3-0000002"] and seen == games
    for game in games:
        assert first_illegal(game["moves"]) is None and game["plies"] <= 16
        assert game["engine"]["seed"] == 3 and 100 <= game["engine"]["red"]["nodes"] <= 200
    with UciEngine(engine_path()) as engine:
        assert play_selfplay_game(engine, TINY, 2) == games[1]  # reproducible: the same game again
