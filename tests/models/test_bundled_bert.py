"""The bundled Chinese BERT (models/bert_zh_model): its files, its vocabulary against the
standard one, Hugging Face reading the same weights, and the held-out figure its card quotes."""

import json
import os

import numpy as np
import pytest

from models.mlm_training import BUNDLED_BERT_DIR, build_mlm_model, load_mlm_model
from toolkit.corpora import chinese_bert_vocab
from toolkit.mlm_data import FIRST_REGULAR, StreamSettings, held_out_batch, prepare_data

FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "MODEL_CARD.md", "loss.png")


def bundled_config():
    with open(os.path.join(BUNDLED_BERT_DIR, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def lines(path):
    """The lines of a vocab.txt (split at newlines only: some tokens are characters that
    str.splitlines also breaks at)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read().rstrip("\n").split("\n")


def test_files_and_size():
    for name in FILES:
        assert os.path.isfile(os.path.join(BUNDLED_BERT_DIR, name)), name
    size = sum(os.path.getsize(os.path.join(BUNDLED_BERT_DIR, name)) for name in FILES)
    assert size <= 25 * 2**20, f"the bundled BERT is {size / 2**20:.1f} MiB, over the 25 MB budget"
    config = bundled_config()
    assert config["max_position_embeddings"] == 128 and config["training"]["steps"] > 0


def test_vocabulary_is_the_standard_one_cut():
    """Row i of the model is token keep_tokens[i] of Google's Chinese vocab.txt, the same string."""
    config = bundled_config()
    standard = lines(chinese_bert_vocab())
    cut = lines(os.path.join(BUNDLED_BERT_DIR, "vocab.txt"))
    assert len(cut) == config["vocab_size"] == len(config["keep_tokens"])
    assert [standard[i] for i in config["keep_tokens"]] == cut
    assert cut[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_hugging_face_reads_the_same_weights():
    """Every id (0 included) and a padded row: BertForMaskedLM gives our logits."""
    import torch
    import transformers

    model, _ = load_mlm_model()
    reference = transformers.BertForMaskedLM.from_pretrained(BUNDLED_BERT_DIR).eval()
    vocab = bundled_config()["vocab_size"]
    ids = np.arange(vocab).reshape(-1, 10)[:, :10][: vocab // 10]
    rows = np.concatenate([np.full((ids.shape[0], 1), 2), ids[:, :8], np.full((ids.shape[0], 1), 3)], axis=1)
    rows = rows[:: max(1, len(rows) // 48)]  # ids spread over the whole vocabulary, 0 among them
    rows[-1, 6:] = 0  # padding
    mask = (rows != 0).astype("int64")
    mask[:, 0] = 1
    with torch.no_grad():
        expected = reference(torch.tensor(rows), attention_mask=torch.tensor(mask)).logits.numpy()
    got = model.predict([rows, np.zeros_like(rows)], verbose=0)
    keep = mask.astype(bool)
    np.testing.assert_allclose(got[keep], expected[keep], atol=2e-4)


def test_held_out_accuracy_is_the_cards():
    """The held-out evaluation of the training run, redone on the bundled weights."""
    config = bundled_config()
    training = config["training"]
    data = prepare_data(["peoples-daily", "reviews"], chinese_bert_vocab(), config["max_position_embeddings"],
                        training.get("held_out", 0.02), seed=0)
    assert list(data.vocabulary.keep_tokens) == config["keep_tokens"]
    settings = StreamSettings(batch_size=32, vocab_size=data.vocabulary.size, head="masked")
    inputs, labels = held_out_batch(data.held_out, settings, 512)
    model = build_mlm_model({key: config[key] for key in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                          "intermediate_size", "max_position_embeddings")},
                            data.vocabulary.size)
    model.transformer.load_weights_from_checkpoint(BUNDLED_BERT_DIR)
    logits = model.predict(list(inputs), batch_size=64, verbose=0)
    hits, counted = logits.argmax(-1) == labels, labels != 0
    # the run's figure: Keras' mean over batches of 32 of each batch's accuracy
    accuracy = float(np.mean([hits[start:start + 32][counted[start:start + 32]].mean()
                              for start in range(0, len(labels), 32)]))
    assert accuracy == pytest.approx(training["final_held_out_accuracy"], abs=2e-3)
    # against the guess that reads no context: the most frequent training token at every masked position
    counts = np.bincount(data.train.ravel(), minlength=data.vocabulary.size)
    counts[:FIRST_REGULAR] = 0
    unigram = float(np.mean(labels[counted] == counts.argmax()))
    assert accuracy > 2 * unigram, (accuracy, unigram)
