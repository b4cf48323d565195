"""Masked-LM pretraining of a BERT (what ``scripts/pretrain_mlm.py`` runs): the data of
:mod:`toolkit.mlm_data`, a BERT with its MLM head (``build_transformer_model(...,
with_mlm='linear')``; by default the training model computes the vocabulary logits only at the
selected positions, :func:`build_mlm_model`), the masked cross-entropy and masked-token accuracy
(only the selected positions count), and the resumable run of :mod:`models.training` (AdamW with warmup +
cosine decay, gradient accumulation, EMA, atomic checkpoints, exact resume, CSV log, a
held-out evaluation every period).

Files in ``OUT``: ``checkpoints/`` and ``log.csv`` (:mod:`models.training`; a row, a
checkpoint and a held-out evaluation every ``eval_every`` steps), ``train_config.json``
(what a resumed run must share: the model, the vocabulary, the data, the stream),
``vocab.txt`` (the corpus vocabulary), and when the run is complete ``model/`` (written
atomically: ``config.json`` in Hugging Face's BERT format plus ``keep_tokens``,
``model.safetensors``, ``vocab.txt``, ``tokenizer_config.json``; :func:`load_mlm_model`
reads it back), ``train_summary.json`` and ``loss.png`` (loss and accuracy).
"""

import json
import os
import shutil
import sys

import keras
from keras import ops

from models.builder import build_transformer_model
from models.distribution import evaluation_share, is_chief, local_batch_size, setup_distribution
from models.transformer_model import TransformerModel
from models.training import TrainingRun, latest_checkpoint, make_optimizer
from toolkit.checkpoints import save_json
from toolkit.mlm_data import HEADS, batches, held_out_batch, prepare_data
from toolkit.tokenizers import Tokenizer, check_vocab_size
from toolkit.training_log import Panel, plot_log

BUNDLED_BERT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bert_zh_model")
TRAIN_CONFIG = "train_config.json"
MODEL_DIR = "model"
FLAG_OF = {"num_hidden_layers": "--layers", "hidden_size": "--hidden", "num_attention_heads": "--heads",
           "intermediate_size": "--intermediate", "max_position_embeddings": "--max-length",
           "hidden_dropout_prob": "--dropout", "attention_probs_dropout_prob": "--dropout",
           "batch_size": "--batch-size", "seed": "--seed", "held_out": "--held-out", "mask_rate": "--mask-rate",
           "grad_accum": "--grad-accum", "ema": "--ema", "mlm_head": "--mlm-head"}
PANELS = [Panel("masked-LM pretraining", "cross-entropy of the masked tokens (nats)", ("loss", "val_loss")),
          Panel("masked-token accuracy", "argmax is the original token",
                ("masked_token_accuracy", "val_masked_token_accuracy"))]


# ------------------------------------------------------------ model, loss
MLM_HEAD_LAYERS = ("MLM-Dense", "MLM-Norm", "Embedding-Token", "MLM-Bias", "MLM-Activation")


def build_mlm_model(config, vocab_size, head="masked"):
    """A BERT of ``config`` (HF key names) over ``vocab_size`` tokens with its MLM head (logits).

    ``head='all'``: the model of ``build_transformer_model(..., with_mlm='linear')``, inputs
    ``[token_ids, segment_ids]``, logits ``(batch, length, vocab)``. ``head='masked'`` (what
    pretraining uses): a third input ``Input-Masked-Positions`` ``(batch, slots)``, the encoder's
    output gathered at those positions and the same MLM layers (shared weights: MLM-Dense,
    MLM-Norm, the tied Embedding-Token, MLM-Bias), logits ``(batch, slots, vocab)``: only the
    positions the loss counts pay for the vocabulary projection. Either way ``model.transformer``
    is the BERT, whose ``model`` is the full one (:func:`save_mlm_model` writes it)."""
    if head not in HEADS:
        raise ValueError(f"head={head!r}: give {' or '.join(repr(name) for name in HEADS)}")
    full = build_transformer_model(dict(config, vocab_size=vocab_size, type_vocab_size=2), with_mlm="linear")
    return full if head == "all" else masked_mlm_model(full)


