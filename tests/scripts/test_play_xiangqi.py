"""scripts/play_xiangqi.py: match mode vs the random mover with a tiny random
model (JSON last line, right keys, no illegal move); interactive mode driven by
stdin (illegal input rejected with the reason, undo, hint, save, resign)."""

import io
import json

import pytest

from scripts import play_xiangqi
from toolkit.xiangqi.records import read_pgn

KEYS = {"games", "wins", "draws", "losses", "score", "elo", "elo_low", "elo_high", "illegal_moves",
        "seconds_per_move"}


def test_match_vs_random_prints_json_last_line(tiny_xiangqi_model, capsys):
    assert play_xiangqi.main(["--model", tiny_xiangqi_model, "--opponent", "random", "--games", "2", "--seed", "1",
                              "--max-plies", "40", "--show-board", "--no-color"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    assert KEYS <= set(res)
    assert res["games"] == 2 and res["illegal_moves"] == 0
    assert res["wins"] + res["draws"] + res["losses"] == 2
    assert 0.0 <= res["score"] <= 1.0 and res["elo_low"] <= res["elo"] <= res["elo_high"]
    assert res["seconds_per_move"] > 0
    assert any(line.startswith("game 1/2: model red") for line in out)
    assert any(line.startswith("game 2/2: model black") for line in out)  # colours alternate
    assert any(line == "  a b c d e f g h i" for line in out)  # the final board


def run_interactive(monkeypatch, capsys, model, lines, extra=()):
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(line + "\n" for line in lines)))
    assert play_xiangqi.main(["--model", model, *extra]) == 0
    return capsys.readouterr().out


def test_interactive_illegal_undo_hint_save_resign(tiny_xiangqi_model, monkeypatch, capsys, tmp_path):
    pgn = tmp_path / "game.pgn"
    out = run_interactive(monkeypatch, capsys, tiny_xiangqi_model,
                          ["e0e5", "a6a5", "xyz", "C2=5", "hint", "undo", "undo", "炮二平五", f"save {pgn}",
                           "resign"], extra=["--no-color"])
    assert "illegal move 'e0e5': illegal: piece cannot move there" in out
    assert "illegal move 'a6a5': not your piece" in out
    assert "illegal move 'xyz'" in out
    assert "model plays" in out
    assert "hint: " in out
    assert out.count("undone: h2e2 ") == 1  # C2=5 and its reply taken back, then nothing left
    assert out.index("undone: h2e2 ") < out.index("nothing to undo")
    assert "you resign: black wins" in out
    games, _ = read_pgn(str(pgn))
    assert games[0].moves[0] == "h2e2" and len(games[0].moves) == 2
    assert "\x1b[" not in out  # --no-color


def test_interactive_as_black_and_coloured_board(tiny_xiangqi_model, monkeypatch, capsys):
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = run_interactive(monkeypatch, capsys, tiny_xiangqi_model, ["undo", "resign"], extra=["--color", "black"])
    out_lines = out.splitlines()
    assert out_lines[0].startswith("You play black")
    assert "model plays" in out and "nothing to undo" in out and "you resign: red wins" in out
    assert "\x1b[31;1m" in out and "\x1b[34;1m" in out  # red and black pieces in ANSI colours


def test_material_margin_reaches_the_player_and_bad_values_are_refused(tiny_xiangqi_model, capsys):
    args = play_xiangqi.parse_args(["--model", tiny_xiangqi_model, "--material-margin", "2.5"])
    assert play_xiangqi.load_player(args).material_margin == 2.5
    assert play_xiangqi.parse_args([]).material_margin == 1.0
    with pytest.raises(SystemExit):
        play_xiangqi.parse_args(["--material-margin", "-1"])
    assert "--material-margin must be >= 0" in capsys.readouterr().err
