"""keras.distribution training (models.distribution): data parallelism on 8 virtual CPU devices
gives the weights of one device, a 2 x 4 model-parallel step shards each kernel as the layout
map says and matches the unsharded run, the map covers every large kernel (a renamed layer is
refused), a checkpoint loads onto its shards without a second copy of the model, two processes
on 127.0.0.1 train as one, and bad meshes, batches and head counts are one line each.

The device cases run in subprocesses (``KERAS_BACKEND=jax`` and
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` must be set before JAX starts):
tests/models/distributed_cases.py."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from models import build_transformer_model
from models import distribution as dist
from tests.helpers import ROOT, TINY_BERT
from tests.toolkit.assets import peoples_daily_sentences
from tests.toolkit.xiangqi_games import random_games, write_games

PRETRAIN = os.path.join(ROOT, "scripts", "pretrain_mlm.py")
XIANGQI = os.path.join(ROOT, "scripts", "train_xiangqi.py")
TINY_MLM = ["--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64", "--max-length", "32",
            "--batch-size", "8", "--steps", "4", "--eval-every", "2", "--held-out", "0.1", "--eval-sequences", "8",
            "--dropout", "0", "--quiet"]


def _env(devices):
    return {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _case(*args, devices=8, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "tests.models.distributed_cases", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env(devices))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _script(script, *args, devices=8, timeout=300):
    return subprocess.Popen([sys.executable, script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(devices))


def _finish(proc, timeout=300):
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def _summary(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "corpus.txt"
    path.write_text("\n".join(peoples_daily_sentences(3000)) + "\n", encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ in process
def test_the_mesh_the_options_ask_for():
    assert dist.parse_distribution("data").mesh_shape(8) == (8, 1)
    assert dist.parse_distribution("model:4").mesh_shape(8) == (2, 4)
    assert dist.parse_distribution("2,4").mesh_shape(8) == (2, 4)
    assert dist.parse_distribution(" Model:8 ").parallel == "model"


@pytest.mark.parametrize("text, devices, message", [
    ("model:3", 8, "--distribution model:3: a model axis of 3 does not divide the 8 devices; give a divisor of 8"),
    ("3,2", 8, "--distribution 3,2: a 3 x 2 mesh needs 6 devices but there are 8; give B,N with B x N = 8"),
    ("pipeline", 8, "--distribution pipeline: give data, model:N or B,N (positive whole numbers), e.g. data, "
                    "model:2, 2,4"),
    ("model:0", 8, "--distribution model:0: give data, model:N or B,N"),
])
def test_a_mesh_that_does_not_fit_is_one_line(text, devices, message):
    with pytest.raises(dist.DistributionError) as caught:
        dist.parse_distribution(text).mesh_shape(devices)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("config, message", [
    (dict(TINY_BERT, num_attention_heads=6, hidden_size=48), "the model has 6 attention heads, not divisible by "
                                                             "the model axis of 4: give a model axis that divides 6 "
                                                             "(e.g. --distribution model:2)"),
    (dict(TINY_BERT, num_key_value_heads=2), "the model has 2 key/value heads, not divisible by the model axis of 4"),
    ({"n_head": 4, "n_embd": 32, "n_inner": 66}, "the model has 66 feed-forward size, not divisible"),
])
def test_heads_or_sizes_the_model_axis_does_not_divide(config, message):
    with pytest.raises(dist.DistributionError) as caught:
        dist.check_model_axis(config, 4)
    assert str(caught.value).startswith(message)
    dist.check_model_axis(TINY_BERT, 4)  # 4 heads, 32 hidden, 64 feed-forward: fine


@pytest.mark.parametrize("options, message", [
    (dict(coordinator="127.0.0.1:1234"), "give all of --coordinator HOST:PORT, --num-processes P and --process-id I"),
    (dict(coordinator="127.0.0.1:1234", num_processes=2, process_id=2), "--process-id 2 with --num-processes 2: "
                                                                        "give 0 <= I < P"),
    (dict(coordinator="localhost", num_processes=2, process_id=0), "--coordinator localhost: give HOST:PORT"),
])
def test_bad_process_options(options, message):
    with pytest.raises(dist.DistributionError) as caught:
        dist.process_settings(environ={}, **options)
    assert str(caught.value).startswith(message)
    environ = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:9999", "KERAS_DISTRIBUTION_NUM_PROCESSES": "4",
               "KERAS_DISTRIBUTION_PROCESS_ID": "3"}
    assert dist.process_settings(environ=environ) == ("10.0.0.1:9999", 4, 3)
    assert dist.process_settings(environ={}) is None


def test_off_jax_the_distribution_says_to_use_jax():
    if keras.backend.backend() == "jax":
        assert dist.check_backend() is None
        return
    with pytest.raises(dist.DistributionError) as caught:
        dist.setup_distribution("data")
    assert str(caught.value) == (f"--distribution needs the JAX backend (keras.distribution runs on JAX only) but "
                                 f"Keras runs on {keras.backend.backend()}: run with KERAS_BACKEND=jax")


def test_a_process_feeds_its_rows():
    batch = ({"a": np.arange(8)}, [np.arange(8), np.arange(8, 16)])
    part = dist.local_part(batch, slice(2, 4))
    assert part[0]["a"].tolist() == [2, 3] and [rows.tolist() for rows in part[1]] == [[2, 3], [10, 11]]
    assert dist.process_share(batch) is batch  # one process: the whole batch


# ------------------------------------------------------------------ on 8 virtual devices
def test_data_parallel_steps_equal_one_device_steps():
    for kind, figures in _case("data").items():
        assert figures["weights"] < 1e-5 and figures["loss"] < 1e-5, (kind, figures)
        assert figures["losses"][-1] < figures["losses"][0], kind  # it trained


def test_a_2x4_model_parallel_step_is_sharded_as_the_map_says_and_equals_the_unsharded_one():
    rules = dist.layout_rules()
    for kind, figures in _case("model").items():
        assert figures["weights"] < 1e-5 and figures["loss"] < 1e-5, (kind, figures)
        specs = figures["specs"]
        for layer in ("query", "key", "value"):
            assert specs[f"Transformer-0-MultiHeadSelfAttention/{layer}/kernel"] == [None, "model"], kind
            assert specs[f"Transformer-0-MultiHeadSelfAttention/{layer}/bias"] == ["model"], kind
        assert specs["Transformer-1-MultiHeadSelfAttention/output/kernel"] == ["model", None], kind
        assert specs["Transformer-1-FeedForward/intermediate/kernel"] == [None, "model"], kind
        assert specs["Transformer-1-FeedForward/output/kernel"] == ["model", None], kind
        assert specs["Embedding-Token/embeddings"] == [None, "model"], kind
        assert all(axis is None for axis in specs["Transformer-0-FeedForward-Norm/gamma"]), kind
        assert figures["devices"]["Transformer-0-FeedForward/output/kernel"] == 8
        assert len(rules) == 9


def test_the_map_covers_every_large_kernel_and_a_renamed_layer_is_refused():
    result = _case("coverage")
    assert result["bert"] == []
    assert result["renamed_error"].startswith("the layout map gives no layout to 1 large variable(s), e.g. "
                                              "'sequential/Transformer-0-FFN-In/kernel' (a renamed layer?)")


def test_a_checkpoint_loads_straight_onto_its_shards(tmp_path):
    config = dict(TINY_BERT, vocab_size=1000, hidden_size=512, intermediate_size=2048, num_attention_heads=8,
                  num_hidden_layers=8, max_position_embeddings=128)
    build_transformer_model(config, return_keras_model=False).save_pretrained(str(tmp_path / "bert"))
    result = _case("load", tmp_path / "bert")
    assert result["same_values"] and result["spec"] == [None, "model"] and result["shard_shapes"] == [[512, 256]]
    # a load that materialised the model first would grow by at least the model's 103 MB
    assert result["peak_growth"] < 0.75 * result["model_bytes"], result


# ------------------------------------------------------------------ the scripts
def test_the_training_scripts_on_a_mesh_match_one_device(corpus, tmp_path):
    single = _finish(_script(PRETRAIN, "--corpus", corpus, "--out", tmp_path / "one", *TINY_MLM))
    assert single[0] == 0, single[2][-3000:]
    mesh = _finish(_script(PRETRAIN, "--corpus", corpus, "--out", tmp_path / "mesh", *TINY_MLM,
                           "--distribution", "4,2"))
    assert mesh[0] == 0, mesh[2][-3000:]
    one, eight = _summary(single[1]), _summary(mesh[1])
    assert abs(one["final_held_out_loss"] - eight["final_held_out_loss"]) < 1e-4
    games = write_games(tmp_path / "games.jsonl", random_games(24))
    tiny = ["--games", games, "--layers", 1, "--hidden", 32, "--heads", 2, "--intermediate", 64, "--max-len", 96,
            "--batch-size", 8, "--steps", 3, "--checkpoint-every", 3, "--quiet", "--dropout", 0]
    xiangqi = [_finish(_script(XIANGQI, *tiny, "--out", tmp_path / name, *extra))
               for name, extra in (("xq1", ()), ("xq8", ("--distribution", "data")))]
    assert all(code == 0 for code, _, _ in xiangqi), [err[-2000:] for _, _, err in xiangqi]
    losses = [_summary(out)["final_train_loss"] for _, out, _ in xiangqi]
    assert abs(losses[0] - losses[1]) < 1e-4
    bad = _finish(_script(PRETRAIN, "--corpus", corpus, "--out", tmp_path / "bad", *TINY_MLM,
                          "--distribution", "data", "--batch-size", "6"))
    assert bad[0] == 2 and bad[2].strip().splitlines()[-1] == (
        "error: --batch-size 6 does not split over the batch axis of 8 devices: give a multiple of 8")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _two_processes(corpus, outs, *extra):
    port = _free_port()
    procs = [_script(PRETRAIN, "--corpus", corpus, "--out", out, *TINY_MLM, "--distribution", "data",
                     "--coordinator", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", index, *extra,
                     devices=2) for index, out in enumerate(outs)]
    results = []
    try:
        for proc in procs:
            results.append(_finish(proc, timeout=240))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for code, _, err in results:
        assert code == 0, err[-3000:]
    return results


def test_two_processes_train_as_one_and_only_process_0_writes(corpus, tmp_path):
    single = _finish(_script(PRETRAIN, "--corpus", corpus, "--out", tmp_path / "one", *TINY_MLM, devices=4))
    assert single[0] == 0, single[2][-3000:]
    first, second = tmp_path / "p0", tmp_path / "p1"
    results = _two_processes(corpus, [first, second], "--stop-after", "2")
    assert (first / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    assert (first / "log.csv").exists() and not (second / "checkpoints").exists()
    assert not (second / "log.csv").exists() and not (second / "train_config.json").exists()
    assert all("stopped at step 2" in err for _, _, err in results)
    resumed = _two_processes(corpus, [first, first], "--resume")
    summaries = [_summary(out) for _, out, _ in resumed]
    one = _summary(single[1])
    assert summaries[0] == json.loads((first / "train_summary.json").read_text())
    for summary in summaries:
        assert summary["steps"] == 4 and abs(summary["final_held_out_loss"] - one["final_held_out_loss"]) < 1e-4
    assert (first / "model" / "model.safetensors").exists() and (first / "loss.png").exists()
    assert not (second / "model").exists()
