"""Benchmark machinery shared by ``scripts/bench_*.py``. Imports no framework (NumPy only).

* timing: :func:`median_time`; the machine's float32 matmul rate :func:`matmul_peak_gflops`;
* memory: :func:`peak_rss_mb`, :func:`proc_status_kb`, :func:`reset_peak_rss`,
  :func:`mem_available_mb`, and the memory read rate :func:`read_bandwidth_gbs`;
* child processes measured from outside: :func:`run_measured` (wall time and peak RSS)
  and :func:`run_watched` (killed past a memory or time limit; its results are the
  ``RESULT <json>`` lines it prints);
* the record of a run: :func:`machine_description`, :func:`today`, :func:`command_line`;
* tables and docs: :func:`markdown_table`, :func:`text_table`, the ``<!-- name -->``
  sections of docs/benchmarks.md (:func:`section_body`, :func:`write_benchmark_section`,
  :func:`report`);
* :class:`ResultsLog`: a JSON-lines file of finished measurements that a stopped run resumes.

>>> seconds = median_time(lambda: sum(range(1000)), repeats=3)
>>> markdown_table(["a", "b"], [["1", "2"]]).splitlines()
['| a | b |', '|---|---|', '| 1 | 2 |']
"""

import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_MD = os.path.join(ROOT, "docs", "benchmarks.md")


# ----------------------------------------------------------------- timing and memory
def median_time(fn, repeats, warmup=1):
    """Median wall time of ``repeats`` calls of ``fn()``, in seconds, after ``warmup`` untimed
    calls (tracing, compilation)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_peak_gflops(n=2048, repeats=5):
    """Measured float32 matmul rate of this machine (best of TF and torch), GFLOP/s: an ``n x n``
    product, median of ``repeats``. The frameworks are imported here, not by this module."""
    import tensorflow as tf
    import torch

    matrix = np.random.default_rng(0).random((n, n), dtype=np.float32)
    tf_matrix = tf.constant(matrix)
    tf_matmul = tf.function(lambda x: tf.matmul(x, x))
    tf_seconds = median_time(lambda: tf_matmul(tf_matrix).numpy(), repeats)
    torch_matrix = torch.from_numpy(matrix)
    with torch.inference_mode():
        torch_seconds = median_time(lambda: torch.mm(torch_matrix, torch_matrix), repeats)
    return 2 * n**3 / min(tf_seconds, torch_seconds) / 1e9


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def proc_status_kb(field, pid="self"):
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``...); 0 if absent."""
    with open(f"/proc/{pid}/status") as status:
        match = re.search(rf"{field}:\s+(\d+)\s+kB", status.read())
    return int(match.group(1)) if match else 0


def reset_peak_rss():
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def mem_available_mb():
    """MemAvailable of /proc/meminfo in MiB (8 GiB where it cannot be read)."""
    try:
        with open("/proc/meminfo") as meminfo:
            match = re.search(r"MemAvailable:\s+(\d+)\s+kB", meminfo.read())
    except OSError:
        match = None
    return int(match.group(1)) / 1024.0 if match else 8192.0


