"""scripts/long_text_fill_masks.py as a subprocess on a tiny random MLM folder (16 positions):
the document line, the table of both methods and the difference line; a missing text file,
a model folder without config.json and --tokens past positions**2 are one line (exit 2)."""

import pytest

from tests.mlm_assets import make_tiny_mlm_folder, run_script, tiny_text


def _run(*args, timeout=300):
    return run_script("long_text_fill_masks", *args, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_mlm_folder(tmp_path_factory.mktemp("fill") / "model")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "article.txt"
    path.write_text(tiny_text(), encoding="utf-8")
    return str(path)


def test_the_table_holds_both_methods(folder, text_file):
    proc = _run("--model", folder, "--text", text_file, "--tokens", 40, "--draws", 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"document: {text_file}: ") and "cut to the first 38" in lines[0]
    assert [cell.strip() for cell in lines[1].split("|")] == ["method", "context tokens", "masked tokens",
                                                              "accuracy", "cross-entropy", "seconds"]
    assert lines[3].startswith("hierarchical (alpha 0.4) ") and lines[3].split("|")[1].strip() == "40"
    assert lines[4].startswith("chunked (14-token windows) ") and lines[4].split("|")[1].strip() == "16"
    assert lines[3].split("|")[2] == lines[4].split("|")[2]  # the same masked tokens
    assert lines[5].startswith("hierarchical minus chunked: ") and "accuracy points" in lines[5]
    assert len(lines) == 6


@pytest.mark.parametrize("case, message", [
    ("missing-text", "error: --text {tmp}/MISSING.txt: no such file"),
    ("no-config", "error: --model {tmp}: no config.json there, not a model folder (the bundled model is "
                  "models/bert_zh_model; train one with scripts/pretrain_mlm.py"),
    ("tokens-past-16**2", "error: --tokens 257 is more than the model reads: 16**2 = 256 tokens"),
])
def test_bad_input_is_one_line(folder, text_file, tmp_path, case, message):
    args = {"missing-text": ["--model", folder, "--text", tmp_path / "MISSING.txt"],
            "no-config": ["--model", tmp_path, "--text", text_file],
            "tokens-past-16**2": ["--model", folder, "--text", text_file, "--tokens", 257]}[case]
    proc = _run(*args, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(tmp=tmp_path)), proc.stderr[-2000:]
