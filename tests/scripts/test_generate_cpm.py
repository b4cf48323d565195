"""scripts/generate_cpm.py (run as a subprocess): a tiny 2-shard Megatron checkpoint
converted by scripts/convert_cpm_lm.py, a sentencepiece vocabulary trained on People's
Daily, and the streamed output checked against generate()'s ids; the library functions it
calls (toolkit.generation: read_prompt_file, generate_text, InOrder) tested directly."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from models import build_transformer_model
from tests.helpers import ROOT, write_json
from tests.scripts.test_convert_cpm_lm import convert, reference, write_release
from tests.toolkit.test_tokenizers import cpm_model  # noqa: F401  (session fixture: XLNet-layout CPM vocab)
from toolkit.generation import InOrder, generate, generate_text, read_prompt_file
from toolkit.megatron import megatron_split
from toolkit.tokenizers import CpmTokenizer

SCRIPT = os.path.join(ROOT, "scripts", "generate_cpm.py")
PROMPTS = ["今天天气很好。我们去", "中国人民决心继承邓小平同志的遗志，把建设有中国特色社会主义事业推向前进"]
NEW = 10


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _output(*args):
    proc = _run(*args)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def converted(tmp_path_factory, cpm_model):  # noqa: F811
    """MODEL_DIR as a user has it: the converter's output plus chinese_vocab.model."""
    root = tmp_path_factory.mktemp("cpm")
    hf = reference(seed=5, vocab_size=3000)  # 2 layers, hidden 32, 4 heads, 64 positions
    write_release(root / "CPM", megatron_split(hf.state_dict(), 2))
    out = root / "out"
    convert(root / "CPM", out, "--num-heads", "4", "--quiet")
    shutil.copy(cpm_model, out / "chinese_vocab.model")
    return out


@pytest.fixture(scope="module")
def model_and_tokenizer(converted):
    model = build_transformer_model(str(converted / "config.json"), str(converted / "model.weights.h5"), model="gpt2")
    return model, CpmTokenizer(str(converted / "chinese_vocab.model"))


def _expected(tokenizer, ids, stop=None):
    """What the script prints for these generated ids: prompt + continuation
    (cut at ``stop``), a newline, a blank line between prompts."""
    blocks = []
    for prompt, row in zip(PROMPTS, ids):
        text = tokenizer.decode(row)
        if stop is not None and stop in text:
            text = text[: text.index(stop)]
        blocks.append(prompt + text + "\n")
    return "\n".join(blocks)


