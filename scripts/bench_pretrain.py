#!/usr/bin/env python
"""Masked-LM training step: keras-longctx's pretraining model (models.mlm_training, as
scripts/pretrain_mlm.py builds and compiles it) vs Hugging Face transformers'
BertForMaskedLM (torch) vs keras-hub's BertMaskedLM, on the same shape and the same masked
batch, in one process. One step = forward + backward + AdamW update, dropout 0.1, float32,
random weights. Prints a table a shape; --write also puts it into docs/benchmarks.md.

Shapes: small = the bundled Chinese BERT (4 layers x 256, 4 heads, vocabulary 6,970, batch
32 x 128); base = BERT-base (12 x 768, 12 heads, the Chinese vocabulary of 21,128, batch 4 x 512).
Any of --layers --hidden --heads --intermediate --batch --length --vocab makes one custom
shape: the first of --shapes with those sizes changed.

    python scripts/bench_pretrain.py --write                  # small and base, 5 repeats, into the docs
    python scripts/bench_pretrain.py --shapes small --repeats 3
    python scripts/bench_pretrain.py --layers 1 --hidden 32 --heads 2 --batch 2 --length 16 --vocab 200
"""

import argparse
import gc
import os
import sys
import warnings
from dataclasses import dataclass, replace

import _common  # quiet TF, one-line errors
import numpy as np

from toolkit import benchmarking
from toolkit.mlm_data import CLS, FIRST_REGULAR, PretrainOptions, mask_slots, mask_tokens, masked_positions


@dataclass(frozen=True)
class Shape:
    """A BERT (its positions are ``length``) and its training batch."""

    name: str
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    batch: int
    length: int

    def describe(self):
        return (f"{self.layers} layers x {self.hidden} hidden x {self.heads} heads, intermediate "
                f"{self.intermediate}, vocabulary {self.vocab:,}, batch {self.batch} x {self.length} tokens")


SHAPES = {"small": Shape("small", 4, 256, 4, 1024, 6970, 32, 128),
          "base": Shape("base", 12, 768, 12, 3072, 21128, 4, 512)}
SIZES = {"layers": "transformer layers", "hidden": "hidden size (a multiple of --heads)", "heads": "attention heads",
         "intermediate": "feed-forward size (default 4 x --hidden)", "vocab": "vocabulary size",
         "batch": "sequences a batch", "length": "tokens a sequence (= the model's positions)"}
