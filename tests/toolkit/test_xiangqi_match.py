"""toolkit.xiangqi.match with a cheap fake scorer: the match vs the random mover
(game lines in alternating colours, final boards, summary and JSON lines, the
score interval, no Elo from few games), random openings against the engine, the
player made only after the opponent opened, a missing or broken engine as one
line, and Ctrl-C with the finished games' tally. The engine is required: without
fairy-stockfish the engine tests FAIL (no skip)."""

import io
import json

import pytest

from toolkit.xiangqi.engine import EngineNotFoundError, EngineUnusableError
from toolkit.xiangqi.match import MatchSettings, run_match
from toolkit.xiangqi.player import Player

KEYS = {"games", "wins", "draws", "losses", "score", "score_low", "score_high", "elo", "elo_low", "elo_high",
        "illegal_moves", "seconds_per_move", "openings", "distinct_games", "opponent", "condition",
        "opening_plies", "mean_plies"}


class FirstMoveScorer:
    """Prefers the legal moves in their listed order: cheap and the same every run."""

    def score(self, history, candidates, condition=None):
        return [-float(rank) for rank in range(len(candidates))]


def model_player(**settings):
    return Player(FirstMoveScorer(), **settings)


def match(settings, player=None):
    out = io.StringIO()
    summary = run_match(settings, player or model_player(), out=out)
    return summary, out.getvalue().strip().splitlines()


def test_match_vs_random_prints_games_boards_summary_and_json_last():
    summary, lines = match(MatchSettings(games=2, seed=1, max_plies=40, show_board=True))
    assert json.loads(lines[-1]) == summary and KEYS <= set(summary)
    assert summary["games"] == 2 and summary["illegal_moves"] == 0
    assert summary["wins"] + summary["draws"] + summary["losses"] == 2
    assert 0.0 <= summary["score_low"] <= summary["score"] <= summary["score_high"] <= 1.0
    assert summary["elo"] is None  # two games: no point estimate
    assert summary["opening_plies"] == 0 and summary["openings"] == 1  # from the start position
    assert summary["opponent"] == "random mover" and summary["condition"] == "own"
    assert "engine_restarts" not in summary
    assert lines[0].startswith("game 1/2: model red   vs random mover: ")
    assert any(line.startswith("game 2/2: model black vs random mover: ") for line in lines)  # colours alternate
    assert lines.count("  a b c d e f g h i") == 2  # each final board
    assert "\x1b[" not in "".join(lines)
    assert lines[-2].startswith("model vs random mover: ") and "(95%), Elo n/a (2 games" in lines[-2]


def test_one_game_gives_a_score_interval_and_no_elo():
    summary, lines = match(MatchSettings(games=1, max_plies=10, quiet=True, show_board=True, color=True))
    assert summary["games"] == 1 and summary["elo"] is None and summary["mean_plies"] == 10
    assert len(lines) == 14 and "\x1b[" in lines[0]  # no game line (quiet): the coloured board, summary, JSON
    assert "Elo n/a (1 game; an Elo estimate needs >= 10)" in lines[-2]
    assert f"score {summary['score']:.3f} [{summary['score_low']:.3f}, {summary['score_high']:.3f}] (95%)" \
        in lines[-2]
    assert "from the start position" in lines[-2]


def test_engine_match_with_random_openings_one_per_pair_of_games():
    summary, lines = match(MatchSettings(opponent="engine", engine_depth=1, games=4, max_plies=14, opening_plies=2,
                                         quiet=True))
    assert summary["opening_plies"] == 2 and summary["openings"] == 2  # one per pair of games
    assert summary["distinct_games"] == 4 and summary["illegal_moves"] == 0
    assert summary["engine_restarts"] == 0 and summary["opponent"] == "fairy-stockfish depth 1"
    assert "(4 distinct) from 2 distinct random openings of 2 plies" in lines[-2]
    keys = list(summary)
    assert keys[keys.index("engine_restarts") - 1] == "elo_min_games"  # the JSON line's order as before


def test_the_player_is_made_after_the_engine_opens(tmp_path):
    made = []

    def make_player():
        made.append(True)
        return model_player()

    missing = str(tmp_path / "nowhere" / "fairy-stockfish")
    with pytest.raises(EngineNotFoundError, match="apt-get install fairy-stockfish"):
        run_match(MatchSettings(opponent="engine", games=2, engine=missing), make_player)
    with pytest.raises(EngineUnusableError) as error:
        run_match(MatchSettings(opponent="engine", games=2, engine="/bin/true"), make_player)
    assert isinstance(error.value, ValueError) and len(str(error.value).splitlines()) == 1
    assert str(error.value).startswith("--engine /bin/true does not work as fairy-stockfish (")
    assert str(error.value).endswith("install it with `apt-get install fairy-stockfish` or pass --engine PATH")
    assert not made  # a bad engine fails before the (slow) player is made
    summary, _ = match(MatchSettings(games=1, max_plies=4, quiet=True), make_player)
    assert made == [True] and summary["games"] == 1


class StopsInGame:
    """A player that presses Ctrl-C at its first move of game ``stop`` (counting from 1)."""

    def __init__(self, stop):
        self.inner, self.stop, self.condition, self.game = model_player(), stop, "own", 0

    def choose(self, pos):
        self.game += pos.ply < 2
        if self.game >= self.stop:
            raise KeyboardInterrupt
        return self.inner.choose(pos)


def test_ctrl_c_prints_the_finished_games_and_passes_the_interrupt_on():
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        run_match(MatchSettings(games=5, max_plies=6), StopsInGame(3), out=out, err=err)
    assert err.getvalue() == "\nstopped after 2 of 5 games: +0 =2 -0 (an unfinished match gets no summary)\n"
    assert [line[:9] for line in out.getvalue().splitlines()] == ["game 1/5:", "game 2/5:"]  # no summary
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        run_match(MatchSettings(games=5, max_plies=6), StopsInGame(1), out=io.StringIO(), err=err)
    assert err.getvalue() == ""  # no game finished: nothing to tally
