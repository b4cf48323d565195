"""Resumable training for any Keras model: the optimizer (AdamW, warmup + cosine or linear
decay, Keras' own gradient accumulation and EMA), atomic checkpoints with exact resume, and
``model.fit`` with a CSV log, progress output and a loss PNG.

On disk, under a run directory ``OUT``::

    OUT/checkpoints/step-00000050/   model.weights.h5 (Keras 3 writes the built optimizer's
                                     variables into it too), optimizer.npz (every optimizer
                                     variable, ``iterations`` included, in order: what is
                                     loaded), random_state.npz (the model's random-generator
                                     states, e.g. its dropout layers', which model.weights.h5
                                     leaves out; only when it has some), state.json (step,
                                     elapsed seconds)
    OUT/checkpoints/latest           the name of the newest complete checkpoint
    OUT/log.csv                      Keras' CSVLogger: a row per logging period, with step and lr

A checkpoint is written into ``step-N.partial/`` and renamed to ``step-N/`` when complete,
then ``latest`` is replaced atomically; a kill at any moment leaves the last complete one (a
leftover ``.partial`` directory is ignored and removed at the next save). The last ``keep``
checkpoints are kept.

Exact resume: the data stream is a function of the step (``batches_from(step)`` yields the
batches from number ``step`` on), so a run restored from a checkpoint (weights, optimizer
variables, step, elapsed time) and continued equals an uninterrupted one; the log is cut back
to the checkpoint's step and appended to.

>>> import keras, numpy as np, tempfile
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
>>> model.compile(optimizer=make_optimizer(1e-2, total_steps=4), loss="mse")
>>> data = lambda step: ((np.full((2, 3), s, "float32"), np.ones((2, 1), "float32")) for s in range(step, 99))
>>> run = TrainingRun(model, tempfile.mkdtemp(), total_steps=4, checkpoint_every=2, report=None)
>>> run.restore(resume=True), run.fit(data, verbose=0), os.path.basename(latest_checkpoint(run.checkpoints))
(0, 4, 'step-00000004')

Keras' ``BackupAndRestore`` does not fit here: it keeps one backup that it deletes when
``fit`` ends, restores by epoch and batch index (not by data position), and keeps no
elapsed time and no last-K checkpoints.
"""

import glob
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
from keras import ops

from models.distribution import (check_distributed_model, evaluation_share, is_chief, local_batch_size,
                                 outside_distribution, process_count, process_share)
from toolkit.checkpoints import atomic_path, save_json
from toolkit.training_log import trim_log

CHECKPOINTS = "checkpoints"
LATEST = "latest"
LOG = "log.csv"
PARTIAL = ".partial"
RANDOM_STATE = "random_state.npz"


