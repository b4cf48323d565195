"""scripts/bench_generate.py (a subprocess) at a tiny GPT-2 shape: every row, int8 ones included
(Keras' own int8 on TensorFlow, HF with torch's dynamic int8, and this package on Keras' torch
backend, float32 and int8 on fbgemm, with the fbgemm floor), each with its ratio; --write --md
puts the section into that file; a bad --skip is one line (exit 2)."""

import os
import subprocess
import sys

from tests.helpers import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "bench_generate.py")


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_every_row_with_its_ratio_int8_rows_included(tmp_path):
    md = tmp_path / "bench.md"
    proc = _run("--layers", 1, "--hidden", 32, "--heads", 4, "--vocab", 300, "--prompt", 8, "--new", 6,
                "--batches", "1,2", "--repeats", 1, "--skip", "keras-hub,bert4keras", "--write", "--md", md)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.strip("| ").split(" | ")[0]: line.strip("| ").split(" | ")[1:]
            for line in proc.stdout.splitlines() if line.startswith("| ") and not line.startswith("| implementation")}
    assert {"keras-longctx generate (KV cache)", "HF transformers generate (torch)",
            "keras-longctx int8, Keras' own int8 kernels (TensorFlow)",
            "HF + torch dynamic int8 (LM head only: quantize_dynamic skips Conv1D)",
            "keras-longctx float32 on Keras' torch backend (traced step)",
            "keras-longctx int8 on Keras' torch backend (fbgemm, traced step)",
            "floor int8: fbgemm products of the weights alone"} <= set(rows)
    assert rows["keras-longctx generate (KV cache)"][1] == "1.00x"
    assert all(float(cells[0]) > 0 and cells[1].endswith("x") and float(cells[2]) > 0 for cells in rows.values())
    assert "<!-- bench_generate -->" in md.read_text()


def test_a_bad_skip_is_one_line():
    proc = _run("--skip", "nobody")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --skip nobody")
