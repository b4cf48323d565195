"""Extend a trained learned-position table from ``P`` rows to ``N > P`` rows, four ways, and
build the BERT + MLM head of a :func:`models.mlm_training.save_mlm_model` folder that reads
``N`` positions.

* ``copy`` (Longformer, Beltagy et al. 2020, section 5): the trained table tiled, row ``j`` =
  row ``j mod P``.
* ``interpolate`` (the learned-table analogue of Chen et al. 2023's position interpolation):
  with ``s = N / P``, row ``j`` is the trained table read at the fractional position ``j / s``,
  linearly between the two trained rows around it; rows ``j = s * i`` (``j * P / N`` an integer)
  are trained row ``i`` exactly. Past the last trained row (``j / s > P - 1``, the last
  ``ceil(s) - 1`` rows) the table is **clamped**: those rows are trained row ``P - 1``.
  Interpolation compresses every position, so it is the one method whose rows ``1 .. P - 1``
  are not the trained ones (row 0 and every ``s``-th row are, bit for bit).
* ``random``: the trained rows, then new rows drawn from N(0, 0.02) (BERT's initializer
  range) with ``seed``.
* ``hierarchical`` (Su, kexue.fm/archives/7947): ``u_i = (p_i - alpha p_0) / (1 - alpha)``,
  row ``n = i P + j`` is ``alpha u_i + (1 - alpha) u_j``. The table returned here is what
  :class:`layers.PositionEmbedding` computes (the layer itself does the arithmetic, there is
  no second copy of the formula); :func:`build_extended_mlm` does not materialise it but builds
  the model with the builder's ``hierarchical_position=alpha``, so that continued training
  keeps the decomposition (as in Su's post: the ``P`` trained rows are what is trained) and
  the model reads any length up to ``P**2``.

``copy``, ``random`` and ``hierarchical`` keep the first ``P`` rows bit for bit.

>>> import numpy as np
>>> table = np.arange(6, dtype="float32").reshape(3, 2)
>>> extend_positions(table, 5, "copy")[:, 0].tolist()
[0.0, 2.0, 4.0, 0.0, 2.0]
>>> extend_positions(table, 6, "interpolate")[:, 0].tolist()
[0.0, 1.0, 2.0, 3.0, 4.0, 4.0]
"""

import numpy as np

METHODS = ("copy", "interpolate", "random", "hierarchical")
RANDOM_STDDEV = 0.02
POSITION_LAYER = "Embedding-Position"


# ------------------------------------------------------------------- tables
def copy_positions(table, length):
    """Longformer's copy initialisation: row ``j`` is trained row ``j mod P``."""
    table = np.asarray(table)
    return table[np.arange(length) % len(table)]


