"""scripts/convert_cpm_lm.py and toolkit/megatron.py: tiny model-parallel
Megatron GPT-2 checkpoints, written here FROM an unsharded random Hugging Face
GPT-2 (the test implements Megatron's split, the code under test the merge),
convert to weights whose logits equal transformers' GPT2LMHeadModel."""

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from models import build_transformer_model
from tests.helpers import ROOT, hf_gpt2, padded_ids
from toolkit.checkpoints import CheckpointError
from toolkit.megatron import MegatronCheckpoint, MegatronError, find_shards, load_shard

TOL = 1e-4


def _load_script():
    spec = importlib.util.spec_from_file_location("convert_cpm_lm", os.path.join(ROOT, "scripts", "convert_cpm_lm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert = _load_script()


class Opaque:
    """An object no allowlist knows (stands for arbitrary pickled code)."""


# ------------------------------------------------------------ the split
def megatron_split(hf_sd, n_layer, n):
    """Unsharded HF GPT-2 state dict -> ``n`` Megatron rank state dicts, laid
    out as Megatron's mpu does: vocabulary rows, column-parallel output rows
    (query_key_value per rank as [q_r; k_r; v_r] over its own heads),
    row-parallel input columns, the rest replicated. Weights in torch Linear
    (out, in) layout, i.e. HF Conv1D transposed."""
    shards = [{} for _ in range(n)]

    def put(key, parts):
        for s, p in zip(shards, parts):
            s[key] = p.clone().contiguous()

    def rep(name):
        return [hf_sd[name]] * n

    def linear(name):
        return hf_sd[name].t()

    put("word_embeddings.weight", hf_sd["transformer.wte.weight"].chunk(n, 0))
    put("position_embeddings.weight", rep("transformer.wpe.weight"))
    for i in range(n_layer):
        h, m = f"transformer.h.{i}.", f"transformer.layers.{i}."
        put(m + "input_layernorm.weight", rep(h + "ln_1.weight"))
        put(m + "input_layernorm.bias", rep(h + "ln_1.bias"))
        for suffix, full in (("weight", linear(h + "attn.c_attn.weight")), ("bias", hf_sd[h + "attn.c_attn.bias"])):
            q, k, v = (t.chunk(n, 0) for t in full.chunk(3, 0))
            put(m + "attention.query_key_value." + suffix, [torch.cat(qkv, 0) for qkv in zip(q, k, v)])
        put(m + "attention.dense.weight", linear(h + "attn.c_proj.weight").chunk(n, 1))
        put(m + "attention.dense.bias", rep(h + "attn.c_proj.bias"))
        put(m + "post_attention_layernorm.weight", rep(h + "ln_2.weight"))
        put(m + "post_attention_layernorm.bias", rep(h + "ln_2.bias"))
        put(m + "mlp.dense_h_to_4h.weight", linear(h + "mlp.c_fc.weight").chunk(n, 0))
        put(m + "mlp.dense_h_to_4h.bias", hf_sd[h + "mlp.c_fc.bias"].chunk(n, 0))
        put(m + "mlp.dense_4h_to_h.weight", linear(h + "mlp.c_proj.weight").chunk(n, 1))
        put(m + "mlp.dense_4h_to_h.bias", rep(h + "mlp.c_proj.bias"))
    put("transformer.final_layernorm.weight", rep("transformer.ln_f.weight"))
    put("transformer.final_layernorm.bias", rep("transformer.ln_f.bias"))
    return shards


def write_release(root, shards, dtype=torch.float32, iteration=80000, key="module", legacy=False, extra=None):
    """Write shards as CPM-Generate's release: ``root/latest_checkpointed_iteration.txt``
    and ``root/80000/mp_rank_XX_model_states.pt`` with DeepSpeed/Megatron metadata."""
    folder = os.path.join(root, str(iteration)) if iteration else str(root)
    os.makedirs(folder, exist_ok=True)
    if iteration:
        with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
            f.write(f"{iteration}\n")
    for r, state in enumerate(shards):
        obj = {key: {k: v.to(dtype) for k, v in state.items()}, "iteration": iteration,
               "mp_world_size": len(shards), "dp_world_size": 1, "skipped_steps": 0, "global_steps": iteration,
               "csr_tensor_module_names": set(), "random_rng_state": random.getstate(),
               "np_rng_state": np.random.get_state(), "torch_rng_state": torch.get_rng_state(),
               "args": argparse.Namespace(num_layers=2, fp16=dtype == torch.float16),
               **(extra or {})}
        torch.save(obj, os.path.join(folder, f"mp_rank_{r:02d}_model_states.pt"),
                   _use_new_zipfile_serialization=not legacy)
    return folder


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
def test_two_fp32_shards_convert_to_keras_weights_equal_to_hf(tmp_path, monkeypatch):
    hf = reference(seed=11)
    src = tmp_path / "CPM"
    write_release(src, megatron_split(hf.state_dict(), 2, 2))
    out = tmp_path / "out"
    import models

    built, build = [], models.build_transformer_model
    monkeypatch.setattr(models, "build_transformer_model", lambda config, *a, **k: built.append(config) or
                        build(config, *a, **k))
    written = convert.main([str(src), str(out), "--num-layers", "2", "--num-heads", "4", "--quiet"])
    # streamed: only the tiny shadow of the architecture is ever built, never the full-size model
    assert [(c["n_layer"], c["n_head"], c["n_embd"], c["vocab_size"]) for c in built] == [(2, 4, 4, 4)]
    assert sorted(os.listdir(out)) == ["config.json", "model.weights.h5"]  # no temp files
    assert sorted(map(os.path.basename, written)) == ["config.json", "model.weights.h5"]

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
    write_release(src, megatron_split(hf.state_dict(), 2, 2), dtype=torch.float16)
    out = tmp_path / "out"
    convert.main([str(src / "80000"), str(out), "--num-heads", "4", "--tf-checkpoint", "--safetensors", "--quiet"])
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
    write_release(tmp_path, megatron_split(sd, 2, 4), iteration=None, key="model", legacy=True)
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
    folder = write_release(tmp_path / "a", megatron_split(hf.state_dict(), 2, 2))
    os.rename(os.path.join(folder, "mp_rank_01_model_states.pt"), os.path.join(folder, "mp_rank_02_model_states.pt"))
    with pytest.raises(MegatronError, match=r"missing shard.*mp_rank_01_model_states\.pt.*found ranks \[0, 2\]"):
        convert.main([str(tmp_path / "a"), str(tmp_path / "out"), "--quiet"])
    # the last rank gone: caught by DeepSpeed's recorded mp_world_size
    os.remove(os.path.join(folder, "mp_rank_02_model_states.pt"))
    with pytest.raises(MegatronError, match="mp_world_size=2 but 1 shard"):
        convert.main([str(folder), str(tmp_path / "out"), "--quiet"])
    assert not os.path.exists(tmp_path / "out")


def test_shape_mismatch_and_wrong_layer_count(tmp_path):
    hf = reference(seed=51)
    shards = megatron_split(hf.state_dict(), 2, 2)
    write_release(tmp_path / "good", shards)
    with pytest.raises(MegatronError, match=r"has 2 transformer layers.*but 3 were expected"):
        convert.main([str(tmp_path / "good"), str(tmp_path / "out"), "--num-layers", "3", "--quiet"])
    with pytest.raises(MegatronError, match="not divisible by the 2 model-parallel shards"):
        convert.main([str(tmp_path / "good"), str(tmp_path / "out"), "--num-heads", "1", "--quiet"])

    key = "transformer.layers.1.mlp.dense_h_to_4h.weight"
    shards[1][key] = shards[1][key][:60]
    write_release(tmp_path / "bad", shards)
    with pytest.raises(MegatronError, match=rf"'{key}' has shape \(64, 32\) in mp_rank_00_model_states.pt "
                                            r"but \(60, 32\) in mp_rank_01_model_states.pt"):
        convert.main([str(tmp_path / "bad"), str(tmp_path / "out"), "--quiet"])
    assert not os.path.exists(tmp_path / "out")


def test_unknown_pickled_objects_need_trust(tmp_path):
    hf = reference(seed=61)
    folder = write_release(tmp_path, megatron_split(hf.state_dict(), 1, 2), extra={"opaque": Opaque()})
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


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        convert.main(["--help"])
    assert e.value.code == 0
    assert "--tf-checkpoint" in capsys.readouterr().out


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
