"""scripts/bench_distribution.py (a subprocess): one device, data parallel and a 1 x 2 model
mesh on 2 virtual devices, a row each with its ratio to one device; --write --md puts the
section into that file; a bad option is one line (exit 2)."""

import os
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "bench_distribution.py")


def _run(*args, timeout=600):
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def test_a_row_a_mesh_with_its_ratio_written_only_with_write(tmp_path):
    md = tmp_path / "bench.md"
    proc = _run("--devices", 2, "--meshes", "data", "model:2", "--repeats", 1, "--warmup", 1, "--write", "--md", md)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.strip("| ").split(" | ") for line in proc.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| run")]
    assert [row[0] for row in rows] == ["one device (no distribution)", "--distribution data",
                                        "--distribution model:2"]
    assert rows[0][3] == "1.00x" and all(float(row[1]) > 0 and row[3].endswith("x") for row in rows)
    text = md.read_text()
    assert "<!-- bench_distribution -->" in text and "cut into 2 virtual XLA devices" in text


def test_a_bad_option_is_one_line():
    proc = _run("--devices", 0)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --devices must be")
