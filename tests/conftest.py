"""Shared test setup: quiet TF, CPU only, repo root importable, deterministic seeds."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield


# The `slow` marker (`make test-fast` runs the rest, `make test` everything): the oracle tests
# (transformers, bert4keras), the subprocess and script tests, the training and save/load runs.
# Kept here, one list, rather than a decorator in every file.
SLOW_FILES = (
    "tests/scripts/",
    "tests/test_readme.py",
    "tests/models/test_parity_hf.py",
    "tests/models/test_checkpoints.py",
    "tests/models/test_minilm_real_weights.py",
    "tests/models/test_save_load.py",
    "tests/models/test_training.py",
    "tests/models/test_classifier.py",
    "tests/models/test_mlm_training.py",
    "tests/models/test_long_text_study.py",
    "tests/models/test_distribution.py",
)
SLOW_TESTS = (
    "tests/models/test_xiangqi_model.py::test_training",
    "tests/models/test_xiangqi_model.py::test_cache_reuse",
    "tests/models/test_xiangqi_model.py::test_top_move",
    "tests/models/test_xiangqi_model.py::test_resume",
    "tests/models/test_xiangqi_model.py::test_init_from",
    "tests/models/test_attention_swap.py::test_performer_similarity",
    "tests/toolkit/test_xiangqi_rules.py::test_in_check",
    "tests/toolkit/test_xiangqi_material.py::",
    "tests/toolkit/test_tokenizers.py::test_matches_transformers",
    "tests/models/test_bundled_bert.py::test_hugging_face_reads_the_same_weights",
    "tests/models/test_bundled_bert.py::test_held_out_accuracy_is_the_cards",
)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: oracle, subprocess and training tests (deselect with -m 'not slow')")


def pytest_collection_modifyitems(config, items):
    for item in items:
        nodeid = item.nodeid.replace(os.sep, "/")
        if not nodeid.startswith("tests/"):
            nodeid = "tests/" + nodeid
        if nodeid.startswith(SLOW_FILES) or nodeid.startswith(SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
