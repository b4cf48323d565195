"""Taylor softmax: exp replaced by its even-order Taylor polynomial, and its cross-entropy."""

import keras
from keras import ops


def _check_order(order, who):
    if isinstance(order, bool) or int(order) != order or int(order) < 2 or int(order) % 2:
        raise ValueError(f"{who}: order must be an even integer >= 2 (odd orders can be negative), got {order!r}")
    return int(order)


def taylor_exp(x, order=2):
    """``f_n(x) = sum_{k=0..n} x^k / k!`` (Horner), > 0 for even ``n``."""
    out = ops.ones_like(x)
    for k in range(order, 0, -1):
        out = 1.0 + out * x / k
    return out


@keras.saving.register_keras_serializable(package="keras_longctx")
class TaylorSoftmax(keras.layers.Layer):
    """Taylor softmax (de Brebisson & Vincent, "An Exploration of Softmax
    Alternatives Belonging to the Spherical Loss Family", ICLR 2016):

        p_i = f_n(x_i) / sum_j f_n(x_j),   f_n(x) = sum_{k=0..n} x^k / k!

    For even ``n`` the Taylor polynomial of ``exp`` at 0 is strictly positive
    (Su Jianlin, "exp(x)在x=0处的偶数阶泰勒展开式总是正的", kexue.fm: its minimum
    ``x*`` satisfies ``f_n(x*) = x*^n / n! > 0``), so ``p`` is a distribution;
    ``f_2(x) = 1 + x + x^2 / 2 >= 1/2``. Odd ``n`` -> ``ValueError``. An optional
    boolean ``mask`` (True = keep) zeroes entries before normalising.

    Example:

    >>> import numpy as np
    >>> p = TaylorSoftmax(order=2)(np.array([[0.0, 1.0, -1.0]], "float32"))
    >>> np.round(np.asarray(p), 4).tolist()
    [[0.25, 0.625, 0.125]]
    """

    def __init__(self, order=2, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.order = _check_order(order, type(self).__name__)
        self.axis = axis
        self.supports_masking = True

    def call(self, inputs, mask=None):
        f = taylor_exp(ops.cast(inputs, self.compute_dtype), self.order)
        if mask is not None:
            f = ops.where(ops.cast(mask, "bool"), f, ops.zeros_like(f))
        return f / ops.sum(f, axis=self.axis, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(order=self.order, axis=self.axis)
        return config


@keras.saving.register_keras_serializable(package="keras_longctx")
def taylor_softmax_crossentropy(y_true, y_pred, order=2, axis=-1, sparse=False):
    """Cross-entropy of Taylor-softmax probabilities computed from logits ``y_pred``:

        loss = -sum_i y_i log f_n(z_i) + (sum_i y_i) log sum_j f_n(z_j)

    ``y_true`` one-hot / soft labels (same shape as ``y_pred``), or integer class
    ids when ``sparse=True`` (shape ``y_pred.shape[:-1]`` or with a trailing 1;
    needs ``axis=-1``). Returns the per-example loss (reduced over ``axis``).

    Example:

    >>> import numpy as np, keras
    >>> z = np.array([[2.0, 0.0, -1.0]], "float32")
    >>> float(taylor_softmax_crossentropy(np.array([[1.0, 0.0, 0.0]]), z)[0]) > 0
    True
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile("sgd", loss=taylor_softmax_crossentropy)
    """
    order = _check_order(order, "taylor_softmax_crossentropy")
    z = ops.convert_to_tensor(y_pred)
    if z.dtype not in ("float16", "bfloat16", "float32", "float64"):
        z = ops.cast(z, "float32")
    if sparse:
        if axis != -1:
            raise ValueError(f"taylor_softmax_crossentropy: sparse labels need axis=-1, got axis={axis}")
        labels = ops.cast(ops.convert_to_tensor(y_true), "int32")
        if len(labels.shape) == len(z.shape):
            labels = ops.squeeze(labels, axis=-1)
        y = ops.one_hot(labels, z.shape[-1], dtype=z.dtype)
    else:
        y = ops.cast(ops.convert_to_tensor(y_true), z.dtype)
    log_f = ops.log(taylor_exp(z, order))
    log_norm = ops.log(ops.sum(taylor_exp(z, order), axis=axis, keepdims=True))
    return ops.sum(y * (log_norm - log_f), axis=axis)

