"""scripts/pretrain_mlm.py end to end, as a subprocess: a tiny run stopped after two steps, a
resume with another model size refused, then resumed from the command line to its last step
(the model folder, the summary, the log and the PNG written); bad input is one line (exit 2)."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.toolkit.assets import peoples_daily_sentences

SCRIPT = os.path.join(ROOT, "scripts", "pretrain_mlm.py")
TINY = ["--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64", "--max-length", "32",
        "--batch-size", "8", "--steps", "4", "--eval-every", "2", "--held-out", "0.1", "--eval-sequences", "8"]


def _run(*args, timeout=300):
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlm") / "corpus.txt"
    path.write_bytes("\n".join(peoples_daily_sentences(3000)).encode() + b"\n\n\xff not UTF-8\n")
    return str(path)


def test_a_run_stopped_refused_with_another_size_and_resumed(corpus, tmp_path):
    out = tmp_path / "run"
    stopped = _run("--corpus", corpus, "--out", out, "--stop-after", "2", *TINY)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert f"{corpus}: 25 documents, " in stopped.stderr
    assert "skipped 2 lines: 1 empty (first: line 26), 1 not UTF-8 (first: line 27)" in stopped.stderr
    assert "vocabulary: " in stopped.stderr and "held out: " in stopped.stderr
    assert "stopped at step 2; rerun with --resume to continue" in stopped.stderr
    assert not (out / "model").exists() and (out / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    other = _run("--corpus", corpus, "--out", out, "--resume", *TINY, "--hidden", "48")
    assert other.returncode == 2 and other.stderr.splitlines()[-1] == (
        f"error: --resume {out}: hidden_size is 48 here but 32 in {out}/train_config.json: give --hidden 32, "
        f"or a new --out"), other.stderr[-3000:]
    resumed = _run("--corpus", corpus, "--out", out, "--resume", *TINY)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 2 (optimizer.iterations=2)" in resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / "train_summary.json").read_text()) and summary["steps"] == 4
    assert sorted(os.listdir(out / "model")) == ["config.json", "model.safetensors", "tokenizer_config.json",
                                                 "vocab.txt"]
    assert json.loads((out / "model" / "config.json").read_text())["vocab_size"] == summary["vocab_size"]
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["step"] for row in rows] == ["2", "4"] and all(row["val_loss"] for row in rows)
    assert (out / "loss.png").stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (["--corpus", "EMPTY"], "error: --corpus EMPTY: no documents (0 lines); give a UTF-8 text file with one "
                            "document a line"),
    (["--corpus", "MISSING.txt"], "error: --corpus MISSING.txt: no such file (give peoples-daily or reviews or "
                                  "text files of one document a line)"),
    (["--steps", "abc"], "error: argument --steps: invalid int value: 'abc' (see --help)"),
    (["--steps", "0"], "error: --steps must be >= 1, got 0"),
    (["--lr", "-1"], "error: --lr must be a finite number > 0, got -1.0"),
    (["--held-out", "1.5"], "error: --held-out must be a number in [0, 1), got 1.5"),
    (["--hidden", "30", "--heads", "4"], "error: --hidden 30 is not divisible by --heads 4: each head gets "
                                         "hidden / heads dimensions"),
], ids=["empty-corpus", "missing-corpus", "steps-abc", "steps-0", "lr-negative", "held-out-1.5", "hidden-heads"])
def test_bad_input_is_one_line(args, message, corpus, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    args = [str(empty) if arg == "EMPTY" else arg for arg in args]
    base = [] if "--corpus" in args else ["--corpus", corpus]
    proc = _run(*base, "--out", tmp_path / "run", *args)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert lines == [message.replace("EMPTY", str(empty))], proc.stderr[-3000:]
    assert not (tmp_path / "run" / "checkpoints").exists()
