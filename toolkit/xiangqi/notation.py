"""Move notations: ICCS, WXF and Chinese, and a parser that takes any of them.

* ICCS: ``h2e2`` (files a-i from red's left, ranks 0-9 from red's side).
* WXF: piece letter ``K A E H R C P`` (``B``/``N`` read as E/H), the piece's
  file counted 1-9 from the mover's right, ``+`` forward / ``-`` back /
  ``=`` sideways (``.`` read as ``=``), then the new file (sideways moves and
  the diagonal movers A, E, H) or the number of ranks moved: ``C2=5``, ``H8+7``.
* Chinese: red 车马相仕帅炮兵 with numerals 一..九, black 车马象士将炮卒 with
  full-width digits １..９ (ASCII digits accepted on input; traditional forms
  車馬傌俥砲包帥將後進 too): ``炮二平五``, ``马８进７``.

Tandem pieces (two or more of one kind on one file; advisors and elephants
never need it because their direction already tells them apart) follow the
WXF/AXF rules: the file digit is replaced by ``+`` (front) / ``-`` (rear),
written after the letter as the WXF standard does (``R+=3``, ``C--1``; the
prefix form ``+R=3`` is read too); in Chinese 前/后 replace the file
(``前车平三``). Soldiers: three on a file are ``P+``/``P<file>``/``P-``
(前兵/中兵/后兵); four or five are ``++``, ``P+``, [``P<file>``,] ``P-``,
``--`` (一兵..五兵, counted from the front); when two files each hold two or
more soldiers the file digit replaces the letter: ``3+=4``, ``33=4``,
``3-=4`` (前三平四, 中三平四, 后三平四).

>>> from toolkit.xiangqi.rules import Position
>>> pos = Position()
>>> iccs_to_wxf(pos, "h2e2"), iccs_to_chinese(pos, "h2e2")
('C2=5', '炮二平五')
>>> pos.push("h2e2")
>>> wxf_to_iccs(pos, "H8+7"), chinese_to_iccs(pos, "马8进7"), parse_move(pos, "马８进７")
('h9g7', 'h9g7', 'h9g7')
>>> parse_move(pos, "C2=5")  # black's cannon on black's file 2 (b7)
'b7e7'
>>> try:
...     parse_move(pos, "R2+1")
... except IllegalMoveError as e:
...     print(e.reason)
no piece there
"""

import re
from collections import OrderedDict
from typing import NamedTuple, Optional

from . import movegen
from .coords import is_iccs, normalize_iccs, parse_iccs
from .rules import BLACK, RED, IllegalMoveError

WXF_LETTERS = {"k": "K", "a": "A", "b": "E", "n": "H", "r": "R", "c": "C", "p": "P"}
CN_PIECES = {
    RED: {"K": "帅", "A": "仕", "E": "相", "H": "马", "R": "车", "C": "炮", "P": "兵"},
    BLACK: {"K": "将", "A": "士", "E": "象", "H": "马", "R": "车", "C": "炮", "P": "卒"},
}
CN_NUMERALS = "一二三四五六七八九"
FW_DIGITS = "１２３４５６７８９"
CN_OPS = {"+": "进", "-": "退", "=": "平"}
_CN_OP_READ = {"进": "+", "進": "+", "退": "-", "平": "="}
_CN_PIECE_READ = {
    "帅": "K", "帥": "K", "将": "K", "將": "K", "仕": "A", "士": "A", "相": "E", "象": "E",
    "马": "H", "馬": "H", "傌": "H", "碼": "H", "车": "R", "車": "R", "俥": "R", "伡": "R",
    "炮": "C", "砲": "C", "包": "C", "兵": "P", "卒": "P",
}
_CN_POS_READ = {"前": "front", "中": "mid", "后": "rear", "後": "rear"}
_WXF_ALIASES = {"B": "E", "N": "H"}
_NO_TANDEM = "KAE"  # general, advisors, elephants: direction is enough


