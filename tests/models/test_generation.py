"""KV-cache generation: equals full recomputation; samplers; beams; stopping; padding; errors."""

import numpy as np
import pytest

from models import build_transformer_model
from tests.helpers import TINY_GPT2, every_id_batch
from toolkit.generation import AutoRegressiveDecoder, generate, sampling_probs


@pytest.fixture(scope="module")
def gpt():
    return build_transformer_model(dict(TINY_GPT2, initializer_range=0.5), model="gpt2", with_lm="linear")


PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [11, 12], [40]]


def full_logits(model, seq):
    return model.predict(np.array([seq], "int32"), verbose=0)[0, -1]


def test_cached_greedy_equals_full_recomputation(gpt):
    out = generate(gpt, PROMPTS, 12)
    decoder = gpt.cached_decoder()
    logits, state = decoder.prefill(PROMPTS, 12)
    for r, (prompt, gen) in enumerate(zip(PROMPTS, out)):
        seq = list(prompt)
        for t in gen:
            ref = full_logits(gpt, seq)
            assert int(np.argmax(ref)) == t
            seq.append(t)
    # logits, step by step, for the whole batch
    seqs = [list(p) for p in PROMPTS]
    for step in range(6):
        for r in range(len(PROMPTS)):
            np.testing.assert_allclose(logits[r], full_logits(gpt, seqs[r]), atol=1e-4, rtol=0)
        nxt = np.argmax(logits, -1)
        for r in range(len(PROMPTS)):
            seqs[r].append(int(nxt[r]))
        logits, state = decoder.step(nxt, state)


def test_xla_and_plain_decoders_agree(gpt):
    """``jit_compile`` (XLA on TensorFlow; 'auto' picks it for small models) changes speed only:
    the same logits, step by step, as the plain tf.function / jax.jit decoder."""
    import keras

    from models.decoder import CachedDecoder

    auto = gpt.cached_decoder()
    assert auto.jit_compile is True  # a tiny model is far under XLA_AUTO_MAX_BYTES
    plain = CachedDecoder(gpt.transformer, jit_compile=False)
    xla = CachedDecoder(gpt.transformer, jit_compile=True)
    (a, sa), (b, sb) = plain.prefill(PROMPTS, 6), xla.prefill(PROMPTS, 6)
    for _ in range(6):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        nxt = np.argmax(a, -1)
        (a, sa), (b, sb) = plain.step(nxt, sa), xla.step(nxt, sb)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="jit_compile"):
        CachedDecoder(gpt.transformer, jit_compile="xla")
    assert keras.backend.backend() in ("tensorflow", "jax")


