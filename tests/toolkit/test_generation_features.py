"""toolkit/generation.py's text features with any tokenizer: stop strings (StopStrings), streamed
text (generate_text's on_text, InOrder) and forbidden ids (generate(..., forbidden_ids=)), on a
scripted cached decoder (NumPy only) and the tokenizers of toolkit/tokenizers.py."""

import numpy as np
import pytest

from tests.toolkit.test_tokenizers import cpm_model  # noqa: F401  (session fixture: XLNet-layout CPM vocab)
from toolkit.generation import InOrder, StopStrings, generate, generate_text
from toolkit.tokenizers import CpmTokenizer, Tokenizer

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", ".", "on", "mat", "##s", "dog"]
BERT = Tokenizer({token: i for i, token in enumerate(WORDS)})


class ScriptedDecoder:
    """Logits that make row ``r`` say ``script[r][step]`` (logit 10) with ``script[r][step] + 1``
    as the runner-up (logit 5); ids past the script repeat its last id. ``vocab_size`` and
    ``pad_id`` as a real decoder has them."""

    def __init__(self, script, size, vocab_size=None, pad_id=None):
        self.script, self.size, self.vocab_size, self.pad_id = script, size, vocab_size, pad_id
        self.prompts, self.steps = None, 0

    def _logits(self, step, rows):
        logits = np.zeros((len(rows), self.size), "float32")
        for i, row in enumerate(rows):
            token = self.script[row][min(step, len(self.script[row]) - 1)]
            logits[i, token], logits[i, (token + 1) % self.size] = 10.0, 5.0
        return logits

    def prefill(self, prompts, max_new_tokens):
        self.prompts = prompts
        return self._logits(0, range(len(prompts))), {"step": 0, "rows": list(range(len(prompts)))}

    def step(self, token_ids, state):
        self.steps += 1
        state = {"step": state["step"] + 1, "rows": state["rows"]}
        return self._logits(state["step"], state["rows"]), state

    def reorder(self, state, rows):
        return {"step": state["step"], "rows": [state["rows"][r] for r in rows]}


class Model:
    def __init__(self, decoder):
        self.decoder = decoder

    def cached_decoder(self):
        return self.decoder


def _ids(*tokens):
    return [BERT.token_to_id(token) for token in tokens]


# ------------------------------------------------------------------ forbidden ids
def test_forbidden_ids_are_never_generated_by_any_strategy():
    model = Model(ScriptedDecoder([[12, 13, 4]], size=14, vocab_size=14))  # 12, 13: rows past a 12-piece vocabulary
    assert generate(model, [[4]], 3) == [[12, 13, 4]]
    for strategy in ("greedy", "beam", "sample"):
        out = generate(model, [[4]], 3, strategy=strategy, num_beams=2, seed=0, forbidden_ids=range(12, 14))
        assert all(token < 12 for token in out[0]), (strategy, out)
    assert generate(model, [[4]], 3, forbidden_ids=[12, 13]) == [[0, 0, 4]]  # runner-ups 13 -> (13 + 1) % 14 = 0


def test_forbidden_ids_keep_the_decoders_vocab_size_and_pad_id():
    """vocab_size still checks the prompts, pad_id still removes padding (generate_cpm's former
    wrapper lost both)."""
    model = Model(ScriptedDecoder([[5, 6], [6, 7]], size=14, vocab_size=12, pad_id=0))
    assert generate(model, np.array([[4, 5], [4, 0]]), 2, forbidden_ids=[13]) == [[5, 6], [6, 7]]
    assert model.decoder.prompts == [[4, 5], [4]]
    with pytest.raises(ValueError, match=r"token id 12 at row 0, position 1 is outside the model's vocabulary of 12"):
        generate(model, [[4, 12]], 2, forbidden_ids=[13])


def test_bad_forbidden_ids_are_one_line_errors():
    model = Model(ScriptedDecoder([[5]], size=14))
    with pytest.raises(ValueError, match=r"^generate: forbidden id 14 is outside the model's 14 logits \(0..13\)$"):
        generate(model, [[4]], 2, forbidden_ids=[3, 14])
    with pytest.raises(ValueError, match="forbidden_ids forbid all 14 ids: nothing is left to generate"):
        generate(model, [[4]], 2, forbidden_ids=range(14))


