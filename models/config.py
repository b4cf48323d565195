"""Read model configs: Google ``bert_config.json``, Hugging Face ``config.json``
(BERT and GPT-2 key names), bert4keras-style JSON, or a plain dict."""

import json
import os

# canonical key -> accepted aliases (first match wins)
ALIASES = {
    "vocab_size": ["vocab_size"],
    "hidden_size": ["hidden_size", "n_embd", "d_model"],
    "num_hidden_layers": ["num_hidden_layers", "n_layer", "num_layers"],
    "num_attention_heads": ["num_attention_heads", "n_head", "num_heads"],
    "intermediate_size": ["intermediate_size", "n_inner", "ffn_dim"],
    "hidden_act": ["hidden_act", "activation_function"],
    "max_position_embeddings": ["max_position_embeddings", "n_positions", "max_position", "n_ctx"],
    "type_vocab_size": ["type_vocab_size", "segment_vocab_size"],
    "layer_norm_eps": ["layer_norm_eps", "layer_norm_epsilon"],
    "hidden_dropout_prob": ["hidden_dropout_prob", "resid_pdrop", "dropout_rate"],
    "attention_probs_dropout_prob": ["attention_probs_dropout_prob", "attn_pdrop", "attention_dropout_rate"],
    "initializer_range": ["initializer_range"],
}
REQUIRED = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"]


def load_config(config, source=None):
    """Return a dict with canonical keys (see ``ALIASES``) for a path or a dict.

    Raises ValueError naming the file and the missing key (with its accepted
    aliases) when a required key is absent."""
    if config is None:
        config, source = {}, source or "<no config>"
    elif isinstance(config, (str, os.PathLike)):
        source = os.fspath(config)
        if os.path.isdir(source):
            source = os.path.join(source, "config.json")
        if not os.path.exists(source):
            raise ValueError(f"config file '{source}' does not exist")
        with open(source, encoding="utf-8") as f:
            try:
                config = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"config file '{source}' is not valid JSON: {e}") from e
    elif isinstance(config, dict):
        source = source or "<dict>"
    else:
        raise TypeError(f"config must be a path or a dict, got {type(config).__name__}")

    out = {}
    for key, names in ALIASES.items():
        for name in names:
            if config.get(name) is not None:
                out[key] = config[name]
                break
    out["model_type"] = config.get("model_type")
    out["_source"] = source
    out["_raw"] = dict(config)
    return out


def require(config, keys=REQUIRED, source=None):
    """Raise a ValueError naming the source and key for each missing required key."""
    missing = [k for k in keys if config.get(k) is None]
    if missing:
        k = missing[0]
        raise ValueError(
            f"config '{source or config.get('_source', '<dict>')}' is missing required key '{k}' "
            f"(accepted names: {ALIASES.get(k, [k])}); missing: {missing}"
        )
