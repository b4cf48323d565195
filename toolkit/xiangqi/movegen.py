"""Piece geometry on a 10x9 grid, independent of pyffish.

pyffish is the authority on legality (:mod:`toolkit.xiangqi.rules`); this
module only knows how each piece moves, which the notation code needs to name
moves and to explain *why* a move is illegal ("leaves general in check"
versus "cannot move there"). The tests check that :func:`legal_moves` here
equals pyffish's legal moves on many positions.

Grid convention (shared with :meth:`Position.board`): ``grid[rank][file]``,
rank 0 = red's back rank, file 0 = ``a`` (red's left); FEN letters, upper case
red, lower case black (``K A B N R C P`` = general, advisor, elephant, horse,
chariot, cannon, soldier); ``'.'`` = empty.

>>> g = grid_from_fen("3k5/9/9/9/9/9/9/9/9/3RK4 b - - 0 1")
>>> g[0][3], g[9][3]
('R', 'k')
>>> in_check(g, "black"), legal_moves(g, "black")
(True, [])
"""

EMPTY = "."
RED, BLACK = "red", "black"

_ALIASES = {"h": "n", "e": "b", "H": "N", "E": "B"}


def other(side):
    return BLACK if side == RED else RED


def side_of(piece):
    """'red', 'black' or None for an empty square."""
    if piece == EMPTY or not piece:
        return None
    return RED if piece.isupper() else BLACK


def grid_from_fen(fen):
    """10x9 grid ``[rank][file]`` (rank 0 = red's back rank) from a FEN."""
    rows = fen.split()[0].split("/")
    if len(rows) != 10:
        raise ValueError(f"a xiangqi FEN has 10 ranks, got {len(rows)}: {fen!r}")
    grid = []
    for row in reversed(rows):  # FEN lists rank 9 (black's back rank) first
        cells = []
        num = ""
        for ch in row:
            if ch.isdigit():
                num += ch
                continue
            if num:
                cells.extend(EMPTY * int(num))
                num = ""
            cells.append(_ALIASES.get(ch, ch))
        if num:
            cells.extend(EMPTY * int(num))
        if len(cells) != 9:
            raise ValueError(f"a xiangqi FEN rank has 9 files: {row!r} in {fen!r}")
        grid.append(cells)
    return grid


_RED_ADVISOR = {(3, 0), (5, 0), (4, 1), (3, 2), (5, 2)}
_RED_ELEPHANT = {(2, 0), (6, 0), (0, 2), (4, 2), (8, 2), (2, 4), (6, 4)}


def misplaced(grid):
    """A description of the first piece standing where it never can (a general
    or advisor outside its palace, an elephant off its seven points or across
    the river, a soldier behind its starting points), else None."""
    for r in range(10):
        for f in range(9):
            p = grid[r][f]
            if p == EMPTY:
                continue
            side, kind = side_of(p), p.lower()
            rr = r if side == RED else 9 - r  # rank from the piece owner's side
            ok = True
            if kind == "k":
                ok = _in_palace(side, f, r)
            elif kind == "a":
                ok = (f, rr) in _RED_ADVISOR
            elif kind == "b":
                ok = (f, rr) in _RED_ELEPHANT
            elif kind == "p":
                ok = rr >= 5 or (rr >= 3 and f % 2 == 0)
            elif kind not in "nrc":
                ok = False
            if not ok:
                return f"{side} {kind!r} cannot stand on {'abcdefghi'[f]}{r}"
    return None


def _on_board(f, r):
    return 0 <= f < 9 and 0 <= r < 10


def _in_palace(side, f, r):
    return 3 <= f <= 5 and ((0 <= r <= 2) if side == RED else (7 <= r <= 9))


def _own_half(side, r):
    return r <= 4 if side == RED else r >= 5


def _line_targets(grid, f, r, cannon, side):
    """A chariot's targets along its four lines (empty points up to the first piece, which it
    takes if an enemy), or a cannon's (empty points up to a screen, then the first piece
    behind the screen if an enemy)."""
    out = []
    for df, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        tf, tr = f + df, r + dr
        screen = False
        while _on_board(tf, tr):
            occupant = grid[tr][tf]
            if occupant == EMPTY:
                if not screen:
                    out.append((tf, tr))
            elif cannon and not screen:
                screen = True
            else:
                if side_of(occupant) != side:
                    out.append((tf, tr))
                break
            tf, tr = tf + df, tr + dr
    return out