class Designation(NamedTuple):
    """How a move is named: piece kind, its file (mover-relative 1-9), its place
    among the ``n`` pieces of that kind on the file (0 = front), whether more
    than one file holds tandem soldiers, operator and target number."""
    kind: str
    file: int
    idx: int
    n: int
    multi: bool
    op: str
    arg: int


class _Spec(NamedTuple):
    """A parsed notation before matching: ``pos`` is None (file given), or
    'front'/'rear'/'mid' (Chinese 前后中), 'wxf+'/'wxf-' (WXF X+/X-, which mean
    second-from-front/back with four or more soldiers), 'foremost'/'rearmost'
    (WXF ++/--) or an int (Chinese 一..五 ordinals)."""
    kind: str
    file: Optional[int]
    pos: object
    op: str
    arg: int


def _file_no(side, f):
    return 9 - f if side == RED else f + 1


def _forward(side):
    return 1 if side == RED else -1


def designate(grid, side, frm, to):
    """The :class:`Designation` of a move of ``side`` from ``frm`` to ``to`` on ``grid``."""
    (f0, r0), (f1, r1) = frm, to
    piece = grid[r0][f0]
    kind = WXF_LETTERS[piece.lower()]
    if r1 == r0:
        op, arg = "=", _file_no(side, f1)
    else:
        op = "+" if (r1 - r0) * _forward(side) > 0 else "-"
        arg = _file_no(side, f1) if kind in "AEH" else abs(r1 - r0)
    if kind in _NO_TANDEM:
        return Designation(kind, _file_no(side, f0), 0, 1, False, op, arg)
    ranks = [r for r in range(10) if grid[r][f0] == piece]
    ranks.sort(reverse=(side == RED))  # front first
    multi = False
    if kind == "P" and len(ranks) >= 2:
        multi = sum(1 for f in range(9) if sum(grid[r][f] == piece for r in range(10)) >= 2) > 1
    return Designation(kind, _file_no(side, f0), ranks.index(r0), len(ranks), multi, op, arg)


def _mid(n):
    return (n - 1) // 2 if n % 2 else None


def render_wxf(d):
    """WXF text of a :class:`Designation`."""
    tail = f"{d.op}{d.arg}"
    if d.n == 1:
        return f"{d.kind}{d.file}{tail}"
    if d.multi:  # soldiers on two files: file digit replaces the letter
        mark = "+" if d.idx == 0 else "-" if d.idx == d.n - 1 else str(d.file)
        return f"{d.file}{mark}{tail}"
    if d.n <= 3:
        head = {0: f"{d.kind}+", d.n - 1: f"{d.kind}-"}.get(d.idx, f"{d.kind}{d.file}")
    else:
        head = {0: "++", 1: f"{d.kind}+", d.n - 2: f"{d.kind}-", d.n - 1: "--"}.get(d.idx, f"{d.kind}{d.file}")
    return head + tail


def _cn_num(side, k):
    return CN_NUMERALS[k - 1] if side == RED else FW_DIGITS[k - 1]


def render_chinese(d, side):
    """Chinese text of a :class:`Designation` for ``side``."""
    piece = CN_PIECES[side][d.kind]
    tail = CN_OPS[d.op] + _cn_num(side, d.arg)
    if d.n == 1:
        return piece + _cn_num(side, d.file) + tail
    if d.n <= 3:
        order = "前后" if d.n == 2 else "前中后"
    else:
        order = CN_NUMERALS[:d.n]
    if d.multi:
        return order[d.idx] + _cn_num(side, d.file) + tail
    return order[d.idx] + piece + tail


def _resolve(pos, n):
    """Index among ``n`` tandem pieces meant by a parsed ``pos``, or None."""
    if n < 2:
        return None
    if pos == "front" or pos == "foremost":
        return 0
    if pos == "rear" or pos == "rearmost":
        return n - 1
    if pos == "mid":
        return _mid(n)
    if pos == "wxf+":
        return 0 if n <= 3 else 1
    if pos == "wxf-":
        return n - 1 if n <= 3 else n - 2
    if isinstance(pos, int):
        return pos if pos < n else None
    return None


