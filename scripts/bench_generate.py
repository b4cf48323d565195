#!/usr/bin/env python
"""Greedy generation speed: keras-longctx (KV cache) vs Hugging Face
``generate`` (torch) vs keras-hub's GPT2CausalLM (cached) vs bert4keras'
``AutoRegressiveDecoder`` (tf-keras subprocess; it re-runs the prefix), GPT-2
small shape with random weights, plus the floor of the weight products alone.
Prints a table; --write also puts it into docs/benchmarks.md.

    python scripts/bench_generate.py --write                 # prompt 64, 128 new, batch 1 and 8
    python scripts/bench_generate.py --layers 2 --new 16

The CPM-LM pipeline (Megatron conversion and decoding at CPM-LM's size) is
scripts/bench_cpm.py.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import _common  # quiet TF, one-line errors
import numpy as np

from toolkit import benchmarking
from toolkit.benchmarking import median_time

B4K_SCRIPT = r"""
import sys, json, time, numpy as np, tensorflow as tf
from bert4keras.models import build_transformer_model
from bert4keras.snippets import AutoRegressiveDecoder
cfg, prompt_len, new, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
model = build_transformer_model(cfg, None, model='gpt2')
class Greedy(AutoRegressiveDecoder):
    @AutoRegressiveDecoder.wraps(default_rtype='probas')
    def predict(self, inputs, output_ids, states):
        ids = np.concatenate([inputs[0], output_ids], 1)
        return self.last_token(model).predict(ids, verbose=0)
rng = np.random.default_rng(0)
out = {}
for b in batches:
    prompt = rng.integers(1, min(50000, json.load(open(cfg))['vocab_size'] - 1), size=(prompt_len,))
    dec = Greedy(start_id=None, end_id=-1, maxlen=new)
    # bert4keras decodes one prompt at a time: a batch of b costs b runs.
    dec.maxlen = 4; dec.beam_search([prompt], topk=1); dec.maxlen = new
    t = time.perf_counter()
    dec.beam_search([prompt], topk=1)
    out[b] = b * new / ((time.perf_counter() - t) * b)
print(json.dumps(out))
"""


def bench_ours(cfg, prompt, new, batch, repeats, quantize=None):
    from models import build_transformer_model, quantize_model
    from toolkit.generation import generate

    model = build_transformer_model(cfg, model="gpt2", with_lm="linear")
    quantize_model(model, quantize)
    prompts = [list(prompt)] * batch

    def run():
        assert all(len(row) == new for row in generate(model, prompts, new))

    return batch * new / median_time(run, repeats)  # the warm-up call traces prefill and step


def bench_hf(cfg, prompt, new, batch, repeats, int8=False):
    """Hugging Face ``generate``; ``int8``: after torch's ``quantize_dynamic`` on ``nn.Linear``
    (GPT-2's blocks are ``Conv1D``, which it skips: only the LM head becomes int8)."""
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count())
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg)).eval()
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    ids = torch.tensor([list(prompt)] * batch)
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False,
              pad_token_id=0)
    with torch.inference_mode():
        model.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))
        seconds = median_time(lambda: model.generate(ids, **kw), repeats, warmup=0)
    return batch * new / seconds