def test_multi_token_step_and_shared_prefix_continuations(gpt):
    """``step`` with ``(batch, length)`` tokens equals ``length`` single steps; ``score_continuations``
    scores many continuations of one batch-1 context against the one cache (no per-row copy) and
    equals full recomputation of every prefix of every row, leaving the state usable."""
    decoder = gpt.cached_decoder()
    prompt = [5, 6, 7, 8, 9]
    _, one = decoder.prefill([prompt], 12)
    _, many = decoder.prefill([prompt], 12)
    for t in (11, 12, 13):
        last, one = decoder.step([t], one)
    multi, many = decoder.step([[11, 12, 13]], many)
    np.testing.assert_allclose(multi, last, atol=1e-4, rtol=0)
    assert many["index"] == one["index"]
    np.testing.assert_array_equal(many["key_mask"], one["key_mask"])
    np.testing.assert_allclose(multi[0], full_logits(gpt, prompt + [11, 12, 13]), atol=1e-4, rtol=0)

    rows = np.array([[20, 21, 22], [30, 31, 32], [20, 40, 41], [1, 2, 3], [50, 51, 52]], "int32")
    context = prompt + [11, 12, 13]
    scored = decoder.score_continuations(rows, many)
    assert scored.shape == (5, 3, gpt.output_shape[-1])
    for r in range(len(rows)):
        for i in range(3):
            np.testing.assert_allclose(scored[r, i], full_logits(gpt, context + list(rows[r, :i + 1])),
                                       atol=1e-4, rtol=0)
    # the state is untouched: the next step still continues the context
    nxt, _ = decoder.step([60], many)
    np.testing.assert_allclose(nxt[0], full_logits(gpt, context + [60]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="batch-1 state"):
        decoder.score_continuations(rows, decoder.prefill(PROMPTS, 4)[1])
    with pytest.raises(ValueError, match="exceed the cache"):
        decoder.score_continuations(np.ones((2, 64), "int32"), many)
    with pytest.raises(ValueError, match="cache full"):
        decoder.step(np.ones((1, 64), "int32"), many)


def test_a_tree_of_continuations_of_many_contexts_equals_full_recomputation(gpt):
    """``score_tree``: two contexts of different lengths (one with id 0), each with its own tree
    (siblings share a position, padded nodes), in one call; every node's logits equal the full
    forward pass of its context + its root-to-node path."""
    decoder = gpt.cached_decoder()
    contexts = [[0, 5, 6, 7, 8, 9, 10, 11], [40, 3]]
    states = [decoder.prefill([context], 12)[1] for context in contexts]
    _, states[1] = decoder.step([[41, 42]], states[1])  # a state a step on: index and offsets differ
    contexts[1] += [41, 42]
    tokens = np.array([[20, 21, 22, 23, 0], [30, 31, 32, 33, 34]], "int32")
    parents = np.array([[-1, 0, 0, 1, -1], [-1, 0, 1, -1, 3]], "int32")
    logits = decoder.score_tree(tokens, parents, states)
    assert logits.shape == (2, 5, gpt.output_shape[-1])
    for game, context in enumerate(contexts):
        for node in range(5):
            path, at = [], node
            while at >= 0:
                path.insert(0, int(tokens[game, at]))
                at = int(parents[game, at])
            np.testing.assert_allclose(logits[game, node], full_logits(gpt, context + path), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="parent must come before it"):
        decoder.score_tree(tokens, np.array([[-1, 2, 0, 1, -1], [-1, 0, 1, -1, 3]]), states)
    with pytest.raises(ValueError, match="same shape|both have shape"):
        decoder.score_tree(tokens[:, :3], parents, states)
    with pytest.raises(ValueError, match="batch-1 states"):
        decoder.score_tree(tokens[:1], parents[:1], [decoder.prefill(PROMPTS, 4)[1]])
    with pytest.raises(ValueError, match="id 99999"):
        decoder.score_tree(np.full((2, 5), 99999), parents, states)


def test_padded_array_input_and_single_prompt(gpt):
    arr = np.zeros((2, 7), "int32")
    arr[0, :7] = PROMPTS[0]
    arr[1, :2] = PROMPTS[1]
    assert generate(gpt, arr, 5, pad_id=0) == generate(gpt, PROMPTS[:2], 5)
    assert generate(gpt, arr, 5, attention_mask=arr != 0) == generate(gpt, PROMPTS[:2], 5)
    assert generate(gpt, PROMPTS[2], 5) == generate(gpt, [PROMPTS[2]], 5)


ZERO_PROMPTS = [[5, 0, 7, 0, 9], [0], [0, 0, 3, 129]]


def test_id_0_is_a_real_token_without_pad_id(gpt):
    """GPT-2's config has no pad id: id 0 ('!' in OpenAI's vocabulary) in a prompt, a step or an array
    is a token like any other; generate's output is the full forward pass's greedy argmax."""
    out = generate(gpt, ZERO_PROMPTS, 6)
    for prompt, gen in zip(ZERO_PROMPTS, out):
        seq = list(prompt)
        for t in gen:
            assert int(np.argmax(full_logits(gpt, seq))) == t
            seq.append(t)
    arr = np.array([[5, 0, 7, 0, 9], [0, 0, 0, 0, 0]], "int32")  # nothing is stripped
    assert generate(gpt, arr, 6) == generate(gpt, [list(arr[0]), list(arr[1])], 6)
    decoder = gpt.cached_decoder()
    _, state = decoder.prefill([[5, 6]], 4)
    logits, _ = decoder.step([[0, 0]], state)
    np.testing.assert_allclose(logits[0], full_logits(gpt, [5, 6, 0, 0]), atol=1e-4, rtol=0)
    scored = decoder.score_continuations(np.array([[0, 7]], "int32"), state)
    np.testing.assert_allclose(scored[0, 0], full_logits(gpt, [5, 6, 0]), atol=1e-4, rtol=0)
    assert gpt.transformer.pad_token_id is None and decoder.pad_id is None


@pytest.fixture(scope="module")
def gpt_pad(gpt):
    """The same weights with a pad id (the last id of the vocabulary)."""
    model = build_transformer_model(dict(TINY_GPT2, pad_token_id=129), model="gpt2", with_lm="linear")
    model.set_weights(gpt.get_weights())
    return model


def test_pad_id_left_and_right_padding_equal_unpadded_rows(gpt, gpt_pad):
    """With a pad id (the model's, or ``pad_id=``/``attention_mask=`` of generate) padding on either
    side is removed: every row generates what it does alone, unpadded; id 0 stays a real token."""
    pad = 129
    ids, mask = every_id_batch([12, 7, 3], 12, 20, seed=3, pad=pad)  # ids 0..19, 0 inside row 0
    rows = [list(row[m == 1]) for row, m in zip(ids, mask)]
    left = np.full_like(ids, pad)
    for r, row in enumerate(rows):
        left[r, len(left[r]) - len(row):] = row
    for model, kwargs in ((gpt_pad, {}), (gpt, {"pad_id": pad})):
        alone = [generate(model, [row], 6, **kwargs)[0] for row in rows]
        assert generate(model, ids, 6, **kwargs) == alone
        assert generate(model, left, 6, **kwargs) == alone
        assert generate(model, left, 6, strategy="beam", num_beams=2, **kwargs) == \
            [generate(model, [row], 6, strategy="beam", num_beams=2, **kwargs)[0] for row in rows]
    alone = [generate(gpt, [row], 6)[0] for row in rows]
    zeros = np.where(mask == 1, ids, 0)  # padding that is a real id: only the mask tells
    assert generate(gpt, zeros, 6, attention_mask=mask) == alone
    assert generate(gpt, [list(r) for r in zeros], 6, attention_mask=mask.tolist()) == alone


def test_pad_id_is_masked_in_the_cache_as_in_the_full_forward_pass(gpt_pad):
    decoder = gpt_pad.cached_decoder()
    assert decoder.pad_id == 129
    logits, state = decoder.prefill([[5, 129, 0, 7]], 4)
    np.testing.assert_allclose(logits[0], full_logits(gpt_pad, [5, 129, 0, 7]), atol=1e-4, rtol=0)
    logits, _ = decoder.step([[129, 0]], state)
    np.testing.assert_allclose(logits[0], full_logits(gpt_pad, [5, 129, 0, 7, 129, 0]), atol=1e-4, rtol=0)


def test_out_of_vocabulary_ids_raise(gpt):
    """Ids outside [0, 130) raise one line naming the id, its row and position (in the caller's
    input, padding included) and the vocabulary size, before anything runs."""
    def message(what, token, row, position):
        return (f"^{what}: token id {token} at row {row}, position {position} is outside the model's vocabulary "
                r"of 130 ids \(0\.\.129\): encode the text with this model's tokenizer$")

    with pytest.raises(ValueError, match=message("generate", 130, 1, 2)):
        generate(gpt, [[5, 6], [7, 8, 130, 9]], 3)
    with pytest.raises(ValueError, match=message("generate", -1, 0, 0)):
        generate(gpt, [-1, 6], 3, strategy="beam")
    with pytest.raises(ValueError, match=message("generate", 2**40, 0, 1)):
        generate(gpt, np.array([[3, 2**40]]), 3)
    left = np.array([[7, 7, 5, 131]])  # left padding (pad id 7) removed: the position is still the caller's
    with pytest.raises(ValueError, match=message("generate", 131, 0, 3)):
        generate(gpt, left, 3, pad_id=7)
    assert generate(gpt, np.array([[-1, 5, 6]]), 3, attention_mask=[[0, 1, 1]]) == generate(gpt, [[5, 6]], 3)
    decoder = gpt.cached_decoder()
    with pytest.raises(ValueError, match=message("prefill", 500, 1, 0)):
        decoder.prefill([[1], [500, 2]], 3)
    _, state = decoder.prefill([[1, 2]], 3)
    with pytest.raises(ValueError, match=message("step", 130, 0, 0)):
        decoder.step([130], state)
    with pytest.raises(ValueError, match=message("step", -3, 0, 1)):
        decoder.step([[4, -3]], state)
    with pytest.raises(ValueError, match=message("score_continuations", 999, 1, 1)):
        decoder.score_continuations(np.array([[1, 2], [3, 999]]), state)
    with pytest.raises(ValueError, match=r"token ids must be integers, got float64 values \(row 0\)"):
        generate(gpt, [[1.5, 2.0]], 3)


def test_sampling_is_reproducible_with_seed(gpt):
    a = generate(gpt, PROMPTS, 10, strategy="sample", top_k=20, top_p=0.9, temperature=1.3, seed=7)
    b = generate(gpt, PROMPTS, 10, strategy="sample", top_k=20, top_p=0.9, temperature=1.3, seed=7)
    c = generate(gpt, PROMPTS, 10, strategy="sample", top_k=20, top_p=0.9, temperature=1.3, seed=8)
    assert a == b and a != c


def test_sampling_probs_filters():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    np.testing.assert_allclose(sampling_probs(logits, top_k=2), [[0.625, 0.375, 0, 0]])
    np.testing.assert_allclose(sampling_probs(logits, top_p=0.79), [[0.625, 0.375, 0, 0]])
    np.testing.assert_allclose(sampling_probs(logits, top_p=0.81), [[0.5, 0.3, 0.15, 0]] / np.array(0.95))
    np.testing.assert_allclose(sampling_probs(logits, top_p=1.0), np.exp(logits))


def test_beam_one_equals_greedy_and_wider_beam_scores_higher(gpt):
    greedy = generate(gpt, PROMPTS, 8)
    assert generate(gpt, PROMPTS, 8, strategy="beam", num_beams=1) == greedy

    def logprob(prompt, gen):
        seq, total = list(prompt), 0.0
        for t in gen:
            x = full_logits(gpt, seq).astype("float64")
            total += x[t] - np.log(np.exp(x - x.max()).sum()) - x.max()
            seq.append(t)
        return total

    beams = generate(gpt, PROMPTS, 8, strategy="beam", num_beams=4)
    for p, g, b in zip(PROMPTS, greedy, beams):
        assert len(b) == 8 and logprob(p, b) >= logprob(p, g) - 1e-6


def test_stops_at_end_id_per_row(gpt):
    free = generate(gpt, PROMPTS, 10)
    end = free[1][3]  # row 1 produces this id at step 3
    out = generate(gpt, PROMPTS, 10, end_id=end)
    assert out[1] == free[1][: free[1].index(end) + 1]
    for row, f in zip(out, free):
        assert row == (f[: f.index(end) + 1] if end in f else f)
    streamed = []
    generate(gpt, PROMPTS, 10, end_id=end, callback=lambda s, ids, done: streamed.append(done.copy()))
    assert streamed[-1][1]


def test_bad_inputs(gpt):
    with pytest.raises(ValueError, match=r"exceeds the model's 64 positions"):
        generate(gpt, [list(range(1, 60))], 10)
    for p in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="top_p"):
            generate(gpt, PROMPTS, 3, strategy="sample", top_p=p)
    with pytest.raises(ValueError, match="strategy"):
        generate(gpt, PROMPTS, 3, strategy="nucleus")
    with pytest.raises(ValueError, match="at least one token"):
        generate(gpt, [[]], 3)
    with pytest.raises(ValueError, match="prompt row 1 has no token id but padding"):
        generate(gpt, np.array([[5, 0], [0, 0]]), 3, pad_id=0)
    with pytest.raises(ValueError, match="attention_mask row 1 has 1 entries but token_ids row 1 has 2 ids"):
        generate(gpt, [[5], [6, 7]], 3, attention_mask=[[1], [1]])
    with pytest.raises(ValueError, match="attention_mask has 1 rows but token_ids has 2"):
        generate(gpt, [[5], [6, 7]], 3, attention_mask=[[1]])


def test_bert4keras_style_decoder(gpt):
    class Decoder(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="logits")
        def predict(self, inputs, output_ids, states):
            ids = np.concatenate([inputs[0], output_ids], 1)
            return gpt.predict(ids.astype("int32"), verbose=0)[:, -1]

    greedy = generate(gpt, [PROMPTS[0]], 6)[0]
    dec = Decoder(start_id=None, end_id=-1, maxlen=6, seed=3)
    assert dec.beam_search([PROMPTS[0]], topk=1).tolist() == greedy
    samples = dec.random_sample([PROMPTS[0]], n=3, topk=5)
    assert len(samples) == 3 and all(len(s) == 6 for s in samples)
    again = Decoder(start_id=None, end_id=-1, maxlen=6, seed=3).random_sample([PROMPTS[0]], n=3, topk=5)
    assert [s.tolist() for s in samples] == [s.tolist() for s in again]
