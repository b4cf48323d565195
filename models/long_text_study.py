"""The long-text study (issue 16, what ``scripts/long_text_study.py`` runs): masked-token
accuracy of a BERT trained at ``P`` positions (the bundled Chinese BERT: 128) on held-out
text read at lengths it never saw, for each way of reaching those positions, zero-shot and
after ``K`` steps of continued MLM training.

**Cells.** A cell is ``(method, attention, length, K, seed)``:

* methods (:data:`METHODS`): ``chunked`` (the text cut into pieces of ``P - 1`` tokens, each
  read alone as ``[CLS] piece``, the way the pretraining sequences look; the plain model),
  ``hierarchical`` (alpha 0.4; ``hierarchical-A`` for another alpha, e.g. ``hierarchical-0.3``:
  the builder's ``hierarchical_position``: continued training trains the ``P`` rows the
  decomposition is made of), ``copy``, ``interpolate``, ``random``
  (:mod:`models.position_extension`: the table extended to the training length; a length
  past it is read with the table extended again, by the same method, from the table as it is
  then, trained or not; ``copy``'s and ``interpolate``'s tables are the same either way);
* attention (:data:`ATTENTIONS`): ``softmax``, ``performer-M`` (FAVOR+ with ``M`` random
  features, seeded by the cell's seed), ``taylor``. The methods run with softmax; the other
  attentions with one method (``attention_method``, default ``hierarchical``);
* the length the held-out text is read at; ``K`` continued-training steps; the seed (of the
  training stream's order and masks, the dropout, the random rows and Performer's features).

**Data.** The documents (default People's Daily) split as pretraining split them
(:func:`toolkit.mlm_data.split_documents` with the model's held-out share,
:func:`models.long_text_mlm.held_out_fraction`), tokenized with the model's ``vocab.txt``.
Evaluation: the held-out documents packed at the length (:func:`toolkit.mlm_data.pack_documents`),
at most ``max_sequences`` sequences, masked once with a fixed seed (BERT's 15%, 80/10/10) that
does not depend on the method, ``K`` or the seed: every method fills the same masks.
Continued training: ``K`` steps of MLM at ``train_length`` (512) on the training documents,
AdamW with warmup + cosine decay (:func:`models.training.make_optimizer`, the same ``lr`` for
every method), batch ``i`` a function of ``(seed, i)`` only (:func:`toolkit.mlm_data.batch_for_step`),
so every method sees the same batches; ``chunked`` trains on the same batches cut into its pieces.

**Results.** One JSON line per finished cell in the results file (method, alpha, attention,
length, steps, seed, accuracy, loss, masked tokens, seconds, train seconds, the model's digest
and the setup); a rerun skips the cells already there; a file written for another model or
setup is refused. :func:`write_report` makes the Markdown report and its PNG from the file alone.
"""

import gc
import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from models.long_text_mlm import held_out_fraction, score_predictions, window_spans
from models.mlm_training import BUNDLED_BERT_DIR, masked_lm_loss, masked_mlm_model, masked_token_accuracy
from models.position_extension import build_extended_mlm, extend_mlm, position_table
from toolkit.mlm_data import (CLS, PAD, StreamSettings, batch_for_step, encode_documents, mask_slots, mask_tokens,
                              masked_positions, model_inputs, pack_documents, read_corpus, split_documents)

METHODS = ("chunked", "hierarchical", "copy", "interpolate", "random")
EXTENSION_METHODS = ("copy", "interpolate", "random")
ATTENTIONS = ("softmax", "performer-64", "performer-256", "taylor")
DEFAULT_ALPHA = 0.4
DEFAULT_RESULTS = os.path.join("docs", "long_text_study.jsonl")
DEFAULT_MD = os.path.join("docs", "long_text_study.md")
DEFAULT_PNG = os.path.join("docs", "long_text_study.png")
EVAL_MASK_SEED = 16  # the evaluation masks: the same for every method, K and seed
EVAL_GROUP = 256  # rows a predict call: bounds the logits held at once
SETUP_OPTIONS = {"positions": "--model", "train_length": "--train-length", "batch_size": "--batch-size", "lr": "--lr",
                 "max_sequences": "--max-sequences", "held_out": "--held-out", "data": "--corpus"}


