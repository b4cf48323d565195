#!/usr/bin/env python
"""Train the Xiangqi GPT (models/xiangqi.py) on game records.

Reads any format ``toolkit.xiangqi.records.read_games`` reads (own JSONL, seed
JSONL, ICCS PGN), holds out a deterministic validation split (by a hash of the
moves, the same split scripts/eval_xiangqi.py uses), and trains with Keras
``fit``: AdamW, linear warmup + cosine decay, masked next-token loss (padding
ignored), left-right mirroring as augmentation, and the result token replaced by
``<any>`` with probability ``--p-any`` (outcome conditioning). Batches are
drawn ``--length-groups`` at a time and cut by game length, each padded only to
its longest game (a multiple of 64), so short games do not pay for ``--max-len``.

``--legal-weight W`` adds W times a *legal-mass* term to the loss: at every move
character, minus the log of the probability the model gives to the characters
that continue the real move's prefix into a legal move
(``models.xiangqi.legal_char_masks``), so that each position teaches all of its
legal moves (about 40) and not only the one played. The masks are computed once
(``--workers`` processes, about 0.5 ms a ply) and kept in ``OUT/legal_masks.npz``.
The log then also has ``masked_ce`` (the next-token cross-entropy alone,
comparable with a run without the term) and ``legal_char_rate`` (how often the
argmax character is a legal continuation).

Checkpoints: every ``--checkpoint-every`` steps a new ``OUT/checkpoints/step-N/``
(weights, optimizer variables incl. ``iterations``, step) is written, then the
pointer ``OUT/checkpoints/latest`` is replaced atomically, so a kill at any
moment leaves the last complete checkpoint. ``--resume`` continues from it with
the same optimizer step and the same data stream (batch ``s`` depends only on
the seed and ``s``). ``OUT/log.csv`` (CSVLogger, appended on resume), and at
the end ``OUT/loss.png``, ``OUT/config.json`` + ``OUT/model.weights.h5`` and
``OUT/train_summary.json``.

Example:
    python scripts/train_xiangqi.py --games games.jsonl --out runs/xq --steps 600 \
        --batch-size 16 --checkpoint-every 50
"""

import argparse
import glob
import json
import math
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
import scripts._common  # noqa: E402,F401  (quiet TF, CPU only)

import numpy as np  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=scripts._common.HelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--games", nargs="+", required=True, help="game record files (JSONL / seed JSONL / PGN)")
    p.add_argument("--out", required=True, help="output directory (checkpoints, logs, final model)")
    p.add_argument("--steps", type=int, default=600, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=16, help="games per optimizer step")
    p.add_argument("--max-len", type=int, default=512, help="tokens per training sequence (longer games are cut)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default 5%% of --steps)")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decays to this fraction of --lr")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decoupled weight decay")
    p.add_argument("--p-any", type=float, default=0.2, help="probability of replacing the result token by <any>")
    p.add_argument("--no-mirror", action="store_true", help="no left-right mirroring augmentation")
    p.add_argument("--legal-weight", type=float, default=0.0,
                   help="weight of the legal-mass loss term (0: next-token cross-entropy only)")
    p.add_argument("--workers", type=int, default=2, help="processes computing the legal masks")
    p.add_argument("--val-fraction", type=float, default=0.05,
                   help="share of the games held out for validation (split by a hash of the moves)")
    p.add_argument("--length-groups", type=int, default=8,
                   help="batches drawn together and cut by game length, each padded to its longest "
                        "game (1: no grouping; default 8)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (= one log row)")
    p.add_argument("--layers", type=int, default=None,
                   help="transformer layers (default: models.xiangqi.DEFAULT_CONFIG's, or --init-from's)")
    p.add_argument("--hidden", type=int, default=None, help="hidden size (default: as --layers)")
    p.add_argument("--heads", type=int, default=None, help="attention heads (default: as --layers)")
    p.add_argument("--intermediate", type=int, default=None, help="feed-forward size (default: as --layers)")
    p.add_argument("--dropout", type=float, default=None,
                   help="hidden and attention dropout (default: as --layers)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from the weights of a saved model (config.json + model.weights.h5, e.g. "
                        "models/xiangqi_model) with a fresh optimizer and schedule; its architecture is used")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many steps in this run (tests)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the data order and the augmentation")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.checkpoint_every < 1 or args.max_len < 8:
        p.error("--steps, --batch-size, --checkpoint-every >= 1 and --max-len >= 8")
    if not (args.legal_weight >= 0 and math.isfinite(args.legal_weight)) or args.workers < 1:
        p.error("--legal-weight must be a finite number >= 0 and --workers >= 1")
    return args


