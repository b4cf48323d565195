"""Xiangqi GPT: the model builder, saving and loading, and :class:`MoveScorer`, the
batched KV-cache scorer the framework-free :class:`toolkit.xiangqi.player.Player` plays with.

The vocabulary and the game encoding (``[result] + the 4 characters of each ICCS move +
[<end>]``) are :mod:`toolkit.xiangqi.vocabulary`'s; the training data
:mod:`toolkit.xiangqi.training_data`'s, the losses :mod:`models.xiangqi_losses`' and the
training run :mod:`models.xiangqi_training`'s.
"""

import collections
import json
import logging
import os

import numpy as np

from toolkit.xiangqi.vocabulary import PAD, SPECIALS, VOCAB, encode_game, move_ids

DEFAULT_CONFIG = {
    "vocab_size": len(VOCAB),
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 768,
    "max_position_embeddings": 512,
    "hidden_act": "gelu_new",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "pad_token_id": PAD,  # <pad>: batches are padded with it (masked as keys)
}
BUNDLED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xiangqi_model")


# -------------------------------------------------------------------- model
def build_xiangqi_model(config=None, weights=None, quantize=None):
    """GPT-2 (logits head) for the ICCS vocabulary, 512 hierarchical positions.
    ``config``: dict overriding :data:`DEFAULT_CONFIG` or a ``config.json`` path
    / directory; ``weights``: a ``.weights.h5`` to load; ``quantize='int8'``: then
    Keras' int8 (``models.quantization``). Returns the Keras model (``model.transformer``
    is the GPT2 object)."""
    from models.builder import build_transformer_model
    from models.quantization import quantize_model

    cfg = dict(DEFAULT_CONFIG)
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    cfg.update({k: v for k, v in (config or {}).items() if k in DEFAULT_CONFIG})
    model = build_transformer_model(cfg, model="gpt2", hierarchical_position=True, with_lm="linear")
    if weights is not None:
        model.load_weights(weights)
    quantize_model(model, quantize)
    return model


def load_xiangqi_model(directory=None, quantize=None):
    """The model saved in ``directory`` (config.json + model.weights.h5); default the bundled one;
    ``quantize='int8'``: Keras' int8 of it."""
    directory = directory or BUNDLED_DIR
    return build_xiangqi_model(os.path.join(directory, "config.json"),
                               os.path.join(directory, "model.weights.h5"), quantize=quantize)


def load_player(directory=None, quantize=None, keep=1, bucket=512, batch=0, **options):
    """A :class:`toolkit.xiangqi.player.Player` (``options``: its settings) on a
    :class:`MoveScorer` of :func:`load_xiangqi_model` keeping ``keep`` games'
    caches (in ``bucket``-position steps), warmed up (traced) so that the first
    moves are not slower than the rest; ``batch``: also for
    :meth:`MoveScorer.score_many` of up to that many games at once."""
    from toolkit.xiangqi.player import Player

    scorer = MoveScorer(load_xiangqi_model(directory, quantize=quantize), keep=keep, bucket=bucket)
    scorer.warmup()
    if batch:
        scorer.warmup_many(batch)
    return Player(scorer, **options)


def player_description(directory=None, temperature=0.0, guard=True):
    """How the web page names the opponent: the model, its size (from its config.json), the
    player's settings and, for the bundled model, its strength (docs/benchmarks.md)."""
    with open(os.path.join(directory or BUNDLED_DIR, "config.json"), encoding="utf-8") as f:
        parameters = json.load(f).get("training", {}).get("parameters")
    name = "the bundled Xiangqi GPT" if directory is None else f"the Xiangqi GPT of {directory}"
    size = f" ({parameters / 1e6:.1f}M parameters)" if parameters else ""
    play = "best move" if temperature == 0 else f"sampled at temperature {temperature:g}"
    strength = "; scores about 0.1 against fairy-stockfish at depth 1" if directory is None and guard else ""
    return f"{name}{size}, {play}, {'with the rule guard' if guard else 'the model alone'}{strength}"


