"""toolkit/mlm_data.py: BERT's masking statistics (15%; 80/10/10; no special token selected;
reproducible per (seed, step)), the masked positions a masked-head batch carries, packing, the
document split (no document in both), the vocabulary cut (the standard ids kept), the corpus
reading with counted bad lines, the options' one-line errors."""

import doctest

import numpy as np
import pytest

from tests.toolkit.assets import chinese_bert_vocab, peoples_daily_sentences
from toolkit import mlm_data
from toolkit.mlm_data import (CLS, FIRST_REGULAR, MASK, PAD, SEP, UNK, PretrainOptions, StreamSettings,
                              batch_for_step, batches, cut_vocabulary, encode_documents, held_out_batch, mask_slots,
                              mask_tokens, masked_positions, pack_documents, prepare_data, sequence_indices,
                              split_documents, standard_tokenizer)
from toolkit.tokenizers import Tokenizer, load_vocab

VOCAB = 500


def test_doctests():
    assert doctest.testmod(mlm_data).failed == 0


def _sequences(count=2000, length=128, seed=0):
    """Random regular tokens with [CLS] first, a [SEP] and an [UNK] inside, a padded tail."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(FIRST_REGULAR, VOCAB, (count, length)).astype(np.int32)
    ids[:, 0], ids[:, length // 3], ids[:, length // 3 + 1] = CLS, SEP, UNK
    for row, real in enumerate(rng.integers(length // 2, length + 1, count)):
        ids[row, real:] = PAD
    return ids


def test_masking_statistics():
    ids = _sequences()
    inputs, targets = mask_tokens(ids, np.random.default_rng(7), VOCAB)
    selected = targets != PAD
    regular = ids >= FIRST_REGULAR
    assert not (selected & ~regular).any()  # never [PAD] [UNK] [CLS] [SEP]
    assert np.array_equal(targets[selected], ids[selected])
    assert np.array_equal(inputs[~selected], ids[~selected])
    per_row = selected.sum(axis=1) / regular.sum(axis=1)
    assert np.all(np.abs(per_row - 0.15) <= 0.5 / regular.sum(axis=1) + 1e-9)  # round(15%) in every row
    assert selected.sum() / regular.sum() == pytest.approx(0.15, abs=0.002)
    chosen, shown = ids[selected], inputs[selected]
    masked, kept = np.mean(shown == MASK), np.mean(shown == chosen)
    random = np.mean((shown != MASK) & (shown != chosen))
    assert masked == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1 + 0.1 / (VOCAB - FIRST_REGULAR), abs=0.01)
    assert random == pytest.approx(0.1, abs=0.01)
    replaced = shown[(shown != MASK) & (shown != chosen)]
    assert replaced.min() >= FIRST_REGULAR and replaced.max() < VOCAB
    assert len(np.unique(replaced)) > 0.9 * (VOCAB - FIRST_REGULAR)  # uniform over the regular tokens


def test_a_row_without_regular_tokens_gets_no_target():
    ids = np.array([[CLS, SEP, PAD, PAD], [CLS, 9, SEP, PAD]])
    inputs, targets = mask_tokens(ids, np.random.default_rng(0), VOCAB)
    assert targets.tolist() == [[0, 0, 0, 0], [0, 9, 0, 0]]
    assert inputs[0].tolist() == ids[0].tolist()


def test_batches_are_a_function_of_seed_and_step():
    ids = _sequences(count=50, length=32)
    settings = StreamSettings(batch_size=8, vocab_size=VOCAB, seed=3, head="all")
    (tokens, segments), targets = batch_for_step(ids, 7, settings)
    (again, _), again_targets = batch_for_step(ids, 7, settings)
    assert np.array_equal(tokens, again) and np.array_equal(targets, again_targets)
    assert tokens.shape == (8, 32) and not segments.any()
    assert not np.array_equal(batch_for_step(ids, 8, settings)[0][0], tokens)
    assert not np.array_equal(batch_for_step(ids, 7, StreamSettings(8, VOCAB, seed=4, head="all"))[0][0], tokens)
    stream = batches(ids, 7, settings)
    (first, _), _ = next(stream)
    (second, _), _ = next(stream)
    assert np.array_equal(first, tokens) and np.array_equal(second, batch_for_step(ids, 8, settings)[0][0])


def test_mask_slots_is_the_most_a_row_can_have():
    assert [mask_slots(length) for length in (2, 8, 16, 128, 512)] == [1, 1, 2, 19, 77]
    ids = _sequences(count=300, length=128)
    ids[:, 1:] = np.maximum(ids[:, 1:], FIRST_REGULAR)  # every token after [CLS] regular: the most selected
    _, targets = mask_tokens(ids, np.random.default_rng(0), VOCAB)
    assert (targets != PAD).sum(axis=1).max() == mask_slots(128)


def test_masked_positions_round_trip_the_targets():
    _, targets = mask_tokens(_sequences(count=200, length=64), np.random.default_rng(5), VOCAB)
    positions, labels = masked_positions(targets, mask_slots(64))
    assert positions.shape == labels.shape == (200, mask_slots(64)) and positions.dtype == labels.dtype == np.int32
    rebuilt = np.zeros_like(targets)
    np.put_along_axis(rebuilt, positions, labels, axis=1)  # padding slots write label 0 at position 0
    assert np.array_equal(rebuilt, targets)
    used = labels != PAD
    assert np.array_equal(used.sum(axis=1), (targets != PAD).sum(axis=1)) and (positions[~used] == 0).all()
    assert all(np.all(np.diff(row[mask]) > 0) for row, mask in zip(positions, used))  # in position order
    assert masked_positions(np.array([[0, 7, 0, 9]]), 3)[0].tolist() == [[1, 3, 0]]
    with pytest.raises(ValueError, match="row 0 has 2 selected tokens, more than the 1 slots"):
        masked_positions(np.array([[0, 7, 0, 9]]), 1)


def test_masked_head_batches_carry_the_positions_of_the_same_batch():
    ids = _sequences(count=50, length=32)
    (tokens, segments), targets = batch_for_step(ids, 4, StreamSettings(8, VOCAB, seed=3, head="all"))
    (masked_tokens, masked_segments, positions), labels = batch_for_step(ids, 4, StreamSettings(8, VOCAB, seed=3))
    assert np.array_equal(masked_tokens, tokens) and np.array_equal(masked_segments, segments)
    want_positions, want_labels = masked_positions(targets, mask_slots(32))
    assert np.array_equal(positions, want_positions) and np.array_equal(labels, want_labels)
    (_, _, held_positions), held_labels = held_out_batch(ids, StreamSettings(8, VOCAB), limit=5)
    assert held_positions.shape == held_labels.shape == (5, mask_slots(32))
    assert len(held_out_batch(ids, StreamSettings(8, VOCAB, head="all"), limit=5)[0]) == 2


def test_each_epoch_reads_every_sequence_once():
    picks = np.concatenate([sequence_indices(10, step, 4, seed=1) for step in range(5)])  # two epochs of 10
    assert sorted(picks[:10]) == list(range(10)) and sorted(picks[10:20]) == list(range(10))
    assert list(picks[:10]) != list(picks[10:20])  # another order each epoch


def test_packing_is_one_stream_cut_to_length():
    documents = [np.arange(10, 10 + n) for n in (5, 0, 12, 3)]
    packed = pack_documents(documents, 8)
    assert packed.shape == (4, 8) and (packed[:, 0] == CLS).all()
    stream = packed[:, 1:].reshape(-1)
    expected = np.concatenate([np.append(d, SEP) for d in documents if len(d)])
    assert np.array_equal(stream[:len(expected)], expected) and (stream[len(expected):] == PAD).all()
    assert pack_documents([], 8).shape == (0, 8)


def test_the_document_split_is_disjoint_and_stable():
    documents = [f"文档{i}" for i in range(400)] + ["重复的文档"] * 3
    train, held = split_documents(documents, 0.1)
    assert sorted(train + held) == sorted(documents) and not set(train) & set(held)
    assert 20 <= len(held) <= 70 and split_documents(list(reversed(documents)), 0.1)[1] == list(reversed(held))
    assert documents.count("重复的文档") in (train.count("重复的文档"), held.count("重复的文档"))


def test_the_vocabulary_cut_keeps_the_standard_ids(tmp_path):
    path = chinese_bert_vocab()
    standard = load_vocab(path)
    tokenizer = standard_tokenizer(path)
    documents = peoples_daily_sentences(500) + ["Hello WORLD 2024年，ＡＢＣ！𠀀"]
    encoded = encode_documents(documents, tokenizer)
    vocabulary = cut_vocabulary(encoded, tokenizer)
    assert vocabulary.tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    inverse = {index: token for token, index in standard.items()}
    assert [inverse[i] for i in vocabulary.keep_tokens] == vocabulary.tokens
    assert vocabulary.keep_tokens[5:] == sorted(vocabulary.keep_tokens[5:])
    used = set(np.concatenate(encoded).tolist()) - {standard["[UNK]"]}
    assert set(vocabulary.keep_tokens[5:]) == used
    cut = Tokenizer(vocabulary.write(str(tmp_path / "vocab.txt")), do_lower_case=True)
    corpus_ids = mlm_data.to_corpus_ids(encoded, vocabulary, len(standard))
    for document, ids, standard_ids in zip(documents, corpus_ids, encoded):
        assert cut.encode(document)[0][1:-1] == ids.tolist()
        assert np.array_equal(np.asarray(vocabulary.keep_tokens)[ids], standard_ids)


def test_prepare_data_counts_bad_lines_and_splits_by_document(tmp_path):
    sentences = peoples_daily_sentences(3000)
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"\n".join(s.encode() for s in sentences[:10]) + b"\n\n\xc3\x28 not UTF-8\n  \n"
                     + b"\n".join(s.encode() for s in sentences[10:]) + b"\n")
    data = prepare_data([str(path)], chinese_bert_vocab(), 32, held_out=0.2, seed=0)
    report = data.reports[0]
    assert report.skipped == {"empty": 2, "not UTF-8": 1} and report.first_line["not UTF-8"] == 12
    assert report.documents == len(sentences) == data.train_documents + data.held_out_documents
    assert data.held_out_documents > 0 and data.train.shape[1] == data.held_out.shape[1] == 32
    train_rows = {tuple(row) for row in data.train}
    assert not any(tuple(row) in train_rows for row in data.held_out)
    lines = data.summary_lines(eval_sequences=2)
    assert lines[0] == report.summary() and "(2 evaluated every period)" in lines[-1]
    assert f"vocabulary: {data.vocabulary.size} tokens" in lines[1]


def test_a_corpus_without_documents_is_one_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\n   \n\xff\xfe\n")
    with pytest.raises(ValueError) as error:
        prepare_data([str(path)], chinese_bert_vocab(), 32)
    assert str(error.value) == (f"--corpus {path}: no documents (3 lines; skipped 3 lines: 2 empty (first: line 1), "
                                f"1 not UTF-8 (first: line 3)); give a UTF-8 text file with one document a line")


@pytest.mark.parametrize("options, message", [
    ({"steps": 0}, "--steps must be >= 1, got 0"),
    ({"lr": float("nan")}, "--lr must be a finite number > 0, got nan"),
    ({"ema": 1.0}, "--ema must be a number in [0, 1), got 1.0"),
    ({"mask_rate": 0.0}, "--mask-rate must be a number in (0, 1), got 0.0"),
    ({"max_length": 4}, "--max-length must be >= 8, got 4"),
    ({"hidden": 100, "heads": 3}, "--hidden 100 is not divisible by --heads 3"),
    ({"corpus": ["missing.txt"]}, "--corpus missing.txt: no such file"),
    ({"out": ""}, "give the output directory (--out)"),
    ({"head": "some"}, "--mlm-head some: give masked or all"),
])
def test_bad_options_are_one_line(options, message, tmp_path):
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        PretrainOptions(**{"out": str(tmp_path), **options}).check()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_model_sizes_come_from_defaults_config_and_options(tmp_path):
    assert PretrainOptions(out="x").model_config() == dict(mlm_data.DEFAULT_MODEL, max_position_embeddings=128)
    config = tmp_path / "config.json"
    config.write_text('{"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 100, '
                      '"max_position_embeddings": 256, "vocab_size": 21128}')
    sizes = PretrainOptions(out="x", config=str(config), layers=2).model_config()
    assert (sizes["num_hidden_layers"], sizes["hidden_size"], sizes["intermediate_size"]) == (2, 64, 100)
    assert sizes["max_position_embeddings"] == 256 and "vocab_size" not in sizes
    assert PretrainOptions(out="x", hidden=64).model_config()["intermediate_size"] == 256
    config.write_text('{"hidden_size": "big"}')
    with pytest.raises(ValueError, match=r"--config .*config.json: 'hidden_size' must be an integer >= 1, got 'big'"):
        PretrainOptions(out="x", config=str(config)).check()
