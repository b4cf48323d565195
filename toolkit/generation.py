"""Text generation on top of a cached decoder: greedy, sampling (temperature,
top-k, top-p) and beam search, batch-wise with per-row stopping; plus a
bert4keras-compatible ``AutoRegressiveDecoder`` for ported scripts.

The model side is duck-typed (this module imports no framework): ``model``
is anything with a ``cached_decoder()`` method returning an object with
``prefill(prompts, max_new_tokens) -> (logits, state)``,
``step(token_ids, state) -> (logits, state)`` and ``reorder(state, rows)``,
as ``models.GPT2`` models have.

Example:

>>> model = build_transformer_model(cfg, ckpt, model="gpt2")      # doctest: +SKIP
>>> generate(model, [[31, 47, 9]], max_new_tokens=20, end_id=3)   # doctest: +SKIP
[[118, 7, 3]]
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


def _prompts(token_ids):
    if isinstance(token_ids, np.ndarray) and token_ids.ndim == 2:
        rows = [[int(t) for t in row if t != 0] for row in token_ids]
    elif len(token_ids) and np.ndim(token_ids[0]) == 0:
        rows = [[int(t) for t in token_ids]]
    else:
        rows = [[int(t) for t in row] for row in token_ids]
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("generate: every prompt needs at least one token id")
    return rows


def _decoder(model):
    if not hasattr(model, "cached_decoder"):
        raise TypeError(f"{type(model).__name__} has no cached_decoder(): build a GPT-2 with build_transformer_model")
    return model.cached_decoder()


def generate(model, token_ids, max_new_tokens, strategy="greedy", top_k=None, top_p=None, temperature=1.0,
             num_beams=1, end_id=None, seed=None, callback=None):
    """Generate up to ``max_new_tokens`` per prompt.

    Args:
        token_ids: one prompt (list of ids), a list of prompts, or a 2-D array
            right-padded with 0.
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
    prompts = _prompts(token_ids)
    ends = _end_ids(end_id)
    decoder = _decoder(model)
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
        nxt = np.where(done, min(ends) if ends else 0, nxt)
        logits, state = decoder.step(nxt, state)
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
