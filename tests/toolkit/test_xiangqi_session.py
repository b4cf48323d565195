"""toolkit.xiangqi.session: an interactive game driven through string streams with
a cheap fake scorer (illegal input rejected with the reason, undo, hint, save,
resign, quit, end of input, the game-length cap), the coloured board, and Ctrl-C
printing the moves so far."""

import io

import pytest

from toolkit.xiangqi.player import Player
from toolkit.xiangqi.records import read_pgn
from toolkit.xiangqi.rules import Position
from toolkit.xiangqi.session import HELP, Session, play_interactive, render_board, use_color


class FirstMoveScorer:
    """Prefers the legal moves in their listed order: cheap and the same every run."""

    def score(self, history, candidates, condition=None):
        return [-float(rank) for rank in range(len(candidates))]


def play(lines, **settings):
    out = io.StringIO()
    session = Session(Player(FirstMoveScorer()), io.StringIO("".join(line + "\n" for line in lines)), out,
                      **settings)
    return session.play(), out.getvalue(), session


def test_illegal_undo_hint_save_resign(tmp_path):
    pgn = tmp_path / "game.pgn"
    result, out, _ = play(["e0e5", "a6a5", "xyz", "C2=5", "hint", "undo", "undo", "炮二平五", f"save {pgn}",
                           "resign"])
    assert result == "black"
    assert out.startswith(f"You play red. {HELP}\n")
    assert "illegal move 'e0e5': the piece cannot move there" in out
    assert "illegal move 'a6a5': not your piece" in out
    assert "cannot read 'xyz' as a move: use ICCS h2e2, WXF C2=5 or Chinese 炮二平五 ('help' lists the commands)" \
        in out
    assert out.count("model plays ") == 2
    hint = next(line for line in out.splitlines() if "hint: " in line)
    assert hint.count(" (") == 3  # three moves, each with its WXF name and score
    assert out.count("undone: h2e2 ") == 1  # C2=5 and its reply taken back, then nothing left
    assert out.index("undone: h2e2 ") < out.index("nothing to undo")
    assert f"saved 2 plies to {pgn}" in out
    assert out.rstrip().endswith("you resign: black wins")
    games, _ = read_pgn(str(pgn))
    assert games[0].moves[0] == "h2e2" and len(games[0].moves) == 2
    assert "\x1b[" not in out  # no colours unless asked


def test_as_black_with_a_coloured_board():
    result, out, session = play(["undo", "moves", "resign"], human="black", color=True)
    assert out.splitlines()[0].startswith("You play black")
    assert "model plays" in out and "nothing to undo" in out and "you resign: red wins" in out
    assert result == "red" and session.pos.ply == 1
    assert f"> {session.pos.moves[0]}\n" in out  # 'moves' lists the model's first move
    assert "\x1b[31;1m" in out and "\x1b[34;1m" in out  # red and black pieces in ANSI colours
    assert "\x1b[43m" in out  # the last move's squares highlighted


def test_quit_end_of_input_help_and_a_bad_save(tmp_path):
    result, out, _ = play(["help", "save", f"save {tmp_path}", "quit", "h2e2"])
    assert result is None and out.count(HELP) == 2
    assert "usage: save FILE" in out and "cannot save: " in out
    assert "model plays" not in out  # quit stopped the game before 'h2e2'
    result, out, session = play(["h2e2"])
    assert result is None and session.pos.ply == 2 and out.endswith("to move> \n")  # input ended


def test_the_length_cap_ends_the_game_as_a_draw():
    result, out, session = play(["h2e2", "h0g2"], max_plies=2)
    assert result == "draw" and session.pos.ply == 2
    assert out.rstrip().endswith("game over: draw (move_limit)")


class InterruptAfter(io.StringIO):
    """Input that gives its lines, then Ctrl-C."""

    def readline(self, *args):
        line = super().readline(*args)
        if not line:
            raise KeyboardInterrupt
        return line


def test_ctrl_c_prints_the_moves_so_far_and_passes_the_interrupt_on():
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        play_interactive(Player(FirstMoveScorer()), inp=InterruptAfter("h2e2\n"), out=out)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("game stopped after 2 plies; its moves (ICCS): h2e2 ")
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        play_interactive(Player(FirstMoveScorer()), inp=InterruptAfter(""), out=out)
    assert out.getvalue().splitlines()[-1] == "game stopped after 0 plies"


def test_board_and_colour_choice():
    pos = Position.from_moves(["h2e2"])
    lines = render_board(pos, color=False, last="h2e2").splitlines()
    assert len(lines) == 12 and lines[0] == "9 r n b a k a b n r" and lines[-1] == "  a b c d e f g h i"
    assert lines[5] == "  " + "~" * 17 and lines[8] == "2 + C + + C + + + +"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert use_color(Terminal(), environ={}) and not use_color(Terminal(), no_color=True, environ={})
    assert not use_color(io.StringIO(), environ={}) and use_color(io.StringIO(), environ={"FORCE_COLOR": "1"})
    assert not use_color(io.StringIO(), no_color=True, environ={"FORCE_COLOR": "1"})