def interpolate_positions(table, length):
    """Row ``j``: the trained table read at ``j * P / length``, linear between its two
    neighbouring rows (exact integer arithmetic for the position, so rows at integer positions
    are the trained rows bit for bit); positions past row ``P - 1`` are clamped to it."""
    table = np.asarray(table)
    rows = len(table)
    numerators = np.arange(length, dtype=np.int64) * rows
    low = np.minimum(numerators // length, rows - 1)
    high = np.minimum(low + 1, rows - 1)
    fraction = np.where(numerators // length >= rows - 1, 0.0, (numerators % length) / length)[:, None]
    mixed = (table[low].astype(np.float64) * (1.0 - fraction) + table[high].astype(np.float64) * fraction)
    return np.where(fraction == 0.0, table[low], mixed.astype(table.dtype))


def random_positions(table, length, seed=0):
    """The trained rows, then ``length - P`` new rows drawn from N(0, 0.02) with ``seed``."""
    table = np.asarray(table)
    new = np.random.default_rng(seed).normal(0.0, RANDOM_STDDEV, (length - len(table), table.shape[1]))
    return np.concatenate([table, new.astype(table.dtype)])


def hierarchical_positions(table, length, alpha=0.4):
    """The rows ``0 .. length - 1`` that :class:`layers.PositionEmbedding` with
    ``hierarchical=alpha`` gives (computed by the layer; ``length`` at most ``P**2``)."""
    from keras import ops

    from layers.position_embedding import PositionEmbedding

    table = np.asarray(table)
    rows, width = table.shape
    if length > rows ** 2:
        raise ValueError(f"length {length} is more than hierarchical positions reach: {rows}**2 = {rows ** 2}")
    layer = PositionEmbedding(rows, width, hierarchical=alpha, dtype=str(table.dtype))
    layer.build((None, None, width))
    layer.embeddings.assign(table)
    return np.asarray(ops.convert_to_numpy(layer.embeddings_for(ops.arange(length, dtype="int32"))))


def _check(table, length, method):
    """The table as an array; one-line ValueError for a bad table, length or method."""
    table = np.asarray(table)
    if table.ndim != 2 or not len(table):
        raise ValueError(f"the position table must be (positions, width) with at least one row, got shape "
                         f"{table.shape}")
    if method not in METHODS:
        raise ValueError(f"unknown position method {method!r}: give one of {', '.join(METHODS)}")
    if isinstance(length, bool) or int(length) != length or length <= len(table):
        raise ValueError(f"length {length} is not above the {len(table)} trained positions: extending needs "
                         f"a length of at least {len(table) + 1}")
    return table


def extend_positions(table, length, method, alpha=0.4, seed=0):
    """The ``(length, width)`` table that ``method`` (:data:`METHODS`; see the module
    docstring) makes of the trained ``(P, width)`` ``table``. ``alpha``: hierarchical's;
    ``seed``: random's. ValueError in one line for ``length <= P`` or an unknown method."""
    table = _check(table, length, method)
    length = int(length)
    if method == "copy":
        return copy_positions(table, length)
    if method == "interpolate":
        return interpolate_positions(table, length)
    if method == "random":
        return random_positions(table, length, seed)
    return hierarchical_positions(table, length, alpha)


# ------------------------------------------------------------------- models
def position_table(model):
    """The learned position table ``(rows, width)`` of a built BERT (NumPy)."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(model.get_layer(POSITION_LAYER).embeddings))


def extend_mlm(model, length, method, alpha=0.4, seed=0, attention=None, attention_kwargs=None):
    """A new BERT (+ its heads, as built) with ``length`` positions: ``model``'s position table
    extended by ``method`` (``copy``, ``interpolate``, ``random``; hierarchical is a setting of
    the builder, see :func:`build_extended_mlm`), every other weight copied as it is. The
    attention kind stays ``model``'s unless ``attention`` (with ``attention_kwargs``) is given."""
    if method == "hierarchical":
        raise ValueError("hierarchical positions are built with hierarchical_position=alpha, not a table: "
                         "use build_extended_mlm")
    source = model.transformer
    table = extend_positions(position_table(model), length, method, alpha, seed)
    config = dict(source.get_config(), max_position_embeddings=int(length), max_length=None)
    if attention is not None:
        config.update(attention=attention, attention_kwargs=dict(attention_kwargs or {}))
    target = type(source)(**config)
    target.build()
    arrays = source.hf_state_dict()
    arrays[source.weight_specs()[POSITION_LAYER][0].hf[0]] = table
    target.assign_from_named_arrays(arrays.items())
    return target.model


def build_extended_mlm(model_dir, length, method, alpha=0.4, seed=0, attention="softmax", attention_kwargs=None):
    """The BERT + MLM head (logits) of a :func:`models.mlm_training.save_mlm_model` folder,
    reading ``length`` positions: the position table extended by ``method`` (:func:`extend_mlm`),
    or for ``hierarchical`` the folder's model built with ``hierarchical_position=alpha`` (its
    ``P`` trained rows; ``length`` checked against ``P**2``). ``attention``: ``'softmax'``,
    ``'performer'`` or ``'taylor'`` (the builder's ``attention=``, with ``attention_kwargs``)."""
    import json
    import os

    from models.builder import build_transformer_model

    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        rows = int(json.load(f)["max_position_embeddings"])
    _check(np.zeros((rows, 1)), length, method)
    if method == "hierarchical":
        if length > rows ** 2:
            raise ValueError(f"length {length} is more than hierarchical positions reach: {rows}**2 = {rows ** 2}")
        return build_transformer_model(model_dir, model_dir, with_mlm="linear", hierarchical_position=alpha,
                                       attention=attention, attention_kwargs=attention_kwargs)
    plain = build_transformer_model(model_dir, model_dir, with_mlm="linear", attention=attention,
                                    attention_kwargs=attention_kwargs)
    return extend_mlm(plain, length, method, alpha, seed)


__all__ = ["METHODS", "copy_positions", "interpolate_positions", "random_positions", "hierarchical_positions",
           "extend_positions", "position_table", "extend_mlm", "build_extended_mlm"]
