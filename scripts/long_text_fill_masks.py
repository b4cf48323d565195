#!/usr/bin/env python
"""Fill masks in a long Chinese text with the bundled Chinese BERT (128 positions): the
whole document in one pass with hierarchical position embeddings, against the usual
baseline, the document cut into 126-token windows read one by one (the same weights).

The document is [CLS] + the first --tokens - 2 tokens of the text + [SEP] (default: the
longest People's Daily article held out of pretraining). BERT's masking (15%: 80% [MASK],
10% a random token, 10% kept) is drawn --draws times; both methods fill the same masks.
Prints the accuracy (argmax is the original token), the cross-entropy of the masked tokens
and the seconds of each method, and the difference in accuracy.

    python scripts/long_text_fill_masks.py                       # held-out article, 2000 tokens
    python scripts/long_text_fill_masks.py --text my.txt --tokens 4000 --alpha 0.3
    python scripts/long_text_fill_masks.py --model runs/bert_zh/model --draws 10
"""

import argparse
import os

import _common  # quiet TF, one-line errors

BUNDLED = os.path.join("models", "bert_zh_model")
MIN_TOKENS = 3  # [CLS], one token of text, [SEP]
COLUMNS = ("method", "context tokens", "masked tokens", "accuracy", "cross-entropy", "seconds")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    parser.add_argument("--model", default=None, metavar="DIR",
                        help=f"a model folder written by scripts/pretrain_mlm.py (OUT/model; default: the bundled "
                             f"{BUNDLED})")
    parser.add_argument("--text", default=None, metavar="FILE",
                        help="UTF-8 text file (default: the longest People's Daily article held out of pretraining)")
    parser.add_argument("--tokens", type=int, default=2000,
                        help=f"document length in tokens, [CLS] and [SEP] included (>= {MIN_TOKENS}; at most "
                             f"positions**2)")
    parser.add_argument("--alpha", type=float, default=0.4,
                        help="hierarchical position alpha, in (0, 1): u_i = (p_i - alpha*p_0) / (1 - alpha)")
    parser.add_argument("--draws", type=int, default=5,
                        help="independent seeded maskings of the document (the accuracy pools them)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the maskings")
    _common.add_verbose(parser)
    args = parser.parse_args(argv)
    _common.check_at_least(args, 1, "draws")
    _common.check_at_least(args, 0, "seed")
    _common.check_long_text(args.tokens, args.alpha, MIN_TOKENS)
    return args


def check_model(directory):
    """The model folder to read (:func:`models.mlm_training.model_folder`); a missing one is a one-line UsageError."""
    from models.mlm_training import model_folder

    try:
        return model_folder(directory)
    except ValueError as error:
        raise _common.UsageError(str(error)) from None


def read_text(path):
    """The text of a UTF-8 file; a missing, unreadable, non-UTF-8 or empty file is a one-line UsageError."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise _common.UsageError(f"--text {path}: no such file") from None
    except IsADirectoryError:
        raise _common.UsageError(f"--text {path}: is a folder, not a text file") from None
    except UnicodeDecodeError as error:
        raise _common.UsageError(f"--text {path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise _common.UsageError(f"--text {path}: cannot read it ({error.strerror})") from None
    if not text.strip():
        raise _common.UsageError(f"--text {path}: no text (the file is empty or holds only whitespace): "
                                 "give a file with text")
    return text


def table(result):
    """The result's rows as an aligned text table."""
    cells = [COLUMNS] + [(row.label, f"{row.context:,}", f"{row.masked:,}", f"{100 * row.accuracy:.1f}%",
                          f"{row.cross_entropy:.3f}", f"{row.seconds:.2f}") for row in result.rows]
    widths = [max(len(line[column]) for line in cells) for column in range(len(COLUMNS))]
    lines = [" | ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                        for column, (cell, width) in enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    model_dir = check_model(args.model)
    text = read_text(args.text) if args.text else None

    from models.long_text_mlm import fill_masks_long

    try:
        result = fill_masks_long(model_dir, text, tokens=args.tokens, alpha=args.alpha, draws=args.draws,
                                 seed=args.seed, source=args.text)
    except ValueError as error:  # the library names its arguments; say them as the options
        message = str(error)
        if message.startswith("tokens "):
            message = "--" + message
        elif args.text and "text" in message:
            message = f"--text {args.text}: {message}"
        raise _common.UsageError(message) from None
    hierarchical, chunked = result.row("hierarchical"), result.row("chunked")
    print(result.document.line())
    print(table(result))
    print(f"hierarchical minus chunked: {result.accuracy_gain():+.1f} accuracy points "
          f"({100 * hierarchical.accuracy:.1f}% vs {100 * chunked.accuracy:.1f}%, {result.draws} draws of "
          f"{100 * result.rate:g}% masking)")
    return result


if __name__ == "__main__":
    _common.run(main)