# ------------------------------------------------------------------ names
def parse_method(name):
    """``(kind, alpha)`` of a method name: ``chunked``, ``copy``, ``interpolate``, ``random``
    (alpha None), ``hierarchical`` (alpha 0.4) or ``hierarchical-A`` (alpha ``A`` in (0, 1))."""
    if name in METHODS and name != "hierarchical":
        return name, None
    if name == "hierarchical":
        return name, DEFAULT_ALPHA
    if str(name).startswith("hierarchical-"):
        try:
            alpha = float(name.split("-", 1)[1])
        except ValueError:
            alpha = None
        if alpha is not None and 0.0 < alpha < 1.0:
            return "hierarchical", alpha
        raise ValueError(f"--methods {name}: hierarchical-ALPHA needs an alpha strictly between 0 and 1 "
                         f"(e.g. hierarchical-0.3)")
    raise ValueError(f"--methods {name}: unknown method; give {', '.join(METHODS)} or hierarchical-ALPHA "
                     f"(e.g. hierarchical-0.3)")


def method_label(kind, alpha=None):
    """The name a method's cells carry: ``hierarchical`` for alpha 0.4, ``hierarchical-0.3`` for another."""
    if kind != "hierarchical" or alpha == DEFAULT_ALPHA:
        return kind
    return f"hierarchical-{alpha:g}"


def parse_attention(name, seed=0):
    """``(attention, attention_kwargs)`` for the builder: ``softmax``, ``taylor`` or
    ``performer-M`` (``{'nb_features': M, 'seed': seed}``)."""
    if name in ("softmax", "taylor"):
        return name, None
    if str(name).startswith("performer-") and name.split("-", 1)[1].isdigit() and int(name.split("-", 1)[1]) > 0:
        return "performer", {"nb_features": int(name.split("-", 1)[1]), "seed": int(seed)}
    raise ValueError(f"--attentions {name}: unknown attention; give softmax, taylor or performer-M "
                     f"(M random features, e.g. performer-64)")


# --------------------------------------------------------------- settings
@dataclass
class StudySettings:
    """What to run: one field per option of ``scripts/long_text_study.py`` (same names and
    defaults). ``held_out`` None: the model's own held-out share."""

    model_dir: Optional[str] = None
    results: str = DEFAULT_RESULTS
    corpus: Sequence[str] = ("peoples-daily",)
    methods: Sequence[str] = METHODS
    attentions: Sequence[str] = ATTENTIONS
    attention_method: str = "hierarchical"
    lengths: Sequence[int] = (128, 512, 1024)
    steps: Sequence[int] = (0, 200, 1000)
    seeds: Sequence[int] = (0, 1)
    batch_size: int = 8
    lr: float = 1e-4
    train_length: int = 512
    max_sequences: Optional[int] = None
    held_out: Optional[float] = None
    progress: bool = False  # a Keras progress bar over each cell's continued training

    def variants(self):
        """``[(method label, attention), ...]``: each method with softmax, then every other
        attention with ``attention_method``."""
        pairs = [(method_label(*parse_method(method)), "softmax") for method in self.methods]
        others = [name for name in self.attentions if name != "softmax"]
        pairs += [(method_label(*parse_method(self.attention_method)), name) for name in others]
        if "softmax" not in self.attentions:
            pairs = [pair for pair in pairs if pair[1] != "softmax"]
        return list(dict.fromkeys(pairs))

    def check(self, positions):
        """One-line ValueError for the first setting that cannot work with a model of ``positions``."""
        _check_numbers(self)
        for name in self.attentions:
            parse_attention(name)
        kinds = {parse_method(method)[0] for method, _ in self.variants()}
        if not self.variants():
            raise ValueError("no cell to run: give at least one --methods and --attentions")
        limit = positions ** 2
        if "hierarchical" in kinds:
            for name, value in [("--lengths", length) for length in self.lengths] + [("--train-length",
                                                                                       self.train_length)]:
                if value > limit:
                    raise ValueError(f"{name} {value} is more than hierarchical positions reach: {positions}**2 = "
                                     f"{limit} tokens; give {limit} or fewer")
        extending = sorted(kinds & set(EXTENSION_METHODS))
        if extending and self.train_length <= positions:
            raise ValueError(f"--train-length {self.train_length} is not above the model's {positions} trained "
                             f"positions: {', '.join(extending)} extend the table to the training length; give a "
                             f"--train-length above {positions} (chunked and hierarchical read the trained length "
                             f"as it is)")
        return self

    def setup(self, data_digest, held_out):
        """What every cell of one results file shares (a rerun with other values is refused)."""
        return {"train_length": self.train_length, "batch_size": self.batch_size, "lr": self.lr,
                "max_sequences": self.max_sequences, "held_out": held_out, "data": data_digest}



