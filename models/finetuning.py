"""Fine-tuning a text classifier on any BERT checkpoint (what ``scripts/finetune_classifier.py``
runs): the data of :mod:`toolkit.classification_data` encoded with the checkpoint's
vocabulary, the model of :func:`models.classifier.build_classifier`, AdamW (plain or
layer-wise) with linear warmup and decay, early stopping on the validation accuracy (the best
epoch's weights kept), the test accuracy, and the model folder; then ``predict`` and
``evaluate`` with that folder.

The model folder ``OUT`` holds ``model.keras`` (``keras.saving.load_model`` reopens it after
``import models``), ``classifier.json`` (the label names, the encoding settings and the run's
figures), ``vocab.txt`` (the tokenizer's vocabulary) and ``log.csv`` (Keras' CSVLogger, a row
an epoch). The run writes into ``OUT.partial/`` and renames it to ``OUT`` when complete (a
failed or interrupted run removes it), so ``OUT`` never holds half a model.

Texts are batched by length (:class:`models.length_buckets.LengthBuckets`, as Hugging Face's
``group_by_length``): each batch is padded to its own longest text rounded up to a multiple of
16, not to the longest of the data, so a step costs what its texts need.
"""

import json
import math
import os
import shutil
import sys

import keras
import numpy as np

from models.classifier import build_classifier, classifier_optimizer, compile_classifier
from models.config import load_config
from models.distribution import (DistributionError, batch_axis_size, check_distributed_model, process_settings,
                                 setup_distribution)
from models.length_buckets import LengthBuckets
from toolkit.checkpoints import save_json
from toolkit.classification_data import encode_texts, label_ids, refuse_too_long
from toolkit.tokenizers import Tokenizer

MODEL_FILE = "model.keras"
SETTINGS_FILE = "classifier.json"
VOCAB_FILE = "vocab.txt"
LOG_FILE = "log.csv"
PARTIAL = ".partial"


def _to_stderr(message):
    print(message, file=sys.stderr)


# ---------------------------------------------------------------- encoding
def check_vocabulary(model, tokenizer, vocab_path, checkpoint):
    """ValueError in one line when the tokenizer's ids do not address the checkpoint's token
    embedding row for row (a vocabulary of another model)."""
    rows = int(model.get_layer("Embedding-Token").input_dim)
    if tokenizer.vocab_size != rows:
        raise ValueError(f"--vocab {vocab_path} has {tokenizer.vocab_size} tokens but checkpoint {checkpoint} has "
                         f"{rows} token embeddings: give the vocab.txt that ships with the checkpoint (--vocab)")


def length_limit(model, options):
    """The longest text the run takes (``--max-length``, default all the checkpoint's positions,
    squared with ``--hierarchical``), and the checkpoint's positions; ValueError when
    ``--max-length`` is more than the model reads."""
    positions = int(model.transformer.max_position)
    limit = positions ** 2 if options.hierarchical else positions
    if options.max_length is not None and options.max_length > limit:
        if options.hierarchical:
            raise ValueError(f"--max-length {options.max_length} is more than {positions}**2 = {limit} tokens, the "
                             f"most --hierarchical reads: give --max-length {limit} or less, and --truncate")
        raise ValueError(f"--max-length {options.max_length} is more than the checkpoint's {positions} positions: "
                         f"add --hierarchical (reads up to {positions ** 2} tokens) or give --max-length {positions}")
    return options.max_length or limit, positions


def length_fix(longest, positions, hierarchical):
    """What to do about a text of ``longest`` tokens, for the too-long message."""
    if longest <= positions:
        return f"give --max-length {longest}"
    if longest <= positions ** 2:
        return f"give --max-length {longest}" + ("" if hierarchical else " with --hierarchical (past the "
                                                 f"checkpoint's {positions} positions)")
    return f"it is more than --hierarchical reads ({positions}**2 = {positions ** 2} tokens)"


def encode_split(tokenizer, split, max_length, truncate, positions, hierarchical):
    """``{name: (id_lists, class indices)}`` of the train, validation and test texts, and the
    number of texts cut (``truncate``); ValueError naming the first text longer than
    ``max_length`` otherwise (with how many more there are, in all three splits)."""
    names = ("train", "validation", "test")
    examples = [example for name in names for example in getattr(split, name)]
    id_lists, lengths = encode_texts(tokenizer, [example.text for example in examples], max_length)
    if not truncate:
        by_line = sorted(range(len(examples)), key=lambda index: examples[index].line)  # name the first line
        refuse_too_long([lengths[index] for index in by_line], max_length,
                        lambda rank: split.where(examples[by_line[rank]]), length_fix(max(lengths), positions,
                                                                                      hierarchical))
    encoded, start = {}, 0
    for name in names:
        part = getattr(split, name)
        encoded[name] = (id_lists[start:start + len(part)], label_ids(part, split.label_names))
        start += len(part)
    return encoded, sum(length > max_length for length in lengths)


