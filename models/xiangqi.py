"""Xiangqi GPT: the model builder, saving and loading, and :class:`MoveScorer`, the
batched KV-cache scorer the framework-free :class:`toolkit.xiangqi.player.Player` plays with.

The vocabulary and the game encoding (``[result] + the 4 characters of each ICCS move +
[<end>]``) are :mod:`toolkit.xiangqi.vocabulary`'s; the training data
:mod:`toolkit.xiangqi.training_data`'s, the losses :mod:`models.xiangqi_losses`' and the
training run :mod:`models.xiangqi_training`'s.
"""

import collections
import json
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


def load_player(directory=None, quantize=None, keep=1, warmup=True, **options):
    """A :class:`toolkit.xiangqi.player.Player` (``options``: its settings) on a
    :class:`MoveScorer` of :func:`load_xiangqi_model` keeping ``keep`` games'
    caches, warmed up (traced) so that the first moves are not slower than the rest."""
    from toolkit.xiangqi.player import Player

    scorer = MoveScorer(load_xiangqi_model(directory, quantize=quantize), keep=keep)
    if warmup:
        scorer.warmup()
    return Player(scorer, **options)


def player_description(player, directory=None):
    """How the web page names the opponent: the model, its size, the player's settings."""
    model = player.scorer.model
    name = "the bundled Xiangqi GPT" if directory is None else f"the Xiangqi GPT of {directory}"
    play = "best move" if player.temperature == 0 else f"sampled at temperature {player.temperature:g}"
    guard = "with the rule guard" if player.guard else "the model alone"
    strength = "; about 0.1 of the points against fairy-stockfish at depth 1" if directory is None else ""
    return f"{name} ({model.count_params() / 1e6:.1f}M parameters), {play}, {guard}{strength}"


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
    caches (:meth:`~models.decoder.CachedDecoder.score_many`)."""

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

    def _candidate_tokens(self, candidates, rows):
        """The 4 ids of each candidate move in ``rows`` rows (the spare rows repeat the first)."""
        tokens = np.empty((rows, 4), np.int32)
        tokens[:len(candidates)] = np.asarray([move_ids(m) for m in candidates], np.int32)
        tokens[len(candidates):] = tokens[0]
        return tokens

    @staticmethod
    def _total(lp0, lp, tokens, n):
        """Log-probability of each of the ``n`` moves: its first character from the history's logits
        ``lp0``, the other three from the continuation log-probabilities ``lp`` ``(rows, 3, vocab)``."""
        rows = np.arange(n)
        return lp0[tokens[:n, 0]] + sum(lp[rows, k - 1, tokens[:n, k]] for k in range(1, 4))

    def score_many(self, requests):
        """``[(history, candidates, condition)]`` -> one log-probability array per request, as
        :meth:`score` gives; every request with candidates in one batched model pass."""
        results = [np.zeros(0) for _ in requests]
        busy = [i for i, (_, candidates, _) in enumerate(requests) if len(candidates)]
        if not busy:
            return results
        heads = [self._history(self.prompt(requests[i][0], requests[i][2])) for i in busy]
        rows = _bucket_rows(max(len(requests[i][1]) for i in busy))
        tokens = np.stack([self._candidate_tokens(requests[i][1], rows) for i in busy])
        groups = 1 << (len(busy) - 1).bit_length()  # a power of 2 of games: few traced shapes
        padded_states = [state for _, state in heads] + [heads[0][1]] * (groups - len(busy))
        padded_tokens = np.concatenate([tokens, np.repeat(tokens[:1], groups - len(busy), axis=0)])
        lp = _log_softmax(self.decoder.score_many(padded_tokens[:, :, :3], padded_states))
        for j, i in enumerate(busy):
            results[i] = self._total(_log_softmax(heads[j][0]), lp[j], tokens[j], len(requests[i][1]))
        return results

    def score(self, history, candidates, condition=None, greedy=False):
        n = len(candidates)
        if n == 0 and not greedy:
            return np.zeros(0)
        logits0, state = self._history(self.prompt(history, condition))
        lp0 = _log_softmax(logits0)
        total = np.zeros(n)
        if n:
            tokens = self._candidate_tokens(candidates, _bucket_rows(n))
            # every candidate row reads the one history cache: no per-row copy of it
            lp = _log_softmax(self.decoder.score_continuations(tokens[:, :3], state))  # (batch, 3, vocab)
            total = self._total(lp0, lp, tokens, n)
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