def _check_numbers(settings):
    for name, values, low in (("--lengths", settings.lengths, 2), ("--steps", settings.steps, 0),
                              ("--seeds", settings.seeds, 0)):
        if not values:
            raise ValueError(f"give at least one value of {name}")
        for value in values:
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"{name} {value}: must be an integer >= {low}")
    for name, value, low in (("--batch-size", settings.batch_size, 1), ("--train-length", settings.train_length, 2),
                             ("--max-sequences", settings.max_sequences, 1)):
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not settings.lr > 0:
        raise ValueError(f"--lr must be a number > 0, got {settings.lr}")
    if settings.held_out is not None and not 0.0 < settings.held_out < 1.0:
        raise ValueError(f"--held-out must lie strictly between 0 and 1, got {settings.held_out}")


# ------------------------------------------------------------------- data
@dataclass
class StudyData:
    """The documents as ids of the model's vocabulary: ``train`` and ``held_out`` (lists of arrays)."""

    train: List[np.ndarray]
    held_out: List[np.ndarray]
    vocab_size: int

    def digest(self):
        """A checksum of both splits' ids (what one results file must share)."""
        digest = hashlib.sha256()
        for split in (self.train, self.held_out):
            for ids in split:
                digest.update(np.asarray(ids, np.int32).tobytes() + b"|")
            digest.update(b"#")
        return digest.hexdigest()[:16]


def study_data(documents, tokenizer, held_out):
    """Split ``documents`` (:func:`toolkit.mlm_data.split_documents`, share ``held_out``) and
    tokenize them with the model's ``tokenizer``. ValueError when nothing is held out."""
    train, held = split_documents(documents, held_out)
    if not held:
        raise ValueError(f"no document of the {len(documents)} is held out with the share {held_out:g}: give a "
                         f"larger --held-out or more documents")
    return StudyData(encode_documents(train, tokenizer), encode_documents(held, tokenizer), tokenizer.vocab_size)


def evaluation_set(data, length, max_sequences=None):
    """``(inputs, targets)`` ``(sequences, length)``: the held-out documents packed at ``length``,
    the first ``max_sequences``, masked with the fixed seed ``(EVAL_MASK_SEED, length)``."""
    sequences = pack_documents(data.held_out, length)[:max_sequences]
    return mask_tokens(sequences, np.random.default_rng([EVAL_MASK_SEED, length]), data.vocab_size)


def cut_pieces(inputs, targets, positions):
    """The chunked baseline's rows: each sequence's tokens after its ``[CLS]`` cut into pieces
    of ``positions - 1`` (:func:`models.long_text_mlm.window_spans`), each read as ``[CLS] piece``
    (a short last piece padded with ``[PAD]``). Returns ``(inputs, targets)`` of width
    ``min(positions, length)``, the pieces of every sequence one after another, piece by piece."""
    inputs, targets = np.asarray(inputs, np.int32), np.asarray(targets, np.int32)
    rows, length = inputs.shape
    width = min(positions, length)
    pieces_in, pieces_target = [], []
    for start, end in window_spans(length + 1, width + 1):
        piece = np.full((rows, width), PAD, np.int32)
        piece[:, 0] = CLS
        piece[:, 1:1 + end - start] = inputs[:, start:end]
        target = np.zeros((rows, width), np.int32)
        target[:, 1:1 + end - start] = targets[:, start:end]
        pieces_in.append(piece)
        pieces_target.append(target)
    return np.concatenate(pieces_in), np.concatenate(pieces_target)