# ---------------------------------------------------------------------- data
def load_games(paths):
    from toolkit.xiangqi.records import read_games

    games = []
    for path in paths:
        got, stats = read_games(path)
        games.extend(got)
    return games


def game_ids(game, rng, max_len, p_any, mirror, masks=None):
    """Token ids of one training sequence (at most ``max_len + 1``: inputs and shifted targets).
    With ``masks`` (the game's :func:`models.xiangqi.legal_char_masks`): ``(ids, allowed)``,
    ``allowed[j]`` the legal-continuation bitmask of token ``j`` (0 for the result and end tokens)."""
    from models.xiangqi import encode_game, mirror_masks, mirror_moves

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
    from models.xiangqi import PAD

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


def _mask_one(job):
    from models.xiangqi import legal_char_masks

    moves, fen = job
    return legal_char_masks(moves, fen)


def compute_legal_masks(games, out=None, workers=2, quiet=False):
    """:func:`models.xiangqi.legal_char_masks` of every game (a list in the same order), computed
    with ``workers`` processes and a progress bar; kept in ``out/legal_masks.npz`` (written
    atomically) and read back from it when it holds the same games."""
    import multiprocessing as mp
    import zlib

    from tqdm import tqdm

    from toolkit.checkpoints import atomic_path

    jobs = [(list(g.moves), g.fen) for g in games]
    digest = zlib.crc32("\n".join(f"{fen}|{' '.join(m)}" for m, fen in jobs).encode())
    lengths = np.asarray([len(m) for m, _ in jobs], np.int64)
    path = os.path.join(out, "legal_masks.npz") if out else None
    if path and os.path.exists(path):
        with np.load(path) as z:
            if int(z["digest"]) == digest and np.array_equal(z["lengths"], lengths):
                return np.split(z["masks"], np.cumsum(lengths)[:-1])
    with tqdm(total=len(jobs), unit="game", desc="legal masks", disable=quiet) as bar:
        if workers > 1 and len(jobs) > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                masks = []
                for m in pool.imap(_mask_one, jobs, chunksize=16):
                    masks.append(m)
                    bar.update()
        else:
            masks = []
            for job in jobs:
                masks.append(_mask_one(job))
                bar.update()
    if path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, masks=np.concatenate(masks) if masks else np.zeros((0, 4), np.int32),
                         lengths=lengths, digest=np.int64(digest))
    return masks


PAD_MULTIPLE = 64
_GROUP_CACHE = {}


