"""Text generation on top of a cached decoder: greedy, sampling (temperature,
top-k, top-p) and beam search, batch-wise with per-row stopping; plus a
bert4keras-compatible ``AutoRegressiveDecoder`` for ported scripts.

The model side is duck-typed (this module imports no framework): ``model``
is anything with a ``cached_decoder()`` method returning an object with
``prefill(prompts, max_new_tokens) -> (logits, state)``,
``step(token_ids, state) -> (logits, state)`` and ``reorder(state, rows)``,
as ``models.GPT2`` models have; its attributes ``vocab_size`` (prompt ids are
checked against it) and ``pad_id`` (the default padding id) are optional.

Example:

>>> model = build_transformer_model(cfg, ckpt, model="gpt2")      # doctest: +SKIP
>>> generate(model, [[31, 47, 9]], max_new_tokens=20, end_id=3)   # doctest: +SKIP
[[118, 7, 3]]
>>> generate(model, np.array([[31, 47, 9], [5, 0, 0]]), 20,       # doctest: +SKIP
...          attention_mask=[[1, 1, 1], [1, 0, 0]])               # right padding: not GPT-2's id 0 ('!')
[[118, 7, 3], [64, 12, 3]]
"""

import numpy as np

STRATEGIES = ("greedy", "sample", "beam")


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def check_sampling_args(top_k=None, top_p=None, temperature=1.0, num_beams=1):
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if int(num_beams) < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")


def sampling_probs(logits, top_k=None, top_p=None, temperature=1.0):
    """Row-wise next-token distribution after temperature, top-k and top-p
    (nucleus: the smallest set of most likely tokens whose mass reaches p)."""
    logits = np.asarray(logits, "float64") / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = _softmax(logits)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, axis=-1)
        sorted_p = np.take_along_axis(probs, order, axis=-1)
        cum = np.cumsum(sorted_p, axis=-1)
        drop_sorted = (cum - sorted_p) >= top_p  # mass before this token already reached p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        probs = np.where(drop, 0.0, probs)
        probs /= probs.sum(axis=-1, keepdims=True)
    return probs


def check_token_ids(rows, vocab_size, what, positions=None):
    """Raise ValueError (one line) for the first id of ``rows`` (1-D id arrays,
    or one 2-D array) outside ``[0, vocab_size)``, naming the id, its row and
    position and the vocabulary size. ``positions[r]``: the positions of row
    ``r``'s ids in the caller's input (when padding was removed); default
    ``0, 1, ...``. NumPy on the host: microseconds for a decoding step."""
    if vocab_size is None:
        return
    batch = rows if isinstance(rows, np.ndarray) and rows.ndim == 2 else None
    for r, row in enumerate([batch] if batch is not None else rows):
        ids = np.asarray(row)
        if ids.size == 0:
            continue
        if ids.dtype.kind not in "iu" and not (ids.dtype.kind == "f" and np.all(ids == np.floor(ids))):
            where = "" if batch is not None else f" (row {r})"
            raise ValueError(f"{what}: token ids must be integers, got {ids.dtype} values{where}")
        bad = np.argwhere((ids < 0) | (ids >= vocab_size))
        if bad.size:
            index = tuple(bad[0])
            row, i = (int(index[0]), int(index[1])) if batch is not None else (r, int(index[0]))
            position = i if positions is None else int(positions[row][i])
            raise ValueError(
                f"{what}: token id {int(ids[index])} at row {row}, position {position} is outside the model's "
                f"vocabulary of {vocab_size} ids (0..{vocab_size - 1}): encode the text with this model's tokenizer")


def _rows(values, name):
    """One prompt (a list or 1-D array of ids) or a batch (a list of lists, a 2-D array) as 1-D arrays."""
    if isinstance(values, np.ndarray) and values.ndim not in (1, 2):
        raise ValueError(f"generate: {name} must be one prompt or a batch of prompts, got shape {values.shape}")
    if len(values) and np.ndim(values[0]) == 0:
        return [np.asarray(values)]
    rows = [np.asarray(row) for row in values]
    for r, row in enumerate(rows):
        if row.ndim != 1:
            raise ValueError(f"generate: {name} row {r} must be a list of ids, got shape {row.shape}")
    return rows


def _prompts(token_ids, pad_id=None, attention_mask=None, vocab_size=None):
    """The prompts as lists of ids, padding removed: ids equal to ``pad_id`` (if
    not None) and those where ``attention_mask`` is 0 (if given), wherever they are."""
    rows = _rows(token_ids, "token_ids")
    masks = None if attention_mask is None else _rows(attention_mask, "attention_mask")
    if masks is not None:
        _check_mask_shape(masks, rows)
    kept, positions = [], []
    for r, row in enumerate(rows):
        keep = np.ones(row.shape, bool)
        if masks is not None:
            keep &= masks[r] != 0
        if pad_id is not None:
            keep &= row != pad_id
        if not keep.any():
            raise ValueError(f"generate: prompt row {r} has no token id{' but padding' if row.size else ''}: "
                             "every prompt needs at least one token id")
        kept.append(row[keep])
        positions.append(np.flatnonzero(keep))
    if not kept:
        raise ValueError("generate: no prompt: every prompt needs at least one token id")
    check_token_ids(kept, vocab_size, "generate", positions)
    return [[int(t) for t in row] for row in kept]