# ----------------------------------------------------------------- models
def trained_positions(model_dir):
    """``max_position_embeddings`` of a model folder's ``config.json``."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        return int(json.load(f)["max_position_embeddings"])


def model_digest(model_dir):
    """The first 16 hex digits of the SHA-256 of the folder's ``model.safetensors``."""
    digest = hashlib.sha256()
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def base_model(model_dir, method, attention, seed, train_length):
    """The BERT + MLM head (logits) a method starts from: ``chunked`` the folder's model,
    ``hierarchical`` it with ``hierarchical_position=alpha``, an extension method it with the
    table extended to ``train_length`` (random rows seeded by ``(seed, P)``)."""
    from models.builder import build_transformer_model

    kind, alpha = parse_method(method)
    attention, kwargs = parse_attention(attention, seed)
    if kind in EXTENSION_METHODS:
        return build_extended_mlm(model_dir, train_length, kind, seed=(seed, trained_positions(model_dir)),
                                  attention=attention, attention_kwargs=kwargs)
    return build_transformer_model(model_dir, model_dir, with_mlm="linear", attention=attention,
                                   attention_kwargs=kwargs, hierarchical_position=alpha)


def reader_at(full, method, length, seed):
    """The model that reads ``length`` tokens: ``full``, or (an extension method whose table is
    shorter) ``full`` with its table extended again by the method (random rows seeded by
    ``(seed, rows)``)."""
    kind, _ = parse_method(method)
    rows = len(position_table(full))
    if kind in EXTENSION_METHODS and length > rows:
        return extend_mlm(full, length, kind, seed=(seed, rows))
    return full


# ------------------------------------------------------------- evaluation
def evaluate(full, inputs, targets, batch_size):
    """``(accuracy, mean cross-entropy, masked tokens)`` of ``full`` on the masked rows
    (``targets`` > 0 are scored; rows without one are skipped)."""
    keep = (np.asarray(targets) > 0).any(axis=1)
    inputs, targets = np.asarray(inputs)[keep], np.asarray(targets)[keep]
    if not len(inputs):
        raise ValueError("the held-out text has no token to mask at this length: give more held-out text")
    positions, labels = masked_positions(targets, int((targets > 0).sum(axis=1).max()))
    model = masked_mlm_model(full)
    hits = total = count = 0
    for start in range(0, len(inputs), EVAL_GROUP):
        rows = slice(start, start + EVAL_GROUP)
        logits = model.predict(list(model_inputs(inputs[rows])) + [positions[rows]], batch_size=batch_size,
                               verbose=0)
        group_hits, group_total, group_count = score_predictions(logits, labels[rows])
        hits, total, count = hits + group_hits, total + group_total, count + group_count
    return hits / count, total / count, count


# --------------------------------------------------------------- training
def training_batches(sequences, settings, vocab_size, seed, chunk_positions=None):
    """The continued-training stream (endless): :func:`toolkit.mlm_data.batch_for_step` at
    ``seed``; with ``chunk_positions`` (the chunked method) each batch cut into its pieces
    (:func:`cut_pieces`), the same tokens and masks."""
    if chunk_positions is None:
        stream = StreamSettings(settings.batch_size, vocab_size, seed)
        yield from (batch_for_step(sequences, step, stream) for step in itertools.count())
        return
    stream = StreamSettings(settings.batch_size, vocab_size, seed, head="all")
    slots = min(chunk_positions - 1, mask_slots(sequences.shape[1]))
    for step in itertools.count():
        (inputs, _), targets = batch_for_step(sequences, step, stream)
        inputs, targets = cut_pieces(inputs, targets, chunk_positions)
        positions, labels = masked_positions(targets, slots)
        yield model_inputs(inputs) + (positions,), labels


