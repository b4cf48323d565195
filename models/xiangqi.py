"""Xiangqi GPT: the ICCS character vocabulary, game <-> ids encoding, the model
builder and :class:`MoveScorer`, the batched KV-cache scorer the framework-free
:class:`toolkit.xiangqi.player.Player` plays with.

A game is ``[result] + the 4 characters of each ICCS move + [<end>]`` (``<end>``
only when the game is over). ``result`` is ``<red>``, ``<black>``, ``<draw>`` or
``<any>`` (unknown / unconditioned): trained with the real result (replaced by
``<any>`` with some probability), the model can be asked for a given side's
winning moves at play time.

>>> ids = encode_game(["h2e2", "h9g7"], "red", over=False)
>>> ids
[1, 13, 17, 10, 17, 13, 24, 12, 22]
>>> decode_game(ids)
('red', ['h2e2', 'h9g7'], False)
"""

import json
import os
import zlib

import numpy as np

PAD, RED_TOKEN, BLACK_TOKEN, DRAW_TOKEN, ANY_TOKEN, END = range(6)
SPECIALS = ["<pad>", "<red>", "<black>", "<draw>", "<any>", "<end>"]
CHARS = "abcdefghi0123456789"
VOCAB = SPECIALS + list(CHARS)
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
CHAR_ID = {c: TOKEN_ID[c] for c in CHARS}
RESULT_TOKEN = {"red": RED_TOKEN, "black": BLACK_TOKEN, "draw": DRAW_TOKEN, None: ANY_TOKEN, "any": ANY_TOKEN}
TOKEN_RESULT = {RED_TOKEN: "red", BLACK_TOKEN: "black", DRAW_TOKEN: "draw", ANY_TOKEN: None}

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


# ----------------------------------------------------------------- encoding
def move_ids(move):
    """The 4 token ids of an ICCS move (``'h2e2'``)."""
    if len(move) != 4:
        raise ValueError(f"not a 4-character ICCS move: {move!r}")
    return [CHAR_ID[c] for c in move.lower()]


def encode_game(moves, result=None, over=True):
    """``[result token] + chars of each move + [<end>]`` (``<end>`` if ``over``).
    ``result``: 'red' | 'black' | 'draw' | None/'any' (unknown)."""
    ids = [RESULT_TOKEN[result]]
    for m in moves:
        ids.extend(move_ids(m))
    if over:
        ids.append(END)
    return ids


def decode_game(ids):
    """``(result, moves, over)`` for ids made by :func:`encode_game` (padding ignored)."""
    ids = [int(i) for i in ids if int(i) != PAD]
    if not ids or ids[0] not in TOKEN_RESULT:
        raise ValueError("ids must start with a result token")
    result, body, over = TOKEN_RESULT[ids[0]], ids[1:], False
    if body and body[-1] == END:
        body, over = body[:-1], True
    if len(body) % 4 or any(i not in range(len(SPECIALS), len(VOCAB)) for i in body):
        raise ValueError("moves must be whole 4-character ICCS moves")
    moves = ["".join(VOCAB[i] for i in body[k:k + 4]) for k in range(0, len(body), 4)]
    return result, moves, over


_MIRROR = str.maketrans("abcdefghi", "ihgfedcba")


def mirror_moves(moves):
    """The left-right mirrored game (files a<->i): as legal, same result."""
    return [m.translate(_MIRROR) for m in moves]


def legal_char_masks(moves, fen=None):
    """The legal continuations of every character of a game, as bitmasks over :data:`VOCAB` ids.

    Row ``i`` holds 4 masks for ply ``i``: the characters ``c`` such that the real
    move's first ``k`` characters followed by ``c`` start a legal move (``k`` = 0..3),
    i.e. the legal from-files; the legal from-ranks on the real from-file; the
    legal to-files of the real from-point; the legal to-ranks on the real
    to-file. Bit ``j`` of a mask stands for ``VOCAB[j]``. Every real move's
    character is in its mask (ValueError naming the ply otherwise). Rules from
    :func:`toolkit.xiangqi.movegen.legal_moves` (equal to pyffish's in the tests),
    about 0.5 ms a ply.

    >>> m = legal_char_masks(["h2e2"])
    >>> [VOCAB[j] for j in range(len(VOCAB)) if m[0, 2] >> j & 1]  # files the h2 cannon reaches (b2: own cannon)
    ['c', 'd', 'e', 'f', 'g', 'h', 'i']
    """
    from toolkit.xiangqi import movegen
    from toolkit.xiangqi.coords import make_iccs, parse_iccs
    from toolkit.xiangqi.rules import START_FEN

    grid = movegen.grid_from_fen(fen or START_FEN)
    side = movegen.RED if (fen or START_FEN).split()[1] in ("w", "r") else movegen.BLACK
    out = np.zeros((len(moves), 4), np.int32)
    for i, move in enumerate(moves):
        legal = [make_iccs(frm, to) for frm, to in movegen.legal_moves(grid, side)]
        move = move.lower()
        if move not in legal:
            raise ValueError(f"ply {i + 1}: {move!r} is not legal (legal: {len(legal)} moves)")
        for k in range(4):
            for m in legal:
                if m[:k] == move[:k]:
                    out[i, k] |= 1 << CHAR_ID[m[k]]
        grid, side = movegen.apply(grid, parse_iccs(move)), movegen.other(side)
    return out


