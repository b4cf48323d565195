#!/usr/bin/env python
"""The CPM-LM pipeline at CPM-LM's size: random weights of its shape (32 layers,
hidden 2560, 32 heads, FFN 10240, vocabulary 30000, 1024 positions) written as
two fp16 Megatron shards under a temporary folder (toolkit.megatron's writer),
converted by scripts/convert_cpm_lm.py in a subprocess (wall time and peak RSS
against the float32 model size; goal <= 1.3x), then loaded in another
subprocess for greedy decoding (seconds per token, batch 1, against the bound of
reading every float32 weight once per token at the measured memory read rate).
Everything written is deleted at the end. Prints a table; --write also puts it
into docs/benchmarks.md (section bench_cpm).

    python scripts/bench_cpm.py --write                # full size: ~5.2 GB of shards, ~10.4 GB converted
    python scripts/bench_cpm.py --layers 2             # the same pipeline, 2 layers
    python scripts/bench_cpm.py --int8 --write         # convert_cpm_lm.py --int8, int8 decoding (torch backend)

--int8: the converter writes Keras int8 weights (quantized tensor by tensor) and the decoding
subprocess runs on Keras' torch backend (fbgemm int8 products, models.int8_decoding); sizes
and the bandwidth bound are then those of the int8 model (1 byte a weight; the float32
LayerNorms, biases and position table and the float32 scales counted as 4). Section bench_cpm_int8.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import _common  # quiet TF, one-line errors

from toolkit import benchmarking
from toolkit.megatron import random_megatron_shards, write_megatron_checkpoint

CPM_SHAPE = dict(num_layers=32, hidden=2560, heads=32, inner=10240, vocab=30000, positions=1024, shards=2)
CONVERTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "convert_cpm_lm.py")

GENERATE = r"""
import json, sys, time
from toolkit import quiet_startup
quiet_startup.install(force_level=True)
import numpy as np
from models import build_transformer_model
from toolkit.generation import generate
out_dir, prompt_len, new, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
quantize = None if sys.argv[5] == "float32" else sys.argv[5]
t = time.perf_counter()
model = build_transformer_model(out_dir + "/config.json", out_dir + ("/model.int8.weights.h5" if quantize else
                                "/model.weights.h5"), model="gpt2", initializer="zeros", quantize=quantize)
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

# what the converter imports before it reads a shard: its peak RSS without the weights
IMPORTS = r"""
from toolkit import quiet_startup
quiet_startup.install(force_level=True)
import torch, tensorflow, keras
from models import build_transformer_model
from toolkit.megatron import MegatronCheckpoint
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--layers", type=int, default=CPM_SHAPE["num_layers"],
                   help="transformer layers (default 32, CPM-LM's; e.g. 2 for a quick check)")
    p.add_argument("--prompt", type=int, default=16, help="prompt tokens")
    p.add_argument("--new", type=int, default=16, help="new tokens (>= 2: seconds per token are timed between tokens)")
    p.add_argument("--repeats", type=int, default=3, help="timed generations (median)")
    p.add_argument("--int8", action="store_true",
                   help="convert with --int8 and decode the int8 model on Keras' torch backend (section bench_cpm_int8)")
    p.add_argument("--tmp-dir", default="/tmp", help="where the shards and the converted model go (deleted after)")
    _common.add_write(p, "the table into --md (section bench_cpm)")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    _common.check_at_least(args, 1, "layers", "prompt", "repeats")
    _common.check_at_least(args, 2, "new")
    if args.prompt + args.new > CPM_SHAPE["positions"]:
        raise _common.UsageError(f"--prompt {args.prompt} + --new {args.new} exceeds CPM-LM's "
                                 f"{CPM_SHAPE['positions']} positions")
    return args


def param_count(num_layers, hidden, inner, vocab, positions, **_):
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * inner + inner + hidden + 4 * hidden
    return vocab * hidden + positions * hidden + num_layers * per_layer + 2 * hidden


def model_bytes(shape, int8=False):
    """Bytes of the model's weights: float32, or int8 (1 byte a kernel or table weight; the position
    table, LayerNorms, biases and the per-unit scales float32)."""
    if not int8:
        return 4 * param_count(**shape)
    hidden, inner, layers = shape["hidden"], shape["inner"], shape["num_layers"]
    int8_weights = shape["vocab"] * hidden + layers * (4 * hidden * hidden + 2 * hidden * inner)
    return int8_weights + 4 * (param_count(**shape) - int8_weights + shape["vocab"] + layers * (4 * hidden + inner
                                                                                                  + hidden))


def _checked(what, measured):
    """``run_measured``'s result without the process, which must have succeeded."""
    proc, *figures = measured
    if proc.returncode:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    return proc, *figures