def continue_training(full, data, settings, method, steps, seed, positions):
    """``steps`` steps of MLM at ``settings.train_length`` on the training documents (AdamW,
    warmup + cosine decay to ``settings.lr``; :func:`training_batches`); updates ``full``."""
    import keras

    from models.training import make_optimizer

    sequences = pack_documents(data.train, settings.train_length)
    if not len(sequences):
        raise ValueError("no training document to continue training on: give more documents or --steps 0")
    keras.utils.set_random_seed(seed)
    model = masked_mlm_model(full)
    model.compile(optimizer=make_optimizer(settings.lr, steps), loss=masked_lm_loss,
                  metrics=[masked_token_accuracy])
    chunked = parse_method(method)[0] == "chunked"
    stream = training_batches(sequences, settings, data.vocab_size, seed, positions if chunked else None)
    model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=1 if settings.progress else 0, shuffle=False)


# -------------------------------------------------------------- results
def cell_key(row):
    """``(method, attention, length, steps, seed)`` of a result row."""
    return row["method"], row["attention"], int(row["length"]), int(row["steps"]), int(row["seed"])


def read_results(path):
    """The rows of a results file (none if it does not exist). A torn last line (a kill in the
    middle of a write) is dropped from the file; a bad line elsewhere is a one-line ValueError."""
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise ValueError(f"--results {path}: line {number} is not a JSON result: give a results file "
                                 f"this study wrote, or a new one") from None
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def check_results(path, rows, digest, setup=None):
    """Refuse (one-line ValueError) a results file written for another model or another setup."""
    for row in rows:
        if row.get("model") != digest:
            raise ValueError(f"--results {path} holds results of another model (digest {row.get('model')}, this "
                             f"model's {digest}): give a new --results file, or the --model it was made with")
        for key, value in (setup or {}).items():
            before = (row.get("setup") or {}).get(key)
            if before != value:
                raise ValueError(f"--results {path} was made with {SETUP_OPTIONS.get(key, key)} {before}, here "
                                 f"{value}: give the same setting, or a new --results file")


def append_result(path, row):
    """Append one row as a JSON line, flushed to disk before the next cell starts."""
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------- the run
@dataclass
class StudyRun:
    """One study: its settings, data, model folder and results so far."""

    settings: StudySettings
    data: StudyData
    model_dir: str
    positions: int
    digest: str
    setup: dict
    rows: list = field(default_factory=list)
    say: object = print

    def finished(self):
        return {cell_key(row) for row in self.rows}

    def plan(self):
        """``[(method, attention, steps, seed, [lengths still to run]), ...]``, zero-shot first."""
        done, groups = self.finished(), []
        for steps in sorted(set(self.settings.steps)):
            for seed in self.settings.seeds:
                for method, attention in self.settings.variants():
                    lengths = [length for length in dict.fromkeys(self.settings.lengths)
                               if (method, attention, length, steps, seed) not in done]
                    if lengths:
                        groups.append((method, attention, steps, seed, lengths))
        return groups

    def run_group(self, method, attention, steps, seed, lengths):
        """Build (and train) the group's model once, then evaluate and record each length."""
        full = base_model(self.model_dir, method, attention, seed, self.settings.train_length)
        started = time.perf_counter()
        if steps:
            continue_training(full, self.data, self.settings, method, steps, seed, self.positions)
        train_seconds = time.perf_counter() - started
        for length in lengths:
            started = time.perf_counter()
            inputs, targets = evaluation_set(self.data, length, self.settings.max_sequences)
            if parse_method(method)[0] == "chunked":
                inputs, targets = cut_pieces(inputs, targets, self.positions)
            accuracy, loss, count = evaluate(reader_at(full, method, length, seed), inputs, targets,
                                             self.settings.batch_size)
            row = {"method": method, "alpha": parse_method(method)[1], "attention": attention, "length": length,
                   "steps": steps, "seed": seed, "accuracy": accuracy, "loss": loss, "masked_tokens": count,
                   "sequences": int(min(len(pack_documents(self.data.held_out, length)),
                                        self.settings.max_sequences or np.inf)),
                   "seconds": round(time.perf_counter() - started, 3), "train_seconds": round(train_seconds, 3),
                   "model": self.digest, "setup": self.setup}
            append_result(self.settings.results, row)
            self.rows.append(row)
            self.say(f"{method} {attention} length {length} K {steps} seed {seed}: accuracy {100 * accuracy:.2f}% "
                     f"loss {loss:.3f} ({count} masked tokens, {row['seconds']:.1f} s)")
        gc.collect()


