"""Training the Xiangqi GPT (what ``scripts/train_xiangqi.py`` runs): the games and their
held-out split, the model (fresh, from ``--init-from`` or from a resumed run's
``train_config.json``), the masked losses of :mod:`models.xiangqi_losses`, the resumable
run of :mod:`models.training` and, at the end, the summary, the saved model and the loss PNG.

Files in ``OUT``: ``checkpoints/`` and ``log.csv`` (:mod:`models.training`),
``train_config.json`` (the architecture, read back by ``resume``), ``legal_masks.npz``
(with the legal-mass term), and when the run is complete ``config.json`` +
``model.weights.h5``, ``train_summary.json`` and ``loss.png``.
"""

import json
import os
import sys

import keras
import numpy as np

from models.distribution import evaluation_share, is_chief, local_batch_size, process_share, setup_distribution
from models.training import TrainingRun, latest_checkpoint, make_optimizer
from models.xiangqi import DEFAULT_CONFIG, build_xiangqi_model, save_xiangqi_model, xiangqi_config
from models.xiangqi_losses import make_loss, make_metrics
from toolkit.checkpoints import save_json
from toolkit.training_log import Panel, plot_log, read_log, series
from toolkit.xiangqi.training_data import (batch_for_step, batches, compute_legal_masks, fixed_batches, load_games,
                                           split_games)

SHAPE_OPTIONS = {"num_hidden_layers": "--layers", "hidden_size": "--hidden", "num_attention_heads": "--heads",
                 "intermediate_size": "--intermediate"}


def init_config(directory, overrides):
    """The architecture of the saved model in ``directory``; dropout may be overridden,
    the shape-defining sizes may not (the weights would not fit)."""
    for name in ("config.json", "model.weights.h5"):
        if not os.path.exists(os.path.join(directory, name)):
            raise FileNotFoundError(f"--init-from {directory}: {name} not found (give a model directory with "
                                    f"config.json and model.weights.h5, e.g. models/xiangqi_model or a finished --out)")
    path = os.path.join(directory, "config.json")
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    for key, option in SHAPE_OPTIONS.items():
        if overrides.get(key) is not None and overrides[key] != saved.get(key):
            raise ValueError(f"--init-from {directory}: {key}={overrides[key]} differs from the saved model's "
                             f"{saved.get(key)} ({path}); leave out {option} or give {saved.get(key)}")
    config = {k: saved[k] for k in set(SHAPE_OPTIONS) | {"max_position_embeddings", "hidden_act"} if k in saved}
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        config[key] = overrides[key] if overrides.get(key) is not None else saved.get(key, 0.0)
    return config


def read_split(options):
    """(train, val) games of ``options.games`` (games without moves dropped); all in train when
    the split would leave no training game."""
    games = [g for g in load_games(options.games) if g.moves]
    if not games:
        raise ValueError(f"no games with moves in {' '.join(map(str, options.games))}: give game records "
                         f"(own JSONL, seed JSONL or ICCS PGN)")
    train, val = split_games(games, options.val_fraction)
    return (val, []) if not train else (train, val)


def model_config(options):
    """The run's architecture: a resumed run's ``train_config.json``, ``--init-from``'s, or the options'."""
    path = os.path.join(options.out, "train_config.json")
    if options.resume and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if options.init_from:
        return init_config(options.init_from, options.model_overrides())
    return {k: v for k, v in options.model_overrides().items() if v is not None}


def build_model(options):
    """The compiled model: AdamW with warmup + cosine decay, the masked loss and metrics; weights
    from ``--init-from`` unless a checkpoint will be resumed."""
    model = build_xiangqi_model(model_config(options))
    resuming = options.resume and latest_checkpoint(os.path.join(options.out, "checkpoints"))
    if options.init_from and not resuming:
        model.load_weights(os.path.join(options.init_from, "model.weights.h5"))
        print(f"initialised from {options.init_from}", file=sys.stderr)
    if is_chief():
        save_json(xiangqi_config(model), os.path.join(options.out, "train_config.json"))
    optimizer = make_optimizer(options.lr, options.steps, warmup_steps=options.warmup,
                               min_lr_ratio=options.min_lr_ratio, weight_decay=options.weight_decay)
    model.compile(optimizer=optimizer, loss=make_loss(options.legal_weight), metrics=make_metrics(options.legal_weight))
    return model


