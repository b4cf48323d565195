"""Masked-LM pretraining data (NumPy only): the corpus vocabulary, packing, the held-out
split, BERT's masking and the resumable batch stream.

* **Vocabulary** (:func:`cut_vocabulary`): the standard vocabulary (Google's Chinese BERT
  ``vocab.txt``) cut to the tokens the corpus uses: :data:`SPECIAL_TOKENS` first (ids 0-4),
  then every token the corpus tokenizes to, in the standard vocabulary's order.
  ``keep_tokens[i]`` is the standard id of corpus id ``i`` (bert4keras' ``keep_tokens``), so
  the model's rows map to the standard vocabulary, and the cut ``vocab.txt`` tokenizes any
  corpus text to the same tokens as the full one.
* **Split** (:func:`split_documents`): a document is held out by a hash of its text
  (:func:`toolkit.corpora.is_held_out`), so no document is in both splits.
* **Packing** (:func:`pack_documents`): one long stream cut to length: the documents
  follow each other, each closed by ``[SEP]`` (``doc [SEP] doc [SEP] ...``), the stream is
  cut into pieces of ``length - 1`` tokens and each piece gets a leading ``[CLS]``; a
  document may run on into the next sequence; the last one is padded with ``[PAD]``.
* **Masking** (:func:`mask_tokens`): BERT's: 15% of each sequence's real tokens (special
  tokens, ``[UNK]`` included, never) are selected; of those 80% become ``[MASK]``, 10% a
  random regular token, 10% stay. The targets are the selected tokens' ids, 0 elsewhere.
* **Stream** (:func:`batch_for_step`): batch ``i`` is a function of ``(seed, i)`` only: the
  sequences are read in a seeded permutation per epoch and masked afresh with the seed
  ``(seed, i)``, so a resumed run sees the batches an uninterrupted one sees.
* **Masked positions** (:func:`masked_positions`): for a model that computes the vocabulary
  logits only where the loss counts them (``StreamSettings.head='masked'``, the default), each
  batch also carries the selected positions, padded to :func:`mask_slots` a row, and their labels.

>>> docs = [np.array([5, 6, 7]), np.array([8, 9])]
>>> pack_documents(docs, 5).tolist()
[[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]]
"""

import json
import math
import os
import zlib
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from .option_checks import check_minimums
from .corpora import (CorpusReport, chinese_bert_vocab, is_held_out, peoples_daily, read_text_file,
                      reviews_for_pretraining)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))
FIRST_REGULAR = len(SPECIAL_TOKENS)
MASK_RATE = 0.15
SPLIT_SALT = "mlm"  # another hash than the reviews' sentiment split (toolkit.corpora.load_reviews)
BUILTIN_CORPORA = ("peoples-daily", "reviews")


# --------------------------------------------------------------- vocabulary
@dataclass
class CorpusVocabulary:
    """The cut vocabulary: ``tokens[i]`` is corpus id ``i``, ``keep_tokens[i]`` its standard id."""

    tokens: List[str]
    keep_tokens: List[int]

    @property
    def size(self):
        return len(self.tokens)

    @property
    def token_dict(self):
        return {token: index for index, token in enumerate(self.tokens)}

    def digest(self):
        """A checksum of the tokens and their standard ids (what a resumed run must share)."""
        text = "\n".join(f"{token}\t{kept}" for token, kept in zip(self.tokens, self.keep_tokens))
        return f"{zlib.crc32(text.encode('utf-8')):08x}"

    def write(self, path):
        """``vocab.txt`` (one token a line, the line number its id), written atomically."""
        from .checkpoints import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("".join(token + "\n" for token in self.tokens))
        return path


def standard_tokenizer(vocab_path):
    """The WordPiece tokenizer of the standard vocabulary (lower-casing, as Chinese BERT's)."""
    from .tokenizers import Tokenizer

    return Tokenizer(vocab_path, do_lower_case=True)


def encode_documents(documents, tokenizer):
    """Each document's standard token ids (no ``[CLS]``/``[SEP]``), as int32 arrays."""
    return [np.asarray(tokenizer.encode(document)[0][1:-1], np.int32) for document in documents]


def cut_vocabulary(encoded, tokenizer):
    """The :class:`CorpusVocabulary` of the documents ``encoded`` by the standard ``tokenizer``."""
    specials = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    used = np.unique(np.concatenate(encoded)) if encoded else np.zeros(0, np.int32)
    keep = specials + [int(i) for i in used if int(i) not in set(specials)]
    return CorpusVocabulary([tokenizer.id_to_token(i) for i in keep], keep)


