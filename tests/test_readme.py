"""Every ```python block of README.md runs as written, each on its own (a fresh
namespace, in a fresh process, outside the repository, offline)."""

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

README = os.path.join(ROOT, "README.md")
RUNNER = """
import sys, traceback
blocks = sys.stdin.read().split("\\n#---block---\\n")
for number, source in enumerate(blocks, 1):
    print(f"#---running block {number}---", flush=True)
    try:
        exec(compile(source, f"README.md python block {number}", "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc()
        sys.exit(f"README.md python block {number} failed")
"""


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_python_blocks():
    blocks = python_blocks(open(README, encoding="utf-8").read())
    assert len(blocks) >= 4
    assert all("import" in block for block in blocks), "each block must carry its own imports"


def test_every_readme_python_block_runs(tmp_path):
    blocks = python_blocks(open(README, encoding="utf-8").read())
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="-1", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", RUNNER], input="\n#---block---\n".join(blocks), text=True,
                            capture_output=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert result.stdout.count("#---running block") == len(blocks)
    assert "(1, 2102, 384)" in result.stdout  # the quick start's printed shape, as the README says
    assert "True" in result.stdout.splitlines()  # the saved and reloaded GPT-2 generates the same
    assert os.listdir(tmp_path) == [], "README blocks must not write files into the current directory"


@pytest.mark.parametrize("needle", ["model.predict([[ids], [segs]]", "model=\"gpt2\")", "generate(gpt"])
def test_readme_shows_the_basic_calls(needle):
    assert needle in open(README, encoding="utf-8").read()
