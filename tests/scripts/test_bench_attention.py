"""scripts/bench_attention.py (run as a subprocess) and toolkit/attention_benchmark.py: the
goal summary, a run without --write that only prints (and keeps its results file only when
--results is given), and a stopped run that --resume finishes without re-running (or losing)
a finished configuration."""

import json
import os
import subprocess
import sys

from toolkit.attention_benchmark import goal_lines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "bench_attention.py")
TINY = ["--min-n", "64", "--max-n", "64", "--repeats", "1", "--heads", "2", "--head-size", "8",
        "--nb-features", "16", "--chunk-size", "16", "--passes", "forward"]


def _fwd(seconds, mb):
    return {"seconds": seconds, "peak_mb": mb}


def test_goal_lines_use_the_largest_common_n_and_say_met_or_not():
    results = {
        ("softmax", "bidirectional", "forward", 1024): _fwd(1.0, 100.0),
        ("performer", "bidirectional", "forward", 1024): _fwd(0.05, 5.0),
        ("softmax", "bidirectional", "forward", 2048): _fwd(2.0, 400.0),
        ("performer", "bidirectional", "forward", 2048): _fwd(0.25, 20.0),  # 8x faster, 20x less memory
        ("softmax", "bidirectional", "forward", 4096): {"skipped": "out of memory"},
        ("performer", "bidirectional", "forward", 4096): _fwd(0.5, 40.0),
        ("performer", "causal", "forward", 4096): _fwd(1.75, 50.0),  # 3.5x the bidirectional
    }
    lines = goal_lines(results, [1024, 2048, 4096])
    assert lines[0].startswith("- goals at n = 2048")
    assert "8.0x faster than softmax (goal >= 10x: not met)" in lines[0]
    assert "20.0x less peak memory (goal >= 10x: met)" in lines[0]
    assert lines[1] == "- causal Performer at n = 4096: 3.50x its bidirectional forward (goal <= 3x: not met)"


def _run(tmp_path, *extra):
    cmd = [sys.executable, SCRIPT, *TINY, "--results", str(tmp_path / "r.jsonl"), "--md", str(tmp_path / "b.md"),
           "--png", str(tmp_path / "b.png"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(line.startswith("bench_attention: ") for line in proc.stderr.splitlines())  # no TF start-up log
    return proc.stdout


def _records(path):
    """The readable records of a results file (a torn line is skipped)."""
    recs = []
    for line in open(path):
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    return recs


def test_results_file_and_resume_after_a_stop(tmp_path):
    docs_md = os.path.join(ROOT, "docs", "benchmarks.md")
    with open(docs_md, "rb") as f:
        tracked = f.read()
    with open(tmp_path / "b.md", "wb") as f:
        f.write(tracked)
    # without --write: the table is printed, the Markdown file and the plot are left alone
    out = _run(tmp_path, "--methods", "softmax", "performer", "--modes", "bidirectional")
    assert "bidirectional  forward  64" in out and "goals at n = 64" in out and "wrote" not in out
    assert open(tmp_path / "b.md", "rb").read() == tracked and not os.path.exists(tmp_path / "b.png")
    with open(docs_md, "rb") as f:
        assert f.read() == tracked
    recs = _records(tmp_path / "r.jsonl")  # --results given: kept without --write too
    assert sorted((r["method"], r["mode"], r["pass"], r["n"]) for r in recs) == [
        ("performer", "bidirectional", "forward", 64), ("softmax", "bidirectional", "forward", 64)]
    assert all(r["result"]["seconds"] > 0 for r in recs)

    # a "stopped" run: only the softmax line survived, plus a half-written line
    soft = [r for r in recs if r["method"] == "softmax"][0]
    with open(tmp_path / "r.jsonl", "w") as f:
        f.write(json.dumps(soft) + "\n" + '{"method": "perf')
    out = _run(tmp_path, "--methods", "softmax", "performer", "--modes", "bidirectional", "--resume", "--write")
    assert "resuming: 1 result(s)" in out
    md = open(tmp_path / "b.md").read()
    assert "<!-- bench_attention -->" in md and "- goals at n = 64, bidirectional forward: Performer" in md
    assert md.startswith(tracked.decode("utf-8").split("<!-- bench_attention -->")[0])  # other sections kept
    assert os.path.getsize(tmp_path / "b.png") > 0
    recs2 = _records(tmp_path / "r.jsonl")
    # softmax was reused (not re-run, so not appended again), the Performer ran once more
    assert [(r["method"], r["result"]) for r in recs2] == [("softmax", soft["result"])] + [
        ("performer", r["result"]) for r in recs2[1:]]
    assert len(recs2) == 2

    # other settings never mix: a different m re-runs the Performer
    out = _run(tmp_path, "--methods", "performer", "--modes", "bidirectional", "--resume", "--nb-features", "8")
    assert "resuming" not in out
    assert len(_records(tmp_path / "r.jsonl")) == 3


def test_resume_needs_a_results_file():
    proc = subprocess.run([sys.executable, SCRIPT, "--resume"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: --resume needs a results file: give --results FILE (or --write, "
                                        "which keeps docs/bench_attention.jsonl)"]