def read_bandwidth_gbs(nbytes=2**30, repeats=5):
    """Memory read rate, GB/s: bytes of a float32 array / time of ``a.sum()`` (median of ``repeats``)."""
    values = np.ones(nbytes // 4, np.float32)
    seconds = median_time(values.sum, repeats, warmup=0)
    rate = values.nbytes / seconds / 1e9
    del values
    return rate


# ----------------------------------------------------------------- child processes
def run_measured(cmd, env=None):
    """Run ``cmd``; returns ``(completed process, wall seconds, peak RSS in bytes, how)``.
    Peak RSS from GNU time's -v report if /usr/bin/time exists, else from
    getrusage(RUSAGE_CHILDREN), which is the largest of all children so far."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    full = ([gnu_time, "-v"] if gnu_time else []) + list(cmd)
    start = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr) if gnu_time else None
    if match:
        return proc, wall, int(match.group(1)) * 1024, "GNU time -v"
    return proc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "getrusage(RUSAGE_CHILDREN)"


def run_watched(cmd, mem_limit_mb, timeout):
    """Run ``cmd``, polling its RSS: killed once it grows past ``mem_limit_mb`` or runs longer
    than ``timeout`` seconds. Returns ``(results, why)``: the dict merged from the child's
    ``RESULT <json>`` stdout lines, and why it stopped early (None if it ended well): a limit,
    ``'out of memory'`` or ``'error: <its last stderr line>'``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start, why = time.time(), None
    while proc.poll() is None:
        try:
            rss = proc_status_kb("VmRSS", proc.pid) / 1024.0
        except (OSError, ValueError):
            rss = 0.0
        if rss > mem_limit_mb:
            why = f"memory > {mem_limit_mb / 1024:.0f} GiB"
        elif time.time() - start > timeout:
            why = f"timeout > {timeout:.0f} s"
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
    return results, why


# ----------------------------------------------------------------- the record of a run
def machine_description():
    """``'<cores> cores (<CPU>), <RAM> GiB RAM, <OS> <machine>'``."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read())
            cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} {platform.machine()}"


def today():
    return datetime.date.today().isoformat()


def command_line(script, argv=None):
    """The command that ran ``script`` (e.g. ``'scripts/bench_encoder.py'``) with ``argv``
    (default: this process's arguments): ``'python scripts/bench_encoder.py --layers 2'``."""
    argv = sys.argv[1:] if argv is None else argv
    return ("python " + script + " " + " ".join(argv)).strip()


# ----------------------------------------------------------------- tables and docs
def markdown_table(head, rows, align=None):
    """A Markdown table; ``align``: one letter a column, ``'l'`` (default) or ``'r'`` (right-aligned)."""
    rule = ["---:" if letter == "r" else "---" for letter in (align or "l" * len(head))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(head, rows):
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join(f"{{:>{width}}}" for width in widths)
    return "\n".join([line.format(*head)] + [line.format(*row) for row in rows])


def write_benchmark_section(name, body, path=None):
    """Replace (or append) the section between ``<!-- name -->`` markers of ``path`` (default
    docs/benchmarks.md), written under a temporary name and renamed."""
    path = path or DOCS_MD
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n\n"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) + 1:]
    else:
        text = text.rstrip() + "\n\n" + block
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def shown_path(path):
    """``path`` relative to the repository when inside it (``docs/benchmarks.md``), else as given."""
    absolute = os.path.abspath(path)
    return os.path.relpath(absolute, ROOT) if absolute.startswith(ROOT + os.sep) else path


def section_body(title, script, text, table, argv=None, machine_note=""):
    """The body of a docs/benchmarks.md section: ``## title (`script`)``, ``text`` (what was
    measured, how), a line with the machine (plus ``machine_note``), the date and the command
    (``script`` with ``argv``), then the Markdown ``table``."""
    return (f"## {title} (`{script}`)\n\n{text}\n"
            f"Machine: {machine_description()}{machine_note}. Date: {today()}. "
            f"Command: `{command_line(script, argv)}`.\n\n{table}\n")


def report(body, section, write=False, path=None):
    """Print a benchmark's section ``body``; with ``write`` also put it into ``path`` (default
    docs/benchmarks.md) between the ``<!-- section -->`` markers, and say so."""
    print(body)
    if write:
        path = path or DOCS_MD
        write_benchmark_section(section, body, path)
        print(f"wrote {shown_path(path)} (section {section})")


def tf_matvec_floor_tok_s(layers, hidden, vocab, batch=1, repeats=20):
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
    return batch / median_time(lambda: chain(x).numpy(), repeats)


# ----------------------------------------------------------------- results that a run resumes
class ResultsLog:
    """A JSON-lines file of finished measurements: each record is appended and flushed to disk
    as soon as it is known, so a stopped run loses at most the one in progress.
    :meth:`resume` returns the readable records of an earlier run (a line cut by a kill is
    ended and skipped); :meth:`start` empties the file for a new run."""

    def __init__(self, path, name="benchmark"):
        self.path, self.name = path, name

    def start(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        open(self.path, "w").close()

    def resume(self):
        """The records of the file (none if it does not exist); unreadable lines are counted on stderr."""
        if not os.path.exists(self.path):
            return []
        self._end_torn_line()
        records, bad = [], 0
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        bad += 1
        if bad:
            print(f"{self.name}: {self.path}: skipped {bad} unreadable line(s)", file=sys.stderr)
        return records

    def append(self, records):
        """Append records (one line each), flushed to disk."""
        with open(self.path, "a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _end_torn_line(self):
        """A line cut by a kill stays one unreadable line: end it before appending after it."""
        if os.path.getsize(self.path):
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