# ---------------------------------------------------------------- optimizer
@keras.saving.register_keras_serializable(package="keras_longctx")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup_steps``, then linear decay to
    ``min_ratio * peak`` over ``decay_steps`` (constant after)."""

    def __init__(self, peak, warmup_steps, decay_steps, min_ratio=0.0):
        self.peak, self.warmup_steps = float(peak), int(warmup_steps)
        self.decay_steps, self.min_ratio = int(decay_steps), float(min_ratio)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(1, self.warmup_steps)
        done = ops.clip((step - self.warmup_steps) / max(1, self.decay_steps), 0.0, 1.0)
        decayed = self.peak * (1.0 - (1.0 - self.min_ratio) * done)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps,
                "min_ratio": self.min_ratio}


def warmup_steps_for(total_steps, warmup_steps=None):
    """The warmup length: ``warmup_steps`` (default 5% of ``total_steps``, at least 1), at most
    ``total_steps - 1`` (0 for a single step)."""
    warmup = warmup_steps if warmup_steps is not None else max(1, total_steps // 20)
    return min(warmup, total_steps - 1) if total_steps > 1 else 0


def warmup_decay_schedule(peak, total_steps, warmup_steps=None, decay="cosine", min_ratio=0.1):
    """Linear warmup to ``peak``, then ``decay`` ('cosine' or 'linear') to ``min_ratio * peak``
    at ``total_steps``. Steps are batches (Keras' schedules count every batch, also under
    gradient accumulation)."""
    warmup = warmup_steps_for(total_steps, warmup_steps)
    decay_steps = max(1, total_steps - warmup)
    if decay == "cosine":
        return keras.optimizers.schedules.CosineDecay(initial_learning_rate=0.0, decay_steps=decay_steps,
                                                      alpha=min_ratio, warmup_target=peak, warmup_steps=warmup)
    if decay == "linear":
        return WarmupLinearDecay(peak, warmup, decay_steps, min_ratio)
    raise ValueError(f"decay={decay!r}: give 'cosine' or 'linear'")


def make_optimizer(learning_rate, total_steps, warmup_steps=None, decay="cosine", min_lr_ratio=0.1,
                   weight_decay=0.01, clipnorm=1.0, gradient_accumulation_steps=None, use_ema=False,
                   ema_momentum=0.99):
    """Keras AdamW with :func:`warmup_decay_schedule` (peak ``learning_rate``); gradient
    accumulation (``gradient_accumulation_steps`` >= 2 batches an update) and an exponential
    moving average of the weights (``use_ema``, copied into the model when ``fit`` ends) are
    Keras' own optimizer options."""
    schedule = warmup_decay_schedule(learning_rate, total_steps, warmup_steps, decay, min_lr_ratio)
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay, clipnorm=clipnorm,
                                  gradient_accumulation_steps=gradient_accumulation_steps or None,
                                  use_ema=use_ema, ema_momentum=ema_momentum)


# -------------------------------------------------------------- checkpoints
def _step_dir(root, step):
    return os.path.join(root, f"step-{step:08d}")


def _complete_checkpoints(root):
    """The complete checkpoint directories under ``root``, oldest step first."""
    return [d for d in sorted(glob.glob(os.path.join(root, "step-*")))
            if not d.endswith(PARTIAL) and os.path.exists(os.path.join(d, "state.json"))]


def _write_pointer(root, name):
    with atomic_path(os.path.join(root, LATEST)) as tmp:
        with open(tmp, "w") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())


