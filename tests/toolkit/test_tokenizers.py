"""toolkit.tokenizers against transformers: WordPiece on real English and Chinese BERT
vocabs, sentencepiece, and CPM on a sentencepiece model trained here on People's Daily."""

import doctest
import functools
import hashlib
import io
import sys
import types

import pytest
import transformers
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from tests.toolkit import assets
from toolkit import tokenizers
from toolkit.tokenizers import CpmTokenizer, SpTokenizer, Tokenizer, check_vocab_size, cpm_pre_tokenize, load_vocab

VOCABS = {"en": assets.english_bert_vocab, "zh": assets.chinese_bert_vocab}

EN_TEXTS = [
    "Hello, World!",
    "The quick brown fox jumps over the lazy dog.",
    "It's 3.14 -- isn't it? (approx. $5,000.00 / 12%) #tag @user",
    "Naïve café owners in São Paulo: déjà vu, ÉCOLE, Straße, İstanbul, Ångström",
    "unaffable unbelievably antidisestablishmentarianism",
    "emoji 😀🚀 and symbols ☕ ™ © ∑ ≥ →",
    "tabs\tnew\nlines\r\nand   many    spaces  ",
    "control\x00chars\u200bzero\ufffdwidth\ue000private\u0378unassigned",
    "Greek ΟΔΟΣ Σίσυφος, Cyrillic Привет мир",
    "Chinese 中文, Japanese カタカナ ひらがな, Korean 한국어",
    "a" * 100 + " " + "b" * 101 + " " + "xyz" * 50,
    "mail john.doe@example.com or see https://example.org/path?q=1&r=2",
    "[MASK] is kept whole, [mask] is not; [CLS]x[SEP] [UNK]",
    "",
]
ZH_TEXTS = [
    "今天天气不错，我们去公园玩吧！",
    "北京大学（Peking University）成立于1898年。",
    "他说：“这是一个测试。”然后离开了……",
    "２０２３年，ＧＤＰ增长５．２％",
    "我爱NLP和BERT模型😀！",
    "\uf900有此理 𠀀 繁體中文與簡體中文",
    "中英mixed文本, with English words and 数字123.45",
    "   \n\t  ",
]
CASES = [("en", True, EN_TEXTS), ("zh", True, ZH_TEXTS), ("zh", False, ZH_TEXTS)]
CASE_IDS = ["en-uncased", "zh-uncased", "zh-cased"]


@functools.lru_cache(maxsize=None)
def _pair(name, lower):
    """(ours, the slow transformers BertTokenizer) on one vocab."""
    path = VOCABS[name]()
    return Tokenizer(path, do_lower_case=lower), BertTokenizerLegacy(path, do_lower_case=lower)


def _hf_encode(hf, first, second=None, maxlen=None):
    kwargs = {"truncation": "longest_first", "max_length": maxlen} if maxlen else {}
    out = hf(first, second, return_token_type_ids=True, **kwargs)
    return out["input_ids"], out["token_type_ids"]


# --------------------------------------------------------------------------- WordPiece vs transformers


@pytest.mark.parametrize("name,lower,texts", CASES, ids=CASE_IDS)
def test_single_texts_match_transformers(name, lower, texts):
    ours, hf = _pair(name, lower)
    for text in texts:
        assert ours.tokenize(text) == ["[CLS]"] + hf.tokenize(text) + ["[SEP]"], text
        assert ours.encode(text) == _hf_encode(hf, text), text


