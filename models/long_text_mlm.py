"""Fill masks in a long text with a masked-LM BERT (what ``scripts/long_text_fill_masks.py``
runs): the whole document read in one pass with hierarchical position embeddings, against
the usual baseline, the document cut into windows the trained positions hold.

* **Document** (:func:`long_text_document`): ``[CLS]`` + the first ``tokens - 2`` tokens of
  the text + ``[SEP]``, as ids of the model's vocabulary (a :func:`models.mlm_training.save_mlm_model`
  folder's ``vocab.txt`` is the cut one: its tokenizer gives model ids directly).
* **Masking** (:func:`mask_draws`): BERT's 80/10/10 (:func:`toolkit.mlm_data.mask_tokens`),
  ``draws`` independent seeded draws over the whole document; both methods read the same
  masked inputs.
* **hierarchical**: the model built with ``hierarchical_position=alpha`` reads the whole
  document at once (up to ``positions**2`` tokens; inside the trained range its positions are
  the learned ones exactly).
* **chunked** (:func:`chunked_logits`): the document body cut into consecutive windows of
  ``positions - 2`` tokens, each read alone as ``[CLS] window [SEP]`` by the plain model (the
  same weights); the predictions are put back in place.

Each method's row: accuracy (argmax is the original token, over the selected tokens, pooled
over the draws), mean cross-entropy of the selected tokens (nats), the tokens of context each
prediction sees, and the seconds of the forward passes (after one untimed warm-up pass).

Default text (:func:`held_out_article`): the longest People's Daily article held out of
pretraining (the split of :func:`toolkit.mlm_data.split_documents` with the run's held-out
share), so the model has not read it.
"""

import json
import os
import time
from dataclasses import dataclass
from typing import List

import numpy as np

from layers.position_embedding import resolve_alpha
from models.builder import build_transformer_model
from models.mlm_training import BUNDLED_BERT_DIR, TRAIN_CONFIG, load_mlm_model
from toolkit.mlm_data import CLS, FIRST_REGULAR, MASK_RATE, SEP, mask_tokens, model_inputs, split_documents

MIN_TOKENS = 3  # [CLS], one token of text, [SEP]
DEFAULT_HELD_OUT = 0.02  # PretrainOptions' default held-out share
METHODS = ("hierarchical", "chunked")


@dataclass
class DocumentInfo:
    """What was read: ``source`` (where the text came from), its ``characters``, the document's
    ``tokens`` (``[CLS]`` and ``[SEP]`` included) and a ``note`` of what was done (cut / kept whole)."""

    source: str
    characters: int
    tokens: int
    note: str

    def line(self):
        """One line: ``document: <source>: <characters> characters; <note>``."""
        return f"document: {self.source}: {self.characters:,} characters; {self.note}"


@dataclass
class MethodResult:
    """One method's figures: ``context`` tokens each prediction sees, ``masked`` tokens predicted
    (all draws), ``accuracy`` (0..1), ``cross_entropy`` (nats), ``seconds`` of forward passes."""

    method: str
    label: str
    context: int
    masked: int
    accuracy: float
    cross_entropy: float
    seconds: float


@dataclass
class FillMasksResult:
    """:func:`fill_masks_long`'s answer: the ``document`` read and one row per method."""

    document: DocumentInfo
    rows: List[MethodResult]
    alpha: float
    draws: int
    rate: float
    positions: int

    def row(self, method):
        """The row of ``method`` ('hierarchical' or 'chunked')."""
        return next(row for row in self.rows if row.method == method)

    def accuracy_gain(self):
        """Hierarchical minus chunked accuracy, in percentage points."""
        return 100.0 * (self.row("hierarchical").accuracy - self.row("chunked").accuracy)


# ------------------------------------------------------------------ document
def long_text_document(text, tokenizer, tokens):
    """``(ids, note)``: ``[CLS]`` + the first ``tokens - 2`` text tokens + ``[SEP]`` as an int32
    array of the tokenizer's ids, and a note saying whether the text was cut or kept whole.
    ValueError in one line for a text without tokens or ``tokens`` < 3."""
    if tokens < MIN_TOKENS:
        raise ValueError(f"tokens must be >= {MIN_TOKENS} ([CLS], one token of text, [SEP]), got {tokens}")
    body = tokenizer.tokenize(text)[1:-1]
    if not body:
        raise ValueError("the text has no tokens (it is empty or holds only whitespace): give a text")
    count, room = len(body), tokens - 2
    if count > room:
        body = body[:room]
        note = f"text has {count:,} tokens: cut to the first {room:,} ({tokens:,} with [CLS], [SEP])"
    else:
        note = f"text has {count:,} tokens: kept whole ({count + 2:,} with [CLS], [SEP])"
    ids = np.asarray([CLS] + tokenizer.tokens_to_ids(body) + [SEP], np.int32)
    return ids, note


