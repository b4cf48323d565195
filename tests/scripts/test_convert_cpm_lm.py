"""scripts/convert_cpm_lm.py and toolkit/megatron.py: tiny model-parallel
Megatron GPT-2 checkpoints, written by toolkit.megatron's writer FROM an unsharded
random Hugging Face GPT-2 (megatron_split, the inverse of the merge under test),
convert to weights whose logits equal transformers' GPT2LMHeadModel. The script
runs as a subprocess."""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from models import build_transformer_model
from tests.helpers import ROOT, hf_gpt2, padded_ids
from toolkit.checkpoints import CheckpointError
from toolkit.megatron import (MegatronCheckpoint, MegatronError, find_shards, load_shard, megatron_split,
                              write_megatron_checkpoint)

TOL = 1e-4
SCRIPT = os.path.join(ROOT, "scripts", "convert_cpm_lm.py")
# The converter run with models.build_transformer_model recording the configs it is given.
RECORD_BUILDS = """
import json, runpy, sys
import models
built, build = [], models.build_transformer_model
def recording(config, *args, **kwargs):
    built.append([config[key] for key in ("n_layer", "n_head", "n_embd", "vocab_size")])
    return build(config, *args, **kwargs)
models.build_transformer_model = recording
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("BUILT " + json.dumps(built))
"""


class Opaque:
    """An object no allowlist knows (stands for arbitrary pickled code)."""


def deepspeed_metadata(fp16=False):
    """What DeepSpeed stores beside the weights in CPM-Generate's files: objects the loader must allowlist."""
    return {"skipped_steps": 0, "global_steps": 80000, "csr_tensor_module_names": set(),
            "random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
            "torch_rng_state": torch.get_rng_state(), "args": argparse.Namespace(num_layers=2, fp16=fp16)}


def write_release(root, shards, dtype=None, extra=None, **kwargs):
    """toolkit.megatron's writer with DeepSpeed's metadata; returns the shard folder."""
    metadata = {**deepspeed_metadata(fp16=dtype == torch.float16), **(extra or {})}
    paths = write_megatron_checkpoint(root, shards, dtype=dtype, extra=metadata, **kwargs)
    return os.path.dirname(paths[0])