@pytest.mark.parametrize("name,lower,texts", CASES, ids=CASE_IDS)
def test_pairs_and_truncation_match_transformers(name, lower, texts):
    ours, hf = _pair(name, lower)
    pairs = list(zip(texts, texts[1:] + texts[:1])) + [(texts[0], texts[0]), (texts[1], "")]
    for first, second in pairs:
        assert ours.encode(first, second) == _hf_encode(hf, first, second), (first, second)
        for maxlen in (3, 4, 5, 6, 9, 14, 33, 512):
            expected = _hf_encode(hf, first, second, maxlen)
            assert ours.encode(first, second, maxlen=maxlen) == expected, (first, second, maxlen)
    for text in texts:
        for maxlen in (2, 3, 7, 20):
            expected = _hf_encode(hf, text, maxlen=maxlen)
            assert ours.encode(text, maxlen=maxlen) == expected, (text, maxlen)
            assert ours.tokens_to_ids(ours.tokenize(text, maxlen=maxlen)) == expected[0], (text, maxlen)


def test_truncation_drops_from_the_longer_text_then_the_second():
    ours, _ = _pair("en", True)
    long, short = "one two three four five", "six seven"
    assert ours.tokenize(long, maxlen=4) == ["[CLS]", "one", "two", "[SEP]"]
    # bodies 5 and 2, 3 to drop: the longer loses 3 -> 2 and 2
    tokens = ours.ids_to_tokens(ours.encode(long, short, maxlen=7)[0])
    assert tokens == ["[CLS]", "one", "two", "[SEP]", "six", "seven", "[SEP]"]
    # equal bodies: the second text loses first
    tokens = ours.ids_to_tokens(ours.encode("one two", "six seven", maxlen=6)[0])
    assert tokens == ["[CLS]", "one", "two", "[SEP]", "six", "[SEP]"]
    # pattern S*ES*E keeps the [CLS] of the second text
    assert ours.encode("one", "six", pattern="S*ES*E") == ([101, 2028, 102, 101, 2416, 102], [0, 0, 0, 1, 1, 1])


def test_fast_transformers_tokenizer_agrees():
    """transformers 5's default BertTokenizer (Rust) gives the same ids, except where it
    departs from the slow one (which we follow): Greek final sigma (only Python's
    str.lower writes 'ς'), unassigned code points (the slow one drops them) and, without
    lower-casing, NFC (the slow one turns the compatibility ideograph U+F900 into U+8C48)."""
    for name, lower, texts in CASES:
        ours, _ = _pair(name, lower)
        fast = transformers.BertTokenizer(VOCABS[name](), do_lower_case=lower)
        for text in texts:
            out = fast(text)
            if "Σ" in text or "\u0378" in text or ("\uf900" in text and not lower):
                assert ours.encode(text)[0] != out["input_ids"], text
            else:
                assert ours.encode(text) == (out["input_ids"], out["token_type_ids"]), text


def test_unknown_long_and_special_words():
    ours, _ = _pair("en", True)
    assert ours.tokenize("b" * 101) == ["[CLS]", "[UNK]", "[SEP]"]
    hundred = ours.tokenize("a" * 100)[1:-1]
    assert "[UNK]" not in hundred and "".join(tokenizers._stem(t) for t in hundred) == "a" * 100
    assert ours.tokenize("😀 ☕") == ["[CLS]", "[UNK]", "[UNK]", "[SEP]"]
    assert ours.tokenize("\x00\u200b\ufffd\ue000") == ["[CLS]", "[SEP]"]
    assert ours.tokenize("x[MASK]y [mask]") == ["[CLS]", "x", "[MASK]", "y", "[", "mask", "]", "[SEP]"]
    assert ours.tokenize("Ünïcödé") == ["[CLS]", "unicode", "[SEP]"]


def test_empty_text_encodes_to_cls_sep():
    ours, hf = _pair("zh", True)
    assert ours.encode("") == ([101, 102], [0, 0]) == _hf_encode(hf, "")
    assert ours.encode("", "") == ([101, 102, 102], [0, 0, 1]) == _hf_encode(hf, "", "")


# --------------------------------------------------------------------------- decode, rematch


