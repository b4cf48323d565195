"""Performer (FAVOR+) attention: softmax attention in linear time via positive random features."""

import math

import keras
import numpy as np
from keras import ops

from layers.linear_attention import linear_attention, quadratic_kernel_attention
from layers.multi_head_attention import MultiHeadAttention

KERNELS = ("softmax", "relu")
FEATURE_TYPES = ("orthogonal", "iid")
_DEFAULT_EPSILON = {"softmax": 1e-6, "relu": 1e-3}
# Causal keys: exponents (relative to the first key's stabiliser) are clipped at this value,
# so features stay <= e^60 ~ 1e26 and sums over millions of keys stay finite in float32.
_CAUSAL_CLIP = 60.0
_NEG = -1e30


# --------------------------------------------------------------------------- projections
def numpy_projection_matrix(nb_features, dim, feature_type="orthogonal", seed=None):
    """Random projection ``W`` of shape ``(nb_features, dim)`` drawn with NumPy.

    ``'iid'``: i.i.d. ``N(0, 1)`` entries. ``'orthogonal'``: ``ceil(m / d)`` blocks,
    each the (transposed) Q factor of a Gaussian ``d x d`` matrix, with column signs
    fixed by ``sign(diag(R))`` so that it is Haar-distributed (without the fix,
    Householder QR makes e.g. ``Q[0, 0] <= 0`` always and the kernel estimate
    biased once ``m >> d``), stacked and cut to ``m`` rows; row ``r`` is then rescaled by the norm of an independent
    Gaussian ``d``-vector (chi-distributed, so each row has the norm distribution
    of a Gaussian row) - Choromanski et al. 2020, section 2.4.
    """
    rng = np.random.default_rng(seed)
    m, d = int(nb_features), int(dim)
    if feature_type == "iid":
        return rng.standard_normal((m, d))
    blocks = -(-m // d)
    q, r = np.linalg.qr(rng.standard_normal((blocks, d, d)))
    # sign fix (Mezzadri 2007): Householder QR alone is not Haar-distributed and biases the estimator
    q = q * np.where(np.diagonal(r, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]
    rows = np.transpose(q, (0, 2, 1)).reshape(blocks * d, d)[:m]
    norms = np.linalg.norm(rng.standard_normal((m, d)), axis=1)
    return norms[:, None] * rows


def projection_matrix(nb_features, dim, feature_type="orthogonal", seed=None):
    """Same distribution as :func:`numpy_projection_matrix` with ``keras.random``
    and ``keras.ops`` (usable inside a traced training step); ``seed`` is an int or
    a ``keras.random.SeedGenerator``."""
    m, d = int(nb_features), int(dim)
    if feature_type == "iid":
        return keras.random.normal((m, d), seed=seed, dtype="float32")
    blocks = -(-m // d)
    q, r = ops.qr(keras.random.normal((blocks, d, d), seed=seed, dtype="float32"))
    q = q * ops.where(ops.diagonal(r, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]
    rows = ops.reshape(ops.transpose(q, (0, 2, 1)), (blocks * d, d))[:m]
    norms = ops.sqrt(ops.sum(ops.square(keras.random.normal((m, d), seed=seed, dtype="float32")), axis=1))
    return norms[:, None] * rows


# --------------------------------------------------------------------------- feature maps
def _positions_axis(layout):
    if layout not in ("blhd", "bhld"):
        raise ValueError(f"layout must be 'blhd' or 'bhld', got {layout!r}")
    return 1 if layout == "blhd" else 2


def _key_mask(key_mask, layout):
    mask = ops.cast(key_mask, "bool")
    return mask[:, :, None, None] if layout == "blhd" else mask[:, None, :, None]


def _project(x, projection):
    """``x W^T`` over the last axis: ``(..., d) -> (..., m)``, one matrix product."""
    return ops.matmul(x, ops.transpose(projection))


def softmax_kernel_features(x, projection, is_query, scale=None, epsilon=1e-6, key_mask=None,
                            key_stabilizer="global", layout="blhd", add_epsilon=True, return_key_scale=False):
    """FAVOR+ positive random features of the softmax kernel (Choromanski et al. 2020,
    Lemma 1: ``exp(x . y) = E_w[exp(w . x - |x|^2 / 2) exp(w . y - |y|^2 / 2)]``):

        phi(x)_r = exp(w_r . x^ - |x^|^2 / 2 - c) + epsilon / m,   x^ = scale * x

    so that ``E[phi(q) . phi(k)] ~ exp(q . k * scale^2)`` up to the constants
    ``exp(-c)`` (``scale = d^-1/4`` gives softmax's ``1 / sqrt(d)``). The stabiliser
    ``c`` (gradient stopped) cancels in the attention ratio ``D^-1 Q' K'^T V``; it is
    the log-sum-exp of the exponents ``e_r = w_r . x^ - |x^|^2 / 2`` (rather than
    google-research ``fast_attention``'s max of ``w . x^`` alone, which leaves the
    largest feature at ``exp(-|x^|^2 / 2)``: for the large query/key norms of
    pretrained models that is below ``epsilon``, and attention turns uniform):

    * queries: ``c = logsumexp_r e_r`` per token, so ``phi(q) = softmax_r(w_r . q^)``
      (+ ``epsilon / m``): features sum to 1, ``|q^|^2 / 2`` cancels, and the whole map
      is one matrix product and one fused softmax;
    * keys, ``key_stabilizer='global'``: ``c = max_j logsumexp_r e_{j, r}`` per batch
      and head over the unmasked keys ``j``: the key with the largest mass has
      features summing to 1;
    * keys, ``key_stabilizer='causal'``: ``c = logsumexp_r e_{f, r}`` with ``f`` the first
      unmasked key, which every causal query sees, so it never looks at future keys;
      ``e - c`` is clipped at ``60`` per key (a later key would need ``e^60`` times key
      ``f``'s mass for the clip to act), so no overflow whatever the later keys.

    Keys are computed as ``softmax_r(w_r . x^_j) * s_j`` with the per-key scale
    ``s_j = exp(logsumexp_r e_{j, r} - c)`` (``logsumexp = max_r w_r . x^ - log max_r
    softmax_r - |x^|^2 / 2``, no second pass over the ``m``-wide tensor);
    ``return_key_scale=True`` returns ``(softmax, s)`` unmultiplied, so that
    :func:`layers.linear_attention.linear_attention` can scale the values
    (``d + 1`` wide) instead of the ``m``-wide features.

    Args:
      x: ``(batch, len, heads, d)`` (``layout='bhld'``: ``(batch, heads, len, d)``);
      projection: ``(m, d)``; key_mask: ``(batch, len)``.
      add_epsilon: False leaves out the ``+ epsilon / m`` (for
        :func:`layers.linear_attention.linear_attention`'s ``q_offset`` /
        ``k_offset``, which add it without another pass over the features).
    Returns:
      ``(batch, len, heads, m)`` (``'bhld'``: ``(batch, heads, len, m)``) float32;
      masked keys get exactly 0. With ``return_key_scale`` (keys): the softmax
      features and the ``(.., len, 1)``-shaped scale (0 at masked keys), no epsilon.
    """
    axis = _positions_axis(layout)
    x = ops.cast(x, "float32")
    projection = ops.cast(projection, "float32")
    d = x.shape[-1]
    m = projection.shape[0]
    scale = d ** -0.25 if scale is None else scale
    # the scale goes into the small (m, d) projection, not into the (.., n, d) input
    dash = _project(x, projection * scale)
    eps = epsilon / m
    probs = ops.softmax(dash, axis=-1)
    if is_query:
        return probs + eps if add_epsilon else probs

    # per-key log-sum-exp of the exponents, from the softmax: lse(dash) = max dash - log max softmax
    norm = (0.5 * scale * scale) * ops.sum(ops.square(x), axis=-1, keepdims=True)
    # (its gradient is softmax(dash), that of the log-sum-exp, so probs * exp(lse - c) differentiates
    # as exp(dash - |x^|^2 / 2 - c); only the stabiliser c is gradient-stopped)
    lse = ops.max(dash, axis=-1, keepdims=True) - ops.log(ops.max(probs, axis=-1, keepdims=True)) - norm
    mask = None if key_mask is None else _key_mask(key_mask, layout)
    if key_stabilizer == "global":
        masked = lse if mask is None else ops.where(mask, lse, _NEG)
        stab = ops.max(masked, axis=axis, keepdims=True)
        expo = lse - ops.stop_gradient(stab)
    elif key_stabilizer == "causal":
        if key_mask is None:
            first = lse[:, :1] if axis == 1 else lse[:, :, :1]
        else:
            idx = ops.argmax(ops.cast(key_mask, "int32"), axis=1)
            first = ops.take_along_axis(lse, ops.reshape(idx, (-1, 1, 1, 1)), axis=axis)
        expo = ops.minimum(lse - ops.stop_gradient(first), _CAUSAL_CLIP)
    else:
        raise ValueError(f"key_stabilizer must be 'global' or 'causal', got {key_stabilizer!r}")
    key_scale = ops.exp(expo if mask is None else ops.where(mask, expo, _NEG))
    if return_key_scale:
        return probs, key_scale
    feats = probs * key_scale
    if add_epsilon:
        feats = feats + eps if mask is None else ops.where(mask, feats + eps, ops.zeros_like(feats))
    return feats


def relu_kernel_features(x, projection, epsilon=1e-3, key_mask=None, layout="blhd"):
    """Generalised-attention ReLU features (Choromanski et al. 2020, section 2.2;
    google-research ``relu_kernel_transformation``):
    ``phi(x) = relu(W x) / sqrt(m) + epsilon``; masked keys get 0. ``layout`` as in
    :func:`softmax_kernel_features`."""
    _positions_axis(layout)
    x = ops.cast(x, "float32")
    projection = ops.cast(projection, "float32")
    m = projection.shape[0]
    feats = ops.relu(_project(x, projection)) / math.sqrt(m) + epsilon
    if key_mask is not None:
        feats = ops.where(_key_mask(key_mask, layout), feats, ops.zeros_like(feats))
    return feats


# --------------------------------------------------------------------------- layer
@keras.saving.register_keras_serializable(package="keras_longctx")
class PerformerAttention(MultiHeadAttention):
    """Drop-in :class:`MultiHeadAttention` with FAVOR+ linear-time attention
    (Choromanski et al., "Rethinking Attention with Performers", ICLR 2021,
    arXiv:2009.14794). Same weights, same call signature (padding masks, causal,
    key/value cache); only :meth:`attend` differs:

        phi(x) = exp(W x^ - |x^|^2 / 2 - c) + eps / m,   x^ = x / d^(1/4)
        bidirectional:  out = D^-1 (Q' (K'^T V)),   D = diag(Q' (K'^T 1))
        causal:         the same with A = tril(Q' K'^T), chunked prefix sums

    with ``Q' = phi(Q)``, ``K' = phi(K)`` and ``W`` an ``(nb_features, key_size)``
    random projection shared by the heads (``kernel='relu'``:
    ``phi(x) = relu(W x) / sqrt(m) + eps``). Cost ``O(n m d)`` instead of
    ``O(n^2 d)``; the causal path cuts the sequence in chunks of ``chunk_size``,
    computes the masked product exactly inside a chunk and carries
    ``sum K'^T V`` across chunks with ``ops.cumsum`` (memory
    ``O(n m + (n / c) m d)``), see :func:`layers.linear_attention.linear_attention`.

    Stabilisers (cancel exactly in the attention ratio, up to ``eps``), see
    :func:`softmax_kernel_features`: queries are normalised per token (log-sum-exp of
    their exponents, i.e. ``phi(q) = softmax(W q^)``); bidirectional keys use the max
    over unmasked keys of the per-key log-sum-exp (the reference ``fast_attention.py``
    uses ``max w . x^`` without the ``-|x^|^2 / 2`` term, which for the large norms of
    pretrained queries and keys pushes every feature below ``eps``). A max over all
    keys would leak future keys into causal outputs (a huge future key rescales,
    through ``eps`` and underflow, what earlier queries see) and a per-key
    stabiliser would break the ratio, so for ``use_causal_mask=True`` and for
    cached decoding the key stabiliser is one constant per batch and head computed
    only from a key every query sees: the log-sum-exp of the first unmasked key
    ``f``. Each key's ``lse - c`` is then clipped at ``+60``: a no-op unless a later
    key's mass exceeds key ``f``'s by ``e^60``, and it bounds every feature by
    ``e^60`` so that float32 sums cannot overflow. Outputs at position ``i`` depend on
    keys ``<= i`` only, and cached decoding reproduces the full causal pass.

    Random features: ``feature_type='orthogonal'`` (block-orthogonal rows with
    chi-distributed norms) or ``'iid'``. ``W`` is a non-trainable weight (saved
    with the model, so a reloaded model gives identical outputs), initially drawn
    with NumPy from ``seed``. ``redraw``: ``'never'`` or an int ``k``: a new ``W``
    is drawn (``keras.random`` + ``SeedGenerator``) every ``k`` training calls
    (``training=True``; a non-trainable ``step`` counter keeps count); never at
    inference.

    Not linearisable, hence ``ValueError``: a full ``(batch, q, k)``
    ``attention_mask`` (UniLM) and ``attention_bias``. ``attention_dropout`` has no
    attention matrix to act on and is ignored. With a key/value cache the exact
    ``tril(Q' K'^T)`` product over the cache is used (quadratic in the cache length,
    same features as the full pass).

    Args:
      nb_features: number of random features ``m`` (default 256).
      kernel: ``'softmax'`` (FAVOR+) or ``'relu'``.
      feature_type: ``'orthogonal'`` or ``'iid'``.
      redraw: ``'never'`` or a positive int.
      chunk_size: causal chunk length (default 128; any length works).
      epsilon: added to the features; default 1e-6 (softmax), 1e-3 (relu).
      seed: int seed of the initial draw and of the redraws.

    Example:

    >>> import numpy as np
    >>> att = PerformerAttention(num_heads=2, head_size=8, nb_features=32, seed=0)
    >>> x = np.random.rand(2, 100, 16).astype("float32")
    >>> tuple(att(x, attention_mask=np.ones((2, 100)), use_causal_mask=True).shape)
    (2, 100, 16)
    """

    def __init__(self, num_heads, head_size, nb_features=256, kernel="softmax", feature_type="orthogonal",
                 redraw="never", chunk_size=128, epsilon=None, seed=None, **kwargs):
        super().__init__(num_heads, head_size, **kwargs)
        if isinstance(nb_features, bool) or int(nb_features) != nb_features or int(nb_features) < 1:
            raise ValueError(f"{type(self).__name__}: nb_features must be an integer >= 1, got {nb_features!r}")
        if kernel not in KERNELS:
            raise ValueError(f"{type(self).__name__}: kernel must be one of {KERNELS}, got {kernel!r}")
        if feature_type not in FEATURE_TYPES:
            raise ValueError(f"{type(self).__name__}: feature_type must be one of {FEATURE_TYPES}, "
                             f"got {feature_type!r}")
        if redraw != "never" and (isinstance(redraw, bool) or not isinstance(redraw, (int, np.integer)) or redraw < 1):
            raise ValueError(f"{type(self).__name__}: redraw must be 'never' or an integer >= 1, got {redraw!r}")
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or int(chunk_size) < 1:
            raise ValueError(f"{type(self).__name__}: chunk_size must be an integer >= 1, got {chunk_size!r}")
        if epsilon is not None and float(epsilon) < 0:
            raise ValueError(f"{type(self).__name__}: epsilon must be >= 0, got {epsilon!r}")
        self.nb_features = int(nb_features)
        self.kernel = kernel
        self.feature_type = feature_type
        self.redraw = redraw if redraw == "never" else int(redraw)
        self.chunk_size = int(chunk_size)
        self.epsilon = None if epsilon is None else float(epsilon)
        self.seed = None if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    @property
    def feature_epsilon(self):
        return _DEFAULT_EPSILON[self.kernel] if self.epsilon is None else self.epsilon

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        seed = self.seed if self.seed is not None else int(np.random.randint(0, 2**31 - 1))
        initial = numpy_projection_matrix(self.nb_features, self.key_size, self.feature_type, seed).astype("float32")
        self.projection = self.add_weight(
            name="projection", shape=(self.nb_features, self.key_size), dtype="float32",
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(initial, dtype="float32"),
            trainable=False, autocast=False)
        self.step = self.add_weight(name="step", shape=(), dtype="int32", initializer="zeros", trainable=False)

    def set_projection_matrix(self, matrix):
        """Replace ``W`` (must be ``(nb_features, key_size)``)."""
        shape = tuple(np.shape(matrix))
        if shape != (self.nb_features, self.key_size):
            raise ValueError(f"{self.name}: projection matrix must have shape (nb_features, key_size) = "
                             f"{(self.nb_features, self.key_size)}, got {shape}")
        self.projection.assign(ops.convert_to_tensor(np.asarray(matrix), dtype="float32"))

    def _maybe_redraw(self, training):
        if not training:
            return
        step = self.step + 1
        self.step.assign(step)
        if self.redraw == "never":
            return
        new = projection_matrix(self.nb_features, self.key_size, self.feature_type, self.seed_generator)
        self.projection.assign(ops.where(step % self.redraw == 0, new, ops.convert_to_tensor(self.projection)))

    def feature_map(self, x, is_query, key_mask=None, causal=False, layout="blhd", add_epsilon=True):
        """Features ``phi(x)`` of split heads ``x`` ``(batch, len, heads, key_size)``
        (``layout='bhld'``: heads first) with the current projection; keys use the causal
        stabiliser when ``causal``. ``add_epsilon=False`` (softmax kernel only) leaves out
        the constant ``epsilon / m``, see :meth:`feature_offset`."""
        if self.kernel == "relu":
            return relu_kernel_features(x, self.projection, self.feature_epsilon,
                                        key_mask=None if is_query else key_mask, layout=layout)
        scale = self._feature_scale
        if is_query:
            return softmax_kernel_features(x, self.projection, True, scale, self.feature_epsilon, layout=layout,
                                           add_epsilon=add_epsilon)
        return softmax_kernel_features(x, self.projection, False, scale, self.feature_epsilon, key_mask=key_mask,
                                       key_stabilizer="causal" if causal else "global", layout=layout,
                                       add_epsilon=add_epsilon)

    @property
    def _feature_scale(self):
        return self.key_size ** -0.25 if self.attention_scale else 1.0

    @property
    def feature_offset(self):
        """The constant that ``feature_map(..., add_epsilon=False)`` leaves out (softmax kernel)."""
        return self.feature_epsilon / self.nb_features

    def _check_linearisable(self, full_mask, attention_bias):
        if full_mask is not None:
            raise ValueError(f"{self.name}: PerformerAttention cannot linearise a full (batch, query_len, key_len) "
                             "attention_mask (e.g. UniLM); pass a (batch, key_len) padding mask and/or "
                             "use_causal_mask=True, or use MultiHeadAttention")
        if attention_bias is not None:
            raise ValueError(f"{self.name}: PerformerAttention cannot linearise an additive attention_bias; "
                             "use MultiHeadAttention")

    def compute_output_spec(self, query, value=None, key=None, attention_mask=None, attention_bias=None, **kwargs):
        # fail when a functional model is built, not only when it first runs
        full = attention_mask if attention_mask is not None and len(attention_mask.shape) == 3 else None
        self._check_linearisable(full, attention_bias)
        return super().compute_output_spec(query, value, key, attention_mask=attention_mask,
                                           attention_bias=attention_bias, **kwargs)

    def attend(self, q, k, v, key_mask=None, full_mask=None, causal=False, attention_bias=None,
               query_offset=None, training=None):
        self._check_linearisable(full_mask, attention_bias)
        self._maybe_redraw(training)
        decoding = query_offset is not None
        if decoding or (causal and q.shape[1] is not None and k.shape[1] is not None and q.shape[1] != k.shape[1]):
            qf = self.feature_map(q, True)
            kf = self.feature_map(k, False, key_mask=key_mask, causal=True)
            mask = self.combined_mask(ops.shape(q)[1], ops.shape(k)[1], key_mask, None, causal, query_offset)
            return ops.cast(quadratic_kernel_attention(qf, kf, v, mask), v.dtype)
        # heads first: q, k, v are only key_size wide, so transposing them is cheap, and then every
        # m-wide contraction is a plain batched matrix product
        to_heads = (lambda x: ops.transpose(x, (0, 2, 1, 3)))
        qh, kh, vh = to_heads(q), to_heads(k), to_heads(v)
        if self.kernel == "softmax" and not causal:
            # bidirectional FAVOR+: epsilon / m folded into the contractions and the per-key scale
            # applied to the (d + 1)-wide values: the n x m tensors are two matmul outputs and two softmaxes
            offset = self.feature_offset
            qf = self.feature_map(qh, True, layout="bhld", add_epsilon=False)
            kf, key_scale = softmax_kernel_features(
                kh, self.projection, False, self._feature_scale, self.feature_epsilon, key_mask=key_mask,
                layout="bhld", return_key_scale=True)
            out = linear_attention(qf, kf, vh, key_mask=key_mask, layout="bhld", q_offset=offset, k_offset=offset,
                                   key_scale=key_scale)
        else:
            qf = self.feature_map(qh, True, layout="bhld")
            kf = self.feature_map(kh, False, key_mask=key_mask, causal=causal, layout="bhld")
            out = linear_attention(qf, kf, vh, key_mask=key_mask, causal=causal, chunk_size=self.chunk_size,
                                   layout="bhld")
        return ops.cast(to_heads(out), v.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(nb_features=self.nb_features, kernel=self.kernel, feature_type=self.feature_type,
                      redraw=self.redraw, chunk_size=self.chunk_size, epsilon=self.epsilon, seed=self.seed)
        return config
