"""scripts/play_xiangqi.py as a command: a short match vs the random mover with a
tiny random model (JSON last line, right keys, no illegal move, the score
interval, the final boards); bad options, a missing model or engine, and Ctrl-C
in interactive play as one line without a traceback; --help. The match and the
interactive game themselves are tested in tests/toolkit/test_xiangqi_match.py
and test_xiangqi_session.py."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "play_xiangqi.py")
KEYS = {"games", "wins", "draws", "losses", "score", "score_low", "score_high", "elo", "elo_low", "elo_high",
        "illegal_moves", "seconds_per_move", "openings", "distinct_games"}


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_an_int8_model_plays_a_legal_match(tiny_xiangqi_model, backend):
    """--int8: Keras' int8 weights; on torch the move scoring runs the fbgemm decoder."""
    proc = subprocess.run([sys.executable, SCRIPT, "--model", tiny_xiangqi_model, "--int8", "--opponent", "random",
                           "--games", "1", "--seed", "2", "--max-plies", "30"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=dict(os.environ, KERAS_BACKEND=backend))
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["games"] == 1 and res["illegal_moves"] == 0


def test_match_vs_random_prints_json_last_line(tiny_xiangqi_model):
    proc = run_script("--model", tiny_xiangqi_model, "--opponent", "random", "--games", "2", "--seed", "1",
                      "--max-plies", "40", "--show-board", "--no-color", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # no start-up log without --verbose
    out = proc.stdout.strip().splitlines()
    res = json.loads(out[-1])
    assert KEYS <= set(res)
    assert res["games"] == 2 and res["illegal_moves"] == 0
    assert res["wins"] + res["draws"] + res["losses"] == 2
    assert 0.0 <= res["score_low"] <= res["score"] <= res["score_high"] <= 1.0
    assert res["elo"] is None  # two games: no point estimate
    assert res["opening_plies"] == 0 and res["openings"] == 1  # the random mover: from the start position
    assert res["seconds_per_move"] > 0
    assert any(line.startswith("game 1/2: model red") for line in out)
    assert any(line.startswith("game 2/2: model black") for line in out)  # colours alternate
    assert out.count("  a b c d e f g h i") == 2  # each final board
    assert "Elo n/a (2 games; an Elo estimate needs >= 10)" in out[-2] and "\x1b[" not in proc.stdout


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("args,needles", [
    (["--temperature", "-1"], ["--temperature must be >= 0", "-1"]),
    (["--games", "0", "--opponent", "random"], ["--games must be >= 1, got 0"]),
    (["--engine-depth", "0", "--opponent", "engine"], ["--engine-depth must be >= 1, got 0"]),
    (["--max-plies", "0"], ["--max-plies must be >= 1, got 0"]),
    (["--material-margin", "-1"], ["--material-margin must be >= 0, got -1.0"]),
    (["--opening-plies", "-1", "--opponent", "random"], ["--opening-plies must be >= 0, got -1"]),
    (["--opponent", "engine", "--games", "6", "--opening-plies", "0"],
     ["replays the same 2 games", "--opening-plies 2"]),
])
def test_bad_numbers_are_one_line_errors(args, needles):
    assert_one_line_error(run_script(*args), *needles)


def test_missing_model_directory_is_a_one_line_error(tmp_path):
    missing = str(tmp_path / "no_such_model")
    assert_one_line_error(run_script("--model", missing, "--opponent", "random", "--games", "1"),
                          f"--model {missing}: no such directory", "config.json")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_script("--model", str(tmp_path / "empty")), "no config.json or model.weights.h5")


def test_missing_engine_is_a_one_line_error(tiny_xiangqi_model, tmp_path):
    missing = str(tmp_path / "nowhere" / "fairy-stockfish")
    proc = run_script("--model", tiny_xiangqi_model, "--opponent", "engine", "--games", "2", "--engine", missing)
    assert_one_line_error(proc, missing, "apt-get install fairy-stockfish", "--engine PATH")


def test_help_shows_defaults_and_the_examples_as_written():
    proc = run_script("--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps the option help
    for shown in ("--games GAMES match: number of games (>= 1) (default: 10)", "(default: 300)",
                  "--engine-depth ENGINE_DEPTH match: fairy-stockfish search depth (>= 1) (default: 1)",
                  "sampling (--temperature > 0) (default: 0)", "unset: 2 against the engine"):
        assert shown in text
    assert "    python scripts/play_xiangqi.py                       # you are red\n" in proc.stdout


class OutputReader(threading.Thread):
    """Collects a process's stdout as it comes (a prompt has no newline to wait for).
    It is the stream's only reader: the test waits for the process with wait(), not
    communicate(), which would read stdout too and take the last lines from it."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.raw = stream, b""

    @property
    def text(self):
        return self.raw.decode("utf-8", "replace")

    def run(self):
        for chunk in iter(lambda: os.read(self.stream.fileno(), 4096), b""):
            self.raw += chunk

    def wait_for(self, needle, count=1, timeout=120):
        deadline = time.monotonic() + timeout
        while self.text.count(needle) < count:
            assert time.monotonic() < deadline, f"no {needle!r} in {self.text[-2000:]!r}"
            time.sleep(0.05)


def test_ctrl_c_in_interactive_play_ends_cleanly(tiny_xiangqi_model):
    proc = subprocess.Popen([sys.executable, SCRIPT, "--model", tiny_xiangqi_model, "--no-color"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = OutputReader(proc.stdout)
    reader.start()
    try:
        reader.wait_for("red to move> ")
        proc.stdin.write(b"h2e2\n")
        proc.stdin.flush()
        reader.wait_for("red to move> ", count=2)  # the model replied: waiting for the next move
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    err = proc.stderr.read().decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "interrupted"
    assert "game stopped after 2 plies; its moves (ICCS): h2e2 " in reader.text
