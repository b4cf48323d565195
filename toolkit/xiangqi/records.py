"""Game records: read the seed article's JSON lines, ICCS PGN, and this
package's own JSONL; write the own JSONL one game per line (flush + fsync).

Every game is replayed with the rules (:mod:`toolkit.xiangqi.rules`); a line
that cannot be decoded is counted in ``corrupt_lines``, a game with an illegal
(or unreadable) move in ``illegal_games``, a repeat of an earlier game (same
start FEN and same moves) in ``duplicates``. None of these is fatal.

Own JSONL, one object per line::

    {"id": "s0-0000003", "moves": ["h2e2", "h9g7", ...], "result": "red",
     "termination": "checkmate", "source": "selfplay", "engine": {...},
     "fen": "...optional, absent = standard start..."}

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "games.jsonl")
>>> append_game(path, GameRecord(moves=["h2e2", "h9g7"], result="draw", source="demo"))
>>> games, stats = read_jsonl(path)
>>> games[0].moves, games[0].result, stats.kept
(['h2e2', 'h9g7'], 'draw', 1)
"""

import dataclasses
import gzip
import json
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

from .coords import is_iccs, normalize_iccs
from .rules import (RESULTS, START_FEN, IllegalMoveError, InvalidFenError, Position, first_illegal,
                    normalize_fen)

SEED_RESULT_KEY = "棋局结果"
SEED_RESULTS = {2: "red", 1: "draw", 0: "black"}
PGN_RESULTS = {"1-0": "red", "0-1": "black", "1/2-1/2": "draw", "*": None}
PGN_OF_RESULT = {"red": "1-0", "black": "0-1", "draw": "1/2-1/2", None: "*"}


class RecordError(ValueError):
    """A record that cannot be decoded (counted as a corrupt line)."""


@dataclass
class GameRecord:
    """One game: ICCS ``moves`` from ``fen`` (None = standard start)."""
    moves: List[str]
    result: Optional[str] = None          # 'red' | 'black' | 'draw' | None (unknown)
    termination: Optional[str] = None     # e.g. 'checkmate', 'repetition', 'move_limit'
    fen: Optional[str] = None
    source: str = ""
    engine: dict = field(default_factory=dict)
    id: Optional[str] = None
    meta: dict = field(default_factory=dict)

    def start_fen(self):
        return START_FEN if not self.fen else normalize_fen(self.fen)

    def key(self):
        """Identity for de-duplication: (start FEN, moves)."""
        return self.start_fen(), tuple(self.moves)

    def to_json(self):
        d = {"id": self.id, "moves": list(self.moves), "result": self.result, "termination": self.termination,
             "plies": len(self.moves), "source": self.source, "engine": self.engine}
        if self.fen and self.start_fen() != START_FEN:
            d["fen"] = self.fen
        if self.meta:
            d["meta"] = self.meta
        if self.id is None:
            del d["id"]
        return d

    def position(self):
        """The final :class:`Position` (replays the moves)."""
        return Position.from_moves(self.moves, self.fen)


@dataclass
class ReadStats:
    read: int = 0            # records met (non-blank lines / PGN games)
    kept: int = 0
    corrupt_lines: int = 0
    illegal_games: int = 0
    duplicates: int = 0
    errors: list = field(default_factory=list)  # (where, reason), the first 100

    def note(self, where, reason):
        if len(self.errors) < 100:
            self.errors.append((where, reason))

    def __add__(self, other):
        return ReadStats(*(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)))


