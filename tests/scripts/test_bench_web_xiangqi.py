"""scripts/bench_web_xiangqi.py, small: two concurrent games against a real server (the bundled
model), the table's rows and columns, no errors, no mixed games, --write into a given file."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "bench_web_xiangqi.py")


def test_a_small_load_run_writes_its_table(tmp_path):
    md = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, SCRIPT, "--games", "2", "--moves", "3", "--servers", "one-process",
                           "--max-batch", "2", "--think", "0.05", "0.1", "--write", "--md", str(md)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = md.read_text(encoding="utf-8")
    assert "<!-- bench_web_xiangqi -->" in text and "Goal: p95 under 1 s" in text
    rows = [line for line in text.splitlines() if line.startswith("| one-process")]
    assert len(rows) == 3, text  # alone, 2 games without thinking, 2 games at a pace
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[-2:] == ["0", "0"], row  # no errors, no mixed games
        assert 0 < float(cells[4]) <= float(cells[5]) <= float(cells[6]) < 30, row  # p50 <= p95 <= max
    assert re.search(r"\| 2 \| 0\.05-0\.1 \|", text)


def test_bad_options_are_one_line():
    proc = subprocess.run([sys.executable, SCRIPT, "--think", "2", "1"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "--think needs 0 <= LOW <= HIGH" in proc.stderr
    assert "Traceback" not in proc.stderr
