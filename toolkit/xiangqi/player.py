"""A Xiangqi player on top of any move scorer (framework-free: no keras here).

The scorer is duck-typed: ``scorer.score(history, candidates, condition)``
returns one log-probability per candidate ICCS move, given the ICCS moves played
so far (from the standard start) and a condition in ``'red' | 'black' | 'draw'
| 'any'``. ``models.xiangqi.MoveScorer`` is the GPT one; tests use cheap fakes.

The player only ever scores the legal moves of the position, so it never plays
an illegal move; it plays a move that mates (or stalemates, also a win in
Xiangqi) at once when there is one (a 1-ply check on the rules), then the best
scored move (``temperature=0``) or a sample at ``temperature``.

``guard=True`` (the default) adds small rule-based checks around the model,
no search beyond them (the material check looks one exchange deep): a forced
mate in two by checks is played when there is one (:func:`mate_in_two`); the
model's choice is kept to moves that do not give material away, that is whose
one-exchange balance (:func:`~toolkit.xiangqi.material.move_balance`) is
within ``material_margin`` of the best move's (a free piece is taken, a
hanging one saved); and a move is replaced by the model's next best when it
walks into a mate in one, loses by a rule at once (perpetual check or chase),
or, with more material than the opponent, ends the game in a draw or repeats
a position (:func:`move_hazard`). ``guard=False`` with ``mate_check=False`` is
the model alone.

>>> class Uniform:
...     def score(self, history, candidates, condition=None):
...         return [0.0] * len(candidates)
>>> from toolkit.xiangqi.rules import Position
>>> Player(Uniform()).choose(Position()) in Position().legal_moves()
True
"""

import math
import random

from . import movegen
from .coords import parse_iccs
from .engine import EngineError
from .match_stats import elo_from_score, match_summary, score_interval  # noqa: F401  (re-exported)
from .material import PIECE_VALUES, material, move_balance
from .rules import Position