def test_streamed_output_is_the_decoded_ids_of_generate(converted, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    ids = generate(model, encoded, NEW)
    assert len({tuple(r) for r in ids}) == 2  # two different continuations, generated as one batch

    args = [converted, "--prompt", PROMPTS[0], "--prompt", PROMPTS[1], "--max-new-tokens", NEW, "--quiet"]
    assert _output(*args, "--end", "none") == _expected(tokenizer, ids)

    # A stop text taken from the first continuation: both rows are cut where it first appears.
    stop = next(s for s in (tokenizer.decode([t]) for t in ids[0][3:]) if s)
    assert _output(*args, "--end", stop) == _expected(tokenizer, ids, stop)

    # Sampling with a seed, 2 prompts in batches of 1: the same as generate() row by row.
    sample = dict(strategy="sample", top_k=50, top_p=0.9, temperature=1.5, seed=7)
    ids = [generate(model, [e], NEW, **sample)[0] for e in encoded]
    assert _output(*args, "--end", "none", "--strategy", "sample", "--top-k", "50", "--top-p", "0.9",
                   "--temperature", "1.5", "--seed", "7", "--batch-size", "1") == _expected(tokenizer, ids)

    ids = [generate(model, [e], 4, strategy="beam", num_beams=2)[0] for e in encoded]
    assert _output(*args[:-3], "--max-new-tokens", "4", "--quiet", "--end", "none", "--strategy", "beam",
                   "--num-beams", "2") == _expected(tokenizer, ids)


def test_generate_text_streams_rows_in_order_and_stops_early(model_and_tokenizer):
    """The library under the script: InOrder gets the text piece by piece from generate()'s
    callback, not at the end; a stop string ends the first row early."""
    model, tokenizer = model_and_tokenizer
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    ids = generate(model, encoded, NEW)
    writes = []
    printer = InOrder(2, writes.append, head=lambda row: ("\n" if row else "") + PROMPTS[row], tail=lambda row: "\n")
    results = generate_text(model, tokenizer, encoded, NEW, on_text=printer)
    assert "".join(writes) == _expected(tokenizer, ids) and len(writes) > NEW
    assert [row_ids for row_ids, _ in results] == ids
    assert [text for _, text in results] == [tokenizer.decode(row) for row in ids]

    stop = next(s for s in (tokenizer.decode([t]) for t in ids[0][3:]) if s)
    results = generate_text(model, tokenizer, encoded, NEW, stops=[stop])
    assert len(results[0][0]) < NEW
    assert [text for _, text in results] == [tokenizer.decode(row).split(stop)[0] for row in ids]


def test_random_init_runs_with_a_vocab_trained_on_the_fly():
    """No MODEL_DIR, no --vocab: the vocabulary is trained with CPM-LM's real
    layout, which has no <cls> (CpmTokenizer alone refuses it)."""
    proc = _run("--random-init", "--prompt", "中国的首都是", "--max-new-tokens", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("中国的首都是") and proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1
    assert len(proc.stdout) <= len("中国的首都是") + 1 + 4 * 8  # at most 4 new pieces
    assert proc.stderr.splitlines()[0] == "training a 3000-piece sentencepiece model on 130,000 characters of " \
                                          "People's Daily ..."
    assert proc.stderr.splitlines()[1] == "random GPT-2: 2 layers, hidden 128, vocabulary 3000"


def test_int8_generates_on_tensorflow_and_on_the_torch_backend(tmp_path, cpm_model):  # noqa: F811
    """--int8 (a random model built int8) on TensorFlow (Keras' int8 kernels) and on the torch
    backend (fbgemm): both continue the prompt (their logits are compared in
    tests/models/test_quantization.py)."""
    cfg = write_json(dict(vocab_size=3000, n_embd=64, n_layer=2, n_head=4, n_positions=64), tmp_path / "config.json")
    args = ["--random-init", "--int8", "--config", cfg, "--vocab", cpm_model, "--quiet", "--seed", "3",
            "--prompt", "中国的首都是", "--max-new-tokens", "6"]
    outputs = []
    for backend in ("tensorflow", "torch"):
        proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=300, cwd=ROOT,
                              env=dict(os.environ, KERAS_BACKEND=backend))
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(proc.stdout)
    assert all(out.startswith("中国的首都是") and len(out.strip()) > len("中国的首都是") for out in outputs)


def test_examples_file_and_prompt_files(tmp_path):
    examples = read_prompt_file(os.path.join(ROOT, "scripts", "cpm_prompts.txt"))
    assert len(examples) == 4
    assert examples[0].endswith("\n中国的首都是") and examples[1].endswith("\n鸟 ")  # trailing space kept
    assert examples[3].endswith("她很苦恼。->") and all("#" not in p for p in examples)
    path = tmp_path / "prompts.txt"
    path.write_text("# comment\n\n\nfirst line\nsecond line \n\n  \nthird\n", encoding="utf-8")
    assert read_prompt_file(str(path)) == ["first line\nsecond line ", "third"]
    path.write_bytes(b"\xff\xfe not UTF-8")
    with pytest.raises(ValueError, match=f"prompt file '{re.escape(str(path))}' is not UTF-8"):
        read_prompt_file(str(path))


def test_bad_input_is_one_line_exit_2(tmp_path, cpm_model):  # noqa: F811
    cfg = write_json(dict(vocab_size=3000, n_embd=32, n_layer=1, n_head=4, n_positions=64), tmp_path / "config.json")
    base = ["--random-init", "--config", cfg, "--vocab", cpm_model, "--quiet"]
    long = "中国人民决心继承邓小平同志的遗志。" * 8
    for args, pattern in [
        (base + ["--prompt", "你好", "--prompt", long],
         r"prompt 2 \('中国人民.*is \d+ tokens long, but the model has 64 positions"),
        (base + ["--prompt", "中国人民决心继承邓小平同志的遗志", "--max-new-tokens", "60"],
         r"\+ --max-new-tokens 60 exceeds the model's 64 positions: use --max-new-tokens \d+ or less"),
        (base, "no prompt: give --prompt TEXT, --prompt-file FILE or --examples"),
        ([tmp_path, "--config", cfg, "--weights", cfg, "--prompt", "你好"],
         r"vocab file '.*chinese_vocab.model' does not exist \(copy chinese_vocab.model"),
        (base + ["--prompt", "你好", "--top-p", "1.5"], r"--top-p must lie in \(0, 1\], got 1.5"),
        (base + ["--prompt", "你好", "--end", "none", "--end", "\n"],
         "--end none cannot be combined with other --end values"),
    ]:
        proc = _run(*args)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
        assert re.search(pattern, lines[0]), lines[0]
    proc = _run("--help")
    assert proc.returncode == 0 and "--max-new-tokens" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--temperature", "0"], "error: --temperature must be a number > 0, got 0.0"),
    (["--max-new-tokens", "-1"], "error: --max-new-tokens must be >= 1, got -1"),
    (["--batch-size", "0"], "error: --batch-size must be >= 1, got 0"),
    (["--top-k", "0"], "error: --top-k must be >= 1, got 0"),
], ids=["temperature-0", "max-new-tokens-negative", "batch-size-0", "top-k-0"])
def test_nonsense_numbers_are_one_line_exit_2(args, message):
    proc = _run("--random-init", "--prompt", "你好", *args, timeout=60)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [message], proc.stderr[-2000:]