def _matches(spec, d):
    if (spec.kind, spec.op, spec.arg) != (d.kind, d.op, d.arg):
        return False
    if spec.file is not None and spec.file != d.file:
        return False
    if spec.pos is None:
        return True
    return _resolve(spec.pos, d.n) == d.idx


# --- parsing ---------------------------------------------------------------
_WXF_PATTERNS = [
    (re.compile(r"^([KAEHRCP])([1-9])([-+=])([1-9])$"), "file"),
    (re.compile(r"^([KAEHRCP])([-+])([-+=])([1-9])$"), "tandem"),
    (re.compile(r"^([-+])([KAEHRCP])([-+=])([1-9])$"), "prefix"),
    (re.compile(r"^(\+\+|--)([-+=])([1-9])$"), "extreme"),
    (re.compile(r"^([1-9])([-+])([-+=])([1-9])$"), "multi"),
    (re.compile(r"^([1-9])([1-9])([-+=])([1-9])$"), "multimid"),
]


def _parse_wxf(text):
    """(spec, canonical text) or None."""
    s = re.sub(r"\s+", "", text).upper().replace(".", "=")
    s = "".join(_WXF_ALIASES.get(c, c) if c.isalpha() else c for c in s)
    for rx, kind in _WXF_PATTERNS:
        m = rx.match(s)
        if not m:
            continue
        g = m.groups()
        if kind == "file":
            return _Spec(g[0], int(g[1]), None, g[2], int(g[3])), s
        if kind in ("tandem", "prefix"):
            letter, mark = (g[0], g[1]) if kind == "tandem" else (g[1], g[0])
            return _Spec(letter, None, "wxf" + mark, g[2], int(g[3])), f"{letter}{mark}{g[2]}{g[3]}"
        if kind == "extreme":
            return _Spec("P", None, "foremost" if g[0] == "++" else "rearmost", g[1], int(g[2])), s
        if kind == "multi":
            return _Spec("P", int(g[0]), "front" if g[1] == "+" else "rear", g[2], int(g[3])), s
        if g[0] != g[1]:
            return None
        return _Spec("P", int(g[0]), "mid", g[2], int(g[3])), s
    return None


def _cn_token(ch):
    if ch in _CN_PIECE_READ:
        return ("piece", _CN_PIECE_READ[ch])
    if ch in _CN_OP_READ:
        return ("op", _CN_OP_READ[ch])
    if ch in _CN_POS_READ:
        return ("pos", _CN_POS_READ[ch])
    if ch in CN_NUMERALS:
        return ("num", CN_NUMERALS.index(ch) + 1, RED)
    if ch in FW_DIGITS:
        return ("num", FW_DIGITS.index(ch) + 1, BLACK)
    if ch in "123456789":
        return ("num", int(ch), BLACK)
    return None


