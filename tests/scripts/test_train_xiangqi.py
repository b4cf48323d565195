"""scripts/train_xiangqi.py end to end, as a subprocess: a tiny run stopped after one step and
resumed from the command line writes the model, the summary, the log and the loss PNG; bad
input is one line (exit 2) naming the option, the file or the value at fault."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.toolkit.xiangqi_games import random_games, write_games

SCRIPT = os.path.join(ROOT, "scripts", "train_xiangqi.py")
TINY = ["--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64", "--max-len", "96",
        "--batch-size", "4", "--steps", "2", "--checkpoint-every", "2", "--quiet"]


def _run(*args, timeout=240):
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def games_file(tmp_path_factory):
    return write_games(tmp_path_factory.mktemp("xq") / "games.jsonl", random_games(12))


def test_a_run_stopped_and_resumed_from_the_command_line(games_file, tmp_path):
    out = tmp_path / "run"
    stopped = _run("--games", games_file, "--out", out, "--stop-after", "1", *TINY)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "stopped at step 1; rerun with --resume to continue" in stopped.stderr
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000001"
    assert not (out / "model.weights.h5").exists() and stopped.stdout == ""
    resumed = _run("--games", games_file, "--out", out, "--resume", *TINY)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 1 (optimizer.iterations=1)" in resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / "train_summary.json").read_text()) and summary["steps"] == 2
    assert json.loads((out / "config.json").read_text())["training"] == summary
    for name in ("model.weights.h5", "train_config.json", "log.csv"):
        assert (out / name).exists(), name
    assert (out / "loss.png").stat().st_size > 1000
    assert sorted(os.listdir(out / "checkpoints")) == ["latest", "step-00000001", "step-00000002"]


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "error: --steps must be >= 1, got 0"),
    (["--val-fraction", "2"], "error: --val-fraction must be between 0 and 1, got 2.0"),
    (["--games", "MISSING.jsonl"], "error: --games MISSING.jsonl: no such file (give existing game record files)"),
    (["--games", "EMPTY"], "error: no games with moves in "),
    (["--init-from", "."], "error: --init-from .: config.json not found (give a model directory with config.json "
                           "and model.weights.h5"),
], ids=["steps-0", "val-fraction-2", "missing-games", "no-games", "init-from-not-a-model"])
def test_bad_input_is_one_line(args, message, games_file, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    args = [str(empty) if arg == "EMPTY" else arg for arg in args]
    games = [] if "--games" in args else ["--games", games_file]
    proc = _run(*games, "--out", tmp_path / "run", *args)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr[-3000:]