class Player:
    """``choose(pos)`` -> ICCS move; ``hint(pos, k)`` -> top-``k`` ``(move, logprob)``.

    ``condition``: ``'own'`` asks the model for the moves of games the side to
    move wins (the own-win result token), ``'any'`` for unconditioned moves,
    or a fixed ``'red'``/``'black'``/``'draw'``. ``material_margin`` (with
    ``guard``): how much material below the best legal move's one-exchange
    balance a move may be and still be played (None: no material check).
    """

    def __init__(self, scorer, temperature=0.0, condition="own", mate_check=True, guard=True, seed=None,
                 material_margin=1.0):
        if condition not in ("own", "any", "red", "black", "draw"):
            raise ValueError(f"condition must be own/any/red/black/draw, got {condition!r}")
        if not float(temperature) >= 0:
            raise ValueError(f"temperature must be >= 0 (0 plays the best move), got {temperature!r}")
        if material_margin is not None and not material_margin >= 0:
            raise ValueError(f"material_margin must be >= 0 or None, got {material_margin!r}")
        self.material_margin = material_margin
        self.scorer = scorer
        self.temperature = float(temperature)
        self.condition = condition
        self.mate_check = mate_check
        self.guard = guard
        self.rng = random.Random(seed)

    def condition_for(self, pos):
        return pos.turn if self.condition == "own" else self.condition

    def scored_moves(self, pos):
        """``[(move, logprob)]`` for every legal move, best first."""
        legal = pos.legal_moves()
        if not legal:
            return []
        scores = self.scorer.score(pos.moves, legal, self.condition_for(pos))
        scores = [float(s) for s in scores]
        if len(scores) != len(legal):
            raise ValueError(f"the scorer returned {len(scores)} scores for {len(legal)} moves")
        return sorted(zip(legal, scores), key=lambda ms: -ms[1])

    def forced_win(self, pos):
        """A mate in one (``mate_check``) or a forced mate in two by checks (``guard``), else None."""
        if not (self.mate_check or self.guard):
            return None
        checks = checking_moves(pos)
        mate = mating_move(pos, checks) if self.mate_check else None
        if mate is None and self.guard:
            mate = mate_in_two(pos, checks)
        return mate

    def choose(self, pos):
        """The move to play (None if the game is over for lack of legal moves)."""
        mate = self.forced_win(pos)
        if mate is not None:
            return mate
        return self.pick(pos, self.scored_moves(pos))

    def choose_many(self, positions):
        """:meth:`choose` for many positions (of different games), the model's
        scores in one ``scorer.score_many`` call when the scorer has it."""
        moves = [self.forced_win(pos) for pos in positions]
        todo = [i for i, move in enumerate(moves) if move is None and positions[i].legal_moves()]
        if not hasattr(self.scorer, "score_many"):
            return [move if move is not None else self.pick(pos, self.scored_moves(pos))
                    for move, pos in zip(moves, positions)]
        requests = [(positions[i].moves, positions[i].legal_moves(), self.condition_for(positions[i])) for i in todo]
        for i, (_, legal, _), scores in zip(todo, requests, self.scorer.score_many(requests)):
            moves[i] = self.pick(positions[i], sorted(zip(legal, map(float, scores)), key=lambda ms: -ms[1]))
        return moves

    def pick(self, pos, ranked):
        """The move to play from the legal moves scored best first (``ranked``), by temperature and guard."""
        if not ranked:
            return None
        if self.temperature <= 0:
            order = [m for m, _ in ranked]
        else:  # Gumbel-max: the first move is a sample of softmax(score / T), each next one a sample of the rest
            keyed = [(s / self.temperature - math.log(-math.log(self.rng.random() or 1e-300)), m)
                     for m, s in ranked]
            order = [m for _, m in sorted(keyed, key=lambda km: -km[0])]
        return self.guarded(pos, order)

    def guarded(self, pos, order):
        """The move to play from ``order`` (legal moves, the model's preference
        first): ``order[0]`` without the guard; with it, the first move that
        keeps the material (see ``material_margin``) and has no
        :func:`move_hazard`, else the least bad one."""
        if not self.guard:
            return order[0]
        grid = pos.board()
        sound = None
        if self.material_margin is not None:  # moves that keep the material first, in the model's order
            balance = {mv: move_balance(grid, parse_iccs(mv)) for mv in order}
            floor = max(balance.values()) - self.material_margin
            sound = {mv for mv in order if balance[mv] >= floor}
            order = sorted(order, key=lambda mv: (False, 0.0) if mv in sound else (True, -balance[mv]))
        ahead = is_ahead(pos, grid)  # the same for every candidate: weighed once
        # the first move that is sound and harmless; else the least bad: losing at once is worst,
        # then giving material away, then a draw or repetition when ahead
        best, best_key = order[0], None
        for mv in order:
            unsound = sound is not None and mv not in sound
            if unsound and best_key is not None and best_key <= (False, True, 0):
                break  # nothing unsound after it is better (they come by balance, best first)
            hazard = move_hazard(pos, mv, ahead)
            key = (hazard == 2, unsound, hazard)
            if key == (False, False, 0):
                return mv
            if best_key is None or key < best_key:
                best, best_key = mv, key
        return best

    def hint(self, pos, k=3, probabilities=False):
        """Top ``k`` ``(move, logprob)`` by the model; the move the player would
        play at temperature 0 comes first (a forced win, see :meth:`forced_win`,
        or the guard's choice). ``probabilities``: ``(move, p)`` instead, the
        model's probability of the move among the legal moves (softmax of the
        log-probabilities over every legal move)."""
        ranked = self.scored_moves(pos)
        if not ranked:
            return []
        if probabilities:
            top = ranked[0][1]
            norm = math.log(sum(math.exp(s - top) for _, s in ranked)) + top
            ranked = [(m, math.exp(s - norm)) for m, s in ranked]
        first = self.forced_win(pos) or self.guarded(pos, [m for m, _ in ranked])
        return ([(m, s) for m, s in ranked if m == first] + [(m, s) for m, s in ranked if m != first])[:k]


def mating_move(pos, checks=None):
    """A legal move after which the opponent has no legal move (mate or
    stalemate: both win in Xiangqi), or None. Cheap: only moves that give check
    (``checks``, default :func:`checking_moves`) are tried, on the pure-Python
    grid (:func:`movegen.has_legal_move`, the same legal moves as pyffish's,
    tested, at a fraction of a pyffish call's millisecond)."""
    grid = pos.board()
    them = movegen.other(pos.turn)
    for mv in checking_moves(pos) if checks is None else checks:
        if not movegen.has_legal_move(movegen.apply(grid, parse_iccs(mv)), them):
            return mv
    return None


def checking_moves(pos):
    """The legal moves of the side to move that give check (on the pure-Python grid)."""
    grid = pos.board()
    them = movegen.other(pos.turn)
    return [mv for mv in pos.legal_moves() if movegen.in_check(movegen.apply(grid, parse_iccs(mv)), them)]


