"""A match of a player against a random mover or fairy-stockfish (framework-free):
games in alternating colours, random openings shared by each pair of games, a
line per game, the summary line and the JSON line.

The player is anything with ``choose(pos)`` and a ``condition`` (a
:class:`~toolkit.xiangqi.player.Player` around any scorer), or a function that
makes one: it is called after the opponent is opened, so a bad engine fails
before a slow model load.

>>> import io
>>> from toolkit.xiangqi.player import Player
>>> class Uniform:
...     def score(self, history, candidates, condition=None):
...         return [0.0] * len(candidates)
>>> out = io.StringIO()
>>> summary = run_match(MatchSettings(games=2, max_plies=6, quiet=True), Player(Uniform()), out=out)
>>> summary["games"], summary["illegal_moves"], summary["elo"]
(2, 0, None)
"""

import json
import sys
from dataclasses import dataclass
from typing import Optional

from . import movegen
from .engine import open_engine
from .match_stats import format_elo, format_score, match_summary
from .player import EnginePlayer, RandomPlayer, play_game, random_opening
from .rules import IllegalMoveError
from .session import last_move_board

ENGINE_OPENING_PLIES = 2  # random plies per pair of games against the (deterministic) engine


@dataclass
class MatchSettings:
    """What a match is: ``opponent`` 'random' or 'engine' (fairy-stockfish at
    ``engine_depth``; ``engine``: its binary, None: looked up), ``games``, the
    length cap ``max_plies`` (a draw beyond it), the ``seed`` of the random mover
    and the openings, ``opening_plies`` random plies shared by each pair of
    games, and what is printed: each final board (``show_board``, in ANSI
    colours with ``color``), or only the summary (``quiet``)."""

    opponent: str = "random"
    games: int = 10
    engine_depth: int = 1
    engine: Optional[str] = None
    max_plies: int = 300
    seed: int = 0
    opening_plies: int = 0
    show_board: bool = False
    color: bool = False
    quiet: bool = False


def open_opponent(settings):
    """(opponent, engine or None, name); a missing or broken engine is a one-line error
    (:func:`~toolkit.xiangqi.engine.open_engine`)."""
    if settings.opponent != "engine":
        return RandomPlayer(seed=settings.seed), None, "random mover"
    engine = open_engine(settings.engine)
    name = f"fairy-stockfish depth {settings.engine_depth}"
    return EnginePlayer(engine, depth=settings.engine_depth), engine, name


def new_tally():
    """What :func:`play_match_games` records: per-game points, the player's move times, game
    lengths, illegal moves, and the distinct openings and games (move sequences)."""
    return {"points": [], "times": [], "plies": [], "illegal": 0, "openings": set(), "games": set()}


def _game_line(settings, number, mine, name, pos, outcome, point):
    verdict = "win" if point == 1 else "draw" if point == 0.5 else "loss"
    return (f"game {number}/{settings.games}: model {mine:5s} vs {name}: "
            f"{outcome.result} by {outcome.termination} in {pos.ply} plies -> {verdict}")


def play_match_games(settings, player, opponent, engine, name, out, tally):
    """Play the games (the player red in even-indexed ones), recording them in ``tally``
    (:func:`new_tally`) as they finish."""
    for index in range(settings.games):
        model_red = index % 2 == 0
        red, black = (player, opponent) if model_red else (opponent, player)
        if engine is not None:
            engine.new_game()

        def on_move(pos, move, seconds, model_red=model_red):
            if (pos.turn == movegen.BLACK) == model_red:  # the side that just moved is not pos.turn
                tally["times"].append(seconds)

        opening = random_opening(settings.opening_plies, f"opening:{settings.seed}:{index // 2}")
        tally["openings"].add(tuple(opening))
        try:
            pos, outcome = play_game(red, black, max_plies=settings.max_plies, on_move=on_move, opening=opening)
        except IllegalMoveError:  # cannot happen (only legal moves are scored); counted if it does
            tally["illegal"] += 1
            tally["points"].append(0.0)
            continue
        mine = "red" if model_red else "black"
        point = 1.0 if outcome.result == mine else 0.5 if outcome.result == "draw" else 0.0
        tally["points"].append(point)
        tally["plies"].append(pos.ply)
        tally["games"].add(tuple(pos.moves))
        if not settings.quiet:
            print(_game_line(settings, index + 1, mine, name, pos, outcome, point), file=out, flush=True)
        if settings.show_board:
            print(last_move_board(pos, settings.color), file=out, flush=True)


def summary_line(summary):
    """The human-readable match summary (the JSON line follows it)."""
    plies, openings = summary["opening_plies"], summary["openings"]
    start = (f"{openings} distinct random opening{'s' if openings != 1 else ''} of {plies} "
             f"pl{'ies' if plies != 1 else 'y'}" if plies else "the start position")
    return (f"model vs {summary['opponent']}: +{summary['wins']} ={summary['draws']} -{summary['losses']} "
            f"in {summary['games']} games ({summary['distinct_games']} distinct) from {start}; "
            f"score {format_score(summary)} (95%), Elo {format_elo(summary)}, "
            f"{summary['seconds_per_move']:.3f} s/move")


def stopped_line(tally, games):
    """What an interrupted match says about its finished games (None before the first)."""
    points = tally["points"]
    if not points:
        return None
    return (f"stopped after {len(points)} of {games} games: +{points.count(1.0)} ={points.count(0.5)} "
            f"-{points.count(0.0)} (an unfinished match gets no summary)")


def tally_summary(settings, tally, condition, name, restarts=None):
    """:func:`~toolkit.xiangqi.match_stats.match_summary` of the points plus the match's figures
    (``restarts``: the engine's searches retried on a fresh engine after a stall, if an engine played)."""
    summary = match_summary(tally["points"])
    if restarts is not None:
        summary["engine_restarts"] = restarts
    times, plies = tally["times"], tally["plies"]
    summary.update(illegal_moves=tally["illegal"], seconds_per_move=round(sum(times) / max(1, len(times)), 4),
                   opponent=name, condition=condition, opening_plies=settings.opening_plies,
                   openings=len(tally["openings"]), distinct_games=len(tally["games"]),
                   mean_plies=round(sum(plies) / max(1, len(plies)), 1))
    return summary


def run_match(settings, player, out=None, err=None):
    """Play the match of :class:`MatchSettings` ``settings``; ``player``: a player or a function
    that makes one (see the module's docstring). Prints each game and the summary to ``out``
    (default stdout), the JSON summary last; returns the summary dict. Ctrl-C stops it with
    the finished games' tally on ``err`` (default stderr) and passes the interrupt on."""
    out = out or sys.stdout
    opponent, engine, name = open_opponent(settings)  # before the model loads: a bad engine fails fast
    tally = new_tally()
    try:
        player = player if hasattr(player, "choose") else player()
        play_match_games(settings, player, opponent, engine, name, out, tally)
    except KeyboardInterrupt:
        line = stopped_line(tally, settings.games)
        if line:
            print("\n" + line, file=err or sys.stderr)
        raise
    finally:
        if engine is not None:
            engine.close()
    summary = tally_summary(settings, tally, player.condition, name,
                            restarts=opponent.restarts if engine is not None else None)
    print(summary_line(summary), file=out)
    print(json.dumps(summary), file=out, flush=True)
    return summary


__all__ = ["ENGINE_OPENING_PLIES", "MatchSettings", "open_opponent", "new_tally", "play_match_games",
           "summary_line", "stopped_line", "tally_summary", "run_match"]
