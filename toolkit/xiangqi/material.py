"""Material on the board and what one move wins or hangs (grid only: no pyffish).

Piece values are the usual rough ones of Xiangqi primers (chariot 9, cannon 4.5,
horse 4, elephant and advisor 2, soldier 1; the general is never captured). The
exchange arithmetic is a two-ply static exchange, the simplest form of the
"static exchange evaluation" of chess programs (see the Chess Programming Wiki,
*Static Exchange Evaluation*):

    gain(grid, side) = max(0, max over side's legal captures c of
                               value(captured by c) - [the victim's side can take back
                                                      on that square] * value(capturer))

    move_balance(grid, move) = value(captured by move) - gain(grid after move, opponent)

so a move that leaves a piece where it is taken for free scores minus its value,
a capture of an undefended piece plus its value, and a capture of a defended
piece by a cheaper one the difference. One exchange only: deeper combinations,
pins and checks are not seen. The player's guard (:mod:`.player`) uses it to
keep the model from giving material away and to make it take what is free.

>>> from . import movegen
>>> g = movegen.grid_from_fen("3k5/9/9/9/9/5r3/9/9/9/R3K4 w - - 0 1")
>>> material(g, "red"), material(g, "black")
(9.0, 9.0)
>>> move_balance(g, ((0, 0), (0, 4)))  # a0-a4: the chariot is free for the black one
-9.0
>>> move_balance(g, ((0, 0), (0, 1)))  # a0-a1: safe
0.0
"""

from . import movegen

PIECE_VALUES = {"r": 9.0, "n": 4.0, "c": 4.5, "b": 2.0, "a": 2.0, "p": 1.0, "k": 0.0}


def value(piece):
    """Value of a FEN letter (0 for an empty point and the general)."""
    return 0.0 if piece == movegen.EMPTY else PIECE_VALUES[piece.lower()]


def material(grid, side):
    """Material of ``side`` (chariot 9, cannon 4.5, horse 4, elephant and advisor 2, soldier 1)."""
    return sum(value(p) for row in grid for p in row if movegen.side_of(p) == side)


def exchange_gain(grid, side):
    """The most material ``side`` (to move) wins by one legal capture when the
    other side takes back on the same point whenever it legally can (0 if no
    capture gains anything)."""
    them = movegen.other(side)
    best = 0.0
    for r in range(10):
        for f in range(9):
            victim = grid[r][f]
            if victim == movegen.EMPTY or movegen.side_of(victim) != them:
                continue
            v = value(victim)
            if v <= best:
                continue  # cannot beat the best already found
            for a in movegen.attackers(grid, (f, r), side):
                after = movegen.apply(grid, (a, (f, r)))
                if movegen.in_check(after, side):
                    continue  # illegal capture
                gain = v
                capturer = value(grid[a[1]][a[0]])
                if capturer > 0 and any(not movegen.in_check(movegen.apply(after, (b, (f, r))), them)
                                        for b in movegen.attackers(after, (f, r), them)):
                    gain = v - capturer
                if gain > best:
                    best = gain
                    if best >= v:
                        break
    return best


def move_balance(grid, move):
    """Material the mover nets with ``move`` ((from), (to)) after the opponent's
    best single exchange in reply: captured value minus :func:`exchange_gain`
    of the opponent in the position after it."""
    (f0, r0), (f1, r1) = move
    side = movegen.side_of(grid[r0][f0])
    return value(grid[r1][f1]) - exchange_gain(movegen.apply(grid, move), movegen.other(side))


__all__ = ["PIECE_VALUES", "value", "material", "exchange_gain", "move_balance"]