LEARNING_RATE, WEIGHT_DECAY, DROPOUT = 5e-4, 0.01, 0.1
GOALS = {"HF": 1.3, "keras-hub": 1.1}
OURS = {"masked": "keras-longctx, MLM head at masked positions (default)",
        "all": "keras-longctx, MLM head at every position"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    parser.add_argument("--shapes", default="small,base", help="comma-separated: small, base")
    for size, what in SIZES.items():
        parser.add_argument(f"--{size}", type=int, default=None, help=f"custom shape: {what}")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per implementation (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first one traces)")
    _common.add_write(parser, "the tables into --md (section bench_pretrain)")
    _common.add_verbose(parser)
    args = parser.parse_args(argv)
    _common.check_at_least(args, 1, "repeats", *SIZES)
    _common.check_at_least(args, 0, "warmup")
    names = [name.strip() for name in args.shapes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SHAPES]
    if unknown or not names:
        raise _common.UsageError(f"--shapes {args.shapes}: give one or more of {', '.join(SHAPES)}, comma-separated")
    args.shape_list = [SHAPES[name] for name in names]
    custom = {size: getattr(args, size) for size in SIZES if getattr(args, size) is not None}
    if custom:
        if "hidden" in custom and "intermediate" not in custom:
            custom["intermediate"] = 4 * custom["hidden"]
        args.shape_list = [replace(args.shape_list[0], name="custom", **custom)]
    for shape in args.shape_list:
        check_shape(shape)
    return args


def check_shape(shape):
    """A one-line UsageError for a shape that cannot be built."""
    if shape.hidden % shape.heads:
        raise _common.UsageError(f"--hidden {shape.hidden} is not a multiple of --heads {shape.heads}: each head "
                                 f"gets hidden / heads dimensions")
    if shape.vocab <= FIRST_REGULAR:
        raise _common.UsageError(f"--vocab {shape.vocab}: give more than {FIRST_REGULAR} (the special tokens)")
    if shape.length < 2:
        raise _common.UsageError(f"--length {shape.length}: give at least 2 ([CLS] and a token)")


def masked_batch(shape, seed=0):
    """``(inputs, targets)``: seeded regular ids after a [CLS], masked as pretraining masks them."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(FIRST_REGULAR, shape.vocab, (shape.batch, shape.length), dtype=np.int32)
    ids[:, 0] = CLS
    return mask_tokens(ids, rng, shape.vocab)


def ours(shape, inputs, targets, head):
    """keras-longctx: ``(name, model, step)``, the pretraining model and compile, ``train_on_batch``."""
    from models.mlm_training import build_mlm_model, compile_mlm_model

    config = {"num_hidden_layers": shape.layers, "hidden_size": shape.hidden, "num_attention_heads": shape.heads,
              "intermediate_size": shape.intermediate, "hidden_act": "gelu", "hidden_dropout_prob": DROPOUT,
              "attention_probs_dropout_prob": DROPOUT, "max_position_embeddings": shape.length}
    options = PretrainOptions(lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    model = compile_mlm_model(build_mlm_model(config, shape.vocab, head=head), options)
    if head == "all":
        features, labels = [inputs, np.zeros_like(inputs)], targets
    else:
        positions, labels = masked_positions(targets, mask_slots(shape.length))
        features = [inputs, np.zeros_like(inputs), positions]
    return OURS[head], model, lambda: model.train_on_batch(features, labels)


def keras_hub_peer(shape, inputs, targets):
    """keras-hub's BertMaskedLM (logits only at ``mask_positions``): ``(name, model, step)``."""
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone(vocabulary_size=shape.vocab, num_layers=shape.layers,
                                             num_heads=shape.heads, hidden_dim=shape.hidden,
                                             intermediate_dim=shape.intermediate, dropout=DROPOUT,
                                             max_sequence_length=shape.length)
    model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
    warnings.filterwarnings("ignore", message="Gradients do not exist for variables")  # its unused pooler
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    positions, labels = masked_positions(targets, mask_slots(shape.length))
    features = {"token_ids": inputs, "segment_ids": np.zeros_like(inputs),
                "padding_mask": np.ones_like(inputs, dtype=bool), "mask_positions": positions}
    weights = (labels != 0).astype(np.float32)
    name = f"keras-hub {keras_hub.__version__} BertMaskedLM"
    return name, model, lambda: model.train_on_batch(features, labels, sample_weight=weights)


def hugging_face_peer(shape, inputs, targets):
    """transformers' BertForMaskedLM in torch (logits at every position): ``(name, model, step)``."""
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count())
    config = transformers.BertConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                                     num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
                                     max_position_embeddings=shape.length, hidden_dropout_prob=DROPOUT,
                                     attention_probs_dropout_prob=DROPOUT)
    model = transformers.BertForMaskedLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    batch = {"input_ids": torch.from_numpy(inputs).long(),
             "token_type_ids": torch.zeros(inputs.shape, dtype=torch.long),
             "attention_mask": torch.ones(inputs.shape, dtype=torch.long),
             "labels": torch.from_numpy(np.where(targets != 0, targets, -100)).long()}

    def step():
        optimizer.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        optimizer.step()

    name = (f"HF transformers {transformers.__version__} BertForMaskedLM (torch {torch.__version__}, "
            f"{model.config._attn_implementation})")
    return name, model, step