def run_study(settings, documents=None, say=print):
    """Run every cell of ``settings`` not yet in its results file; returns all rows of the file.
    ``documents``: the texts to split (default: ``settings.corpus`` read with
    :func:`toolkit.mlm_data.read_corpus`). ``say``: where a line per cell goes."""
    from toolkit.tokenizers import Tokenizer, check_vocab_size

    model_dir = settings.model_dir or BUNDLED_BERT_DIR
    positions = trained_positions(model_dir)
    settings.check(positions)
    digest, rows = model_digest(model_dir), read_results(settings.results)
    check_results(settings.results, rows, digest)
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    tokenizer = Tokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=config.get("do_lower_case", True))
    check_vocab_size(tokenizer, int(config["vocab_size"]), f"of {model_dir}/config.json")
    if documents is None:
        documents = [text for name in settings.corpus for text in read_corpus(name)[0]]
    held_out = settings.held_out or held_out_fraction(model_dir)
    data = study_data(documents, tokenizer, held_out)
    setup = dict(settings.setup(data.digest(), held_out), positions=positions)
    check_results(settings.results, rows, digest, setup)
    run = StudyRun(settings, data, model_dir, positions, digest, setup, rows, say)
    planned = run.plan()
    if rows:
        say(f"{len(rows)} cells already in {settings.results}: skipped")
    for group in planned:
        run.run_group(*group)
    return run.rows


# ----------------------------------------------------------------- report
CELL_COMMAND = ("python scripts/long_text_study.py --methods M --attention-method M --attentions A --lengths L "
                "--steps K --seeds S")


def _method_rank(label):
    kind, alpha = parse_method(label)
    return METHODS.index(kind), alpha or 0.0


def _attention_rank(name):
    return (ATTENTIONS.index(name), 0) if name in ATTENTIONS else (len(ATTENTIONS), int(name.split("-")[-1]))


def accuracies(rows):
    """``{(method, attention, length, steps): {seed: accuracy}}`` of the result rows."""
    table = {}
    for row in rows:
        method, attention, length, steps, seed = cell_key(row)
        table.setdefault((method, attention, length, steps), {})[seed] = float(row["accuracy"])
    return table


def _percent(values):
    """The mean over seeds of ``{seed: accuracy}``, in percent."""
    return 100 * float(np.mean(list(values.values())))


def _cell(values, spread=False):
    if not values:
        return "-"
    seeds = list(values.values())
    text = f"{_percent(values):.1f}"
    if spread:
        text += f" ({100 * min(seeds):.1f}-{100 * max(seeds):.1f}, {len(seeds)} seed{'s' * (len(seeds) > 1)})"
    return text


def _table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(map(str, line)) + " |" for line in lines]


def _axes(rows):
    """The sorted methods, attentions, lengths and step counts present in ``rows``."""
    keys = [cell_key(row) for row in rows]
    return (sorted({key[0] for key in keys}, key=_method_rank), sorted({key[1] for key in keys}, key=_attention_rank),
            sorted({key[2] for key in keys}), sorted({key[3] for key in keys}))


def report_tables(rows):
    """The report's Markdown tables (lines): accuracy by method x length for each K (softmax),
    the attention variants, the seeds' spread at the largest K, and every cell."""
    methods, attentions, lengths, all_steps = _axes(rows)
    table, out = accuracies(rows), []
    header = [f"{length:,} tokens" for length in lengths]
    for steps in all_steps:
        out += ["", f"### Masked-token accuracy (%), K = {steps:,} continued-training steps", ""]
        out += _table(["method"] + header, [[method] + [_cell(table.get((method, "softmax", length, steps)))
                                                        for length in lengths] for method in methods
                                            if any((method, "softmax", length, steps) in table for length in lengths)])
    variants = [(method, attention) for attention in attentions for method in methods
                if any(key[:2] == (method, attention) for key in table)]
    others = {method for method, attention in variants if attention != "softmax"}
    lines = [[attention, method, f"{steps:,}"] + [_cell(table.get((method, attention, length, steps)))
                                                  for length in lengths]
             for method, attention in variants if method in others for steps in all_steps
             if any((method, attention, length, steps) in table for length in lengths)]
    out += ["", "### Attention variants: masked-token accuracy (%)", ""]
    out += _table(["attention", "method", "K"] + header, lines) if others else ["(no attention variant in the results)"]
    last = all_steps[-1]
    out += ["", f"### Seeds' spread at K = {last:,}: mean (min-max, seeds)", ""]
    out += _table(["method", "attention"] + header,
                  [[method, attention] + [_cell(table.get((method, attention, length, last)), spread=True)
                                          for length in lengths] for method, attention in variants
                   if any((method, attention, length, last) in table for length in lengths)])
    return out


