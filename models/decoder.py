"""Cached incremental decoding for GPT-2: a prefill call over the (left-padded)
prompt and a one-token step call, each traced once per (batch, bucket) shape.

The key/value cache holds, per layer, ``(batch, 2, heads, max_len, head_size)``.
Prompts are left-padded to a bucket length (a multiple of ``bucket``); row
``r``'s positions are shifted by its padding so that its tokens sit at
positions ``0, 1, ...`` exactly as in an unpadded run, and padded slots are
masked as keys. Hence the step function is compiled once per batch size and
cache length, not per token or per prompt length.

The ids given are the model's tokens: each must lie in ``[0, vocab_size)``
(ValueError naming the id, its row and position). Tokens whose id is the
model's ``pad_token_id`` (if it has one) are masked as keys, as in the full
forward pass; with ``pad_token_id=None`` (GPT-2's own config) every id is a
real token.
"""

import keras
import numpy as np
from keras import ops

from toolkit.generation import check_token_ids


# TensorFlow: XLA compiles the decoding functions of models up to this many weight bytes. Measured on a
# 2-core CPU (docs/benchmarks.md): GPT-2 small (0.5 GB) decodes 43 -> 49 tok/s with XLA (fused small
# ops), CPM-LM (10.4 GB) 0.286 -> 0.310 s/token (its large matrix-vector products run faster in TF's
# own oneDNN kernels than in XLA's).
XLA_AUTO_MAX_BYTES = 2 * 2**30


