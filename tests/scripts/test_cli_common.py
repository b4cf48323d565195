"""What every script of scripts/ shares (scripts/_common.py): --help with defaults and the
examples' spacing intact, benchmarks that print their table and write docs/ only with --write,
and quiet TensorFlow (no CUDA-probe errors, no start-up log) for the scripts and the package."""

import ast
import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPTS = os.path.join(ROOT, "scripts")
HELP_SCRIPTS = ["bench_attention", "bench_encoder", "bench_generate", "bench_long_bert", "convert_cpm_lm",
                "generate_cpm", "long_text_bert", "train_xiangqi"]


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
    assert "(default:" in proc.stdout
    examples = _example_lines(name)
    assert examples and all(line in proc.stdout.splitlines() for line in examples)
    assert proc.stderr == ""


def _load(name, monkeypatch):
    monkeypatch.syspath_prepend(SCRIPTS)
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# each benchmark with its measurements replaced by fixed figures: (arguments, {function: fake})
BENCHES = {
    "bench_encoder": (["--repeats", "1"], {
        "time_implementations": lambda args, ids, seg: {"keras-longctx (this package)": (0.5, [0.5]),
                                                        "keras-hub BertBackbone": (0.4, [0.4]),
                                                        "HF transformers (torch)": (0.6, [0.6])},
        "matmul_peak_gflops": lambda: 100.0}),
    "bench_generate": (["--batches", "1", "--skip", "hf,keras-hub,bert4keras"], {
        "bench_ours": lambda cfg, prompt, new, batch, repeats: 10.0,
        "matvec_floor_tok_s": lambda layers, hidden, vocab, batch: 100.0}),
    "bench_long_bert": (["--configs", "performer:64"], {
        "run": lambda *args: {"first_s": 1.0, "median_s": 0.5, "peak_mb": 100.0, "model_mb": 50.0}}),
}


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_benchmarks_print_the_table_and_write_only_with_write(name, monkeypatch, capsys):
    bench = _load(name, monkeypatch)
    args, fakes = BENCHES[name]
    for function, fake in fakes.items():
        monkeypatch.setattr(bench, function, fake)
    written = []
    monkeypatch.setattr(bench._common, "write_benchmark_section", lambda section, body, path=None:
                        written.append((section, body)))
    bench.main(args)
    out = capsys.readouterr().out
    assert "|---|" in out and "Command: `python scripts/" in out
    assert written == []
    bench.main(args + ["--write"])
    out = capsys.readouterr().out
    assert [section for section, _ in written] == [name] and written[0][1] in out
    assert "wrote docs/benchmarks.md" in out


def test_a_script_is_quiet_even_with_tf_log_level_2():
    """_common raises a lower TF_CPP_MIN_LOG_LEVEL to 3 and drops the start-up lines that no level silences."""
    code = (f"import sys; sys.path.insert(0, {SCRIPTS!r}); import _common, keras; "
            "print(keras.ops.convert_to_numpy(keras.ops.ones(2) + 1))")
    proc = _python(["-c", code], env_update={"TF_CPP_MIN_LOG_LEVEL": "2"}, drop=["CUDA_VISIBLE_DEVICES"])
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
