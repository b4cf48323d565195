"""Quiet TensorFlow start-up on a CPU machine, for the packages and the scripts.

``import tensorflow`` (which ``import keras`` triggers on the TensorFlow backend) writes
about 7 lines to stderr on a machine without a GPU: CUDA probing (``cuInit ... UNKNOWN
ERROR (303)``, printed at ERROR level, which only ``TF_CPP_MIN_LOG_LEVEL=3`` silences) and
INFO/WARNING lines (absl's "before absl::InitializeLog()" banner, ``port.cc``,
``cudart_stub.cc``, ``cpu_feature_guard.cc``) that no environment variable silences,
since they come before TensorFlow's log level applies.

:func:`install` (called by ``layers`` and ``models`` on import, and by the scripts)
sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the environment already sets a level, and runs the
first ``import tensorflow`` with file descriptor 2 captured, writing back every line but
those known start-up lines. ``KERAS_LONGCTX_VERBOSE=1`` (or a script's ``--verbose``)
turns all of it off. Nothing happens when TensorFlow is already imported. This module
imports no framework.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

STARTUP_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                           r"|[IW]\d{4} [\d:. ]+\d+ [\w.]+:\d+\] "
                           r"|To enable the following instructions: ")


def verbose():
    return os.environ.get("KERAS_LONGCTX_VERBOSE") == "1"


@contextlib.contextmanager
def startup_noise_dropped():
    """Capture the process's stderr (file descriptor 2, where C++ logs go) for the block, then
    write back every line that is not TensorFlow's start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not STARTUP_NOISE.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` (wherever it happens: keras, transformers, ...) inside
    :func:`startup_noise_dropped`, then steps aside."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            load = spec.loader.exec_module

            def exec_module(module):
                with startup_noise_dropped():
                    load(module)

            spec.loader.exec_module = exec_module
        return spec


def install(force_level=False):
    """Quiet the coming TensorFlow import (see the module docstring). ``force_level``: raise a
    lower ``TF_CPP_MIN_LOG_LEVEL`` already in the environment to 3 (the scripts do)."""
    if verbose():
        return
    for name in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL"):
        if force_level and os.environ.get(name, "") not in ("3", "4"):
            os.environ[name] = "3"
        os.environ.setdefault(name, "3")
    if "tensorflow" in sys.modules or any(isinstance(finder, QuietTensorFlowImport) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, QuietTensorFlowImport())
