"""toolkit/classification_data.py: TSV and JSONL reading with bad lines counted, repeats and
texts under two labels dropped, one class refused, the seeded split by the text, and texts
longer than the maximum length refused (naming the line) or cut."""

import json
import random

import pytest

from toolkit.classification_data import (FinetuneOptions, deduplicate, encode_texts, label_names, load_split,
                                         read_examples, refuse_too_long, split_by_text, Example)
from toolkit.corpora import load_reviews
from toolkit.tokenizers import Tokenizer


def _write_lines(path, lines):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines))
    return str(path)


def test_tsv_bad_lines_are_skipped_and_counted(tmp_path):
    path = _write_lines(tmp_path / "data.tsv", [
        "text\tlabel",          # header
        "a good book\tpos",
        "\tpos",                # empty text
        "a bad book\t",         # missing label
        "no label column",      # wrong number of columns
        "",                     # blank: no example, not counted
        b"caf\xe9 latin-1\tneg",  # not UTF-8
        "too\tmany\tcolumns",   # wrong number of columns
        "an awful book\tneg",
    ])
    examples, report = read_examples(path)
    assert [(e.text, e.label, e.line) for e in examples] == [("a good book", "pos", 2), ("an awful book", "neg", 9)]
    assert report.skipped == {"empty text": 1, "missing label": 1, "wrong number of columns": 2, "not UTF-8": 1}
    assert report.first_line == {"empty text": 3, "missing label": 4, "wrong number of columns": 5, "not UTF-8": 7}


def test_a_tsv_header_finds_the_columns_by_name(tmp_path):
    path = _write_lines(tmp_path / "data.tsv", ["id\tLabel\tText", "1\tneg\tbad", "2\tpos\tgood"])
    examples, _ = read_examples(path)
    assert [(e.text, e.label) for e in examples] == [("bad", "neg"), ("good", "pos")]
    headless = _write_lines(tmp_path / "headless.tsv", ["good\tpos", "bad\tneg"])
    assert [(e.text, e.label) for e in read_examples(headless)[0]] == [("good", "pos"), ("bad", "neg")]


def test_jsonl_bad_lines_are_skipped_and_counted(tmp_path):
    path = _write_lines(tmp_path / "data.jsonl", [
        json.dumps({"review": "fine", "stars": 5}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"review": "", "stars": 1}),
        json.dumps({"review": "no stars"}),
        json.dumps({"review": 12, "stars": 1}),
        json.dumps({"review": "odd label", "stars": [1]}),
        json.dumps({"review": "poor", "stars": 1}),
    ])
    examples, report = read_examples(path, text_field="review", label_field="stars")
    assert [(e.text, e.label, e.line) for e in examples] == [("fine", "5", 1), ("poor", "1", 8)]
    assert report.skipped == {"bad JSON": 2, "empty text": 1, "missing label": 1, "text not a string": 1,
                              "label not a string or integer": 1}


def test_an_unknown_extension_asks_for_the_format(tmp_path):
    path = _write_lines(tmp_path / "data.csv", ["good\tpos"])
    with pytest.raises(ValueError, match=r"^--data .*data.csv: cannot tell TSV from JSONL by the name: give --format"):
        read_examples(path)
    assert len(read_examples(path, fmt="tsv")[0]) == 1


def test_repeats_are_kept_once_and_texts_under_two_labels_dropped():
    rows = [Example("good", "pos", 1), Example("bad", "neg", 2), Example("good", "pos", 3),
            Example("meh", "pos", 4), Example("meh", "neg", 5)]
    unique, report = deduplicate(rows, "data.tsv")
    assert [(e.text, e.line) for e in unique] == [("good", 1), ("bad", 2)]
    assert report.skipped == {"duplicate": 2, "under both labels": 1}


def test_one_class_is_refused_in_one_line(tmp_path):
    path = _write_lines(tmp_path / "data.tsv", [f"text {i}\tpos" for i in range(30)])
    with pytest.raises(ValueError) as error:
        load_split(path)
    assert str(error.value) == (f"{path}: the label column holds one class ('pos', 30 texts): a classifier needs at "
                                "least two; check the label column (--label-field) or give more data")


def test_integer_labels_sort_as_numbers():
    examples = [Example(str(i), label, i) for i, label in enumerate(["10", "2", "1"])]
    assert label_names(examples, "x") == ["1", "2", "10"]


