#!/usr/bin/env python
"""The overhead of keras.distribution itself: one masked-LM training step of the bundled
Chinese BERT's size (4 layers x 256, 4 heads, vocabulary 6,970, batch 32 x 128, AdamW, as
scripts/pretrain_mlm.py builds it) on one device vs the same CPU cut into --devices virtual
devices (XLA_FLAGS=--xla_force_host_platform_device_count), data parallel and model parallel
(models.distribution's layout map), in one process on the JAX backend. The cores are the same
in every row: a ratio below 1 is the price of splitting the step and of its collectives; above
1, the virtual devices (a thread each) keep the cores busier than one XLA CPU device does.
Prints the table; --write also puts it into docs/benchmarks.md.

    python scripts/bench_distribution.py --write
    python scripts/bench_distribution.py --devices 4 --meshes data 2,2 --repeats 3
"""

import argparse
import os
import sys

DEVICES_FLAG = "--xla_force_host_platform_device_count"


def _devices_from_argv(argv):
    for index, value in enumerate(argv):
        if value == "--devices" and index + 1 < len(argv):
            return argv[index + 1]
        if value.startswith("--devices="):
            return value.split("=", 1)[1]
    return "8"


# JAX reads both when it starts: before anything imports it
os.environ["KERAS_BACKEND"] = "jax"
if DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {DEVICES_FLAG}="
                               f"{_devices_from_argv(sys.argv[1:])}").strip()

import _common  # noqa: E402  quiet start-up, one-line errors

from toolkit import benchmarking  # noqa: E402

MODEL = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024,
         "max_position_embeddings": 128, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
VOCAB, BATCH, LENGTH, SLOTS = 6970, 32, 128, 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--devices", type=int, default=8, help="virtual CPU devices")
    parser.add_argument("--meshes", nargs="+", default=["data", "2,4", "model:4"],
                        help="--distribution values to time beside one device")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps (the median is shown)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    _common.add_write(parser, "the table into docs/benchmarks.md")
    _common.add_verbose(parser)
    args = parser.parse_args(argv)
    _common.check_at_least(args, 1, "devices", "repeats")
    return args


def batch(seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (BATCH, LENGTH)).astype("int32")
    positions = np.sort(rng.choice(LENGTH, (BATCH, SLOTS)), axis=1).astype("int32")
    targets = rng.integers(1, VOCAB, (BATCH, SLOTS)).astype("int32")
    return (tokens, np.zeros_like(tokens), positions), targets


def step_seconds(mesh, args):
    """The median seconds of a training step under ``--distribution mesh`` (None: one device)."""
    import keras

    from models import distribution as dist
    from models.mlm_training import build_mlm_model, masked_lm_loss

    keras.distribution.set_distribution(dist.make_distribution(dist.parse_distribution(mesh), MODEL) if mesh else None)
    try:
        keras.utils.set_random_seed(0)
        model = build_mlm_model(MODEL, VOCAB)
        model.compile(optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.01), loss=masked_lm_loss)
        inputs, targets = batch()
        return benchmarking.median_time(lambda: model.train_on_batch(inputs, targets), args.repeats,
                                        warmup=args.warmup)
    finally:
        keras.distribution.set_distribution(None)


def main(argv=None):
    args = parse_args(argv)
    import jax

    if len(jax.devices()) != args.devices:
        raise _common.UsageError(f"JAX has {len(jax.devices())} devices, not --devices {args.devices}: XLA_FLAGS "
                                 f"already sets {DEVICES_FLAG}; unset it")
    rows, one = [], None
    for mesh in [None] + list(args.meshes):
        seconds = step_seconds(mesh, args)
        one = one or seconds
        label = "one device (no distribution)" if mesh is None else f"--distribution {mesh}"
        rows.append([label, f"{seconds * 1000:.0f}", f"{BATCH * LENGTH / seconds:,.0f}", f"{one / seconds:.2f}x"])
        print(" | ".join(rows[-1]), file=sys.stderr)
    peak = benchmarking.matmul_peak_gflops()
    table = benchmarking.markdown_table(["run", "ms / step (median)", "tokens / s", "vs one device"], rows,
                                        align="lrrr")
    text = (f"One masked-LM training step (forward, backward, AdamW) of the bundled Chinese BERT's size: 4 x 256, "
            f"vocabulary {VOCAB:,}, batch {BATCH} x {LENGTH}, {SLOTS} masked slots a sequence, dropout 0.1, on the "
            f"JAX backend, median of {args.repeats} steps after {args.warmup}. The same {os.cpu_count()} cores are "
            f"cut into {args.devices} virtual XLA devices for every row: below 1x is what splitting the step and "
            f"its collectives cost; above 1x, the devices' threads keep the cores busier than one XLA CPU device "
            f"does (no extra hardware).\n")
    body = benchmarking.section_body("keras.distribution overhead: 1 device vs virtual devices",
                                     "scripts/bench_distribution.py", text, table, argv,
                                     machine_note=f"; fp32 matmul peak {peak:.0f} GFLOP/s")
    benchmarking.report(body, "bench_distribution", args.write, args.md)
    return 0


if __name__ == "__main__":
    _common.run(main)
