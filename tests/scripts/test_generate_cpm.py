"""scripts/generate_cpm.py: a tiny 2-shard Megatron checkpoint converted by
scripts/convert_cpm_lm.py, a sentencepiece vocabulary trained on People's
Daily, and the streamed output checked against generate()'s ids."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from models import build_transformer_model
from tests.helpers import ROOT, write_json
from tests.scripts.test_convert_cpm_lm import convert, megatron_split, reference, write_release
from tests.toolkit.test_tokenizers import cpm_model  # noqa: F401  (session fixture: XLNet-layout CPM vocab)
from toolkit.generation import generate
from toolkit.tokenizers import CpmTokenizer


def _load_script():
    spec = importlib.util.spec_from_file_location("generate_cpm", os.path.join(ROOT, "scripts", "generate_cpm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_script()

PROMPTS = ["今天天气很好。我们去", "中国人民决心继承邓小平同志的遗志，把建设有中国特色社会主义事业推向前进"]
NEW = 10


@pytest.fixture(scope="module")
def converted(tmp_path_factory, cpm_model):  # noqa: F811
    """MODEL_DIR as a user has it: the converter's output plus chinese_vocab.model."""
    root = tmp_path_factory.mktemp("cpm")
    hf = reference(seed=5, vocab_size=3000)  # 2 layers, hidden 32, 4 heads, 64 positions
    write_release(root / "CPM", megatron_split(hf.state_dict(), 2, 2))
    out = root / "out"
    convert.main([str(root / "CPM"), str(out), "--num-heads", "4", "--quiet"])
    shutil.copy(cpm_model, out / "chinese_vocab.model")
    return out


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


def test_streamed_output_is_the_decoded_ids_of_generate(converted, capsys):
    tokenizer = CpmTokenizer(str(converted / "chinese_vocab.model"))
    model = build_transformer_model(str(converted / "config.json"), str(converted / "model.weights.h5"), model="gpt2")
    encoded = [tokenizer.encode(p) for p in PROMPTS]
    ids = generate(model, encoded, NEW)
    assert len({tuple(r) for r in ids}) == 2  # two different continuations, generated as one batch

    args = [str(converted), "--prompt", PROMPTS[0], "--prompt", PROMPTS[1], "--max-new-tokens", str(NEW), "--quiet"]
    results = gen.main(args + ["--end", "none"])
    assert capsys.readouterr().out == _expected(tokenizer, ids)
    assert [r[1] for r in results] == ids
    writes = []  # streamed: written piece by piece from generate()'s callback, not at the end
    gen.main(args + ["--end", "none"], out=type("Out", (), {"write": writes.append, "flush": lambda self: None})())
    assert "".join(writes) == _expected(tokenizer, ids) and len(writes) > NEW

    # A stop text taken from the first continuation: both rows are cut where it first appears,
    # the first one early (generation stops once every row has stopped).
    stop = next(s for s in (tokenizer.decode([t]) for t in ids[0][3:]) if s)
    results = gen.main(args + ["--end", stop])
    assert capsys.readouterr().out == _expected(tokenizer, ids, stop)
    assert len(results[0][1]) < NEW

    # Sampling with a seed, 2 prompts in batches of 1: the same as generate() row by row.
    sample = dict(strategy="sample", top_k=50, top_p=0.9, temperature=1.5, seed=7)
    ids = [generate(model, [e], NEW, **sample)[0] for e in encoded]
    gen.main(args + ["--end", "none", "--strategy", "sample", "--top-k", "50", "--top-p", "0.9",
                     "--temperature", "1.5", "--seed", "7", "--batch-size", "1"])
    assert capsys.readouterr().out == _expected(tokenizer, ids)

    ids = [generate(model, [e], 4, strategy="beam", num_beams=2)[0] for e in encoded]
    gen.main(args[:-3] + ["--max-new-tokens", "4", "--quiet", "--end", "none", "--strategy", "beam", "--num-beams", "2"])
    assert capsys.readouterr().out == _expected(tokenizer, ids)


def test_random_init_runs_with_a_vocab_trained_on_the_fly(capsys):
    """No MODEL_DIR, no --vocab: the vocabulary is trained with CPM-LM's real
    layout, which has no <cls> (CpmTokenizer alone refuses it)."""
    results = gen.main(["--random-init", "--prompt", "中国的首都是", "--max-new-tokens", "4", "--quiet"])
    out = capsys.readouterr().out
    (prompt, ids, text), = results
    assert out == prompt + text + "\n" and out.startswith("中国的首都是")
    assert len(ids) <= 4


def test_examples_file_and_prompt_files(tmp_path):
    examples = gen.read_prompt_file(gen.EXAMPLES_FILE)
    assert len(examples) == 4
    assert examples[0].endswith("\n中国的首都是") and examples[1].endswith("\n鸟 ")  # trailing space kept
    assert examples[3].endswith("她很苦恼。->") and all("#" not in p for p in examples)
    path = tmp_path / "prompts.txt"
    path.write_text("# comment\n\n\nfirst line\nsecond line \n\n  \nthird\n", encoding="utf-8")
    assert gen.read_prompt_file(str(path)) == ["first line\nsecond line ", "third"]


def test_bad_input_is_a_clear_error(tmp_path, cpm_model):  # noqa: F811
    cfg = write_json(dict(vocab_size=3000, n_embd=32, n_layer=1, n_head=4, n_positions=64), tmp_path / "config.json")
    base = ["--random-init", "--config", cfg, "--vocab", cpm_model, "--quiet"]
    long = "中国人民决心继承邓小平同志的遗志。" * 8
    with pytest.raises(ValueError, match=r"prompt 2 \('中国人民.*is \d+ tokens long, but the model has 64 positions"):
        gen.main(base + ["--prompt", "你好", "--prompt", long])
    with pytest.raises(ValueError, match=r"\+ --max-new-tokens 60 exceeds the model's 64 positions: use "
                                         r"--max-new-tokens \d+ or less"):
        gen.main(base + ["--prompt", "中国人民决心继承邓小平同志的遗志", "--max-new-tokens", "60"])
    with pytest.raises(ValueError, match="no prompt"):
        gen.main(base)
    with pytest.raises(ValueError, match=r"vocab file '.*chinese_vocab.model' does not exist"):
        gen.main([str(tmp_path), "--config", cfg, "--weights", cfg, "--prompt", "你好"])
    with pytest.raises(ValueError, match=r"--top-p must lie in \(0, 1\], got 1.5"):
        gen.main(base + ["--prompt", "你好", "--top-p", "1.5"])
    with pytest.raises(SystemExit) as e:
        gen.main(["--help"])
    assert e.value.code == 0


@pytest.mark.parametrize("args, message", [
    (["--temperature", "0"], "error: --temperature must be a number > 0, got 0.0"),
    (["--max-new-tokens", "-1"], "error: --max-new-tokens must be >= 1, got -1"),
    (["--batch-size", "0"], "error: --batch-size must be >= 1, got 0"),
    (["--top-k", "0"], "error: --top-k must be >= 1, got 0"),
], ids=["temperature-0", "max-new-tokens-negative", "batch-size-0", "top-k-0"])
def test_nonsense_numbers_are_one_line_exit_2(args, message):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "generate_cpm.py"), "--random-init",
                           "--prompt", "你好", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [message], proc.stderr[-2000:]
