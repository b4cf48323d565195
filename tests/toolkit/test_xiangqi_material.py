"""toolkit.xiangqi.material: piece values, the one-exchange gain against its
definition on thousands of grids, hand-made balances."""

from toolkit.xiangqi import movegen
from toolkit.xiangqi.material import PIECE_VALUES, exchange_gain, material, move_balance, value

from .xiangqi_playouts import playout_positions


def gain_by_definition(grid, side):
    """max(0, captured - capturer if the victim's side has a legal move onto the point else captured)
    over ``side``'s legal captures, from full legal move lists."""
    them = movegen.other(side)
    best = 0.0
    for a, t in movegen.legal_moves(grid, side):
        victim = grid[t[1]][t[0]]
        if victim == movegen.EMPTY:
            continue
        after = movegen.apply(grid, (a, t))
        retake = any(to == t for _, to in movegen.legal_moves(after, them))
        best = max(best, value(victim) - (value(grid[a[1]][a[0]]) if retake else 0.0))
    return best


def playout_grids(seed, games, per_move=4):
    """Grids of random playouts and grids one pseudo-legal move away from them
    (so pieces hang, are defended and attacked in every way)."""
    for pos in playout_positions(seed, games):
        grid = pos.board()
        yield grid
        for move in movegen.pseudo_legal_moves(grid, pos.turn)[::per_move]:
            after = movegen.apply(grid, move)
            if not movegen.in_check(after, pos.turn):
                yield after


def test_exchange_gain_equals_its_definition():
    n = positive = partial = 0
    for grid in playout_grids(5, 2, per_move=6):
        for side in (movegen.RED, movegen.BLACK):
            if movegen.in_check(grid, movegen.other(side)):
                continue  # the side not to move may not be in check
            want = gain_by_definition(grid, side)
            assert exchange_gain(grid, side) == want, (grid, side)
            n += 1
            positive += want > 0
            partial += want > 0 and want not in PIECE_VALUES.values()  # a defended piece taken by a cheaper one
    assert n > 1500 and positive > 300 and partial > 20, (n, positive, partial)


def test_move_balance_on_hand_made_positions():
    # red chariot a0, black chariot a5 on the open a-file: taking it wins 9, leaving the file saves 9
    g = movegen.grid_from_fen("3k5/9/9/9/r8/9/9/9/9/R3K4 w - - 0 1")
    assert move_balance(g, ((0, 0), (0, 5))) == 9.0
    assert move_balance(g, ((0, 0), (0, 1))) == -9.0  # still on the file
    assert move_balance(g, ((0, 0), (1, 0))) == 0.0
    assert move_balance(g, ((4, 0), (4, 1))) == -9.0  # a general move leaves the chariot hanging
    # a soldier defended by a horse: the chariot that takes it is lost (1 - 9)
    g = movegen.grid_from_fen("3k5/9/9/9/2p6/9/1n7/9/9/2R1K4 w - - 0 1")
    assert [value(p) for p in "pnR."] == [1.0, 4.0, 9.0, 0.0]
    assert move_balance(g, ((2, 0), (2, 5))) == 1.0 - 9.0  # c0xc5, b3 horse takes back
    assert material(g, "red") == 9.0 and material(g, "black") == 5.0
    assert exchange_gain(g, "black") == 0.0  # nothing red is attacked
