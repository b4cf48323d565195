"""models/training.py, the generic resumable training of any Keras model: a few steps lower
the loss; a run killed after N steps and resumed equals an uninterrupted run (weights and
CSV rows), also with gradient accumulation and EMA; checkpoints are written atomically (a
leftover partial directory is ignored); the optimizer options reach Keras' AdamW; the
warmup + decay schedules; the log is cut back to the checkpoint on resume; the loss PNG."""

import csv
import doctest
import json
import os

import keras
import numpy as np
import pytest

from models import training
from models.training import TrainingRun, latest_checkpoint, make_optimizer, save_checkpoint, warmup_decay_schedule
from toolkit.training_log import Panel, plot_log, trim_log

STEPS, EVERY = 6, 2
TRUE_WEIGHTS = np.linspace(-1.0, 1.0, 4).astype("float32")[:, None]


class Killed(Exception):
    """What the test's "kill" raises in the middle of ``fit``."""


class KillAt(keras.callbacks.Callback):
    def __init__(self, run, step):
        super().__init__()
        self.run, self.step = run, step

    def on_train_batch_end(self, batch, logs=None):
        if self.run.step == self.step:
            raise Killed(f"killed at step {self.step}")


def batches_from(step):
    """The stream from batch ``step``: batch ``s`` depends on ``s`` only."""
    while True:
        rng = np.random.default_rng(step)
        x = rng.normal(size=(8, 4)).astype("float32")
        yield x, np.tanh(x @ TRUE_WEIGHTS) + 0.1
        step += 1


def tiny_model(seed=0, **optimizer_options):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(0.05, STEPS, warmup_steps=1, **optimizer_options), loss="mse",
                  metrics=["mae"])
    return model


def run_training(out, kill_at=None, stop_after=None, resume=False, seed=0, **optimizer_options):
    """A TrainingRun of :func:`tiny_model` in ``out``: (model, run)."""
    model = tiny_model(seed, **optimizer_options)
    run = TrainingRun(model, str(out), STEPS, EVERY, stop_after=stop_after, report=None)
    run.restore(resume)
    extra = [KillAt(run, kill_at)] if kill_at else []
    if kill_at:
        with pytest.raises(Killed):
            run.fit(batches_from, verbose=0, callbacks=extra)
    else:
        run.fit(batches_from, verbose=0)
    return model, run