# --- parsing helpers ----------------------------------------------------------
def parse_iccs_moves(value):
    """ICCS moves from a list, a space/comma separated string, or a string of
    concatenated 4-character moves (``"h2e2h9g7"``); ``H2-E2`` spellings too.

    >>> parse_iccs_moves("h2e2h9g7"), parse_iccs_moves("H2-E2 H9-G7"), parse_iccs_moves(["h2e2"])
    (['h2e2', 'h9g7'], ['h2e2', 'h9g7'], ['h2e2'])
    """
    if isinstance(value, list):
        if not all(isinstance(m, str) and is_iccs(m) for m in value):
            raise RecordError("moves list holds something that is not an ICCS move")
        return [normalize_iccs(m) for m in value]
    if not isinstance(value, str):
        raise RecordError(f"moves must be a string or a list, not {type(value).__name__}")
    s = re.sub(r"[\s,;\-]+", "", value).lower()
    if len(s) % 4:
        raise RecordError(f"ICCS move string of length {len(s)} is not a multiple of 4")
    moves = [s[i:i + 4] for i in range(0, len(s), 4)]
    bad = [m for m in moves if not is_iccs(m)]
    if bad:
        raise RecordError(f"not ICCS moves: {bad[:3]}")
    return moves


def _seed_result(items):
    if not isinstance(items, dict):
        return None
    raw = items.get(SEED_RESULT_KEY)
    try:
        return SEED_RESULTS.get(int(raw))
    except (TypeError, ValueError):
        return None


class _Collector:
    """Validation, de-duplication and counting shared by the readers."""

    def __init__(self, seen=None, validate=True, terminations=False):
        self.games, self.stats = [], ReadStats()
        self.seen = set() if seen is None else seen
        self.validate, self.terminations = validate, terminations
        self._fens = {}

    def corrupt(self, where, reason):
        self.stats.corrupt_lines += 1
        self.stats.note(where, f"corrupt: {reason}")

    def offer(self, game, where):
        try:
            start = self._fens.get(game.fen)
            if start is None:
                start = self._fens[game.fen] = game.start_fen()
        except InvalidFenError as e:
            return self.corrupt(where, str(e))
        key = (start, tuple(game.moves))
        if key in self.seen:  # only kept (so legal) games are in ``seen``: no need to replay
            self.stats.duplicates += 1
            return self.stats.note(where, "duplicate")
        if self.validate:
            bad = first_illegal(game.moves, start)
            if bad is not None:
                self.stats.illegal_games += 1
                return self.stats.note(where, f"illegal move {bad + 1} ({game.moves[bad]!r})")
        self.seen.add(key)
        if self.terminations and game.termination is None:
            out = Position.from_moves(game.moves, start).outcome()
            game.termination = out.termination if out else None
        self.games.append(game)
        self.stats.kept += 1


def _open_text(path):
    """Text reader for ``path``; ``*.gz`` files are decompressed on the fly."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _json_lines(path):
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, line


# --- readers --------------------------------------------------------------------
def read_seed_jsonl(path, source=None, seen=None, validate=True, terminations=False):
    """The seed article's JSON lines: ``iccs`` (moves), ``fen`` (empty = start),
    ``items['棋局结果']`` (2 red wins, 1 draw, 0 black wins, else unknown).

    Returns ``(games, ReadStats)``. ``seen``: a set shared between calls to
    de-duplicate across files. ``terminations``: also work out how each game
    ended by the rules (a few extra pyffish calls per game).
    """
    col = _Collector(seen, validate, terminations)
    src = source or os.path.basename(str(path))
    for n, line in _json_lines(path):
        col.stats.read += 1
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or "iccs" not in obj:
                raise RecordError("not an object with an 'iccs' field")
            moves = parse_iccs_moves(obj["iccs"])
            fen = obj.get("fen") or None
            if fen is not None and not isinstance(fen, str):
                raise RecordError("fen is not a string")
            items = obj.get("items") if isinstance(obj.get("items"), dict) else {}
        except (ValueError, RecordError) as e:
            col.corrupt(where, str(e))
            continue
        meta = {k: v for k, v in items.items() if k != SEED_RESULT_KEY}
        col.offer(GameRecord(moves=moves, result=_seed_result(items), fen=fen, source=src, meta=meta), where)
    return col.games, col.stats


def read_jsonl(path, seen=None, validate=True, terminations=False):
    """This package's JSONL (see the module doc). Returns ``(games, ReadStats)``."""
    col = _Collector(seen, validate, terminations)
    for n, line in _json_lines(path):
        col.stats.read += 1
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or "moves" not in obj:
                raise RecordError("not an object with a 'moves' field")
            moves = parse_iccs_moves(obj["moves"])
            result = obj.get("result")
            if result not in RESULTS and result is not None:
                raise RecordError(f"result {result!r} is not one of {RESULTS}")
            fen = obj.get("fen") or None
            engine = obj.get("engine") or {}
            if not isinstance(engine, dict) or (fen is not None and not isinstance(fen, str)):
                raise RecordError("engine must be an object and fen a string")
            game = GameRecord(moves=moves, result=result, termination=obj.get("termination"), fen=fen,
                              source=str(obj.get("source") or ""), engine=engine, id=obj.get("id"),
                              meta=obj.get("meta") if isinstance(obj.get("meta"), dict) else {})
        except (ValueError, RecordError) as e:
            col.corrupt(where, str(e))
            continue
        col.offer(game, where)
    return col.games, col.stats