def batch_for_step(games, step, args, masks=None):
    """Batch number ``step``: a function of (seed, step) only, so a resumed run sees the same stream.

    Steps come in groups of ``--length-groups`` G: group ``g`` draws ``G x batch`` games
    with the seed ``(seed, g)``, sorts them by length, cuts them into G batches of similar
    length and shuffles the batches; each batch is padded to its longest sequence (rounded up
    to a multiple of 64, at most ``--max-len``) instead of ``--max-len``, so short games do
    not pay for padding (G = 1: random batches, still padded to their longest). ``masks``: the
    games' legal masks (:func:`compute_legal_masks`), for a ``y`` with masks (:func:`pad_pairs`)."""
    groups = max(1, args.length_groups)
    group, pos = divmod(step, groups)
    key = (id(games), id(masks), args.seed, group)
    if key not in _GROUP_CACHE:
        rng = np.random.default_rng([args.seed, group])
        idx = rng.integers(0, len(games), args.batch_size * groups)
        seqs = [game_ids(games[i], rng, args.max_len, args.p_any, not args.no_mirror,
                         None if masks is None else masks[i]) for i in idx]
        seqs.sort(key=_seq_len)
        cut = [seqs[b * args.batch_size:(b + 1) * args.batch_size] for b in range(groups)]
        _GROUP_CACHE.clear()
        _GROUP_CACHE[key] = [cut[b] for b in rng.permutation(groups)]
    seqs = _GROUP_CACHE[key][pos]
    longest = max(_seq_len(seq) - 1 for seq in seqs)
    length = min(args.max_len, -(-max(longest, 1) // PAD_MULTIPLE) * PAD_MULTIPLE)
    return pad_pairs(seqs, length)


def batches(games, start_step, args, masks=None):
    """The training stream from ``start_step``. Keras takes the input signature from the first
    two batches: when their lengths happen to agree, the second gets 64 more padding columns
    (targets PAD, so ignored by the loss), which leaves the sequence axis free for any later length."""
    from models.xiangqi import PAD

    step, first = start_step, None
    while True:
        x, y = batch_for_step(games, step, args, masks)
        if step == start_step:
            first = x.shape[1]
        elif step == start_step + 1 and x.shape[1] == first:
            x, y = (np.pad(a, ((0, 0), (0, PAD_MULTIPLE)) + ((0, 0),) * (a.ndim - 2), constant_values=PAD)
                    for a in (x, y))
        yield x, y
        step += 1


def fixed_batches(games, args, masks=None):
    """Validation: every game once, with its real result, not mirrored."""
    class _NoRand:
        def random(self):
            return 1.0
    return pad_pairs([game_ids(g, _NoRand(), args.max_len, 0.0, False, None if masks is None else masks[i])
                      for i, g in enumerate(games)], args.max_len)


# --------------------------------------------------------------------- model
def _split_targets(y_true):
    """(targets, legal bitmasks or None) of a ``y`` from :func:`pad_pairs`."""
    from keras import ops

    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == 3:
        return y_true[..., 0], y_true[..., 1]
    return y_true, None


def _masked_mean(values, mask):
    from keras import ops

    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def _allowed(bits, vocab):
    """(..., vocab) 0/1 floats: the characters whose bit is set in each legal bitmask."""
    from keras import ops

    return ops.cast(ops.bitwise_and(ops.right_shift(ops.expand_dims(bits, -1),
                                                    ops.arange(vocab, dtype="int32")), 1), "float32")


def masked_ce(y_true, logits):
    """Next-token cross-entropy over the real (non-padding) targets."""
    from keras import ops

    target, _ = _split_targets(y_true)
    mask = ops.cast(ops.not_equal(target, 0), "float32")
    return _masked_mean(ops.sparse_categorical_crossentropy(target, logits, from_logits=True), mask)


def legal_mass_nll(y_true, logits):
    """-log sum of the probabilities of the legal continuations, over the move characters:
    ``-log sum_{c legal} softmax(logits)_c`` (0 when ``y`` carries no masks)."""
    from keras import ops

    _, bits = _split_targets(y_true)
    if bits is None:
        return ops.zeros(())
    logp = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    allowed = _allowed(bits, logits.shape[-1])
    legal = ops.logsumexp(logp + (allowed - 1.0) * 1e9, axis=-1)
    return _masked_mean(-legal, ops.cast(ops.not_equal(bits, 0), "float32"))


def make_loss(legal_weight=0.0):
    """Masked cross-entropy, plus ``legal_weight`` x :func:`legal_mass_nll` when positive."""
    if not legal_weight:
        return masked_ce

    def masked_loss_with_legal_mass(y_true, logits):
        return masked_ce(y_true, logits) + legal_weight * legal_mass_nll(y_true, logits)
    return masked_loss_with_legal_mass


masked_loss = masked_ce  # the loss of a run without --legal-weight


def masked_accuracy(y_true, logits):
    from keras import ops

    target, _ = _split_targets(y_true)
    mask = ops.cast(ops.not_equal(target, 0), "float32")
    hit = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), target), "float32")
    return _masked_mean(hit, mask)


