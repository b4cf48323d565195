#!/usr/bin/env python
"""Convert TsinghuaAI's CPM-Generate release of CPM-LM (2.6B: 32 layers, hidden
2560, 32 heads, vocabulary 30000, 1024 positions), a model-parallel Megatron-LM
checkpoint (mp_rank_00_model_states.pt, mp_rank_01_model_states.pt, ...), into
weights our GPT-2 loads.

Writes OUT_DIR/config.json (Hugging Face GPT-2 keys) and OUT_DIR/model.weights.h5
(Keras weights of models.GPT2); with --tf-checkpoint also OUT_DIR/model.ckpt (a
TF checkpoint under bert4keras' gpt/... names), with --safetensors also
OUT_DIR/model.safetensors (Hugging Face GPT2LMHeadModel). Every file is written
under a temporary name and renamed when complete.

    python scripts/convert_cpm_lm.py /path/to/CPM-Generate cpm_lm_2.6b
    python scripts/convert_cpm_lm.py /path/to/CPM-Generate/80000 out --tf-checkpoint --safetensors
    python scripts/convert_cpm_lm.py /path/to/CPM-Generate cpm_lm_2.6b --int8   # + model.int8.weights.h5

    model = build_transformer_model("cpm_lm_2.6b/config.json",
                                    "cpm_lm_2.6b/model.weights.h5", model="gpt2")

Memory: the shards are memory-mapped (files in torch's pre-1.6 format are read
whole) and merged one tensor at a time, and each merged tensor is written
straight into the Keras weights file: the full-size Keras model is never built
(models.weights_stream takes the file layout from a tiny model of the same
architecture). Peak memory is the imports, the shard pages read so far and one
merged tensor. --safetensors and --tf-checkpoint build the float32 model from the
written file (+1 copy) and gather the weights once more (--safetensors about +1
copy, --tf-checkpoint about +2.5, measured at 4 layers of CPM-LM's width).

--int8 writes OUT_DIR/model.int8.weights.h5 instead: Keras' own int8 weights
(models.quantization), each merged tensor quantized as it is written, so the peak is the
same as the float conversion's while the file is a quarter of the size. Load it with
build_transformer_model(..., quantize="int8") or generate_cpm.py --int8.
"""

import argparse
import os
import sys

import _common  # quiet TF, one-line errors

CPM_LM_HEADS, CPM_LM_HIDDEN = 32, 2560


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("src_dir", metavar="SRC_DIR",
                   help="folder with mp_rank_XX_model_states.pt, or one above it (e.g. with "
                        "latest_checkpointed_iteration.txt and 80000/)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if needed)")
    p.add_argument("--num-heads", type=int, default=None,
                   help="attention heads of the whole model; the weights do not record it (default 32, CPM-LM's)")
    p.add_argument("--num-layers", type=int, default=None,
                   help="fail unless the checkpoint has this many layers (default: take what is there)")
    p.add_argument("--tf-checkpoint", action="store_true",
                   help="also write OUT_DIR/model.ckpt, a TF checkpoint with bert4keras' gpt/... names")
    p.add_argument("--safetensors", action="store_true",
                   help="also write OUT_DIR/model.safetensors for Hugging Face GPT2LMHeadModel")
    p.add_argument("--trust-pickle", action="store_true",
                   help="unpickle shards with torch.load(weights_only=False), which can run code from the "
                        "file: only for files you trust, and only needed if the default safe loading refuses one")
    p.add_argument("--int8", action="store_true",
                   help="write Keras int8 weights (OUT_DIR/model.int8.weights.h5) instead of float32 ones")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    _common.check_at_least(args, 1, "num-heads", "num-layers")
    if args.int8 and (args.tf_checkpoint or args.safetensors):
        raise _common.UsageError("--int8 writes Keras int8 weights only: --tf-checkpoint and --safetensors are "
                                 "float32 formats (convert without --int8 for them)")
    return args


def main(argv=None):
    """Run the conversion; returns the list of files written. Raises
    toolkit.checkpoints.CheckpointError (MegatronError) for a bad checkpoint."""
    args = parse_args(argv)
    from tqdm.auto import tqdm

    from toolkit.checkpoints import save_json
    from toolkit.megatron import MegatronCheckpoint

    # Everything about the shards is checked here, before the (large) model is built.
    num_heads = CPM_LM_HEADS if args.num_heads is None else args.num_heads
    ckpt = MegatronCheckpoint(args.src_dir, num_heads=num_heads, num_layers=args.num_layers,
                              trust_pickle=args.trust_pickle)
    config = ckpt.hf_config()
    if args.num_heads is None and ckpt.hidden_size != CPM_LM_HIDDEN:
        print(f"warning: hidden size {ckpt.hidden_size} is not CPM-LM's {CPM_LM_HIDDEN}, yet --num-heads was not "
              f"given: assuming {CPM_LM_HEADS} heads, which the weights cannot confirm", file=sys.stderr)
    if not args.quiet:
        print(f"{len(ckpt.paths)} shard(s): {ckpt.paths}; loaded with {ckpt.load_info[0]}", file=sys.stderr)
        print(f"GPT-2: {config['n_layer']} layers, hidden {config['n_embd']}, {config['n_head']} heads, "
              f"FFN {config['n_inner']}, vocabulary {config['vocab_size']}, {config['n_positions']} positions",
              file=sys.stderr)

    from models import build_transformer_model
    from models.weights_stream import shadow_config, write_weights_streaming

    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    written = []
    path = os.path.join(out, "model.int8.weights.h5" if args.int8 else "model.weights.h5")
    # The full-size Keras model is never built: a tiny model of the same architecture gives the file layout
    # and each merged tensor goes straight into the file (one tensor in memory at a time).
    shadow = build_transformer_model(shadow_config(config), model="gpt2", return_keras_model=False,
                                     quantize="int8" if args.int8 else None)
    tensors = tqdm(ckpt.iter_hf_tensors(), total=len(ckpt), desc="converting", unit="tensor",
                   disable=args.quiet)
    write_weights_streaming(shadow, tensors, path, fmt="hf")
    del ckpt, tensors  # unmap the shards
    written.append(path)
    if args.tf_checkpoint or args.safetensors:
        # these writers gather the whole model: build it (zeros: every weight is overwritten) from the file
        transformer = build_transformer_model(config, model="gpt2", return_keras_model=False, initializer="zeros")
        transformer.model.load_weights(path)
    if args.tf_checkpoint:
        prefix = os.path.join(out, "model.ckpt")
        transformer.save_weights_as_checkpoint(prefix)
        written += [prefix + ".index", prefix + ".data-00000-of-00001", os.path.join(out, "checkpoint")]
    if args.safetensors:
        transformer.save_pretrained(out)  # model.safetensors (+ a config.json, rewritten below)
        written.append(os.path.join(out, "model.safetensors"))
    path = os.path.join(out, "config.json")
    save_json(config, path)  # last: its presence means the conversion finished
    written.append(path)
    if not args.quiet:
        print("wrote " + ", ".join(written), file=sys.stderr)
    return written


if __name__ == "__main__":
    _common.run(main)  # a bad checkpoint (CheckpointError): "error: <what and where>", exit 2