def measure(args, shape, tmp):
    """Write the shards, time the imports, convert, generate: the figures of the table."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    src, out = os.path.join(tmp, "CPM"), os.path.join(tmp, "out")
    start = time.perf_counter()
    paths = write_megatron_checkpoint(src, random_megatron_shards(**shape), num_shards=shape["num_shards"])
    figures = dict(write_s=time.perf_counter() - start, shard_bytes=sum(map(os.path.getsize, paths)))
    print(f"wrote {_gib(figures['shard_bytes'])} of fp16 shards in {figures['write_s']:.1f} s", file=sys.stderr)
    _, figures["base_s"], figures["base_rss"], _ = _checked(
        "import baseline", benchmarking.run_measured([sys.executable, "-c", IMPORTS], env))
    _, figures["convert_s"], figures["convert_rss"], figures["how"] = _checked("conversion", benchmarking.run_measured(
        [sys.executable, CONVERTER, src, out, "--num-layers", str(shape["num_layers"]), "--num-heads",
         str(CPM_SHAPE["heads"]), "--quiet"] + (["--int8"] if args.int8 else []), env))
    figures["h5_bytes"] = os.path.getsize(os.path.join(out, "model.int8.weights.h5" if args.int8 else
                                                       "model.weights.h5"))
    print(f"converted in {figures['convert_s']:.1f} s, peak RSS {_gib(figures['convert_rss'])}", file=sys.stderr)
    shutil.rmtree(src)  # disk: the shards are not needed any more
    gen_env = dict(env, KERAS_BACKEND="torch") if args.int8 else env
    proc, _, figures["gen_rss"], _ = _checked("generation", benchmarking.run_measured(
        [sys.executable, "-c", GENERATE, out, str(args.prompt), str(args.new), str(args.repeats),
         "int8" if args.int8 else "float32"], gen_env))
    figures.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return figures


def _gib(n):
    return f"{n / 2**30:.2f} GiB"


def table_rows(args, shape, fig):
    """The rows of the table: (step, measured, against, ratio)."""
    kind, full_layers = ("int8", CPM_SHAPE["num_layers"]) if args.int8 else ("fp32", CPM_SHAPE["num_layers"])
    fp32 = model_bytes(shape, args.int8)  # the model's size, int8 with --int8
    model = f"{kind} model {_gib(fp32)}"
    bound = fp32 / (fig["read_gbs"] * 1e9)
    rows = [
        ("write 2 fp16 Megatron shards (this process)", f"{fig['write_s']:.1f} s, {_gib(fig['shard_bytes'])}", "-", "-"),
        ("python + torch + TF imports alone: wall / peak RSS", f"{fig['base_s']:.1f} s / {_gib(fig['base_rss'])}",
         "-", "-"),
        ("convert_cpm_lm.py (subprocess): wall time", f"{fig['convert_s']:.1f} s", "-", "-"),
        ("convert_cpm_lm.py: peak RSS", _gib(fig["convert_rss"]), model,
         f"{fig['convert_rss'] / fp32:.2f}x (goal <= 1.3x)"),
        ("convert_cpm_lm.py: peak RSS above the imports", _gib(fig["convert_rss"] - fig["base_rss"]), model,
         f"{(fig['convert_rss'] - fig['base_rss']) / fp32:.2f}x"),
        ("model.weights.h5 written", _gib(fig["h5_bytes"]), model, f"{fig['h5_bytes'] / fp32:.2f}x"),
        ("load converted model (subprocess, zeros init + .weights.h5)", f"{fig['load_s']:.1f} s", "-", "-"),
        ("generation subprocess: peak RSS", _gib(fig["gen_rss"]), model, f"{fig['gen_rss'] / fp32:.2f}x"),
        ("first generate() call: tracing prefill and step", f"{fig['trace_s']:.1f} s", "-", "-"),
        (f"prefill, prompt {args.prompt} tokens", f"{fig['prefill_s']:.3f} s", "-", "-"),
        (f"greedy decoding, batch 1: s/token (median of {args.repeats} x {args.new} tokens)", f"{fig['step_s']:.4f} s",
         f"bandwidth bound {bound:.4f} s", f"{fig['step_s'] / bound:.2f}x"),
    ]
    if shape["num_layers"] != full_layers:
        # What scales with depth is known exactly: the float32 variables, and (converter) the fp16 shard
        # pages it maps. The rest (imports, ~3 transient copies of the largest tensor, the 293 MiB
        # embedding, and allocator slack) is taken as measured here, i.e. as independent of depth.
        fp32_full = model_bytes(dict(shape, num_layers=full_layers), args.int8)
        full_shards = fig["shard_bytes"] * param_count(**dict(shape, num_layers=full_layers)) / param_count(**shape)
        est_conv = fig["convert_rss"] + (fp32_full - fp32) + (full_shards - fig["shard_bytes"])
        est_gen = fig["gen_rss"] + (fp32_full - fp32)
        rows += [
            (f"estimate at {full_layers} layers: convert peak RSS (of which fp16 shard pages, reclaimable "
             "page cache)", f"~{_gib(est_conv)} ({_gib(full_shards)})", f"{kind} model {_gib(fp32_full)}",
             f"~{est_conv / fp32_full:.2f}x"),
            (f"estimate at {full_layers} layers: generation peak RSS", f"~{_gib(est_gen)}",
             f"{kind} model {_gib(fp32_full)}", f"~{est_gen / fp32_full:.2f}x"),
            (f"bandwidth bound at {full_layers} layers", f"{fp32_full / (fig['read_gbs'] * 1e9):.3f} s/token", "-", "-"),
        ]
    return rows


def main(argv=None):
    args = parse_args(argv)
    shape = dict(num_layers=args.layers, hidden=CPM_SHAPE["hidden"], inner=CPM_SHAPE["inner"],
                 vocab=CPM_SHAPE["vocab"], positions=CPM_SHAPE["positions"], num_shards=CPM_SHAPE["shards"])
    import torch  # noqa: F401  (imported before the shard writing is timed)

    read_gbs = benchmarking.read_bandwidth_gbs()  # before anything else holds memory
    print(f"memory read rate {read_gbs:.1f} GB/s", file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="bench_cpm_", dir=args.tmp_dir)
    try:
        figures = dict(measure(args, shape, tmp), read_gbs=read_gbs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    params, fp32 = param_count(**shape), 4 * param_count(**shape)
    kind = "int8" if args.int8 else "float32"
    table = benchmarking.markdown_table(["step", "measured", "against", "ratio"], table_rows(args, shape, figures),
                                        align="lrrr")
    text = (f"CPM-LM shape at {args.layers} layers (hidden {shape['hidden']}, {CPM_SHAPE['heads']} heads, FFN "
            f"{shape['inner']}, vocabulary {shape['vocab']}, {shape['positions']} positions): {params / 1e6:.0f}M "
            f"parameters, {_gib(fp32)} float32; random weights written as {shape['num_shards']} fp16 Megatron shards "
            f"(the shards are in the page cache when the converter reads them). Peak RSS by {figures['how']}; it "
            f"counts the memory-mapped shard pages the converter has read. Memory read rate {read_gbs:.1f} GB/s "
            f"(`a.sum()` over a 1 GiB float32 array, median of 5; one core, while TF's matmuls use all of them, so "
            f"decoding can beat the bound); the bound reads every {kind} weight once per token."
            + (" int8: `convert_cpm_lm.py --int8`, decoding on Keras' torch backend (fbgemm products of Keras' "
               "int8 weights, which it packs once: a second int8 copy)." if args.int8 else ""))
    title = "CPM-LM int8: Megatron conversion and greedy decoding" if args.int8 else \
        "CPM-LM: Megatron conversion and greedy decoding"
    body = benchmarking.section_body(title, "scripts/bench_cpm.py", text,
                                     table, argv)
    benchmarking.report(body, "bench_cpm_int8" if args.int8 else "bench_cpm", args.write, args.md)
    return figures


if __name__ == "__main__":
    _common.run(main)