# ------------------------------------------------------------------ stop strings
def test_stop_strings_with_cpm_pieces(cpm_model):  # noqa: F811
    tokenizer = CpmTokenizer(cpm_model)
    stops = StopStrings(tokenizer, ["\n", "<eod>", "。", "天气"])
    newline, eod = tokenizer.token_to_id("\u2583"), tokenizer.special_token_ids["<eod>"]
    # '<eod>' is a special token (an id only); '\n' is the single piece U+2583; '。' is a piece too
    assert {newline, eod, tokenizer.token_to_id("。")} <= stops.ids
    assert stops.texts == ["\n", "。", "天气"]
    assert all(tokenizer.decode([token]) in ("\n", "。", "天气", "<eod>") for token in stops.ids)
    assert stops.cut("北京\n上海") == ("北京", True) and stops.cut("北京") == ("北京", False)
    assert stops.holdback("今天") == 1 and stops.holdback("北京") == 0  # '天' may begin '天气'


def test_stop_strings_with_wordpiece_and_bad_stops():
    stops = StopStrings(BERT, ["mat", "s", "on the"])
    # 'mat' is a token; 's' and 'on the' are not one token: they are found in the text only
    assert stops.ids == {BERT.token_to_id("mat")} and stops.texts == ["mat", "s", "on the"]
    assert stops.holdback("the cat sat on") == 2 and stops.holdback("the cat sat on th") == 5
    for bad in ("", None):
        with pytest.raises(ValueError, match="a stop string must be a non-empty text"):
            StopStrings(BERT, [bad])


# ------------------------------------------------------------------ streamed text
def test_generate_text_cuts_at_a_stop_string_and_never_shows_part_of_it():
    script = [_ids("the", "cat", "sat", "on", "the", "mat", "."), _ids("dog", "sat", ".", "the", "cat", "on", "cat")]
    model = Model(ScriptedDecoder(script, size=len(WORDS)))
    events = []
    results = generate_text(model, BERT, [_ids("the"), _ids("the")], 7, stops=["on the", "."],
                            on_text=lambda row, text, finished: events.append((row, text, finished)))
    # row 0: text stop 'on the' (spans two tokens); row 1: '.' is a whole token, ends the row by id
    assert results == [(script[0][:5], "the cat sat "), (script[1][:2], "dog sat")]
    # 'on' may begin 'on the': held back until the next token shows it does
    assert [text for row, text, _ in events if row == 0] == ["the", " cat", " sat", " ", ""]
    assert "".join(text for row, text, _ in events if row == 1) == "dog sat"
    assert [(row, finished) for row, _, finished in events if finished] == [(1, True), (0, True)]
    assert len(events) == 5 + 3
    assert model.decoder.steps == 4  # generation stopped once both rows had ended: 5 tokens, not 7


def test_generate_text_without_stops_returns_generates_ids_and_beam_streams_at_the_end():
    script = [_ids("the", "cat", "sat"), _ids("dog", "dog", "mat")]
    model = Model(ScriptedDecoder(script, size=len(WORDS)))
    assert generate_text(model, BERT, [_ids("the"), _ids("on")], 3) == [(script[0], "the cat sat"),
                                                                          (script[1], "dog dog mat")]
    events = []
    results = generate_text(model, BERT, [_ids("the")], 3, stops=["sat"], strategy="beam", num_beams=2,
                            on_text=lambda row, text, finished: events.append((row, text, finished)))
    assert results == [(script[0][:2], "the cat")] and events[-1] == (0, "", True)


def test_in_order_writes_row_after_row_while_later_rows_wait():
    writes = []
    printer = InOrder(2, writes.append, head=lambda row: f"<{row}>", tail=lambda row: "|")
    printer(1, "later", False)
    assert writes == ["<0>"]  # row 1 waits for row 0
    printer(0, "first", False)
    printer(0, " more", False)
    assert writes == ["<0>", "first", " more"]
    printer(1, " text", True)
    printer(0, "", True)
    assert "".join(writes) == "<0>first more|<1>later text|"
