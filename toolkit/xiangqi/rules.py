"""Xiangqi positions and game results, with pyffish as the rules authority.

:class:`Position` (alias :data:`Game`) keeps a start FEN and the moves played
since, in ICCS. Legal moves, check, mate, stalemate (a loss for the side to
move in Xiangqi), repetition, perpetual check/chase and the n-move rule all
come from pyffish (variant ``"xiangqi"``); moves cross to pyffish only through
:mod:`toolkit.xiangqi.coords`.

>>> pos = Position()
>>> pos.turn, len(pos.legal_moves())
('red', 44)
>>> pos.push("h2e2"); pos.push("h9g7"); pos.moves
['h2e2', 'h9g7']
>>> pos.pop(), pos.turn
('h9g7', 'black')
>>> Position.from_fen("3k5/9/9/9/9/9/9/9/9/3RK4 b - - 0 1").outcome()
Outcome(result='red', termination='checkmate')
>>> Position.from_fen("3k5/4R4/9/9/9/9/9/9/9/4K4 b - - 0 1").outcome()
Outcome(result='red', termination='stalemate')

Outcomes are ``None`` while the game goes on, else ``(result, termination)``
with ``result`` in ``{'red', 'black', 'draw'}`` and ``termination`` one of
``checkmate``, ``stalemate``, ``perpetual_check``, ``perpetual_chase``,
``repetition``, ``move_rule`` (pyffish's 100 plies without capture),
``insufficient_material`` (neither side has an attacking piece), ``move_limit``
(the caller's ply cap) or ``rule`` (any other end pyffish reports).

pyffish 0.0.90 notes (what this module works around):

* every call costs about a millisecond of CPU whatever it does (it rebuilds a
  position each time), so legal moves are cached per ply, FENs of earlier
  plies and check flags are computed on demand, and a whole game is validated
  with one ``get_fen`` call (:func:`first_illegal` bisects only on failure);
* an illegal move in a move list raises ``SystemError`` wrapping
  ``ValueError("Invalid move ...")``;
* ``game_result`` and the ``is_*_game_end`` values are from the side to
  move's point of view and meaningless when the game is not over (-32000 at
  the start position); stalemate is -32000 (a loss) like mate;
* ``gives_check(fen, moves)`` means "the side to move is in check after
  ``moves``";
* repetition (3-fold), perpetual check (a loss for the checker) and the
  n-move rule (100 plies without capture) come from ``is_optional_game_end``,
  never from ``is_immediate_game_end``;
* two bare generals give ``has_insufficient_material == (True, True)`` but no
  game end: this module calls it a draw;
* ``validate_fen`` accepts ``h``/``e`` letters, facing generals and pieces on
  impossible points, and prints its complaints on the C-level stderr.
"""

import functools
import os
from typing import NamedTuple

import pyffish as sf

from . import movegen
from .coords import iccs_to_uci, normalize_iccs, parse_iccs, parse_square, uci_to_iccs

VARIANT = "xiangqi"
RED, BLACK = movegen.RED, movegen.BLACK
START_FEN = sf.start_fen(VARIANT)
RESULTS = (RED, BLACK, "draw")
TERMINATIONS = ("checkmate", "stalemate", "perpetual_check", "perpetual_chase", "repetition",
                "move_rule", "insufficient_material", "move_limit", "rule")


class IllegalMoveError(ValueError):
    """A move that cannot be played here. ``reason`` is one of ``"no piece there"``,
    ``"not your piece"``, ``"illegal: leaves general in check"``,
    ``"illegal: piece cannot move there"``, ``"ambiguous"``, ``"unparseable"``."""

    def __init__(self, reason, move=None, fen=None):
        self.reason, self.move, self.fen = reason, move, fen
        msg = reason if move is None else f"{reason}: {move!r}"
        super().__init__(msg if fen is None else f"{msg} in {fen}")


class InvalidFenError(ValueError):
    """A FEN that is not a legal xiangqi position."""


class Outcome(NamedTuple):
    result: str
    termination: str


# pyffish answers for a FEN (and for a game, for the rule ends) never change: the guard and a web
# server ask the same ones again and again (every call costs about a millisecond), so they are kept
CACHED_ANSWERS = 1 << 16
_UNKNOWN = False  # an outcome not asked for yet (outcomes are None or an Outcome; False survives pickling)


@functools.lru_cache(maxsize=CACHED_ANSWERS)
def _next_fen(fen, uci):
    return sf.get_fen(VARIANT, fen, [uci])


