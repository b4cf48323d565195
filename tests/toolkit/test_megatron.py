"""toolkit/megatron.py's writer against its reader: shards cut from a Hugging Face GPT-2
(megatron_split) or drawn at random (random_megatron_shards), written by
write_megatron_checkpoint and read back by MegatronCheckpoint, give the same tensors."""

import os
import warnings

import numpy as np
import pytest
import torch

from tests.helpers import hf_gpt2
from toolkit.megatron import (MegatronCheckpoint, megatron_split, random_megatron_shards, split_tensor,
                              write_megatron_checkpoint)

SHAPE = dict(num_layers=2, hidden=32, inner=128, vocab=130, positions=64)


def _files(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


@pytest.mark.parametrize("num_shards, dtype", [(2, None), (4, torch.float16)], ids=["2-fp32", "4-fp16"])
def test_split_write_read_gives_the_hf_tensors_back(tmp_path, num_shards, dtype):
    state = hf_gpt2(seed=3, vocab_size=132).state_dict()
    paths = write_megatron_checkpoint(tmp_path, megatron_split(state, num_shards), dtype=dtype)
    assert _files(tmp_path) == ["80000/" + f"mp_rank_{rank:02d}_model_states.pt" for rank in range(num_shards)] \
        + ["latest_checkpointed_iteration.txt"]  # no temporary file left
    assert paths == [os.path.join(tmp_path, "80000", f"mp_rank_{rank:02d}_model_states.pt")
                     for rank in range(num_shards)]
    checkpoint = MegatronCheckpoint(tmp_path, num_heads=4)
    assert checkpoint.metadata["mp_world_size"] == num_shards
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replicated tensors agree on every rank
        merged = dict(checkpoint.iter_hf_tensors())
    assert list(merged) == checkpoint.hf_tensor_names()
    for name, value in merged.items():
        expected = state[name] if dtype is None else state[name].to(dtype).float()
        np.testing.assert_array_equal(value, expected.numpy(), err_msg=name)


def test_random_shards_are_written_one_at_a_time_and_split_back_exactly(tmp_path):
    shards = random_megatron_shards(**SHAPE, num_shards=2, seed=1)
    paths = write_megatron_checkpoint(tmp_path, shards, num_shards=2, iteration=None, key="model")
    assert _files(tmp_path) == ["mp_rank_00_model_states.pt", "mp_rank_01_model_states.pt"]
    checkpoint = MegatronCheckpoint(tmp_path, num_heads=4)
    assert (checkpoint.num_layers, checkpoint.hidden_size, checkpoint.intermediate_size, checkpoint.vocab_size,
            checkpoint.max_positions) == tuple(SHAPE.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # replicated tensors are seeded by name: equal on both ranks
        merged = {name: torch.from_numpy(value) for name, value in checkpoint.iter_hf_tensors()}
    # splitting the merged model again gives each rank's tensors as they were written
    for rank, state in enumerate(megatron_split(merged, 2)):
        written = torch.load(paths[rank], weights_only=True)["model"]
        assert list(state) == list(written)
        for name, value in state.items():
            assert written[name].dtype == torch.float16
            torch.testing.assert_close(value, written[name].float(), rtol=0, atol=0, msg=name)
    layer_norm = written["transformer.layers.1.input_layernorm.weight"]
    assert torch.equal(layer_norm, torch.ones_like(layer_norm))
    again = next(random_megatron_shards(**SHAPE, num_shards=2, seed=1))
    assert all(torch.equal(again[name], value) for name, value in torch.load(paths[0], weights_only=True)
               ["model"].items())  # reproducible from the seed


def test_query_key_value_parts_hold_each_ranks_heads():
    """Megatron's column-parallel [q_r; k_r; v_r]: rank r's part holds rows r of q, of k and of v."""
    merged = torch.arange(12.0).reshape(12, 1)  # q = 0..3, k = 4..7, v = 8..11
    parts = split_tensor(merged, "qkv", 2)
    assert [part.flatten().tolist() for part in parts] == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    assert all(part.is_contiguous() and part.untyped_storage().nbytes() == 6 * 4 for part in parts)


def test_a_failed_write_leaves_no_shard_and_no_tracker(tmp_path):
    shards = megatron_split(hf_gpt2(seed=4).state_dict(), 2)
    shards[1]["not a tensor"] = lambda: None  # torch.save cannot pickle it
    with pytest.raises(Exception):
        write_megatron_checkpoint(tmp_path, shards)
    assert _files(tmp_path) == ["80000/mp_rank_00_model_states.pt"]  # no half-written rank 1, no tracker


def test_an_iterator_of_shards_needs_num_shards(tmp_path):
    with pytest.raises(ValueError, match="shards is an iterator: give num_shards too"):
        write_megatron_checkpoint(tmp_path, iter([]))
    with pytest.raises(ValueError, match=r"got 1 shard\(s\), but num_shards=2"):
        write_megatron_checkpoint(tmp_path, random_megatron_shards(**SHAPE, num_shards=1), num_shards=2)