def _check_mask_shape(masks, rows):
    if len(masks) != len(rows):
        raise ValueError(f"generate: attention_mask has {len(masks)} rows but token_ids has {len(rows)}: "
                         "give one mask row per prompt")
    for r, (mask, row) in enumerate(zip(masks, rows)):
        if mask.shape != row.shape:
            raise ValueError(f"generate: attention_mask row {r} has {mask.size} entries but token_ids row {r} has "
                             f"{row.size} ids: give one mask value (1 = token, 0 = padding) per id")


def _decoder(model):
    if not hasattr(model, "cached_decoder"):
        raise TypeError(f"{type(model).__name__} has no cached_decoder(): build a GPT-2 with build_transformer_model")
    return model.cached_decoder()


def generate(model, token_ids, max_new_tokens, strategy="greedy", top_k=None, top_p=None, temperature=1.0,
             num_beams=1, end_id=None, seed=None, callback=None, pad_id=None, attention_mask=None):
    """Generate up to ``max_new_tokens`` per prompt.

    Args:
        token_ids: one prompt (list of ids), a list of prompts, or a 2-D array
            (padded on either side, see ``pad_id`` and ``attention_mask``).
            Every id must lie in ``[0, vocab_size)`` (ValueError naming the id,
            its row and position otherwise).
        pad_id: the padding id, removed from the prompts wherever it is.
            Default: the model's ``pad_token_id`` (None for GPT-2's own
            config: every id, 0 included, is a real token).
        attention_mask: like ``token_ids``, 1 for a real token and 0 for
            padding (removed). Padded rows give the same as unpadded ones.
        strategy: ``'greedy'``, ``'sample'`` or ``'beam'`` (``num_beams``).
        end_id: an id, or a collection of ids: a row stops after producing
            one (it is the last id returned).
        seed: makes sampling reproducible.
        callback: ``callback(step, token_ids, finished)`` after each step
            (streaming); ``token_ids`` holds one id per row.

    Returns:
        For each prompt row, the list of generated ids (prompt excluded).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    check_sampling_args(top_k, top_p, temperature, num_beams)
    if int(max_new_tokens) < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    decoder = _decoder(model)
    pad_id = getattr(decoder, "pad_id", None) if pad_id is None else pad_id
    prompts = _prompts(token_ids, pad_id, attention_mask, getattr(decoder, "vocab_size", None))
    ends = _end_ids(end_id)
    if strategy == "beam":
        return [_beam_search(decoder, p, max_new_tokens, num_beams, ends, temperature) for p in prompts]
    rng = np.random.default_rng(seed)
    logits, state = decoder.prefill(prompts, max_new_tokens)
    out = [[] for _ in prompts]
    done = np.zeros(len(prompts), bool)
    for step in range(max_new_tokens):
        if strategy == "greedy":
            nxt = np.argmax(logits, axis=-1)
        else:
            probs = sampling_probs(logits, top_k, top_p, temperature)
            nxt = np.array([rng.choice(probs.shape[-1], p=p) for p in probs])
        for r, t in enumerate(nxt):
            if not done[r]:
                out[r].append(int(t))
                done[r] = int(t) in ends
        if callback is not None:
            callback(step, nxt, done.copy())
        if done.all() or step == max_new_tokens - 1:
            break
        logits, state = decoder.step(nxt, state)  # finished rows too (their output is ignored)
    return out


def _end_ids(end_id):
    if end_id is None:
        return frozenset()
    if np.ndim(end_id) == 0:
        return frozenset([int(end_id)])
    return frozenset(int(e) for e in end_id)


def _beam_search(decoder, prompt, max_new_tokens, num_beams, ends, temperature=1.0):
    """Beam search for one prompt (sum of log-probabilities, no length penalty).
    A hypothesis that emits an id of ``ends`` is finished; the search stops when the
    best finished score beats every live beam (scores only decrease)."""
    logits, state = decoder.prefill([prompt], max_new_tokens)
    state = decoder.reorder(state, [0] * num_beams)
    beams = [[]]
    scores = np.zeros(1)
    finished = []
    logp = _log_softmax(np.asarray(logits, "float64") / temperature)
    for step in range(max_new_tokens):
        total = scores[:, None] + logp[: len(beams)]
        flat = np.argsort(-total, axis=None)[: 2 * num_beams]
        alive, alive_scores, rows = [], [], []
        for idx in flat:
            b, t = divmod(int(idx), total.shape[1])
            seq = beams[b] + [t]
            if t in ends:
                finished.append((total[b, t], seq))
            elif len(alive) < num_beams:
                alive.append(seq)
                alive_scores.append(total[b, t])
                rows.append(b)
            if len(alive) == num_beams and len(finished) >= num_beams:
                break
        best_done = max((s for s, _ in finished), default=-np.inf)
        if not alive or best_done >= max(alive_scores) or step == max_new_tokens - 1:
            if alive and step == max_new_tokens - 1:
                finished.extend(zip(alive_scores, alive))
            break
        beams, scores = alive, np.array(alive_scores)
        pad = rows + [rows[0]] * (num_beams - len(rows))
        state = decoder.reorder(state, pad)
        nxt = np.array([s[-1] for s in beams] + [beams[0][-1]] * (num_beams - len(beams)))
        logits, state = decoder.step(nxt, state)
        logp = _log_softmax(np.asarray(logits, "float64") / temperature)
    return max(finished, key=lambda x: x[0])[1]


class AutoRegressiveDecoder:
    """bert4keras-compatible decoder base for porting scripts: subclass it,
    decorate ``predict(self, inputs, output_ids, states)`` with
    ``@AutoRegressiveDecoder.wraps(default_rtype='probas'|'logits')`` and call
    ``beam_search(inputs, topk)`` or ``random_sample(inputs, n, topk, topp)``.

    ``predict`` re-runs the whole prefix each step, as in bert4keras; for
    GPT-2 models prefer :func:`generate`, which uses the KV cache.
    """

    def __init__(self, start_id, end_id, maxlen, minlen=1, seed=None):
        self.start_id, self.end_id = start_id, end_id
        self.maxlen, self.minlen = maxlen, minlen
        self.rng = np.random.default_rng(seed)
        self.first_output_ids = np.empty((1, 0), int) if start_id is None else np.array([[start_id]])

    @staticmethod
    def wraps(default_rtype="probas", use_states=False):
        if default_rtype not in ("probas", "logits"):
            raise ValueError(f"default_rtype must be 'probas' or 'logits', got {default_rtype!r}")

        def decorator(predict):
            def new_predict(self, inputs, output_ids, states, temperature=1, rtype=default_rtype):
                pred = predict(self, inputs, output_ids, states)
                pred, states = pred if use_states else (pred, None)
                pred = np.asarray(pred, "float64")
                if default_rtype == "logits":
                    probs = _softmax(pred / temperature)
                else:
                    probs = pred ** (1.0 / temperature) if temperature != 1 else pred
                    probs = probs / probs.sum(axis=-1, keepdims=True)
                return (probs if rtype == "probas" else np.log(probs + 1e-12)), states

            return new_predict

        return decorator

    def predict(self, inputs, output_ids, states=None):
        raise NotImplementedError("decorate your predict with AutoRegressiveDecoder.wraps")

    def beam_search(self, inputs, topk, states=None, temperature=1, min_ends=1):
        inputs = [np.array([i]) for i in inputs]
        output_ids, output_scores = self.first_output_ids, np.zeros(1)
        for step in range(self.maxlen):
            scores, states = self.predict(inputs, output_ids, states, temperature, "logits")
            if step == 0:
                inputs = [np.repeat(i, topk, axis=0) for i in inputs]
            scores = output_scores.reshape(-1, 1) + scores
            k = min(topk, scores.size)
            idx = scores.argpartition(-k, axis=None)[-k:]
            rows, cols = idx // scores.shape[1], (idx % scores.shape[1]).reshape(-1, 1)
            output_ids = np.concatenate([output_ids[rows], cols], 1)
            output_scores = np.take_along_axis(scores, idx, axis=None)
            is_end = output_ids[:, -1] == self.end_id
            end_counts = (output_ids == self.end_id).sum(1)
            if output_ids.shape[1] >= self.minlen:
                best = output_scores.argmax()
                if is_end[best] and end_counts[best] >= min_ends:
                    return output_ids[best]
                keep = ~is_end | (end_counts < min_ends)
                if not keep.all():
                    inputs = [i[keep] for i in inputs]
                    output_ids, output_scores = output_ids[keep], output_scores[keep]
                    topk = int(keep.sum())
        return output_ids[output_scores.argmax()]

    def random_sample(self, inputs, n, topk=None, topp=None, states=None, temperature=1, min_ends=1):
        check_sampling_args(topk, topp)
        inputs = [np.array([i]) for i in inputs]
        output_ids, results = self.first_output_ids, []
        for step in range(self.maxlen):
            probs, states = self.predict(inputs, output_ids, states, temperature, "probas")
            if step == 0:
                probs = np.repeat(probs, n, axis=0)
                inputs = [np.repeat(i, n, axis=0) for i in inputs]
                output_ids = np.repeat(output_ids, n, axis=0)
            probs = sampling_probs(np.log(probs + 1e-300), topk, topp)
            sample = np.array([self.rng.choice(len(p), p=p) for p in probs]).reshape(-1, 1)
            output_ids = np.concatenate([output_ids, sample], 1)
            is_end = output_ids[:, -1] == self.end_id
            end_counts = (output_ids == self.end_id).sum(1)
            if output_ids.shape[1] >= self.minlen:
                done = is_end & (end_counts >= min_ends)
                if done.any():
                    results.extend(output_ids[done])
                    keep = ~done
                    inputs = [i[keep] for i in inputs]
                    output_ids = output_ids[keep]
                    if len(output_ids) == 0:
                        break
        results.extend(output_ids)
        return results