def legal_char_rate(y_true, logits):
    """How often the argmax character is a legal continuation of the real prefix (move characters)."""
    from keras import ops

    _, bits = _split_targets(y_true)
    if bits is None:
        return ops.zeros(())
    top = ops.cast(ops.argmax(logits, axis=-1), "int32")
    hit = ops.cast(ops.bitwise_and(ops.right_shift(bits, top), 1), "float32")
    return _masked_mean(hit, ops.cast(ops.not_equal(bits, 0), "float32"))


def make_optimizer(args):
    import keras

    warmup = args.warmup if args.warmup is not None else max(1, args.steps // 20)
    warmup = min(warmup, args.steps - 1) if args.steps > 1 else 0
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, args.steps - warmup), alpha=args.min_lr_ratio,
        warmup_target=args.lr, warmup_steps=warmup)
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=args.weight_decay, clipnorm=1.0)


# ---------------------------------------------------------------- checkpoints
def ckpt_root(out):
    return os.path.join(out, "checkpoints")


def save_checkpoint(model, optimizer, out, step, elapsed, keep=2):
    from toolkit.checkpoints import atomic_path, save_json

    root = ckpt_root(out)
    d = os.path.join(root, f"step-{step:08d}")
    tmp = d + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_weights(os.path.join(tmp, "model.weights.h5"))
    np.savez(os.path.join(tmp, "optimizer.npz"),
             **{f"v{i:04d}": np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                for i, v in enumerate(optimizer.variables)})
    save_json({"step": int(step), "elapsed": float(elapsed), "n_optimizer_variables": len(optimizer.variables)},
              os.path.join(tmp, "state.json"))
    shutil.rmtree(d, ignore_errors=True)
    os.replace(tmp, d)
    with atomic_path(os.path.join(root, "latest")) as p:
        with open(p, "w") as f:
            f.write(os.path.basename(d) + "\n")
            f.flush()
            os.fsync(f.fileno())
    for old in sorted(glob.glob(os.path.join(root, "step-*")))[:-keep]:
        if not old.endswith(".partial"):
            shutil.rmtree(old, ignore_errors=True)
    return d


def latest_checkpoint(out):
    pointer = os.path.join(ckpt_root(out), "latest")
    if not os.path.exists(pointer):
        return None
    d = os.path.join(ckpt_root(out), open(pointer).read().strip())
    return d if os.path.exists(os.path.join(d, "state.json")) else None


def load_checkpoint(model, optimizer, d):
    optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(d, "model.weights.h5"))
    arrays = np.load(os.path.join(d, "optimizer.npz"))
    keys = sorted(arrays.files)
    if len(keys) != len(optimizer.variables):
        raise ValueError(f"checkpoint {d} has {len(keys)} optimizer variables, the optimizer {len(optimizer.variables)}")
    for v, k in zip(optimizer.variables, keys):
        v.assign(arrays[k])
    with open(os.path.join(d, "state.json")) as f:
        return json.load(f)


def _sync(model):
    """JAX trains on stateless copies: write them back before reading variables."""
    if getattr(model, "_jax_state", None) is not None and hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


def make_callbacks(model, optimizer, args, state):
    import keras

    class Checkpointer(keras.callbacks.Callback):
        """Writes a checkpoint every ``--checkpoint-every`` optimizer steps; stops at
        ``--steps`` or after ``--stop-after`` steps of this run."""

        def __init__(self):
            super().__init__()
            self.run_steps = 0

        def on_train_batch_end(self, batch, logs=None):
            _sync(self.model)
            step = int(np.asarray(optimizer.iterations))
            self.run_steps += 1
            state["step"] = step
            if step % args.checkpoint_every == 0 or step >= args.steps:
                save_checkpoint(model, optimizer, args.out, step, state["elapsed0"] + time.time() - state["t0"])
            if step >= args.steps or (args.stop_after is not None and self.run_steps >= args.stop_after):
                self.model.stop_training = True

    return [Checkpointer(), keras.callbacks.CSVLogger(os.path.join(args.out, "log.csv"), append=args.resume)]


