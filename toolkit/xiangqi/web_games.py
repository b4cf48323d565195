"""The games of the Xiangqi web page (framework-free): one :class:`WebGame`
per id, its state as JSON-ready dicts, and the :class:`GameStore` that keeps
them in memory with an idle expiry and a cap on open games.

A game is a person (``human``: 'red' or 'black') against a player; the
caller asks the player for the replies (:meth:`WebGame.model_to_move`,
:meth:`WebGame.push`), so this module never runs a model. Every refusal is a
:class:`GameError` with the HTTP status it maps to and one line saying why.

>>> store = GameStore(max_games=2, idle_seconds=60)
>>> game = store.create("red")
>>> game.play_human("炮二平五")["chinese"], game.state()["turn"]
('炮二平五', 'black')
>>> store.get("nope")
Traceback (most recent call last):
...
toolkit.xiangqi.web_games.GameError: unknown game id 'nope' (it may have expired after 60 s idle): start a new game
"""

import re
import secrets
import threading
import time

from .notation import bad_move_message, move_names, parse_move
from .records import GameRecord, pgn_text
from .rules import START_FEN, IllegalMoveError, InvalidFenError, Position

SIDES = ("red", "black")
TERMINATION_TEXT = {
    "checkmate": "checkmate", "stalemate": "stalemate (no legal move: a loss in Xiangqi)",
    "perpetual_check": "perpetual check (the repetition rule)", "perpetual_chase": "perpetual chase "
    "(the repetition rule)", "repetition": "repetition", "move_rule": "the 50-move rule",
    "insufficient_material": "insufficient material", "move_limit": "the ply cap", "rule": "a rule of the game",
}
GAME_ID = re.compile(r"^[0-9a-f]{16}$")


