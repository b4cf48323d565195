"""The ``Transformer`` base: builds a Keras functional model layer by layer and
owns the mapping from its weights to each checkpoint format's variable names."""

import dataclasses
import difflib
import os
import re

import keras
import numpy as np

import layers
from layers.quantized_sublayers import QuantizedSublayers, check_quantization, quantized_policy
from models.quantization import assign_quantized, scale_weights
from models.transformer_model import TransformerModel
from toolkit.checkpoints import (
    CheckpointError,
    atomic_path,
    checkpoint_format,
    open_checkpoint,
    save_json,
    save_safetensors,
    save_tf_checkpoint,
)

ATTENTION_KINDS = {
    "softmax": "MultiHeadAttention",
    "performer": "PerformerAttention",
    "taylor": "TaylorAttention",
}


@dataclasses.dataclass
class WeightSpec:
    """Where one Keras weight lives in each checkpoint format.

    ``tf``: bert4keras/Google TF variable name (the canonical name).
    ``hf``: candidate Hugging Face names (first found wins).
    ``hf_transpose``: HF stores the transpose (``nn.Linear``).
    ``hf_split``: ``(parts, index)``: HF fuses several weights on the last
    axis (GPT-2's ``c_attn`` holds q, k, v); this weight is part ``index``.
    """

    tf: str
    hf: list
    hf_transpose: bool = False
    hf_split: tuple = None
    keras: str = None


