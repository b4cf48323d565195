"""What every script of scripts/ shares (scripts/_common.py): --help with defaults and the
examples' spacing intact, benchmarks that print their table and write docs/ only with --write,
and quiet TensorFlow (no CUDA-probe errors, no start-up log) for the scripts and the package."""

import ast
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from toolkit.benchmarking import report

SCRIPTS = os.path.join(ROOT, "scripts")
HELP_SCRIPTS = ["bench_attention", "bench_cpm", "bench_encoder", "bench_generate", "bench_long_bert",
                "bench_pretrain", "convert_cpm_lm", "finetune_classifier", "generate_cpm", "long_text_bert",
                "long_text_fill_masks", "pretrain_mlm", "train_xiangqi", "serve_xiangqi", "bench_web_xiangqi"]
SUBCOMMANDS = {"finetune_classifier": "train"}


def _python(args, env_update=(), drop=(), timeout=120):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", **dict(env_update)}
    for name in drop:
        env.pop(name, None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def _example_lines(name):
    """The indented command lines of a script's docstring (its examples)."""
    with open(os.path.join(SCRIPTS, name + ".py"), encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read()), clean=False)
    return [line for line in doc.splitlines() if line.startswith("    python ")]


@pytest.mark.parametrize("name", HELP_SCRIPTS)
def test_help_shows_defaults_and_keeps_the_examples(name):
    proc = _python([os.path.join(SCRIPTS, name + ".py"), "--help"], timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    examples = _example_lines(name)
    assert examples and all(line in proc.stdout.splitlines() for line in examples)
    assert proc.stderr == ""
    if name in SUBCOMMANDS:  # the options and their defaults are under the subcommand's --help
        proc = _python([os.path.join(SCRIPTS, name + ".py"), SUBCOMMANDS[name], "--help"], timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(default:" in proc.stdout


# each benchmark at a tiny size (seconds): its arguments
BENCHES = {
    "bench_encoder": ["--layers", "1", "--hidden", "16", "--heads", "2", "--batch", "1", "--length", "8",
                      "--repeats", "1"],
    "bench_generate": ["--layers", "1", "--hidden", "16", "--heads", "2", "--vocab", "64", "--prompt", "4", "--new",
                       "2", "--batches", "1", "--repeats", "1", "--skip", "hf,keras-hub,bert4keras"],
    "bench_long_bert": ["--configs", "performer:64", "--layers", "1", "--nb-features", "8", "--repeats", "1"],
}


def _docs_copy(tmp_path):
    """A copy of docs/benchmarks.md, and the real file's bytes (which no run may change)."""
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "rb") as handle:
        tracked = handle.read()
    (tmp_path / "benchmarks.md").write_bytes(tracked)
    return tmp_path / "benchmarks.md", tracked


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_benchmarks_print_the_table_and_write_only_with_write(name, tmp_path):
    md, tracked = _docs_copy(tmp_path)
    script = os.path.join(SCRIPTS, name + ".py")
    printed = _python([script, *BENCHES[name], "--md", str(md)], timeout=300)
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert "|---|" in printed.stdout and "Command: `python scripts/" in printed.stdout and "wrote" not in printed.stdout
    assert md.read_bytes() == tracked  # without --write: the table is only printed
    written = _python([script, *BENCHES[name], "--md", str(md), "--write"], timeout=300)
    assert written.returncode == 0, written.stderr[-3000:]
    assert written.stdout.splitlines()[-1] == f"wrote {md} (section {name})"
    text = md.read_text(encoding="utf-8")
    start, end = text.index(f"<!-- {name} -->"), text.index(f"<!-- /{name} -->")
    section = text[start + len(f"<!-- {name} -->\n"):end]
    assert section.strip() in written.stdout and "--write" in section
    before = tracked.decode("utf-8")
    assert text[:start] == before[:before.index(f"<!-- {name} -->")]  # the other sections are kept
    assert text[end:] == before[before.index(f"<!-- /{name} -->"):]
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "rb") as handle:
        assert handle.read() == tracked


@pytest.mark.parametrize("name, args, message", [
    ("bench_cpm", ["--new", "1"], "error: --new must be >= 2, got 1"),
    ("bench_cpm", ["--prompt", "1000", "--new", "100"], "error: --prompt 1000 + --new 100 exceeds CPM-LM's 1024 "
                                                         "positions"),
    ("bench_generate", ["--cpm"], "error: the CPM-LM benchmark is scripts/bench_cpm.py now: run python "
                                  "scripts/bench_cpm.py (--layers N for --cpm-layers N)"),
    ("bench_long_bert", ["--configs", "flash:64"], "error: --configs 'flash:64': expected ATTENTION:LENGTH with "
                                                   "ATTENTION one of softmax, performer, taylor and 1 <= LENGTH <= "
                                                   "262144, e.g. performer:16384"),
], ids=["cpm-new-1", "cpm-too-long", "generate-cpm-moved", "long-bert-config"])
def test_benchmark_bad_input_is_one_line_exit_2(name, args, message):
    proc = _python([os.path.join(SCRIPTS, name + ".py"), *args], timeout=60)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [message], proc.stderr[-2000:]


def test_report_prints_always_and_writes_a_section_only_when_asked(tmp_path, capsys):
    md, tracked = _docs_copy(tmp_path)
    report("## Section\n\n| a |\n|---|\n", "bench_encoder", write=False, path=str(md))
    assert capsys.readouterr().out == "## Section\n\n| a |\n|---|\n\n" and md.read_bytes() == tracked
    report("## Section\n\n| a |\n|---|\n", "bench_new", write=True, path=str(md))
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {md} (section bench_new)"
    assert md.read_text(encoding="utf-8") == tracked.decode("utf-8").rstrip() + \
        "\n\n<!-- bench_new -->\n## Section\n\n| a |\n|---|\n<!-- /bench_new -->\n"


def test_a_script_is_quiet_even_with_tf_log_level_2():
    """_common raises a lower TF_CPP_MIN_LOG_LEVEL to 3 and drops the start-up lines that no level silences."""
    code = "import _common, keras; print(keras.ops.convert_to_numpy(keras.ops.ones(2) + 1))"
    proc = _python(["-c", code], env_update={"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": SCRIPTS},
                   drop=["CUDA_VISIBLE_DEVICES"])
    assert proc.returncode == 0 and proc.stdout.strip() == "[2. 2.]", proc.stderr[-2000:]
    assert proc.stderr == ""


def test_importing_layers_silences_the_cuda_probe():
    """The package (no TF_CPP_MIN_LOG_LEVEL set by the user): no cuInit error on a CPU machine."""
    code = "import layers, keras; print(keras.ops.convert_to_numpy(keras.ops.ones(2) + 1))"
    proc = _python(["-c", code], drop=["TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES"])
    assert proc.returncode == 0 and proc.stdout.strip() == "[2. 2.]", proc.stderr[-2000:]
    assert not [line for line in proc.stderr.splitlines() if "cuInit" in line or line.startswith("E0000")]


@pytest.mark.parametrize("package", ["layers", "models"])
def test_importing_the_package_prints_nothing(package):
    """``import models`` / ``import layers`` on a CPU machine: empty stderr (TensorFlow's start-up
    log dropped, toolkit/quiet_startup.py), and KERAS_LONGCTX_VERBOSE=1 brings it back."""
    code = f"import {package}, keras; print(keras.ops.convert_to_numpy(keras.ops.ones(2) + 1))"
    proc = _python(["-c", code], drop=["TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES"])
    assert proc.returncode == 0 and proc.stdout.strip() == "[2. 2.]", proc.stderr[-2000:]
    assert proc.stderr == ""
    loud = _python(["-c", code], drop=["TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES"],
                   env_update={"KERAS_LONGCTX_VERBOSE": "1"})
    assert loud.returncode == 0 and loud.stderr.count("\n") >= 2


def test_the_scripts_do_not_hide_gpus():
    """scripts/_common.py leaves CUDA_VISIBLE_DEVICES alone: on a GPU machine training runs on the GPU."""
    code = "import _common, os; print(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"
    proc = _python(["-c", code], drop=["CUDA_VISIBLE_DEVICES"], env_update={"PYTHONPATH": SCRIPTS})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "unset"
