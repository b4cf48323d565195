#!/usr/bin/env python
"""Greedy generation speed: keras-longctx (KV cache) vs Hugging Face
``generate`` (torch) vs keras-hub's GPT2CausalLM (cached) vs bert4keras'
``AutoRegressiveDecoder`` (tf-keras subprocess; it re-runs the prefix), GPT-2
small shape with random weights, plus the floor of the weight products alone.
Prints a table; --write also puts it into docs/benchmarks.md.

    python scripts/bench_generate.py --write                 # prompt 64, 128 new, batch 1 and 8
    python scripts/bench_generate.py --layers 2 --new 16

With --cpm, the CPM-LM pipeline instead (its own section of docs/benchmarks.md):
random weights of CPM-LM's shape (32 layers, hidden 2560, 32 heads, FFN 10240,
vocabulary 30000, 1024 positions) written as two fp16 Megatron shards under a
temporary folder, converted by scripts/convert_cpm_lm.py in a subprocess (wall
time and peak RSS against the float32 model size; goal <= 1.3x), then loaded
in another subprocess for greedy decoding (seconds per token, batch 1, against
the bound of reading every float32 weight once per token at the measured memory
read rate). Everything written is deleted at the end.

    python scripts/bench_generate.py --cpm --write           # full size: ~5.2 GB of shards, ~10.4 GB converted
    python scripts/bench_generate.py --cpm --cpm-layers 2    # the same pipeline, 2 layers
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import _common
import numpy as np

B4K_SCRIPT = r"""
import sys, json, time, numpy as np, tensorflow as tf
from bert4keras.models import build_transformer_model
from bert4keras.snippets import AutoRegressiveDecoder
cfg, prompt_len, new, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
model = build_transformer_model(cfg, None, model='gpt2')
class Greedy(AutoRegressiveDecoder):
    @AutoRegressiveDecoder.wraps(default_rtype='probas')
    def predict(self, inputs, output_ids, states):
        ids = np.concatenate([inputs[0], output_ids], 1)
        return self.last_token(model).predict(ids, verbose=0)
rng = np.random.default_rng(0)
out = {}
for b in batches:
    prompt = rng.integers(1, 50000, size=(prompt_len,))
    dec = Greedy(start_id=None, end_id=-1, maxlen=new)
    # bert4keras decodes one prompt at a time: a batch of b costs b runs.
    dec.maxlen = 4; dec.beam_search([prompt], topk=1); dec.maxlen = new
    t = time.perf_counter()
    dec.beam_search([prompt], topk=1)
    out[b] = b * new / ((time.perf_counter() - t) * b)