class Transformer:
    """Base class: builds the functional model ``embeddings -> blocks -> head``
    (:meth:`call`) and maps its weights to checkpoint names.

    Subclasses implement:

    - ``get_inputs()``: the ``keras.Input`` list;
    - ``apply_embeddings(inputs)``: the embedding output ``(batch, length, hidden)``;
    - ``attention_mask(inputs)``: the mask given to every attention layer (or None);
    - ``apply_main(x, mask, index)``: transformer block ``index``;
    - ``apply_final(x)``: the heads (the model's outputs);
    - ``weight_specs()``: ``{layer_name: [WeightSpec, ...]}``, each spec naming the
      Keras weight it fills by its path inside the layer (``WeightSpec.keras``);
    - ``get_config()``: the constructor arguments beyond the base class's
      (call ``super().get_config()``), so that a saved model is rebuilt exactly;
    - ``hf_config()``: the Hugging Face ``config.json`` of the model.
    """

    model_type = "transformer"
    default_layer_norm_eps = 1e-12

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_hidden_layers,
        num_attention_heads,
        intermediate_size=None,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=512,
        layer_norm_eps=None,
        initializer_range=0.02,
        initializer=None,
        keep_tokens=None,
        hierarchical_position=None,
        max_length=None,
        application="encoder",
        attention="softmax",
        attention_kwargs=None,
        pad_token_id=None,
        quantization=None,
        name=None,
        **kwargs,
    ):
        _check_choices(hidden_size, num_attention_heads, attention, application, kwargs, type(self).__name__)
        self.keep_tokens = None if keep_tokens is None else np.asarray(keep_tokens, dtype="int64")
        self.vocab_size = len(self.keep_tokens) if self.keep_tokens is not None else int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.attention_head_size = self.hidden_size // self.num_attention_heads
        self.intermediate_size = int(intermediate_size or 4 * self.hidden_size)
        self.hidden_act = hidden_act
        self.dropout_rate = float(hidden_dropout_prob or 0.0)
        self.attention_dropout_rate = float(attention_probs_dropout_prob or 0.0)
        self.max_position = int(max_position_embeddings)
        self.layer_norm_eps = float(layer_norm_eps if layer_norm_eps is not None else self.default_layer_norm_eps)
        # ``initializer`` (a Keras initializer or its name, e.g. 'zeros' for a model
        # whose weights are about to be overwritten) replaces the default for
        # every kernel and embedding.
        self.initializer = (keras.initializers.get(initializer) if initializer is not None
                            else keras.initializers.TruncatedNormal(stddev=initializer_range))
        self.hierarchical_position = hierarchical_position
        self.application = application
        self.attention = attention
        self.attention_kwargs = dict(attention_kwargs or {})
        self.name = name
        # the id that marks padding (masked as keys); None: every id is a real token
        self.pad_token_id = None if pad_token_id is None else int(pad_token_id)
        self.max_length = max_length
        # 'int8': every Dense and embedding table is created as Keras int8 (models.quantization)
        self.quantization = check_quantization(quantization)
        _check_max_length(max_length, self.max_position, hierarchical_position)
        self.layers = {}
        self.model = None

    # ---------------------------------------------------------------- graph
    def apply(self, inputs, layer_cls, name, arguments=None, **layer_kwargs):
        """Create (once) and call the layer named ``name``, bert4keras' ``apply``."""
        if name not in self.layers:
            self.layers[name] = layer_cls(name=name, **self._quantized_kwargs(layer_cls), **layer_kwargs)
        return self.layers[name](inputs, **(arguments or {}))

    def _quantized_kwargs(self, layer_cls):
        """With ``quantization``: what makes ``layer_cls`` build its kernels as Keras int8."""
        if self.quantization is None:
            return {}
        if issubclass(layer_cls, QuantizedSublayers):
            return {"quantization": self.quantization}
        if issubclass(layer_cls, (keras.layers.Dense, keras.layers.Embedding)):
            return {"dtype": quantized_policy(self.quantization, keras.config.dtype_policy())}
        return {}

    def attention_layer_class(self):
        cls_name = ATTENTION_KINDS[self.attention]
        cls = getattr(layers, cls_name, None)
        if cls is None:
            raise ValueError(f"attention={self.attention!r} needs layers.{cls_name}, which is not available")
        return cls

    def attention_layer_kwargs(self):
        kw = dict(
            num_heads=self.num_attention_heads,
            head_size=self.attention_head_size,
            output_dim=self.hidden_size,
            attention_dropout=self.attention_dropout_rate,
            kernel_initializer=self.initializer,
        )
        kw.update(self.attention_kwargs)
        return kw

    def call(self, inputs):
        """The skeleton every model shares: embeddings, the blocks, the heads."""
        x = self.apply_embeddings(inputs)
        mask = self.attention_mask(inputs)
        for index in range(self.num_hidden_layers):
            x = self.apply_main(x, mask, index)
        return self.apply_final(x)

    def build(self):
        inputs = self.get_inputs()
        outputs = self.call(inputs)
        self.model = TransformerModel(inputs=inputs, outputs=outputs, name=self.name or self.model_type)
        self.model.transformer = self
        return self.model

    def get_config(self):
        """The constructor arguments that rebuild this model (checkpoint-only ones such as
        ``keep_tokens`` and ``initializer`` excluded: the weights come with the model)."""
        return {
            **self.size_config(),
            "hierarchical_position": self.hierarchical_position,
            "max_length": self.max_length,
            "application": self.application,
            "attention": self.attention,
            "attention_kwargs": dict(self.attention_kwargs),
            "pad_token_id": self.pad_token_id,
            "quantization": self.quantization,
            "name": self.name,
        }

    def size_config(self):
        """The sizes and rates, under the canonical (Hugging Face BERT) key names."""
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout_prob": self.dropout_rate,
            "attention_probs_dropout_prob": self.attention_dropout_rate,
            "max_position_embeddings": self.max_position,
            "layer_norm_eps": self.layer_norm_eps,
        }

    @classmethod
    def from_model(cls, model, config):
        """The Transformer of an already built (e.g. reloaded) Keras ``model``: same
        settings, its ``layers`` bound to the model's, so that decoding reuses them."""
        transformer = cls(**config)
        transformer.model = model
        transformer.layers = {layer.name: layer for layer in model.layers}
        return transformer

    @property
    def max_position_limit(self):
        return self.layers["Embedding-Position"].max_length if "Embedding-Position" in self.layers else None

    # ------------------------------------------------------------- weights
    def weight_specs(self):
        """``{layer_name: [WeightSpec, ...]}``; ``spec.keras`` is the path of the weight
        inside the layer (``'query/kernel'``, ``'gamma'``)."""
        raise NotImplementedError

    def _layer_weights(self, layer_name, specs):
        """The Keras weights of ``specs``, found by path (``layer_name/spec.keras``), never
        by position: CheckpointError naming both sides when a layer lacks one."""
        layer = self.model.get_layer(layer_name)
        by_path = {weight.path: weight for weight in layer.weights}
        weights = []
        for spec in specs:
            path = f"{layer_name}/{spec.keras}"
            if spec.keras is None or path not in by_path:
                raise CheckpointError(
                    f"checkpoint variable '{spec.tf}' maps to Keras weight '{path}', which layer "
                    f"'{layer_name}' ({type(layer).__name__}) does not have; its weights: {sorted(by_path)}")
            weights.append(by_path[path])
        return layer, weights

    def transform_loaded(self, spec, value, fmt):
        """Per-variable fix-ups after reading (keep_tokens, TF layout quirks)."""
        return value

    def _read(self, reader, spec, cache):
        if reader.format == "tf":
            return reader.get(spec.tf)
        for name in spec.hf:
            if name in reader:
                break
        else:
            raise reader.missing(spec.hf[0], wanted_by=f"{spec.tf}; also tried {spec.hf[1:]}")
        if spec.hf_split:
            if name not in cache:
                cache.clear()
                cache[name] = reader.get(name)
            return _hf_part(spec, name, cache[name], f"'{reader.path}'")
        return _hf_part(spec, name, reader.get(name), f"'{reader.path}'")

    def load_weights_from_checkpoint(self, checkpoint_path, progress=False):
        """Load weights from a TF checkpoint, HF directory/file or ``.weights.h5``.

        Every variable is checked: a missing name or a wrong shape raises
        CheckpointError naming the variable, the layer and both shapes."""
        fmt = checkpoint_format(checkpoint_path)
        if fmt == "keras":
            try:
                self.model.load_weights(checkpoint_path)
            except ValueError as e:
                raise CheckpointError(_keras_load_error(checkpoint_path, e)) from None
            return
        reader = open_checkpoint(checkpoint_path)
        specs = self.weight_specs()
        items = [(k, v) for k, v in specs.items() if _has_layer(self.model, k)]
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, desc="loading weights", unit="layer")
        cache, scales = {}, scale_weights(self.model)
        for layer_name, layer_specs in items:
            layer, weights = self._layer_weights(layer_name, layer_specs)
            for w, spec in zip(weights, layer_specs):
                value = self._read(reader, spec, cache)
                value = self.transform_loaded(spec, value, fmt)
                if tuple(value.shape) != tuple(w.shape):
                    src = spec.tf if fmt == "tf" else spec.hf[0]
                    raise CheckpointError(
                        f"variable '{src}' in checkpoint '{reader.path}' has shape {tuple(value.shape)} "
                        f"(after layout conversion) but layer '{layer_name}' weight '{w.path}' expects "
                        f"{tuple(w.shape)}"
                    )
                assign_quantized(w, value, scales)

    def assign_from_named_arrays(self, named_arrays, fmt="hf"):
        """Assign weights from ``(name, array)`` pairs as they arrive (e.g. a
        converter's generator, so only one tensor is in memory at a time).

        ``fmt='hf'``: Hugging Face names and layout (fused weights such as
        GPT-2's ``c_attn`` are split into q, k, v); ``fmt='tf'``: the
        bert4keras/Google TF names. Raises CheckpointError for a name that
        matches no weight, a wrong shape, or weights left unassigned at the
        end. Returns the number of Keras weights assigned."""
        count, scales = 0, scale_weights(self.model)
        for layer_name, w, source, part in self.iter_named_parts(named_arrays, fmt):
            if tuple(part.shape) != tuple(w.shape):
                raise CheckpointError(
                    f"'{source}' has shape {tuple(part.shape)} (after layout conversion) but layer "
                    f"'{layer_name}' weight '{w.path}' expects {tuple(w.shape)}")
            assign_quantized(w, part, scales)
            count += 1
        return count

    def iter_named_parts(self, named_arrays, fmt="hf"):
        """The mapping behind :meth:`assign_from_named_arrays`, without assigning:
        yields ``(layer_name, keras_weight, source_name, array)`` with the array in
        Keras layout, one ``(name, array)`` input at a time. Raises CheckpointError for a name that matches no weight and,
        at the end, for weights that got no value. Shapes are not checked here."""
        if fmt not in ("hf", "tf"):
            raise ValueError(f"fmt must be 'hf' or 'tf', got {fmt!r}")
        targets, unassigned = {}, {}
        for layer_name, layer_specs in self.weight_specs().items():
            if not _has_layer(self.model, layer_name):
                continue
            _, weights = self._layer_weights(layer_name, layer_specs)
            for w, spec in zip(weights, layer_specs):
                unassigned[id(w)] = spec.tf if fmt == "tf" else spec.hf[0]
                for name in [spec.tf] if fmt == "tf" else spec.hf:
                    targets.setdefault(name, []).append((layer_name, w, spec))
        for name, value in named_arrays:
            if name not in targets:
                close = difflib.get_close_matches(name, list(targets), n=3, cutoff=0.5)
                raise CheckpointError(f"'{name}' matches no weight of this {self.model_type} model"
                                      + (f"; similar names: {close}" if close else ""))
            value = np.asarray(value)
            for layer_name, w, spec in targets[name]:
                part = value if fmt == "tf" else _hf_part(spec, name, value, "the given arrays")
                part = self.transform_loaded(spec, part, fmt)
                unassigned.pop(id(w), None)
                yield layer_name, w, name, part
        if unassigned:
            names = sorted(set(unassigned.values()))
            raise CheckpointError(f"no value was given for {len(names)} weight(s): {names[:5]}"
                                  + (" ..." if len(names) > 5 else ""))

    # -------------------------------------------------------------- writers
    def save_weights(self, path):
        """Keras ``.weights.h5`` file, written atomically."""
        if not str(path).endswith(".weights.h5"):
            raise ValueError(f"Keras weights file name must end with '.weights.h5', got '{path}'")
        with atomic_path(path) as tmp:
            self.model.save_weights(tmp)

    def hf_state_dict(self):
        """``{hf_name: array}`` in Hugging Face layout (fused weights re-joined)."""
        out, pending = {}, {}
        for layer_name, layer_specs in self.weight_specs().items():
            if not _has_layer(self.model, layer_name):
                continue
            _, weights = self._layer_weights(layer_name, layer_specs)
            for w, spec in zip(weights, layer_specs):
                value = keras.ops.convert_to_numpy(w)
                value = self.transform_saved(spec, value)
                name = spec.hf[0]
                if spec.hf_split:
                    parts, index = spec.hf_split
                    slot = pending.setdefault(name, [None] * parts)
                    slot[index] = value
                    if all(p is not None for p in slot):
                        out[name] = np.concatenate(slot, axis=-1)
                        del pending[name]
                    continue
                out[name] = value.T if spec.hf_transpose else value
        if pending:
            raise CheckpointError(f"incomplete fused weights: {sorted(pending)}")
        return out

    def transform_saved(self, spec, value):
        """Inverse of ``transform_loaded`` for the layout-only fix-ups (HF and TF share it)."""
        return value

    def tf_state_dict(self):
        """``{tf_name: array}`` under bert4keras/Google TF names."""
        out = {}
        for layer_name, layer_specs in self.weight_specs().items():
            if not _has_layer(self.model, layer_name):
                continue
            _, weights = self._layer_weights(layer_name, layer_specs)
            for w, spec in zip(weights, layer_specs):
                out[spec.tf] = self.transform_saved_tf(spec, keras.ops.convert_to_numpy(w))
        return out

    def transform_saved_tf(self, spec, value):
        return value

    def save_weights_as_checkpoint(self, prefix):
        """TF checkpoint under bert4keras/Google names (bert4keras' method of the same name)."""
        save_tf_checkpoint(self.tf_state_dict(), prefix)

    def hf_config(self):
        raise NotImplementedError

    def save_pretrained(self, directory):
        """Write ``config.json`` + ``model.safetensors`` in Hugging Face format."""
        os.makedirs(directory, exist_ok=True)
        save_safetensors(self.hf_state_dict(), os.path.join(directory, "model.safetensors"), {"format": "pt"})
        save_json(self.hf_config(), os.path.join(directory, "config.json"))


