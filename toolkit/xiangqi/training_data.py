"""The Xiangqi GPT's training data (NumPy only): the held-out split, the resumable
batch stream and the legal-continuation masks of every game.

The stream is a function of ``(seed, step)`` only (:func:`batch_for_step`), so a run
resumed at step ``s`` sees the batches an uninterrupted run sees from ``s`` on.
A batch is ``(x, y)``: inputs and next-token targets padded with ``PAD``
(:func:`pad_pairs`); with the legal masks, ``y`` also carries each target's
legal-continuation bitmask (``y[..., 1]``) for the legal-mass loss term of
:mod:`models.xiangqi_losses`.
"""

import os
import zlib
from dataclasses import dataclass

import numpy as np

from .vocabulary import PAD, encode_game, legal_char_masks, mirror_masks, mirror_moves

PAD_MULTIPLE = 64
MASKS_FILE = "legal_masks.npz"


@dataclass(frozen=True)
class BatchSettings:
    """What a batch of the stream depends on (besides the games and the step).

    ``batch_size`` games a batch, cut at ``max_len`` tokens; the result token replaced by
    ``<any>`` with probability ``p_any``; left-right mirrored with probability 0.5 when
    ``mirror``; drawn ``length_groups`` batches at a time and cut by game length
    (:func:`batch_for_step`); ``seed`` seeds the order and the augmentation."""

    batch_size: int
    max_len: int
    p_any: float = 0.2
    mirror: bool = True
    length_groups: int = 8
    seed: int = 0


# ---------------------------------------------------------------- the split
def is_validation(game_key, val_fraction):
    """Deterministic held-out split by a hash of the game's moves (or id)."""
    return zlib.crc32(str(game_key).encode()) % 10000 < val_fraction * 10000


def split_games(games, val_fraction=0.05):
    """(train, val) lists of GameRecords; the split is the same in every script."""
    train, val = [], []
    for g in games:
        (val if is_validation(" ".join(g.moves), val_fraction) else train).append(g)
    return train, val


def load_games(paths):
    """Every game of the record files ``paths`` (any format :func:`toolkit.xiangqi.records.read_games` reads)."""
    from .records import read_games

    games = []
    for path in paths:
        got, _ = read_games(path)
        games.extend(got)
    return games


# ---------------------------------------------------------------- sequences
def game_ids(game, rng, max_len, p_any, mirror, masks=None):
    """Token ids of one training sequence (at most ``max_len + 1``: inputs and shifted targets).
    With ``masks`` (the game's :func:`toolkit.xiangqi.vocabulary.legal_char_masks`): ``(ids, allowed)``,
    ``allowed[j]`` the legal-continuation bitmask of token ``j`` (0 for the result and end tokens)."""
    moves = list(game.moves)
    flip = mirror and rng.random() < 0.5
    if flip:
        moves = mirror_moves(moves)
    result = game.result if rng.random() >= p_any else None
    ids = encode_game(moves, result, over=game.result is not None)[: max_len + 1]
    if masks is None:
        return ids
    allowed = np.zeros(len(ids), np.int32)
    body = np.asarray(mirror_masks(masks) if flip else masks, np.int32).reshape(-1)[: len(ids) - 1]
    allowed[1: 1 + len(body)] = body
    return ids, allowed


def pad_pairs(seqs, length):
    """``(x, y)``: inputs and next-token targets, ``(len(seqs), length)``, padded with PAD. Sequences
    given as ``(ids, allowed)`` pairs make ``y`` ``(len(seqs), length, 2)``: targets and their
    legal-continuation bitmasks."""
    with_masks = bool(seqs) and isinstance(seqs[0], tuple)
    x = np.full((len(seqs), length), PAD, np.int32)
    y = np.full((len(seqs), length, 2) if with_masks else (len(seqs), length), PAD, np.int32)
    for i, seq in enumerate(seqs):
        ids, allowed = seq if with_masks else (seq, None)
        x[i, : len(ids) - 1] = ids[:-1]
        if with_masks:
            y[i, : len(ids) - 1, 0] = ids[1:]
            y[i, : len(ids) - 1, 1] = allowed[1:]
        else:
            y[i, : len(ids) - 1] = ids[1:]
    return x, y


def _seq_len(seq):
    return len(seq[0] if isinstance(seq, tuple) else seq)


# ------------------------------------------------------------------ batches
_GROUP_CACHE = {}


def _length_group(games, group, settings, masks):
    """The ``length_groups`` batches of group ``group``: its games sorted by length, cut, shuffled."""
    groups = max(1, settings.length_groups)
    rng = np.random.default_rng([settings.seed, group])
    idx = rng.integers(0, len(games), settings.batch_size * groups)
    seqs = [game_ids(games[i], rng, settings.max_len, settings.p_any, settings.mirror,
                     None if masks is None else masks[i]) for i in idx]
    seqs.sort(key=_seq_len)
    cut = [seqs[b * settings.batch_size:(b + 1) * settings.batch_size] for b in range(groups)]
    return [cut[b] for b in rng.permutation(groups)]


