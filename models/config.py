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
    "pad_token_id": ["pad_token_id"],
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


POSITIVE_INTS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings"]
FRACTIONS = ["hidden_dropout_prob", "attention_probs_dropout_prob"]


def validate(config, source=None):
    """Check every size field of a canonical config (after ``require``): positive
    integers, ``type_vocab_size >= 0``, dropout rates in [0, 1), a positive
    ``layer_norm_eps``, ``hidden_size`` divisible by ``num_attention_heads`` and an
    activation Keras knows. Raises ValueError naming the source, the key and the value."""
    where = f"config '{source or config.get('_source', '<dict>')}'"
    for key in POSITIVE_INTS:
        _check_int(config, key, where, minimum=1)
    _check_int(config, "type_vocab_size", where, minimum=0)
    _check_int(config, "pad_token_id", where, minimum=0)
    for key in FRACTIONS:
        value = config.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ValueError(f"{where}: '{key}' must be a rate in [0, 1), got {value!r}")
    eps = config.get("layer_norm_eps")
    if eps is not None and not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"{where}: 'layer_norm_eps' must be a positive number, got {eps!r}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ValueError(f"{where}: hidden_size {config['hidden_size']} is not divisible by num_attention_heads "
                         f"{config['num_attention_heads']}: each head gets hidden_size / heads dimensions")
    _check_activation(config.get("hidden_act"), where)


def _check_int(config, key, where, minimum):
    value = config.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise ValueError(f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}")
    config[key] = int(value)


def _check_activation(name, where):
    if name is None or callable(name):
        return
    from layers import get_activation

    try:
        get_activation(name)
    except ValueError:
        raise ValueError(f"{where}: unknown activation hidden_act={name!r}; use one Keras knows "
                         "('gelu', 'gelu_new', 'relu', 'swish', ...)") from None
