#!/usr/bin/env python
"""A whole BERT-base-shaped encoder (12 x 768, 12 heads, random weights) on
long inputs with hierarchical positions: forward time and peak memory per
attention kind, each configuration in a fresh subprocess. Prints a table;
--write also puts it into docs/benchmarks.md.

    python scripts/bench_long_bert.py --write               # performer at 16384, references at 4096
    python scripts/bench_long_bert.py --configs performer:16384 softmax:4096
"""

import argparse
import json
import subprocess
import sys

import _common  # quiet TF, one-line errors

from toolkit import benchmarking

CHILD = r"""
import json, sys, time
import numpy as np, tensorflow as tf
from models import build_transformer_model
from toolkit.benchmarking import proc_status_kb
attention, n, layers, features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=layers, num_attention_heads=12,
           intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
kw = {"nb_features": features, "seed": 0} if attention == "performer" else {}
model = build_transformer_model(cfg, hierarchical_position=True, attention=attention, attention_kwargs=kw)
ids = np.random.default_rng(0).integers(1, 30000, size=(1, n)).astype("int32")
seg = np.zeros_like(ids)
fn = tf.function(lambda a, b: model([a, b], training=False))
def hwm():
    return proc_status_kb("VmHWM") / 1024
base = hwm()
t = time.perf_counter(); out = fn(ids, seg).numpy(); first = time.perf_counter() - t
times = []
for _ in range(int(sys.argv[5])):
    t = time.perf_counter(); out = fn(ids, seg).numpy(); times.append(time.perf_counter() - t)
assert np.isfinite(out).all()
print(json.dumps({"first_s": first, "median_s": float(np.median(times)), "peak_mb": hwm(), "model_mb": base}))
"""


def run(attention, n, layers, features, repeats, timeout):
    cmd = [sys.executable, "-c", CHILD, attention, str(n), str(layers), str(features), str(repeats)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-1:] or ["killed"]
        return {"error": ("out of memory" if proc.returncode in (-9, 137) else tail[0][:80])}
    return json.loads(proc.stdout.strip().splitlines()[-1])


ATTENTIONS = ("softmax", "performer", "taylor")


def parse_config(item):
    """``"performer:16384"`` -> ``("performer", 16384)``; anything else is a one-line UsageError."""
    attention, _, length = item.partition(":")
    if attention not in ATTENTIONS or not length.isdigit() or not 1 <= int(length) <= 512 ** 2:
        raise _common.UsageError(f"--configs {item!r}: expected ATTENTION:LENGTH with ATTENTION one of "
                                 f"{', '.join(ATTENTIONS)} and 1 <= LENGTH <= {512 ** 2}, e.g. performer:16384")
    return attention, int(length)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--configs", nargs="+", default=["softmax:4096", "performer:4096", "taylor:4096",
                                                   "performer:16384"],
                   help="ATTENTION:LENGTH pairs, each run in a fresh process")
    p.add_argument("--layers", type=int, default=12, help="transformer layers (BERT-base: 12)")
    p.add_argument("--nb-features", type=int, default=256, help="Performer random features m")
    p.add_argument("--repeats", type=int, default=2, help="timed forward passes after the first call (median)")
    p.add_argument("--timeout", type=float, default=900, help="seconds a configuration may run before it is stopped")
    _common.add_write(p, "the table into --md (section bench_long_bert)")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    _common.check_at_least(args, 1, "layers", "nb-features", "repeats")
    if not args.timeout > 0:
        raise _common.UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    args.configs = [parse_config(item) for item in args.configs]
    return args


def main(argv=None):
    args = parse_args(argv)
    head = ["attention", "tokens", "forward s (median)", "first call s", "peak RSS MiB", "of which weights + runtime"]
    rows = []
    for attention, n in args.configs:
        r = run(attention, n, args.layers, args.nb_features, args.repeats, args.timeout)
        print(f"{attention}:{n}", r, flush=True)
        if "error" in r:
            rows.append([attention, f"{int(n):,}", r["error"], "", "", ""])
        else:
            rows.append([attention, f"{int(n):,}", f"{r['median_s']:.2f}", f"{r['first_s']:.2f}",
                         f"{r['peak_mb']:,.0f}", f"{r['model_mb']:,.0f}"])
    text = (f"{args.layers} layers x 768 hidden x 12 heads, random weights, batch 1, hierarchical positions "
            f"(512 trained positions), Performer m = {args.nb_features}, Taylor in its linear or quadratic form "
            f"as `mode='auto'` picks. Each row runs in a fresh process; peak RSS is the process high-water mark.")
    body = benchmarking.section_body("Long-text BERT-base", "scripts/bench_long_bert.py", text,
                                     benchmarking.markdown_table(head, rows, align="lrrrrr"), argv)
    benchmarking.report(body, "bench_long_bert", args.write, args.md)
    return 0


if __name__ == "__main__":
    _common.run(main)