def _is_float(text):
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def plot_losses(out):
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = os.path.join(out, "log.csv")
    if not os.path.exists(path):
        return None
    rows = list(csv.DictReader(open(path)))
    if not rows:
        return None
    steps = [float(r.get("step") or 0) for r in rows]

    def series(key):
        return [(s, float(r[key])) for s, r in zip(steps, rows) if _is_float(r.get(key))]

    legal = any(series(k) for k in ("legal_char_rate", "val_legal_char_rate"))
    fig, axes = plt.subplots(1, 2 if legal else 1, figsize=(11 if legal else 6, 4), squeeze=False)
    ax = axes[0, 0]
    keys = ("masked_ce", "val_masked_ce", "loss", "val_loss") if legal else ("loss", "val_loss")
    for key in keys:
        if series(key):
            ax.plot(*zip(*series(key)), marker=".", label=key, linestyle="--" if legal and "loss" in key else "-")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("nats (loss = cross-entropy + legal term)" if legal else "masked next-token cross-entropy (nats)")
    ax.set_title("Xiangqi GPT training")
    ax.grid(alpha=0.3)
    ax.legend()
    if legal:
        ax = axes[0, 1]
        for key in ("legal_char_rate", "val_legal_char_rate"):
            if series(key):
                ax.plot(*zip(*series(key)), marker=".", label=key)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("argmax character is a legal continuation")
        ax.set_title("legal character rate")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png = os.path.join(out, "loss.png")
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


# ---------------------------------------------------------------------- main
def init_config(directory, overrides):
    """The architecture of the saved model in ``directory``; dropout may be overridden,
    the shape-defining sizes may not (the weights would not fit)."""
    path = os.path.join(directory, "config.json")
    for name in ("config.json", "model.weights.h5"):
        if not os.path.exists(os.path.join(directory, name)):
            raise SystemExit(f"--init-from {directory}: {name} not found")
    saved = json.load(open(path))
    keys = {"num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"}
    for key in keys:
        if overrides.get(key) is not None and overrides[key] != saved.get(key):
            raise SystemExit(f"--init-from {directory}: {key}={overrides[key]} differs from the saved model's "
                             f"{saved.get(key)} ({path})")
    config = {k: saved[k] for k in keys | {"max_position_embeddings", "hidden_act"} if k in saved}
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        config[key] = overrides[key] if overrides.get(key) is not None else saved.get(key, 0.0)
    return config