def _targets(grid, f, r):
    """Squares the piece on (f, r) may move to, ignoring checks."""
    piece = grid[r][f]
    side = side_of(piece)
    kind = piece.lower()
    out = []

    def free_or_enemy(tf, tr):
        return _on_board(tf, tr) and side_of(grid[tr][tf]) != side

    if kind == "k":
        for df, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            tf, tr = f + df, r + dr
            if _in_palace(side, tf, tr) and free_or_enemy(tf, tr):
                out.append((tf, tr))
    elif kind == "a":
        for df in (1, -1):
            for dr in (1, -1):
                tf, tr = f + df, r + dr
                if _in_palace(side, tf, tr) and free_or_enemy(tf, tr):
                    out.append((tf, tr))
    elif kind == "b":
        for df in (2, -2):
            for dr in (2, -2):
                tf, tr = f + df, r + dr
                if (_on_board(tf, tr) and _own_half(side, tr) and grid[r + dr // 2][f + df // 2] == EMPTY
                        and free_or_enemy(tf, tr)):
                    out.append((tf, tr))
    elif kind == "n":
        for df, dr in ((1, 2), (-1, 2), (1, -2), (-1, -2), (2, 1), (2, -1), (-2, 1), (-2, -1)):
            tf, tr = f + df, r + dr
            leg = (f, r + dr // 2) if abs(dr) == 2 else (f + df // 2, r)
            if _on_board(tf, tr) and grid[leg[1]][leg[0]] == EMPTY and free_or_enemy(tf, tr):
                out.append((tf, tr))
    elif kind in "rc":
        out.extend(_line_targets(grid, f, r, kind == "c", side))
    elif kind == "p":
        fwd = 1 if side == RED else -1
        steps = [(0, fwd)]
        if not _own_half(side, r):
            steps += [(1, 0), (-1, 0)]
        for df, dr in steps:
            tf, tr = f + df, r + dr
            if free_or_enemy(tf, tr):
                out.append((tf, tr))
    return out


def pseudo_legal_moves(grid, side):
    """[((from_file, from_rank), (to_file, to_rank)), ...] for ``side``, checks ignored."""
    moves = []
    for r in range(10):
        for f in range(9):
            if side_of(grid[r][f]) == side:
                moves.extend(((f, r), t) for t in _targets(grid, f, r))
    return moves


def find_general(grid, side):
    want = "K" if side == RED else "k"
    for r in range(10):
        for f in range(9):
            if grid[r][f] == want:
                return f, r
    return None


_HORSE_MOVES = ((1, 2), (-1, 2), (1, -2), (-1, -2), (2, 1), (2, -1), (-2, 1), (-2, -1))


def in_check(grid, side):
    """True if ``side``'s general is attacked, or faces the other general on an open file.

    Looks outward from the general (:func:`attackers`) instead of generating
    every enemy move: about 10x faster, and the same answer as "some
    pseudo-legal enemy move lands on the general" (the tests compare the two)."""
    g = find_general(grid, side)
    if g is None:
        return True
    f, r = g
    other_general = "k" if side == RED else "K"
    for dr in (1, -1):  # the flying general: the first piece up or down the file
        tr = r + dr
        while 0 <= tr < 10:
            p = grid[tr][f]
            if p != EMPTY:
                if p == other_general:
                    return True
                break
            tr += dr
    return bool(attackers(grid, g, other(side)))


def attackers(grid, square, side):
    """Squares ``(file, rank)`` of ``side``'s pieces that can move to ``square``
    (checks ignored): the pseudo-legal captures of a piece standing there, or the
    moves onto it when it is empty. Looks outward from the square like
    :func:`in_check`; the tests compare it with :func:`pseudo_legal_moves`."""
    f, r = square
    if side_of(grid[r][f]) == side:
        return []
    upper = side == RED
    capture = grid[r][f] != EMPTY  # a cannon moves onto an empty point like a chariot, captures over a screen
    out = []
    for df, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # chariot, cannon, general (one step)
        tf, tr = f + df, r + dr
        screened = False
        while 0 <= tf < 9 and 0 <= tr < 10:
            p = grid[tr][tf]
            if p != EMPTY:
                mine = p.isupper() == upper
                kind = p.lower()
                if not screened:
                    if mine and (kind == "r" or (kind == "c" and not capture)
                                 or (kind == "k" and tf == f + df and tr == r + dr and _in_palace(side, f, r))):
                        out.append((tf, tr))
                    if not capture:
                        break
                    screened = True
                else:
                    if mine and kind == "c":
                        out.append((tf, tr))
                    break
            tf, tr = tf + df, tr + dr
    for df, dr in _HORSE_MOVES:  # a horse on (f - df, r - dr) moving by (df, dr)
        hf, hr = f - df, r - dr
        if 0 <= hf < 9 and 0 <= hr < 10:
            p = grid[hr][hf]
            if p.lower() == "n" and p.isupper() == upper:
                leg_f, leg_r = (hf, hr + dr // 2) if abs(dr) == 2 else (hf + df // 2, hr)
                if grid[leg_r][leg_f] == EMPTY:
                    out.append((hf, hr))
    if _in_palace(side, f, r):  # advisors
        for df in (1, -1):
            for dr in (1, -1):
                af, ar = f + df, r + dr
                if _in_palace(side, af, ar) and grid[ar][af] == ("A" if upper else "a"):
                    out.append((af, ar))
    if _own_half(side, r):  # elephants, with the eye between free
        for df in (2, -2):
            for dr in (2, -2):
                ef, er = f + df, r + dr
                if (0 <= ef < 9 and 0 <= er < 10 and grid[er][ef] == ("B" if upper else "b")
                        and grid[r + dr // 2][f + df // 2] == EMPTY):
                    out.append((ef, er))
    soldier = "P" if upper else "p"
    behind = r - 1 if upper else r + 1  # red soldiers move up the ranks, black ones down
    if 0 <= behind < 10 and grid[behind][f] == soldier:
        out.append((f, behind))
    if not _own_half(side, r):  # sideways only across the river
        for sf in (f - 1, f + 1):
            if 0 <= sf < 9 and grid[r][sf] == soldier:
                out.append((sf, r))
    return out


def apply(grid, move):
    """A new grid with ``move`` ((from), (to)) played."""
    (f0, r0), (f1, r1) = move
    new = [row[:] for row in grid]
    new[r1][f1] = new[r0][f0]
    new[r0][f0] = EMPTY
    return new


def legal_moves(grid, side):
    """Pseudo-legal moves that do not leave ``side``'s general attacked or facing."""
    return [m for m in pseudo_legal_moves(grid, side) if not in_check(apply(grid, m), side)]


def has_legal_move(grid, side):
    """True if ``side`` has a legal move (stops at the first): False is mate or stalemate."""
    return any(not in_check(apply(grid, m), side) for m in pseudo_legal_moves(grid, side))