# ---------------------------------------------------------------- training
def build_run_model(options, num_classes):
    """The classifier of ``options`` (checkpoint, pooling, dropout, hierarchical positions),
    the tokenizer of its vocabulary (checked against the checkpoint) and that vocabulary's path."""
    config, vocab = options.backbone_files()
    tokenizer = Tokenizer(vocab, do_lower_case=not options.cased)
    model = build_classifier(config, options.checkpoint, num_classes, options.pooling,
                             hierarchical=True if options.hierarchical else None, dropout=options.dropout)
    check_vocabulary(model, tokenizer, vocab, options.checkpoint)
    return model, tokenizer, vocab


def length_buckets(model, id_lists, labels=None, batch_size=32, shuffle=False, seed=0, limit=None):
    """:class:`LengthBuckets` of ``id_lists`` for ``model`` (its padding id; segment ids when it
    takes them), each batch a whole number of rows a device of the distribution's batch axis."""
    distribution = keras.distribution.distribution()
    return LengthBuckets(id_lists, labels, batch_size, pad_id=model.transformer.pad_token_id,
                         segments=len(model.inputs) > 1, shuffle=shuffle, seed=seed, limit=limit,
                         rows_multiple=batch_axis_size(distribution) if distribution else 1)


def accuracy(model, batches):
    """The share of the texts of ``batches`` (:class:`LengthBuckets` with labels) whose label is
    the model's most probable class."""
    probabilities = batches.real(model.predict(batches, verbose=0))
    return float(np.mean(np.argmax(probabilities, axis=-1) == batches.ordered_labels()))


def fit(model, data, options, folder):
    """``model.fit`` with early stopping on the validation accuracy (``--patience`` epochs
    without a better one; the best epoch's weights restored at the end) and a CSV log in
    ``folder``; returns ``(epochs run, best epoch (1-based), its validation accuracy)``."""
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=options.patience,
                                         restore_best_weights=True)
    history = model.fit(data["train"], epochs=options.epochs, validation_data=data["validation"],
                        verbose=0 if options.quiet else 2,
                        callbacks=[stop, keras.callbacks.CSVLogger(os.path.join(folder, LOG_FILE))])
    scores = history.history["val_accuracy"]
    best = int(np.argmax(scores))
    return len(scores), best + 1, float(scores[best])


def finetune(options, split, report=_to_stderr):
    """Fine-tune ``options.checkpoint`` on ``split`` (:func:`toolkit.classification_data.load_split`)
    with ``options`` (:class:`toolkit.classification_data.FinetuneOptions`, checked), write the
    model folder ``options.out`` (see the module docstring) and return the run's summary (also
    in ``classifier.json``): the test accuracy, its size, the epochs and the settings."""
    keras.utils.set_random_seed(options.seed)
    config, _ = options.backbone_files()
    if process_settings(options.coordinator, options.num_processes, options.process_id) is not None:
        raise DistributionError("finetune_classifier.py runs in one process (its devices: --distribution data or "
                                "model:N); several processes are for pretrain_mlm.py and train_xiangqi.py")
    setup_distribution(options.distribution, load_config(config) if config else None, options.batch_size,
                       options.coordinator, options.num_processes, options.process_id)
    model, tokenizer, vocab = build_run_model(options, len(split.label_names))
    check_distributed_model(model)
    max_length, positions = length_limit(model, options)
    encoded, cut = encode_split(tokenizer, split, max_length, options.truncate, positions, options.hierarchical)
    if cut:
        report(f"{cut} texts longer than --max-length {max_length} tokens cut to it (--truncate)")
    data = {name: length_buckets(model, id_lists, labels, options.batch_size, shuffle=name == "train",
                                 seed=options.seed, limit=max_length) for name, (id_lists, labels) in encoded.items()}
    steps = options.epochs * math.ceil(len(split.train) / options.batch_size)
    compile_classifier(model, classifier_optimizer(options.lr, steps, round(options.warmup * steps),
                                                   options.weight_decay, options.layerwise_decay,
                                                   model.transformer.num_hidden_layers))
    partial = start_output(options.out)
    try:
        epochs, best_epoch, validation_accuracy = fit(model, data, options, partial)
        summary = {"test_accuracy": accuracy(model, data["test"]),
                   "test_texts": len(split.test), "train_texts": len(split.train),
                   "validation_texts": len(split.validation), "validation_accuracy": validation_accuracy,
                   "epochs_run": epochs, "best_epoch": best_epoch, "texts_cut": cut}
        settings = {"label_names": list(split.label_names), "max_length": max_length,
                    "do_lower_case": not options.cased, "data": split.source, "checkpoint": options.checkpoint,
                    "pooling": options.pooling, "hierarchical": options.hierarchical, "lr": options.lr,
                    "layerwise_decay": options.layerwise_decay, "epochs": options.epochs,
                    "batch_size": options.batch_size, "seed": options.seed, **summary}
        save_model_folder(model, partial, vocab, settings)
    except BaseException:  # a failed or interrupted run leaves nothing behind
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finish_output(partial, options.out)
    return summary


