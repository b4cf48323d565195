"""scripts/finetune_classifier.py (run as a subprocess) on 200 short texts and a tiny random BERT
saved in Hugging Face format: train (with hierarchical positions past the checkpoint's 64,
a long text cut and counted, and the baselines' table), then predict with the saved model,
which ``keras.saving.load_model`` also reopens; bad input is one line with exit 2 and leaves
no output folder."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, TINY_BERT

SCRIPT = os.path.join(ROOT, "scripts", "finetune_classifier.py")
POSITIVE = ["good", "great", "nice", "love", "fine"]
NEGATIVE = ["bad", "awful", "poor", "hate", "broken"]
NEUTRAL = ["the", "a", "book", "phone", "it", "is", "was", "this", "and", "very", "my", "new"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + POSITIVE + NEGATIVE + NEUTRAL
LONG_LINE = 42  # the data file's line that holds an 80-word text (82 tokens, more than the 64 positions)


def _run(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def _texts(count, seed=0):
    """``count`` distinct short texts, each with one word of its label's sentiment."""
    rng, texts = random.Random(seed), {}
    while len(texts) < count:
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(NEUTRAL) for _ in range(rng.randint(3, 8))]
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        texts.setdefault(" ".join(words), label)
    return list(texts.items())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny random BERT (Hugging Face folder with vocab.txt) and a TSV of 200 labelled texts."""
    from models import build_transformer_model

    folder = tmp_path_factory.mktemp("finetune")
    transformer = build_transformer_model(dict(TINY_BERT, vocab_size=len(VOCAB)), return_keras_model=False)
    transformer.save_pretrained(str(folder / "bert"))
    (folder / "bert" / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    rows = _texts(199)
    rows.insert(LONG_LINE - 2, (" ".join(["very"] * 79 + ["good"]), "pos"))
    (folder / "data.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows),
                                     encoding="utf-8")
    return folder


def test_train_then_predict_with_the_saved_model(files, tmp_path):
    out = tmp_path / "run"
    proc = _run("train", "--checkpoint", str(files / "bert"), "--data", str(files / "data.tsv"), "--out", str(out),
                "--epochs", "2", "--batch-size", "16", "--lr", "1e-3", "--hierarchical", "--max-length", "72",
                "--truncate", "--baselines")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 texts longer than --max-length 72 tokens cut to it (--truncate)" in proc.stderr
    table = proc.stdout[proc.stdout.index("method"):].splitlines()
    assert table[0].split() == ["method", "test", "accuracy", "n"] and len(table) == 4
    assert table[1].startswith("fine-tuned bert (cls pooling)")
    assert table[2].startswith("char 1-3-gram TF-IDF + logistic regression")
    assert table[3].startswith("snownlp SnowNLP(text).sentiments > 0.5")
    scores = [float(line.split()[-2]) for line in table[1:]]
    assert all(0 <= score <= 1 for score in scores) and len({line.split()[-1] for line in table[1:]}) == 1
    assert sorted(os.listdir(out)) == ["classifier.json", "log.csv", "model.keras", "vocab.txt"]
    assert not os.path.exists(f"{out}.partial")

    texts = ["a great phone", "this book was awful"]
    (tmp_path / "texts.txt").write_text(texts[1] + "\n\n", encoding="utf-8")
    proc = _run("predict", "--model", str(out), texts[0], "--input", str(tmp_path / "texts.txt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [line[2] for line in lines] == texts and {line[0] for line in lines} <= {"neg", "pos"}

    import keras

    import models  # noqa: F401  (registers the package's classes)
    from toolkit.tokenizers import Tokenizer

    model = keras.saving.load_model(str(out / "model.keras"))
    tokenizer = Tokenizer(str(out / "vocab.txt"), do_lower_case=True)
    ids = [tokenizer.encode(text)[0] for text in texts]
    tokens = np.array([row + [0] * (6 - len(row)) for row in ids], "int32")
    probabilities = model.predict([tokens, np.zeros_like(tokens)], verbose=0)
    names = ["neg", "pos"]
    assert [(names[int(row.argmax())], f"{row.max():.4f}") for row in probabilities] == \
        [(line[0], line[1]) for line in lines]


def _one_class(folder):
    path = folder / "one_class.tsv"
    path.write_text("".join(f"{text}\tpos\n" for text, _ in _texts(30)), encoding="utf-8")
    return path


def _small_vocab(folder):
    path = folder / "small_vocab.txt"
    path.write_text("\n".join(VOCAB[:12]) + "\n", encoding="utf-8")
    return path


BAD_INPUTS = {
    "too-long": ([], lambda f: (f"error: {f / 'data.tsv'} line {LONG_LINE}: a text of 82 tokens is longer than "
                                "--max-length 64: give --max-length 82 with --hierarchical (past the checkpoint's "
                                "64 positions), or --truncate to cut long texts")),
    "max-length-past-the-positions": (["--max-length", "100"], lambda f: (
        "error: --max-length 100 is more than the checkpoint's 64 positions: add --hierarchical (reads up to 4096 "
        "tokens) or give --max-length 64")),
    "one-class": (["--data", _one_class], lambda f: (
        f"error: {f / 'one_class.tsv'}: the label column holds one class ('pos', 30 texts): a classifier needs at "
        "least two; check the label column (--label-field) or give more data")),
    "vocab-of-another-model": (["--vocab", _small_vocab], lambda f: (
        f"error: --vocab {f / 'small_vocab.txt'} has 12 tokens but checkpoint {f / 'bert'} has 27 token embeddings: "
        "give the vocab.txt that ships with the checkpoint (--vocab)")),
    "layerwise-decay": (["--layerwise-decay", "0"], lambda f: (
        "error: --layerwise-decay must be in (0, 1] (each layer down gets this factor of the learning rate of the "
        "layer above, e.g. 0.9), got 0.0")),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, case):
    extra, message = BAD_INPUTS[case]
    extra = [str(value(files)) if callable(value) else value for value in extra]
    args = {"--checkpoint": str(files / "bert"), "--data": str(files / "data.tsv"), "--out": str(tmp_path / "run")}
    for option, value in zip(extra[::2], extra[1::2]):
        args[option] = value
    proc = _run("train", *[item for pair in args.items() for item in pair], "--epochs", "1", "--quiet")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.splitlines() == [message(files)]
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "run.partial")


def test_predict_without_a_model_folder_is_one_line(tmp_path):
    proc = _run("predict", "--model", str(tmp_path), "some text")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: --model {tmp_path}: no model.keras in it (give a folder written by "
                                        "finetune_classifier.py train)"]


def test_the_baselines_command_prints_the_table(files):
    proc = _run("baselines", "--data", str(files / "data.tsv"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["method", "test", "accuracy", "n"]
    assert [line.split("  ")[0] for line in lines[1:]] == ["char 1-3-gram TF-IDF + logistic regression",
                                                           "snownlp SnowNLP(text).sentiments > 0.5"]