@functools.lru_cache(maxsize=CACHED_ANSWERS)
def _legal_of(fen):
    return frozenset(sf.legal_moves(VARIANT, fen, []))


@functools.lru_cache(maxsize=CACHED_ANSWERS)
def _in_check(fen):
    return bool(sf.gives_check(VARIANT, fen, []))


@functools.lru_cache(maxsize=CACHED_ANSWERS)
def _immediate_end(start_fen, ucis):
    return sf.is_immediate_game_end(VARIANT, start_fen, list(ucis))


def _quiet(fn, *args):
    """Call a pyffish function with its C++ stderr chatter silenced."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (unusual embedding): just call
        return fn(*args)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return fn(*args)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def normalize_fen(fen=None):
    """Canonical pyffish FEN; ``None``/``''``/``'startpos'`` = standard start.

    Accepts ``h``/``e`` for horse/elephant, ``r`` for red to move and missing
    move counters. Raises :class:`InvalidFenError` for anything pyffish rejects,
    for a piece on a point it can never reach (pyffish accepts those), and
    where the side *not* to move is in check (its general could be taken).
    """
    if fen is None or not str(fen).strip() or str(fen).strip() == "startpos":
        return START_FEN
    parts = str(fen).strip().split()
    if len(parts) >= 2 and parts[1].lower() in ("r", "red"):
        parts[1] = "w"
    elif len(parts) >= 2 and parts[1].lower() == "black":
        parts[1] = "b"
    elif len(parts) == 1:
        parts.append("w")
    parts[1] = parts[1].lower()
    while len(parts) < 6:
        parts.append(["-", "-", "0", "1"][len(parts) - 2])
    candidate = " ".join(parts[:6])
    if _quiet(sf.validate_fen, candidate, VARIANT) != sf.FEN_OK:
        raise InvalidFenError(f"not a valid xiangqi FEN: {fen!r}")
    canonical = sf.get_fen(VARIANT, candidate, [])
    grid = movegen.grid_from_fen(canonical)
    bad = movegen.misplaced(grid)
    if bad:
        raise InvalidFenError(f"{bad}: {fen!r}")
    mover = RED if canonical.split()[1] == "w" else BLACK
    if movegen.in_check(grid, movegen.other(mover)):
        raise InvalidFenError(f"the side not to move is in check (or the generals face each other): {fen!r}")
    return canonical


def _side(fen):
    return RED if fen.split()[1] == "w" else BLACK


def _key(fen):
    return " ".join(fen.split()[:2])


class Position:
    """A game in progress: start FEN + ICCS moves, with push/pop.

    >>> p = Position.from_moves(["h2e2", "h9g7"])
    >>> p.fen()
    'rnbakab1r/9/1c4nc1/p1p1p1p1p/9/9/P1P1P1P1P/1C2C4/9/RNBAKABNR w - - 2 2'
    >>> p.board()[2][4], p.piece_at("g7")
    ('C', 'n')

    Every pyffish call costs about a millisecond whatever it does (see the
    module notes), so the position caches legal moves per ply, computes the
    check flag and earlier FENs only when asked, and :meth:`from_moves`
    replays a whole move list with one call.
    """

    def __init__(self, fen=None):
        fen = normalize_fen(fen)
        self.start_fen = fen
        self._fens = [fen]      # FEN after each ply (None = not computed yet)
        self._moves = []        # ICCS
        self._uci = []          # the same moves in pyffish coordinates
        self._checks = [None]   # side to move in check, per ply (lazy)
        self._legal = [None]    # frozenset of UCI legal moves, per ply (lazy)
        self._ends = [_UNKNOWN]  # the rules' outcome (None: the game goes on), per ply (lazy)

    @classmethod
    def from_fen(cls, fen=None):
        return cls(fen)

    @classmethod
    def from_moves(cls, moves, fen=None):
        """Replay ICCS ``moves`` from ``fen`` (one pyffish call when all are legal);
        IllegalMoveError for the first bad one."""
        pos = cls(fen)
        moves = list(moves)
        try:
            ucis = [iccs_to_uci(m) for m in moves]
            final = sf.get_fen(VARIANT, pos.start_fen, ucis) if ucis else None
        except Exception:  # pyffish raises SystemError(ValueError) for an illegal move
            pos.push_many(moves)  # slow path: finds and reports the first bad move
            return pos
        if ucis:
            pos._moves = [normalize_iccs(m) for m in moves]
            pos._uci = ucis
            pos._fens = [pos.start_fen] + [None] * (len(ucis) - 1) + [final]
            pos._checks = [None] * (len(ucis) + 1)
            pos._legal = [None] * (len(ucis) + 1)
            pos._ends = [_UNKNOWN] * (len(ucis) + 1)
        return pos

    def copy(self):
        new = object.__new__(Position)
        new.start_fen = self.start_fen
        new._fens, new._moves, new._uci = list(self._fens), list(self._moves), list(self._uci)
        new._checks, new._legal, new._ends = list(self._checks), list(self._legal), list(self._ends)
        return new

    def _fen_at(self, i):
        if self._fens[i] is None:
            self._fens[i] = sf.get_fen(VARIANT, self.start_fen, self._uci[:i])
        return self._fens[i]

    def _check_at(self, i):
        if self._checks[i] is None:
            self._checks[i] = _in_check(self._fen_at(i))
        return self._checks[i]

    # --- state --------------------------------------------------------------
    @property
    def turn(self):
        """Side to move: ``'red'`` or ``'black'``."""
        return _side(self._fens[-1])

    side_to_move = turn

    @property
    def moves(self):
        """ICCS moves played since the start FEN (a copy)."""
        return list(self._moves)

    @property
    def ply(self):
        return len(self._moves)

    def fen(self):
        return self._fens[-1]

    def board(self):
        """10x9 grid ``board()[rank][file]`` of FEN letters (``'.'`` empty);
        rank 0 is red's back rank, file 0 is ``a``, so ``board()[r][f]`` is the
        ICCS square ``'abcdefghi'[f] + str(r)``."""
        return movegen.grid_from_fen(self._fens[-1])

    def piece_at(self, sq):
        """FEN letter on an ICCS square, or None."""
        f, r = parse_square(sq)
        p = self.board()[r][f]
        return None if p == movegen.EMPTY else p

    def __str__(self):
        grid = self.board()
        rows = [f"{r} " + " ".join(grid[r]) for r in range(9, -1, -1)]
        rows.append("  a b c d e f g h i")
        return "\n".join(rows)

    def __repr__(self):
        return f"Position({self.fen()!r}, ply={self.ply})"

    # --- moves --------------------------------------------------------------
    def _legal_uci(self):
        if self._legal[-1] is None:
            self._legal[-1] = _legal_of(self._fens[-1])
        return self._legal[-1]

    def legal_moves(self):
        """Sorted ICCS legal moves of the side to move."""
        return sorted(uci_to_iccs(m) for m in self._legal_uci())

    def is_legal(self, move):
        try:
            return iccs_to_uci(move) in self._legal_uci()
        except ValueError:
            return False

    def illegal_reason(self, move):
        """Why ICCS ``move`` is not legal here (None if it is)."""
        try:
            frm, to = parse_iccs(move)
        except ValueError:
            return "unparseable"
        if self.is_legal(move):
            return None
        grid = self.board()
        piece = grid[frm[1]][frm[0]]
        if piece == movegen.EMPTY:
            return "no piece there"
        if movegen.side_of(piece) != self.turn:
            return "not your piece"
        if (frm, to) in movegen.pseudo_legal_moves(grid, self.turn):
            return "illegal: leaves general in check"
        return "illegal: piece cannot move there"

    def push(self, move):
        """Play ICCS ``move`` (``h2e2``; ``H2-E2`` accepted); IllegalMoveError if illegal."""
        try:
            mv = normalize_iccs(move)
        except ValueError:
            raise IllegalMoveError("unparseable", move, self.fen()) from None
        uci = iccs_to_uci(mv)
        if uci not in self._legal_uci():
            raise IllegalMoveError(self.illegal_reason(mv), move, self.fen())
        self._fens.append(_next_fen(self._fens[-1], uci))
        self._moves.append(mv)
        self._uci.append(uci)
        self._checks.append(None)
        self._legal.append(None)
        self._ends.append(_UNKNOWN)

    def push_many(self, moves):
        for mv in moves:
            self.push(mv)

    def pop(self):
        """Undo the last move and return it (ICCS)."""
        if not self._moves:
            raise IndexError("pop from a position with no moves")
        self._fens.pop()
        self._uci.pop()
        self._checks.pop()
        self._legal.pop()
        self._ends.pop()
        self._fen_at(len(self._moves) - 1)
        return self._moves.pop()

    def is_check(self):
        """True if the side to move is in check."""
        return self._check_at(len(self._moves))

    def gives_check(self, move):
        """True if legal ICCS ``move`` puts the opponent in check."""
        return bool(sf.gives_check(VARIANT, self._fens[-1], [iccs_to_uci(move)]))

    # --- results ------------------------------------------------------------
    def _winner(self, value):
        """pyffish values are from the side to move's point of view."""
        if value == 0:
            return "draw"
        return self.turn if value > 0 else movegen.other(self.turn)

    def repetitions(self):
        """How many times the current position (board + side to move) has occurred."""
        k = _key(self._fens[-1])
        return sum(1 for i in range(len(self._fens)) if _key(self._fen_at(i)) == k)

    def _perpetual_kind(self, loser):
        """'perpetual_check' if every move of ``loser`` in the last cycle gave check."""
        n = len(self._moves)
        k = _key(self._fens[-1])
        prev = [i for i in range(n) if _key(self._fen_at(i)) == k]
        start = prev[-1] if prev else 0
        loser_moves = [i for i in range(start, n) if _side(self._fen_at(i)) == loser]
        if loser_moves and all(self._check_at(i + 1) for i in loser_moves):
            return "perpetual_check"
        return "perpetual_chase"

    def _halfmove_clock(self):
        parts = self._fens[-1].split()
        return int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else 0

    def _may_be_optional_end(self):
        """Cheap pre-check: pyffish's optional ends (n-fold repetition, n-move
        rule) need a repeated position or a long quiet stretch."""
        if any(f is None for f in self._fens):
            return True
        return self._halfmove_clock() >= 60 or self.repetitions() >= 2

    def outcome(self, max_plies=None):
        """None while the game goes on, else ``Outcome(result, termination)``.

        ``max_plies``: a ply cap; reaching it without a rules end is a draw
        with termination ``'move_limit'``.
        """
        if self._ends[-1] is _UNKNOWN:  # the rules' answer, once per ply
            self._ends[-1] = self._rules_outcome()
        if self._ends[-1] is not None:
            return self._ends[-1]
        if max_plies is not None and len(self._moves) >= max_plies:
            return Outcome("draw", "move_limit")
        return None

    def _rules_outcome(self):
        if not self._legal_uci():
            value = sf.game_result(VARIANT, self.start_fen, self._uci)
            return Outcome(self._winner(value), "checkmate" if self.is_check() else "stalemate")
        ended, value = _immediate_end(self.start_fen, tuple(self._uci))
        if ended:
            return Outcome(self._winner(value), "rule")
        if self._may_be_optional_end():
            ended, value = sf.is_optional_game_end(VARIANT, self.start_fen, self._uci)
            if ended:
                winner = self._winner(value)
                if winner != "draw":
                    return Outcome(winner, self._perpetual_kind(movegen.other(winner)))
                return Outcome("draw", "move_rule" if self._halfmove_clock() >= 100 else "repetition")
        board = self._fens[-1].split()[0]
        if not any(c in board for c in "RNCPrncp"):  # pyffish agrees: no attackers = insufficient
            red_short, black_short = sf.has_insufficient_material(VARIANT, self._fens[-1], [])
            if red_short and black_short:
                return Outcome("draw", "insufficient_material")
        return None

    def is_game_over(self, max_plies=None):
        return self.outcome(max_plies) is not None


