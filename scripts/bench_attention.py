#!/usr/bin/env python
"""Attention-layer scaling benchmark: softmax MultiHeadAttention vs PerformerAttention
(FAVOR+, m random features) vs TaylorAttention (exact, linear mode), one layer of
12 heads x 64 (hidden 768), batch 1, n = 512, 1024, ... doubling up to --max-n;
forward and forward+backward (gradients of mean(out^2) w.r.t. the input and the
weights), bidirectional and causal; "core forward" times the attention core alone
(``layer.attend`` on given split-head q, k, v: what differs between the methods,
without the four 768 x 768 projections that all of them share). Each (method, mode, n) runs in a fresh
subprocess: median wall time of --repeats compiled calls (tf.function / jax.jit)
after one warm-up call, and peak-RSS growth over the process's state just before
the first call (/proc/self/status VmHWM, reset between phases through
/proc/self/clear_refs). The parent kills a run that grows past --mem-limit-gb;
a method is skipped for larger n once it runs out of memory or a call takes more
than --time-limit seconds. Prints a table with ratios to softmax; with --write it
also writes the <!-- bench_attention --> section of docs/benchmarks.md and
docs/bench_attention.png (or --md / --png). Every finished configuration is
appended to --results (a JSON line each; with --write by default
docs/bench_attention.jsonl; without --write only if --results is given), so a
stopped run loses at most the configuration in progress: --resume reuses the
lines whose settings match and runs only the rest.
Below the table it states the issue's goals at the largest n both methods reached:
Performer vs softmax time and memory (bidirectional forward) and causal vs
bidirectional Performer.

    python scripts/bench_attention.py --write                  # full run, n = 512 ... 32768, into the docs
    python scripts/bench_attention.py --max-n 2048 --repeats 2  # quick check, table only
    python scripts/bench_attention.py --max-n 16384 --write --resume   # continue a stopped run
    KERAS_BACKEND=jax python scripts/bench_attention.py --methods performer taylor
"""

import argparse
import json
import os
import sys

import _common  # quiet TF, one-line errors

from toolkit import attention_benchmark as bench
from toolkit import benchmarking


# ----------------------------------------------------------------------------- child side
def _make_layer(cfg):
    from layers import MultiHeadAttention, PerformerAttention, TaylorAttention

    common = dict(num_heads=cfg["heads"], head_size=cfg["head_size"])
    if cfg["method"] == "softmax":
        return MultiHeadAttention(**common)
    if cfg["method"] == "performer":
        return PerformerAttention(nb_features=cfg["nb_features"], chunk_size=cfg["chunk_size"], seed=0, **common)
    return TaylorAttention(mode="linear", chunk_size=cfg["chunk_size"], **common)


