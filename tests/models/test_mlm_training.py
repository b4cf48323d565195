"""models/mlm_training.py: the MLM head at the masked positions (the default) is the full head
there (same logits, loss and training step; its saved folder the full BERT); a few steps of
masked-LM pretraining lower the loss; a run killed
and resumed equals an uninterrupted one (weights within 1e-6, the same CSV rows; with dropout,
gradient accumulation and EMA too); a resume directory of another configuration, or a
checkpoint of another vocabulary, is refused in one line; the saved model folder loads back
with its tokenizer. Tiny models on a few thousand characters of People's Daily."""

import csv
import json
import os
import shutil

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file

from models.mlm_training import (build_mlm_model, compile_mlm_model, load_mlm_model, masked_lm_loss,
                                 masked_token_accuracy, pretrain_mlm, save_mlm_model)
from tests.toolkit.assets import chinese_bert_vocab, peoples_daily_sentences
from toolkit.mlm_data import (CLS, FIRST_REGULAR, PAD, SPECIAL_TOKENS, CorpusVocabulary, PretrainOptions, mask_slots,
                              mask_tokens, masked_positions)


class Killed(Exception):
    """What the test's kill raises in the middle of training."""


class KillAfter(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.batches:
            raise Killed(f"killed after {self.batches} batches")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("mlm") / "corpus.txt"
    path.write_text("\n".join(peoples_daily_sentences(3000)) + "\n", encoding="utf-8")
    return str(path)


def tiny(corpus, out, **overrides):
    settings = dict(corpus=[corpus], out=str(out), vocab=chinese_bert_vocab(), layers=1, hidden=32, heads=2,
                    intermediate=64, max_length=32, dropout=0.0, steps=6, batch_size=8, eval_every=2, held_out=0.1,
                    eval_sequences=8, lr=5e-3, quiet=True)
    return PretrainOptions(**{**settings, **overrides})


def log_rows(out):
    with open(os.path.join(out, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_the_loss_and_accuracy_count_only_selected_positions():
    logits = np.zeros((1, 3, 4), "float32")
    logits[0, 0, 2] = logits[0, 1, 3] = logits[0, 2, 1] = 5.0
    targets = np.array([[2, 0, 1]])  # position 1 not selected: its wrong argmax does not count
    assert float(masked_token_accuracy(targets, logits)) == pytest.approx(1.0)
    expected = -np.log(np.exp(5.0) / (np.exp(5.0) + 3))
    assert float(masked_lm_loss(targets, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(masked_lm_loss(np.zeros((1, 3), "int32"), logits)) == 0.0


TINY_BERT = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 16, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}


def _masked_batch(vocab_size=60, batch=3, length=16):
    rng = np.random.default_rng(0)
    ids = rng.integers(FIRST_REGULAR, vocab_size, (batch, length)).astype(np.int32)
    ids[:, 0], ids[1, 12:] = CLS, PAD  # a padded row too
    inputs, targets = mask_tokens(ids, rng, vocab_size)
    return inputs, targets, *masked_positions(targets, mask_slots(length))


def test_the_masked_head_is_the_full_head_at_the_selected_positions(tmp_path):
    """Same weights (shared layers), same logits there, same loss; the saved folder is the full BERT."""
    model = build_mlm_model(TINY_BERT, 60)
    full = model.transformer.model
    assert [tensor.name.split(":")[0] for tensor in model.inputs][-1] == "Input-Masked-Positions"
    assert len(model.weights) == len(full.weights) and {id(w) for w in model.weights} == {id(w) for w in full.weights}
    inputs, targets, positions, labels = _masked_batch()
    segments = np.zeros_like(inputs)
    everywhere = np.asarray(full([inputs, segments], training=False))
    at_positions = np.asarray(model([inputs, segments, positions], training=False))
    np.testing.assert_allclose(at_positions, np.take_along_axis(everywhere, positions[..., None], axis=1), atol=1e-5)
    assert float(masked_lm_loss(labels, at_positions)) == pytest.approx(float(masked_lm_loss(targets, everywhere)),
                                                                        abs=1e-5)
    vocabulary = CorpusVocabulary(list(SPECIAL_TOKENS) + [f"t{i}" for i in range(55)], list(range(60)))
    folder = save_mlm_model(model, str(tmp_path / "model"), vocabulary)
    loaded, _ = load_mlm_model(folder)
    np.testing.assert_allclose(loaded.predict([inputs, segments], verbose=0), everywhere, atol=1e-5)


def test_both_heads_train_alike():
    """From the same weights on the same batch, a few AdamW steps: the same losses, going down."""
    losses = {}
    for head in ("masked", "all"):
        keras.utils.set_random_seed(3)
        model = compile_mlm_model(build_mlm_model(dict(TINY_BERT, hidden_dropout_prob=0.0,
                                                       attention_probs_dropout_prob=0.0), 60, head=head),
                                  tiny("unused", "unused", steps=10, warmup=0))
        inputs, targets, positions, labels = _masked_batch()
        features = [inputs, np.zeros_like(inputs)] + ([positions] if head == "masked" else [])
        losses[head] = [float(model.train_on_batch(features, labels if head == "masked" else targets,
                                                   return_dict=True)["loss"]) for _ in range(4)]
    np.testing.assert_allclose(losses["masked"], losses["all"], rtol=1e-4)
    assert losses["masked"][-1] < losses["masked"][0] - 0.05, losses


def test_an_unknown_head_is_refused():
    with pytest.raises(ValueError, match="head='some': give 'masked' or 'all'"):
        build_mlm_model(TINY_BERT, 60, head="some")


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A run of 40 steps (the MLM head at the masked positions): (its directory, its summary)."""
    out = tmp_path_factory.mktemp("trained")
    return out, pretrain_mlm(tiny(corpus, out, steps=40, eval_every=10, lr=1e-2, head="masked"))


@pytest.fixture(scope="module")
def stopped(corpus, tmp_path_factory):
    """A run directory stopped after its first step (checkpoint step-00000001)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    assert pretrain_mlm(tiny(corpus, out, stop_after=1)) is None
    return out


def test_a_few_steps_lower_the_loss(trained):
    out, summary = trained
    rows = log_rows(out)
    assert [int(row["step"]) for row in rows] == [10, 20, 30, 40]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"]) - 0.3, rows
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"]) - 0.1, rows
    assert summary["steps"] == 40 and summary["final_held_out_loss"] == pytest.approx(float(rows[-1]["val_loss"]))
    model, tokenizer = load_mlm_model(str(out / "model"))
    assert tokenizer.vocab_size == summary["vocab_size"] == model.get_layer("Embedding-Token").input_dim
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"] and config["training"] == summary
    assert len(config["keep_tokens"]) == summary["vocab_size"] and (out / "loss.png").stat().st_size > 1000


def run_killed_and_resumed(corpus, tmp_path, **overrides):
    straight = tmp_path / "straight"
    pretrain_mlm(tiny(corpus, straight, **overrides))
    killed = tmp_path / "killed"
    with pytest.raises(Killed):  # after the step-4 checkpoint: step 5 is lost
        pretrain_mlm(tiny(corpus, killed, **overrides), callbacks=[KillAfter(5)])
    assert (killed / "checkpoints" / "latest").read_text().strip() == "step-00000004"
    assert not (killed / "model").exists()
    pretrain_mlm(tiny(corpus, killed, resume=True, **overrides))
    return straight, killed


def test_killed_and_resumed_equals_uninterrupted(corpus, tmp_path):
    """With dropout (its random state is in the checkpoint), gradient accumulation and EMA."""
    straight, killed = run_killed_and_resumed(corpus, tmp_path, dropout=0.1, grad_accum=2, ema=0.9)
    want, got = (load_file(str(d / "model" / "model.safetensors")) for d in (straight, killed))
    assert sorted(want) == sorted(got)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)
    rows, expected = log_rows(killed), log_rows(straight)
    assert [row.keys() for row in rows] == [row.keys() for row in expected] and len(rows) == 3
    for row, want_row in zip(rows, expected):
        for key, value in want_row.items():
            assert float(row[key]) == pytest.approx(float(value), rel=1e-6, abs=1e-7), (key, row, want_row)


@pytest.mark.parametrize("change, message", [
    ({"hidden": 48, "heads": 2}, "hidden_size is 48 here but 32 in {out}/train_config.json: give --hidden 32, "
                                 "or a new --out"),
    ({"max_length": 24}, "max_position_embeddings is 24 here but 32 in {out}/train_config.json: give --max-length 32"),
    ({"corpus": "OTHER"}, "vocabulary is "),
    ({"batch_size": 4}, "batch_size is 4 here but 8 in {out}/train_config.json: give --batch-size 8"),
    ({"head": "all"}, "mlm_head is all here but masked in {out}/train_config.json: give --mlm-head masked"),
    ({"OLD": True}, "mlm_head is masked here but all in {out}/train_config.json: give --mlm-head all"),
], ids=["hidden", "max-length", "vocabulary", "batch-size", "mlm-head", "run-before-mlm-head"])
def test_a_resume_dir_of_another_configuration_is_refused(corpus, stopped, tmp_path, change, message):
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    if change.pop("OLD", False):  # a run started before --mlm-head: its logits were computed everywhere
        saved = json.loads((out / "train_config.json").read_text())
        del saved["mlm_head"]
        (out / "train_config.json").write_text(json.dumps(saved))
    if change.get("corpus") == "OTHER":
        change = {"corpus": other_corpus(tmp_path)}
    before = {path: (out / path).stat().st_mtime_ns for path in ("train_config.json", "vocab.txt")}
    with pytest.raises(ValueError) as error:
        pretrain_mlm(tiny(**{"corpus": corpus, **change}, out=out, resume=True))
    assert str(error.value).startswith(f"--resume {out}: " + message.format(out=out)), str(error.value)
    assert "\n" not in str(error.value)
    assert before == {path: (out / path).stat().st_mtime_ns for path in before}  # nothing rewritten


def other_corpus(tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(peoples_daily_sentences(6000)[30:]) + "\n", encoding="utf-8")
    return str(other)


def test_a_checkpoint_of_another_vocabulary_is_refused(stopped, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    os.remove(out / "train_config.json")  # only the checkpoint is left to tell
    with pytest.raises(ValueError) as error:
        pretrain_mlm(tiny(other_corpus(tmp_path), out, resume=True))
    assert str(error.value).startswith(f"checkpoint {out}/checkpoints/step-00000001 has a token embedding of ")
    assert "rows but the vocabulary of this --corpus and --vocab has " in str(error.value)


def test_a_run_directory_is_not_started_over(corpus, stopped):
    with pytest.raises(ValueError, match=r"already holds a run \(step-00000001\): add --resume to continue it"):
        pretrain_mlm(tiny(corpus, stopped))


def test_the_model_folder_loads_back_and_refuses_another_vocab(trained, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained[0] / "model", folder)
    model, tokenizer = load_mlm_model(str(folder))
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab == (trained[0] / "vocab.txt").read_text(encoding="utf-8").splitlines()
    sentence = peoples_daily_sentences(3000)[0]
    ids = tokenizer.encode(sentence)[0][:32]
    assert ids[0] == vocab.index("[CLS]") == 2 and all(vocab[i] == t for i, t in zip(ids, tokenizer.tokenize(sentence)))
    x = np.asarray([ids + [0] * (32 - len(ids))])
    assert model.predict([x, np.zeros_like(x)], verbose=0).shape == (1, 32, len(vocab))
    (folder / "vocab.txt").write_text("\n".join(vocab[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"has {len(vocab) - 1} tokens but the embedding of .* has {len(vocab)} rows"):
        load_mlm_model(str(folder))


def test_the_model_folder_is_a_hugging_face_bert(trained):
    """transformers reads the folder as it is: the same tokens and (near) the same logits."""
    import torch
    import transformers

    folder = str(trained[0] / "model")
    model, tokenizer = load_mlm_model(folder)
    reference = transformers.BertForMaskedLM.from_pretrained(folder).eval()
    text = "新华社北京电今天是一九九七年的最后一天ABC"
    ids = tokenizer.encode(text)[0]
    assert transformers.BertTokenizer.from_pretrained(folder)(text)["input_ids"] == ids
    x = np.asarray([ids])
    with torch.no_grad():
        expected = reference(torch.tensor(x)).logits.numpy()
    np.testing.assert_allclose(model.predict([x, np.zeros_like(x)], verbose=0), expected, atol=1e-4)
