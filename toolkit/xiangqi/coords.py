"""Squares and moves: ICCS <-> UCI. The ONLY place that converts between them.

ICCS (what this package speaks everywhere): files ``a``-``i`` from red's left,
ranks ``0``-``9`` counted from red's back rank, e.g. ``h2e2`` is red's central
cannon. pyffish and fairy-stockfish speak UCI coordinates: the same files, but
ranks ``1``-``10`` (``h3e3``). Everything that talks to pyffish or to the engine
goes through :func:`iccs_to_uci` / :func:`uci_to_iccs`.

>>> iccs_to_uci("h2e2"), uci_to_iccs("h10g8")
('h3e3', 'h9g7')
>>> normalize_iccs("H2-E2")
'h2e2'
>>> parse_iccs("b9c7")
((1, 9), (2, 7))
"""

import re

FILES = "abcdefghi"
N_FILES, N_RANKS = 9, 10

_ICCS_RE = re.compile(r"^([a-i])([0-9])-?([a-i])([0-9])$")
_UCI_RE = re.compile(r"^([a-i])(10|[1-9])([a-i])(10|[1-9])$")


def square(file, rank):
    """ICCS square name of (file index 0-8, rank 0-9): ``square(7, 2) == 'h2'``."""
    if not (0 <= file < N_FILES and 0 <= rank < N_RANKS):
        raise ValueError(f"square off the board: file {file}, rank {rank}")
    return f"{FILES[file]}{rank}"


def parse_square(name):
    """(file, rank) of an ICCS square name: ``parse_square('e9') == (4, 9)``."""
    s = str(name).strip().lower()
    if len(s) != 2 or s[0] not in FILES or not s[1].isdigit():
        raise ValueError(f"not an ICCS square: {name!r}")
    return FILES.index(s[0]), int(s[1])


def is_iccs(text):
    """True if ``text`` looks like an ICCS move (``h2e2``, ``H2-E2``)."""
    return isinstance(text, str) and bool(_ICCS_RE.match(text.strip().lower()))


def normalize_iccs(text):
    """Lower-case, dash-free ICCS move; ValueError if it is not ICCS."""
    s = str(text).strip().lower()
    m = _ICCS_RE.match(s)
    if not m:
        raise ValueError(f"not an ICCS move: {text!r}")
    return "".join(m.groups())


def parse_iccs(move):
    """((from_file, from_rank), (to_file, to_rank)) of an ICCS move."""
    s = normalize_iccs(move)
    return (FILES.index(s[0]), int(s[1])), (FILES.index(s[2]), int(s[3]))


def make_iccs(frm, to):
    """ICCS move from two (file, rank) pairs."""
    return square(*frm) + square(*to)


def iccs_to_uci(move):
    """ICCS ``h2e2`` -> pyffish/engine UCI ``h3e3`` (ranks shifted by one)."""
    (f0, r0), (f1, r1) = parse_iccs(move)
    return f"{FILES[f0]}{r0 + 1}{FILES[f1]}{r1 + 1}"


def uci_to_iccs(move):
    """pyffish/engine UCI ``h10g8`` -> ICCS ``h9g7``."""
    m = _UCI_RE.match(str(move).strip().lower())
    if not m:
        raise ValueError(f"not a xiangqi UCI move: {move!r}")
    f0, r0, f1, r1 = m.groups()
    return f"{f0}{int(r0) - 1}{f1}{int(r1) - 1}"