def legal_masks(options, train, val):
    """(train masks, val masks) with the legal-mass term, else (None, None)."""
    if not options.legal_weight:
        return None, None
    masks = compute_legal_masks(train + val, options.out, options.workers, options.quiet)
    return masks[:len(train)], masks[len(train):]


def summarize(model, run, options, data):
    """``train_summary.json``'s figures: the run, the final train loss (one batch) and the validation figures."""
    (train, train_masks), (val, val_masks) = data
    settings = options.batch_settings()
    summary = {"steps": run.step, "train_seconds": round(run.elapsed(), 1), "train_games": len(train),
               "train_plies": sum(len(g.moves) for g in train), "val_games": len(val),
               "parameters": int(model.count_params()), "batch_size": options.batch_size,
               "max_len": options.max_len, "lr": options.lr, "p_any": options.p_any,
               "mirror": not options.no_mirror, "legal_weight": options.legal_weight}
    x, y = process_share(batch_for_step(train, 10**9, settings, train_masks))
    summary["final_train_loss"] = float(np.asarray(model.evaluate(x, y, verbose=0, return_dict=True)["loss"]))
    if val:
        vx, vy = evaluation_share(fixed_batches(val, settings, val_masks))
        res = model.evaluate(vx, vy, batch_size=local_batch_size(options.batch_size), verbose=0, return_dict=True)
        summary["final_val_loss"] = float(res["loss"])
        summary["final_val_char_accuracy"] = float(res["masked_accuracy"])
        if options.legal_weight:
            summary["final_val_ce"] = float(res["masked_ce"])
            summary["final_val_legal_char_rate"] = float(res["legal_char_rate"])
    return summary


def loss_panels(rows):
    """The loss PNG's plots: the loss, and with the legal-mass term also the cross-entropy alone
    and a second plot of the legal-character rate."""
    if not any(series(rows, key) for key in ("legal_char_rate", "val_legal_char_rate")):
        return [Panel("Xiangqi GPT training", "masked next-token cross-entropy (nats)", ("loss", "val_loss"))]
    return [Panel("Xiangqi GPT training", "nats (loss = cross-entropy + legal term)",
                  ("masked_ce", "val_masked_ce", "loss", "val_loss"), dashed=("loss", "val_loss")),
            Panel("legal character rate", "argmax character is a legal continuation",
                  ("legal_char_rate", "val_legal_char_rate"))]


def plot_losses(out):
    """``OUT/loss.png`` from ``OUT/log.csv``; None without a log."""
    log = os.path.join(out, "log.csv")
    return plot_log(log, os.path.join(out, "loss.png"), loss_panels(read_log(log)))


def train_xiangqi_model(options):
    """Run the training ``options`` (:class:`toolkit.xiangqi.training_options.XiangqiTrainingOptions`)
    describe. Returns the summary (also in ``OUT/train_summary.json``), or None when the run
    stopped early (``stop_after``: its checkpoint is the product; ``resume`` continues it)."""
    options.check()
    setup_distribution(options.distribution, dict(DEFAULT_CONFIG, **model_config(options)), options.batch_size,
                       options.coordinator, options.num_processes, options.process_id)
    os.makedirs(options.out, exist_ok=True)
    train, val = read_split(options)
    keras.utils.set_random_seed(options.seed)
    model = build_model(options)
    train_masks, val_masks = legal_masks(options, train, val)
    run = TrainingRun(model, options.out, options.steps, options.checkpoint_every, stop_after=options.stop_after)
    start = run.restore(options.resume)
    if not options.quiet:
        print(f"{len(train)} training games ({sum(len(g.moves) for g in train)} plies), {len(val)} validation "
              f"games; {model.count_params()} parameters; steps {start}->{options.steps}", file=sys.stderr)
    settings = options.batch_settings()
    run.fit(lambda step: batches(train, step, settings, train_masks),
            validation_data=fixed_batches(val, settings, val_masks) if val else None,
            validation_batch_size=options.batch_size, verbose=0 if options.quiet else 2)
    if not run.finished:
        print(f"stopped at step {run.step}; rerun with --resume to continue", file=sys.stderr)
        return None
    summary = summarize(model, run, options, ((train, train_masks), (val, val_masks)))
    if not is_chief():
        return summary
    save_xiangqi_model(model, options.out, extra={"training": summary})
    save_json(summary, os.path.join(options.out, "train_summary.json"))
    plot_losses(options.out)
    return summary


__all__ = ["train_xiangqi_model", "init_config", "read_split", "model_config", "build_model", "legal_masks",
           "summarize", "loss_panels", "plot_losses"]