def log_rows(out):
    with open(os.path.join(out, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def assert_same_rows(rows, expected):
    assert [row.keys() for row in rows] == [row.keys() for row in expected]
    for row, want in zip(rows, expected):
        for key, value in want.items():
            if value.replace(".", "").replace("-", "").replace("e", "").isdigit():
                assert float(row[key]) == pytest.approx(float(value), rel=1e-6, abs=1e-7), (key, row, want)
            else:
                assert row[key] == value, (key, row, want)


def test_a_few_steps_lower_the_loss(tmp_path):
    model = tiny_model()
    x, y = next(batches_from(1000))
    before = float(model.evaluate(x, y, verbose=0)[0])
    run = TrainingRun(model, str(tmp_path), STEPS, EVERY, report=None)
    assert run.restore(resume=True) == 0 and run.fit(batches_from, verbose=0) == STEPS
    assert float(model.evaluate(x, y, verbose=0)[0]) < 0.7 * before
    rows = log_rows(tmp_path)
    assert [int(row["step"]) for row in rows] == [2, 4, 6] and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert os.path.basename(latest_checkpoint(run.checkpoints)) == "step-00000006"
    assert sorted(os.listdir(run.checkpoints)) == ["latest", "step-00000004", "step-00000006"]  # keep=2


@pytest.mark.parametrize("optimizer_options", [{}, {"gradient_accumulation_steps": 3, "use_ema": True,
                                                    "ema_momentum": 0.5}], ids=["adamw", "accumulation+ema"])
def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, optimizer_options):
    straight, _ = run_training(tmp_path / "straight", **optimizer_options)
    killed = tmp_path / "killed"
    run_training(killed, kill_at=5, **optimizer_options)  # after the step-4 checkpoint and the step-4 row
    assert json.load(open(os.path.join(latest_checkpoint(str(killed / "checkpoints")), "state.json")))["step"] == 4
    resumed, run = run_training(killed, resume=True, seed=1, **optimizer_options)  # other initial weights
    assert run.resumed_from.endswith("step-00000004") and run.step == STEPS
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert_same_rows(log_rows(killed), log_rows(tmp_path / "straight"))


def assert_resumed_equals_straight(tmp_path, resumed_from):
    straight, _ = run_training(tmp_path / "straight")
    resumed, run = run_training(tmp_path / "killed", resume=True, seed=1)
    assert run.resumed_from.endswith(resumed_from)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert_same_rows(log_rows(tmp_path / "killed"), log_rows(tmp_path / "straight"))


def test_killed_between_checkpoints_resumes_from_the_last_one(tmp_path):
    run_training(tmp_path / "killed", kill_at=3)  # step 3 is lost: the run goes on from step 2
    assert_resumed_equals_straight(tmp_path, "step-00000002")


def test_killed_between_the_log_row_and_the_checkpoint(tmp_path, monkeypatch):
    """The step-4 row is written but not its checkpoint: the resumed run cuts the row and logs it again."""
    save = training.save_checkpoint

    def killed_at_4(model, optimizer, root, step, *args, **kwargs):
        if step == 4:
            raise Killed("killed while writing the step-4 checkpoint")
        return save(model, optimizer, root, step, *args, **kwargs)

    monkeypatch.setattr(training, "save_checkpoint", killed_at_4)
    with pytest.raises(Killed):
        run_training(tmp_path / "killed")
    monkeypatch.undo()
    assert [int(row["step"]) for row in log_rows(tmp_path / "killed")] == [2, 4]
    assert_resumed_equals_straight(tmp_path, "step-00000002")


def test_stop_after_writes_a_checkpoint_where_it_stops(tmp_path):
    """Off the checkpoint grid and mid-accumulation (an update every 3 batches): the accumulated
    gradients and the EMA come back too."""
    options = {"gradient_accumulation_steps": 3, "use_ema": True}
    straight, _ = run_training(tmp_path / "straight", **options)
    _, run = run_training(tmp_path / "stopped", stop_after=1, **options)
    assert run.step == 1 and not run.finished and latest_checkpoint(run.checkpoints).endswith("step-00000001")
    resumed, run = run_training(tmp_path / "stopped", resume=True, seed=1, **options)
    assert run.finished
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model, run = run_training(tmp_path, stop_after=2)
    root = run.checkpoints
    os.makedirs(os.path.join(root, "step-00000009.partial"))  # a write killed half-way
    with open(os.path.join(root, "step-00000009.partial", "state.json"), "w") as f:
        f.write('{"step": 9, "elapsed": 0}')
    assert latest_checkpoint(root).endswith("step-00000002")
    os.remove(os.path.join(root, "latest"))  # even without the pointer the partial one is not taken
    assert latest_checkpoint(root).endswith("step-00000002")
    monkeypatch.setattr(training.np, "savez", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_checkpoint(model, model.optimizer, root, 4, 1.0)
    assert latest_checkpoint(root).endswith("step-00000002") and not os.path.exists(os.path.join(root, "step-00000004"))
    monkeypatch.undo()
    save_checkpoint(model, model.optimizer, root, 4, 1.0)
    assert sorted(os.listdir(root)) == ["latest", "step-00000002", "step-00000004"]  # partials removed
    _, resumed = run_training(tmp_path, resume=True)
    assert resumed.resumed_from.endswith("step-00000004")


def test_optimizer_options_reach_keras():
    plain = make_optimizer(1e-3, 100)
    assert isinstance(plain, keras.optimizers.AdamW) and plain.clipnorm == 1.0 and plain.weight_decay == 0.01
    assert not plain.use_ema and plain.gradient_accumulation_steps is None
    both = make_optimizer(1e-3, 100, gradient_accumulation_steps=4, use_ema=True, ema_momentum=0.9,
                          weight_decay=0.1, clipnorm=None)
    assert both.gradient_accumulation_steps == 4 and both.use_ema and both.ema_momentum == 0.9
    assert both.weight_decay == 0.1 and both.clipnorm is None
    model = tiny_model(gradient_accumulation_steps=2)
    x, y = next(batches_from(0))
    start = [np.array(w) for w in model.get_weights()]
    model.train_on_batch(x, y)  # accumulated, not applied
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), start))
    model.train_on_batch(x, y)
    assert not np.array_equal(model.get_weights()[0], start[0])


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_warmup_then_decay(decay):
    schedule = warmup_decay_schedule(1.0, 100, warmup_steps=10, decay=decay, min_ratio=0.1)
    values = [float(np.asarray(schedule(step))) for step in (0, 5, 10, 55, 100, 150)]
    assert values[:3] == pytest.approx([0.0, 0.5, 1.0])
    assert values[3] == pytest.approx(0.55, abs=1e-6)  # half-way: cosine and linear agree
    assert values[4:] == pytest.approx([0.1, 0.1])
    assert training.warmup_steps_for(100) == 5 and training.warmup_steps_for(1) == 0
    with pytest.raises(ValueError, match="decay='step': give 'cosine' or 'linear'"):
        warmup_decay_schedule(1.0, 100, decay="step")


def test_resume_cuts_the_log_back_to_the_checkpoint(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,step\n0,1.0,2\n1,0.5,4\n2,0.25,6\n")
    assert trim_log(str(log), 4) == 1
    assert log.read_text().splitlines() == ["epoch,loss,step", "0,1.0,2", "1,0.5,4"]
    no_steps = tmp_path / "other.csv"
    no_steps.write_text("epoch,loss\n0,1.0\n")
    assert trim_log(str(no_steps), 0) == 0 and no_steps.read_text() == "epoch,loss\n0,1.0\n"


def test_the_loss_png(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss,step\n0,1.0,NA,2\n1,0.5,0.6,4\n")
    png = plot_log(str(log), str(tmp_path / "loss.png"), [Panel("run", "nats", ("loss", "val_loss"))])
    assert png and os.path.getsize(png) > 1000
    assert plot_log(str(tmp_path / "missing.csv"), str(tmp_path / "none.png"), []) is None


def test_docstring_example():
    assert doctest.testmod(training).failed == 0