def convert(*args, check=True):
    """Run the converter; with ``check`` it must succeed."""
    proc = subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_one_line_error(proc, pattern):
    """Bad input: exit 2 and one line ``error: ...`` matching ``pattern``."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert re.search(pattern, lines[0]), lines[0]


def reference(seed, fp16=False, **overrides):
    """The unsharded HF model (weights rounded through float16 for fp16 shards)."""
    hf = hf_gpt2(seed=seed, **overrides)
    if fp16:
        with torch.no_grad():
            for p in hf.parameters():
                p.copy_(p.half().float())
    return hf


def hf_logits(hf, ids):
    with torch.no_grad():
        return hf(input_ids=torch.tensor(ids).long(), attention_mask=torch.tensor(ids != 0).long()).logits.numpy()


def assert_logits_match(out, ref, lengths):
    assert out.shape == ref.shape
    for row, n in enumerate(lengths):  # right padding: compare the real positions
        np.testing.assert_allclose(out[row, :n], ref[row, :n], atol=TOL, rtol=0)


LENGTHS = [11, 6, 2]


# ---------------------------------------------------------------- tests
def test_two_fp32_shards_convert_to_keras_weights_equal_to_hf(tmp_path):
    hf = reference(seed=11)
    src = tmp_path / "CPM"
    write_release(src, megatron_split(hf.state_dict(), 2))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", RECORD_BUILDS, SCRIPT, str(src), str(out), "--num-layers", "2",
                           "--num-heads", "4", "--quiet"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(SCRIPT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = json.loads(proc.stdout.split("BUILT ")[-1])
    # streamed: only the tiny shadow of the architecture is ever built, never the full-size model
    assert built == [[2, 4, 4, 4]]
    assert sorted(os.listdir(out)) == ["config.json", "model.weights.h5"]  # no temp files

    import transformers

    cfg = transformers.GPT2Config.from_pretrained(out)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size, cfg.n_positions, cfg.activation_function) == \
        (2, 32, 4, 130, 64, "gelu_new")
    assert cfg.n_inner == 128 and cfg.layer_norm_epsilon == 1e-5

    ids = padded_ids(3, 11, 130, LENGTHS, seed=12)
    model = build_transformer_model(str(out / "config.json"), str(out / "model.weights.h5"), model="gpt2",
                                    with_lm="linear")
    assert_logits_match(model.predict(ids, verbose=0), hf_logits(hf, ids), LENGTHS)


def test_fp16_shards_also_write_tf_checkpoint_and_safetensors(tmp_path):
    hf = reference(seed=21, fp16=True)
    src = tmp_path / "CPM"
    write_release(src, megatron_split(hf.state_dict(), 2), dtype=torch.float16)
    out = tmp_path / "out"
    convert(src / "80000", out, "--num-heads", "4", "--tf-checkpoint", "--safetensors", "--quiet")
    assert sorted(os.listdir(out)) == ["checkpoint", "config.json", "model.ckpt.data-00000-of-00001",
                                       "model.ckpt.index", "model.safetensors", "model.weights.h5"]

    import tensorflow as tf
    import transformers

    names = set(tf.train.load_checkpoint(str(out / "model.ckpt")).get_variable_to_shape_map())
    assert "gpt/transformer/layer_1/attention/self/query/kernel" in names
    assert "gpt/embeddings/word_embeddings" in names

    ids = padded_ids(3, 11, 130, LENGTHS, seed=22)
    ref = hf_logits(hf, ids)
    for ckpt in ("model.weights.h5", "model.ckpt"):
        model = build_transformer_model(str(out / "config.json"), str(out / ckpt), model="gpt2", with_lm="linear")
        assert_logits_match(model.predict(ids, verbose=0), ref, LENGTHS)
    back = transformers.GPT2LMHeadModel.from_pretrained(out, attn_implementation="eager").eval()
    assert_logits_match(hf_logits(back, ids), ref, LENGTHS)


def test_four_legacy_format_shards_merge_exactly(tmp_path):
    """Toolkit only: 4 ranks (one head each), torch's pre-1.6 file format (not
    mmap-able), state dict under 'model', shards directly in the folder."""
    hf = reference(seed=31, vocab_size=132)
    sd = hf.state_dict()
    write_release(tmp_path, megatron_split(sd, 4), iteration=None, key="model", legacy=True)
    ckpt = MegatronCheckpoint(tmp_path, num_heads=4)
    assert len(ckpt.paths) == 4 and "not memory-mapped" in ckpt.load_info[0]
    assert "allowlisted" in ckpt.load_info[0] and "argparse.Namespace" in ckpt.load_info[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # replicated tensors agree: no warning
        merged = list(ckpt.iter_hf_tensors())
    assert [n for n, _ in merged] == ckpt.hf_tensor_names() and len(merged) == len(ckpt) == 4 + 12 * 2
    for name, value in merged:
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, sd[name].numpy(), err_msg=name)
    assert ckpt.hf_config()["vocab_size"] == 132 and ckpt.hf_config()["n_inner"] == 128


def test_missing_shard_is_named(tmp_path):
    hf = reference(seed=41)
    folder = write_release(tmp_path / "a", megatron_split(hf.state_dict(), 2))
    os.rename(os.path.join(folder, "mp_rank_01_model_states.pt"), os.path.join(folder, "mp_rank_02_model_states.pt"))
    assert_one_line_error(convert(tmp_path / "a", tmp_path / "out", "--quiet", check=False),
                          r"missing shard.*mp_rank_01_model_states\.pt.*found ranks \[0, 2\]")
    # the last rank gone: caught by DeepSpeed's recorded mp_world_size
    os.remove(os.path.join(folder, "mp_rank_02_model_states.pt"))
    assert_one_line_error(convert(folder, tmp_path / "out", "--quiet", check=False), "mp_world_size=2 but 1 shard")
    assert not os.path.exists(tmp_path / "out")


def test_shape_mismatch_and_wrong_layer_count(tmp_path):
    hf = reference(seed=51)
    shards = megatron_split(hf.state_dict(), 2)
    write_release(tmp_path / "good", shards)
    assert_one_line_error(convert(tmp_path / "good", tmp_path / "out", "--num-layers", "3", "--quiet", check=False),
                          r"has 2 transformer layers.*but 3 were expected")
    assert_one_line_error(convert(tmp_path / "good", tmp_path / "out", "--num-heads", "1", "--quiet", check=False),
                          "not divisible by the 2 model-parallel shards")

    key = "transformer.layers.1.mlp.dense_h_to_4h.weight"
    shards[1][key] = shards[1][key][:60]
    write_release(tmp_path / "bad", shards)
    with pytest.raises(MegatronError, match=rf"'{key}' has shape \(64, 32\) in mp_rank_00_model_states.pt "
                                            r"but \(60, 32\) in mp_rank_01_model_states.pt"):
        MegatronCheckpoint(tmp_path / "bad", num_heads=4)
    for rank in range(2):  # each rank's own shape fits the split, but not hidden size 32
        shards[rank][key] = torch.zeros(60, 32)
    write_release(tmp_path / "bad2", shards)
    assert_one_line_error(convert(tmp_path / "bad2", tmp_path / "out", "--num-heads", "4", "--quiet", check=False),
                          rf"'{key}' has shape \(60, 32\) per shard, expected \(64, 32\) for hidden size 32 "
                          r"\(from word_embeddings.weight\) split 2 ways")
    assert not os.path.exists(tmp_path / "out")


def test_unknown_pickled_objects_need_trust(tmp_path):
    hf = reference(seed=61)
    folder = write_release(tmp_path, megatron_split(hf.state_dict(), 2), extra={"opaque": Opaque()})
    path = os.path.join(folder, "mp_rank_00_model_states.pt")
    with pytest.raises(MegatronError, match=r"Opaque.*--trust-pickle"):
        load_shard(path)
    state, meta, how = load_shard(path, trust_pickle=True)
    assert how.startswith("weights_only=False") and isinstance(meta["opaque"], Opaque)
    assert meta["iteration"] == 80000 and "word_embeddings.weight" in state
    assert find_shards(tmp_path) == [path, os.path.join(folder, "mp_rank_01_model_states.pt")]


def test_assign_from_named_arrays_errors():
    hf = reference(seed=71, n_layer=1)
    sd = {k: v.numpy() for k, v in hf.state_dict().items() if k.startswith("transformer.") and ".attn.bias" not in k}
    t = build_transformer_model(hf.config.to_dict(), model="gpt2", return_keras_model=False, initializer="zeros")
    # 4 outside the layer + 16 in it (c_attn's kernel and bias feed q, k and v: 6 Keras weights)
    assert t.assign_from_named_arrays(sd.items()) == 20
    np.testing.assert_array_equal(t.model.get_layer("Transformer-0-MultiHeadSelfAttention").value_dense.kernel.numpy(),
                                  sd["transformer.h.0.attn.c_attn.weight"][:, 64:])  # the value kernel
    with pytest.raises(CheckpointError, match="matches no weight"):
        t.assign_from_named_arrays([("transformer.h.0.attn.c_atn.weight", sd["transformer.h.0.attn.c_attn.weight"])])
    with pytest.raises(CheckpointError, match=r"'transformer.wpe.weight' has shape \(63, 32\)"):
        t.assign_from_named_arrays([("transformer.wpe.weight", sd["transformer.wpe.weight"][:63])])
    with pytest.raises(CheckpointError, match=r"no value was given for .*ln_f"):
        t.assign_from_named_arrays((k, v) for k, v in sd.items() if "ln_f" not in k)


def test_help():
    proc = convert("--help")
    assert "--tf-checkpoint" in proc.stdout and proc.stderr == ""


def test_command_line_errors_are_one_line_exit_2(tmp_path):
    """A bad checkpoint folder (CheckpointError) and a nonsense --num-heads: ``error: ...``, exit 2."""
    script = os.path.join(ROOT, "scripts", "convert_cpm_lm.py")
    missing = tmp_path / "nowhere"
    for args, message in (([str(missing), str(tmp_path / "out")],
                           f"error: Megatron checkpoint folder '{missing}' does not exist"),
                          ([str(tmp_path), str(tmp_path / "out"), "--num-heads", "0"],
                           "error: --num-heads must be >= 1, got 0")):
        proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=120,
                              cwd=ROOT)
        assert proc.returncode == 2 and proc.stderr.splitlines() == [message], proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / "out")


def test_int8_conversion_writes_keras_int8_weights_equal_to_quantizing_the_float_model(tmp_path):
    from models import quantize_model

    hf = reference(seed=13)
    src = tmp_path / "CPM"
    write_release(src, megatron_split(hf.state_dict(), 2))
    convert(src, tmp_path / "float", "--num-layers", "2", "--num-heads", "4", "--quiet")
    convert(src, tmp_path / "int8", "--num-layers", "2", "--num-heads", "4", "--quiet", "--int8")
    assert sorted(os.listdir(tmp_path / "int8")) == ["config.json", "model.int8.weights.h5"]
    # a tiny model: the float position table, LayerNorms, biases and scales and HDF5's own overhead weigh
    # more here than at CPM-LM's size (where the file is 0.25x: docs/benchmarks.md)
    assert os.path.getsize(tmp_path / "int8" / "model.int8.weights.h5") < \
        0.7 * os.path.getsize(tmp_path / "float" / "model.weights.h5")
    expected = build_transformer_model(str(tmp_path / "float" / "config.json"),
                                       str(tmp_path / "float" / "model.weights.h5"), model="gpt2", with_lm="linear")
    quantize_model(expected)
    model = build_transformer_model(str(tmp_path / "int8" / "config.json"),
                                    str(tmp_path / "int8" / "model.int8.weights.h5"), model="gpt2", with_lm="linear",
                                    quantize="int8")
    ids = padded_ids(3, 11, 130, LENGTHS, seed=12)
    np.testing.assert_array_equal(model.predict(ids, verbose=0), expected.predict(ids, verbose=0))
    proc = convert(src, tmp_path / "bad", "--int8", "--safetensors", check=False)
    assert_one_line_error(proc, r"--int8 writes Keras int8 weights only")