def _all_cells(rows):
    ordered = sorted(rows, key=lambda row: (_method_rank(row["method"]), _attention_rank(row["attention"]),
                                            row["length"], row["steps"], row["seed"]))
    return _table(["method", "attention", "length", "K", "seed", "accuracy (%)", "loss (nats)", "masked tokens",
                   "eval s", "train s"],
                  [[row["method"], row["attention"], row["length"], row["steps"], row["seed"],
                    f"{100 * row['accuracy']:.2f}", f"{row['loss']:.3f}", row["masked_tokens"], row["seconds"],
                    row["train_seconds"]] for row in ordered])


def su_comparison(rows):
    """A line setting the hierarchical softmax cells beside Su's figures (None without them)."""
    table = accuracies(rows)
    positions = (rows[0].get("setup") or {}).get("positions")
    lengths = sorted({key[2] for key in table if key[:2] == ("hierarchical", "softmax") and key[3] == 0})
    if not lengths:
        return None
    zero = ", ".join(f"{_cell(table[('hierarchical', 'softmax', length, 0)])}% at {length:,}" for length in lengths)
    steps = sorted({key[3] for key in table if key[:2] == ("hierarchical", "softmax")})
    after = ", ".join(f"{_cell(table[('hierarchical', 'softmax', length, steps[-1])])}% at {length:,}"
                      for length in lengths if ("hierarchical", "softmax", length, steps[-1]) in table)
    line = (f"Su (kexue.fm/archives/7947; a 512-position Chinese BERT read at 1,536 tokens): about 38% zero-shot "
            f"against about 55% at 512, back above 55% after about 3,000 steps. Here (trained at {positions} "
            f"positions), hierarchical alpha 0.4 zero-shot: {zero}")
    return line + (f"; after K = {steps[-1]:,}: {after}." if steps[-1] and after else ".")


def _mean(table, method, length, steps):
    seeds = table.get((method, "softmax", length, steps))
    return _percent(seeds) if seeds else None


def reading_lines(rows):
    """What the softmax cells say, one bullet per K at the longest length read: hierarchical's
    drop from the trained length, the position methods' spread, random rows against Longformer's
    copy, the best method against chunks; and whether the model tells the methods apart at all
    (a spread under one point: it does not)."""
    table = accuracies(rows)
    positions = (rows[0].get("setup") or {}).get("positions")
    _, _, lengths, all_steps = _axes(rows)
    longest, lines = lengths[-1], []
    for steps in all_steps:
        means = {method: _mean(table, method, longest, steps) for method in ("hierarchical",) + EXTENSION_METHODS}
        means = {method: value for method, value in means.items() if value is not None}
        if longest <= (positions or 0) or len(means) < 2:
            continue
        best, worst = max(means, key=means.get), min(means, key=means.get)
        parts = [f"the position methods span {means[worst]:.1f}% ({worst}) to {means[best]:.1f}% ({best})"]
        start = _mean(table, "hierarchical", positions, steps)
        if start is not None and "hierarchical" in means:
            parts.insert(0, f"hierarchical {start:.1f}% at {positions:,} -> {means['hierarchical']:.1f}% "
                            f"({means['hierarchical'] - start:+.1f} points; Su: about -17 at 3x his positions)")
        if "random" in means and "copy" in means:
            parts.append(f"random rows against copy {means['random'] - means['copy']:+.1f} points "
                         f"(Longformer: copy far better)")
        chunked = _mean(table, "chunked", longest, steps)
        if chunked is not None:
            parts.append(f"{best} against chunks of {positions} {means[best] - chunked:+.1f} points")
        verdict = ("the model hardly tells the methods apart" if means[best] - means[worst] < 1.0
                   else "the methods differ")
        lines.append(f"- K = {steps:,}, {longest:,} tokens: " + "; ".join(parts) + f": {verdict}.")
    return ["", "### What the numbers say", ""] + lines if lines else []