def test_decode_round_trip():
    zh, _ = _pair("zh", True)
    for text in ["今天天气不错，我们去公园玩吧！", "他说：这是《红楼梦》的第1章，共2.5万字。", "北京大学（peking university）成立于1898年。"]:
        assert zh.decode(zh.encode(text)[0]) == text
    en, _ = _pair("en", True)
    text = "hello, world! it's 3.14 (approx) and we're done. state-of-the-art."
    assert en.decode(en.encode(text)[0]) == text
    assert en.decode(en.encode("Naïve CAFÉ 😀 unaffable")[0]) == "naive cafe unaffable"
    assert en.decode(None, tokens=["[CLS]", "un", "##aff", "##able", "[PAD]"]) == "unaffable"


@pytest.mark.parametrize("name", ["en", "zh"])
def test_rematch_matches_transformers_offsets(name):
    ours, _ = _pair(name, True)
    fast = transformers.BertTokenizer(VOCABS[name](), do_lower_case=True)
    texts = EN_TEXTS[:7] + ZH_TEXTS[:5] + ["supercalifragilisticexpialidocious" * 4]
    for text in texts:
        tokens = ours.tokenize(text)
        encoded = fast(text, return_offsets_mapping=True)
        assert ours.tokens_to_ids(tokens) == encoded["input_ids"], text
        spans = [(m[0], m[-1] + 1) if m else (0, 0) for m in ours.rematch(text, tokens)]
        assert spans == [tuple(span) for span in encoded["offset_mapping"]], text


def test_rematch_examples():
    ours, _ = _pair("en", True)
    text = "ÉCOLE ☕ Straße, école"
    tokens = ours.tokenize(text)
    assert tokens == ["[CLS]", "ecole", "[UNK]", "st", "##raße", ",", "ecole", "[SEP]"]
    expected = [[], [0, 1, 2, 3, 4], [6], [8, 9], [10, 11, 12, 13], [14], [16, 17, 18, 19, 20], []]
    assert ours.rematch(text, tokens) == expected
    # combining accents are dropped from the tokens and from the positions
    text = "e\u0301te\u0301 [MASK]!"
    tokens = ours.tokenize(text)
    assert tokens == ["[CLS]", "et", "##e", "[MASK]", "!", "[SEP]"]
    assert ours.rematch(text, tokens) == [[], [0, 2], [3], [6, 7, 8, 9, 10, 11], [12], []]


# --------------------------------------------------------------------------- vocab files, bad input


def test_load_vocab_ids_are_line_numbers():
    for name in VOCABS:
        token_dict = load_vocab(VOCABS[name]())
        assert token_dict == dict(_pair(name, True)[1].vocab)
        assert sorted(token_dict.values()) == list(range(len(token_dict)))
    assert load_vocab(VOCABS["zh"]())["\u2028"] == 343  # a line that str.split would empty


def test_simplified_vocab_matches_bert4keras():
    """Sizes and sha1 of keep_tokens given by bert4keras 0.11.5's load_vocab (computed
    in a separate process: importing bert4keras patches keras globally)."""
    startswith = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    expected = {
        "zh": (13585, "17647ecb770a94b7e66846ebc8070c09fb46448e"),
        "en": (29191, "5ee525486cfd02b70ebb669c82b9c5eff3ed5cfa"),
    }
    for name, (size, sha1) in expected.items():
        token_dict, keep_tokens = load_vocab(VOCABS[name](), simplified=True, startswith=startswith)
        assert len(token_dict) == len(keep_tokens) == size
        assert hashlib.sha1(",".join(map(str, keep_tokens)).encode()).hexdigest() == sha1
        assert list(token_dict)[:5] == startswith and list(token_dict.values()) == list(range(size))