TORCH_SCRIPT = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
from models.int8_decoding import decoding_speeds
print(json.dumps(decoding_speeds(*(json.loads(arg) for arg in sys.argv[1:6]))))
"""


def bench_ours_torch(cfg, prompt, new, batches, repeats):
    """This package on Keras' torch backend (a subprocess: the backend is per process): float32
    and int8 (fbgemm, traced step) tok/s per batch, and the int8 floor: fbgemm's products of
    the model's weight shapes alone."""
    env = dict(os.environ, KERAS_BACKEND="torch")
    args = [json.dumps(value) for value in (cfg, list(prompt), new, batches, repeats)]
    proc = subprocess.run([sys.executable, "-c", TORCH_SCRIPT, *args], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if proc.returncode:
        raise RuntimeError(f"the torch-backend run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {kind: {int(b): v for b, v in values.items()} for kind, values in result.items()}


def bench_keras_hub(cfg, prompt, new, batch, repeats):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=cfg["vocab_size"], num_layers=cfg["n_layer"],
                                             num_heads=cfg["n_head"], hidden_dim=cfg["n_embd"],
                                             intermediate_dim=4 * cfg["n_embd"], max_sequence_length=cfg["n_positions"])
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy")
    total = len(prompt) + new
    ids = np.zeros((batch, total), "int32")
    ids[:, : len(prompt)] = prompt
    mask = np.zeros((batch, total), bool)
    mask[:, : len(prompt)] = True
    feed = {"token_ids": ids, "padding_mask": mask}
    return batch * new / median_time(lambda: lm.generate(feed, stop_token_ids=None), repeats)


def bench_bert4keras(cfg, prompt_len, new, batches):
    bert_cfg = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["n_embd"], num_hidden_layers=cfg["n_layer"],
                    num_attention_heads=cfg["n_head"], intermediate_size=4 * cfg["n_embd"], hidden_act="gelu",
                    max_position_embeddings=cfg["n_positions"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bert_cfg, f)
    env = dict(os.environ, TF_KERAS="1", TF_USE_LEGACY_KERAS="1", KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", B4K_SCRIPT, f.name, str(prompt_len), str(new), json.dumps(batches)],
                          env=env, capture_output=True, text=True)
    os.remove(f.name)
    if proc.returncode:
        raise RuntimeError(f"bert4keras run failed:\n{proc.stderr[-3000:]}")
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


PEERS = ("hf", "keras-hub", "bert4keras", "int8")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("--layers", type=int, default=12, help="transformer layers (GPT-2 small: 12)")
    p.add_argument("--hidden", type=int, default=768, help="hidden size (a multiple of --heads)")
    p.add_argument("--heads", type=int, default=12, help="attention heads")
    p.add_argument("--vocab", type=int, default=50257, help="vocabulary size")
    p.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    p.add_argument("--new", type=int, default=128, help="new tokens")
    p.add_argument("--batches", default="1,8", help="comma list of batch sizes, each timed")
    p.add_argument("--repeats", type=int, default=3, help="timed generations per measurement (median)")
    p.add_argument("--skip", default="", help="comma list of peers to skip: hf,keras-hub,bert4keras,int8")
    p.add_argument("--cpm", action="store_true", help=argparse.SUPPRESS)  # moved to scripts/bench_cpm.py
    _common.add_write(p, "the table into --md (section bench_generate)")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    if args.cpm:
        raise _common.UsageError("the CPM-LM benchmark is scripts/bench_cpm.py now: run python scripts/bench_cpm.py "
                                 "(--layers N for --cpm-layers N)")
    _common.check_at_least(args, 1, "layers", "hidden", "heads", "repeats", "prompt", "new")
    _common.check_at_least(args, 2, "vocab")
    if args.hidden % args.heads:
        raise _common.UsageError(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    given = args.batches
    try:
        args.batches = [int(b) for b in given.split(",")]
    except ValueError:
        raise _common.UsageError(f"--batches {given!r}: expected a comma list of sizes, e.g. 1,8") from None
    if min(args.batches) < 1:
        raise _common.UsageError(f"--batches {given!r}: every batch size must be >= 1")
    args.skip = set(filter(None, args.skip.split(",")))
    if args.skip - set(PEERS):
        raise _common.UsageError(f"--skip {','.join(sorted(args.skip - set(PEERS)))}: unknown peer; "
                                 f"the peers are {','.join(PEERS)}")
    return args


def time_peers(args, cfg, prompt):
    """``{implementation: {batch: tokens/s}}``."""
    rows = {}
    for b in args.batches:
        rows.setdefault("keras-longctx generate (KV cache)", {})[b] = bench_ours(cfg, prompt, args.new, b, args.repeats)
        if "hf" not in args.skip:
            rows.setdefault("HF transformers generate (torch)", {})[b] = bench_hf(cfg, prompt, args.new, b, args.repeats)
        if "keras-hub" not in args.skip:
            rows.setdefault("keras-hub GPT2CausalLM.generate", {})[b] = bench_keras_hub(cfg, prompt, args.new, b,
                                                                                       args.repeats)
        if "int8" not in args.skip:
            rows.setdefault("keras-longctx int8, Keras' own int8 kernels (TensorFlow)", {})[b] = bench_ours(
                cfg, prompt, args.new, b, args.repeats, quantize="int8")
            if "hf" not in args.skip:
                rows.setdefault("HF + torch dynamic int8 (LM head only: quantize_dynamic skips Conv1D)", {})[b] = \
                    bench_hf(cfg, prompt, args.new, b, args.repeats, int8=True)
    if "int8" not in args.skip:
        torch_rows = bench_ours_torch(cfg, prompt, args.new, args.batches, args.repeats)
        rows["keras-longctx float32 on Keras' torch backend (traced step)"] = torch_rows["float32"]
        rows["keras-longctx int8 on Keras' torch backend (fbgemm, traced step)"] = torch_rows["int8"]
        rows["floor int8: fbgemm products of the weights alone"] = torch_rows["floor"]
    if "bert4keras" not in args.skip:
        rows["bert4keras AutoRegressiveDecoder (tf-keras)"] = bench_bert4keras(cfg, args.prompt, args.new,
                                                                               args.batches)
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.prompt + args.new > 1024:
        raise _common.UsageError(f"--prompt {args.prompt} + --new {args.new} exceeds GPT-2's 1024 positions")
    cfg = dict(vocab_size=args.vocab, n_embd=args.hidden, n_layer=args.layers, n_head=args.heads, n_positions=1024)
    batches = args.batches
    prompt = np.random.default_rng(0).integers(1, args.vocab - 1, size=(args.prompt,)).tolist()
    rows = time_peers(args, cfg, prompt)

    h = args.hidden
    params = args.vocab * h + 1024 * h + args.layers * (12 * h * h + 13 * h) + 2 * h
    weight_bytes = 4 * params
    floor = {b: benchmarking.tf_matvec_floor_tok_s(args.layers, h, args.vocab, b) for b in batches}
    ours = rows["keras-longctx generate (KV cache)"]
    head = ["implementation"] + [label for b in batches for label in (f"batch {b} tok/s", "vs ours")]
    lines = [[name] + [cell for b in batches for cell in ((f"{vals[b]:.2f}", f"{vals[b] / ours[b]:.2f}x")
                                                            if vals.get(b) else ("-", "-"))]
             for name, vals in rows.items()]
    lines.append(["floor: the weight products alone (TF matrix-vector chain, no attention / LayerNorm / loop)"]
                 + [cell for b in batches for cell in (f"{floor[b]:.1f}", f"{floor[b] / ours[b]:.2f}x")])
    text = (f"GPT-2 shape {args.layers} x {h} ({params / 1e6:.0f}M parameters, {weight_bytes / 2**20:.0f} MiB "
            f"float32), random weights, prompt {args.prompt} tokens, {args.new} new tokens, greedy, median of "
            f"{args.repeats} runs after a warm-up (bert4keras: one run, one prompt at a time, as its decoder "
            f"works). The floor row times the model's weight products alone ({weight_bytes / 1e6:.0f} MB read per "
            f"step) in one tf.function: what any TF decoder of this shape pays per step on this machine.")
    body = benchmarking.section_body("Greedy generation", "scripts/bench_generate.py", text,
                                     benchmarking.markdown_table(head, lines, align="l" + "rr" * len(batches)), argv)
    benchmarking.report(body, "bench_generate", args.write, args.md)
    return rows


if __name__ == "__main__":
    _common.run(main)
