"""scripts/eval_xiangqi.py as a command with a tiny random model: held-out
accuracy figures, one random-mover match per player kind (guarded and model
alone), the conditioning comparison, the JSON file and the report lines (no Elo
from two games); bad options and files as one-line errors; --help. The pieces
themselves are tested in tests/toolkit/test_xiangqi_evaluation.py."""

import json
import os
import subprocess
import sys

import pytest

from toolkit.xiangqi.player import RandomPlayer, play_game
from toolkit.xiangqi.records import GameRecord, append_game, read_games
from toolkit.xiangqi.training_data import split_games

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "eval_xiangqi.py")


def test_eval_reports_both_player_kinds(tiny_xiangqi_model, tmp_path):
    games = tmp_path / "games.jsonl"
    for i in range(8):
        pos, out = play_game(RandomPlayer(i), RandomPlayer(100 + i), max_plies=12)
        append_game(str(games), GameRecord(moves=pos.moves, result="draw", termination=out.termination))
    held_out = split_games(read_games(str(games))[0], 0.5)[1]
    assert held_out  # the split is a hash of the moves: at 0.5 some of 8 games are held out
    out_json = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, SCRIPT, "--model", tiny_xiangqi_model, "--games", str(games),
                           "--val-fraction", "0.5", "--positions", "6", "--random-games", "2", "--engine-games", "0",
                           "--conditioning-games", "2", "--max-plies", "24", "--players", "guarded", "model",
                           "--json", str(out_json), "--note", "Both parts ran at once."],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res == json.loads(out_json.read_text()) and res["complete"] is True
    assert res["val_games"] == len(held_out)
    for key in ("accuracy_any", "accuracy_own"):
        a = res[key]
        assert a["positions"] == 6 and 0 <= a["top1_accuracy"] <= 1
        assert 0 <= a["greedy_legal_rate"] <= 1 and 0 <= a["top_move_legal_rate"] <= 1
    matches = res["matches"]
    assert set(matches) == {"vs random mover (guarded, own-win token)",
                            "vs random mover (model + mate in one, own-win token)",
                            "vs random mover (guarded, `<any>` token)"}
    for s in matches.values():
        assert s["games"] == 2 and s["illegal_moves"] == 0 and s["wins"] + s["draws"] + s["losses"] == 2
    assert res["conditioning"]["player"] == "guarded" and res["conditioning"]["games"] == 2
    assert res["note"] == "Both parts ran at once." and "--note" not in res["commands"][-1]
    assert res["commands"][-1].startswith(f"python scripts/eval_xiangqi.py --model {tiny_xiangqi_model} --games ")
    body = proc.stdout[:proc.stdout.rindex("\n{")]  # the report, then the JSON line
    assert body.startswith("Machine: ") and f"model `{tiny_xiangqi_model}`." in body.splitlines()[0]
    assert "\nBoth parts ran at once.\n" in body
    assert "| vs random mover (guarded, own-win token) | 2 |" in body
    assert "| n/a (2 games; an Elo estimate needs >= 10) |" in body  # no point estimate from two games
    assert "Conditioning (random mover, guarded player)" in body
    assert "[accuracy <any>] {" in proc.stderr and "[cond any] {" in proc.stderr


@pytest.mark.parametrize("args,needles", [
    (["--model", "{tmp}/no_model"], ["--model {tmp}/no_model: no such directory", "config.json"]),
    (["--games", "{tmp}/none.jsonl"], ["--games {tmp}/none.jsonl: no such file"]),
    (["--merge", "{tmp}/bad.json"], ["--merge {tmp}/bad.json: not JSON", "--json file of an earlier run"]),
    (["--engine-depths", "1", "0"], ["--engine-depths must all be >= 1, got 0"]),
    (["--val-fraction", "1.5"], ["--val-fraction must lie in [0, 1]"]),
    (["--random-games", "-1"], ["--random-games must be >= 0, got -1"]),
    (["--max-plies", "0"], ["--max-plies must be >= 1, got 0"]),
    (["--opening-plies", "0", "--engine-games", "10"], ["--opening-plies 0 replays the same 2 games"]),
    (["--engine", "{tmp}/no_engine"], ["{tmp}/no_engine", "apt-get install fairy-stockfish"]),
])
def test_bad_input_is_a_one_line_error(tmp_path, args, needles):
    (tmp_path / "bad.json").write_text("{not json")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle.replace("{tmp}", str(tmp_path)) in lines[0]


def test_help_shows_defaults_and_the_example_as_written():
    proc = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps the option help
    for shown in ("for the engine matches (default: [1, 3])", "random opening plies per pair of games",
                  "(default: 2)", "(default: 0.05)", "(default: 600)"):
        assert shown in text
    assert "    python scripts/eval_xiangqi.py --games games.jsonl --positions 600 \\\n" in proc.stdout
