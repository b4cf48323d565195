#!/usr/bin/env python
"""Greedy generation speed: keras-longctx (KV cache) vs Hugging Face
``generate`` (torch) vs keras-hub's GPT2CausalLM (cached) vs bert4keras'
``AutoRegressiveDecoder`` (tf-keras subprocess; it re-runs the prefix), GPT-2
small shape with random weights, plus the memory-bandwidth bound.

    python scripts/bench_generate.py                         # prompt 64, 128 new, batch 1 and 8
    python scripts/bench_generate.py --layers 2 --new 16 --no-write
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import _common
import numpy as np

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
    prompt = rng.integers(1, 50000, size=(prompt_len,))
    dec = Greedy(start_id=None, end_id=-1, maxlen=new)
    # bert4keras decodes one prompt at a time: a batch of b costs b runs.
    dec.maxlen = 4; dec.beam_search([prompt], topk=1); dec.maxlen = new
    t = time.perf_counter()
    dec.beam_search([prompt], topk=1)
    out[b] = b * new / ((time.perf_counter() - t) * b)
print(json.dumps(out))
"""


def bench_ours(cfg, prompt, new, batch, repeats):
    from models import build_transformer_model
    from toolkit.generation import generate

    model = build_transformer_model(cfg, model="gpt2", with_lm="linear")
    prompts = [list(prompt)] * batch
    generate(model, prompts, new)  # trace prefill + step once
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = generate(model, prompts, new)
        times.append(time.perf_counter() - t)
        assert all(len(o) == new for o in out)
    return batch * new / float(np.median(times))


def bench_hf(cfg, prompt, new, batch, repeats):
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count())
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg)).eval()
    ids = torch.tensor([list(prompt)] * batch)
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False,
              pad_token_id=0)
    times = []
    with torch.inference_mode():
        model.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))
        for _ in range(repeats):
            t = time.perf_counter()
            model.generate(ids, **kw)
            times.append(time.perf_counter() - t)
    return batch * new / float(np.median(times))


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
    lm.generate(feed, stop_token_ids=None)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        lm.generate(feed, stop_token_ids=None)
        times.append(time.perf_counter() - t)
    return batch * new / float(np.median(times))


def bench_bert4keras(cfg, prompt_len, new, batches):
    bert_cfg = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["n_embd"], num_hidden_layers=cfg["n_layer"],
                    num_attention_heads=cfg["n_head"], intermediate_size=4 * cfg["n_embd"], hidden_act="gelu",
                    max_position_embeddings=cfg["n_positions"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bert_cfg, f)
    env = dict(os.environ, TF_KERAS="1", TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", B4K_SCRIPT, f.name, str(prompt_len), str(new), json.dumps(batches)],
                          env=env, capture_output=True, text=True)
    os.remove(f.name)
    if proc.returncode:
        raise RuntimeError(f"bert4keras run failed:\n{proc.stderr[-3000:]}")
    return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def copy_bandwidth_gbs(nbytes=2**29, repeats=5):
    """Measured memory copy rate (read + write bytes per second), GB/s."""
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        times.append(time.perf_counter() - t)
    return 2 * a.nbytes / min(times) / 1e9


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip", default="", help="comma list of peers to skip: hf,keras-hub,bert4keras")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    cfg = dict(vocab_size=args.vocab, n_embd=args.hidden, n_layer=args.layers, n_head=args.heads, n_positions=1024)
    batches = [int(b) for b in args.batches.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    prompt = np.random.default_rng(0).integers(1, args.vocab - 1, size=(args.prompt,)).tolist()

    rows = {}
    for b in batches:
        rows.setdefault("keras-longctx generate (KV cache)", {})[b] = bench_ours(cfg, prompt, args.new, b, args.repeats)
        if "hf" not in skip:
            rows.setdefault("HF transformers generate (torch)", {})[b] = bench_hf(cfg, prompt, args.new, b, args.repeats)
        if "keras-hub" not in skip:
            rows.setdefault("keras-hub GPT2CausalLM.generate", {})[b] = bench_keras_hub(cfg, prompt, args.new, b,
                                                                                       args.repeats)
    if "bert4keras" not in skip:
        rows["bert4keras AutoRegressiveDecoder (tf-keras)"] = bench_bert4keras(cfg, args.prompt, args.new, batches)

    h = args.hidden
    params = args.vocab * h + 1024 * h + args.layers * (12 * h * h + 13 * h) + 2 * h
    weight_bytes = 4 * params
    bw = copy_bandwidth_gbs()
    bound = bw / 2 * 1e9 / weight_bytes  # each token reads every weight once: read rate = copy rate / 2
    ours = rows["keras-longctx generate (KV cache)"]
    header = "| implementation | " + " | ".join(f"batch {b} tok/s | vs ours" for b in batches) + " |"
    lines = [header, "|---|" + "---:|---:|" * len(batches)]
    for name, vals in rows.items():
        cells = []
        for b in batches:
            v = vals.get(b)
            cells.append(f"{v:.2f} | {v / ours[b]:.2f}x" if v else "- | -")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"| bandwidth bound (batch 1: weights read once per token) | {bound:.1f} | {bound / ours[batches[0]]:.2f}x"
                 + " | - | -" * (len(batches) - 1) + " |")
    cmd = "python scripts/bench_generate.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = (f"## Greedy generation (`scripts/bench_generate.py`)\n\n"
            f"GPT-2 shape {args.layers} x {h} ({params / 1e6:.0f}M parameters, {weight_bytes / 2**20:.0f} MiB "
            f"float32), random weights, prompt {args.prompt} tokens, {args.new} new tokens, greedy, median of "
            f"{args.repeats} runs after a warm-up (bert4keras: one run, one prompt at a time, as its decoder "
            f"works). Memory copy rate measured {bw:.1f} GB/s.\n"
            f"Machine: {_common.machine_description()}. Date: {_common.today()}. Command: `{cmd.strip()}`.\n\n"
            + "\n".join(lines) + "\n")
    print(body)
    if not args.no_write:
        _common.write_benchmark_section("bench_generate", body)
    return rows


if __name__ == "__main__":
    main()
