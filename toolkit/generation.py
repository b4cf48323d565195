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

Text on top of ids, with any tokenizer of :mod:`toolkit.tokenizers` (its public
``decode``, ``tokenize``, ``token_to_id``, and ``special_token_ids`` where it has
them): :func:`generate_text`
ends a row at a stop string (:class:`StopStrings`) and streams each row's text as
it grows to a callback (:class:`InOrder` joins the rows into one stream);
``generate(..., forbidden_ids=...)`` never picks the ids given (e.g. the rows of an
embedding padded past the tokenizer's vocabulary).

>>> tokenizer = CpmTokenizer("chinese_vocab.model")                # doctest: +SKIP
>>> generate_text(model, tokenizer, [tokenizer.encode("中国的首都是")], 20,  # doctest: +SKIP
...               stops=["\\n", "<eod>"], on_text=lambda row, text, finished: print(text, end=""))
北京
[([1432], '北京')]
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
             num_beams=1, end_id=None, seed=None, callback=None, pad_id=None, attention_mask=None,
             forbidden_ids=None):
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
        forbidden_ids: ids never generated (their logits are set to -1e30),
            e.g. ``range(tokenizer.vocab_size, rows)`` for an embedding padded
            past the vocabulary. Each must lie in ``[0, logits)`` and at least
            one id must stay allowed.

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
    if forbidden_ids is not None:
        decoder = _Forbidding(decoder, forbidden_ids)
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


class _Forbidding:
    """A cached decoder whose logits of ``forbidden_ids`` are -1e30 (never chosen); every other
    attribute (``vocab_size``, ``pad_id``, ``bucket``...) is the wrapped decoder's."""

    def __init__(self, decoder, forbidden_ids):
        self.decoder = decoder
        self.forbidden = np.unique(np.asarray(list(forbidden_ids), dtype="int64"))

    def __getattr__(self, name):
        return getattr(self.decoder, name)

    def _mask(self, logits):
        logits = np.array(logits, copy=True)
        size = logits.shape[-1]
        outside = self.forbidden[(self.forbidden < 0) | (self.forbidden >= size)]
        if outside.size:
            raise ValueError(f"generate: forbidden id {int(outside[0])} is outside the model's {size} logits "
                             f"(0..{size - 1})")
        if self.forbidden.size >= size:
            raise ValueError(f"generate: forbidden_ids forbid all {size} ids: nothing is left to generate")
        logits[..., self.forbidden] = -1e30
        return logits

    def prefill(self, prompts, max_new_tokens):
        logits, state = self.decoder.prefill(prompts, max_new_tokens)
        return self._mask(logits), state

    def step(self, token_ids, state):
        logits, state = self.decoder.step(token_ids, state)
        return self._mask(logits), state

    def reorder(self, state, rows):
        return self.decoder.reorder(state, rows)


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