def test_simplified_vocab_encodes_like_the_full_one():
    full, _ = _pair("zh", True)
    token_dict, keep_tokens = load_vocab(
        VOCABS["zh"](), simplified=True, startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    small = Tokenizer(token_dict, do_lower_case=True)
    for text in ZH_TEXTS:
        ids = small.encode(text)[0]
        assert [keep_tokens[i] for i in ids] == full.encode(text)[0], text
    with pytest.raises(ValueError, match=r"vocab\.txt.*'\[NOPE\]'"):
        load_vocab(VOCABS["zh"](), simplified=True, startswith=["[NOPE]"])


def test_missing_vocab_file(tmp_path):
    path = str(tmp_path / "missing" / "vocab.txt")
    with pytest.raises(ValueError, match="missing/vocab.txt.*does not exist"):
        Tokenizer(path)


def test_model_directory_reads_its_vocab_txt(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    assert Tokenizer(str(tmp_path)).encode("hello")[0] == [2, 4, 3]


def test_directory_without_vocab_says_so(tmp_path):
    with pytest.raises(ValueError) as error:
        Tokenizer(str(tmp_path))
    message = str(error.value)
    assert f"{str(tmp_path)!r} is a directory without a vocab.txt: pass the vocabulary file itself" == message
    assert "does not exist" not in message


def test_empty_vocab_file_is_named(tmp_path):
    (tmp_path / "vocab.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.txt' is empty: it needs one token a line"):
        Tokenizer(str(tmp_path / "vocab.txt"))


@pytest.mark.parametrize("missing", ["[UNK]", "[CLS]", "[SEP]"])
def test_vocab_lacking_a_required_token(tmp_path, missing):
    path = tmp_path / "vocab.txt"
    tokens = [t for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"] if t != missing]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{tmp_path}/vocab.txt.*lacks the token '\\{missing[:-1]}\\]'"):
        Tokenizer(str(path))
    with pytest.raises(ValueError, match=f"token_dict.*lacks the token '\\{missing[:-1]}\\]'"):
        Tokenizer({t: i for i, t in enumerate(tokens)})


def test_bad_maxlen_and_pattern():
    ours, _ = _pair("en", True)
    with pytest.raises(ValueError, match="maxlen=1 is smaller than the 2 special tokens"):
        ours.encode("hello world", maxlen=1)
    with pytest.raises(ValueError, match="maxlen=1 is smaller than the 2 special tokens"):
        ours.tokenize("hello", maxlen=1)
    with pytest.raises(ValueError, match="maxlen=2 is smaller than the 3 special tokens"):
        ours.encode("hello", "world", maxlen=2)
    assert ours.encode("hello world", maxlen=2) == ([101, 102], [0, 0])
    assert ours.encode("hello", "world", maxlen=3) == ([101, 102, 102], [0, 0, 1])
    with pytest.raises(ValueError, match="pattern must be"):
        ours.encode("hello", "world", pattern="SE")
    with pytest.raises(ValueError, match="id 99999 is not in the vocab"):
        ours.id_to_token(99999)


def test_check_vocab_size():
    ours, _ = _pair("zh", True)
    check_vocab_size(load_vocab(VOCABS["zh"]()), 21128, "in bert_model.ckpt")
    check_vocab_size(ours, 21128, "in bert_model.ckpt")
    with pytest.raises(ValueError, match="vocab has 21128 tokens but the embedding in x.ckpt has 21130 rows"):
        check_vocab_size(load_vocab(VOCABS["zh"]()), 21130, "in x.ckpt")
    with pytest.raises(ValueError, match=r"vocab '.*vocab\.txt' has 21128 tokens but the embedding at w has 30522 rows"):
        check_vocab_size(ours, 30522, "at w")


def test_pre_tokenize_and_token_translate():
    vocab = ["[UNK]", "[CLS]", "[SEP]", "[unused1]", "深度学习", "深", "度", "学", "习", "很", "好", "玩"]
    tokenizer = Tokenizer(
        {t: i for i, t in enumerate(vocab)},
        pre_tokenize=lambda text: ["深度学习", "很", "好玩"] if text == "深度学习很好玩" else list(text),
        token_translate={"玩": "[unused1]"},
    )
    assert tokenizer.tokenize("深度学习很好玩") == ["[CLS]", "深度学习", "很", "好", "[unused1]", "[SEP]"]
    assert tokenizer.decode(tokenizer.encode("深度学习很好玩")[0]) == "深度学习很好玩"


def test_docstring_examples_run():
    result = doctest.testmod(tokenizers, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 20 and result.failed == 0


# --------------------------------------------------------------------------- sentencepiece and CPM

CPM_TEXTS = [
    "今天天气很好。我们去公园玩吧！",
    "今天 天气很好。\n我们去  公园玩吧！\n\n明天见",
    "  开头和结尾的空格  ",
    "１９９８年，中国经济增长８％。\n 第二段：“引号”和``双引号''",
    "新华社北京1月1日电 国家主席江泽民发表新年讲话<eod>第二篇<sep>",
    "Hello world 1998, naïve 쀍",
    "",
    "\n",
]


@pytest.fixture(scope="session")
def cpm_model(tmp_path_factory):
    """A unigram model with XLNet/CPM's special pieces (<unk> 0, <s> 1, </s> 2, <cls> 3,
    <sep> 4, <pad> 5, <mask> 6, <eod> 7, <eop> 8), U+2582/U+2583 as pieces 9/10 and a
    piece '1998,' (11, for XLNet's digit-comma rule), trained on ~130k characters of
    People's Daily cut by jieba as CPM does."""
    import sentencepiece

    sentences = assets.peoples_daily_sentences(130_000)
    documents = ["\n".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(" ".join(cpm_pre_tokenize(doc)) for doc in documents),
        model_writer=model,
        model_type="unigram",
        vocab_size=3000,
        character_coverage=0.9995,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=5,
        control_symbols=["<cls>", "<sep>", "<mask>", "<eod>", "<eop>"],
        user_defined_symbols=["\u2582", "\u2583", "1998,"],
        num_threads=2,
        minloglevel=2,
    )
    path = tmp_path_factory.mktemp("cpm") / "chinese_vocab.model"
    path.write_bytes(model.getvalue())
    return str(path)


@pytest.fixture(scope="session")
def hf_cpm(cpm_model):
    """(transformers.CpmTokenizer, the same with transformers 4's jieba step restored)."""
    import jieba

    class CpmTokenizerV4(transformers.CpmTokenizer):
        # transformers 4 cut the text with jieba here; 5 dropped the step in the slow tokenizer.
        def _tokenize(self, text):
            return super()._tokenize(" ".join(w.translate(self.translator) for w in jieba.cut(text, cut_all=False)))

    with pytest.MonkeyPatch.context() as patch:
        # transformers 5 imports rjieba (a Rust jieba, not installed) but never calls it
        # in the slow tokenizer; an empty module lets it build.
        patch.setitem(sys.modules, "rjieba", types.ModuleType("rjieba"))
        return transformers.CpmTokenizer(cpm_model), CpmTokenizerV4(cpm_model)


def test_trained_model_has_the_cpm_layout(cpm_model):
    tokenizer = SpTokenizer(cpm_model)
    pieces = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>", "\u2582", "\u2583"]
    assert tokenizer.ids_to_tokens(range(11)) == pieces
    assert (tokenizer.vocab_size, tokenizer._token_pad_id, tokenizer._token_unk_id) == (3000, 5, 0)


def test_cpm_matches_transformers(cpm_model, hf_cpm):
    plain, reference = hf_cpm
    ours = CpmTokenizer(cpm_model)
    for text in CPM_TEXTS:
        assert ours.tokenize(text) == reference.tokenize(text), text
        for add_special_tokens in (False, True):
            ids = ours.encode(text, add_special_tokens=add_special_tokens)
            assert ids == reference.encode(text, add_special_tokens=add_special_tokens), text
            for skip in (False, True):
                assert ours.decode(ids, skip_special_tokens=skip) == plain.decode(ids, skip_special_tokens=skip), text
    assert ours.encode("你好", add_special_tokens=True)[-2:] == [4, 3]  # XLNet: ... <sep> <cls>


def test_cpm_sentencepiece_stage_matches_transformers(cpm_model, hf_cpm):
    """After jieba, the text goes through XLNet's stage, which is transformers 5's
    CpmTokenizer._tokenize: whitespace runs collapsed, ``/'' -> ", NFKD without combining
    marks, and pieces like '1998,' re-cut as the digits then ','."""
    plain, _ = hf_cpm
    ours = CpmTokenizer(cpm_model)
    texts = ["在1998,", "1998,2000年", " 1998,  ", "``引号''  naïve\t１９９８，年", "中国 人民\n", ""]
    for text in texts:
        assert ours._sentencepiece(text) == plain._tokenize(text), text
    assert ours._sentencepiece("在1998,")[-5:] == ["1", "9", "9", "8", ","]


def test_cpm_spaces_and_newlines(cpm_model):
    ours = CpmTokenizer(cpm_model)
    assert ours.tokenize("中国 人民\n") == ["▁中国", "▁", "\u2582", "▁人民", "▁", "\u2583"]
    assert ours.encode("\n") == [ours.token_to_id("▁"), 10]
    for text in ["今天 天气很好。\n我们去  公园玩吧\n\n明天见", "  开头和结尾的空格  ", "国家主席江泽民发表新年讲话<eod>第二篇"]:
        assert ours.decode(ours.encode(text)) == text
    assert ours.decode(ours.encode("增长８％，好")) == "增长8%,好"  # NFKD folds full-width forms
    with pytest.raises(ValueError, match="id 3000 is outside"):
        ours.decode([3000])


def test_sp_tokenizer(cpm_model):
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=cpm_model)
    text = "中国人民决心继承邓小平同志的遗志"
    tokenizer = SpTokenizer(cpm_model)
    assert tokenizer.tokenize(text) == sp.encode(text, out_type=str)
    assert tokenizer.encode(text) == (sp.encode(text), [0] * len(sp.encode(text)))
    assert tokenizer.decode(sp.encode(text)) == text
    assert tokenizer.id_to_token(5000) == "" and tokenizer.decode(sp.encode(text) + [5000]) == text

    ended = SpTokenizer(cpm_model, token_end="</s>")
    ids = ended.encode(text, maxlen=4)[0]
    assert ids == sp.encode(text)[:3] + [2]
    assert ended.encode(text, "人民")[0] == sp.encode(text) + [2] + sp.encode("人民") + [2]

    # bert4keras' CPM recipe: jieba words, newline written as U+2583 and fed as <cls>
    recipe = SpTokenizer(cpm_model, pre_tokenize=cpm_pre_tokenize, token_translate={"\u2583": "<cls>"})
    ids = recipe.encode("中国\n人民")[0]
    assert 3 in ids and 10 not in ids
    assert recipe.decode(ids) == "中国 \u2583 人民"

    with pytest.raises(ValueError, match="chinese_vocab.model' has no piece '\\[CLS\\]'"):
        SpTokenizer(cpm_model, token_start="[CLS]")


def test_sentencepiece_bad_models(tmp_path):
    import sentencepiece

    with pytest.raises(ValueError, match="nope.model' does not exist"):
        SpTokenizer(str(tmp_path / "nope.model"))
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.model' is not a sentencepiece model"):
        CpmTokenizer(str(tmp_path / "junk.model"))
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(assets.peoples_daily_sentences(5_000)),
        model_writer=model,
        vocab_size=1200,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    (tmp_path / "plain.model").write_bytes(model.getvalue())
    plain = CpmTokenizer(str(tmp_path / "plain.model"))  # CPM-LM's own vocab has no <cls> either
    assert plain.encode("人民日报") == plain.encode("人民日报", add_special_tokens=False)
    with pytest.raises(ValueError, match="plain.model' lacks the pieces '<sep>', '<cls>'"):
        plain.encode("人民日报", add_special_tokens=True)
