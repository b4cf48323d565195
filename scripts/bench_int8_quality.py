#!/usr/bin/env python
"""What int8 (Keras' own quantization, ``models.quantize_model``) costs in quality on the two
models trained here, float32 vs int8 in the same run:

* the bundled Xiangqi GPT: masked next-token cross-entropy on the held-out games (the hash
  split of its training games), top-1 accuracy among the legal moves and how often the
  unconstrained greedy 4-character move is legal, over --positions held-out positions;
* the bundled Chinese BERT: masked-token accuracy on its held-out People's Daily + reviews
  sequences (the card's figure), at --bert-rows rows.

Goals (issue 18): cross-entropy within 1%, accuracy within 0.5 points. Prints a table; --write
puts it into docs/benchmarks.md (section bench_int8_quality; bench_int8_quality_torch under
KERAS_BACKEND=torch, where the move figures go through the int8 decoder's fbgemm kernels).

    python scripts/bench_int8_quality.py --write
    KERAS_BACKEND=torch python scripts/bench_int8_quality.py --write
"""

import argparse
import json
import os

import _common  # quiet TF, one-line errors
import numpy as np

from toolkit import benchmarking

GAMES = os.path.join("models", "xiangqi_model", "train_games.jsonl.gz")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter)
    p.add_argument("--positions", type=int, default=300, help="held-out Xiangqi positions for the move figures")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of the Xiangqi games held out")
    p.add_argument("--bert-rows", type=int, default=512, help="held-out BERT sequences")
    _common.add_write(p, "the table into --md (section bench_int8_quality)")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    _common.check_at_least(args, 1, "positions", "bert-rows")
    return args


def xiangqi_figures(model, games, positions):
    from models.xiangqi import MoveScorer
    from toolkit.xiangqi.evaluation import held_out_accuracy
    from toolkit.xiangqi.training_data import BatchSettings, fixed_batches

    x, y = fixed_batches(games, BatchSettings(batch_size=32, max_len=512))
    logits = model.predict(x, batch_size=32, verbose=0).astype("float64")
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = y != 0
    ce = -np.take_along_axis(log_probs, y[..., None], -1)[..., 0][real].mean()
    moves = held_out_accuracy(MoveScorer(model), games, positions, "own")
    return {"ce": float(ce), "top1": moves["top1_accuracy"], "legal": moves["greedy_legal_rate"]}


def bert_accuracy(model, inputs, labels):
    logits = model.predict(list(inputs), batch_size=64, verbose=0)
    counted = labels != 0
    return float((logits.argmax(-1) == labels)[counted].mean())


def bert_data(rows):
    from models.mlm_training import BUNDLED_BERT_DIR
    from toolkit.corpora import chinese_bert_vocab
    from toolkit.mlm_data import StreamSettings, held_out_batch, prepare_data

    with open(os.path.join(BUNDLED_BERT_DIR, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    data = prepare_data(["peoples-daily", "reviews"], chinese_bert_vocab(), config["max_position_embeddings"],
                        config["training"].get("held_out", 0.02), seed=0)
    settings = StreamSettings(batch_size=32, vocab_size=data.vocabulary.size, head="masked")
    return config, data.vocabulary.size, held_out_batch(data.held_out, settings, rows)


def bert_model(config, vocab_size):
    from models.mlm_training import BUNDLED_BERT_DIR, build_mlm_model

    keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "max_position_embeddings")
    model = build_mlm_model({key: config[key] for key in keys}, vocab_size)
    model.transformer.load_weights_from_checkpoint(BUNDLED_BERT_DIR)
    return model


def measure(args):
    from models import quantize_model
    from models.xiangqi import load_xiangqi_model
    from toolkit.xiangqi.evaluation import held_out_games

    games = held_out_games([GAMES], args.val_fraction)
    figures = {}
    for kind in ("float32", "int8"):
        model = load_xiangqi_model()
        if kind == "int8":
            quantize_model(model, "int8")
        figures[kind] = xiangqi_figures(model, games, args.positions)
    config, vocab_size, (inputs, labels) = bert_data(args.bert_rows)
    for kind in ("float32", "int8"):
        model = bert_model(config, vocab_size)
        if kind == "int8":
            quantize_model(model, "int8")
        figures[kind]["bert"] = bert_accuracy(model, inputs, labels)
    return figures, len(games), int((labels != 0).sum())


def table(figures):
    f32, int8 = figures["float32"], figures["int8"]
    rows = [["Xiangqi GPT held-out cross-entropy (nats/token)", f"{f32['ce']:.4f}", f"{int8['ce']:.4f}",
             f"{100 * (int8['ce'] / f32['ce'] - 1):+.2f}%", "within 1%"],
            ["Xiangqi GPT top-1 legal-move accuracy", f"{100 * f32['top1']:.1f}%", f"{100 * int8['top1']:.1f}%",
             f"{100 * (int8['top1'] - f32['top1']):+.1f} pt", "-"],
            ["Xiangqi GPT greedy move legal", f"{100 * f32['legal']:.1f}%", f"{100 * int8['legal']:.1f}%",
             f"{100 * (int8['legal'] - f32['legal']):+.1f} pt", "-"],
            ["Chinese BERT held-out masked-token accuracy", f"{100 * f32['bert']:.2f}%",
             f"{100 * int8['bert']:.2f}%", f"{100 * (int8['bert'] - f32['bert']):+.2f} pt", "within 0.5 pt"]]
    return benchmarking.markdown_table(["figure", "float32", "int8", "int8 - float32", "goal"], rows,
                                       align="lrrrl")


def main(argv=None):
    import keras

    args = parse_args(argv)
    figures, games, masked = measure(args)
    backend = keras.backend.backend()
    kernels = ("; the cross-entropy and BERT through Keras' int8 layers, the move figures through the KV-cache "
               "decoder's fbgemm int8 kernels (models.int8_decoding)" if backend == "torch" else "")
    text = (f"Keras' own int8 (`model.quantize(\"int8\")`: int8 kernels and tables, abs-max scales, inputs "
            f"quantized per row), the bundled models, Keras backend {backend}{kernels}. Xiangqi: {games} held-out games (every "
            f"target token), {args.positions} positions for the move figures. BERT: {masked} masked tokens of "
            f"{args.bert_rows} held-out sequences.")
    section = "bench_int8_quality" + ("" if backend == "tensorflow" else f"_{backend}")
    body = benchmarking.section_body(f"int8 quality ({backend})", "scripts/bench_int8_quality.py", text,
                                     table(figures), argv)
    benchmarking.report(body, section, args.write, args.md)
    return figures


if __name__ == "__main__":
    _common.run(main)
