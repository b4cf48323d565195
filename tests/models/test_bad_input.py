"""Bad input to the builder and its models: one clear ValueError/CheckpointError naming
the file, key or id at fault (config sizes, truncated weights, ids outside the tables),
and plain nested lists accepted by ``predict``."""

import os

import numpy as np
import pytest

from models import build_transformer_model
from models.transformer_model import TransformerModel
from tests.helpers import TINY_BERT, TINY_GPT2, hf_bert, write_json
from toolkit.checkpoints import CheckpointError

SMALL = {"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
         "max_position_embeddings": 16}


@pytest.mark.parametrize("key, value, words", [
    ("num_hidden_layers", -2, "'num_hidden_layers' must be an integer >= 1, got -2"),
    ("num_hidden_layers", 0, "'num_hidden_layers' must be an integer >= 1, got 0"),
    ("vocab_size", 2.5, "'vocab_size' must be an integer >= 1, got 2.5"),
    ("hidden_size", "32", "'hidden_size' must be an integer >= 1, got '32'"),
    ("intermediate_size", -1, "'intermediate_size' must be an integer >= 1"),
    ("max_position_embeddings", 0, "'max_position_embeddings' must be an integer >= 1"),
    ("type_vocab_size", -1, "'type_vocab_size' must be an integer >= 0"),
    ("num_attention_heads", 3, "hidden_size 8 is not divisible by num_attention_heads 3"),
    ("hidden_act", "gelu_fancy", "unknown activation hidden_act='gelu_fancy'"),
    ("hidden_dropout_prob", 1.5, "'hidden_dropout_prob' must be a rate in [0, 1), got 1.5"),
    ("layer_norm_eps", -1e-5, "'layer_norm_eps' must be a positive number"),
])
def test_config_size_fields_are_checked(tmp_path, key, value, words):
    path = write_json({**SMALL, key: value}, tmp_path / "config.json")
    with pytest.raises(ValueError) as error:
        build_transformer_model(path)
    message = str(error.value)
    assert words in message and str(path) in message and "\n" not in message


def test_hf_config_aliases_are_checked_too(tmp_path):
    path = write_json({**TINY_GPT2, "n_layer": -2}, tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"'num_hidden_layers' must be an integer >= 1, got -2"):
        build_transformer_model(path, model="gpt2")


def test_integral_float_sizes_are_accepted():
    model = build_transformer_model({**SMALL, "hidden_size": 8.0, "num_hidden_layers": 1.0})
    assert model.get_layer("Embedding-Token").output_dim == 8


def test_predict_takes_nested_lists_and_equals_arrays():
    model = build_transformer_model(SMALL)
    ids, segs = [2, 0, 7, 49, 3], [0, 0, 1, 1, 1]
    from_lists = model.predict([[ids], [segs]], verbose=0)
    from_arrays = model.predict([np.array([ids]), np.array([segs])], verbose=0)
    assert isinstance(model, TransformerModel)
    np.testing.assert_array_equal(from_lists, from_arrays)
    assert from_lists.shape == (1, 5, 8)


@pytest.mark.parametrize("ids, segs, words", [
    ([[2, 50, 3]], [[0, 0, 0]], "token id 50 (input 'Input-Token', row 0, position 1) is outside the vocabulary of 50 ids"),
    ([[2, 7, 3], [2, -1, 3]], [[0, 0, 0], [0, 0, 0]], "token id -1 (input 'Input-Token', row 1, position 1)"),
    ([[2, 7, 3]], [[0, 0, 2]], "segment id 2 (input 'Input-Segment', row 0, position 2) is outside the segment vocabulary of 2 ids"),
])
def test_predict_names_ids_outside_the_tables(ids, segs, words):
    model = build_transformer_model(SMALL)
    with pytest.raises(ValueError) as error:
        model.predict([np.array(ids), np.array(segs)], verbose=0)
    assert words in str(error.value)


def test_predict_ragged_rows_say_pad_them():
    model = build_transformer_model(SMALL)
    with pytest.raises(ValueError, match="input 'Input-Token': rows of different lengths; pad them"):
        model.predict([[[2, 7, 3], [2]], [[0, 0, 0], [0]]], verbose=0)


def test_gpt2_predict_checks_ids_and_takes_one_array_in_a_list():
    config = {**TINY_GPT2}
    model = build_transformer_model(config, model="gpt2")
    ids = np.arange(TINY_GPT2["vocab_size"])[None, :60] % TINY_GPT2["vocab_size"]
    np.testing.assert_array_equal(model.predict([ids], verbose=0), model.predict(ids, verbose=0))
    with pytest.raises(ValueError, match=f"token id 130 .* vocabulary of 130 ids"):
        model.predict(np.array([[5, 130]]), verbose=0)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf_bert")
    hf_bert("BertModel", seed=0).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("keep", ["half", "header", "eight", "empty"])
def test_truncated_safetensors_is_a_checkpoint_error_naming_the_file(tmp_path, hf_dir, keep):
    data = (hf_dir / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    cut = {"half": len(data) // 2, "header": header_end, "eight": 8, "empty": 0}[keep]
    (tmp_path / "model.safetensors").write_bytes(data[:cut])
    (tmp_path / "config.json").write_bytes((hf_dir / "config.json").read_bytes())
    with pytest.raises(CheckpointError) as error:
        build_transformer_model(str(tmp_path / "config.json"), str(tmp_path))
    message = str(error.value)
    assert str(tmp_path / "model.safetensors") in message and "truncated" in message
    assert "download or convert it again" in message


def test_corrupt_safetensors_header_is_named(tmp_path, hf_dir):
    data = bytearray((hf_dir / "model.safetensors").read_bytes())
    data[9:20] = b"\xff" * 11
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        build_transformer_model(write_json(TINY_BERT, tmp_path / "config.json"), str(tmp_path))


def test_whole_safetensors_still_loads(hf_dir):
    model = build_transformer_model(str(hf_dir / "config.json"), str(hf_dir))
    assert model.count_params() > 0
    assert os.path.getsize(hf_dir / "model.safetensors") > 1000