Game = Position


def replay(moves, fen=None):
    """FEN after ICCS ``moves`` from ``fen`` in one pyffish call; ValueError if any is illegal."""
    try:
        ucis = [iccs_to_uci(m) for m in moves]
    except ValueError as e:
        raise ValueError(str(e)) from None
    try:
        return sf.get_fen(VARIANT, normalize_fen(fen), ucis)
    except InvalidFenError:
        raise
    except Exception as e:  # pyffish: SystemError wrapping ValueError("Invalid move ...")
        raise ValueError(str(e.__cause__ or e)) from None


def first_illegal(moves, fen=None):
    """Index of the first illegal (or non-ICCS) move in ``moves`` from ``fen``;
    None if all are legal. One pyffish call when the game is fine, a bisection
    (about log2(len) calls) when it is not.

    >>> first_illegal(["h2e2", "h9g7", "e2e9"]) , first_illegal(["h2e2", "h9g7"])
    (2, None)
    """
    moves = list(moves)
    fen = normalize_fen(fen)
    try:
        replay(moves, fen)
        return None
    except ValueError:
        pass
    good, bad = 0, len(moves)  # moves[:good] replays, moves[:bad] does not
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            replay(moves[:mid], fen)
            good = mid
        except ValueError:
            bad = mid
    return bad - 1


__all__ = ["Position", "Game", "Outcome", "IllegalMoveError", "InvalidFenError", "normalize_fen",
           "first_illegal", "replay", "START_FEN", "VARIANT", "RED", "BLACK", "RESULTS", "TERMINATIONS"]
