"""BERT (Devlin et al., 2018): post-LN encoder with pooler, NSP and MLM heads."""

import re

import keras

import layers
from models.transformer import Transformer, WeightSpec


class BERT(Transformer):
    """BERT in bert4keras' layout: inputs ``[token_ids, segment_ids]``; keys whose
    id is ``pad_token_id`` are masked (default 0, BERT's ``[PAD]``; a config's
    ``pad_token_id`` overrides it). ``application``: ``'encoder'``
    (bidirectional), ``'lm'`` (causal) or ``'unilm'`` (prefix mask from segment
    ids).

    Outputs follow bert4keras: the sequence output alone; with ``with_pool``
    (and ``with_nsp``) the pooled output or NSP probabilities; with
    ``with_mlm`` the token probabilities (logits if ``with_mlm='linear'``);
    with both, ``[pooled_or_nsp, mlm]``.
    """

    model_type = "bert"
    default_layer_norm_eps = 1e-12

    def __init__(self, type_vocab_size=2, with_pool=False, with_nsp=False, with_mlm=False, **kwargs):
        super().__init__(**kwargs)
        if self.pad_token_id is None:
            self.pad_token_id = 0  # BERT's [PAD] (Google's bert_config.json does not name it)
        self.segment_vocab_size = int(type_vocab_size or 0)
        self.with_pool = with_pool or with_nsp
        self.with_nsp = with_nsp
        self.with_mlm = with_mlm

    def get_inputs(self):
        shape = (self.max_length,)
        token_ids = keras.Input(shape, dtype="int32", name="Input-Token")
        if self.segment_vocab_size > 0:
            segment_ids = keras.Input(shape, dtype="int32", name="Input-Segment")
            return [token_ids, segment_ids]
        return [token_ids]

    def apply_embeddings(self, inputs):
        """Token (+ segment) + position embeddings, LayerNorm, dropout."""
        x = self.apply(inputs[0], layers.TokenEmbedding, "Embedding-Token", input_dim=self.vocab_size,
                       output_dim=self.hidden_size, embeddings_initializer=self.initializer)
        if self.segment_vocab_size > 0:
            segments = self.apply(inputs[1], keras.layers.Embedding, "Embedding-Segment",
                                  input_dim=self.segment_vocab_size, output_dim=self.hidden_size,
                                  embeddings_initializer=self.initializer)
            x = self.apply([x, segments], keras.layers.Add, "Embedding-Token-Segment")
        x = self.apply(x, layers.PositionEmbedding, "Embedding-Position", input_dim=self.max_position,
                       output_dim=self.hidden_size, hierarchical=self.hierarchical_position,
                       embeddings_initializer=self.initializer)
        x = self.apply(x, keras.layers.LayerNormalization, "Embedding-Norm", epsilon=self.layer_norm_eps)
        return self.apply(x, keras.layers.Dropout, "Embedding-Dropout", rate=self.dropout_rate)

    def attention_mask(self, inputs):
        """Padding keys masked; with ``application='unilm'`` also UniLM's prefix mask."""
        if self.application == "unilm":
            return self.apply(inputs[:2], layers.UniLMMask, "Attention-UniLM-Mask", pad_id=self.pad_token_id)
        return self.apply(inputs[0], layers.PaddingMask, "Attention-Padding-Mask", pad_id=self.pad_token_id)

    def apply_main(self, x, mask, index):
        """Post-LN block: Att -> Add -> LN -> FFN -> Add -> LN."""
        att = f"Transformer-{index}-MultiHeadSelfAttention"
        ffn = f"Transformer-{index}-FeedForward"
        y = self.apply(x, self.attention_layer_class(), att,
                       arguments={"attention_mask": mask, "use_causal_mask": self.application == "lm"},
                       **self.attention_layer_kwargs())
        y = self.apply(y, keras.layers.Dropout, f"{att}-Dropout", rate=self.dropout_rate)
        x = self.apply([x, y], keras.layers.Add, f"{att}-Add")
        x = self.apply(x, keras.layers.LayerNormalization, f"{att}-Norm", epsilon=self.layer_norm_eps)
        y = self.apply(x, layers.FeedForward, ffn, units=self.intermediate_size, activation=self.hidden_act,
                       kernel_initializer=self.initializer)
        y = self.apply(y, keras.layers.Dropout, f"{ffn}-Dropout", rate=self.dropout_rate)
        x = self.apply([x, y], keras.layers.Add, f"{ffn}-Add")
        return self.apply(x, keras.layers.LayerNormalization, f"{ffn}-Norm", epsilon=self.layer_norm_eps)

    def apply_final(self, x):
        outputs = [x]
        if self.with_pool:
            act = "tanh" if self.with_pool is True or self.with_pool == "tanh" else self.with_pool
            y = self.apply(x, layers.Pooler, "Pooler-Dense", units=self.hidden_size, activation=act,
                           kernel_initializer=self.initializer)
            if self.with_nsp:
                y = self.apply(y, keras.layers.Dense, "NSP-Proba", units=2, activation="softmax",
                               kernel_initializer=self.initializer)
            outputs.append(y)
        if self.with_mlm:
            y = self.apply(x, keras.layers.Dense, "MLM-Dense", units=self.hidden_size,
                           activation=layers.get_activation(self.hidden_act), kernel_initializer=self.initializer)
            y = self.apply(y, keras.layers.LayerNormalization, "MLM-Norm", epsilon=self.layer_norm_eps)
            y = self.layers["Embedding-Token"](y, mode="dense")
            y = self.apply(y, layers.BiasAdd, "MLM-Bias")
            act = "softmax" if self.with_mlm is True else self.with_mlm
            y = self.apply(y, keras.layers.Activation, "MLM-Activation", activation=act)
            outputs.append(y)
        if len(outputs) == 1:
            return outputs[0]
        if len(outputs) == 2:
            return outputs[1]
        return outputs[1:]

    # ------------------------------------------------------------- weights
    def weight_specs(self):
        specs = {
            "Embedding-Token": [_spec("bert/embeddings/word_embeddings", "embeddings")],
            "Embedding-Segment": [_spec("bert/embeddings/token_type_embeddings", "embeddings")],
            "Embedding-Position": [_spec("bert/embeddings/position_embeddings", "embeddings")],
            "Embedding-Norm": _ln("bert/embeddings/LayerNorm"),
            "Pooler-Dense": _dense("bert/pooler/dense", "dense"),
            "NSP-Proba": [_spec("cls/seq_relationship/output_weights", "kernel"),
                          _spec("cls/seq_relationship/output_bias", "bias")],
            "MLM-Dense": _dense("cls/predictions/transform/dense"),
            "MLM-Norm": _ln("cls/predictions/transform/LayerNorm"),
            "MLM-Bias": [_spec("cls/predictions/output_bias", "bias")],
        }
        for i in range(self.num_hidden_layers):
            p = f"bert/encoder/layer_{i}/"
            specs[f"Transformer-{i}-MultiHeadSelfAttention"] = (
                _dense(p + "attention/self/query", "query") + _dense(p + "attention/self/key", "key")
                + _dense(p + "attention/self/value", "value") + _dense(p + "attention/output/dense", "output"))
            specs[f"Transformer-{i}-MultiHeadSelfAttention-Norm"] = _ln(p + "attention/output/LayerNorm")
            specs[f"Transformer-{i}-FeedForward"] = (_dense(p + "intermediate/dense", "intermediate")
                                                     + _dense(p + "output/dense", "output"))
            specs[f"Transformer-{i}-FeedForward-Norm"] = _ln(p + "output/LayerNorm")
        return specs

    def transform_loaded(self, spec, value, fmt):
        if spec.tf == "cls/seq_relationship/output_weights" and fmt == "tf":
            value = value.T  # TF stores (2, hidden) and multiplies with transpose_b
        if spec.tf in ("bert/embeddings/word_embeddings", "cls/predictions/output_bias") \
                and self.keep_tokens is not None:
            value = value[self.keep_tokens]
        return value

    def transform_saved_tf(self, spec, value):
        return value.T if spec.tf == "cls/seq_relationship/output_weights" else value

    def get_config(self):
        config = super().get_config()
        config.update(type_vocab_size=self.segment_vocab_size, with_pool=self.with_pool, with_nsp=self.with_nsp,
                      with_mlm=self.with_mlm)
        return config

    def hf_config(self):
        return {
            "architectures": ["BertForMaskedLM" if self.with_mlm else "BertModel"],
            "model_type": "bert",
            **self.size_config(),
            "type_vocab_size": self.segment_vocab_size,
            "pad_token_id": self.pad_token_id,
        }