def to_corpus_ids(encoded, vocabulary, standard_size):
    """Standard ids -> corpus ids (a standard token outside the cut becomes ``[UNK]``)."""
    lookup = np.full(standard_size, UNK, np.int32)
    lookup[np.asarray(vocabulary.keep_tokens)] = np.arange(vocabulary.size, dtype=np.int32)
    return [lookup[ids] for ids in encoded]


# ------------------------------------------------------ split and packing
def split_documents(documents, fraction, salt=SPLIT_SALT):
    """``(train, held_out)``: a document is held out by a hash of its text (``fraction`` of them)."""
    train, held = [], []
    for document in documents:
        (held if is_held_out(document, fraction, salt) else train).append(document)
    return train, held


def pack_documents(documents_ids, length):
    """``(count, length)`` int32: ``[CLS]`` + the next ``length - 1`` tokens of the stream
    ``doc [SEP] doc [SEP] ...``; the last sequence padded with ``[PAD]`` (empty documents skipped)."""
    pieces = [np.append(np.asarray(ids, np.int32), SEP) for ids in documents_ids if len(ids)]
    if not pieces:
        return np.zeros((0, length), np.int32)
    stream = np.concatenate(pieces)
    body = length - 1
    count = -(-len(stream) // body)
    padded = np.full(count * body, PAD, np.int32)
    padded[:len(stream)] = stream
    return np.concatenate([np.full((count, 1), CLS, np.int32), padded.reshape(count, body)], axis=1)


# ----------------------------------------------------------------- masking
def mask_tokens(ids, rng, vocab_size, rate=MASK_RATE):
    """BERT's masking of a ``(batch, length)`` id array: ``(inputs, targets)``.

    In each row ``round(rate * n)`` (at least 1) of its ``n`` regular tokens (ids >=
    :data:`FIRST_REGULAR`: never ``[PAD] [UNK] [CLS] [SEP] [MASK]``) are selected at random;
    a selected token becomes ``[MASK]`` (80%), a random regular token (10%) or stays (10%).
    ``targets`` holds the selected tokens' ids and 0 (``[PAD]``) elsewhere."""
    ids = np.asarray(ids, np.int32)
    regular = ids >= FIRST_REGULAR
    keys = np.where(regular, rng.random(ids.shape), 2.0)
    count = regular.sum(axis=1)
    chosen = np.where(count > 0, np.maximum(1, np.rint(rate * count)), 0).astype(np.int64)
    ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    selected = ranks < chosen[:, None]
    roll = rng.random(ids.shape)
    random_tokens = rng.integers(FIRST_REGULAR, vocab_size, ids.shape, dtype=np.int32)
    inputs = np.where(selected & (roll < 0.8), MASK, np.where(selected & (roll < 0.9), random_tokens, ids))
    return inputs.astype(np.int32), np.where(selected, ids, PAD).astype(np.int32)


def mask_slots(length, rate=MASK_RATE):
    """The most tokens :func:`mask_tokens` selects in a row of ``length`` that starts with
    ``[CLS]`` (at most ``length - 1`` regular tokens): ``max(1, round(rate * (length - 1)))``."""
    return max(1, int(np.rint(rate * (length - 1))))


def masked_positions(targets, slots):
    """The selected positions of ``targets`` (:func:`mask_tokens`' second array; 0 = not
    selected), ``slots`` a row: ``(positions, labels)``, both ``(batch, slots)`` int32, each row's
    selected positions in order and their token ids; the slots left over hold position 0 and
    label 0 (which the loss and the accuracy do not count). ValueError when a row has more
    selected tokens than ``slots``."""
    targets = np.asarray(targets)
    selected = targets != PAD
    counts = selected.sum(axis=1)
    if len(counts) and counts.max() > slots:
        row = int(np.argmax(counts))
        raise ValueError(f"row {row} has {int(counts[row])} selected tokens, more than the {slots} slots: give "
                         f"slots >= mask_slots(length, rate) and rows that start with [CLS]")
    order = np.argsort(~selected, axis=1, kind="stable")[:, :slots]  # selected first, each in position order
    order = np.pad(order, ((0, 0), (0, slots - order.shape[1])))
    used = np.arange(slots) < counts[:, None]
    positions = np.where(used, order, 0).astype(np.int32)
    labels = np.where(used, np.take_along_axis(targets, positions, axis=1), PAD).astype(np.int32)
    return positions, labels


HEADS = ("masked", "all")


@dataclass(frozen=True)
class StreamSettings:
    """What a batch depends on besides the sequences and the step. ``head``: where the model
    computes the vocabulary logits, ``'masked'`` (only at the selected positions: the batches
    carry them, :func:`masked_positions`) or ``'all'`` (every position)."""

    batch_size: int
    vocab_size: int
    seed: int = 0
    mask_rate: float = MASK_RATE
    head: str = "masked"


def model_inputs(tokens):
    """``(token_ids, segment_ids)`` (all segment 0) for a BERT with segment embeddings."""
    return tokens, np.zeros_like(tokens)


def sequence_indices(count, step, batch_size, seed):
    """The sequences of batch ``step``: positions ``step*batch .. +batch`` of a stream that reads
    all ``count`` sequences once an epoch, each epoch in its own seeded permutation."""
    positions = step * batch_size + np.arange(batch_size, dtype=np.int64)
    epochs, offsets = np.divmod(positions, count)
    indices = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        order = np.random.default_rng([seed, 0, int(epoch)]).permutation(count)
        indices[epochs == epoch] = order[offsets[epochs == epoch]]
    return indices


def training_pair(inputs, targets, settings):
    """``(model inputs, labels)`` of a masked batch for ``settings.head``: with ``'all'``
    ``((token_ids, segment_ids), targets)``; with ``'masked'`` ``((token_ids, segment_ids,
    positions), labels)`` (:func:`masked_positions`, :func:`mask_slots` slots a row)."""
    if settings.head == "all":
        return model_inputs(inputs), targets
    positions, labels = masked_positions(targets, mask_slots(inputs.shape[1], settings.mask_rate))
    return model_inputs(inputs) + (positions,), labels


def batch_for_step(sequences, step, settings):
    """Batch number ``step`` (:func:`training_pair`: with ``head='all'`` ``((token_ids,
    segment_ids), targets)``, with ``'masked'`` also the selected positions), a function of
    ``(settings.seed, step)`` only."""
    chosen = sequences[sequence_indices(len(sequences), step, settings.batch_size, settings.seed)]
    inputs, targets = mask_tokens(chosen, np.random.default_rng([settings.seed, 1, step]), settings.vocab_size,
                                  settings.mask_rate)
    return training_pair(inputs, targets, settings)


def batches(sequences, start_step, settings):
    """The training stream from batch ``start_step`` on (endless)."""
    step = start_step
    while True:
        yield batch_for_step(sequences, step, settings)
        step += 1


def held_out_batch(sequences, settings, limit=None):
    """The held-out evaluation set: the first ``limit`` sequences, masked once with a fixed seed
    (:func:`training_pair`'s layout)."""
    chosen = sequences[:limit] if limit else sequences
    inputs, targets = mask_tokens(chosen, np.random.default_rng([settings.seed, 2]), settings.vocab_size,
                                  settings.mask_rate)
    return training_pair(inputs, targets, settings)


# ------------------------------------------------------------------ corpora
def read_corpus(name):
    """``(documents, report)`` of one ``--corpus`` entry: 'peoples-daily', 'reviews' (their
    sentiment training split) or a text file of one document a line. ValueError when it
    yields no document."""
    if name == "peoples-daily":
        documents, report = peoples_daily()
    elif name == "reviews":
        documents, report = reviews_for_pretraining()
    else:
        documents, report = read_text_file(name)
    if not documents:
        read = f"{report.lines} lines" + (f"; {report.summary().split('; ', 1)[1]}" if report.skipped else "")
        raise ValueError(f"--corpus {name}: no documents ({read}); give a UTF-8 text file with one document a line")
    return documents, report


@dataclass
class PretrainData:
    """The packed corpus of a run: ``train`` and ``held_out`` sequences ``(count, length)``."""

    reports: List[CorpusReport]
    vocabulary: CorpusVocabulary
    standard_size: int
    train: np.ndarray
    held_out: np.ndarray
    train_documents: int
    held_out_documents: int

    def digest(self):
        """A checksum of the training sequences (what a resumed run must share)."""
        return f"{zlib.crc32(np.ascontiguousarray(self.train).tobytes()):08x}"

    def summary_lines(self, eval_sequences=None):
        """The data summary: each corpus, the vocabulary, the split."""
        length = self.train.shape[1]
        evaluated = min(len(self.held_out), eval_sequences or len(self.held_out))
        tokens = int(np.count_nonzero(self.train))
        return [report.summary() for report in self.reports] + [
            f"vocabulary: {self.vocabulary.size} tokens (the corpus's, of the {self.standard_size} of the "
            f"standard vocab.txt)",
            f"training: {self.train_documents} documents, {tokens} tokens in {len(self.train)} sequences of {length}",
            f"held out: {self.held_out_documents} documents, {len(self.held_out)} sequences "
            f"({evaluated} evaluated every period)"]


def _packed(documents_ids, length, seed, stream):
    order = np.random.default_rng([seed, 3, stream]).permutation(len(documents_ids))
    return pack_documents([documents_ids[i] for i in order], length)


def prepare_data(corpora, vocab_path, max_length, held_out=0.02, seed=0):
    """Read the ``corpora`` (:func:`read_corpus`), tokenize them with the standard vocabulary,
    cut it (:func:`cut_vocabulary`), split the documents (:func:`split_documents`) and pack each
    split in a seeded document order. Returns a :class:`PretrainData`."""
    documents, reports = [], []
    for name in corpora:
        got, report = read_corpus(name)
        documents.extend(got)
        reports.append(report)
    train, held = split_documents(documents, held_out)
    if not train:
        raise ValueError(f"--held-out {held_out} leaves no training document of the {len(documents)}: "
                         f"give a smaller --held-out")
    tokenizer = standard_tokenizer(vocab_path)
    train_ids, held_ids = encode_documents(train, tokenizer), encode_documents(held, tokenizer)
    vocabulary = cut_vocabulary(train_ids + held_ids, tokenizer)
    if vocabulary.size <= FIRST_REGULAR:
        raise ValueError(f"--corpus {' '.join(corpora)}: no token of its text is in {vocab_path} (all [UNK])")
    train_ids, held_ids = (to_corpus_ids(ids, vocabulary, tokenizer.vocab_size) for ids in (train_ids, held_ids))
    return PretrainData(reports, vocabulary, tokenizer.vocab_size, _packed(train_ids, max_length, seed, 0),
                        _packed(held_ids, max_length, seed, 1), len(train), len(held))


# ------------------------------------------------------------------ options
DEFAULT_MODEL = {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024,
                 "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
DEFAULT_MAX_LENGTH = 128
SIZE_FLAGS = {"num_hidden_layers": "layers", "hidden_size": "hidden", "num_attention_heads": "heads",
              "intermediate_size": "intermediate"}


def read_bert_config(path):
    """The sizes of a BERT ``config.json`` / ``bert_config.json`` (the keys of
    :data:`DEFAULT_MODEL` and ``max_position_embeddings``); ValueError naming the file and key."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config {path}: no such file (give a BERT config.json)")
    with open(path, encoding="utf-8") as f:
        try:
            saved = json.load(f)
        except ValueError as error:
            raise ValueError(f"--config {path} is not valid JSON: {error}") from None
    if not isinstance(saved, dict):
        raise ValueError(f"--config {path}: expected a JSON object of BERT settings")
    config = {key: saved[key] for key in list(DEFAULT_MODEL) + ["max_position_embeddings"] if key in saved}
    for key in list(SIZE_FLAGS) + ["max_position_embeddings"]:
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"--config {path}: '{key}' must be an integer >= 1, got {value!r}")
    return config


def _check_numbers(options):
    """One-line ValueError for the first option whose value cannot work."""
    check_minimums(options, (("steps", 1), ("batch_size", 1), ("grad_accum", 1), ("eval_every", 1),
                             ("eval_sequences", 1), ("stop_after", 1), ("warmup", 0), ("seed", 0), ("layers", 1),
                             ("hidden", 1), ("heads", 1), ("intermediate", 1), ("max_length", 8)))
    for name, low, high in (("lr", 0, math.inf), ("weight_decay", 0, math.inf), ("ema", 0, 1), ("held_out", 0, 1),
                            ("dropout", 0, 1), ("mask_rate", 0, 1)):
        value, open_low = getattr(options, name), name in ("lr", "mask_rate")
        if value is None or ((value > low if open_low else value >= low) and value < high):
            continue
        if high == math.inf:
            bounds = f"a finite number {'>' if open_low else '>='} {low}"
        else:
            bounds = f"a number in {'(' if open_low else '['}{low}, {high})"
        raise ValueError(f"--{name.replace('_', '-')} must be {bounds}, got {value}")


@dataclass
class PretrainOptions:
    """The settings of a masked-LM pretraining run: one field per option of
    ``scripts/pretrain_mlm.py`` (same names and defaults; ``head`` is ``--mlm-head``: where the
    model computes the vocabulary logits, see :class:`StreamSettings`). Model sizes left None come from
    ``config`` (a BERT config file), else :data:`DEFAULT_MODEL` (4 layers x 256, 128 positions)."""

    corpus: List[str] = field(default_factory=lambda: list(BUILTIN_CORPORA))
    out: str = ""
    vocab: Optional[str] = None
    config: Optional[str] = None
    layers: Optional[int] = None
    hidden: Optional[int] = None
    heads: Optional[int] = None
    intermediate: Optional[int] = None
    max_length: Optional[int] = None
    dropout: Optional[float] = None
    steps: int = 20000
    batch_size: int = 32
    lr: float = 5e-4
    warmup: Optional[int] = None
    weight_decay: float = 0.01
    grad_accum: int = 1
    ema: float = 0.0
    seed: int = 0
    eval_every: int = 500
    held_out: float = 0.02
    eval_sequences: int = 512
    mask_rate: float = MASK_RATE
    head: str = "masked"
    resume: bool = False
    stop_after: Optional[int] = None
    quiet: bool = False
    distribution: Optional[str] = None
    coordinator: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None

    def check(self):
        """Raise a one-line error for a setting that cannot work (before any framework starts)."""
        _check_numbers(self)
        if not self.out:
            raise ValueError("give the output directory (--out)")
        if self.head not in HEADS:
            raise ValueError(f"--mlm-head {self.head}: give {' or '.join(HEADS)}")
        for name in self.corpus or []:
            if name not in BUILTIN_CORPORA and not os.path.isfile(name):
                problem = "a folder, give the text files in it" if os.path.isdir(name) else "no such file"
                raise FileNotFoundError(f"--corpus {name}: {problem} (give {' or '.join(BUILTIN_CORPORA)} or "
                                        f"text files of one document a line)")
        if not self.corpus:
            raise ValueError("give at least one --corpus")
        if self.vocab is not None and not os.path.isfile(self.vocab):
            raise FileNotFoundError(f"--vocab {self.vocab}: no such file (give a BERT vocab.txt)")
        self.vocab_path()
        config = self.model_config()
        if config["hidden_size"] % config["num_attention_heads"]:
            raise ValueError(f"--hidden {config['hidden_size']} is not divisible by --heads "
                             f"{config['num_attention_heads']}: each head gets hidden / heads dimensions")
        return self

    def vocab_path(self):
        return self.vocab or chinese_bert_vocab()

    def model_config(self):
        """The BERT sizes (no vocabulary): defaults, then ``config``, then the options given;
        ``max_position_embeddings`` is the sequence length (``max_length``)."""
        config = dict(DEFAULT_MODEL)
        length = DEFAULT_MAX_LENGTH
        if self.config:
            from_file = read_bert_config(self.config)
            length = from_file.pop("max_position_embeddings", length)
            config.update(from_file)
        for key, name in SIZE_FLAGS.items():
            if getattr(self, name) is not None:
                config[key] = getattr(self, name)
        if self.intermediate is None and self.hidden is not None and not self.config:
            config["intermediate_size"] = 4 * self.hidden
        if self.dropout is not None:
            config["hidden_dropout_prob"] = config["attention_probs_dropout_prob"] = self.dropout
        config["max_position_embeddings"] = self.max_length or length
        return config

    def stream_settings(self, vocab_size):
        return StreamSettings(self.batch_size, vocab_size, self.seed, self.mask_rate, self.head)

    def run_settings(self, data):
        """What a resumed run must share with the run it continues (``OUT/train_config.json``)."""
        return {"model": self.model_config(), "vocabulary": {"size": data.vocabulary.size,
                                                             "digest": data.vocabulary.digest()},
                "corpus": [name if name in BUILTIN_CORPORA else os.path.abspath(name) for name in self.corpus],
                "batch_size": self.batch_size, "seed": self.seed, "held_out": self.held_out,
                "mask_rate": self.mask_rate, "grad_accum": self.grad_accum, "ema": self.ema,
                "training_data": data.digest(), "mlm_head": self.head}


__all__ = ["SPECIAL_TOKENS", "PAD", "UNK", "CLS", "SEP", "MASK", "FIRST_REGULAR", "MASK_RATE", "BUILTIN_CORPORA",
           "CorpusVocabulary", "standard_tokenizer", "encode_documents", "cut_vocabulary", "to_corpus_ids",
           "split_documents", "pack_documents", "mask_tokens", "mask_slots", "masked_positions", "HEADS",
           "StreamSettings", "model_inputs", "training_pair", "sequence_indices", "batch_for_step", "batches",
           "held_out_batch", "read_corpus", "PretrainData", "prepare_data", "DEFAULT_MODEL",
           "DEFAULT_MAX_LENGTH", "read_bert_config", "PretrainOptions"]
