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
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (also: repo root on sys.path, quiet TF, CPU only)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

METHODS = ("softmax", "performer", "taylor")
LABELS = {"softmax": "softmax", "performer": "Performer", "taylor": "Taylor (linear)"}
PASSES = ("forward", "forward+backward", "core forward")


# ----------------------------------------------------------------------------- child side
def _status_kb(field, pid="self"):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(rf"{field}:\s+(\d+)\s+kB", f.read())
    return int(m.group(1)) if m else 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _median_time(fn, repeats):
    import numpy as np

    fn()  # warm-up: tracing / compilation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


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
        base = _status_kb("VmRSS")
        exact = _reset_peak()
        seconds = _median_time(fn, cfg["repeats"])
        out[name] = dict(seconds=seconds, peak_mb=(_status_kb("VmHWM") - base) / 1024.0, exact_peak=exact)
        if name == "core forward":  # the allocator still holds the forward's memory: time only
            del out[name]["peak_mb"]
        print("RESULT " + json.dumps({name: out[name]}), flush=True)
    return out


# ----------------------------------------------------------------------------- parent side
def run_config(cfg, mem_limit_mb, hard_timeout):
    """Run one configuration in a subprocess; returns {pass: result or {'skipped': why}}."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0, peak, why = time.time(), 0, None
    while proc.poll() is None:
        try:
            rss = _status_kb("VmRSS", proc.pid) / 1024.0
        except (OSError, ValueError):
            rss = 0.0
        peak = max(peak, rss)
        if rss > mem_limit_mb:
            why = f"memory > {mem_limit_mb / 1024:.0f} GiB"
        elif time.time() - t0 > hard_timeout:
            why = f"timeout > {hard_timeout:.0f} s"
        if why:
            proc.kill()
            break
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    results = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    if why is None and proc.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["?"]
        why = "out of memory" if proc.returncode in (-9, 137) or "ResourceExhausted" in stderr \
            or "MemoryError" in stderr else f"error: {tail[0][:80]}"
    for name in cfg["passes"]:
        results.setdefault(name, {"skipped": why or "no result"})
    return results


def fmt_time(r):
    return f"{r['seconds'] * 1e3:,.0f}" if "seconds" in r else "—"


def fmt_mem(r):
    return f"{max(r['peak_mb'], 0):,.0f}" if "peak_mb" in r else "—"


def ratio(r, ref, key):
    if key not in r or key not in ref or ref[key] <= 0:
        return "—"
    return f"{r[key] / ref[key]:.2f}"


SETTINGS = ("repeats", "heads", "head_size", "batch", "nb_features", "chunk_size")


def _settings_key(cfg, backend):
    """What a stored result must share with this run to be reused by --resume."""
    return json.dumps([backend] + [cfg[k] for k in SETTINGS])


def load_results(path, backend, args):
    """Results of earlier runs in ``path`` with this run's settings:
    ``{(method, mode, pass, n): result}``; unreadable lines are skipped and counted."""
    want = _settings_key(vars(args), backend)
    found, bad = {}, 0
    if not os.path.exists(path):
        return found
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = (rec["method"], rec["mode"], rec["pass"], int(rec["n"]))
                if rec["settings"] == want:
                    found[key] = rec["result"]
            except (ValueError, KeyError, TypeError):
                bad += 1
    if bad:
        print(f"bench_attention: {path}: skipped {bad} unreadable line(s)", file=sys.stderr)
    return found


def end_torn_line(path):
    """A line cut by a kill stays one unreadable line: end it before appending after it."""
    if os.path.exists(path) and os.path.getsize(path):
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def append_results(path, backend, cfg, mode, res):
    """Append one finished configuration (one line per pass), flushed to disk."""
    with open(path, "a", encoding="utf-8") as f:
        for pas, r in res.items():
            f.write(json.dumps(dict(method=cfg["method"], mode=mode, n=cfg["n"], settings=_settings_key(cfg, backend),
                                    result=r, date=_common.today(), **{"pass": pas})) + "\n")
        f.flush()
        os.fsync(f.fileno())


def goal_lines(results, ns):
    """The issue's goals at the largest n where softmax and Performer both have a bidirectional
    forward time: Performer >= 10x faster and >= 10x less peak memory; causal Performer within
    3x of its bidirectional forward."""
    def get(method, mode, n):
        return results.get((method, mode, "forward", n)) or {}

    def largest_n(*pairs):
        """The largest n at which every (method, mode) has a forward time, or None."""
        return max((n for n in ns if all("seconds" in get(m, mode, n) for m, mode in pairs)), default=None)

    lines = []
    n = largest_n(("softmax", "bidirectional"), ("performer", "bidirectional"))
    if n is not None:
        s, p = get("softmax", "bidirectional", n), get("performer", "bidirectional", n)
        speed = s["seconds"] / p["seconds"]
        line = (f"- goals at n = {n}, bidirectional forward: Performer {speed:.1f}x faster than softmax "
                f"(goal >= 10x: {'met' if speed >= 10 else 'not met'})")
        if s.get("peak_mb", 0) > 0 and p.get("peak_mb", 0) > 0:
            mem = s["peak_mb"] / p["peak_mb"]
            line += f", {mem:.1f}x less peak memory (goal >= 10x: {'met' if mem >= 10 else 'not met'})"
        lines.append(line)
    n = largest_n(("performer", "causal"), ("performer", "bidirectional"))
    if n is not None:
        r = get("performer", "causal", n)["seconds"] / get("performer", "bidirectional", n)["seconds"]
        lines.append(f"- causal Performer at n = {n}: {r:.2f}x its bidirectional forward "
                     f"(goal <= 3x: {'met' if r <= 3 else 'not met'})")
    return lines


def make_table(results, ns, methods):
    head = ["mode", "pass", "n"]
    for m in methods:
        head += [f"{LABELS[m]} ms", f"{LABELS[m]} MiB"]
    for m in methods:
        if m != "softmax" and "softmax" in methods:
            head += [f"{LABELS[m]}/softmax time", f"{LABELS[m]}/softmax mem"]
    rows = []
    for mode in ("bidirectional", "causal"):
        for pas in PASSES:
            for n in ns:
                cells = {m: results.get((m, mode, pas, n)) for m in methods}
                if all(c is None for c in cells.values()):
                    continue
                row = [mode, pas, str(n)]
                for m in methods:
                    r = cells[m] or {}
                    if "skipped" in r:
                        row += [f"skipped ({r['skipped']})", ""]
                    else:
                        row += [fmt_time(r), fmt_mem(r)]
                ref = cells.get("softmax") or {}
                for m in methods:
                    if m != "softmax" and "softmax" in methods:
                        r = cells[m] or {}
                        row += [ratio(r, ref, "seconds"), ratio(r, ref, "peak_mb")]
                rows.append(row)
    return head, rows


def markdown_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(head, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*r) for r in rows])


def plot(results, ns, methods, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    colors = {"softmax": "tab:red", "performer": "tab:blue", "taylor": "tab:green"}
    for col, mode in enumerate(("bidirectional", "causal")):
        for row, (key, label) in enumerate((("seconds", "median time (s)"), ("peak_mb", "peak RSS growth (MiB)"))):
            ax = axes[row, col]
            for m in methods:
                for pas, style in zip(PASSES, ("-", "--", ":")):
                    pts = [(n, results[(m, mode, pas, n)][key]) for n in ns
                           if key in results.get((m, mode, pas, n), {}) and results[(m, mode, pas, n)][key] > 0]
                    if pts:
                        ax.plot(*zip(*pts), style, marker="o", color=colors[m], label=f"{LABELS[m]}, {pas}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{mode}: {label}")
            if row == 1:
                ax.set_xlabel("sequence length n")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mem_available_mb():
    with open("/proc/meminfo") as f:
        m = re.search(r"MemAvailable:\s+(\d+)\s+kB", f.read())
    return int(m.group(1)) / 1024.0 if m else 8192.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--min-n", type=int, default=512, help="smallest sequence length")
    p.add_argument("--max-n", type=int, default=32768, help="largest sequence length (n doubles from --min-n)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="attention layers to time")
    p.add_argument("--modes", nargs="+", choices=("bidirectional", "causal"), default=["bidirectional", "causal"],
                   help="attention masks to time")
    p.add_argument("--passes", nargs="+", choices=PASSES, default=list(PASSES), help="what to time (see above)")
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
    p.add_argument("--md", default=None, help="--write: the Markdown file (default docs/benchmarks.md)")
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
    args.md = args.md or os.path.join(ROOT, "docs", "benchmarks.md")
    args.png = args.png or os.path.join(ROOT, "docs", "bench_attention.png")
    if args.results is None and args.write:
        args.results = os.path.join(ROOT, "docs", "bench_attention.jsonl")
    if args.resume and not args.results:
        raise _common.UsageError("--resume needs a results file: give --results FILE (or --write, which keeps "
                                 "docs/bench_attention.jsonl)")
    return args


def open_results(args, backend):
    """The results reused by --resume (``{}`` without it); a new run starts a new results file."""
    done = {}
    if args.resume:
        end_torn_line(args.results)
        done = load_results(args.results, backend, args)
    elif args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        open(args.results, "w").close()
    if done:
        print(f"resuming: {len(done)} result(s) from {args.results}", flush=True)
    return done


def note_result(results, stopped, key, r, time_limit):
    """Store one pass's result; a skip or a call past --time-limit stops larger n of that pass."""
    method, mode, pas, n = key
    results[key] = r
    if "skipped" in r:
        stopped[(method, mode, pas)] = f"{r['skipped']} at n={n}"
        if pas == "forward":  # backward needs at least the forward's memory and time
            stopped[(method, mode, "forward+backward")] = f"{r['skipped']} at n={n}"
    elif r["seconds"] > time_limit:
        stopped[(method, mode, pas)] = f"> {time_limit:.0f} s at n={n}"