def held_out_fraction(model_dir):
    """The held-out share the model folder's run was trained with: its ``config.json``'s
    ``training`` entry, else the run's ``train_config.json`` beside the folder, else 0.02."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        training = json.load(f).get("training") or {}
    if "held_out" in training:
        return float(training["held_out"])
    run_config = os.path.join(os.path.dirname(os.path.abspath(model_dir)), TRAIN_CONFIG)
    if os.path.isfile(run_config):
        with open(run_config, encoding="utf-8") as f:
            saved = json.load(f)
        if "held_out" in saved:
            return float(saved["held_out"])
    return DEFAULT_HELD_OUT


def held_out_article(fraction=DEFAULT_HELD_OUT):
    """``(text, source)``: the longest People's Daily article of the share ``fraction`` held out
    of pretraining (:func:`toolkit.mlm_data.split_documents`), and a description of it."""
    from toolkit.corpora import peoples_daily

    documents, _ = peoples_daily()
    _, held = split_documents(documents, fraction)
    if not held:
        raise ValueError(f"no People's Daily article is held out with the share {fraction}: give a text")
    text = max(held, key=len)
    return text, (f"People's Daily, January 1998: the longest of the {len(held)} articles held out of "
                  f"pretraining (held-out share {fraction:g})")


# ------------------------------------------------------------------- masking
def mask_draws(ids, draws, vocab_size, rate=MASK_RATE, seed=0):
    """``(inputs, targets)``, int32 ``(draws, length)``: BERT's masking of the document ``ids``,
    draw ``d`` seeded by ``(seed, d)``; ``targets`` 0 where a token is not selected."""
    rows = [mask_tokens(np.asarray(ids, np.int32)[None], np.random.default_rng([seed, draw]), vocab_size, rate)
            for draw in range(draws)]
    return (np.concatenate([inputs for inputs, _ in rows]).astype(np.int32),
            np.concatenate([targets for _, targets in rows]).astype(np.int32))


# ------------------------------------------------------------------- reading
def _predict(model, ids):
    return np.asarray(model.predict(list(model_inputs(np.asarray(ids, np.int32))), batch_size=len(ids), verbose=0))


def window_spans(length, positions):
    """``[(start, end), ...]``: the document positions of each window of a ``length``-token
    document (``[CLS]`` body ``[SEP]``): consecutive pieces of ``positions - 2`` body tokens
    covering the body (positions 1 .. length-2) once."""
    room = positions - 2
    return [(start, min(start + room, length - 1)) for start in range(1, length - 1, room)]


def chunked_logits(model, inputs, positions):
    """Logits ``(rows, length, vocab)`` of the documents ``inputs`` read window by window
    (:func:`window_spans`), each as ``[CLS] window [SEP]``, put back in place; the document's
    ``[CLS]`` gets the first window's and its ``[SEP]`` the last window's. Windows of one
    length are read in one batch."""
    inputs = np.asarray(inputs, np.int32)
    rows, length = inputs.shape
    spans = window_spans(length, positions)
    by_size = {}
    for start, end in spans:
        by_size.setdefault(end - start, []).append((start, end))
    logits = None
    for group in by_size.values():
        windows = np.concatenate([np.concatenate([np.full((rows, 1), CLS, np.int32), inputs[:, start:end],
                                                  np.full((rows, 1), SEP, np.int32)], axis=1)
                                  for start, end in group])
        predicted = _predict(model, windows).reshape(len(group), rows, windows.shape[1], -1)
        if logits is None:
            logits = np.zeros((rows, length, predicted.shape[-1]), predicted.dtype)
        for (start, end), window in zip(group, predicted):
            logits[:, start:end] = window[:, 1:-1]
            if start == spans[0][0]:
                logits[:, 0] = window[:, 0]
            if end == spans[-1][1]:
                logits[:, -1] = window[:, -1]
    return logits


def score_predictions(logits, targets):
    """``(hits, summed cross-entropy, count)`` over the selected positions (``targets`` > 0)."""
    selected = targets > 0
    picked = np.asarray(logits, np.float64)[selected]
    wanted = targets[selected]
    shifted = picked - picked.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    hits = int((picked.argmax(axis=-1) == wanted).sum())
    return hits, float(-log_probs[np.arange(len(wanted)), wanted].sum()), int(selected.sum())


def evaluate_method(read, inputs, targets):
    """``(hits, summed cross-entropy, count, seconds)`` of ``read`` (rows -> logits) over the
    draws, one draw at a time, timed after one untimed warm-up read of the first draw."""
    read(inputs[:1])
    hits = total = count = 0
    seconds = 0.0
    for draw in range(len(inputs)):
        start = time.perf_counter()
        logits = read(inputs[draw:draw + 1])
        seconds += time.perf_counter() - start
        draw_hits, draw_total, draw_count = score_predictions(logits, targets[draw:draw + 1])
        hits, total, count = hits + draw_hits, total + draw_total, count + draw_count
    return hits, total, count, seconds


# ----------------------------------------------------------------- the run
def _check_settings(model_dir, tokens, alpha, draws, rate):
    """``(trained positions, alpha as a float)``; one-line ValueError for a setting that cannot work."""
    value = resolve_alpha(alpha)
    if value is None:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must lie in (0, 1), got {rate}")
    if tokens < MIN_TOKENS:
        raise ValueError(f"tokens must be >= {MIN_TOKENS} ([CLS], one token of text, [SEP]), got {tokens}")
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        positions = int(json.load(f)["max_position_embeddings"])
    if tokens > positions ** 2:
        raise ValueError(f"tokens {tokens} is more than the model reads: {positions}**2 = {positions ** 2} tokens "
                         f"with hierarchical positions; give {positions ** 2} or fewer")
    return positions, value


def fill_masks_long(model_dir=None, text=None, tokens=2000, alpha=0.4, draws=5, rate=MASK_RATE, seed=0,
                    source=None):
    """Mask the document ``draws`` times and fill the masks twice: the whole document in one
    hierarchical pass, and window by window with the plain model. ``model_dir``: a
    :func:`models.mlm_training.save_mlm_model` folder (default the bundled Chinese BERT);
    ``text``: default the longest held-out People's Daily article (:func:`held_out_article`);
    ``source``: how to name a text given. Returns a :class:`FillMasksResult`."""
    model_dir = model_dir or BUNDLED_BERT_DIR
    positions, alpha = _check_settings(model_dir, tokens, alpha, draws, rate)
    if text is None:
        text, source = held_out_article(held_out_fraction(model_dir))
    plain, tokenizer = load_mlm_model(model_dir)
    ids, note = long_text_document(text, tokenizer, tokens)
    if not (ids >= FIRST_REGULAR).any():
        raise ValueError("no token of the text is in the model's vocabulary (all [UNK]): nothing to mask")
    document = DocumentInfo(source or "the text given", len(text), len(ids), note)
    inputs, targets = mask_draws(ids, draws, tokenizer.vocab_size, rate, seed)
    hierarchical = build_transformer_model(model_dir, model_dir, with_mlm="linear", hierarchical_position=alpha)
    readers = {"hierarchical": (lambda rows: _predict(hierarchical, rows), len(ids),
                                f"hierarchical (alpha {alpha:g})"),
               "chunked": (lambda rows: chunked_logits(plain, rows, positions), min(positions, len(ids)),
                           f"chunked ({positions - 2}-token windows)")}
    rows = []
    for method in METHODS:
        read, context, label = readers[method]
        hits, total, count, seconds = evaluate_method(read, inputs, targets)
        rows.append(MethodResult(method, label, context, count, hits / count, total / count, seconds))
    return FillMasksResult(document, rows, alpha, draws, rate, positions)


__all__ = ["DocumentInfo", "MethodResult", "FillMasksResult", "long_text_document", "held_out_fraction", "score_predictions",
           "held_out_article", "mask_draws", "window_spans", "chunked_logits", "evaluate_method", "fill_masks_long",
           "MIN_TOKENS", "METHODS"]