class GameError(ValueError):
    """A request the games refuse: ``status`` (404 unknown game, 409 not now,
    422 a bad move or value, 503 too many games) and the message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def outcome_text(outcome):
    """'red wins by checkmate', 'draw by repetition', ..."""
    how = TERMINATION_TEXT.get(outcome.termination, outcome.termination.replace("_", " "))
    return f"draw by {how}" if outcome.result == "draw" else f"{outcome.result} wins by {how}"


class WebGame:
    """One game: the person's colour, the position (from ``fen``, default the
    standard start), the names of the moves played and the ply cap."""

    def __init__(self, game_id, human="red", fen=None, max_plies=300):
        if human not in SIDES:
            raise GameError(422, f"color must be 'red' or 'black', got {human!r}")
        try:
            self.pos = Position(fen)
        except (InvalidFenError, ValueError) as error:
            raise GameError(422, f"bad fen {fen!r}: {error}") from None
        self.id, self.human, self.max_plies = game_id, human, int(max_plies)
        self.names = []  # per ply: {'iccs', 'wxf', 'chinese', 'side'}
        self.touched = time.monotonic()

    def outcome(self):
        return self.pos.outcome(max_plies=self.max_plies)

    def model_to_move(self):
        return self.outcome() is None and self.pos.turn != self.human

    def push(self, move, after=None):
        """Play a legal ICCS move (either side); returns its names. ``after``: the
        position after it, already computed (the player's worker): taken as the
        game's when it is this game one move on."""
        names = dict(move_names(self.pos, move), side=self.pos.turn)
        if after is not None and after.start_fen == self.pos.start_fen and after.moves == self.pos.moves + [move]:
            self.pos = after
        else:
            self.pos.push(move)
        self.names.append(names)
        return names

    def play_human(self, text):
        """The person's move in ICCS, WXF or Chinese; GameError if it is not theirs to play or not legal."""
        self.check_going()
        if self.pos.turn != self.human:
            raise GameError(409, f"it is {self.pos.turn}'s move, not yours ({self.human}): wait for the reply")
        if not isinstance(text, str) or not text.strip() or len(text) > 16:
            raise GameError(422, f"move must be a short string such as 'h2e2', 'C2=5' or '炮二平五', got {text!r}")
        try:
            move = parse_move(self.pos, text.strip())
        except IllegalMoveError as error:
            raise GameError(422, bad_move_message(text.strip(), error.reason)) from None
        return self.push(move)

    def check_going(self):
        outcome = self.outcome()
        if outcome is not None:
            raise GameError(409, f"the game is over: {outcome_text(outcome)}; start a new game or undo")

    def undo(self):
        """Take back the person's last move and the reply to it (only the move if
        it ended the game); returns the ICCS moves taken back."""
        mine = [i for i, names in enumerate(self.names) if names["side"] == self.human]
        if not mine:
            raise GameError(409, "nothing to undo: you have not moved yet")
        undone = []
        while len(self.names) > mine[-1]:
            undone.insert(0, self.pos.pop())
            self.names.pop()
        return undone

    def pgn(self):
        outcome = self.outcome()
        fen = None if self.pos.start_fen == START_FEN else self.pos.start_fen
        record = GameRecord(moves=self.pos.moves, result=outcome.result if outcome else None, fen=fen)
        players = {"red": "You", "black": "Xiangqi GPT"} if self.human == "red" else \
            {"red": "Xiangqi GPT", "black": "You"}
        headers = {"Red": players["red"], "Black": players["black"]}
        if outcome is not None:
            headers["Termination"] = outcome_text(outcome)
        return pgn_text([record], headers)

    def state(self):
        """The game as a JSON-ready dict: board ranks 0-9 (FEN letters, '.'
        empty), moves with their names, the legal moves when it is the person's
        turn, check, and the result once the game is over."""
        outcome = self.outcome()
        grid = self.pos.board()
        yours = outcome is None and self.pos.turn == self.human
        return {
            "id": self.id, "human": self.human, "turn": self.pos.turn, "ply": self.pos.ply,
            "fen": self.pos.fen(), "board": ["".join(row) for row in grid], "moves": list(self.names),
            "last": self.names[-1]["iccs"] if self.names else None, "check": self.pos.is_check(),
            "legal": self.pos.legal_moves() if yours else [], "max_plies": self.max_plies,
            "over": None if outcome is None else {"result": outcome.result, "termination": outcome.termination,
                                                  "text": outcome_text(outcome)},
        }


class GameStore:
    """Open games by id, in memory: at most ``max_games`` (a new game beyond
    them is refused with 503), each dropped after ``idle_seconds`` without a
    request. Ids are 16 random hex digits (``secrets``): not guessable."""

    def __init__(self, max_games=200, idle_seconds=3600, clock=time.monotonic):
        self.max_games, self.idle_seconds, self.clock = int(max_games), float(idle_seconds), clock
        self.games = {}
        self.lock = threading.Lock()

    def __len__(self):
        return len(self.games)

    def expire(self):
        """Drop the games idle for ``idle_seconds``; returns how many."""
        now = self.clock()
        with self.lock:
            old = [gid for gid, game in self.games.items() if now - game.touched > self.idle_seconds]
            for gid in old:
                del self.games[gid]
        return len(old)

    def create(self, human="red", fen=None, max_plies=300):
        self.expire()
        game = WebGame(secrets.token_hex(8), human, fen, max_plies)
        with self.lock:
            if len(self.games) >= self.max_games:
                raise GameError(503, f"too many open games ({self.max_games}, each kept {self.idle_seconds:g} s "
                                     f"after its last move): try again later")
            game.touched = self.clock()
            self.games[game.id] = game
        return game

    def get(self, game_id):
        self.expire()
        game = self.games.get(game_id) if isinstance(game_id, str) and GAME_ID.match(game_id) else None
        if game is None:
            raise GameError(404, f"unknown game id {str(game_id)[:40]!r} (it may have expired after "
                                 f"{self.idle_seconds:g} s idle): start a new game")
        game.touched = self.clock()
        return game


__all__ = ["GameError", "GameStore", "WebGame", "SIDES", "outcome_text"]