_HF_SPECIAL = {
    "cls/predictions/output_bias": (["cls.predictions.bias", "cls.predictions.decoder.bias"], False),
    "cls/seq_relationship/output_weights": (["cls.seq_relationship.weight"], True),
    "cls/seq_relationship/output_bias": (["cls.seq_relationship.bias"], False),
}


def _spec(tf_name, keras_path):
    """WeightSpec for a Google-BERT TF name (its Hugging Face names derived) and the
    Keras weight's path inside its layer."""
    if tf_name in _HF_SPECIAL:
        names, transpose = _HF_SPECIAL[tf_name]
        return WeightSpec(tf_name, names, transpose, keras=keras_path)
    n = re.sub(r"layer_(\d+)", r"layer.\1", tf_name)
    parts = n.split("/")
    last, transpose, alt = parts[-1], False, None
    if last == "kernel":
        parts[-1], transpose = "weight", True
    elif last == "gamma":
        parts[-1], alt = "weight", "gamma"
    elif last == "beta":
        parts[-1], alt = "bias", "beta"
    elif last.endswith("embeddings"):
        parts.append("weight")
    base = ".".join(parts)
    names = [base]
    if alt:
        names.append(".".join(parts[:-1] + [alt]))
    if base.startswith("bert."):  # BertModel saves bare names, heads save 'bert.' ones
        names = names + [x[len("bert."):] for x in names]
    return WeightSpec(tf_name, names, transpose, keras=keras_path)


def _dense(prefix, keras_prefix=""):
    keras_prefix = keras_prefix + "/" if keras_prefix else ""
    return [_spec(prefix + "/kernel", keras_prefix + "kernel"), _spec(prefix + "/bias", keras_prefix + "bias")]


def _ln(prefix):
    return [_spec(prefix + "/gamma", "gamma"), _spec(prefix + "/beta", "beta")]