class CachedDecoder:
    """Wraps a built ``GPT2`` transformer. Methods take and return NumPy.

    ``prefill(prompts) -> (logits_last, state)``; ``step(token_ids, state) ->
    (logits, state)``; ``reorder(state, rows)`` for beam search. ``state`` is
    an opaque dict. ``jit_compile``: on TensorFlow, compile the prefill and step
    functions with XLA (``'auto'``: for models of at most
    :data:`XLA_AUTO_MAX_BYTES` of weights)."""

    def __init__(self, transformer, bucket=64, jit_compile="auto"):
        if transformer.model is None:
            raise ValueError("build the transformer before decoding")
        if jit_compile not in ("auto", True, False):
            raise ValueError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
        self.t = transformer
        self.bucket = int(bucket)
        self.max_position = transformer.max_position_limit
        self.layers = transformer.num_hidden_layers
        self.heads = transformer.num_attention_heads
        self.head_size = transformer.attention_head_size
        self.vocab_size = transformer.vocab_size
        self.pad_id = transformer.pad_token_id  # None: no id is padding
        if jit_compile == "auto":
            weight_bytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in transformer.model.weights)
            jit_compile = weight_bytes <= XLA_AUTO_MAX_BYTES
        self.jit_compile = bool(jit_compile)
        # torch: the fbgemm copies of the int8 weights, packed once for the three traced functions
        kernels = _int8_kernels(transformer.model)
        self._prefill = _compile(self._prefill_fn, transformer.model, self.jit_compile, kernels)
        self._step = _compile(self._step_fn, transformer.model, self.jit_compile, kernels)
        self._continue = _compile(self._continue_fn, transformer.model, self.jit_compile, kernels)

    # ------------------------------------------------------- traced bodies
    def _forward(self, token_ids, caches, cache_index, key_mask, offsets, cache_mode="update"):
        t = self.t
        x = t.embed(token_ids, start_index=offsets)
        new = []
        for i in range(self.layers):
            x, c = t.apply_main(x, key_mask, i, cache=caches[i], cache_index=cache_index, cache_mode=cache_mode)
            new.append(c)
        x = t.layers["Output-Norm"](x)
        logits = t.layers["Embedding-Token"](x, mode="dense")
        return ops.cast(logits, "float32"), tuple(new)

    def _prefill_fn(self, token_ids, caches, key_mask, offsets):
        logits, caches = self._forward(token_ids, caches, 0, key_mask, offsets)
        return logits[:, -1], caches

    def _step_fn(self, token_ids, caches, cache_index, key_mask, offsets):
        logits, caches = self._forward(token_ids, caches, cache_index, key_mask, offsets + cache_index)
        return logits[:, -1], caches

    def _continue_fn(self, token_ids, caches, cache_index, key_mask, offsets):
        logits, _ = self._forward(token_ids, caches, cache_index, key_mask, offsets + cache_index, "prefix")
        return logits

    # --------------------------------------------------------------- public
    def cache_length(self, prompt_len, max_new_tokens):
        n = prompt_len + max_new_tokens
        n = -(-n // self.bucket) * self.bucket
        return n

    def prefill(self, prompts, max_new_tokens):
        """``prompts``: list of int lists (non-empty). Returns last-position
        logits ``(batch, vocab)`` and the decoding state."""
        if any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        check_token_ids(prompts, self.vocab_size, "prefill")
        longest = max(len(p) for p in prompts)
        if self.max_position is not None and longest + max_new_tokens > self.max_position:
            raise ValueError(
                f"prompt of {longest} tokens + {max_new_tokens} new tokens exceeds the model's "
                f"{self.max_position} positions")
        plen = -(-longest // self.bucket) * self.bucket
        total = self.cache_length(plen, max_new_tokens)
        b = len(prompts)
        ids = np.zeros((b, plen), "int32")
        key_mask = np.zeros((b, total), bool)
        offsets = np.zeros((b,), "int32")
        for r, p in enumerate(prompts):
            ids[r, plen - len(p):] = p
            key_mask[r, plen - len(p):plen] = self._real(ids[r, plen - len(p):])
            offsets[r] = -(plen - len(p))
        dtype = self.t.model.get_layer("Embedding-Token").compute_dtype
        caches = tuple(np.zeros((b, 2, self.heads, total, self.head_size), dtype) for _ in range(self.layers))
        logits, caches = self._prefill(ids, caches, key_mask, offsets)
        state = {"caches": caches, "index": plen, "key_mask": key_mask, "offsets": offsets, "total": total}
        return ops.convert_to_numpy(logits), state

    def step(self, token_ids, state):
        """Feed one token per row (``(batch,)``), or ``length`` tokens per row
        (``(batch, length)``: one call, the same as ``length`` single steps);
        returns the logits after the last one ``(batch, vocab)``."""
        index = state["index"]
        ids = np.asarray(token_ids)
        ids = ids.reshape(-1, 1) if ids.ndim <= 1 else ids
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise ValueError(f"token_ids must have shape (batch,) or (batch, length), got {np.shape(token_ids)}")
        if index + ids.shape[1] > state["total"]:
            raise ValueError(f"cache full: {state['total']} positions ({ids.shape[1]} new tokens at {index})")
        check_token_ids(ids, self.vocab_size, "step")
        ids = ids.astype("int32")
        key_mask = state["key_mask"].copy()
        key_mask[:, index:index + ids.shape[1]] = self._real(ids)
        logits, caches = self._step(ids, state["caches"], np.int32(index), key_mask, state["offsets"])
        new = dict(state, caches=caches, index=index + ids.shape[1], key_mask=key_mask)
        return ops.convert_to_numpy(logits), new

    def score_continuations(self, token_ids, state):
        """Logits after each prefix of each continuation of a batch-1 ``state``:
        ``token_ids`` ``(rows, length)`` (every row a possible continuation of the
        same context, no padding) gives ``(rows, length, vocab)``, where
        ``[r, i]`` are the next-token logits after the context and
        ``token_ids[r, :i + 1]``. Every row reads the one shared cache (no per-row
        copy, no state change: ``state`` stays valid), so scoring ``rows``
        candidates costs ``rows * length`` new tokens, not ``rows`` caches.
        Equals ``reorder`` to ``rows`` copies and ``length`` ``step`` calls."""
        ids = np.asarray(token_ids)
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise ValueError(f"token_ids must have shape (rows, length >= 1), got {ids.shape}")
        check_token_ids(ids, self.vocab_size, "score_continuations")
        ids = ids.astype("int32")
        if state["key_mask"].shape[0] != 1:
            raise ValueError(f"score_continuations needs a batch-1 state, got batch {state['key_mask'].shape[0]}")
        index = state["index"]
        if index + ids.shape[1] > state["total"]:
            raise ValueError(f"{ids.shape[1]} continuation tokens at position {index} exceed the cache's "
                             f"{state['total']} positions")
        offsets = np.repeat(state["offsets"], ids.shape[0])
        logits = self._continue(ids, state["caches"], np.int32(index), state["key_mask"], offsets)
        return ops.convert_to_numpy(logits)

    def score_tree(self, token_ids, parents, states):
        """Next-token logits at every node of a tree of continuations, for many
        contexts in one call. ``states``: ``g`` batch-1 states (any lengths);
        ``token_ids`` and ``parents`` ``(g, nodes)``: node ``j`` of tree ``i`` is
        the token ``token_ids[i, j]`` after its parent node ``parents[i, j]``
        (``-1``: after the context; parents come before their children). Returns
        ``(g, nodes, vocab)``: ``[i, j]`` are the logits after the context of
        ``states[i]`` and the path from the root to node ``j``. Each node is one
        new token, so continuations sharing a prefix share its cost (all the
        moves of a position: 4 characters each, about 50 nodes for 40 moves).
        Equals :meth:`score_continuations` of every root-to-node path."""
        ids, parents = np.asarray(token_ids), np.asarray(parents)
        if ids.ndim != 2 or ids.shape != parents.shape or ids.shape[0] != len(states):
            raise ValueError(f"token_ids and parents must both have shape (len(states)={len(states)}, nodes), "
                             f"got {ids.shape} and {parents.shape}")
        if any(state["key_mask"].shape[0] != 1 for state in states):
            raise ValueError("score_tree needs batch-1 states")
        check_token_ids(ids, self.vocab_size, "score_tree")
        tree, depths = _tree_mask(parents)
        # each node at its own position: the context's length (its index + its offset) + the node's depth
        positions = np.array([s["offsets"][0] + s["index"] for s in states], "int32")[:, None] + depths
        if self.max_position is not None and positions.max() >= self.max_position:
            raise ValueError(f"a tree reaching position {positions.max()} exceeds the model's {self.max_position} "
                             f"positions")
        caches, key_mask = _stacked(states)
        mask = np.concatenate([np.repeat(key_mask[:, None], ids.shape[1], axis=1), tree], axis=-1)
        logits = self._continue(ids.astype("int32"), caches, np.int32(0), mask, positions.astype("int32"))
        return ops.convert_to_numpy(logits)

    def _real(self, ids):
        """Which ids are tokens (not the pad id), as keys; the same rule as the full forward pass."""
        return np.ones(ids.shape, bool) if self.pad_id is None else ids != self.pad_id

    def reorder(self, state, rows):
        """Select/duplicate batch rows (beam search)."""
        rows = np.asarray(rows, "int32")
        caches = tuple(ops.take(c, rows, axis=0) for c in state["caches"])
        return dict(state, caches=caches, key_mask=state["key_mask"][rows], offsets=state["offsets"][rows])


def _stacked(states, multiple=256):
    """The caches and key masks of batch-1 states as one batch, each padded to the longest cache
    (rounded up to ``multiple`` positions: few shapes to trace)."""
    total = -(-max(state["total"] for state in states) // multiple) * multiple
    key_mask = np.zeros((len(states), total), bool)
    for row, state in enumerate(states):
        key_mask[row, :state["index"]] = state["key_mask"][0, :state["index"]]
    layers = []
    for layer in range(len(states[0]["caches"])):
        parts = [ops.convert_to_numpy(state["caches"][layer]) for state in states]
        padded = [np.pad(part, [(0, 0)] * 3 + [(0, total - part.shape[3]), (0, 0)]) for part in parts]
        layers.append(np.concatenate(padded, axis=0))
    return tuple(layers), key_mask


def _tree_mask(parents):
    """``(g, n, n)`` ancestor-or-self masks and ``(g, n)`` depths of trees given by parent indices."""
    g, n = parents.shape
    mask, depths = np.zeros((g, n, n), bool), np.zeros((g, n), "int32")
    for node in range(n):
        parent = parents[:, node]
        if np.any(parent >= node):
            raise ValueError(f"node {node}'s parent must come before it (a parent index < {node}, or -1)")
        has = parent >= 0
        mask[has, node] = mask[has, parent[has]]
        depths[has, node] = depths[has, parent[has]] + 1
        mask[:, node, node] = True
    return mask, depths


def _int8_kernels(model):
    """On the torch backend, the fbgemm linears of the model's int8 layers (else none)."""
    if keras.backend.backend() != "torch":
        return {}
    from models.int8_decoding import fast_int8_kernels

    return fast_int8_kernels(model)


def _compile(fn, model, jit_compile=False, int8_kernels=None):
    """Trace ``fn`` once per input shape: tf.function on TensorFlow (compiled by
    XLA with ``jit_compile``), jax.jit over the model's variables on JAX,
    TorchScript on torch (the int8 layers of ``int8_kernels`` on fbgemm:
    :mod:`models.int8_decoding`), eager elsewhere."""
    backend = keras.backend.backend()
    if backend == "torch":
        from models.int8_decoding import routed_to
        from toolkit.int8_kernels import TracedStep

        kernels = int8_kernels or {}
        return TracedStep(fn, modules=kernels.values(), parameters=[v.value for v in model.variables],
                          tracing_context=lambda: routed_to(kernels))
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=False, jit_compile=bool(jit_compile))
    if backend == "jax":
        import jax

        variables = model.variables

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(stateless)
        return lambda *args: jitted([v.value for v in variables], *args)
    return fn
