"""The Xiangqi GPT's losses and metrics (Keras): masked next-token cross-entropy, the
legal-mass term and the character accuracy / legal-character rate.

``y_true`` is a ``y`` of :func:`toolkit.xiangqi.training_data.pad_pairs`: the targets
``(batch, length)``, or ``(batch, length, 2)`` with each target's legal-continuation
bitmask (:func:`toolkit.xiangqi.vocabulary.legal_char_masks`) in ``[..., 1]``.
Padding targets (0) count nowhere.
"""

from keras import ops


def _split_targets(y_true):
    """(targets, legal bitmasks or None) of a ``y`` from :func:`toolkit.xiangqi.training_data.pad_pairs`."""
    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == 3:
        return y_true[..., 0], y_true[..., 1]
    return y_true, None


def _masked_mean(values, mask):
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def _allowed(bits, vocab):
    """(..., vocab) 0/1 floats: the characters whose bit is set in each legal bitmask."""
    return ops.cast(ops.bitwise_and(ops.right_shift(ops.expand_dims(bits, -1),
                                                    ops.arange(vocab, dtype="int32")), 1), "float32")


def masked_ce(y_true, logits):
    """Next-token cross-entropy over the real (non-padding) targets."""
    target, _ = _split_targets(y_true)
    mask = ops.cast(ops.not_equal(target, 0), "float32")
    return _masked_mean(ops.sparse_categorical_crossentropy(target, logits, from_logits=True), mask)


def legal_mass_nll(y_true, logits):
    """-log sum of the probabilities of the legal continuations, over the move characters:
    ``-log sum_{c legal} softmax(logits)_c`` (0 when ``y`` carries no masks)."""
    _, bits = _split_targets(y_true)
    if bits is None:
        return ops.zeros(())
    logp = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    allowed = _allowed(bits, logits.shape[-1])
    legal = ops.logsumexp(logp + (allowed - 1.0) * 1e9, axis=-1)
    return _masked_mean(-legal, ops.cast(ops.not_equal(bits, 0), "float32"))


def make_loss(legal_weight=0.0):
    """Masked cross-entropy, plus ``legal_weight`` x :func:`legal_mass_nll` when positive."""
    if not legal_weight:
        return masked_ce

    def masked_loss_with_legal_mass(y_true, logits):
        return masked_ce(y_true, logits) + legal_weight * legal_mass_nll(y_true, logits)
    return masked_loss_with_legal_mass


def masked_accuracy(y_true, logits):
    """How often the argmax token is the target (real targets only)."""
    target, _ = _split_targets(y_true)
    mask = ops.cast(ops.not_equal(target, 0), "float32")
    hit = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), target), "float32")
    return _masked_mean(hit, mask)


def legal_char_rate(y_true, logits):
    """How often the argmax character is a legal continuation of the real prefix (move characters)."""
    _, bits = _split_targets(y_true)
    if bits is None:
        return ops.zeros(())
    top = ops.cast(ops.argmax(logits, axis=-1), "int32")
    hit = ops.cast(ops.bitwise_and(ops.right_shift(bits, top), 1), "float32")
    return _masked_mean(hit, ops.cast(ops.not_equal(bits, 0), "float32"))


def make_metrics(legal_weight=0.0):
    """The metrics of a run: the character accuracy, and with the legal-mass term the
    cross-entropy alone (comparable with a run without it) and the legal-character rate."""
    return [masked_accuracy] + ([masked_ce, legal_char_rate] if legal_weight else [])


__all__ = ["masked_ce", "legal_mass_nll", "make_loss", "masked_accuracy", "legal_char_rate", "make_metrics"]