# --------------------------------------------------------- the model folder
def start_output(out):
    """A fresh ``OUT.partial/`` (a leftover of a killed run removed)."""
    partial = os.path.normpath(out) + PARTIAL
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    return partial


def finish_output(partial, out):
    """Rename the complete ``OUT.partial/`` to ``OUT`` (an empty ``OUT`` folder is replaced)."""
    if os.path.isdir(out):
        os.rmdir(out)  # empty (FinetuneOptions.check): anything else is never overwritten
    os.replace(partial, out)


def save_model_folder(model, folder, vocab_path, settings):
    """``model.keras`` (an uncompiled copy: no optimizer state in the file, and opening it needs
    no class of the run's optimizer), ``vocab.txt`` and ``classifier.json`` in ``folder``."""
    bare = type(model).from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(os.path.join(folder, MODEL_FILE))
    shutil.copyfile(vocab_path, os.path.join(folder, VOCAB_FILE))
    save_json(settings, os.path.join(folder, SETTINGS_FILE))


def load_classifier(folder):
    """``(model, tokenizer, settings)`` of a model folder written by :func:`finetune`."""
    for name in (MODEL_FILE, SETTINGS_FILE, VOCAB_FILE):
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(f"--model {folder}: no {name} in it (give a folder written by "
                                    f"finetune_classifier.py train)")
    with open(os.path.join(folder, SETTINGS_FILE), encoding="utf-8") as handle:
        settings = json.load(handle)
    tokenizer = Tokenizer(os.path.join(folder, VOCAB_FILE), do_lower_case=settings["do_lower_case"])
    return keras.saving.load_model(os.path.join(folder, MODEL_FILE)), tokenizer, settings


# ------------------------------------------------------ predict and evaluate
def class_probabilities(loaded, texts, truncate=False, where=None, batch_size=32):
    """``(len(texts), classes)`` probabilities of a :func:`load_classifier` triple; a text
    longer than the model's ``max_length`` is cut with ``truncate``, else refused (ValueError)."""
    model, tokenizer, settings = loaded
    max_length = settings["max_length"]
    id_lists, lengths = encode_texts(tokenizer, texts, max_length)
    if not truncate:
        refuse_too_long(lengths, max_length, where or (lambda index: f"text {index + 1}"),
                        f"the model was trained on texts of at most {max_length} tokens", "the model's --max-length")
    batches = length_buckets(model, id_lists, batch_size=batch_size, limit=max_length)
    return batches.restore_order(model.predict(batches, verbose=0))


def predict(folder, texts, truncate=False, batch_size=32):
    """``[(label, probability), ...]``: the most probable label of each text and its probability."""
    loaded = load_classifier(folder)
    probabilities = class_probabilities(loaded, texts, truncate, batch_size=batch_size)
    names = loaded[2]["label_names"]
    return [(names[int(index)], float(row[index])) for row, index in zip(probabilities, probabilities.argmax(-1))]


def evaluate(folder, examples, where, truncate=False, batch_size=32):
    """``(accuracy, n)`` of the model folder on labelled ``examples``; ValueError naming the
    first example (``where(example)``) whose label the model does not know."""
    loaded = load_classifier(folder)
    names = loaded[2]["label_names"]
    for example in examples:
        if example.label not in names:
            raise ValueError(f"{where(example)}: label '{example.label}' is not one of the model's labels "
                             f"{names}")
    probabilities = class_probabilities(loaded, [example.text for example in examples], truncate,
                                        lambda index: where(examples[index]), batch_size)
    return float(np.mean(probabilities.argmax(-1) == label_ids(examples, names))), len(examples)


__all__ = ["finetune", "predict", "evaluate", "load_classifier", "class_probabilities", "check_vocabulary",
           "length_limit", "encode_split", "length_buckets", "accuracy", "MODEL_FILE", "SETTINGS_FILE", "VOCAB_FILE"]