print(json.dumps(out))
"""


def bench_ours(cfg, prompt, new, batch, repeats):
    from models import build_transformer_model
    from toolkit.generation import generate

    model = build_transformer_model(cfg, model="gpt2", with_lm="linear")
    prompts = [list(prompt)] * batch
    generate(model, prompts, new)  # trace prefill + step once
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = generate(model, prompts, new)
        times.append(time.perf_counter() - t)
        assert all(len(o) == new for o in out)
    return batch * new / float(np.median(times))


def bench_hf(cfg, prompt, new, batch, repeats):
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count())
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg)).eval()
    ids = torch.tensor([list(prompt)] * batch)
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False,
              pad_token_id=0)
    times = []
    with torch.inference_mode():
        model.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))
        for _ in range(repeats):
            t = time.perf_counter()
            model.generate(ids, **kw)
            times.append(time.perf_counter() - t)
    return batch * new / float(np.median(times))


def bench_keras_hub(cfg, prompt, new, batch, repeats):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=cfg["vocab_size"], num_layers=cfg["n_layer"],
                                             num_heads=cfg["n_head"], hidden_dim=cfg["n_embd"],
                                             intermediate_dim=4 * cfg["n_embd"], max_sequence_length=cfg["n_positions"])
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy")
    total = len(prompt) + new
    ids = np.zeros((batch, total), "int32")
    ids[:, : len(prompt)] = prompt
    mask = np.zeros((batch, total), bool)
    mask[:, : len(prompt)] = True
    feed = {"token_ids": ids, "padding_mask": mask}
    lm.generate(feed, stop_token_ids=None)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        lm.generate(feed, stop_token_ids=None)
        times.append(time.perf_counter() - t)
    return batch * new / float(np.median(times))


def bench_bert4keras(cfg, prompt_len, new, batches):
    bert_cfg = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["n_embd"], num_hidden_layers=cfg["n_layer"],
                    num_attention_heads=cfg["n_head"], intermediate_size=4 * cfg["n_embd"], hidden_act="gelu",
                    max_position_embeddings=cfg["n_positions"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bert_cfg, f)
    env = dict(os.environ, TF_KERAS="1", TF_USE_LEGACY_KERAS="1", KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", B4K_SCRIPT, f.name, str(prompt_len), str(new), json.dumps(batches)],
                          env=env, capture_output=True, text=True)
    os.remove(f.name)
    if proc.returncode:
        raise RuntimeError(f"bert4keras run failed:\n{proc.stderr[-3000:]}")
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def matvec_floor_tok_s(layers, hidden, vocab, batch=1, repeats=20):
    """Tokens/s of the model's weight products alone: per layer x @ W_qkv, @ W_o, @ W_in, @ W_out,
    then the vocab x hidden LM head, as one tf.function on a (batch, hidden) input (no attention,
    LayerNorm, embedding or host loop). The practical floor of a TF decoder on this machine: it reads
    every weight once per token through TF's own matrix-vector kernels, on all cores."""
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def var(*shape):
        return tf.Variable(rng.standard_normal(shape, dtype=np.float32) * 0.02)

    ws = [(var(hidden, 3 * hidden), var(hidden, hidden), var(hidden, 4 * hidden), var(4 * hidden, hidden))
          for _ in range(layers)]
    head = var(vocab, hidden)

    @tf.function
    def chain(x):
        for qkv, out, w_in, w_out in ws:
            x = x + tf.matmul(tf.matmul(x, qkv)[:, :hidden], out)
            x = x + tf.matmul(tf.nn.gelu(tf.matmul(x, w_in)), w_out)
        return tf.matmul(x, head, transpose_b=True)

    x = tf.constant(rng.standard_normal((batch, hidden), dtype=np.float32))
    chain(x).numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        chain(x).numpy()
        times.append(time.perf_counter() - t)
    return batch / float(np.median(times))


# --------------------------------------------------------------------- CPM-LM
CPM_SHAPE = dict(layers=32, hidden=2560, heads=32, inner=10240, vocab=30000, positions=1024, shards=2)
SCRIPTS = os.path.dirname(os.path.abspath(__file__))

CPM_GEN_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import _common
import numpy as np
from models import build_transformer_model
from toolkit.generation import generate
out_dir, prompt_len, new, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t = time.perf_counter()
model = build_transformer_model(out_dir + "/config.json", out_dir + "/model.weights.h5", model="gpt2",
                                initializer="zeros")
