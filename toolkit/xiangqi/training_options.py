"""The settings of a Xiangqi GPT training run (framework-free): one field per option of
``scripts/train_xiangqi.py``, with the same names and defaults, checked in one place.
The run itself is :func:`models.xiangqi_training.train_xiangqi_model`."""

import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..option_checks import check_minimums
from .training_data import BatchSettings


@dataclass
class XiangqiTrainingOptions:
    """What ``scripts/train_xiangqi.py --help`` describes; the defaults are the script's."""

    games: List[str] = field(default_factory=list)
    out: str = ""
    steps: int = 600
    batch_size: int = 16
    max_len: int = 512
    lr: float = 1e-3
    warmup: Optional[int] = None
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    p_any: float = 0.2
    no_mirror: bool = False
    legal_weight: float = 0.0
    workers: int = 2
    val_fraction: float = 0.05
    length_groups: int = 8
    checkpoint_every: int = 50
    layers: Optional[int] = None
    hidden: Optional[int] = None
    heads: Optional[int] = None
    intermediate: Optional[int] = None
    dropout: Optional[float] = None
    resume: bool = False
    init_from: Optional[str] = None
    stop_after: Optional[int] = None
    seed: int = 0
    quiet: bool = False
    distribution: Optional[str] = None
    coordinator: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None

    def check(self):
        """Raise ValueError (one line naming the option and its value) for a setting that cannot work."""
        check_minimums(self, (("steps", 1), ("batch_size", 1), ("checkpoint_every", 1), ("max_len", 8),
                              ("workers", 1), ("stop_after", 1), ("warmup", 0)))
        for name in ("legal_weight", "lr", "weight_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        for name in ("p_any", "val_fraction", "min_lr_ratio"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if not self.games or not self.out:
            raise ValueError("give the game record files (--games) and the output directory (--out)")
        for path in self.games:
            if not os.path.isfile(path):
                problem = "a folder, give the record files in it" if os.path.exists(path) else \
                    "no such file (give existing game record files)"
                raise FileNotFoundError(f"--games {path}: {problem}")
        return self

    def batch_settings(self):
        """The :class:`~toolkit.xiangqi.training_data.BatchSettings` of the training stream."""
        return BatchSettings(batch_size=self.batch_size, max_len=self.max_len, p_any=self.p_any,
                             mirror=not self.no_mirror, length_groups=self.length_groups, seed=self.seed)

    def model_overrides(self):
        """The model settings given (None: not given) under the config.json keys."""
        return {"num_hidden_layers": self.layers, "hidden_size": self.hidden, "num_attention_heads": self.heads,
                "intermediate_size": self.intermediate, "hidden_dropout_prob": self.dropout,
                "attention_probs_dropout_prob": self.dropout}