def mate_in_two(pos, checks=None):
    """A checking move after which every reply allows a mate in one (or ends
    the game as a win for the side to move), else None: the forced mates in two
    that start with a check (``checks``, default :func:`checking_moves`)."""
    side = pos.turn
    for mv in checking_moves(pos) if checks is None else checks:
        pos.push(mv)
        try:
            out = pos.outcome()
            if out is not None:
                if out.result == side:
                    return mv
                continue
            forced = True
            for reply in pos.legal_moves():
                pos.push(reply)
                try:
                    out = pos.outcome()
                    forced = out.result == side if out is not None else mating_move(pos) is not None
                finally:
                    pos.pop()
                if not forced:
                    break
            if forced:
                return mv
        finally:
            pos.pop()
    return None


def is_ahead(pos, grid=None):
    """True if the side to move has more material than the opponent
    (``grid``: ``pos.board()`` when the caller has it already)."""
    grid = pos.board() if grid is None else grid
    return material(grid, pos.turn) > material(grid, movegen.other(pos.turn))


def move_hazard(pos, mv, ahead=None):
    """How bad legal ``mv`` is on the rules alone, for the side to move:
    2 if it loses at once (the opponent then has a mate in one, or a rule ends
    the game against the mover: perpetual check or chase), 1 if the mover has
    more material (``ahead``, default :func:`is_ahead`) and the move ends the
    game in a draw or repeats an earlier position, else 0."""
    side = pos.turn
    if ahead is None:
        ahead = is_ahead(pos)
    pos.push(mv)
    try:
        out = pos.outcome()
        if out is not None:
            if out.result == side:
                return 0
            return 2 if out.result != "draw" else (1 if ahead else 0)
        if mating_move(pos) is not None:
            return 2
        return 1 if ahead and pos.repetitions() > 1 else 0
    finally:
        pos.pop()


class RandomPlayer:
    """Uniformly random legal moves (the baseline opponent)."""

    def __init__(self, seed=None):
        self.rng = random.Random(seed)

    def choose(self, pos):
        legal = pos.legal_moves()
        return self.rng.choice(legal) if legal else None


class EnginePlayer:
    """fairy-stockfish at a fixed depth (or node count) through ``UciEngine``.

    A search that fails (``EngineError``: the engine hung past the search
    timeout or died) is retried once on a restarted engine, at most
    ``max_restarts`` times in all (counted in ``restarts``), so a long match
    survives a rare engine stall."""

    def __init__(self, engine, depth=None, nodes=None, max_restarts=3):
        self.engine, self.depth, self.nodes = engine, depth, nodes
        self.max_restarts, self.restarts = max_restarts, 0

    def choose(self, pos):
        limits = {k: v for k, v in (("depth", self.depth), ("nodes", self.nodes)) if v is not None}
        try:
            return self.engine.bestmove(pos.start_fen, pos.moves, **limits)
        except EngineError:
            if self.restarts >= self.max_restarts:
                raise
            self.restarts += 1
            self.engine.restart()
            return self.engine.bestmove(pos.start_fen, pos.moves, **limits)


def random_opening(plies, seed):
    """``plies`` uniformly random legal moves from the start (match diversity:
    deterministic players replay the same game otherwise)."""
    rng = random.Random(seed)
    pos = Position()
    for _ in range(plies):
        legal = pos.legal_moves()
        if not legal or pos.outcome() is not None:
            break
        pos.push(rng.choice(legal))
    return pos.moves


def play_game(red, black, max_plies=300, fen=None, on_move=None, opening=()):
    """Play ``red`` vs ``black`` (objects with ``choose(pos)``) after the ICCS
    ``opening`` moves; returns the final Position and its ``Outcome`` (a draw
    with termination 'move_limit' at the cap). ``on_move(pos, move, seconds)``
    is called after each move."""
    import time

    pos = Position(fen)
    pos.push_many(opening)
    while True:
        out = pos.outcome(max_plies=max_plies)
        if out is not None:
            return pos, out
        player = red if pos.turn == movegen.RED else black
        t = time.perf_counter()
        mv = player.choose(pos)
        dt = time.perf_counter() - t
        pos.push(mv)  # raises IllegalMoveError: never silently accepted
        if on_move is not None:
            on_move(pos, mv, dt)


__all__ = ["Player", "RandomPlayer", "EnginePlayer", "mating_move", "mate_in_two", "move_hazard", "material",
           "is_ahead", "checking_moves", "move_balance", "PIECE_VALUES", "play_game", "random_opening",
           "elo_from_score", "match_summary", "score_interval"]