def _sequences(limit):
    return f"at most the first {limit} held-out sequences" if limit else "every held-out sequence"


def write_report(results, md_path=DEFAULT_MD, png_path=DEFAULT_PNG):
    """Write the Markdown report (``md_path``) and its figure (``png_path``) from the results
    file alone; returns the Markdown. ValueError in one line when the file holds no result."""
    rows = read_results(results)
    if not rows:
        raise ValueError(f"--results {results}: no result yet (no such file, or an empty one): run the study first")
    digests = sorted({row.get("model") for row in rows})
    setup = rows[0].get("setup") or {}
    lines = ["# The long-text study: reaching positions a trained BERT never saw", "",
             f"Model digest {', '.join(map(str, digests))}; trained at {setup.get('positions')} positions. "
             f"Continued training at {setup.get('train_length')} tokens, batch {setup.get('batch_size')}, "
             f"peak learning rate {setup.get('lr')}; held-out share {setup.get('held_out')}, "
             f"{_sequences(setup.get('max_sequences'))} read at each length; data digest {setup.get('data')}. "
             f"{len(rows)} cells, from `{os.path.basename(results)}`.", "",
             f"Each cell: `{CELL_COMMAND}` with this setup (A = softmax for the methods' rows).",
             "", f"![accuracy against continued-training steps]({os.path.relpath(png_path, os.path.dirname(md_path) or '.')})"]
    comparison = su_comparison(rows)
    lines += ["", comparison] if comparison else []
    lines += reading_lines(rows) + report_tables(rows) + ["", "### Every cell", ""] + _all_cells(rows)
    text = "\n".join(lines) + "\n"
    plot_study(rows, png_path)
    if os.path.dirname(md_path):
        os.makedirs(os.path.dirname(md_path), exist_ok=True)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def plot_study(rows, png_path):
    """One panel per length: accuracy against K for each (method, attention), mean over seeds,
    bars from the lowest to the highest seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods, attentions, lengths, all_steps = _axes(rows)
    table = accuracies(rows)
    figure, axes = plt.subplots(1, len(lengths), figsize=(4.5 * len(lengths), 4), squeeze=False)
    for axis, length in zip(axes[0], lengths):
        for attention in attentions:
            for method in methods:
                cells = [(steps, list(table[(method, attention, length, steps)].values())) for steps in all_steps
                         if (method, attention, length, steps) in table]
                if not cells:
                    continue
                xs = [all_steps.index(steps) for steps, _ in cells]
                means = np.array([100 * np.mean(seeds) for _, seeds in cells])
                low = means - [100 * min(seeds) for _, seeds in cells]
                high = [100 * max(seeds) for _, seeds in cells] - means
                label = method if attention == "softmax" else f"{method}, {attention}"
                axis.errorbar(xs, means, yerr=[low, high], marker="o", capsize=3, label=label,
                              linestyle="-" if attention == "softmax" else "--")
        axis.set_xticks(range(len(all_steps)), [f"{steps:,}" for steps in all_steps])
        axis.set_title(f"{length:,} tokens")
        axis.set_xlabel("continued-training steps K")
        axis.set_ylabel("masked-token accuracy (%)")
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    figure.tight_layout()
    if os.path.dirname(png_path):
        os.makedirs(os.path.dirname(png_path), exist_ok=True)
    figure.savefig(png_path, dpi=100)
    plt.close(figure)
    return png_path


__all__ = ["METHODS", "EXTENSION_METHODS", "ATTENTIONS", "StudySettings", "StudyData", "StudyRun", "parse_method",
           "method_label", "parse_attention", "study_data", "evaluation_set", "cut_pieces", "model_digest",
           "base_model", "reader_at", "evaluate", "training_batches", "continue_training",
           "cell_key", "read_results", "check_results", "append_result", "run_study", "accuracies", "report_tables",
           "su_comparison", "write_report", "plot_study"]
