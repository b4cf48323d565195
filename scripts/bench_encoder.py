#!/usr/bin/env python
"""Encoder forward-pass throughput: keras-longctx BERT vs Hugging Face
transformers (torch) vs keras-hub's BertBackbone, same shape, random weights,
one process. Prints a table; --write also puts it into docs/benchmarks.md.

    python scripts/bench_encoder.py --write          # BERT-base, 4 x 512, 5 repeats, into the docs
    python scripts/bench_encoder.py --layers 2 --repeats 3
"""

import argparse
import os

import _common  # quiet TF, one-line errors
import numpy as np

from toolkit import benchmarking
from toolkit.benchmarking import matmul_peak_gflops, median_time


def forward_flops(batch, length, hidden, layers, intermediate):
    tokens = batch * length
    per_layer = 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate) + 2 * 2 * batch * length * length * hidden
    return layers * per_layer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--batch", type=int, default=4, help="sequences per forward pass")
    p.add_argument("--length", type=int, default=512, help="tokens per sequence (at most 512)")
    p.add_argument("--layers", type=int, default=12, help="transformer layers")
    p.add_argument("--hidden", type=int, default=768, help="hidden size (a multiple of --heads)")
    p.add_argument("--heads", type=int, default=12, help="attention heads")
    p.add_argument("--repeats", type=int, default=5, help="timed forward passes per implementation (median)")
    _common.add_write(p, "the table into --md (section bench_encoder)")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    _common.check_at_least(args, 1, "batch", "length", "layers", "hidden", "heads", "repeats")
    if args.length > 512:
        raise _common.UsageError(f"--length must be <= 512 (BERT's positions), got {args.length}")
    if args.hidden % args.heads:
        raise _common.UsageError(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    return args


def time_implementations(args, ids, seg):
    """``{implementation: median seconds}`` of one forward pass of each implementation."""
    import keras_hub
    import tensorflow as tf
    import torch
    import transformers

    from models import build_transformer_model

    torch.set_num_threads(os.cpu_count())
    b, n, h, nl = args.batch, args.length, args.hidden, args.layers
    inter = 4 * h
    results = {}

    ours = build_transformer_model(dict(vocab_size=30522, hidden_size=h, num_hidden_layers=nl, num_attention_heads=args.heads,
                                        intermediate_size=inter, max_position_embeddings=512, type_vocab_size=2))
    ours_fn = tf.function(lambda a, s: ours([a, s], training=False))
    results["keras-longctx (this package)"] = median_time(lambda: ours_fn(ids, seg).numpy(), args.repeats)
    del ours, ours_fn

    hub = keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=nl, num_heads=args.heads, hidden_dim=h,
                                        intermediate_dim=inter, max_sequence_length=512)
    feed = {"token_ids": ids, "segment_ids": seg, "padding_mask": np.ones_like(ids)}
    hub_fn = tf.function(lambda f: hub(f, training=False)["sequence_output"])
    results["keras-hub BertBackbone"] = median_time(lambda: hub_fn(feed).numpy(), args.repeats)
    del hub, hub_fn

    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=h, num_hidden_layers=nl, num_attention_heads=args.heads,
                                  intermediate_size=inter)
    hf = transformers.BertModel(cfg).eval()
    t_ids, t_mask = torch.from_numpy(ids).long(), torch.ones(b, n, dtype=torch.long)

    def run_hf():
        with torch.inference_mode():
            hf(input_ids=t_ids, attention_mask=t_mask).last_hidden_state.numpy()

    results[f"HF transformers {transformers.__version__} (torch {torch.__version__}, {cfg._attn_implementation})"] = \
        median_time(run_hf, args.repeats)
    return results


def main(argv=None):
    args = parse_args(argv)
    import keras

    b, n, h, nl = args.batch, args.length, args.hidden, args.layers
    inter = 4 * h
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30000, size=(b, n)).astype("int32")
    seg = np.zeros_like(ids)
    results = time_implementations(args, ids, seg)

    peak = matmul_peak_gflops()
    flops = forward_flops(b, n, h, nl, inter)
    ref_hf = next(v for k, v in results.items() if k.startswith("HF"))
    ref_hub = results["keras-hub BertBackbone"]
    head = ["implementation", "median s / batch", "tokens/s", "GFLOP/s", "% of matmul peak", "vs HF", "vs keras-hub"]
    rows = [[name, f"{t:.3f}", f"{b * n / t:,.0f}", f"{flops / t / 1e9:.0f}", f"{100 * flops / t / 1e9 / peak:.0f}%",
             f"{ref_hf / t:.2f}x", f"{ref_hub / t:.2f}x"] for name, t in results.items()]
    text = (f"BERT shape {nl} layers x {h} hidden x {args.heads} heads, batch {b} x {n} tokens, float32, random "
            f"weights, forward only, median of {args.repeats} repeats after one warm-up; Keras models run "
            f"under `tf.function` (TensorFlow backend, keras {keras.__version__}).")
    body = benchmarking.section_body(
        "Encoder forward pass", "scripts/bench_encoder.py", text,
        benchmarking.markdown_table(head, rows, align="lrrrrrr"), argv,
        f"; measured float32 matmul peak {peak:.0f} GFLOP/s (2048^3, best of TF and torch)")
    benchmarking.report(body, "bench_encoder", args.write, args.md)
    return results


if __name__ == "__main__":
    _common.run(main)