def _parse_chinese(text):
    """(spec, side the numerals say, canonical text) or None."""
    toks = [_cn_token(c) for c in re.sub(r"\s+", "", text)]
    if len(toks) not in (4, 5) or any(t is None for t in toks):
        return None
    if toks[-1][0] != "num" or toks[-2][0] != "op":
        return None
    side = toks[-1][2]
    op, arg = toks[-2][1], toks[-1][1]
    head = toks[:-2]
    types = [t[0] for t in head]
    tail = CN_OPS[op] + _cn_num(side, arg)
    pos_char = {"front": "前", "mid": "中", "rear": "后"}
    if types == ["piece", "num"] and head[1][2] == side:
        kind, f = head[0][1], head[1][1]
        return _Spec(kind, f, None, op, arg), side, CN_PIECES[side][kind] + _cn_num(side, f) + tail
    if types == ["pos", "piece"]:
        kind, where = head[1][1], head[0][1]
        return _Spec(kind, None, where, op, arg), side, pos_char[where] + CN_PIECES[side][kind] + tail
    if types == ["num", "piece"] and head[0][2] == RED and head[0][1] <= 5:  # 一兵..五兵 / 二卒
        k, kind = head[0][1], head[1][1]
        return _Spec(kind, None, k - 1, op, arg), side, CN_NUMERALS[k - 1] + CN_PIECES[side][kind] + tail
    if types == ["pos", "num"] and head[1][2] == side:  # 前三平四 (soldiers on two files)
        where, f = head[0][1], head[1][1]
        return _Spec("P", f, where, op, arg), side, pos_char[where] + _cn_num(side, f) + tail
    if types == ["pos", "piece", "num"] and head[2][2] == side:  # 前兵三平四
        where, kind, f = head[0][1], head[1][1], head[2][1]
        return _Spec(kind, f, where, op, arg), side, pos_char[where] + _cn_num(side, f) + tail
    return None


# --- the public API ----------------------------------------------------------
_TABLES = OrderedDict()


def _table(pos):
    """Per-FEN cache: [(move, designation)], {wxf: move}, {chinese: move}."""
    key = pos.fen()
    hit = _TABLES.get(key)
    if hit is None:
        grid, side = pos.board(), pos.turn
        rows = [(mv, designate(grid, side, *parse_iccs(mv))) for mv in pos.legal_moves()]
        hit = (rows, {render_wxf(d): mv for mv, d in rows}, {render_chinese(d, side): mv for mv, d in rows})
        _TABLES[key] = hit
        if len(_TABLES) > 512:
            _TABLES.popitem(last=False)
    return hit


def _legal_designations(pos):
    return _table(pos)[0]


def _designation_of(pos, move):
    try:
        mv = normalize_iccs(move)
    except ValueError:
        raise IllegalMoveError("unparseable", move, pos.fen()) from None
    if not pos.is_legal(mv):
        raise IllegalMoveError(pos.illegal_reason(mv), move, pos.fen())
    frm, to = parse_iccs(mv)
    return designate(pos.board(), pos.turn, frm, to)


def iccs_to_wxf(pos, move):
    """WXF name of legal ICCS ``move`` in ``pos``: ``iccs_to_wxf(Position(), 'h2e2') == 'C2=5'``."""
    return render_wxf(_designation_of(pos, move))


def iccs_to_chinese(pos, move):
    """Chinese name of legal ICCS ``move`` in ``pos``: ``'炮二平五'`` for ``h2e2`` at the start."""
    return render_chinese(_designation_of(pos, move), pos.turn)


def _resolve_spec(pos, spec, text, exact):
    """Shared by WXF and Chinese: ``exact`` is the canonical text already
    matched against (name -> move) — fall back to matching the structure,
    and explain failures."""
    if exact is not None:
        return exact
    legal = [(mv, d) for mv, d in _legal_designations(pos) if _matches(spec, d)]
    if len(legal) == 1:
        return legal[0][0]
    if len(legal) > 1:
        raise IllegalMoveError("ambiguous", text, pos.fen())
    grid, side = pos.board(), pos.turn
    for frm, to in movegen.pseudo_legal_moves(grid, side):
        if _matches(spec, designate(grid, side, frm, to)):
            raise IllegalMoveError("illegal: leaves general in check", text, pos.fen())
    letter = {v: k for k, v in WXF_LETTERS.items()}[spec.kind]
    piece = letter.upper() if side == RED else letter
    files = range(9) if spec.file is None else [f for f in range(9) if _file_no(side, f) == spec.file]
    if not any(grid[r][f] == piece for f in files for r in range(10)):
        raise IllegalMoveError("no piece there", text, pos.fen())
    raise IllegalMoveError("illegal: piece cannot move there", text, pos.fen())