def _examples(count, seed=0):
    rng = random.Random(seed)
    return [Example(f"text number {i} {rng.random():.6f}", rng.choice(["neg", "pos"]), i + 1) for i in range(count)]


def test_the_split_is_by_text_disjoint_and_seeded():
    examples = _examples(600)
    split = split_by_text(examples, ["neg", "pos"], "data.tsv", seed=0)
    parts = [{e.text for e in part} for part in (split.train, split.validation, split.test)]
    assert sum(map(len, parts)) == 600 and set.union(*parts) == {e.text for e in examples}
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert 30 <= len(parts[1]) <= 90 and 30 <= len(parts[2]) <= 90
    shuffled = examples[::-1]
    again = split_by_text(shuffled, ["neg", "pos"], "data.tsv", seed=0)
    assert {e.text for e in again.test} == parts[2] and {e.text for e in again.validation} == parts[1]
    other = split_by_text(examples, ["neg", "pos"], "data.tsv", seed=1)
    assert {e.text for e in other.test} != parts[2]


def test_too_few_texts_for_the_split_are_refused():
    with pytest.raises(ValueError, match=r"^data.tsv: 2 distinct texts leave the .* split empty: give at least 100 "):
        split_by_text(_examples(2), ["neg", "pos"], "data.tsv")


def test_the_reviews_test_split_is_the_one_load_reviews_holds_out():
    split, reports = load_split("reviews")
    assert split.label_names == ["neg", "pos"]
    held_out = load_reviews(split="test")
    assert sorted((e.text, e.label == "pos") for e in split.test) == sorted((t, label == 1) for t, label in held_out)
    assert len(split.train) + len(split.validation) == len(load_reviews(split="train"))
    assert reports[0].skipped["under both labels"] > 0


VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "good": 4, "bad": 5}


def test_long_texts_are_cut_and_counted_or_refused_naming_the_line():
    tokenizer = Tokenizer(VOCAB, do_lower_case=True)
    id_lists, lengths = encode_texts(tokenizer, ["good", "good bad good bad good", "bad " * 9], max_length=5)
    assert id_lists == [[2, 4, 3], [2, 4, 5, 4, 3], [2, 5, 5, 5, 3]]  # [SEP] kept
    assert lengths == [3, 7, 11]
    refuse_too_long([3, 4], 5, str, "give --max-length 11")  # none too long: nothing raised
    with pytest.raises(ValueError) as error:
        refuse_too_long(lengths, 5, lambda index: f"data.tsv line {index + 2}", "give --max-length 11")
    assert str(error.value) == ("data.tsv line 3: a text of 7 tokens is longer than --max-length 5 (1 more texts are): "
                                "give --max-length 11, or --truncate to cut long texts")


@pytest.mark.parametrize("changes, message", [
    ({"lr": 0.0}, "--lr must be a finite number > 0, got 0.0"),
    ({"epochs": 0}, "--epochs must be >= 1, got 0"),
    ({"layerwise_decay": 1.5}, "--layerwise-decay must be in (0, 1]"),
    ({"max_length": 2}, "--max-length must be >= 3, got 2"),
    ({"checkpoint": "MISSING"}, "--checkpoint MISSING: no such file or folder"),
], ids=["lr", "epochs", "layerwise-decay", "max-length", "checkpoint"])
def test_bad_options_are_one_line(tmp_path, changes, message):
    data = _write_lines(tmp_path / "data.tsv", ["good\tpos", "bad\tneg"])
    options = FinetuneOptions(**{"checkpoint": str(tmp_path), "data": data, "out": str(tmp_path / "out"), **changes})
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        options.check()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_an_existing_output_folder_is_never_overwritten(tmp_path):
    data = _write_lines(tmp_path / "data.tsv", ["good\tpos", "bad\tneg"])
    (tmp_path / "out").mkdir()
    FinetuneOptions(checkpoint=str(tmp_path), data=data, out=str(tmp_path / "out")).check()  # empty: fine
    (tmp_path / "out" / "model.keras").write_text("an earlier model")
    with pytest.raises(ValueError, match="already exists and is not an empty folder: give a new folder"):
        FinetuneOptions(checkpoint=str(tmp_path), data=data, out=str(tmp_path / "out")).check()
