"""GPT-2 (Radford et al., 2019): pre-LN decoder, final LayerNorm, tied LM head."""

import keras

import layers
from models.transformer import Transformer, WeightSpec


class GPT2(Transformer):
    """GPT-2 in bert4keras' layout: input ``token_ids``, causal attention, output
    token probabilities (logits with ``with_lm='linear'``) from the tied
    embedding matrix.

    Padding is explicit; no id is padding by default (GPT-2's vocabulary has
    no pad token: id 0 is ``!``, a real token):

    * ``pad_token_id`` (from the config, or ``build_transformer_model(...,
      pad_token_id=K)``): keys whose id is ``K`` are masked; ``None`` (GPT-2's
      own config): none are.
    * ``mask_input=True``: the model takes a second input ``Input-Mask``
      ``(batch, length)``, 1 for a real token and 0 for padding (as Hugging
      Face's ``attention_mask``); keys where it is 0 are masked (and, with a
      ``pad_token_id``, those with that id too).

    Padded positions still get outputs; only real positions are meaningful.

    Example:

    >>> lm = build_transformer_model("gpt2/config.json", "gpt2", model="gpt2",   # doctest: +SKIP
    ...                              mask_input=True)
    >>> ids = np.array([[464, 0, 318, 50256], [464, 3290, 0, 0]])                # doctest: +SKIP
    >>> probs = lm.predict([ids, np.array([[1, 1, 1, 1], [1, 1, 0, 0]])])       # doctest: +SKIP
    """

    model_type = "gpt2"
    default_layer_norm_eps = 1e-5

    def __init__(self, with_lm=True, type_vocab_size=None, hidden_act="gelu_new", mask_input=False, **kwargs):
        kwargs.setdefault("application", "lm")
        if kwargs["application"] != "lm":
            raise ValueError(f"GPT-2 is a causal LM: application must be 'lm', got {kwargs['application']!r}")
        super().__init__(hidden_act=hidden_act, **kwargs)
        self.with_lm = with_lm
        self.mask_input = bool(mask_input)

    def get_inputs(self):
        inputs = [keras.Input((self.max_length,), dtype="int32", name="Input-Token")]
        if self.mask_input:
            inputs.append(keras.Input((self.max_length,), dtype="int32", name="Input-Mask"))
        return inputs

    def cached_decoder(self, bucket=64):
        """The KV-cache decoder of this model (created once per bucket size and quantization:
        ``quantize_model`` replaces the weights a decoder traced)."""
        from models.decoder import CachedDecoder

        self._decoders = getattr(self, "_decoders", {})
        key = (bucket, self.quantization)
        if key not in self._decoders:
            self._decoders[key] = CachedDecoder(self, bucket=bucket)
        return self._decoders[key]

    def apply_embeddings(self, inputs):
        return self.embed(inputs[0])

    def attention_mask(self, inputs):
        return self.key_mask(inputs)

    def key_mask(self, inputs):
        """The ``(batch, length)`` mask of the keys to attend to (``None``: all):
        ``Input-Mask != 0`` with ``mask_input``, ids other than ``pad_token_id`` if set."""
        if self.mask_input:
            return self.apply(inputs[:2], layers.PaddingMask, "Attention-Padding-Mask", pad_id=self.pad_token_id)
        if self.pad_token_id is not None:
            return self.apply(inputs[0], layers.PaddingMask, "Attention-Padding-Mask", pad_id=self.pad_token_id)
        return None

    def embed(self, token_ids, start_index=0):
        x = self.apply(token_ids, layers.TokenEmbedding, "Embedding-Token", input_dim=self.vocab_size,
                       output_dim=self.hidden_size, embeddings_initializer=self.initializer)
        x = self.apply(x, layers.PositionEmbedding, "Embedding-Position", input_dim=self.max_position,
                       output_dim=self.hidden_size, hierarchical=self.hierarchical_position,
                       embeddings_initializer=self.initializer,
                       arguments=None if isinstance(start_index, int) and start_index == 0 else {"start_index": start_index})
        return self.apply(x, keras.layers.Dropout, "Embedding-Dropout", rate=self.dropout_rate)

    def apply_main(self, x, mask, index, cache=None, cache_index=None, cache_mode="update"):
        """Pre-LN block: LN -> Att -> Add -> LN -> FFN -> Add. With ``cache``
        returns ``(x, new_cache)`` (``cache_mode``: see ``MultiHeadAttention``)."""
        att = f"Transformer-{index}-MultiHeadSelfAttention"
        ffn = f"Transformer-{index}-FeedForward"
        y = self.apply(x, keras.layers.LayerNormalization, f"{att}-Norm", epsilon=self.layer_norm_eps)
        args = {"attention_mask": mask, "use_causal_mask": True}
        if cache is not None:
            args.update(cache=cache, cache_index=cache_index, cache_mode=cache_mode)
        y = self.apply(y, self.attention_layer_class(), att, arguments=args, **self.attention_layer_kwargs())
        if cache is not None:
            y, cache = y
        y = self.apply(y, keras.layers.Dropout, f"{att}-Dropout", rate=self.dropout_rate)
        x = self.apply([x, y], keras.layers.Add, f"{att}-Add")
        y = self.apply(x, keras.layers.LayerNormalization, f"{ffn}-Norm", epsilon=self.layer_norm_eps)
        y = self.apply(y, layers.FeedForward, ffn, units=self.intermediate_size, activation=self.hidden_act,
                       kernel_initializer=self.initializer)
        y = self.apply(y, keras.layers.Dropout, f"{ffn}-Dropout", rate=self.dropout_rate)
        x = self.apply([x, y], keras.layers.Add, f"{ffn}-Add")
        return x if cache is None else (x, cache)

    def apply_final(self, x):
        x = self.apply(x, keras.layers.LayerNormalization, "Output-Norm", epsilon=self.layer_norm_eps)
        x = self.apply(x, keras.layers.Dropout, "Output-Dropout", rate=self.dropout_rate)
        if not self.with_lm:
            return x
        x = self.layers["Embedding-Token"](x, mode="dense")
        act = "softmax" if self.with_lm is True else self.with_lm
        return self.apply(x, keras.layers.Activation, "LM-Activation", activation=act)

    # ------------------------------------------------------------- weights
    def weight_specs(self):
        specs = {
            "Embedding-Token": [_spec("gpt/embeddings/word_embeddings", "wte.weight", "embeddings")],
            "Embedding-Position": [_spec("gpt/embeddings/position_embeddings", "wpe.weight", "embeddings")],
            "Output-Norm": _ln("gpt/output/LayerNorm", "ln_f"),
        }
        for i in range(self.num_hidden_layers):
            p, h = f"gpt/transformer/layer_{i}/", f"h.{i}."
            specs[f"Transformer-{i}-MultiHeadSelfAttention"] = (
                _dense(p + "attention/self/query", h + "attn.c_attn", "query", (3, 0))
                + _dense(p + "attention/self/key", h + "attn.c_attn", "key", (3, 1))
                + _dense(p + "attention/self/value", h + "attn.c_attn", "value", (3, 2))
                + _dense(p + "attention/output/dense", h + "attn.c_proj", "output"))
            specs[f"Transformer-{i}-MultiHeadSelfAttention-Norm"] = _ln(p + "attention/input/LayerNorm", h + "ln_1")
            specs[f"Transformer-{i}-FeedForward"] = (
                _dense(p + "intermediate/dense", h + "mlp.c_fc", "intermediate")
                + _dense(p + "output/dense", h + "mlp.c_proj", "output"))
            specs[f"Transformer-{i}-FeedForward-Norm"] = _ln(p + "input/LayerNorm", h + "ln_2")
        return specs

    def transform_loaded(self, spec, value, fmt):
        if spec.tf == "gpt/embeddings/word_embeddings" and self.keep_tokens is not None:
            value = value[self.keep_tokens]
        return value

    def get_config(self):
        config = super().get_config()
        config.update(with_lm=self.with_lm, mask_input=self.mask_input)
        return config

    def hf_config(self):
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_embd": self.hidden_size,
            "n_layer": self.num_hidden_layers,
            "n_head": self.num_attention_heads,
            "n_inner": self.intermediate_size,
            "n_positions": self.max_position,
            "activation_function": self.hidden_act,
            "resid_pdrop": self.dropout_rate,
            "embd_pdrop": self.dropout_rate,
            "attn_pdrop": self.attention_dropout_rate,
            "layer_norm_epsilon": self.layer_norm_eps,
            "tie_word_embeddings": True,
            "pad_token_id": self.pad_token_id,
        }


def _spec(tf_name, hf_name, keras_path, split=None):
    # GPT-2's HF Conv1D stores (in, out) like Keras: no transpose.
    return WeightSpec(tf_name, [f"transformer.{hf_name}", hf_name], False, split, keras=keras_path)


def _dense(tf_prefix, hf_prefix, keras_prefix, split=None):
    return [_spec(tf_prefix + "/kernel", hf_prefix + ".weight", keras_prefix + "/kernel", split),
            _spec(tf_prefix + "/bias", hf_prefix + ".bias", keras_prefix + "/bias", split)]


def _ln(tf_prefix, hf_prefix):
    return [_spec(tf_prefix + "/gamma", hf_prefix + ".weight", "gamma"),
            _spec(tf_prefix + "/beta", hf_prefix + ".bias", "beta")]