def batch_for_step(games, step, settings, masks=None):
    """Batch number ``step``: a function of (seed, step) only, so a resumed run sees the same stream.

    Steps come in groups of ``settings.length_groups`` G: group ``g`` draws ``G x batch``
    games with the seed ``(seed, g)``, sorts them by length, cuts them into G batches of
    similar length and shuffles the batches; each batch is padded to its longest sequence
    (rounded up to a multiple of 64, at most ``max_len``) instead of ``max_len``, so short
    games do not pay for padding (G = 1: random batches, still padded to their longest).
    ``settings``: a :class:`BatchSettings`; ``masks``: the games' legal masks
    (:func:`compute_legal_masks`), for a ``y`` with masks (:func:`pad_pairs`)."""
    group, pos = divmod(step, max(1, settings.length_groups))
    key = (id(games), id(masks), settings, group)
    if key not in _GROUP_CACHE:
        _GROUP_CACHE.clear()
        _GROUP_CACHE[key] = _length_group(games, group, settings, masks)
    seqs = _GROUP_CACHE[key][pos]
    longest = max(_seq_len(seq) - 1 for seq in seqs)
    length = min(settings.max_len, -(-max(longest, 1) // PAD_MULTIPLE) * PAD_MULTIPLE)
    return pad_pairs(seqs, length)


def batches(games, start_step, settings, masks=None):
    """The training stream from ``start_step``. Keras takes the input signature from the first
    two batches: when their lengths happen to agree, the second gets 64 more padding columns
    (targets PAD, so ignored by the loss), which leaves the sequence axis free for any later length."""
    step, first = start_step, None
    while True:
        x, y = batch_for_step(games, step, settings, masks)
        if step == start_step:
            first = x.shape[1]
        elif step == start_step + 1 and x.shape[1] == first:
            x, y = (np.pad(a, ((0, 0), (0, PAD_MULTIPLE)) + ((0, 0),) * (a.ndim - 2), constant_values=PAD)
                    for a in (x, y))
        yield x, y
        step += 1


class _NeverBelow:
    """A stand-in random generator whose draws never fall below a probability: no augmentation."""

    def random(self):
        return 1.0


def fixed_batches(games, settings, masks=None):
    """Validation: every game once, with its real result, not mirrored, padded to ``max_len``."""
    return pad_pairs([game_ids(g, _NeverBelow(), settings.max_len, 0.0, False, None if masks is None else masks[i])
                      for i, g in enumerate(games)], settings.max_len)


# -------------------------------------------------------------- legal masks
def _mask_one(job):
    moves, fen = job
    return legal_char_masks(moves, fen)


def _masks_key(jobs):
    """(digest, lengths) naming the games of a masks file."""
    digest = zlib.crc32("\n".join(f"{fen}|{' '.join(m)}" for m, fen in jobs).encode())
    return digest, np.asarray([len(m) for m, _ in jobs], np.int64)


def _read_masks(path, digest, lengths):
    """The masks kept in ``path`` when it holds these games, else None."""
    if not (path and os.path.exists(path)):
        return None
    with np.load(path) as saved:
        if int(saved["digest"]) == digest and np.array_equal(saved["lengths"], lengths):
            return np.split(saved["masks"], np.cumsum(lengths)[:-1])
    return None


def _compute_masks(jobs, workers, quiet):
    import multiprocessing

    from tqdm import tqdm

    masks = []
    with tqdm(total=len(jobs), unit="game", desc="legal masks", disable=quiet) as bar:
        if workers > 1 and len(jobs) > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for game_masks in pool.imap(_mask_one, jobs, chunksize=16):
                    masks.append(game_masks)
                    bar.update()
        else:
            for job in jobs:
                masks.append(_mask_one(job))
                bar.update()
    return masks


def compute_legal_masks(games, out=None, workers=2, quiet=False):
    """:func:`toolkit.xiangqi.vocabulary.legal_char_masks` of every game (a list in the same order),
    computed with ``workers`` processes and a progress bar; kept in ``out/legal_masks.npz`` (written
    atomically) and read back from it when it holds the same games."""
    from toolkit.checkpoints import atomic_path

    jobs = [(list(g.moves), g.fen) for g in games]
    digest, lengths = _masks_key(jobs)
    path = os.path.join(out, MASKS_FILE) if out else None
    masks = _read_masks(path, digest, lengths)
    if masks is not None:
        return masks
    masks = _compute_masks(jobs, workers, quiet)
    if path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, masks=np.concatenate(masks) if masks else np.zeros((0, 4), np.int32),
                         lengths=lengths, digest=np.int64(digest))
    return masks


__all__ = ["BatchSettings", "PAD_MULTIPLE", "is_validation", "split_games", "load_games", "game_ids", "pad_pairs",
           "batch_for_step", "batches", "fixed_batches", "compute_legal_masks"]
