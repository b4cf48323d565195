"""models/length_buckets.py: each text once an epoch, seeded orders that change by epoch,
batches padded to their own longest text (a multiple of 16, at most the limit), the order
restored, and a classifier's predictions the same as with every text padded to the longest.
Run on both backends (KERAS_BACKEND=jax too)."""

import numpy as np
import pytest

from models.classifier import build_classifier
from models.finetuning import length_buckets
from models.length_buckets import LengthBuckets
from tests.helpers import TINY_BERT, padded_ids


def texts(count, seed=0, longest=60):
    rng = np.random.default_rng(seed)
    return [[2] + list(rng.integers(4, 50, size=int(rng.integers(1, longest - 1)))) + [3] for _ in range(count)]


def epoch_indices(batches):
    return [index for number in range(len(batches)) for index in batches.batches[number]]


def test_each_text_once_an_epoch_in_a_seeded_order():
    id_lists = texts(203)
    batches = LengthBuckets(id_lists, np.arange(203), batch_size=8, shuffle=True, seed=1, pool=4)
    first = epoch_indices(batches)
    assert sorted(first) == list(range(203)) and len(batches) == 26
    batches.on_epoch_end()
    second = epoch_indices(batches)
    assert sorted(second) == list(range(203)) and second != first
    again = LengthBuckets(id_lists, np.arange(203), batch_size=8, shuffle=True, seed=1, pool=4)
    assert epoch_indices(again) == first
    for number in range(len(batches)):
        _, labels = batches[number]
        assert list(labels) == list(batches.batches[number])  # the labels follow their texts


def test_batches_are_padded_to_their_own_longest_text():
    id_lists = texts(200, longest=100)
    batches = LengthBuckets(id_lists, np.zeros(200), batch_size=16, shuffle=True, limit=100)
    shapes = set()
    for number in range(len(batches)):
        (tokens, segments), _ = batches[number]
        longest = max(len(id_lists[i]) for i in batches.batches[number])
        assert tokens.shape[1] == min(-(-longest // 16) * 16, 100) and segments.shape == tokens.shape
        for row, index in enumerate(batches.batches[number]):
            assert list(tokens[row, :len(id_lists[index])]) == id_lists[index]
            assert not tokens[row, len(id_lists[index]):].any()
        shapes.add(tokens.shape[1])
    assert len(shapes) > 1 and max(shapes) <= 100
    sorted_batches = LengthBuckets(id_lists, batch_size=16)  # no shuffle: by length, one pass
    widths = [sorted_batches[number][0][0].shape[1] for number in range(len(sorted_batches))]
    assert widths[0] != widths[1]  # Keras' TensorFlow adapter reads the shapes off the first two batches
    assert sum(widths[number] * len(sorted_batches.batches[number]) for number in range(len(widths))) < 0.7 * 200 * 100
    rows = np.arange(200)[sorted_batches.order()]
    assert list(sorted_batches.restore_order(rows)) == list(range(200))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="batch_size=0"):
        LengthBuckets(texts(3), batch_size=0)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_predictions_do_not_depend_on_the_padding(pooling):
    model = build_classifier(TINY_BERT, None, num_classes=3, pooling=pooling)
    lengths = [40, 3, 17, 9, 2, 33, 12]
    tokens = padded_ids(len(lengths), 40, TINY_BERT["vocab_size"], lengths, seed=2, low=4)
    id_lists = [list(row[:length]) for row, length in zip(tokens, lengths)]
    expected = model.predict([tokens, np.zeros_like(tokens)], verbose=0)
    batches = length_buckets(model, id_lists, batch_size=3, limit=64)
    got = batches.restore_order(model.predict(batches, verbose=0))
    np.testing.assert_allclose(got, expected, atol=1e-5)