def _prune(root, current, keep):
    """Remove leftover partial directories and all but the newest ``keep`` checkpoints (never ``current``)."""
    for partial in glob.glob(os.path.join(root, "step-*" + PARTIAL)):
        shutil.rmtree(partial, ignore_errors=True)
    others = [d for d in _complete_checkpoints(root) if d != current]
    for old in others[:max(0, len(others) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def _numbered(variables):
    return {f"v{i:04d}": np.asarray(v.numpy() if hasattr(v, "numpy") else v) for i, v in enumerate(variables)}


def random_states(model):
    """The model's random-generator states (Keras ``SeedGenerator``: the dropout layers' masks),
    which ``save_weights`` leaves out; a resumed run needs them to draw the same masks."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _load_random_states(model, path):
    """Assign the states of ``path/random_state.npz`` (a checkpoint without it: left as they are)."""
    file, states = os.path.join(path, RANDOM_STATE), random_states(model)
    if not os.path.exists(file):
        return
    with np.load(file) as arrays:
        keys = sorted(arrays.files)
        if len(keys) != len(states):
            raise ValueError(f"checkpoint {path} has {len(keys)} random-generator states (dropout layers), the "
                             f"model {len(states)}: resume with the model it was written with, or start a new run "
                             f"directory")
        for variable, key in zip(states, keys):
            variable.assign(arrays[key])


def save_checkpoint(model, optimizer, root, step, elapsed, keep=2, extra=None):
    """Write ``root/step-N/`` (weights, optimizer variables, random-generator states, state.json
    with ``step``, ``elapsed`` and ``extra``) atomically, point ``root/latest`` at it, keep the
    newest ``keep``; returns its path."""
    final = _step_dir(root, step)
    tmp = final + PARTIAL
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_weights(os.path.join(tmp, "model.weights.h5"))
    np.savez(os.path.join(tmp, "optimizer.npz"), **_numbered(optimizer.variables))
    if random_states(model):
        np.savez(os.path.join(tmp, RANDOM_STATE), **_numbered(random_states(model)))
    state = {"step": int(step), "elapsed": float(elapsed), "n_optimizer_variables": len(optimizer.variables)}
    save_json(dict(extra or {}, **state), os.path.join(tmp, "state.json"))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_pointer(root, os.path.basename(final))
    _prune(root, final, max(1, keep))
    return final


def latest_checkpoint(root):
    """The checkpoint ``root/latest`` names, or (pointer missing or stale) the newest complete
    one; None when there is none. Partial directories are never returned."""
    pointer = os.path.join(root, LATEST)
    if os.path.exists(pointer):
        with open(pointer) as f:
            named = os.path.join(root, f.read().strip())
        if os.path.exists(os.path.join(named, "state.json")) and not named.endswith(PARTIAL):
            return named
    complete = _complete_checkpoints(root)
    return complete[-1] if complete else None


def load_checkpoint(model, optimizer, path):
    """Load a :func:`save_checkpoint` directory into ``model`` (weights and random-generator
    states) and ``optimizer``; returns its state dict."""
    optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(path, "model.weights.h5"))
    with np.load(os.path.join(path, "optimizer.npz")) as arrays:
        keys = sorted(arrays.files)
        if len(keys) != len(optimizer.variables):
            raise ValueError(f"checkpoint {path} has {len(keys)} optimizer variables, the optimizer "
                             f"{len(optimizer.variables)}: resume with the optimizer settings it was written "
                             f"with (gradient accumulation, EMA), or start a new run directory")
        for variable, key in zip(optimizer.variables, keys):
            variable.assign(arrays[key])
    _load_random_states(model, path)
    with open(os.path.join(path, "state.json")) as f:
        return json.load(f)


def sync_state(model):
    """JAX trains on stateless copies: write them back before reading variables."""
    if getattr(model, "_jax_state", None) is not None and hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


# ------------------------------------------------------------------ the run
def _to_stderr(message):
    print(message, file=sys.stderr)


class _StepLogger(keras.callbacks.Callback):
    """Adds the step and the learning rate to each period's logs (before the CSV logger)."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        sync_state(self.model)
        if logs is not None:
            logs["step"] = self.run.step
            logs["lr"] = float(np.asarray(self.run.optimizer.learning_rate))


class _Checkpointer(keras.callbacks.Callback):
    """Counts the batches and stops at ``total_steps`` or after ``stop_after`` steps of this run.
    Writes a checkpoint every ``checkpoint_every`` steps and where it stops, after the period's
    CSV row (it comes after the CSVLogger): a kill between the two leaves a row past the last
    checkpoint, which the resumed run cuts and logs again. A checkpoint step inside a period
    (after a resume between checkpoints) is written when its batch ends."""

    def __init__(self, run):
        super().__init__()
        self.run, self.run_steps, self.stopping = run, 0, False

    def on_train_batch_end(self, batch, logs=None):
        run = self.run
        run.step += 1
        self.run_steps += 1
        self.stopping = run.step >= run.total_steps or (run.stop_after is not None
                                                         and self.run_steps >= run.stop_after)
        if self.stopping:
            self.model.stop_training = True
        elif run.step % run.checkpoint_every == 0 and batch + 1 < run.checkpoint_every:
            run.save()

    def on_epoch_end(self, epoch, logs=None):
        if self.stopping or self.run.step % self.run.checkpoint_every == 0:
            self.run.save()


def _local_stream(batches_from):
    """``batches_from`` with each global batch cut to this process's rows."""
    return lambda step: (process_share(batch) for batch in batches_from(step))


class TrainingRun:
    """One resumable training run of a compiled ``model`` in ``out`` (see the module docstring).

    ``restore(resume)`` loads the latest checkpoint when asked; ``fit(batches_from)`` trains
    from ``step`` to ``total_steps`` with ``model.fit``, one logging period (a CSV row, an
    epoch of Keras' progress output) every ``checkpoint_every`` steps, stopping early after
    ``stop_after`` steps of this run (the checkpoint is written there). ``report``: where
    the resume messages go (default stderr; None: nowhere). One batch a train step
    (``steps_per_execution`` 1)."""

    def __init__(self, model, out, total_steps, checkpoint_every, keep=2, stop_after=None, report=_to_stderr):
        self.model, self.out, self.total_steps = model, out, int(total_steps)
        self.checkpoint_every, self.keep, self.stop_after = int(checkpoint_every), keep, stop_after
        self.report = report or (lambda message: None)
        self.step, self.elapsed_before, self.started = 0, 0.0, time.time()
        self.resumed_from, self.log_path = None, os.path.join(out, LOG)
        self.checkpoints = os.path.join(out, CHECKPOINTS)
        check_distributed_model(model)

    @property
    def optimizer(self):
        return self.model.optimizer

    @property
    def finished(self):
        return self.step >= self.total_steps

    def elapsed(self):
        """Training seconds so far, over every resumed part of the run."""
        return self.elapsed_before + time.time() - self.started

    def save(self):
        """Write a checkpoint (process 0 only, in a multi-process run; every process holds the
        replicated values, so none of them waits for the others)."""
        sync_state(self.model)
        if not is_chief():
            return None
        with outside_distribution():
            return save_checkpoint(self.model, self.optimizer, self.checkpoints, self.step, self.elapsed(), self.keep)

    def restore(self, resume=True):
        """With ``resume``: load the latest checkpoint (weights, optimizer, step, elapsed time) and
        cut the log back to its step; returns the step training starts at."""
        self.started = time.time()
        path = latest_checkpoint(self.checkpoints) if resume else None
        if resume and path is None:
            self.report("no checkpoint to resume from: starting fresh")
        if path is not None:
            state = load_checkpoint(self.model, self.optimizer, path)
            self.step, self.elapsed_before, self.resumed_from = int(state["step"]), float(state["elapsed"]), path
            trim_log(self.log_path, self.step)
            self.report(f"resumed from {path} at step {self.step} (optimizer.iterations="
                        f"{int(np.asarray(self.optimizer.iterations))})")
        return self.step

    def callbacks(self):
        """The step logger, Keras' CSVLogger (appending after a resume) and the checkpointer, in this order."""
        logger = [keras.callbacks.CSVLogger(self.log_path, append=self.resumed_from is not None)] if is_chief() else []
        return [_StepLogger(self)] + logger + [_Checkpointer(self)]

    def fit(self, batches_from, validation_data=None, validation_batch_size=None, verbose=2, callbacks=()):
        """Train from ``step`` on ``batches_from(step)``; ``verbose``: Keras' (1 a progress bar, 2 a
        line a period). Returns the step reached. A run already at ``total_steps`` only gets its
        final weights (the EMA's, with ``use_ema``). In a multi-process run each process feeds
        its own rows of every global batch (and of ``validation_data``); ``fit`` joins them."""
        os.makedirs(self.out, exist_ok=True)
        validation_data = evaluation_share(validation_data)
        if process_count() > 1:
            batches_from = _local_stream(batches_from)
            if validation_batch_size is not None:
                validation_batch_size = local_batch_size(validation_batch_size)
        if self.finished:
            self.optimizer.finalize_variable_values(self.model.trainable_variables)
            return self.step
        every = self.checkpoint_every
        self.model.fit(batches_from(self.step), steps_per_epoch=every, epochs=math.ceil(self.total_steps / every),
                       initial_epoch=self.step // every, validation_data=validation_data,
                       validation_batch_size=validation_batch_size, callbacks=self.callbacks() + list(callbacks),
                       verbose=verbose, shuffle=False)  # a stream: its order is the data position
        return self.step


__all__ = ["make_optimizer", "warmup_decay_schedule", "warmup_steps_for", "WarmupLinearDecay", "save_checkpoint",
           "latest_checkpoint", "load_checkpoint", "random_states", "sync_state", "TrainingRun"]