def run_all(args, backend, ns, done):
    """Every (mode, method, n) configuration, reused from ``done`` or run in a subprocess:
    ``{(method, mode, pass, n): result}``."""
    mem_limit_mb = args.mem_limit_gb * 1024 if args.mem_limit_gb else 0.85 * mem_available_mb()
    hard_timeout = args.time_limit * (2 * args.repeats + 2) + 120
    results, stopped = {}, {}
    for mode in args.modes:
        for method in args.methods:
            for n in ns:
                todo = [pas for pas in args.passes if (method, mode, pas) not in stopped]
                for pas in args.passes:
                    if pas not in todo:
                        results[(method, mode, pas, n)] = {"skipped": stopped[(method, mode, pas)]}
                if not todo:
                    continue
                cfg = dict(method=method, causal=mode == "causal", n=n, passes=todo, repeats=args.repeats,
                           heads=args.heads, head_size=args.head_size, batch=args.batch,
                           nb_features=args.nb_features, chunk_size=args.chunk_size)
                t0 = time.time()
                if all((method, mode, pas, n) in done for pas in todo):
                    res = {pas: done[(method, mode, pas, n)] for pas in todo}
                else:
                    res = run_config(cfg, mem_limit_mb, hard_timeout)
                    if args.results:
                        append_results(args.results, backend, cfg, mode, res)
                for pas in todo:
                    note_result(results, stopped, (method, mode, pas, n), res[pas], args.time_limit)
                summary = ", ".join(
                    f"{pas}: " + (f"{res[pas]['seconds'] * 1e3:.0f} ms {res[pas].get('peak_mb', 0):.0f} MiB"
                                  if "seconds" in res[pas] else res[pas]["skipped"]) for pas in todo)
                print(f"[{time.time() - t0:5.1f}s] {mode:13s} {method:9s} n={n:6d}  {summary}", flush=True)
    return results