def _check_choices(hidden_size, num_attention_heads, attention, application, unknown, class_name):
    if hidden_size % num_attention_heads:
        raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}")
    if attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {sorted(ATTENTION_KINDS)}, got {attention!r}")
    if application not in ("encoder", "lm", "unilm"):
        raise ValueError(f"application must be 'encoder', 'lm' or 'unilm', got {application!r}")
    if unknown:
        raise TypeError(f"{class_name}: unexpected arguments {sorted(unknown)}")


def _check_max_length(max_length, max_position, hierarchical_position):
    alpha = layers.position_embedding.resolve_alpha(hierarchical_position)
    limit = max_position**2 if alpha is not None else max_position
    if max_length is not None and max_length > limit:
        raise ValueError(
            f"max_length={max_length} exceeds the model's {limit} positions; "
            + (f"use hierarchical_position=True to read up to {max_position ** 2} tokens" if alpha is None else ""))


def _hf_part(spec, name, full, where):
    """An HF tensor in Keras layout: this weight's part of a fused tensor, transposed if HF stores it so."""
    value = full
    if spec.hf_split:
        parts, index = spec.hf_split
        if full.shape[-1] % parts:
            raise CheckpointError(
                f"variable '{name}' in {where} has shape {full.shape}, last axis not divisible by {parts}")
        value = np.split(full, parts, axis=-1)[index]
    return value.T if spec.hf_transpose else value


def _keras_load_error(path, error):
    """Keras' ``load_weights`` error (which prints whole arrays) in one line naming the file,
    the weight and both shapes."""
    text = str(error)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    var = re.search(r"Target variable: <Variable path=([^,>]+)", text)
    if shapes and var:
        return (f"Keras weights file '{path}' does not fit this model: weight '{var.group(1)}' has shape "
                f"{shapes.group(1)} but the file holds {shapes.group(2)}")
    first = next((line for line in text.splitlines() if line.strip()), text)
    return f"Keras weights file '{path}' does not fit this model: {first[:300]}"


def _has_layer(model, name):
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False
