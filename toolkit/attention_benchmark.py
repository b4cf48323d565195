"""The framework-free side of ``scripts/bench_attention.py``: the grid of (method, mode,
pass, n) configurations, each run in a child process under memory and time limits and
kept in a results file that a stopped run resumes (:func:`run_grid`); the table
(:func:`make_table`), the goal lines (:func:`goal_lines`), the plot (:func:`plot`) and the
docs section (:func:`section`) of its results. Results are keyed
``(method, mode, pass, n)``; a result is ``{'seconds', 'peak_mb'}`` or ``{'skipped': why}``.
"""

import json
import os
import time

from toolkit import benchmarking

METHODS = ("softmax", "performer", "taylor")
LABELS = {"softmax": "softmax", "performer": "Performer", "taylor": "Taylor (linear)"}
PASSES = ("forward", "forward+backward", "core forward")
MODES = ("bidirectional", "causal")
SETTINGS = ("repeats", "heads", "head_size", "batch", "nb_features", "chunk_size")


def settings_key(settings, backend):
    """What a stored result must share with this run to be reused by --resume."""
    return json.dumps([backend] + [settings[k] for k in SETTINGS])


def stored_results(records, backend, settings):
    """``{(method, mode, pass, n): result}`` of the records (a :class:`ResultsLog`'s) that have
    these settings; records that lack a field are skipped."""
    want, found = settings_key(settings, backend), {}
    for record in records:
        try:
            if record["settings"] == want:
                found[(record["method"], record["mode"], record["pass"], int(record["n"]))] = record["result"]
        except (KeyError, TypeError, ValueError):
            continue
    return found


def result_records(backend, config, mode, results):
    """One finished configuration as records of a results file, one per pass."""
    return [dict(method=config["method"], mode=mode, n=config["n"], settings=settings_key(config, backend),
                 result=result, date=benchmarking.today(), **{"pass": name}) for name, result in results.items()]


def _note(results, stopped, key, result, time_limit):
    """Store one pass's result; a skip or a call past ``time_limit`` stops larger n of that pass."""
    method, mode, name, n = key
    results[key] = result
    if "skipped" in result:
        stopped[(method, mode, name)] = f"{result['skipped']} at n={n}"
        if name == "forward":  # backward needs at least the forward's memory and time
            stopped[(method, mode, "forward+backward")] = f"{result['skipped']} at n={n}"
    elif result["seconds"] > time_limit:
        stopped[(method, mode, name)] = f"> {time_limit:.0f} s at n={n}"


def _summary(todo, results):
    return ", ".join(f"{name}: " + (f"{results[name]['seconds'] * 1e3:.0f} ms {results[name].get('peak_mb', 0):.0f} MiB"
                                    if "seconds" in results[name] else results[name]["skipped"]) for name in todo)


def run_grid(grid, run_config, done=None, log=None, time_limit=60.0):
    """Every configuration of ``grid`` (``modes``, ``methods``, ``ns``, ``passes`` and the
    settings of :data:`SETTINGS`), from ``done`` (``{key: result}``, e.g. :func:`stored_results`)
    or ``run_config(config)`` (a child process; returns ``{pass: result}``). A method stops
    growing n for a pass once it is skipped or a call takes longer than ``time_limit``.
    ``log(config, mode, results)`` is called after each configuration that ran (to append it to
    a results file). Returns ``{(method, mode, pass, n): result}``."""
    done = done or {}
    results, stopped = {}, {}
    for mode in grid["modes"]:
        for method in grid["methods"]:
            for n in grid["ns"]:
                todo = [name for name in grid["passes"] if (method, mode, name) not in stopped]
                for name in grid["passes"]:
                    if name not in todo:
                        results[(method, mode, name, n)] = {"skipped": stopped[(method, mode, name)]}
                if not todo:
                    continue
                config = dict({k: grid[k] for k in SETTINGS}, method=method, causal=mode == "causal", n=n,
                              passes=todo)
                start = time.time()
                if all((method, mode, name, n) in done for name in todo):
                    res = {name: done[(method, mode, name, n)] for name in todo}
                else:
                    res = run_config(config)
                    if log is not None:
                        log(config, mode, res)
                for name in todo:
                    _note(results, stopped, (method, mode, name, n), res[name], time_limit)
                print(f"[{time.time() - start:5.1f}s] {mode:13s} {method:9s} n={n:6d}  {_summary(todo, res)}",
                      flush=True)
    return results


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
        soft, perf = get("softmax", "bidirectional", n), get("performer", "bidirectional", n)
        speed = soft["seconds"] / perf["seconds"]
        line = (f"- goals at n = {n}, bidirectional forward: Performer {speed:.1f}x faster than softmax "
                f"(goal >= 10x: {'met' if speed >= 10 else 'not met'})")
        if soft.get("peak_mb", 0) > 0 and perf.get("peak_mb", 0) > 0:
            mem = soft["peak_mb"] / perf["peak_mb"]
            line += f", {mem:.1f}x less peak memory (goal >= 10x: {'met' if mem >= 10 else 'not met'})"
        lines.append(line)
    n = largest_n(("performer", "causal"), ("performer", "bidirectional"))
    if n is not None:
        ratio = get("performer", "causal", n)["seconds"] / get("performer", "bidirectional", n)["seconds"]
        lines.append(f"- causal Performer at n = {n}: {ratio:.2f}x its bidirectional forward "
                     f"(goal <= 3x: {'met' if ratio <= 3 else 'not met'})")
    return lines


