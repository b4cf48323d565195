"""Models survive ``model.save('m.keras')`` and ``keras.saving.load_model`` in a fresh
process: the same class, the same outputs, ``model.transformer`` rebuilt, and
``generate`` / the Xiangqi scorer working on the reloaded model. For BERT, BERT+MLM,
GPT-2 and the Xiangqi GPT, with each attention kind and hierarchical positions."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from models import build_transformer_model
from models.xiangqi import MoveScorer, build_xiangqi_model
from tests.helpers import ROOT, TINY_BERT, TINY_GPT2
from toolkit.generation import generate

PERFORMER = {"nb_features": 16, "seed": 3}
CASES = {
    "bert_hierarchical": dict(config=TINY_BERT, hierarchical_position=True),
    "bert_mlm_performer": dict(config=TINY_BERT, with_mlm="linear", attention="performer",
                               attention_kwargs=PERFORMER),
    "bert_pool_taylor": dict(config=TINY_BERT, with_pool=True, attention="taylor", hierarchical_position=0.3),
    "gpt2": dict(config=TINY_GPT2, model="gpt2"),
    "gpt2_performer_hierarchical": dict(config=TINY_GPT2, model="gpt2", attention="performer",
                                        attention_kwargs=PERFORMER, hierarchical_position=True),
    "gpt2_taylor_mask_input": dict(config=TINY_GPT2, model="gpt2", attention="taylor", mask_input=True),
}
XIANGQI_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
HISTORY = ["h2e2", "h9g7", "h0g2"]
CANDIDATES = ["i9h9", "b9c7", "g6g5", "c6c5"]

CHILD = r"""
import json, sys
import numpy as np
import keras
import models  # registers the classes
from models.transformer_model import TransformerModel
from models.xiangqi import MoveScorer
from toolkit.generation import generate

directory = sys.argv[1]
cases = json.load(open(f"{directory}/cases.json"))
out = {}
for name in cases:
    model = keras.saving.load_model(f"{directory}/{name}.keras")
    assert isinstance(model, TransformerModel), type(model)
    inputs = np.load(f"{directory}/{name}_inputs.npz")
    outputs = model.predict([inputs[k] for k in sorted(inputs.files)], verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    np.savez(f"{directory}/{name}_reloaded.npz", *outputs)
    info = {"type": model.transformer.model_type, "config": model.transformer.get_config()}
    if model.transformer.model_type == "gpt2":
        info["generated"] = generate(model, [[5, 0, 9, 77]], max_new_tokens=6)
    out[name] = info
scorer = MoveScorer(keras.saving.load_model(f"{directory}/xiangqi.keras"), bucket=64)
out["xiangqi"] = {"scores": [float(v) for v in scorer.score(*json.load(open(f"{directory}/xiangqi.json")))]}
json.dump(out, open(f"{directory}/reloaded.json", "w"))
"""


def _inputs(case, model):
    rng = np.random.default_rng(0)
    vocab = case["config"]["vocab_size"]
    ids = np.concatenate([np.arange(vocab), rng.integers(0, vocab, 3 * 60 - vocab)]).reshape(3, 60)
    arrays = {"a_ids": ids}
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    if "Input-Segment" in names:
        arrays["b_segments"] = (np.arange(60)[None] >= 25).astype("int32").repeat(3, 0)
    if "Input-Mask" in names:
        arrays["b_mask"] = (np.arange(60)[None] < np.array([[60], [41], [7]])).astype("int32")
    return arrays


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("saved")
    expected = {}
    for name, case in CASES.items():
        kwargs = {k: v for k, v in case.items() if k != "config"}
        model = build_transformer_model(dict(case["config"]), **kwargs)
        inputs = _inputs(case, model)
        np.savez(directory / f"{name}_inputs.npz", **inputs)
        outputs = model.predict([inputs[k] for k in sorted(inputs)], verbose=0)
        expected[name] = {"outputs": outputs if isinstance(outputs, list) else [outputs],
                          "config": model.transformer.get_config(), "type": model.transformer.model_type}
        if model.transformer.model_type == "gpt2":
            expected[name]["generated"] = generate(model, [[5, 0, 9, 77]], max_new_tokens=6)
        model.save(directory / f"{name}.keras")
    xiangqi = build_xiangqi_model(XIANGQI_CONFIG)
    xiangqi.save(directory / "xiangqi.keras")
    expected["xiangqi"] = [float(v) for v in MoveScorer(xiangqi, bucket=64).score(HISTORY, CANDIDATES, "red")]
    json.dump([HISTORY, CANDIDATES, "red"], open(directory / "xiangqi.json", "w"))
    json.dump(sorted(CASES), open(directory / "cases.json", "w"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", CHILD, str(directory)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return directory, expected, json.load(open(directory / "reloaded.json"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_reloaded_model_gives_the_same_outputs(saved, name):
    directory, expected, reloaded = saved
    outputs = np.load(directory / f"{name}_reloaded.npz")
    assert len(outputs.files) == len(expected[name]["outputs"])
    for index, want in enumerate(expected[name]["outputs"]):
        np.testing.assert_allclose(outputs[f"arr_{index}"], want, atol=1e-5, rtol=0)
    assert reloaded[name]["type"] == expected[name]["type"]
    assert reloaded[name]["config"] == json.loads(json.dumps(expected[name]["config"]))


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if CASES[n].get("model") == "gpt2"])
def test_generate_works_on_the_reloaded_gpt2(saved, name):
    _, expected, reloaded = saved
    assert reloaded[name]["generated"] == expected[name]["generated"]
    assert len(reloaded[name]["generated"][0]) == 6


def test_xiangqi_scorer_works_on_the_reloaded_model(saved):
    _, expected, reloaded = saved
    np.testing.assert_allclose(reloaded["xiangqi"]["scores"], expected["xiangqi"], atol=1e-4)


def test_weights_are_matched_by_path_not_order():
    """Swapping two same-shaped weights in a layer's list must not change what loads where."""
    model = build_transformer_model(dict(TINY_BERT), return_keras_model=False)
    specs = model.weight_specs()["Transformer-0-MultiHeadSelfAttention"]
    _, weights = model._layer_weights("Transformer-0-MultiHeadSelfAttention", specs)
    assert [w.path.split("/", 1)[1] for w in weights] == [s.keras for s in specs]
    assert specs[0].tf.endswith("query/kernel") and weights[0].path.endswith("query/kernel")
    assert specs[2].tf.endswith("key/kernel") and weights[2].path.endswith("key/kernel")


def test_a_spec_naming_a_missing_weight_names_both_sides():
    from models.transformer import WeightSpec
    from toolkit.checkpoints import CheckpointError

    model = build_transformer_model(dict(TINY_BERT), return_keras_model=False)
    bad = [WeightSpec("bert/encoder/layer_0/attention/self/query/kernel", ["x"], keras="qurey/kernel")]
    with pytest.raises(CheckpointError) as error:
        model._layer_weights("Transformer-0-MultiHeadSelfAttention", bad)
    message = str(error.value)
    assert "'bert/encoder/layer_0/attention/self/query/kernel'" in message
    assert "'Transformer-0-MultiHeadSelfAttention/qurey/kernel'" in message
    assert "Transformer-0-MultiHeadSelfAttention/query/kernel" in message
