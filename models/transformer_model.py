"""``TransformerModel``: the functional ``keras.Model`` that ``build_transformer_model``
returns. It is a plain functional model (it saves to ``.keras`` and reloads as this
class) whose ``predict`` also takes plain nested lists and checks every token and
segment id against the embedding tables before running: XLA clamps an out-of-range
gather silently, so a wrong tokenizer would otherwise give garbage without an error.

Example:

>>> from models import build_transformer_model
>>> model = build_transformer_model({"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1,
...                                  "num_attention_heads": 2})
>>> model.predict([[[2, 7, 3]], [[0, 0, 0]]], verbose=0).shape     # nested lists are fine
(1, 3, 8)
>>> model.predict([[[2, 70, 3]], [[0, 0, 0]]], verbose=0)          # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: token id 70 (input 'Input-Token', row 0, position 1) is outside the vocabulary of 50 ids ...
"""

import keras
import numpy as np

# model input name -> (embedding layer whose input_dim bounds its ids, what the ids are called)
ID_INPUTS = {
    "Input-Token": ("Embedding-Token", "token id", "vocabulary",
                    "check that the tokenizer's vocabulary matches the checkpoint"),
    "Input-Segment": ("Embedding-Segment", "segment id", "segment vocabulary",
                      "segment ids say which sentence a token belongs to"),
}


@keras.saving.register_keras_serializable(package="keras_longctx")
class TransformerModel(keras.Model):
    """A functional model built by :class:`models.Transformer` (see the module docstring).

    ``model.transformer`` is the Transformer object that built it (checkpoint names,
    writers, the KV-cache decoder); its settings travel in ``get_config`` under
    ``"transformer"``, so ``keras.saving.load_model`` (after ``import models``) gives
    back the same class with the same ``transformer``, and ``generate`` keeps working.
    """

    transformer = None

    def get_config(self):
        config = super().get_config()
        if self.transformer is not None:
            config["transformer"] = {"model_type": self.transformer.model_type,
                                     "config": self.transformer.get_config()}
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        settings = config.pop("transformer", None)
        model = super().from_config(config, custom_objects=custom_objects)
        if settings is not None:
            from models.builder import transformer_class

            transformer_cls = transformer_class(settings["model_type"])
            model.transformer = transformer_cls.from_model(model, settings["config"])
        return model

    @property
    def transformer_info(self):
        """``{'model': model_type, 'max_length': positions the model reads}``."""
        if self.transformer is None:
            return None
        return {"model": self.transformer.model_type, "max_length": self.transformer.max_position_limit}

    def cached_decoder(self, bucket=64):
        """The KV-cache decoder (GPT-2 models): ``toolkit.generation.generate`` uses it."""
        if self.transformer is None or not hasattr(self.transformer, "cached_decoder"):
            kind = self.transformer.model_type if self.transformer is not None else "this model"
            raise TypeError(f"{kind} has no cached decoder: generation needs a GPT-2 "
                            "(build_transformer_model(..., model='gpt2'))")
        return self.transformer.cached_decoder(bucket=bucket)

    def predict(self, x, *args, **kwargs):
        """``keras.Model.predict``, with plain lists accepted and ids checked (ValueError
        naming the id, the input, its row and position, and the table's size)."""
        return super().predict(self.check_inputs(x), *args, **kwargs)

    def check_inputs(self, x):
        """``x`` as arrays (nested lists converted), after checking every id input."""
        names = [tensor.name.split(":")[0] for tensor in self.inputs]
        arrays = _as_arrays(x, names)
        if arrays is None:  # a dataset, generator or dict: Keras handles it
            return x
        for name, array in zip(names, arrays):
            if name in ID_INPUTS:
                self._check_ids(name, array)
        return arrays if len(names) > 1 else arrays[0]

    def _check_ids(self, input_name, array):
        layer_name, what, table, hint = ID_INPUTS[input_name]
        try:
            size = int(self.get_layer(layer_name).input_dim)
        except ValueError:
            return
        if array.size == 0:
            return
        if not np.issubdtype(array.dtype, np.integer):
            if not np.all(np.mod(array, 1) == 0):
                raise ValueError(f"input '{input_name}' must hold integer {what}s, got dtype {array.dtype}")
        bad = np.argwhere((array < 0) | (array >= size))
        if len(bad):
            where = tuple(int(i) for i in bad[0])
            value = array[where]
            place = f"row {where[0]}, position {where[1]}" if len(where) == 2 else f"index {where}"
            raise ValueError(f"{what} {int(value)} (input '{input_name}', {place}) is outside the {table} of "
                             f"{size} ids (0..{size - 1}): {hint} ({len(bad)} such id(s) in this batch)")


def _as_arrays(x, names):
    """The model inputs of ``x`` as NumPy arrays, or None when ``x`` is not array-like data."""
    if (isinstance(x, (dict, keras.utils.PyDataset)) or hasattr(x, "__next__")
            or type(x).__name__.endswith("Dataset")):
        return None
    if len(names) > 1 and isinstance(x, (list, tuple)):
        parts = list(x)
    elif isinstance(x, (list, tuple)) and len(x) == 1 and (isinstance(x[0], np.ndarray) or keras.ops.is_tensor(x[0])):
        parts = [x[0]]  # [array] for a one-input model
    else:
        parts = [x]
    if len(parts) != len(names):
        raise ValueError(f"this model takes {len(names)} inputs {names}, got {len(parts)}")
    arrays = []
    for name, part in zip(names, parts):
        try:
            arrays.append(np.asarray(keras.ops.convert_to_numpy(part) if keras.ops.is_tensor(part) else part))
        except ValueError:
            raise ValueError(f"input '{name}': rows of different lengths; pad them to one length "
                             "(with the padding id) or predict them one at a time") from None
        if arrays[-1].dtype == object:
            raise ValueError(f"input '{name}': rows of different lengths; pad them to one length "
                             "(with the padding id) or predict them one at a time")
    return arrays