def _time(result):
    return f"{result['seconds'] * 1e3:,.0f}" if "seconds" in result else "—"


def _memory(result):
    return f"{max(result['peak_mb'], 0):,.0f}" if "peak_mb" in result else "—"


def _ratio(result, reference, key):
    if key not in result or key not in reference or reference[key] <= 0:
        return "—"
    return f"{result[key] / reference[key]:.2f}"


def _row(cells, methods):
    row = []
    for method in methods:
        result = cells[method] or {}
        row += [f"skipped ({result['skipped']})", ""] if "skipped" in result else [_time(result), _memory(result)]
    reference = cells.get("softmax") or {}
    for method in methods:
        if method != "softmax" and "softmax" in methods:
            result = cells[method] or {}
            row += [_ratio(result, reference, "seconds"), _ratio(result, reference, "peak_mb")]
    return row


def make_table(results, ns, methods):
    """``(head, rows)``: time and memory of each method, and their ratios to softmax."""
    head = ["mode", "pass", "n"]
    for method in methods:
        head += [f"{LABELS[method]} ms", f"{LABELS[method]} MiB"]
    for method in methods:
        if method != "softmax" and "softmax" in methods:
            head += [f"{LABELS[method]}/softmax time", f"{LABELS[method]}/softmax mem"]
    rows = []
    for mode in MODES:
        for name in PASSES:
            for n in ns:
                cells = {method: results.get((method, mode, name, n)) for method in methods}
                if any(cell is not None for cell in cells.values()):
                    rows.append([mode, name, str(n)] + _row(cells, methods))
    return head, rows


def plot(results, ns, methods, path):
    """Time and peak-memory growth against n, bidirectional and causal, into ``path`` (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    colors = {"softmax": "tab:red", "performer": "tab:blue", "taylor": "tab:green"}
    for col, mode in enumerate(MODES):
        for row, (key, label) in enumerate((("seconds", "median time (s)"), ("peak_mb", "peak RSS growth (MiB)"))):
            ax = axes[row, col]
            for method in methods:
                for name, style in zip(PASSES, ("-", "--", ":")):
                    points = [(n, results[(method, mode, name, n)][key]) for n in ns
                              if results.get((method, mode, name, n), {}).get(key, 0) > 0]
                    if points:
                        ax.plot(*zip(*points), style, marker="o", color=colors[method],
                                label=f"{LABELS[method]}, {name}")
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


def section(settings, backend, command, table, goals, results_path=None):
    """The <!-- bench_attention --> section of docs/benchmarks.md (``table``: head, rows;
    ``goals``: the goal lines; ``results_path``: named if it lies in the repository)."""
    heads, head_size = settings["heads"], settings["head_size"]
    raw = (f" (raw results: `{os.path.relpath(results_path, benchmarking.ROOT)}`)"
           if results_path and os.path.abspath(results_path).startswith(benchmarking.ROOT) else "")
    return "\n".join([
        "## Attention layers: softmax vs Performer vs Taylor (`scripts/bench_attention.py`)",
        "",
        f"One attention layer, {heads} heads x {head_size}, batch {settings['batch']}, float32, "
        f"backend `{backend}` on CPU; Performer with m = {settings['nb_features']} random features, Taylor in "
        f"linear mode ({1 + head_size + head_size * (head_size + 1) // 2} features); causal "
        f"chunk {settings['chunk_size']}. Time: median of {settings['repeats']} compiled calls after a warm-up call. "
        "Memory: peak RSS growth during the measurement (VmHWM over the RSS just before it), each "
        "configuration in a fresh process. Ratios are method / softmax (lower is better). "
        "`core forward` times `layer.attend(q, k, v)` alone on split-head inputs: the attention "
        "itself, without the four hidden x hidden projections that every method shares (time only: "
        "it runs after the forward in the same process, whose memory the allocator keeps).",
        "",
        f"- machine: {benchmarking.machine_description()}",
        f"- date: {benchmarking.today()}",
        f"- command: `{command}`" + raw,
        "",
        benchmarking.markdown_table(*table),
        "",
        *([*goals, ""] if goals else []),
        "![attention scaling](bench_attention.png)",
    ])
