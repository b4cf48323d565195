"""The check of a Xiangqi GPT model directory before anything slow loads it
(framework-free: only the files are looked at; ``models.xiangqi`` loads them).

>>> check_model_dir(None)  # the bundled model: nothing to check
>>> check_model_dir("/no/such/dir")
Traceback (most recent call last):
...
ValueError: --model /no/such/dir: no such directory; give a directory with config.json and model.weights.h5 \
(scripts/train_xiangqi.py --out DIR writes them), or leave --model out for the bundled model
"""

import os

MODEL_FILES = ("config.json", "model.weights.h5")
_FIX = ("give a directory with config.json and model.weights.h5 (scripts/train_xiangqi.py --out DIR writes them), "
        "or leave --model out for the bundled model")


def check_model_dir(path):
    """A one-line ValueError (naming ``path``, what is wrong, and the fix) unless ``path``
    (None: the bundled model) is a directory holding :data:`MODEL_FILES`."""
    if path is None:
        return
    if not os.path.exists(path):
        raise ValueError(f"--model {path}: no such directory; {_FIX}")
    if not os.path.isdir(path):
        raise ValueError(f"--model {path}: not a directory; {_FIX}")
    missing = [name for name in MODEL_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ValueError(f"--model {path}: no {' or '.join(missing)} in it; {_FIX}")


__all__ = ["MODEL_FILES", "check_model_dir"]