def xiangqi_config(model):
    """The :data:`DEFAULT_CONFIG` keys of a Xiangqi GPT (also of one reloaded with
    ``keras.saving.load_model``, which keeps ``model.transformer``'s settings)."""
    settings = model.transformer.get_config()
    return {key: settings[key] for key in DEFAULT_CONFIG if key in settings}


def save_xiangqi_model(model, directory, extra=None):
    """config.json + model.weights.h5, both written atomically."""
    from toolkit.checkpoints import save_json

    os.makedirs(directory, exist_ok=True)
    cfg = dict(xiangqi_config(model), model_type="gpt2", vocab=VOCAB, hierarchical_position=True)
    cfg.update(extra or {})
    if getattr(model, "optimizer", None) is not None:  # weights only: no optimizer slots in the file
        bare = build_xiangqi_model(xiangqi_config(model))
        bare.set_weights(model.get_weights())
        model = bare
    model.transformer.save_weights(os.path.join(directory, "model.weights.h5"))
    save_json(cfg, os.path.join(directory, "config.json"))


def _move_text(ids):
    """The characters of token ids, ``'?'`` for a special token (an unconstrained model move)."""
    return "".join(VOCAB[i] if i >= len(SPECIALS) else "?" for i in ids)


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _move_tree(candidates):
    """The tree of the candidates' first three characters: ``(tokens, parents, (ids, paths))``,
    ``ids`` ``(n, 4)`` the moves' characters and ``paths`` ``(n, 3)`` the nodes of their 1-, 2-
    and 3-character prefixes (parents come before their children)."""
    nodes, tokens, parents = {}, [], []
    ids = np.asarray([move_ids(move) for move in candidates], np.int32)
    paths = np.empty((len(candidates), 3), np.int32)
    for row, move in enumerate(ids):
        for depth in range(3):
            key = tuple(move[:depth + 1])
            if key not in nodes:
                nodes[key] = len(tokens)
                tokens.append(move[depth])
                parents.append(nodes[key[:-1]] if depth else -1)
            paths[row, depth] = nodes[key]
    return tokens, parents, (ids, paths)


