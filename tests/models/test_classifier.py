"""models/classifier.py and models/finetuning.py: mean pooling leaves the padding out, a few
steps lower the loss, the saved classifier reopens with ``keras.saving.load_model`` in a fresh
process with the same predictions, layer-wise decay gives the embeddings a smaller update than
the top layer (and plain AdamW does not), and a ``.keras`` BERT serves as the backbone. Run on
both backends (KERAS_BACKEND=jax too)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from models import build_transformer_model
from models.classifier import LayerwiseAdamW, build_classifier, classifier_optimizer, compile_classifier, layer_depth
from tests.helpers import ROOT, TINY_BERT, padded_ids

CHILD = r"""
import sys
import keras
import numpy as np
import models  # registers the package's classes
from models.transformer_model import TransformerModel

model = keras.saving.load_model(sys.argv[1])
assert isinstance(model, TransformerModel) and model.transformer.model_type == "bert", type(model)
inputs = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict([inputs["tokens"], inputs["segments"]], verbose=0))
"""


def _batch(lengths, length=12, seed=0):
    tokens = padded_ids(len(lengths), length, TINY_BERT["vocab_size"], lengths, seed=seed, low=4)
    return [tokens, np.zeros_like(tokens)]


def test_mean_pooling_leaves_the_padding_out():
    model = build_classifier(TINY_BERT, None, num_classes=3, pooling="mean")
    pooled = keras.Model(model.inputs, [model.get_layer("Classifier-Mean-Pooling").output,
                                        model.get_layer("Transformer-1-FeedForward-Norm").output])
    inputs = _batch([12, 5, 2])
    vectors, sequence = (keras.ops.convert_to_numpy(x) for x in pooled(inputs))
    for row, length in enumerate([12, 5, 2]):
        np.testing.assert_allclose(vectors[row], sequence[row, :length].mean(axis=0), atol=1e-5)
    longer = [np.pad(inputs[0], ((0, 0), (0, 20))), np.zeros((3, 32), "int32")]  # more padding: same predictions
    np.testing.assert_allclose(model.predict(longer, verbose=0), model.predict(inputs, verbose=0), atol=1e-5)


def test_cls_pooling_reads_the_first_token_and_hierarchical_positions_read_past_the_table():
    model = build_classifier(TINY_BERT, None, num_classes=2, pooling="cls", hierarchical=True)
    long_text = _batch([100, 70], length=100)  # TINY_BERT has 64 positions
    probabilities = model.predict(long_text, verbose=0)
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(-1), 1, atol=1e-5)


def test_a_few_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    model = build_classifier(TINY_BERT, None, num_classes=2, pooling="mean", dropout=0.0)
    compile_classifier(model, classifier_optimizer(3e-3, total_steps=12, warmup_steps=2))
    inputs, labels = _batch([12, 9, 7, 5, 11, 3, 8, 6]), np.array([0, 1, 0, 1, 1, 0, 0, 1])
    first = model.evaluate(inputs, labels, verbose=0, return_dict=True)["loss"]
    for _ in range(12):
        model.train_on_batch(inputs, labels)
    assert model.evaluate(inputs, labels, verbose=0, return_dict=True)["loss"] < 0.5 * first


def test_the_saved_classifier_reopens_in_a_fresh_process_with_the_same_predictions(tmp_path):
    from models.finetuning import save_model_folder

    model = build_classifier(TINY_BERT, None, num_classes=3, pooling="mean")
    compile_classifier(model, classifier_optimizer(1e-3, 4, layerwise_decay=0.8, num_layers=2))
    inputs = _batch([12, 5, 2])
    model.train_on_batch(inputs, np.array([0, 1, 2]))  # a trained optimizer: it must not be needed to reopen
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n")
    (tmp_path / "run").mkdir()
    save_model_folder(model, str(tmp_path / "run"), str(vocab), {"label_names": ["a", "b", "c"]})
    np.savez(tmp_path / "inputs.npz", tokens=inputs[0], segments=inputs[1])
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "run" / "model.keras"), str(tmp_path / "inputs.npz"),
                           str(tmp_path / "reloaded.npy")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Skipping variable loading" not in proc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "reloaded.npy"), model.predict(inputs, verbose=0), atol=1e-6)
    assert json.loads((tmp_path / "run" / "classifier.json").read_text())["label_names"] == ["a", "b", "c"]


def test_layer_depths():
    assert [layer_depth(path, 2) for path in ("Embedding-Token/embeddings", "Embedding-Norm/gamma",
                                              "Transformer-0-FeedForward/output/kernel",
                                              "Transformer-1-MultiHeadSelfAttention-Norm/beta",
                                              "Classifier-Dense/kernel")] == [0, 0, 1, 2, 3]


def _update_ratios(optimizer):
    """One step from the same start: the median non-zero |change| of each weight over the learning rate."""
    keras.utils.set_random_seed(0)
    model = build_classifier(TINY_BERT, None, num_classes=2)
    compile_classifier(model, optimizer)
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    model.train_on_batch(_batch([12, 9, 7, 5]), np.array([0, 1, 0, 1]))
    ratios = {}
    for variable in model.trainable_variables:
        change = np.abs(keras.ops.convert_to_numpy(variable) - before[variable.path])
        ratios[variable.path] = float(np.median(change[change > 0])) / 1e-3
    return ratios


@pytest.mark.parametrize("decay", [0.5, None], ids=["layerwise-0.5", "plain"])
def test_layerwise_decay_gives_the_embeddings_a_smaller_update_than_the_top_layer(decay):
    # Adam's first step moves every weight by about the learning rate (m / sqrt(v) = sign of the gradient)
    optimizer = (LayerwiseAdamW(decay, num_layers=2, learning_rate=1e-3, weight_decay=0.0) if decay
                 else keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.0))
    ratios = _update_ratios(optimizer)
    factor = decay or 1.0
    expected = {"Embedding-Position/embeddings": factor ** 3, "Embedding-Norm/gamma": factor ** 3,
                "Transformer-0-FeedForward/intermediate/kernel": factor ** 2,
                "Transformer-1-FeedForward/intermediate/kernel": factor,
                "Transformer-1-MultiHeadSelfAttention/query/kernel": factor, "Classifier-Dense/kernel": 1.0}
    for path, ratio in expected.items():
        assert ratios[path] == pytest.approx(ratio, rel=0.02), path


@pytest.mark.parametrize("decay", [None, 0.9], ids=["plain", "layerwise"])
def test_biases_and_layernorm_get_no_weight_decay(decay):
    optimizer = classifier_optimizer(1e-1, 10, warmup_steps=0, weight_decay=0.5, layerwise_decay=decay, num_layers=2)
    weights = [keras.Variable(np.ones(2, "float32"), name=name) for name in ("kernel", "bias", "gamma", "beta")]
    optimizer.apply([np.zeros(2, "float32")] * 4, weights)  # no gradient: only the weight decay moves a weight
    assert [float(keras.ops.convert_to_numpy(w)[0]) for w in weights] == pytest.approx([1 - 0.1 * 0.5, 1, 1, 1])


def test_a_keras_bert_serves_as_the_backbone(tmp_path):
    bert = build_transformer_model(TINY_BERT, with_mlm=True)
    bert.save(tmp_path / "bert.keras")
    model = build_classifier(None, str(tmp_path / "bert.keras"), num_classes=2)
    for name in ("Embedding-Token", "Transformer-1-FeedForward", "Transformer-1-FeedForward-Norm"):
        for mine, theirs in zip(model.get_layer(name).get_weights(), bert.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