_MIRROR_BITS = [(CHAR_ID[a], CHAR_ID[b]) for a, b in zip("abcdefghi", "ihgfedcba")]
_FILE_BITS = np.int32(sum(1 << a for a, _ in _MIRROR_BITS))


def mirror_masks(masks):
    """:func:`legal_char_masks` of the mirrored game (file bits a<->i; rank bits unchanged)."""
    masks = np.asarray(masks, np.int32)
    files = np.zeros_like(masks)
    for a, b in _MIRROR_BITS:
        files |= ((masks >> a) & 1) << b
    return (masks & ~_FILE_BITS) | files


def is_validation(game_key, val_fraction):
    """Deterministic held-out split by a hash of the game's moves (or id)."""
    return zlib.crc32(str(game_key).encode()) % 10000 < val_fraction * 10000


def split_games(games, val_fraction=0.05):
    """(train, val) lists of GameRecords; the split is the same in every script."""
    train, val = [], []
    for g in games:
        (val if is_validation(" ".join(g.moves), val_fraction) else train).append(g)
    return train, val


# -------------------------------------------------------------------- model
def build_xiangqi_model(config=None, weights=None):
    """GPT-2 (logits head) for the ICCS vocabulary, 512 hierarchical positions.
    ``config``: dict overriding :data:`DEFAULT_CONFIG` or a ``config.json`` path
    / directory; ``weights``: a ``.weights.h5`` to load. Returns the Keras model
    (``model.transformer`` is the GPT2 object)."""
    from models.builder import build_transformer_model

    cfg = dict(DEFAULT_CONFIG)
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    cfg.update({k: v for k, v in (config or {}).items() if k in DEFAULT_CONFIG})
    model = build_transformer_model(cfg, model="gpt2", hierarchical_position=True, with_lm="linear")
    model.xiangqi_config = cfg
    if weights is not None:
        model.load_weights(weights)
    return model


def load_xiangqi_model(directory=None):
    """The model saved in ``directory`` (config.json + model.weights.h5); default the bundled one."""
    directory = directory or BUNDLED_DIR
    return build_xiangqi_model(os.path.join(directory, "config.json"),
                               os.path.join(directory, "model.weights.h5"))


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

    Across calls the scorer keeps the batch-1 cache of the last history: when the
    next history extends it (the same game a few plies on, same condition), only
    the new moves' characters are fed, one ``step`` each, instead of a prefill of
    the whole game; the cache is allocated with ``reserve`` spare positions and
    refilled from scratch when they run out (or the history is another game's).
    Results equal a fresh prefill (``reuse=False``) within float32 rounding."""

    def __init__(self, model, bucket=512, reserve=128, reuse=True):
        self.model = model
        self.decoder = model.transformer.cached_decoder(bucket=bucket)
        self.reserve = int(reserve)
        self.reuse = bool(reuse)
        self._last = None  # (prompt ids, logits after them, batch-1 state)

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
            self.reuse, self._last = saved, None
        return time.perf_counter() - t

    def prompt(self, history, condition=None):
        return encode_game(history, condition, over=False)

    def _history(self, prompt):
        """Logits after ``prompt`` and the batch-1 state holding it (3 free positions at least)."""
        last = self._last if self.reuse else None
        if last is not None:
            done, logits, state = last
            new = prompt[len(done):]
            if prompt[:len(done)] == done and state["index"] + len(new) + 3 <= state["total"]:
                if new:  # the moves played since: one call
                    out, state = self.decoder.step([new], state)
                    logits = out[0]
                self._last = (list(prompt), logits, state)
                return logits, state
        out, state = self.decoder.prefill([prompt], max_new_tokens=3 + (self.reserve if self.reuse else 0))
        self._last = (list(prompt), out[0], state) if self.reuse else None
        return out[0], state

    def score(self, history, candidates, condition=None, greedy=False):
        cands = [move_ids(m) for m in candidates]
        n = len(cands)
        if n == 0 and not greedy:
            return np.zeros(0)
        logits0, state = self._history(self.prompt(history, condition))
        lp0 = _log_softmax(logits0)
        total = np.zeros(n)
        if n:
            batch = _bucket_rows(n)
            tokens = np.empty((batch, 4), np.int32)
            tokens[:n] = np.asarray(cands, np.int32)
            tokens[n:] = tokens[0]
            # every candidate row reads the one history cache: no per-row copy of it
            lp = _log_softmax(self.decoder.score_continuations(tokens[:, :3], state))  # (batch, 3, vocab)
            rows = np.arange(n)
            total += lp0[tokens[:n, 0]]
            for k in range(1, 4):
                total += lp[rows, k - 1, tokens[:n, k]]
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


__all__ = ["VOCAB", "PAD", "END", "ANY_TOKEN", "DEFAULT_CONFIG", "BUNDLED_DIR", "encode_game", "decode_game",
           "move_ids", "mirror_moves", "legal_char_masks", "mirror_masks", "split_games", "build_xiangqi_model",
           "load_xiangqi_model", "save_xiangqi_model", "MoveScorer"]