def _bucket_rows(n):
    """Candidate batch padded to a few sizes, so the step function is traced rarely."""
    for b in (16, 48, 96, 128):
        if n <= b:
            return b
    return -(-n // 64) * 64


class MoveScorer:
    """Scores every candidate move of a position in one batched pass.

    ``score(history, candidates, condition)``: prefill ``[condition] + history``
    once (batch 1), then one ``score_continuations`` call feeding characters 1-3
    of every candidate, all rows attending to the one batch-1 history cache
    (no per-candidate copy of it); the first character's logits come from the
    prefill. Returns the log-probability of
    each 4-character move. ``condition``: 'red' | 'black' | 'draw' | 'any'/None.
    With ``greedy=True`` also returns the unconstrained greedy 4-character
    string (three more ``score_continuations`` calls of one row, each feeding
    the argmax so far).

    Across calls the scorer keeps the batch-1 caches of the last ``keep``
    histories (1: the last game's; a server of many games keeps one per game):
    when the next history extends one of them (the same game a few plies on,
    same condition), only the new moves' characters are fed, one ``step``
    each, instead of a prefill of the whole game; a cache is allocated with
    ``reserve`` spare positions and refilled from scratch when they run out.
    Results equal a fresh prefill (``reuse=False``) within float32 rounding.

    ``score_many(requests)`` scores the candidates of many positions (each
    ``(history, candidates, condition)``) in one batched pass over all their
    histories (:meth:`~models.decoder.CachedDecoder.score_tree`)."""

    def __init__(self, model, bucket=512, reserve=128, reuse=True, keep=1):
        self.model = model
        self.decoder = model.transformer.cached_decoder(bucket=bucket)
        self.reserve = int(reserve)
        self.reuse = bool(reuse)
        self.keep = max(1, int(keep))
        self._kept = collections.OrderedDict()  # tuple(prompt ids) -> (logits after them, batch-1 state)

    def warmup(self, condition="red"):
        """Trace the compiled functions once for the shapes of a game's first
        moves (the prefill, one and two new moves since the last call, 16, 48
        and 96 candidate rows), so that the first moves of a game are as fast as
        the rest; the kept cache is dropped afterwards. Returns the seconds it took."""
        import time

        t = time.perf_counter()
        saved, self.reuse = self.reuse, True
        try:
            for history, rows in (([], 16), (["h2e2"], 48), (["h2e2"] * 3, 96)):
                self.score(history, ["h2e2"] * rows, condition)
        finally:
            self.reuse = saved
            self._kept.clear()
        return time.perf_counter() - t

    def prompt(self, history, condition=None):
        return encode_game(history, condition, over=False)

    def _history(self, prompt):
        """Logits after ``prompt`` and the batch-1 state holding it (3 free positions at least)."""
        prompt = tuple(prompt)
        if self.reuse:
            for done in reversed(self._kept):  # the most recent first
                logits, state = self._kept[done]
                new = prompt[len(done):]
                if prompt[:len(done)] == done and state["index"] + len(new) + 3 <= state["total"]:
                    if new:  # the moves played since: one call
                        out, state = self.decoder.step([list(new)], state)
                        logits = out[0]
                    return self._remember(done, prompt, logits, state)
        out, state = self.decoder.prefill([list(prompt)], max_new_tokens=3 + (self.reserve if self.reuse else 0))
        return self._remember(None, prompt, out[0], state) if self.reuse else (out[0], state)

    def _remember(self, replaced, prompt, logits, state):
        self._kept.pop(replaced, None)
        self._kept[prompt] = (logits, state)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return logits, state

    def score_many(self, requests):
        """``[(history, candidates, condition)]`` -> one log-probability array per request, as
        :meth:`score` gives. The candidates of a request are a tree of their first three
        characters (moves from one square share two nodes: about 50 nodes for 40 moves, not 120
        tokens), and the trees of many requests go through the model together
        (:meth:`~models.decoder.CachedDecoder.score_tree`), in chunks of 1, 2, 4, ... requests."""
        results = [np.zeros(0) for _ in requests]
        busy = [i for i, (_, candidates, _) in enumerate(requests) if len(candidates)]
        while busy:
            size = 1 << (len(busy).bit_length() - 1)  # the largest power of 2 that fits: few traced shapes
            chunk, busy = busy[:size], busy[size:]
            heads = [self._history(self.prompt(requests[i][0], requests[i][2])) for i in chunk]
            trees = [_move_tree(requests[i][1]) for i in chunk]
            nodes = -(-max(len(tokens) for tokens, _, _ in trees) // 32) * 32
            tokens, parents = np.zeros((len(chunk), nodes), np.int32), np.full((len(chunk), nodes), -1, np.int32)
            for row, (tree_tokens, tree_parents, _) in enumerate(trees):
                tokens[row, :len(tree_tokens)], parents[row, :len(tree_parents)] = tree_tokens, tree_parents
            lp = _log_softmax(self.decoder.score_tree(tokens, parents, [state for _, state in heads]))
            for row, i in enumerate(chunk):
                ids, paths = trees[row][2]
                results[i] = (_log_softmax(heads[row][0])[ids[:, 0]] + lp[row, paths[:, 0], ids[:, 1]]
                              + lp[row, paths[:, 1], ids[:, 2]] + lp[row, paths[:, 2], ids[:, 3]])
        return results

    def warmup_many(self, max_batch, condition="red"):
        """Trace :meth:`score_many` for chunks of 1, 2, 4, ... up to ``max_batch`` positions, with
        the move trees of an opening (64 nodes) and of a busy middle game (96 nodes); the kept
        caches are dropped afterwards. Returns the seconds it took."""
        import time

        from toolkit.xiangqi.rules import Position

        started, tf_log = time.perf_counter(), logging.getLogger("tensorflow")
        level = tf_log.level
        tf_log.setLevel(logging.ERROR)  # the retracing warnings: tracing these shapes is the point
        busy = Position.from_moves("g0e2 h7h5 e3e4 h5f5 h0g2 b7d7 g2e1 f5f6 e2g4 d7d1 e1g2 f6f1 h2h0 d1d5 g4i2 "
                                   "i9i8 h0h2".split())  # 69 nodes
        for position in (Position(), busy):
            chunk, legal = 1, position.legal_moves()
            while chunk <= max_batch:
                self.score_many([(position.moves, legal, condition)] * chunk)
                chunk *= 2
        tf_log.setLevel(level)
        self._kept.clear()
        return time.perf_counter() - started

    def score(self, history, candidates, condition=None, greedy=False):
        n = len(candidates)
        if n == 0 and not greedy:
            return np.zeros(0)
        logits0, state = self._history(self.prompt(history, condition))
        lp0 = _log_softmax(logits0)
        total = np.zeros(n)
        if n:
            batch = _bucket_rows(n)
            tokens = np.empty((batch, 4), np.int32)
            tokens[:n] = np.asarray([move_ids(m) for m in candidates], np.int32)
            tokens[n:] = tokens[0]
            # every candidate row reads the one history cache: no per-row copy of it
            lp = _log_softmax(self.decoder.score_continuations(tokens[:, :3], state))  # (batch, 3, vocab)
            rows = np.arange(n)
            total = lp0[tokens[:n, 0]] + sum(lp[rows, k - 1, tokens[:n, k]] for k in range(1, 4))
        if not greedy:
            return total
        greedy_ids = [int(np.argmax(lp0))]
        for _ in range(3):  # the unconstrained greedy move, character by character
            out = self.decoder.score_continuations(np.asarray([greedy_ids], np.int32), state)
            greedy_ids.append(int(np.argmax(out[0, -1])))
        return total, _move_text(greedy_ids)

    def top_move(self, history, condition=None, rows=48):
        """The most probable 4-token string after ``history`` over the whole vocabulary, legal or
        not: the model's unconstrained top move (a special token comes back as ``'?'``).

        Exact best-first search: extending a prefix never raises its log-probability, so when
        the best entry of the heap is a whole string, it is the argmax. Each round expands the
        best ``rows`` prefixes at once (one ``score_continuations`` call per prefix length);
        a peaked model needs a round or two, a flat one at most 16,275 prefixes."""
        import heapq

        logits0, state = self._history(self.prompt(history, condition))
        heap = [(-lp, (c,)) for c, lp in enumerate(_log_softmax(logits0))]
        heapq.heapify(heap)
        while len(heap[0][1]) < 4:
            groups, taken = {}, 0
            while heap and len(heap[0][1]) < 4 and taken < rows:
                neg, prefix = heapq.heappop(heap)
                groups.setdefault(len(prefix), []).append((neg, prefix))
                taken += 1
            for k, group in groups.items():
                tokens = np.empty((rows, k), np.int32)
                tokens[:len(group)] = [prefix for _, prefix in group]
                tokens[len(group):] = tokens[0]
                lp = _log_softmax(self.decoder.score_continuations(tokens, state)[:len(group), -1])
                for (neg, prefix), row in zip(group, lp):
                    for c, value in enumerate(row):
                        heapq.heappush(heap, (neg - value, prefix + (c,)))
        return _move_text(heap[0][1])

    def full_forward_score(self, history, move, condition=None):
        """Reference: the same log-probability from one full forward pass."""
        ids = self.prompt(history, condition) + move_ids(move)
        logits = np.asarray(self.model.predict_on_batch(np.asarray([ids], np.int32)))[0]
        lp = _log_softmax(logits)
        start = len(ids) - 4
        return float(sum(lp[start - 1 + k, ids[start + k]] for k in range(4)))


__all__ = ["DEFAULT_CONFIG", "BUNDLED_DIR", "build_xiangqi_model", "load_xiangqi_model", "save_xiangqi_model",
           "load_player", "player_description",
           "xiangqi_config", "MoveScorer"]
