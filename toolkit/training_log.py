"""A training run's CSV log (one row per logging period, with a ``step`` column, as
:mod:`models.training` writes it with Keras' ``CSVLogger``): read it, cut it back to a
checkpoint's step on resume, and plot it to a PNG (matplotlib, no framework)."""

import csv
import math
import os
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class Panel:
    """One plot of the figure: the log columns ``keys`` against the step (``dashed`` ones dashed)."""

    title: str
    ylabel: str
    keys: Tuple[str, ...]
    dashed: Tuple[str, ...] = ()


def read_log(path):
    """The rows of a CSV log (dicts of strings); [] when there is no such file."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _number(text):
    """The finite float in ``text``, else None (``NA``, empty, missing)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def series(rows, key):
    """``[(step, value)]`` of the rows where ``key`` holds a finite number."""
    points = []
    for row in rows:
        value = _number(row.get(key))
        if value is not None:
            points.append((_number(row.get("step")) or 0.0, value))
    return points


def trim_log(path, step):
    """Drop the rows logged after ``step`` (a run resumed from the checkpoint of ``step`` logs them
    again); the file is rewritten atomically, and left alone without a ``step`` column."""
    from toolkit.checkpoints import atomic_path

    if not os.path.exists(path):
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    if not fields or "step" not in fields:
        return 0
    kept = [row for row in rows if (_number(row.get("step")) or 0.0) <= step]
    if len(kept) < len(rows):
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept)
    return len(rows) - len(kept)


def _draw_panel(ax, rows, panel):
    for key in panel.keys:
        points = series(rows, key)
        if points:
            ax.plot(*zip(*points), marker=".", label=key, linestyle="--" if key in panel.dashed else "-")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(panel.ylabel)
    ax.set_title(panel.title)
    ax.grid(alpha=0.3)
    ax.legend()


def plot_log(csv_path, png_path, panels, dpi=100):
    """Plot the log's ``panels`` (:class:`Panel`) side by side into ``png_path``; returns the path,
    or None when the log is missing or empty."""
    rows = read_log(csv_path)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(panels)
    fig, axes = plt.subplots(1, count, figsize=(6 if count == 1 else 5.5 * count, 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        _draw_panel(ax, rows, panel)
    fig.tight_layout()
    fig.savefig(png_path, dpi=dpi)
    plt.close(fig)
    return png_path
