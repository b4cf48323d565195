"""One interactive Xiangqi game against a player (framework-free): the board as
text, moves in any notation, and the commands ``undo``, ``hint``, ``resign``,
``save FILE``, ``moves``, ``help``, ``quit``. Input and output are streams, so
a game can be driven from a string in a test as well as from the terminal.

>>> import io
>>> from toolkit.xiangqi.player import RandomPlayer
>>> out = io.StringIO()
>>> Session(RandomPlayer(0), io.StringIO("resign\\n"), out).play()
'black'
>>> out.getvalue().splitlines()[-1]
'red to move> you resign: black wins'
"""

import os
import sys
import time

from . import movegen
from .coords import parse_iccs
from .notation import NOTATIONS, bad_move_message, move_names, parse_move
from .records import GameRecord, write_pgn
from .rules import IllegalMoveError, Position

RED_FG, BLACK_FG, DIM, BOLD, RESET, HILITE = "\033[31;1m", "\033[34;1m", "\033[2m", "\033[1m", "\033[0m", "\033[43m"
HELP = f"moves: {NOTATIONS};  commands: undo, hint, resign, save FILE, moves, help, quit"


def _square_text(piece, color, marked):
    if piece == movegen.EMPTY:
        text = (DIM + "+" + RESET) if color else "+"
    elif color:
        text = (RED_FG if piece.isupper() else BLACK_FG) + piece + RESET
    else:
        text = piece
    return HILITE + text + RESET if color and marked else text


def render_board(pos, color=True, last=None):
    """The board, red at the bottom, ranks 9..0 on the left, files a..i below;
    ``color``: ANSI colours (and the squares of the ICCS move ``last`` highlighted)."""
    grid = pos.board()
    marks = set(parse_iccs(last)) if last else set()
    lines = []
    for rank in range(9, -1, -1):
        cells = [_square_text(grid[rank][file], color, (file, rank) in marks) for file in range(9)]
        lines.append(f"{rank} " + " ".join(cells))
        if rank == 5:
            lines.append("  " + ("~" * 17 if not color else DIM + "~" * 17 + RESET))
    lines.append("  a b c d e f g h i")
    return "\n".join(lines)


def last_move_board(pos, color):
    """:func:`render_board` with the last move (if any) marked."""
    return render_board(pos, color=color, last=pos.moves[-1] if pos.moves else None)


def use_color(out, no_color=False, environ=None):
    """ANSI colours on ``out``: a terminal, or ``FORCE_COLOR=1``; never with ``no_color``."""
    environ = os.environ if environ is None else environ
    if no_color:
        return False
    return bool(hasattr(out, "isatty") and out.isatty()) or environ.get("FORCE_COLOR") == "1"


class Session:
    """One interactive game: the player (``choose``/``hint``), the human's colour
    (``human``: 'red' or 'black'), the input and output streams, ANSI colours or
    not, and the game length cap (a game still going after ``max_plies`` is a draw)."""

    def __init__(self, player, inp, out, human="red", color=False, max_plies=300):
        self.player, self.inp, self.out, self.human = player, inp, out, human
        self.color, self.max_plies = color, max_plies
        self.pos = Position()
        self.result = None

    def say(self, *parts):
        print(*parts, file=self.out, flush=True)

    def show(self):
        self.say(last_move_board(self.pos, self.color))

    def model_move(self):
        started = time.perf_counter()
        move = self.player.choose(self.pos)
        names = move_names(self.pos, move)
        self.pos.push(move)
        self.say(f"model plays {names['iccs']}  ({names['wxf']}, {names['chinese']})  "
                 f"[{time.perf_counter() - started:.2f}s]")

    def undo(self):
        """Take back the model's reply and the human's last move."""
        if self.pos.ply < 2 + (self.human == "black"):
            self.say("nothing to undo")
            return
        undone = [self.pos.pop(), self.pos.pop()]
        self.say(f"undone: {' '.join(reversed(undone))}")
        self.show()

    def hint(self):
        hints = self.player.hint(self.pos, k=3)
        self.say("hint: " + ", ".join(f"{move} ({move_names(self.pos, move)['wxf']}, {score:.2f})"
                                      for move, score in hints))

    def save(self, path):
        if not path:
            self.say("usage: save FILE")
            return
        try:
            write_pgn(path, [GameRecord(moves=self.pos.moves, result=None)])
            self.say(f"saved {self.pos.ply} plies to {path}")
        except OSError as error:
            self.say(f"cannot save: {error}")

    def human_move(self, text):
        """Play the human's move and the model's reply, or say in one line why the move is refused."""
        try:
            move = parse_move(self.pos, text)
        except IllegalMoveError as error:
            self.say(bad_move_message(text, error.reason))
            return
        self.pos.push(move)
        if self.pos.outcome(max_plies=self.max_plies) is None:
            self.model_move()
        self.show()

    def command(self, text):
        """Handle one input line; False when the game should stop (quit, resign)."""
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word in ("quit", "exit"):
            return False
        if word == "resign":
            self.result = "black" if self.human == "red" else "red"
            self.say(f"you resign: {self.result} wins")
            return False
        actions = {"help": lambda: self.say(HELP), "undo": self.undo, "hint": self.hint,
                   "moves": lambda: self.say(" ".join(self.pos.moves) or "(no moves yet)"),
                   "save": lambda: self.save(rest.strip())}
        actions.get(word, lambda: self.human_move(text))()
        return True

    def play(self):
        """The game loop; returns the result (None if unfinished: input ended, or quit)."""
        self.say(f"You play {self.human}. {HELP}")
        if self.human == "black":
            self.model_move()
        self.show()
        while True:
            outcome = self.pos.outcome(max_plies=self.max_plies)
            if outcome is not None:
                self.result = outcome.result
                self.say(f"game over: {outcome.result} ({outcome.termination})")
                return self.result
            self.out.write(f"{self.pos.turn} to move> ")
            self.out.flush()
            line = self.inp.readline()
            if not line:
                self.say("")
                return self.result
            text = line.strip()
            if text and not self.command(text):
                return self.result


def play_interactive(player, human="red", inp=None, out=None, color=False, max_plies=300):
    """Play one :class:`Session` (default streams: stdin and stdout); returns the result.
    Ctrl-C prints the game's moves so far (to replay them) and passes the interrupt on."""
    session = Session(player, inp or sys.stdin, out or sys.stdout, human=human, color=color, max_plies=max_plies)
    try:
        return session.play()
    except KeyboardInterrupt:
        moves = " ".join(session.pos.moves)
        print(f"\ngame stopped after {session.pos.ply} plies" + (f"; its moves (ICCS): {moves}" if moves else ""),
              file=session.out, flush=True)
        raise


__all__ = ["HELP", "Session", "play_interactive", "render_board", "last_move_board", "use_color"]
