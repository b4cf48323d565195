"""scripts/bench_pretrain.py (run as a subprocess) on a tiny custom shape: the table lists
keras-longctx (both MLM heads), keras-hub and Hugging Face with their ratios and the goal
lines; nothing is written without --write, --write --md puts the section into that file;
a bad option is one line (exit 2)."""

import os
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "bench_pretrain.py")
TINY = ["--layers", "1", "--hidden", "32", "--heads", "2", "--batch", "2", "--length", "16", "--vocab", "200",
        "--repeats", "1", "--warmup", "1"]
DOCS = os.path.join(ROOT, "docs", "benchmarks.md")


def _run(*args, timeout=600):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def _table_rows(stdout):
    return [line for line in stdout.splitlines() if line.startswith("| ") and not line.startswith("| implementation")]


def test_the_table_has_the_three_implementations_and_is_written_only_with_write(tmp_path):
    md = tmp_path / "bench.md"
    docs_before = os.stat(DOCS).st_mtime_ns
    printed = _run(*TINY, "--md", md)
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert all(line.startswith("bench_pretrain: ") for line in printed.stderr.splitlines()), printed.stderr[-3000:]
    rows = _table_rows(printed.stdout)
    names = [row.split(" | ")[0][2:] for row in rows]
    assert names[:2] == ["keras-longctx, MLM head at masked positions (default)",
                         "keras-longctx, MLM head at every position"]
    assert names[2].startswith("keras-hub ") and names[3].startswith("HF transformers ") and len(names) == 4
    cells = [row.strip("| ").split(" | ") for row in rows]
    assert [row[1] for row in cells] == ["4 positions", "32 positions", "4 positions", "32 positions"]
    assert cells[3][-2] == "1.00x" and cells[2][-1] == "1.00x" and all(cell.endswith("x") for row in cells
                                                                       for cell in row[-2:])
    assert "Goals (>= 1.3x HF, >= 1.1x keras-hub):" in printed.stdout
    assert "- keras-longctx, MLM head at masked positions (default): " in printed.stdout
    assert "measured float32 matmul peak " in printed.stdout and "wrote" not in printed.stdout
    assert not md.exists() and os.stat(DOCS).st_mtime_ns == docs_before

    written = _run(*TINY, "--md", md, "--write")
    assert written.returncode == 0, written.stderr[-3000:]
    assert written.stdout.splitlines()[-1] == f"wrote {md} (section bench_pretrain)"
    text = md.read_text(encoding="utf-8")
    section = text[text.index("<!-- bench_pretrain -->"):text.index("<!-- /bench_pretrain -->")]
    assert "## Masked-LM training step (`scripts/bench_pretrain.py`)" in section
    assert "Command: `python scripts/bench_pretrain.py --layers 1 " in section and "| vs HF | vs keras-hub |" in section
    assert os.stat(DOCS).st_mtime_ns == docs_before


def test_bad_options_are_one_line():
    for args, message in [(["--hidden", "30", "--heads", "4"], "error: --hidden 30 is not a multiple of --heads 4: "
                                                               "each head gets hidden / heads dimensions"),
                          (["--shapes", "huge"], "error: --shapes huge: give one or more of small, base, "
                                                 "comma-separated"),
                          (["--repeats", "0"], "error: --repeats must be >= 1, got 0")]:
        proc = _run(*args, timeout=120)
        assert proc.returncode == 2 and proc.stderr.splitlines() == [message], (args, proc.stderr[-3000:])