def masked_mlm_model(full):
    """The ``head='masked'`` model of a BERT + MLM head ``full`` (shared weights): a third input
    ``Input-Masked-Positions`` ``(batch, slots)``; the encoder's output gathered there goes
    through the MLM layers; logits ``(batch, slots, vocab)``; ``.transformer`` is ``full``'s."""
    transformer = full.transformer
    sequence = full.get_layer("MLM-Dense").input  # the encoder's output
    positions = keras.Input((None,), dtype="int32", name="Input-Masked-Positions")
    outputs = ops.take_along_axis(sequence, ops.expand_dims(positions, -1), axis=1)
    for name in MLM_HEAD_LAYERS:
        layer = transformer.layers[name]
        outputs = layer(outputs, mode="dense") if name == "Embedding-Token" else layer(outputs)
    model = TransformerModel(inputs=list(full.inputs) + [positions], outputs=outputs, name=full.name + "_masked_mlm")
    model.transformer = transformer
    return model


def model_folder(directory=None):
    """The :func:`save_mlm_model` folder to read (default: the bundled Chinese BERT); ValueError
    in one line when it is missing or has no ``config.json``, saying how to get one."""
    how = ("the bundled model is models/bert_zh_model; train one with scripts/pretrain_mlm.py --out RUN "
           "and give --model RUN/model")
    if directory is None:
        if not os.path.isfile(os.path.join(BUNDLED_BERT_DIR, "config.json")):
            raise ValueError(f"the bundled Chinese BERT is not there ({BUNDLED_BERT_DIR}): {how}")
        return BUNDLED_BERT_DIR
    if not os.path.isdir(directory):
        raise ValueError(f"--model {directory}: no such folder ({how})")
    if not os.path.isfile(os.path.join(directory, "config.json")):
        raise ValueError(f"--model {directory}: no config.json there, not a model folder ({how})")
    return directory


def _masked_mean(values, weights):
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1.0)


def masked_lm_loss(y_true, logits):
    """Cross-entropy of the selected tokens (``y_true`` > 0; 0 marks a position not selected)."""
    target = ops.cast(y_true, "int32")
    selected = ops.cast(ops.not_equal(target, 0), "float32")
    return _masked_mean(ops.sparse_categorical_crossentropy(target, ops.cast(logits, "float32"), from_logits=True),
                        selected)


def masked_token_accuracy(y_true, logits):
    """How often the argmax token is the original one, over the selected tokens."""
    target = ops.cast(y_true, "int32")
    selected = ops.cast(ops.not_equal(target, 0), "float32")
    hit = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), target), "float32")
    return _masked_mean(hit, selected)


def compile_mlm_model(model, options):
    """AdamW with warmup + cosine decay (:func:`models.training.make_optimizer`), gradient
    accumulation and EMA as ``options`` say; the masked loss and accuracy."""
    optimizer = make_optimizer(options.lr, options.steps, warmup_steps=options.warmup,
                               weight_decay=options.weight_decay,
                               gradient_accumulation_steps=options.grad_accum if options.grad_accum > 1 else None,
                               use_ema=options.ema > 0, ema_momentum=options.ema or 0.99)
    model.compile(optimizer=optimizer, loss=masked_lm_loss, metrics=[masked_token_accuracy])
    return model