load_s = time.perf_counter() - t
vocab = model.transformer.vocab_size
prompt = np.random.default_rng(0).integers(10, vocab, size=(prompt_len,)).tolist()
dec = model.cached_decoder()
plen = -(-prompt_len // dec.bucket) * dec.bucket
warm = next(n for n in range(1, new + 1) if dec.cache_length(plen, n) == dec.cache_length(plen, new))
t = time.perf_counter()
generate(model, [prompt], max(warm, 2))  # trace prefill and step for the cache length of the timed runs
trace_s = time.perf_counter() - t
steps, prefills = [], []
for _ in range(repeats):
    stamps = []
    t = time.perf_counter()
    out = generate(model, [prompt], new, callback=lambda *a: stamps.append(time.perf_counter()))
    assert len(out[0]) == new
    prefills.append(stamps[0] - t)
    steps.append((stamps[-1] - stamps[0]) / (len(stamps) - 1))
print(json.dumps(dict(load_s=load_s, trace_s=trace_s, step_s=float(np.median(steps)),
                      prefill_s=float(np.median(prefills)), steps=steps)))
"""

CPM_BASELINE_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import _common
import torch, tensorflow, keras
from models import build_transformer_model
from toolkit.megatron import MegatronCheckpoint
"""


def cpm_param_count(layers, hidden, inner, vocab, positions, **_):
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * inner + inner + hidden + 4 * hidden
    return vocab * hidden + positions * hidden + layers * per_layer + 2 * hidden


def write_cpm_shards(root, layers, hidden, inner, vocab, positions, shards, seed=0, **_):
    """Random fp16 weights of a Megatron GPT-2 (CPM-Generate layout) as
    ``shards`` model-parallel files ``root/80000/mp_rank_XX_model_states.pt``.
    One shard's state dict (fp16, built tensor by tensor) is in memory at a time;
    replicated tensors get the same values on every rank. Returns the bytes written."""
    import zlib

    import torch

    folder = os.path.join(root, "80000")
    os.makedirs(folder)
    with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write("80000\n")
    n = shards

    def tensor(key, shape, rank, kind):
        # replicated tensors are seeded by name only: equal on every rank, as in Megatron
        g = torch.Generator().manual_seed(seed * 7919 + zlib.crc32(key.encode()) + (0 if kind == "rep" else rank))
        t = torch.empty(shape, dtype=torch.float16)
        if key.endswith("layernorm.weight"):
            return t.fill_(1.0)
        return t.normal_(0.0, 0.02, generator=g)

    layer_keys = {  # per-rank shapes; "rep": replicated on every rank
        "input_layernorm.weight": ((hidden,), "rep"), "input_layernorm.bias": ((hidden,), "rep"),
        "attention.query_key_value.weight": ((3 * hidden // n, hidden), "split"),
        "attention.query_key_value.bias": ((3 * hidden // n,), "split"),
        "attention.dense.weight": ((hidden, hidden // n), "split"), "attention.dense.bias": ((hidden,), "rep"),
        "post_attention_layernorm.weight": ((hidden,), "rep"), "post_attention_layernorm.bias": ((hidden,), "rep"),
        "mlp.dense_h_to_4h.weight": ((inner // n, hidden), "split"), "mlp.dense_h_to_4h.bias": ((inner // n,), "split"),
        "mlp.dense_4h_to_h.weight": ((hidden, inner // n), "split"), "mlp.dense_4h_to_h.bias": ((hidden,), "rep"),
    }
    total = 0
    for rank in range(n):
        state = {"word_embeddings.weight": tensor("word_embeddings.weight", (vocab // n, hidden), rank, "split"),
                 "position_embeddings.weight": tensor("position_embeddings.weight", (positions, hidden), rank, "rep")}
        for i in range(layers):
            for key, (shape, kind) in layer_keys.items():
                name = f"transformer.layers.{i}.{key}"
                state[name] = tensor(name, shape, rank, kind)
        for key in ("transformer.final_layernorm.weight", "transformer.final_layernorm.bias"):
            state[key] = tensor(key, (hidden,), rank, "rep")
        path = os.path.join(folder, f"mp_rank_{rank:02d}_model_states.pt")
        torch.save({"module": state, "iteration": 80000, "mp_world_size": n, "dp_world_size": 1}, path)
        del state
        total += os.path.getsize(path)
    return total


def run_measured(cmd, env=None):
    """Run ``cmd``; returns ``(completed process, wall seconds, peak RSS in bytes, how)``.
    Peak RSS from GNU time's -v report if /usr/bin/time exists, else from
    getrusage(RUSAGE_CHILDREN), which is the largest of all children so far."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    full = ([gnu_time, "-v"] if gnu_time else []) + cmd
    t = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr) if gnu_time else None
    if m:
        return proc, wall, int(m.group(1)) * 1024, "GNU time -v"
    return proc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "getrusage(RUSAGE_CHILDREN)"


def read_bandwidth_gbs(nbytes=2**30, repeats=5):
    """Memory read rate, GB/s: bytes of a float32 array / time of ``a.sum()`` (median of ``repeats``)."""
    a = np.ones(nbytes // 4, np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t)
    rate = a.nbytes / float(np.median(times)) / 1e9
    del a
    return rate


def _gib(n):
    return f"{n / 2**30:.2f} GiB"


def bench_cpm(args, argv):
    shape = dict(CPM_SHAPE, layers=args.cpm_layers)
    full = dict(CPM_SHAPE)
    params, params_full = cpm_param_count(**shape), cpm_param_count(**full)
    fp32, fp32_full = 4 * params, 4 * params_full
    prompt_len = 16 if args.prompt is None else args.prompt
    new = 16 if args.new is None else args.new
    if new < 2 or prompt_len < 1:
        raise _common.UsageError("--cpm needs --new >= 2 (seconds per token are timed between tokens) "
                                 "and --prompt >= 1")
    if prompt_len + new > CPM_SHAPE["positions"]:
        raise _common.UsageError(f"--prompt + --new must fit CPM-LM's {CPM_SHAPE['positions']} positions")
    import torch  # noqa: F401  (imported before the shard writing is timed)

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    bw = read_bandwidth_gbs()  # before anything else holds memory
    print(f"memory read rate {bw:.1f} GB/s", file=sys.stderr)

    tmp = tempfile.mkdtemp(prefix="bench_cpm_", dir=args.tmp_dir)
    try:
        src, out = os.path.join(tmp, "CPM"), os.path.join(tmp, "out")
        t = time.perf_counter()
        shard_bytes = write_cpm_shards(src, **shape)
        write_s = time.perf_counter() - t
        print(f"wrote {_gib(shard_bytes)} of fp16 shards in {write_s:.1f} s", file=sys.stderr)

        proc, base_s, base_rss, _ = run_measured([sys.executable, "-c", CPM_BASELINE_SCRIPT, SCRIPTS], env)
        if proc.returncode:
            raise RuntimeError(f"import baseline failed:\n{proc.stderr[-3000:]}")
        proc, conv_s, conv_rss, how = run_measured(
            [sys.executable, os.path.join(SCRIPTS, "convert_cpm_lm.py"), src, out,
             "--num-layers", str(shape["layers"]), "--num-heads", str(shape["heads"]), "--quiet"], env)
        if proc.returncode:
            raise RuntimeError(f"conversion failed:\n{proc.stderr[-3000:]}")
        h5_bytes = os.path.getsize(os.path.join(out, "model.weights.h5"))
        print(f"converted in {conv_s:.1f} s, peak RSS {_gib(conv_rss)}", file=sys.stderr)
        shutil.rmtree(src)  # disk: the shards are not needed any more

        proc, gen_s, gen_rss, _ = run_measured(
            [sys.executable, "-c", CPM_GEN_SCRIPT, SCRIPTS, out, str(prompt_len), str(new), str(args.repeats)], env)
        if proc.returncode:
            raise RuntimeError(f"generation failed:\n{proc.stderr[-3000:]}")
        gen = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    bound = fp32 / (bw * 1e9)
    ratio = conv_rss / fp32
    rows = [
        ("write 2 fp16 Megatron shards (this process)", f"{write_s:.1f} s, {_gib(shard_bytes)}", "-", "-"),
        ("python + torch + TF imports alone: wall / peak RSS", f"{base_s:.1f} s / {_gib(base_rss)}", "-", "-"),
        ("convert_cpm_lm.py (subprocess): wall time", f"{conv_s:.1f} s", "-", "-"),
        ("convert_cpm_lm.py: peak RSS", _gib(conv_rss), f"fp32 model {_gib(fp32)}",
         f"{ratio:.2f}x (goal <= 1.3x)"),
        ("convert_cpm_lm.py: peak RSS above the imports", _gib(conv_rss - base_rss), f"fp32 model {_gib(fp32)}",
         f"{(conv_rss - base_rss) / fp32:.2f}x"),
        ("model.weights.h5 written", _gib(h5_bytes), f"fp32 model {_gib(fp32)}", f"{h5_bytes / fp32:.2f}x"),
        ("load converted model (subprocess, zeros init + .weights.h5)", f"{gen['load_s']:.1f} s", "-", "-"),
        ("generation subprocess: peak RSS", _gib(gen_rss), f"fp32 model {_gib(fp32)}", f"{gen_rss / fp32:.2f}x"),
        ("first generate() call: tracing prefill and step", f"{gen['trace_s']:.1f} s", "-", "-"),
        (f"prefill, prompt {prompt_len} tokens", f"{gen['prefill_s']:.3f} s", "-", "-"),
        (f"greedy decoding, batch 1: s/token (median of {args.repeats} x {new} tokens)", f"{gen['step_s']:.4f} s",
         f"bandwidth bound {bound:.4f} s", f"{gen['step_s'] / bound:.2f}x"),
    ]
    if shape["layers"] != full["layers"]:
        # What scales with depth is known exactly: the float32 variables, and (converter) the fp16 shard
        # pages it maps. The rest (imports, ~3 transient copies of the largest tensor, the 293 MiB
        # embedding, and allocator slack) is taken as measured here, i.e. as independent of depth.
        full_shards = shard_bytes * params_full / params
        est_conv = conv_rss + (fp32_full - fp32) + (full_shards - shard_bytes)
        est_gen = gen_rss + (fp32_full - fp32)
        rows += [
            (f"estimate at {full['layers']} layers: convert peak RSS (of which fp16 shard pages, reclaimable "
             "page cache)", f"~{_gib(est_conv)} ({_gib(full_shards)})", f"fp32 model {_gib(fp32_full)}",
             f"~{est_conv / fp32_full:.2f}x"),
            (f"estimate at {full['layers']} layers: generation peak RSS", f"~{_gib(est_gen)}",
             f"fp32 model {_gib(fp32_full)}", f"~{est_gen / fp32_full:.2f}x"),
            (f"bandwidth bound at {full['layers']} layers", f"{fp32_full / (bw * 1e9):.3f} s/token", "-", "-"),
        ]
    table = ["| step | measured | against | ratio |", "|---|---:|---:|---:|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    cmd = "python scripts/bench_generate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = (f"## CPM-LM: Megatron conversion and greedy decoding (`scripts/bench_generate.py --cpm`)\n\n"
            f"CPM-LM shape at {shape['layers']} layers (hidden {shape['hidden']}, {shape['heads']} heads, FFN "
            f"{shape['inner']}, vocabulary {shape['vocab']}, {shape['positions']} positions): {params / 1e6:.0f}M "
            f"parameters, {_gib(fp32)} float32; random weights written as {shape['shards']} fp16 Megatron shards "
            f"(the shards are in the page cache when the converter reads them). Peak RSS by {how}; it counts the "
            f"memory-mapped shard pages the converter has read. Memory read rate {bw:.1f} GB/s (`a.sum()` over a "
            f"1 GiB float32 array, median of 5; one core, while TF's matmuls use all of them, so decoding can beat "
            f"the bound); the bound reads every float32 weight once per token.\n"
            f"Machine: {_common.machine_description()}. Date: {_common.today()}. Command: `{cmd.strip()}`.\n\n"
            + "\n".join(table) + "\n")
    print(body)
    if args.write:
        _common.write_benchmark_section("bench_cpm", body)
        print("wrote docs/benchmarks.md (section bench_cpm)")
    return dict(convert_s=conv_s, convert_rss=conv_rss, base_rss=base_rss, gen_rss=gen_rss, fp32_bytes=fp32,
                read_gbs=bw, bound_s=bound, **gen)


PEERS = ("hf", "keras-hub", "bert4keras")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--layers", type=int, default=12, help="transformer layers (GPT-2 small: 12)")
    p.add_argument("--hidden", type=int, default=768, help="hidden size (a multiple of --heads)")
    p.add_argument("--heads", type=int, default=12, help="attention heads")
    p.add_argument("--vocab", type=int, default=50257, help="vocabulary size")
    p.add_argument("--prompt", type=int, default=None, help="prompt tokens (default 64; --cpm: 16)")
    p.add_argument("--new", type=int, default=None, help="new tokens (default 128; --cpm: 16)")
    p.add_argument("--batches", default="1,8", help="comma list of batch sizes, each timed")
    p.add_argument("--repeats", type=int, default=3, help="timed generations per measurement (median)")
    p.add_argument("--skip", default="", help="comma list of peers to skip: hf,keras-hub,bert4keras")
    p.add_argument("--cpm", action="store_true", help="the CPM-LM conversion + decoding benchmark (see above)")
    p.add_argument("--cpm-layers", type=int, default=CPM_SHAPE["layers"],
                   help="--cpm at this depth (default 32, CPM-LM's; e.g. 2 for a quick check)")
    p.add_argument("--tmp-dir", default="/tmp", help="--cpm: where the shards and converted model go (deleted after)")
    _common.add_write(p, "the table into docs/benchmarks.md (section bench_generate, or bench_cpm with --cpm)")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    _common.check_at_least(args, 1, "layers", "hidden", "heads", "repeats", "prompt", "new", "cpm-layers")
    _common.check_at_least(args, 2, "vocab")
    if args.hidden % args.heads:
        raise _common.UsageError(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    given = args.batches
    try:
        args.batches = [int(b) for b in given.split(",")]
    except ValueError:
        raise _common.UsageError(f"--batches {given!r}: expected a comma list of sizes, e.g. 1,8") from None
    if min(args.batches) < 1:
        raise _common.UsageError(f"--batches {given!r}: every batch size must be >= 1")
    args.skip = set(filter(None, args.skip.split(",")))
    if args.skip - set(PEERS):
        raise _common.UsageError(f"--skip {','.join(sorted(args.skip - set(PEERS)))}: unknown peer; "
                                 f"the peers are {','.join(PEERS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.cpm:
        return bench_cpm(args, argv)
    args.prompt = 64 if args.prompt is None else args.prompt
    args.new = 128 if args.new is None else args.new
    if args.prompt + args.new > 1024:
        raise _common.UsageError(f"--prompt {args.prompt} + --new {args.new} exceeds GPT-2's 1024 positions")
    cfg = dict(vocab_size=args.vocab, n_embd=args.hidden, n_layer=args.layers, n_head=args.heads, n_positions=1024)
    batches, skip = args.batches, args.skip
    prompt = np.random.default_rng(0).integers(1, args.vocab - 1, size=(args.prompt,)).tolist()

    rows = {}
    for b in batches:
        rows.setdefault("keras-longctx generate (KV cache)", {})[b] = bench_ours(cfg, prompt, args.new, b, args.repeats)
        if "hf" not in skip:
            rows.setdefault("HF transformers generate (torch)", {})[b] = bench_hf(cfg, prompt, args.new, b, args.repeats)
        if "keras-hub" not in skip:
            rows.setdefault("keras-hub GPT2CausalLM.generate", {})[b] = bench_keras_hub(cfg, prompt, args.new, b,
                                                                                       args.repeats)
    if "bert4keras" not in skip:
        rows["bert4keras AutoRegressiveDecoder (tf-keras)"] = bench_bert4keras(cfg, args.prompt, args.new, batches)

    h = args.hidden
    params = args.vocab * h + 1024 * h + args.layers * (12 * h * h + 13 * h) + 2 * h
    weight_bytes = 4 * params
    floor = {b: matvec_floor_tok_s(args.layers, h, args.vocab, b) for b in batches}
    ours = rows["keras-longctx generate (KV cache)"]
    header = "| implementation | " + " | ".join(f"batch {b} tok/s | vs ours" for b in batches) + " |"
    lines = [header, "|---|" + "---:|---:|" * len(batches)]
    for name, vals in rows.items():
        cells = []
        for b in batches:
            v = vals.get(b)
            cells.append(f"{v:.2f} | {v / ours[b]:.2f}x" if v else "- | -")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| floor: the weight products alone (TF matrix-vector chain, no attention / LayerNorm / loop) | "
                 + " | ".join(f"{floor[b]:.1f} | {floor[b] / ours[b]:.2f}x" for b in batches) + " |")
    cmd = "python scripts/bench_generate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = (f"## Greedy generation (`scripts/bench_generate.py`)\n\n"
            f"GPT-2 shape {args.layers} x {h} ({params / 1e6:.0f}M parameters, {weight_bytes / 2**20:.0f} MiB "
            f"float32), random weights, prompt {args.prompt} tokens, {args.new} new tokens, greedy, median of "
            f"{args.repeats} runs after a warm-up (bert4keras: one run, one prompt at a time, as its decoder "
            f"works). The floor row times the model's weight products alone ({weight_bytes / 1e6:.0f} MB read per step) "
            f"in one tf.function: what any TF decoder of this shape pays per step on this machine.\n"
            f"Machine: {_common.machine_description()}. Date: {_common.today()}. Command: `{cmd.strip()}`.\n\n"
            + "\n".join(lines) + "\n")
    print(body)
    if args.write:
        _common.write_benchmark_section("bench_generate", body)
        print("wrote docs/benchmarks.md (section bench_generate)")
    return rows


if __name__ == "__main__":
    _common.run(main)