_HEADER = re.compile(r'^\[(\w+)\s+"(.*)"\]\s*$')
_MOVE_NO = re.compile(r"^\d+\.+")


def _pgn_blocks(path):
    """(first line number, headers dict, movetext) per game."""
    headers, text, start, in_moves = {}, [], None, False
    with _open_text(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            m = _HEADER.match(line)
            if m:  # a tag line after move text starts the next game, even after an unclosed comment
                if in_moves:
                    yield start, headers, "\n".join(text)
                    headers, text, in_moves = {}, [], False
                if start is None or not headers:
                    start = n
                headers[m.group(1)] = m.group(2)
            else:
                if start is None:
                    start = n
                in_moves = True
                text.append(line)
    if headers or text:
        yield start, headers, "\n".join(text)


def _pgn_tokens(text):
    if text.count("{") != text.count("}") or text.count("(") != text.count(")"):
        raise RecordError("unbalanced comment braces or variation parentheses")
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r";[^\n]*", " ", text)
    while True:
        stripped = re.sub(r"\([^()]*\)", " ", text)
        if stripped == text:
            break
        text = stripped
    text = re.sub(r"\$\d+", " ", text)
    tokens, result = [], None
    for tok in text.split():
        if tok in PGN_RESULTS:
            result = tok
            continue
        tok = _MOVE_NO.sub("", tok)
        if tok:
            tokens.append(tok)
    return tokens, result


def read_pgn(path, seen=None, validate=True, terminations=False):
    """PGN games. ``[Format "ICCS"]`` (the default) move text such as
    ``1. h2e2 h9g7 2. ...`` (``H2-E2`` too); other formats (WXF, Chinese)
    are read move by move with :func:`parse_move`. ``[FEN]`` gives the start.
    Returns ``(games, ReadStats)``; a game whose headers or text cannot be
    decoded counts as a corrupt record, a bad move as an illegal game.
    """
    from .notation import parse_move

    col = _Collector(seen, validate, terminations)
    for n, headers, text in _pgn_blocks(path):
        col.stats.read += 1
        where = f"{path}:{n}"
        try:
            tokens, result_tok = _pgn_tokens(text)
            fen = headers.get("FEN") or None
            result_tag = headers.get("Result", result_tok or "*")
            if result_tag not in PGN_RESULTS:
                raise RecordError(f"Result {result_tag!r}")
            if fen is not None:
                normalize_fen(fen)
        except (RecordError, InvalidFenError) as e:
            col.corrupt(where, str(e))
            continue
        if all(is_iccs(t) for t in tokens):
            moves = [normalize_iccs(t) for t in tokens]
        else:
            pos = Position(fen)
            try:
                for t in tokens:
                    pos.push(parse_move(pos, t))
            except IllegalMoveError as e:
                col.stats.illegal_games += 1
                col.stats.note(where, f"move {pos.ply + 1} ({t!r}): {e.reason}")
                continue
            moves = pos.moves
        meta = {k: v for k, v in headers.items() if k not in ("FEN", "Result", "Format")}
        col.offer(GameRecord(moves=moves, result=PGN_RESULTS[result_tag], fen=fen,
                             source=os.path.basename(str(path)), meta=meta), where)
    return col.games, col.stats