def main(argv=None):
    args = parse_args(argv)
    import keras

    from models.xiangqi import build_xiangqi_model, save_xiangqi_model, split_games

    os.makedirs(args.out, exist_ok=True)
    games = [g for g in load_games(args.games) if g.moves]
    if not games:
        print("error: no games read", file=sys.stderr)
        return 2
    train, val = split_games(games, args.val_fraction)
    if not train:
        train, val = val, []
    keras.utils.set_random_seed(args.seed)
    overrides = {"num_hidden_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
                 "intermediate_size": args.intermediate, "hidden_dropout_prob": args.dropout,
                 "attention_probs_dropout_prob": args.dropout}
    cfg_path = os.path.join(args.out, "train_config.json")
    if args.resume and os.path.exists(cfg_path):
        config = json.load(open(cfg_path))
    elif args.init_from:
        config = init_config(args.init_from, overrides)
    else:
        config = {k: v for k, v in overrides.items() if v is not None}
    model = build_xiangqi_model(config)
    if args.init_from and not (args.resume and latest_checkpoint(args.out)):
        model.load_weights(os.path.join(args.init_from, "model.weights.h5"))
        print(f"initialised from {args.init_from}", file=sys.stderr)
    json.dump(model.xiangqi_config, open(cfg_path, "w"), indent=2)
    optimizer = make_optimizer(args)
    metrics = [masked_accuracy] + ([masked_ce, legal_char_rate] if args.legal_weight else [])
    model.compile(optimizer=optimizer, loss=make_loss(args.legal_weight), metrics=metrics)
    train_masks = val_masks = None
    if args.legal_weight:
        masks = compute_legal_masks(train + val, args.out, args.workers, args.quiet)
        train_masks, val_masks = masks[:len(train)], masks[len(train):]

    state = {"step": 0, "elapsed0": 0.0, "t0": time.time()}
    ckpt = latest_checkpoint(args.out) if args.resume else None
    if args.resume and ckpt is None:
        print("no checkpoint to resume from: starting fresh", file=sys.stderr)
        args.resume = os.path.exists(os.path.join(args.out, "log.csv"))
    if ckpt is not None:
        st = load_checkpoint(model, optimizer, ckpt)
        state["step"], state["elapsed0"] = int(st["step"]), float(st["elapsed"])
        print(f"resumed from {ckpt} at step {state['step']} (optimizer.iterations="
              f"{int(np.asarray(optimizer.iterations))})", file=sys.stderr)
    start = state["step"]
    n_plies = sum(len(g.moves) for g in train)
    if not args.quiet:
        print(f"{len(train)} training games ({n_plies} plies), {len(val)} validation games; "
              f"{model.count_params()} parameters; steps {start}->{args.steps}", file=sys.stderr)
    if start < args.steps:
        spe = args.checkpoint_every
        val_data = fixed_batches(val, args, val_masks) if val else None

        class StepLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                _sync(self.model)
                if logs is not None:
                    logs["step"] = int(np.asarray(optimizer.iterations))
                    logs["lr"] = float(np.asarray(optimizer.learning_rate))

        callbacks = [StepLogger()] + make_callbacks(model, optimizer, args, state)
        model.fit(batches(train, start, args, train_masks), steps_per_epoch=spe, epochs=math.ceil(args.steps / spe),
                  initial_epoch=start // spe, validation_data=val_data, validation_batch_size=args.batch_size,
                  callbacks=callbacks, verbose=0 if args.quiet else 2)
    step = int(np.asarray(optimizer.iterations))
    elapsed = state["elapsed0"] + time.time() - state["t0"]
    if step < args.steps:  # stopped early (--stop-after): the checkpoint is the product
        if step % args.checkpoint_every:
            save_checkpoint(model, optimizer, args.out, step, elapsed)
        print(f"stopped at step {step}; rerun with --resume to continue", file=sys.stderr)
        return 0
    summary = {"steps": step, "train_seconds": round(elapsed, 1), "train_games": len(train),
               "train_plies": n_plies, "val_games": len(val), "parameters": int(model.count_params()),
               "batch_size": args.batch_size, "max_len": args.max_len, "lr": args.lr, "p_any": args.p_any,
               "mirror": not args.no_mirror, "legal_weight": args.legal_weight}
    x, y = batch_for_step(train, 10**9, args, train_masks)
    summary["final_train_loss"] = float(np.asarray(model.evaluate(x, y, verbose=0, return_dict=True)["loss"]))
    if val:
        vx, vy = fixed_batches(val, args, val_masks)
        res = model.evaluate(vx, vy, batch_size=args.batch_size, verbose=0, return_dict=True)
        summary["final_val_loss"] = float(res["loss"])
        summary["final_val_char_accuracy"] = float(res["masked_accuracy"])
        if args.legal_weight:
            summary["final_val_ce"] = float(res["masked_ce"])
            summary["final_val_legal_char_rate"] = float(res["legal_char_rate"])
    save_xiangqi_model(model, args.out, extra={"training": summary})
    with open(os.path.join(args.out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot_losses(args.out)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