# ------------------------------------------------------------------ text
def read_prompt_file(path):
    """Prompts of a UTF-8 text file: blocks separated by blank lines; lines starting with '#'
    are comments; newlines inside a prompt are kept, and so are trailing spaces. A file that
    cannot be read, or is not UTF-8, is a one-line ValueError naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except OSError as error:
        raise ValueError(f"cannot read prompt file '{path}': {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"prompt file '{path}' is not UTF-8: {error}") from None
    prompts, block = [], []
    for line in lines + [""]:
        line = line.rstrip("\r")
        if line.startswith("#"):
            continue
        if line.strip():
            block.append(line)
        elif block:
            prompts.append("\n".join(block))
            block = []
    return prompts


def check_prompt_lengths(prompts, positions, max_new_tokens, names=None, option="max_new_tokens"):
    """A one-line ValueError for the first prompt (a list of ids) that is empty, or that leaves
    no room for ``max_new_tokens`` new tokens in the model's ``positions``. ``names[i]`` names
    prompt ``i`` (default ``prompt i+1``); ``option`` names the setting in the advice."""
    for i, ids in enumerate(prompts):
        name = names[i] if names is not None else f"prompt {i + 1}"
        if not ids:
            raise ValueError(f"{name} is empty: nothing to continue")
        if len(ids) >= positions:
            raise ValueError(f"{name} is {len(ids)} tokens long, but the model has {positions} positions "
                             f"and needs room for at least one new token: shorten it")
        if len(ids) + max_new_tokens > positions:
            raise ValueError(f"{name} ({len(ids)} tokens) + {option} {max_new_tokens} exceeds the model's "
                             f"{positions} positions: use {option} {positions - len(ids)} or less, "
                             "or a shorter prompt")


class StopStrings:
    """What ends a row of generated text.

    ``stops``: strings. One that is a special token of the tokenizer (its public
    ``special_token_ids``, e.g. CPM's ``'<eod>'``) ends a row when that id comes, and is
    not part of the text. Any other ends the row where it first appears in the decoded
    text (the text is cut there). A token that decodes to exactly a stop string (CPM's
    newline piece U+2583 for ``'\\n'``) also ends its row inside :func:`generate`
    (``ids``), so a batch stops early.

    Attributes: ``ids`` (frozenset of ids that end a row), ``texts`` (the stop strings
    searched in the text).
    """

    def __init__(self, tokenizer, stops=()):
        specials = getattr(tokenizer, "special_token_ids", None) or {}
        ids, self.texts = set(), []
        for stop in stops:
            if not isinstance(stop, str) or not stop:
                raise ValueError(f"a stop string must be a non-empty text, got {stop!r}")
            if stop in specials:
                ids.add(int(specials[stop]))
            else:
                self.texts.append(stop)
                ids.update(_ids_decoding_to(tokenizer, stop))
        self.ids = frozenset(ids)

    def cut(self, text):
        """``(text before the first stop string, whether one was found)``."""
        found = [i for i in (text.find(stop) for stop in self.texts) if i >= 0]
        return (text[: min(found)], True) if found else (text, False)

    def holdback(self, text):
        """How many trailing characters of ``text`` might begin a stop string (not shown yet)."""
        longest = 0
        for stop in self.texts:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest


def _ids_decoding_to(tokenizer, text):
    """Ids of single tokens whose text is exactly ``text``: the token spelled ``text``, and those
    of ``tokenizer.tokenize(text)`` that decode to it alone (public API only)."""
    candidates = [tokenizer.token_to_id(text)] + [tokenizer.token_to_id(token) for token in tokenizer.tokenize(text)]
    found = set()
    for token_id in candidates:
        if token_id is not None and token_id not in found and tokenizer.decode([token_id]) == text:
            found.add(int(token_id))
    return found


class _RowTexts:
    """The decoded text of a batch's rows as their ids come, cut at the stop strings: each new
    id gives ``on_text(row, text, finished)`` the text that became safe to show (no stop string
    can begin in it; '' if none) and whether the row ended."""

    def __init__(self, tokenizer, stops, rows, on_text=None):
        self.tokenizer, self.stops, self.on_text = tokenizer, stops, on_text
        self.ids = [[] for _ in range(rows)]
        self.text = [""] * rows
        self.shown = [""] * rows
        self.finished = [False] * rows

    @property
    def done(self):
        return all(self.finished)

    def feed(self, row, token):
        if self.finished[row]:
            return
        token = int(token)
        if token in self.stops.ids:
            self.finished[row] = True
            ready = len(self.text[row])
        else:
            self.ids[row].append(token)
            self.text[row], self.finished[row] = self.stops.cut(self.tokenizer.decode(self.ids[row]))
            ready = len(self.text[row]) - (0 if self.finished[row] else self.stops.holdback(self.text[row]))
        self._show(row, self.text[row][:ready])

    def finish(self):
        """End every row still going (its whole text is shown)."""
        for row in range(len(self.ids)):
            if not self.finished[row]:
                self.finished[row] = True
                self._show(row, self.text[row])

    def _show(self, row, visible):
        new = ""
        if visible.startswith(self.shown[row]):  # decoding a longer prefix never rewrites the text shown
            new, self.shown[row] = visible[len(self.shown[row]):], visible
        if self.on_text is not None:
            self.on_text(row, new, self.finished[row])


class _AllStopped(Exception):
    """Raised from generate()'s callback once every row of the batch has stopped."""


def generate_text(model, tokenizer, token_ids, max_new_tokens, stops=(), on_text=None, **kwargs):
    """:func:`generate` with text: each row ends at a stop string (``stops``: strings or a
    :class:`StopStrings`), and ``on_text(row, text, finished)`` receives each row's text as it
    grows (streaming; ``text`` is what was added, maybe '', and ``finished`` says the row
    ended; exactly one call per row has ``finished=True``). Generation stops once every row has
    ended. Beam search has no per-step callback: its rows are streamed when they are done.
    ``kwargs`` go to :func:`generate` (``strategy``, ``seed``, ``forbidden_ids``, ``end_id``...;
    the stop strings' ids are added to ``end_id``).

    Returns, for each prompt row, ``(ids, text)``: the generated ids up to the stop (excluded
    when it is a whole token, such as ``<eod>``) and the text before the stop."""
    if not isinstance(stops, StopStrings):
        stops = StopStrings(tokenizer, stops)
    rows = _RowTexts(tokenizer, stops, len(_rows(token_ids, "token_ids")), on_text)
    live = [True] * len(rows.ids)  # rows generate() has not stopped yet

    def callback(step, step_ids, finished):
        for row, token in enumerate(step_ids):
            if live[row]:
                rows.feed(row, token)
            live[row] = not finished[row]
        if rows.done:
            raise _AllStopped

    ends = set(_end_ids(kwargs.pop("end_id", None))) | stops.ids
    try:
        ids = generate(model, token_ids, max_new_tokens, callback=callback, end_id=sorted(ends) or None, **kwargs)
        if kwargs.get("strategy") == "beam":  # no per-step callback: the rows as they came out
            for row, row_ids in enumerate(ids):
                for token in row_ids:
                    rows.feed(row, token)
    except _AllStopped:
        pass
    rows.finish()
    return [(rows.ids[row], rows.text[row]) for row in range(len(rows.ids))]


class InOrder:
    """An ``on_text`` for :func:`generate_text` that writes a batch's rows one after another:
    the first unfinished row as it grows, later rows kept until the rows before them have
    ended. ``head(row)`` and ``tail(row)`` give text written before and after each row (e.g.
    the prompt, a newline); ``write(text)`` gets every piece (a stream's ``write``)."""

    def __init__(self, rows, write, head=None, tail=None):
        self.write, self.head, self.tail = write, head or (lambda row: ""), tail or (lambda row: "")
        self.pending = [[] for _ in range(rows)]
        self.finished = [False] * rows
        self.current, self.started = 0, False

    def __call__(self, row, text, finished):
        self.pending[row].append(text)
        self.finished[row] = self.finished[row] or finished
        while self.current < len(self.pending):
            current = self.current
            if not self.started:
                self._write(self.head(current))
                self.started = True
            self._write("".join(self.pending[current]))
            self.pending[current] = []
            if not self.finished[current]:
                return
            self._write(self.tail(current))
            self.current, self.started = current + 1, False

    def _write(self, text):
        if text:
            self.write(text)


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