def read_games(path, fmt=None, **kw):
    """Any of the three formats: ``fmt`` in {'seed', 'jsonl', 'pgn'} or guessed
    from the extension / the first record; gzip-compressed files (``*.gz``) are read
    as they are."""
    if fmt is None:
        if str(path).lower().removesuffix(".gz").endswith(".pgn"):
            fmt = "pgn"
        else:
            fmt = "jsonl"
            for _, line in _json_lines(path):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and "iccs" in obj:
                    fmt = "seed"
                break
    reader = {"seed": read_seed_jsonl, "jsonl": read_jsonl, "pgn": read_pgn}[fmt]
    return reader(path, **kw)


# --- writing --------------------------------------------------------------------
def _ends_with_newline(fd):
    size = os.fstat(fd).st_size
    if size == 0:
        return True
    return os.pread(fd, 1, size - 1) == b"\n"


class GameWriter:
    """Append games to a JSONL file, one line each, flushed and fsynced before
    :meth:`write` returns, so a killed writer loses at most the line it was
    writing. If the file ends in a partial line (an earlier writer was
    killed), a newline is written first so the new record stays readable.
    """

    def __init__(self, path):
        self.path = str(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._checked = False

    def write(self, game):
        d = game.to_json() if isinstance(game, GameRecord) else dict(game)
        data = (json.dumps(d, ensure_ascii=False) + "\n").encode("utf-8")
        if not self._checked:
            rfd = os.open(self.path, os.O_RDONLY)
            try:
                if not _ends_with_newline(rfd):
                    data = b"\n" + data
            finally:
                os.close(rfd)
            self._checked = True
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        os.fsync(self.fd)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def append_game(path, game):
    """Append one game (GameRecord or dict) as a line; flushed and fsynced."""
    with GameWriter(path) as w:
        w.write(game)


def repair_tail(path):
    """Cut an unterminated last line (what a writer killed mid-line leaves) from
    ``path``; returns the number of bytes removed. An unterminated last line
    that is a whole JSON object is kept and given its newline instead. Only
    for files this package writes, where every record ends with a newline."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        pos, chunk, keep = size, 1 << 16, 0
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            i = f.read(pos - start).rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        f.seek(keep)
        tail = f.read()
        try:
            whole = isinstance(json.loads(tail.decode("utf-8")), dict)
        except ValueError:
            whole = False
        if whole:
            f.seek(size)
            f.write(b"\n")
            cut = 0
        else:
            f.truncate(keep)
            cut = size - keep
        f.flush()
        os.fsync(f.fileno())
        return cut


def pgn_text(games, headers=None):
    """Games as ICCS PGN text (the format :func:`read_pgn` reads); ``headers``:
    more ``{tag: value}`` pairs written after the standard ones."""
    parts = []
    for g in games:
        lines = ['[Game "Chinese Chess"]', '[Format "ICCS"]']
        if g.fen and g.start_fen() != START_FEN:
            lines.append(f'[FEN "{g.fen}"]')
        lines.append(f'[Result "{PGN_OF_RESULT[g.result]}"]')
        lines += [f'[{tag} "{str(value).replace(chr(34), chr(39))}"]' for tag, value in (headers or {}).items()]
        words = []
        black_first = g.start_fen().split()[1] == "b"
        for i, mv in enumerate(g.moves):
            j = i + (1 if black_first else 0)
            if j % 2 == 0:
                words.append(f"{j // 2 + 1}.")
            elif i == 0:
                words.append(f"{j // 2 + 1}...")
            words.append(mv)
        words.append(PGN_OF_RESULT[g.result])
        parts.append("\n".join(lines) + "\n\n" + " ".join(words) + "\n\n")
    return "".join(parts)


def write_pgn(path, games):
    """Write games as ICCS PGN (:func:`pgn_text`)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(pgn_text(games))


__all__ = ["GameRecord", "ReadStats", "RecordError", "read_seed_jsonl", "read_jsonl", "read_pgn", "read_games",
           "parse_iccs_moves", "GameWriter", "append_game", "repair_tail", "write_pgn", "pgn_text"]