def time_shape(shape, args):
    """``[(name, key, MLM-head positions, median seconds)]`` of one training step of each implementation."""
    import keras

    inputs, targets = masked_batch(shape)
    masked_head = shape.batch * mask_slots(shape.length)
    peers = [("masked", masked_head, lambda: ours(shape, inputs, targets, "masked")),
             ("all", inputs.size, lambda: ours(shape, inputs, targets, "all")),
             ("keras-hub", masked_head, lambda: keras_hub_peer(shape, inputs, targets)),
             ("HF", inputs.size, lambda: hugging_face_peer(shape, inputs, targets))]
    results = []
    for key, head_positions, build in peers:
        keras.utils.set_random_seed(0)
        name, model, step = build()
        seconds = benchmarking.median_time(step, args.repeats, warmup=args.warmup)
        print(f"bench_pretrain: {shape.name}: {name}: {seconds:.3f} s / step", file=sys.stderr, flush=True)
        results.append((name, key, head_positions, seconds))
        del model, step
        gc.collect()
        keras.backend.clear_session()
    return results


def step_flops(shape, head_positions):
    """Training FLOPs of one step, ~3 x the forward pass's: the encoder's matmuls and attention, and
    the MLM head (dense + vocabulary projection) at ``head_positions`` tokens."""
    tokens, hidden = shape.batch * shape.length, shape.hidden
    encoder = shape.layers * (2 * tokens * (4 * hidden * hidden + 2 * hidden * shape.intermediate)
                              + 4 * shape.batch * shape.length * shape.length * hidden)
    head = 2 * head_positions * (hidden * hidden + hidden * shape.vocab)
    return 3 * (encoder + head)


def _rate(gflops):
    return f"{gflops:,.0f}" if gflops >= 10 else f"{gflops:.2g}"


def shape_section(shape, results):
    """The Markdown of one shape: a heading, the table and the goal line."""
    seconds = {key: value for _, key, _, value in results}
    head = ["implementation", "MLM logits at", "median s / step", "training tokens/s", "GFLOP/s", "vs HF",
            "vs keras-hub"]
    rows = [[name, f"{positions:,} positions", f"{value:.3f}", f"{shape.batch * shape.length / value:,.0f}",
             _rate(step_flops(shape, positions) / value / 1e9), f"{seconds['HF'] / value:.2f}x",
             f"{seconds['keras-hub'] / value:.2f}x"] for name, _, positions, value in results]
    verdicts = [f"- {OURS[key]}: " + ", ".join(
        f"{seconds[peer] / seconds[key]:.2f}x {peer} ({'met' if seconds[peer] / seconds[key] >= goal else 'not met'})"
        for peer, goal in GOALS.items()) for key in OURS]
    goal_line = ", ".join(f">= {goal}x {peer}" for peer, goal in GOALS.items())
    return (f"### {shape.name}: {shape.describe()}\n\n"
            + benchmarking.markdown_table(head, rows, align="llrrrrr")
            + f"\n\nGoals ({goal_line}):\n" + "\n".join(verdicts) + "\n")


def main(argv=None):
    args = parse_args(argv)
    import keras

    sections = [shape_section(shape, time_shape(shape, args)) for shape in args.shape_list]
    peak = benchmarking.matmul_peak_gflops()
    text = (f"One training step: forward + backward + AdamW update (lr {LEARNING_RATE}, weight decay "
            f"{WEIGHT_DECAY}; keras-longctx's as scripts/pretrain_mlm.py compiles it: warmup + cosine schedule, "
            f"clipnorm 1), dropout {DROPOUT}, float32, random weights, the same batch for every implementation "
            f"(random regular ids after [CLS], 15% selected, 80/10/10 masking); median of {args.repeats} steps "
            f"after {args.warmup} untimed. Training tokens/s = batch x length / step time. GFLOP/s counts "
            f"3 x the forward FLOPs, the MLM head over the positions each implementation computes its "
            f"vocabulary logits at (column 2: keras-hub and keras-longctx's default only at the selected "
            f"positions, padded to the most a row can have, Hugging Face at every position). Keras "
            f"models: `train_on_batch`, {keras.backend.backend()} backend, keras {keras.__version__}.")
    body = benchmarking.section_body(
        "Masked-LM training step", "scripts/bench_pretrain.py", text, "\n".join(sections), argv,
        f"; measured float32 matmul peak {peak:.0f} GFLOP/s (2048^3, best of TF and torch)")
    benchmarking.report(body, "bench_pretrain", args.write, args.md)
    return 0


if __name__ == "__main__":
    _common.run(main)
