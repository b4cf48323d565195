"""``build_transformer_model``: the one entry point, bert4keras style."""

from layers.quantized_sublayers import check_quantization
from models.bert import BERT
from models.config import load_config, require, validate
from models.gpt2 import GPT2
from models.quantization import quantize_model
from toolkit.checkpoints import keras_weights_hold_int8

MODELS = {"bert": BERT, "gpt2": GPT2, "gpt_2": GPT2, "gpt-2": GPT2}


def transformer_class(model):
    """The Transformer class for a model name (``'bert'``, ``'gpt2'``); ValueError if unknown."""
    key = str(model).lower()
    if key not in MODELS:
        raise ValueError(f"model must be one of {sorted(set(MODELS))}, got {model!r}")
    return MODELS[key]


def build_transformer_model(
    config_path=None,
    checkpoint_path=None,
    model="bert",
    application="encoder",
    with_pool=False,
    with_nsp=False,
    with_mlm=False,
    keep_tokens=None,
    hierarchical_position=None,
    max_length=None,
    return_keras_model=True,
    attention="softmax",
    attention_kwargs=None,
    quantize=None,
    **kwargs,
):
    """Build a BERT or GPT-2 and optionally load a checkpoint.

    Args:
        config_path: ``bert_config.json``, an HF ``config.json`` (or its
            directory), or a dict. Keyword arguments override its values.
        checkpoint_path: TF checkpoint prefix, HF directory / ``.safetensors`` /
            ``.bin``, or a Keras ``.weights.h5``.
        model: ``'bert'`` or ``'gpt2'``.
        application: ``'encoder'``, ``'lm'`` (causal) or ``'unilm'``
            (BERT only; GPT-2 is always ``'lm'``).
        with_pool / with_nsp / with_mlm: BERT heads (``with_mlm='linear'``
            gives logits instead of probabilities).
        keep_tokens: rows of the checkpoint's vocabulary to keep, in order.
        hierarchical_position: ``True`` (alpha 0.4) or a float alpha: read
            up to ``max_position**2`` tokens.
        max_length: fixed input length (``None`` = any length).
        return_keras_model: ``False`` returns the ``Transformer`` object (its
            ``.model`` is the Keras model).
        attention: ``'softmax'``, ``'performer'`` or ``'taylor'``, with
            ``attention_kwargs`` passed to that layer.
        quantize: ``'int8'``: Keras' own int8 weights (``models.quantization``). The
            layers are created int8 and each checkpoint tensor is quantized as it is
            read (no float copy of the model); a float ``.weights.h5`` is loaded into
            the float model, which is then quantized by ``model.quantize``.
        **kwargs: config values to override, e.g. ``pad_token_id`` (the id
            masked as padding: BERT's default is 0, ``[PAD]``; GPT-2's is None,
            every id a real token) and, for GPT-2, ``mask_input=True`` (a
            second input ``Input-Mask``, 1 = token, 0 = padding, as Hugging
            Face's ``attention_mask``).

    Every size field of the config is checked (positive integers, hidden size
    divisible by the heads, a known activation): a bad one raises ValueError
    naming the config file, the key and the value.

    Example:

    >>> model = build_transformer_model(                  # doctest: +SKIP
    ...     "all-MiniLM-L6-v2/config.json", "all-MiniLM-L6-v2", model="bert")
    >>> model.predict([token_ids, segment_ids])          # doctest: +SKIP
    """
    cls = transformer_class(model)
    config = load_config(config_path)
    source = config.pop("_source")
    for meta in ("_raw", "model_type"):
        config.pop(meta)
    config.update({k: v for k, v in kwargs.items() if v is not None})
    require(config, source=source)
    validate(config, source=source)
    if cls is BERT:
        config.update(with_pool=with_pool, with_nsp=with_nsp, with_mlm=with_mlm, application=application)
    else:
        if with_pool or with_nsp or with_mlm:
            raise ValueError("with_pool/with_nsp/with_mlm are BERT heads; GPT-2 has its LM head (with_lm)")
        if application not in ("encoder", "lm"):
            raise ValueError(f"GPT-2 is a causal LM: application {application!r} is not supported")
        config["application"] = "lm"
        config.pop("type_vocab_size", None)
    check_quantization(quantize, "quantize")
    # a float Keras weights file does not fit the int8 layout: load it into the float model, then quantize
    float_file = quantize is not None and keras_weights_hold_int8(checkpoint_path) is False
    transformer = cls(keep_tokens=keep_tokens, hierarchical_position=hierarchical_position, max_length=max_length,
                      attention=attention, attention_kwargs=attention_kwargs,
                      quantization=None if float_file else quantize, **config)
    transformer.build()
    if checkpoint_path is not None:
        transformer.load_weights_from_checkpoint(checkpoint_path)
    if float_file:
        quantize_model(transformer.model, quantize)
    return transformer.model if return_keras_model else transformer
