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
(``toolkit.xiangqi.vocabulary.legal_char_masks``), so that each position teaches
all of its legal moves (about 40) and not only the one played. The masks are computed once
(``--workers`` processes, about 0.5 ms a ply) and kept in ``OUT/legal_masks.npz``.
The log then also has ``masked_ce`` (the next-token cross-entropy alone,
comparable with a run without the term) and ``legal_char_rate`` (how often the
argmax character is a legal continuation).

Checkpoints: every ``--checkpoint-every`` steps a new ``OUT/checkpoints/step-N/``
(weights, optimizer variables incl. ``iterations``, step) is written, then the
pointer ``OUT/checkpoints/latest`` is replaced atomically, so a kill at any
moment leaves the last complete checkpoint. ``--resume`` continues from it with
the same optimizer step and the same data stream (batch ``s`` depends only on
the seed and ``s``). ``OUT/log.csv`` (CSVLogger; on resume cut back to the
checkpoint's step and appended to), and at the end ``OUT/loss.png``,
``OUT/config.json`` + ``OUT/model.weights.h5`` and ``OUT/train_summary.json``.
The training itself is the library's: ``models.xiangqi_training.train_xiangqi_model``
(on the generic ``models.training``).

Example:
    python scripts/train_xiangqi.py --games games.jsonl --out runs/xq --steps 600 \
        --batch-size 16 --checkpoint-every 50
"""

import argparse
import json

import _common

from toolkit.xiangqi.training_options import XiangqiTrainingOptions

DEFAULTS = XiangqiTrainingOptions()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--games", nargs="+", required=True, help="game record files (JSONL / seed JSONL / PGN)")
    p.add_argument("--out", required=True, help="output directory (checkpoints, logs, final model)")
    p.add_argument("--steps", type=int, default=DEFAULTS.steps, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="games per optimizer step")
    p.add_argument("--max-len", type=int, default=DEFAULTS.max_len,
                   help="tokens per training sequence (longer games are cut)")
    p.add_argument("--lr", type=float, default=DEFAULTS.lr, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=DEFAULTS.warmup, help="warmup steps (default 5%% of --steps)")
    p.add_argument("--min-lr-ratio", type=float, default=DEFAULTS.min_lr_ratio,
                   help="cosine decays to this fraction of --lr")
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="AdamW decoupled weight decay")
    p.add_argument("--p-any", type=float, default=DEFAULTS.p_any,
                   help="probability of replacing the result token by <any>")
    p.add_argument("--no-mirror", action="store_true", help="no left-right mirroring augmentation")
    p.add_argument("--legal-weight", type=float, default=DEFAULTS.legal_weight,
                   help="weight of the legal-mass loss term (0: next-token cross-entropy only)")
    p.add_argument("--workers", type=int, default=DEFAULTS.workers, help="processes computing the legal masks")
    p.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction,
                   help="share of the games held out for validation (split by a hash of the moves)")
    p.add_argument("--length-groups", type=int, default=DEFAULTS.length_groups,
                   help="batches drawn together and cut by game length, each padded to its longest "
                        "game (1: no grouping; default 8)")
    p.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every,
                   help="steps between checkpoints (= one log row)")
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
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="seed of the weights, the data order and the augmentation")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _common.add_distribution(p)
    _common.add_verbose(p)
    return p.parse_args(argv)


def main(argv=None):
    args = vars(parse_args(argv))
    args.pop("verbose")
    options = XiangqiTrainingOptions(**args).check()  # bad values fail here, before Keras starts

    from models.xiangqi_training import train_xiangqi_model

    summary = train_xiangqi_model(options)
    if summary is not None:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    _common.run(main)
