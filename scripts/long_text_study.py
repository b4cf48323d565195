#!/usr/bin/env python
"""The long-text study: masked-token accuracy of the bundled Chinese BERT (trained at 128
positions) on held-out People's Daily text read at lengths it never saw, for each way of
reaching those positions, zero-shot and after K steps of continued MLM training.

Methods: chunked (pieces of 127 tokens read one by one: what a user does without this
package), hierarchical (Su's decomposition, alpha 0.4; hierarchical-0.3 etc. for other
alphas), copy (Longformer's tiled table), interpolate (the table read at j / s), random (new
rows from N(0, 0.02)). Attentions: softmax, performer-M (M random features), taylor; the
methods run with softmax, the other attentions with --attention-method. A cell is (method,
attention, length, K, seed); each finished cell is one line of --results, and a rerun skips
the cells already there (a killed study resumes). Continued training: K steps of MLM at
--train-length on the documents not held out, the same batches, masks and learning rate for
every method. --report writes the Markdown report and its PNG from --results alone.
The study is the library's: models.long_text_study.run_study.

Examples:
    python scripts/long_text_study.py --steps 0                          # every method, zero-shot
    python scripts/long_text_study.py --methods hierarchical copy --attentions softmax --seeds 0
    python scripts/long_text_study.py --methods hierarchical-0.2 hierarchical-0.3 --attentions softmax
    python scripts/long_text_study.py --report                           # docs/long_text_study.md + .png
"""

import argparse
import os
import sys

import _common  # quiet TF, one-line errors

BUNDLED = os.path.join("models", "bert_zh_model")
METHODS = ("chunked", "hierarchical", "copy", "interpolate", "random")
ATTENTIONS = ("softmax", "performer-64", "performer-256", "taylor")
BUILTIN_CORPORA = ("peoples-daily", "reviews")
RESULTS = os.path.join("docs", "long_text_study.jsonl")


class Parser(argparse.ArgumentParser):
    """argparse's own errors (an unknown option, 'abc' for a number) in one line, exit 2."""

    def error(self, message):
        raise _common.UsageError(f"{message} (see --help)")


def add_cell_options(parser):
    group = parser.add_argument_group("cells")
    group.add_argument("--methods", nargs="+", default=list(METHODS), metavar="METHOD",
                       help=f"{' | '.join(METHODS)} | hierarchical-ALPHA (default: all five)")
    group.add_argument("--attentions", nargs="+", default=list(ATTENTIONS), metavar="ATTENTION",
                       help="softmax | performer-M | taylor (default: softmax performer-64 performer-256 taylor)")
    group.add_argument("--attention-method", default="hierarchical", metavar="METHOD",
                       help="the method the attentions other than softmax run with")
    group.add_argument("--lengths", nargs="+", type=int, default=[128, 512, 1024], metavar="TOKENS",
                       help="lengths the held-out text is read at (default: 128 512 1024)")
    group.add_argument("--steps", nargs="+", type=int, default=[0, 200, 1000], metavar="K",
                       help="continued-training steps K (default: 0 200 1000)")
    group.add_argument("--seeds", nargs="+", type=int, default=[0, 1], metavar="SEED",
                       help="seeds of the training stream, dropout, random rows and Performer's features "
                            "(default: 0 1)")


def add_setup_options(parser):
    group = parser.add_argument_group("setup (one results file holds one setup)")
    group.add_argument("--model", default=None, metavar="DIR",
                       help=f"a model folder written by scripts/pretrain_mlm.py (OUT/model; default: the bundled "
                            f"{BUNDLED})")
    group.add_argument("--corpus", nargs="+", default=["peoples-daily"], metavar="NAME_OR_FILE",
                       help=f"{' | '.join(BUILTIN_CORPORA)} | UTF-8 text files of one document a line, split as "
                            f"pretraining split them (default: peoples-daily)")
    group.add_argument("--held-out", type=float, default=None,
                       help="share of the documents held out (default: the model's run's, else 0.02)")
    group.add_argument("--max-sequences", type=int, default=None,
                       help="held-out sequences read at each length, the first ones (default: all)")
    group.add_argument("--train-length", type=int, default=512, help="tokens a continued-training sequence")
    group.add_argument("--batch-size", type=int, default=8, help="sequences a continued-training step")
    group.add_argument("--lr", type=float, default=1e-4,
                       help="peak learning rate of continued training (AdamW, warmup + cosine decay)")


def parse_args(argv=None):
    parser = Parser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                    epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--results", default=RESULTS, metavar="FILE",
                        help="the results file: one JSON line per finished cell")
    parser.add_argument("--report", action="store_true",
                        help="write the report (--md) and its figure (--png) from --results, run nothing")
    parser.add_argument("--md", default=os.path.join("docs", "long_text_study.md"), metavar="PATH",
                        help="--report: the Markdown file")
    parser.add_argument("--png", default=os.path.join("docs", "long_text_study.png"), metavar="PATH",
                        help="--report: the figure")
    add_cell_options(parser)
    add_setup_options(parser)
    _common.add_verbose(parser)
    args = parser.parse_args(argv)
    check_values(args)
    return args


def check_values(args):
    """One-line UsageError for a value that cannot work (before Keras starts); the checks
    that need the model are the library's."""
    for name, low in (("lengths", 2), ("steps", 0), ("seeds", 0)):
        for value in getattr(args, name):
            if value < low:
                raise _common.UsageError(f"--{name} {value}: must be an integer >= {low}")
    _common.check_at_least(args, 1, "batch_size", "max_sequences")
    _common.check_at_least(args, 2, "train_length")
    if not args.lr > 0:
        raise _common.UsageError(f"--lr must be a number > 0, got {args.lr}")
    if args.held_out is not None and not 0.0 < args.held_out < 1.0:
        raise _common.UsageError(f"--held-out must lie strictly between 0 and 1, got {args.held_out}")
    for name in args.corpus:
        if name not in BUILTIN_CORPORA and not os.path.isfile(name):
            raise _common.UsageError(f"--corpus {name}: no such file (give {' or '.join(BUILTIN_CORPORA)} or a text "
                                     f"file of one document a line)")


def check_model(directory):
    """The model folder to read (:func:`models.mlm_training.model_folder`); a missing one is a one-line UsageError."""
    from models.mlm_training import model_folder

    try:
        return model_folder(directory)
    except ValueError as error:
        raise _common.UsageError(str(error)) from None


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        from models.long_text_study import write_report

        write_report(args.results, args.md, args.png)
        print(f"wrote {args.md} and {args.png} from {args.results}")
        return 0
    model_dir = check_model(args.model)

    from models.long_text_study import StudySettings, run_study

    settings = StudySettings(model_dir=model_dir, results=args.results, corpus=args.corpus, methods=args.methods,
                             attentions=args.attentions, attention_method=args.attention_method,
                             lengths=args.lengths, steps=args.steps, seeds=args.seeds, batch_size=args.batch_size,
                             lr=args.lr, train_length=args.train_length, max_sequences=args.max_sequences,
                             held_out=args.held_out, progress=sys.stdout.isatty())
    rows = run_study(settings, say=lambda line: print(line, flush=True))
    print(f"{len(rows)} cells in {args.results}; --report writes the report")
    return 0


if __name__ == "__main__":
    _common.run(main)