def _functions(layer, x, causal, qkv):
    """Compiled forward, forward+backward and core-forward callables that block until the
    result is ready."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        qkv_t = [tf.constant(a) for a in qkv]
        fwd = tf.function(lambda a: layer(a, use_causal_mask=causal))
        core = tf.function(lambda q, k, v: layer.attend(q, k, v, causal=causal))

        @tf.function
        def fwd_bwd(a):
            with tf.GradientTape() as tape:
                tape.watch(a)
                loss = tf.reduce_mean(tf.square(layer(a, use_causal_mask=causal)))
            return tape.gradient(loss, [a] + list(layer.trainable_variables))

        return (lambda: fwd(xt).numpy()), (lambda: [g.numpy() for g in fwd_bwd(xt)]), \
            (lambda: core(*qkv_t).numpy())
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        xj = jnp.asarray(x)
        trainable = [v.value for v in layer.trainable_variables]
        frozen = [v.value for v in layer.non_trainable_variables]

        def run(tv, a):
            return layer.stateless_call(tv, frozen, a, use_causal_mask=causal)[0]

        fwd = jax.jit(run)
        grad = jax.jit(jax.grad(lambda tv, a: jnp.mean(jnp.square(run(tv, a))), argnums=(0, 1)))
        qkv_j = [jnp.asarray(a) for a in qkv]
        core = jax.jit(lambda q, k, v: layer.attend(q, k, v, causal=causal))
        return (lambda: fwd(trainable, xj).block_until_ready()), \
            (lambda: jax.block_until_ready(grad(trainable, xj))), \
            (lambda: core(*qkv_j).block_until_ready())
    raise SystemExit(f"bench_attention: backend {backend!r} not supported (use tensorflow or jax)")


def child(cfg):
    import numpy as np

    layer = _make_layer(cfg)
    x = np.random.default_rng(0).standard_normal((cfg["batch"], cfg["n"], cfg["heads"] * cfg["head_size"]))
    x = x.astype("float32")
    layer(x[:, :8])  # build the weights
    # split-head q, k, v for the core timing, scaled like projections of a unit-variance input
    shape = (cfg["batch"], cfg["n"], cfg["heads"], cfg["head_size"])
    qkv = [0.5 * np.random.default_rng(i).standard_normal(shape).astype("float32") for i in (1, 2, 3)]
    fwd, fwd_bwd, core = _functions(layer, x, cfg["causal"], qkv)
    out = {}
    # the core before forward+backward: it needs less memory than the forward, so it neither
    # changes the next pass's peak-RSS growth nor dies with the backward's out-of-memory
    for name, fn in (("forward", fwd), ("core forward", core), ("forward+backward", fwd_bwd)):
        if name not in cfg["passes"]:
            continue
        base = benchmarking.proc_status_kb("VmRSS")
        exact = benchmarking.reset_peak_rss()
        seconds = benchmarking.median_time(fn, cfg["repeats"])
        out[name] = dict(seconds=seconds, peak_mb=(benchmarking.proc_status_kb("VmHWM") - base) / 1024.0,
                         exact_peak=exact)
        if name == "core forward":  # the allocator still holds the forward's memory: time only
            del out[name]["peak_mb"]
        print("RESULT " + json.dumps({name: out[name]}), flush=True)
    return out


# ----------------------------------------------------------------------------- parent side
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--min-n", type=int, default=512, help="smallest sequence length")
    p.add_argument("--max-n", type=int, default=32768, help="largest sequence length (n doubles from --min-n)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
    p.add_argument("--methods", nargs="+", choices=bench.METHODS, default=list(bench.METHODS),
                   help="attention layers to time")
    p.add_argument("--modes", nargs="+", choices=bench.MODES, default=list(bench.MODES), help="attention masks to time")
    p.add_argument("--passes", nargs="+", choices=bench.PASSES, default=list(bench.PASSES),
                   help="what to time (see above)")
    p.add_argument("--heads", type=int, default=12, help="attention heads")
    p.add_argument("--head-size", type=int, default=64, help="size of each head")
    p.add_argument("--batch", type=int, default=1, help="sequences per call")
    p.add_argument("--nb-features", type=int, default=256, help="Performer random features m")
    p.add_argument("--chunk-size", type=int, default=128, help="causal chunk length of the linear layers")
    p.add_argument("--time-limit", type=float, default=60.0,
                   help="skip larger n for a method once one call takes longer than this many seconds")
    p.add_argument("--mem-limit-gb", type=float, default=None,
                   help="kill a run whose RSS exceeds this many GiB (default 85%% of MemAvailable at start)")
    _common.add_write(p, "the table into --md (section bench_attention), the plot into --png, and the results "
                         "into --results")
    p.add_argument("--png", default=None, help="--write: the plot (default docs/bench_attention.png)")
    p.add_argument("--results", default=None,
                   help="JSON-lines file that every finished configuration is appended to "
                        "(default with --write: docs/bench_attention.jsonl; without --write: none)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the results in --results that have this run's settings; run only the rest")
    _common.add_verbose(p)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return args
    _common.check_at_least(args, 1, "min-n", "repeats", "heads", "head-size", "batch", "nb-features", "chunk-size")
    if args.max_n < args.min_n:
        raise _common.UsageError(f"--max-n {args.max_n} is smaller than --min-n {args.min_n}")
    for option in ("time-limit", "mem-limit-gb"):
        value = getattr(args, option.replace("-", "_"))
        if value is not None and not value > 0:
            raise _common.UsageError(f"--{option} must be > 0, got {value}")
    args.png = args.png or os.path.join(benchmarking.ROOT, "docs", "bench_attention.png")
    if args.results is None and args.write:
        args.results = os.path.join(benchmarking.ROOT, "docs", "bench_attention.jsonl")
    if args.resume and not args.results:
        raise _common.UsageError("--resume needs a results file: give --results FILE (or --write, which keeps "
                                 "docs/bench_attention.jsonl)")
    return args


def results_log(args, backend):
    """``(results reused by --resume, log)``; without --resume a new run starts a new results file."""
    if not args.results:
        return {}, None
    results = benchmarking.ResultsLog(args.results, "bench_attention")
    done = bench.stored_results(results.resume(), backend, vars(args)) if args.resume else {}
    if not args.resume:
        results.start()
    if done:
        print(f"resuming: {len(done)} result(s) from {args.results}", flush=True)
    return done, lambda config, mode, res: results.append(bench.result_records(backend, config, mode, res))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0

    import keras

    backend = keras.backend.backend()
    ns = [args.min_n * 2 ** k for k in range((args.max_n // args.min_n).bit_length())]
    done, log = results_log(args, backend)
    mem_limit_mb = args.mem_limit_gb * 1024 if args.mem_limit_gb else 0.85 * benchmarking.mem_available_mb()
    hard_timeout = args.time_limit * (2 * args.repeats + 2) + 120

    def run_config(config):
        results, why = benchmarking.run_watched([sys.executable, os.path.abspath(__file__), "--child",
                                                 json.dumps(config)], mem_limit_mb, hard_timeout)
        return {name: results.get(name) or {"skipped": why or "no result"} for name in config["passes"]}

    grid = dict({k: getattr(args, k) for k in bench.SETTINGS}, modes=args.modes, methods=args.methods, ns=ns,
                passes=args.passes)
    results = bench.run_grid(grid, run_config, done, log, args.time_limit)
    table = bench.make_table(results, ns, args.methods)
    goals = bench.goal_lines(results, ns)
    print("\n" + benchmarking.text_table(*table) + ("\n\n" + "\n".join(goals) if goals else ""))
    if not args.write:
        return 0
    command = (f"KERAS_BACKEND={backend} " if backend != "tensorflow" else "") \
        + benchmarking.command_line("scripts/bench_attention.py", argv)
    body = bench.section(vars(args), backend, command, table, goals, args.results)
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    benchmarking.write_benchmark_section("bench_attention", body, args.md)
    bench.plot(results, ns, args.methods, args.png)
    print(f"\nwrote {args.md} (section bench_attention) and {args.png}")
    return 0


if __name__ == "__main__":
    _common.run(main)