# ------------------------------------------------------------ model folder
def save_mlm_model(model, directory, vocabulary, extra=None):
    """``directory``: ``config.json`` (Hugging Face BERT, with ``keep_tokens``: the standard
    vocabulary's id of each row, and ``do_lower_case``), ``model.safetensors``, ``vocab.txt``
    and ``tokenizer_config.json``. Written into ``directory.partial`` and renamed: a kill
    leaves the previous folder or none, never half of one."""
    partial, old = directory + ".partial", directory + ".old"
    shutil.rmtree(partial, ignore_errors=True)
    model.transformer.save_pretrained(partial)
    path = os.path.join(partial, "config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config.update(keep_tokens=[int(i) for i in vocabulary.keep_tokens], do_lower_case=True, **(extra or {}))
    save_json(config, path)
    vocabulary.write(os.path.join(partial, "vocab.txt"))
    save_json({"do_lower_case": True, "tokenizer_class": "BertTokenizer"},
              os.path.join(partial, "tokenizer_config.json"))
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(partial, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def load_mlm_model(directory=None):
    """``(model, tokenizer)`` of a :func:`save_mlm_model` folder (default: the bundled Chinese
    BERT, :data:`BUNDLED_BERT_DIR`); ValueError in one line when its ``vocab.txt`` does not fit
    the weights' token embedding."""
    directory = directory or BUNDLED_BERT_DIR
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    tokenizer = Tokenizer(os.path.join(directory, "vocab.txt"), do_lower_case=config.get("do_lower_case", True))
    check_vocab_size(tokenizer, int(config["vocab_size"]), f"of {directory}/config.json")
    model = build_transformer_model(directory, directory, with_mlm="linear")
    return model, tokenizer


# ------------------------------------------------------------------ resume
def _differences(settings, saved):
    """``(key, value here, value in the run)`` of each setting that differs, the model's sizes one by one."""
    for key, value in settings.items():
        before = saved.get(key)
        if isinstance(value, dict) and key != "vocabulary":
            yield from ((name, value[name], (before or {}).get(name)) for name in value
                        if value[name] != (before or {}).get(name))
        elif value != before:
            yield key, value, before


def _resume_hint(key, before):
    if key in FLAG_OF:
        return f"give {FLAG_OF[key]} {before}"
    if key == "hidden_act":
        return "give the run's --config"
    return "give the run's --corpus and --vocab"


def _shown(key, value):
    if key == "vocabulary" and isinstance(value, dict):
        return f"{value.get('size')} tokens (digest {value.get('digest')})"
    return value


def check_resume(out, settings):
    """Refuse to resume ``out`` with other settings than those it was started with: ValueError
    naming the first differing key, its two values and the option to give."""
    path = os.path.join(out, TRAIN_CONFIG)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    saved.setdefault("mlm_head", "all")  # a run started before --mlm-head computed the logits everywhere
    for key, value, before in _differences(settings, saved):
        raise ValueError(f"--resume {out}: {key} is {_shown(key, value)} here but {_shown(key, before)} in {path}: "
                         f"{_resume_hint(key, before)}, or a new --out")


def embedding_rows(checkpoint):
    """The rows of the token embedding in a checkpoint's ``model.weights.h5`` (None if not found)."""
    import h5py

    with h5py.File(os.path.join(checkpoint, "model.weights.h5"), "r") as weights:
        layers = weights.get("layers", {})
        name = next((name for name in layers if name.startswith("token_embedding")), None)
        if name is None or "vars/0" not in layers[name]:
            return None
        return int(layers[name]["vars/0"].shape[0])


def check_checkpoint_vocabulary(checkpoints, vocabulary):
    """ValueError in one line when the latest checkpoint's token embedding does not have a row
    for each token of the vocabulary."""
    path = latest_checkpoint(checkpoints)
    rows = embedding_rows(path) if path else None
    if rows is not None and rows != vocabulary.size:
        raise ValueError(f"checkpoint {path} has a token embedding of {rows} rows but the vocabulary of this "
                         f"--corpus and --vocab has {vocabulary.size} tokens: resume with the run's --corpus and "
                         f"--vocab, or give a new --out")


def refuse_to_overwrite(options):
    """A run directory that holds checkpoints is continued with ``--resume``, never started over."""
    path = latest_checkpoint(os.path.join(options.out, "checkpoints"))
    if path and not options.resume:
        raise ValueError(f"--out {options.out} already holds a run ({os.path.basename(path)}): add --resume to "
                         f"continue it, or give a new --out")


# ----------------------------------------------------------------- the run
def _say(options, *lines):
    if not options.quiet:
        for line in lines:
            print(line, file=sys.stderr)


def prepare_run(options):
    """Check the options and the run directory, read and pack the corpus, build and compile the
    model. Returns ``(data, model, settings)``; writes ``train_config.json`` and ``vocab.txt``."""
    options.check()
    config = options.model_config()
    refuse_to_overwrite(options)  # before the processes meet: then none of them has written yet
    setup_distribution(options.distribution, config, options.batch_size, options.coordinator,
                       options.num_processes, options.process_id)
    data = prepare_data(options.corpus, options.vocab_path(), config["max_position_embeddings"],
                        options.held_out, options.seed)
    _say(options, *data.summary_lines(options.eval_sequences))
    settings = options.run_settings(data)
    if options.resume:
        check_resume(options.out, settings)
        check_checkpoint_vocabulary(os.path.join(options.out, "checkpoints"), data.vocabulary)
    os.makedirs(options.out, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    model = compile_mlm_model(build_mlm_model(config, data.vocabulary.size, options.head), options)
    if is_chief():
        save_json(settings, os.path.join(options.out, TRAIN_CONFIG))
        data.vocabulary.write(os.path.join(options.out, "vocab.txt"))
    return data, model, settings


def summarize(model, run, options, data, held_out):
    """``train_summary.json``'s figures: the run, its speed and the final held-out figures."""
    length = data.train.shape[1]
    summary = {"steps": run.step, "train_seconds": round(run.elapsed(), 1),
               "tokens_per_second": round(run.step * options.batch_size * length / max(run.elapsed(), 1e-9), 1),
               "parameters": int(model.count_params()), "vocab_size": data.vocabulary.size, "max_length": length,
               "batch_size": options.batch_size, "lr": options.lr, "train_documents": data.train_documents,
               "train_sequences": len(data.train), "held_out_documents": data.held_out_documents,
               "held_out": options.held_out}
    if held_out is not None:
        result = model.evaluate(*evaluation_share(held_out), batch_size=local_batch_size(options.batch_size),
                                verbose=0, return_dict=True)
        summary["final_held_out_loss"] = float(result["loss"])
        summary["final_held_out_accuracy"] = float(result["masked_token_accuracy"])
    return summary


def pretrain_mlm(options, callbacks=()):
    """Run the pretraining ``options`` (:class:`toolkit.mlm_data.PretrainOptions`) describe.
    Returns the summary (also in ``OUT/train_summary.json`` and the model's ``config.json``),
    or None when the run stopped early (``stop_after``; ``resume`` continues it).
    ``callbacks``: more Keras callbacks for ``fit``."""
    data, model, _ = prepare_run(options)
    stream = options.stream_settings(data.vocabulary.size)
    held_out = held_out_batch(data.held_out, stream, options.eval_sequences) if len(data.held_out) else None
    run = TrainingRun(model, options.out, options.steps, options.eval_every, stop_after=options.stop_after,
                      report=None if options.quiet else (lambda message: print(message, file=sys.stderr)))
    start = run.restore(options.resume)
    _say(options, f"{model.count_params()} parameters; steps {start}->{options.steps}")
    run.fit(lambda step: batches(data.train, step, stream), validation_data=held_out,
            validation_batch_size=options.batch_size, verbose=0 if options.quiet else 1, callbacks=list(callbacks))
    if not run.finished:
        print(f"stopped at step {run.step}; rerun with --resume to continue", file=sys.stderr)
        return None
    summary = summarize(model, run, options, data, held_out)
    if not is_chief():
        return summary
    save_mlm_model(model, os.path.join(options.out, MODEL_DIR), data.vocabulary, {"training": summary})
    save_json(summary, os.path.join(options.out, "train_summary.json"))
    plot_log(run.log_path, os.path.join(options.out, "loss.png"), PANELS)
    return summary


__all__ = ["BUNDLED_BERT_DIR", "MLM_HEAD_LAYERS", "build_mlm_model", "masked_mlm_model", "model_folder", "masked_lm_loss", "masked_token_accuracy",
           "compile_mlm_model", "save_mlm_model", "load_mlm_model", "check_resume", "embedding_rows",
           "check_checkpoint_vocabulary", "refuse_to_overwrite", "prepare_run", "summarize", "pretrain_mlm"]
