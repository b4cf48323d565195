"""scripts/long_text_study.py as a subprocess on a tiny random MLM folder (16 positions) and a
tiny text-file corpus: two methods at K in {0, 2} run (a line per cell, the results file),
--report writes the Markdown and the PNG; bad --lengths, a negative K and a length past
hierarchical's reach are one line (exit 2)."""

import json

import pytest

from tests.mlm_assets import make_tiny_mlm_folder, run_script
from tests.models.test_long_text_study import CHARACTERS, tiny_documents


def _run(*args, timeout=600):
    return run_script("long_text_study", *args, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_mlm_folder(tmp_path_factory.mktemp("study_script") / "model", characters=CHARACTERS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "documents.txt"
    path.write_text("\n".join(tiny_documents()) + "\n", encoding="utf-8")
    return str(path)


def test_two_methods_run_end_to_end_and_the_report_is_written(folder, corpus, tmp_path):
    results = tmp_path / "results.jsonl"
    proc = _run("--model", folder, "--corpus", corpus, "--held-out", 0.3, "--methods", "chunked", "copy",
                "--attentions", "softmax", "--lengths", 16, 40, "--steps", 0, 2, "--seeds", 0, "--batch-size", 2,
                "--train-length", 32, "--results", results)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 9 and lines[-1] == f"8 cells in {results}; --report writes the report"
    assert lines[0].startswith("chunked softmax length 16 K 0 seed 0: accuracy ")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert {(row["method"], row["length"], row["steps"]) for row in rows} == {
        (method, length, steps) for method in ("chunked", "copy") for length in (16, 40) for steps in (0, 2)}
    md, png = tmp_path / "report.md", tmp_path / "report.png"
    proc = _run("--report", "--results", results, "--md", md, "--png", png, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"wrote {md} and {png} from {results}"
    assert "### Masked-token accuracy (%), K = 2 continued-training steps" in md.read_text(encoding="utf-8")
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--lengths", "1"], "error: --lengths 1: must be an integer >= 2"),
    (["--lengths", "abc"], "error: argument --lengths: invalid int value: 'abc' (see --help)"),
    (["--steps", "0", "-1"], "error: --steps -1: must be an integer >= 0"),
    (["--methods", "hierarchical", "--lengths", "300"], "error: --lengths 300 is more than hierarchical positions "
                                                        "reach: 16**2 = 256 tokens"),
], ids=["length-1", "length-abc", "negative-K", "past-P**2"])
def test_bad_input_is_one_line(folder, corpus, tmp_path, args, message):
    proc = _run("--model", folder, "--corpus", corpus, "--results", tmp_path / "r.jsonl", *args, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr[-2000:]