def wxf_to_iccs(pos, text):
    """ICCS move for WXF ``text`` in ``pos``; IllegalMoveError (with ``reason``) if none."""
    parsed = _parse_wxf(str(text))
    if parsed is None:
        raise IllegalMoveError("unparseable", text, pos.fen())
    spec, canonical = parsed
    exact = _table(pos)[1].get(canonical)
    return _resolve_spec(pos, spec, text, exact)


def chinese_to_iccs(pos, text):
    """ICCS move for Chinese ``text`` in ``pos``; IllegalMoveError if none.
    Digits (ASCII or full-width) mean black's notation, Chinese numerals red's."""
    parsed = _parse_chinese(str(text))
    if parsed is None:
        raise IllegalMoveError("unparseable", text, pos.fen())
    spec, side, canonical = parsed
    if side != pos.turn:
        raise IllegalMoveError("not your piece", text, pos.fen())
    exact = _table(pos)[2].get(canonical)
    return _resolve_spec(pos, spec, text, exact)


def parse_move(pos, text):
    """ICCS move for ``text`` in any notation (ICCS, WXF or Chinese).

    >>> from toolkit.xiangqi.rules import Position
    >>> [parse_move(Position(), t) for t in ("h2e2", "H2-E2", "C2=5", "C2.5", "炮二平五", "砲二平五")]
    ['h2e2', 'h2e2', 'h2e2', 'h2e2', 'h2e2', 'h2e2']
    """
    s = str(text).strip()
    if not s:
        raise IllegalMoveError("unparseable", text, pos.fen())
    if is_iccs(s):
        mv = normalize_iccs(s)
        reason = pos.illegal_reason(mv)
        if reason:
            raise IllegalMoveError(reason, text, pos.fen())
        return mv
    if any(ord(c) > 127 for c in s):
        return chinese_to_iccs(pos, s)
    return wxf_to_iccs(pos, s)


NOTATIONS = "ICCS h2e2, WXF C2=5 or Chinese 炮二平五"
_REASON_WORDS = {
    "illegal: piece cannot move there": "the piece cannot move there",
    "illegal: leaves general in check": "it leaves your general in check",
}


def bad_move_message(text, reason):
    """One line for a move ``text`` that :func:`parse_move` refused with
    ``reason`` (an :class:`IllegalMoveError`'s): an unreadable one points to
    the accepted notations and ``help``, an ambiguous one to the front/rear
    marks, an illegal one says so once, with why.

    >>> bad_move_message("hello there", "unparseable")
    "cannot read 'hello there' as a move: use ICCS h2e2, WXF C2=5 or Chinese 炮二平五 ('help' lists the commands)"
    >>> bad_move_message("e0e5", "illegal: piece cannot move there")
    "illegal move 'e0e5': the piece cannot move there"
    """
    shown = str(text).strip()
    if reason == "unparseable":
        return f"cannot read {shown!r} as a move: use {NOTATIONS} ('help' lists the commands)"
    if reason == "ambiguous":
        return (f"ambiguous move {shown!r}: more than one piece can make it; say which, front or rear "
                f"(WXF R+=3 / R-=3, Chinese 前车平三 / 后车平三), or give it in ICCS")
    return f"illegal move {shown!r}: {_REASON_WORDS.get(reason, reason)}"


def move_names(pos, move):
    """``{'iccs': ..., 'wxf': ..., 'chinese': ...}`` for a legal move."""
    d = _designation_of(pos, move)
    return {"iccs": normalize_iccs(move), "wxf": render_wxf(d), "chinese": render_chinese(d, pos.turn)}


__all__ = ["iccs_to_wxf", "wxf_to_iccs", "iccs_to_chinese", "chinese_to_iccs", "parse_move", "move_names",
           "designate", "render_wxf", "render_chinese", "Designation", "IllegalMoveError", "bad_move_message",
           "NOTATIONS"]