def write_docs(args, argv, backend, table, goals):
    """The <!-- bench_attention --> section of --md and the plot --png (``table``: head, rows;
    ``goals``: the goal lines; the plot is drawn by the caller's ``plot``)."""
    head, rows = table
    command = "python scripts/bench_attention.py " + " ".join(argv if argv is not None else sys.argv[1:])
    command = (f"KERAS_BACKEND={backend} " if backend != "tensorflow" else "") + command.strip()
    results_path = args.results
    body = "\n".join([
        "## Attention layers: softmax vs Performer vs Taylor (`scripts/bench_attention.py`)",
        "",
        f"One attention layer, {args.heads} heads x {args.head_size}, batch {args.batch}, float32, "
        f"backend `{backend}` on CPU; Performer with m = {args.nb_features} random features, Taylor in "
        f"linear mode ({1 + args.head_size + args.head_size * (args.head_size + 1) // 2} features); causal "
        f"chunk {args.chunk_size}. Time: median of {args.repeats} compiled calls after a warm-up call. "
        "Memory: peak RSS growth during the measurement (VmHWM over the RSS just before it), each "
        "configuration in a fresh process. Ratios are method / softmax (lower is better). "
        "`core forward` times `layer.attend(q, k, v)` alone on split-head inputs: the attention "
        "itself, without the four hidden x hidden projections that every method shares (time only: "
        "it runs after the forward in the same process, whose memory the allocator keeps).",
        "",
        f"- machine: {_common.machine_description()}",
        f"- date: {_common.today()}",
        f"- command: `{command}`" + (f" (raw results: `{os.path.relpath(results_path, ROOT)}`)"
                                      if results_path and os.path.abspath(results_path).startswith(ROOT) else ""),
        "",
        markdown_table(head, rows),
        "",
        *([*goals, ""] if goals else []),
        "![attention scaling](bench_attention.png)",
    ])
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    _common.write_benchmark_section("bench_attention", body, args.md)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0

    import keras

    backend = keras.backend.backend()
    ns = []
    n = args.min_n
    while n <= args.max_n:
        ns.append(n)
        n *= 2
    done = open_results(args, backend)
    results = run_all(args, backend, ns, done)

    head, rows = make_table(results, ns, args.methods)
    print()
    print(text_table(head, rows))
    goals = goal_lines(results, ns)
    if goals:
        print()
        print("\n".join(goals))
    if not args.write:
        return 0
    write_docs(args, argv, backend, (head, rows), goals)
    plot(results, ns, args.methods, args.png)
    print(f"\nwrote {args.md} (section bench_attention) and {args.png}")
    return 0


if __name__ == "__main__":
    _common.run(main)
