"""Xiangqi rules through pyffish: outcomes on hand-made positions (mate,
stalemate = loss, perpetual check = loss for the checker, repetition,
n-move rule, bare generals, ply cap), legal moves against an independent
generator, push/pop, FEN handling and the ICCS <-> UCI conversion."""

import doctest
import random

import pyffish as sf
import pytest

from toolkit.xiangqi import movegen
from toolkit.xiangqi.coords import iccs_to_uci, make_iccs, normalize_iccs, parse_iccs, uci_to_iccs
from toolkit.xiangqi.rules import (START_FEN, IllegalMoveError, InvalidFenError, Position, first_illegal,
                                   normalize_fen, replay)

from .xiangqi_playouts import playout_positions

MATE_BLACK = "3k5/9/9/9/9/9/9/9/9/3RK4 b - - 0 1"          # chariot d0 checks, e9 faces the red general
STALEMATE_BLACK = "3k5/4R4/9/9/9/9/9/9/9/4K4 b - - 0 1"    # d9 general: every move runs into the e8 chariot
PERPETUAL = "4k4/9/9/9/9/R8/9/9/9/5K3 w - - 0 1"            # red chariot can check forever on d/e files


def test_iccs_uci_conversion():
    assert iccs_to_uci("h2e2") == "h3e3" and uci_to_iccs("h3e3") == "h2e2"
    assert iccs_to_uci("b9c7") == "b10c8" and uci_to_iccs("b10c8") == "b9c7"
    assert normalize_iccs("H2-E2") == "h2e2" and parse_iccs("a0i9") == ((0, 0), (8, 9))
    for bad in ("h2e", "j2e2", "h2e10", ""):
        with pytest.raises(ValueError):
            iccs_to_uci(bad)
    assert Position().legal_moves() == sorted(uci_to_iccs(m) for m in sf.legal_moves("xiangqi", START_FEN, []))


def test_start_position():
    pos = Position()
    assert pos.fen() == START_FEN and pos.turn == "red" and pos.ply == 0
    assert len(pos.legal_moves()) == 44 and not pos.is_check() and pos.outcome() is None
    grid = pos.board()
    assert len(grid) == 10 and all(len(row) == 9 for row in grid)
    assert "".join(grid[0]) == "RNBAKABNR" and "".join(grid[9]) == "rnbakabnr"
    assert grid[2][1] == grid[2][7] == "C" and grid[7][1] == "c" and grid[5][4] == "."
    assert pos.piece_at("e0") == "K" and pos.piece_at("e9") == "k" and pos.piece_at("e5") is None
    assert "h2e2" in pos.legal_moves() and "h9g7" not in pos.legal_moves()


def test_checkmate():
    pos = Position.from_fen(MATE_BLACK)
    assert pos.is_check() and pos.legal_moves() == []
    assert pos.outcome() == ("red", "checkmate")
    # red mated: the chariot on e1 is guarded by the general across the open e-file
    # (taking it would let the generals face), d0 and f0 are covered by chariots
    red_mated = Position.from_fen("4k4/3r1r3/9/9/9/9/9/9/4r4/4K4 w - - 0 1")
    assert red_mated.is_check() and red_mated.outcome() == ("black", "checkmate")
    # a mate played on the board: the chariot slides to d0
    pos = Position.from_fen("3k5/9/9/9/9/9/9/9/9/R3K4 w - - 0 1")
    assert pos.outcome() is None
    pos.push("a0d0")
    assert pos.outcome() == ("red", "checkmate") and pos.outcome().termination == "checkmate"


def test_stalemate_is_a_loss():
    pos = Position.from_fen(STALEMATE_BLACK)
    assert not pos.is_check() and pos.legal_moves() == []
    assert pos.outcome() == ("red", "stalemate")
    # mirror: red to move, no move, not in check -> black wins
    red = Position.from_fen("4k4/9/9/9/9/9/9/9/4r4/3K5 w - - 0 1")
    assert not red.is_check() and red.legal_moves() == []
    assert red.outcome() == ("black", "stalemate")


def test_perpetual_check_loses():
    pos = Position.from_fen(PERPETUAL)
    cycle = ["e4d4", "d9e9", "d4e4", "e9d9"]
    pos.push("a4e4")
    pos.push("e9d9")
    assert pos.outcome() is None
    played = 2
    while pos.outcome() is None:
        pos.push(cycle[(played - 2) % 4])
        played += 1
        assert played < 20
    assert pos.outcome() == ("black", "perpetual_check")
    assert pos.repetitions() == 3 and pos.is_check()
    assert played == 9  # third occurrence of the position after the first check


def test_perpetual_chase_loses():
    """pyffish also knows the chasing rule: red's chariot attacking the same
    unprotected cannon move after move loses."""
    pos = Position.from_fen("4k4/9/9/9/2c6/R8/9/9/9/3K5 w - - 0 1")
    cycle = ["a5a6", "c6c5", "a6a5", "c5c6"]
    pos.push("a4a5")
    pos.push("c5c6")
    while pos.outcome() is None:
        pos.push(cycle[(pos.ply - 2) % 4])
        assert pos.ply < 20
    assert pos.outcome() == ("black", "perpetual_chase") and not pos.is_check()


def test_repetition_draw():
    pos = Position()
    shuffle = ["b0c2", "b9c7", "c2b0", "c7b9"]
    for i in range(8):
        assert pos.outcome() is None
        pos.push(shuffle[i % 4])
    assert pos.outcome() == ("draw", "repetition")
    assert pos.fen().split()[:2] == START_FEN.split()[:2] and pos.repetitions() == 3


def test_move_rule_insufficient_material_and_ply_cap():
    pos = Position.from_fen("r3k4/9/9/9/9/9/9/9/9/R2K5 w - - 99 60")
    assert pos.outcome() is None
    pos.push("a0a1")
    assert pos.outcome() == ("draw", "move_rule")
    bare = Position.from_fen("3ak4/4a4/9/9/9/9/9/9/4A4/3AK4 w - - 0 1")
    assert bare.outcome() == ("draw", "insufficient_material")
    assert Position.from_fen("4k4/9/9/9/4P4/9/9/9/9/3K5 w - - 0 1").outcome() is None  # a soldier can still mate
    pos = Position()
    assert pos.outcome(max_plies=0) == ("draw", "move_limit")
    pos.push("h2e2")
    assert pos.outcome(max_plies=2) is None
    pos.push("h9g7")
    assert pos.outcome(max_plies=2) == ("draw", "move_limit")


def test_push_pop_restores_everything():
    rng = random.Random(7)
    pos = Position()
    fens, legal = [pos.fen()], [pos.legal_moves()]
    for _ in range(40):
        if pos.outcome() is not None:
            break
        pos.push(rng.choice(pos.legal_moves()))
        fens.append(pos.fen())
        legal.append(pos.legal_moves())
    moves = pos.moves
    replayed = Position.from_moves(moves)
    assert replayed.fen() == pos.fen() and replayed.moves == moves
    assert replayed.repetitions() == pos.repetitions()
    clone = pos.copy()
    for i in range(len(moves) - 1, -1, -1):
        assert pos.pop() == moves[i]
        assert pos.fen() == fens[i] and pos.legal_moves() == legal[i] and pos.ply == i
    with pytest.raises(IndexError):
        pos.pop()
    assert clone.moves == moves  # the copy is independent
    assert replayed.pop() == moves[-1] and replayed.fen() == fens[-2]


def test_push_refuses_illegal_moves_and_leaves_the_position_alone():
    pos = Position.from_moves(["h2e2", "h9g7"])
    before = pos.fen()
    for move, reason in [("e4e5", "no piece there"), ("g7e8", "not your piece"),
                         ("h0h2", "illegal: piece cannot move there"), ("xx", "unparseable")]:
        with pytest.raises(IllegalMoveError) as err:
            pos.push(move)
        assert err.value.reason == reason
        assert pos.fen() == before and pos.ply == 2
    pinned = Position.from_fen("3k5/4r4/9/9/9/9/4R4/9/9/4K4 w - - 0 1")
    with pytest.raises(IllegalMoveError) as err:
        pinned.push("e3d3")
    assert err.value.reason == "illegal: leaves general in check"
    pos.push("E2-E6")  # ICCS with a dash and upper case
    assert pos.moves[-1] == "e2e6"
    with pytest.raises(IllegalMoveError):
        Position.from_moves(["h2e2", "h2e2"])


def test_legal_moves_match_an_independent_generator():
    """Our own piece geometry (movegen) filtered by its own check test must give
    exactly pyffish's legal moves on random playouts and on hand-made positions."""
    rng = random.Random(3)
    fens = [MATE_BLACK, STALEMATE_BLACK, PERPETUAL, "3k5/4r4/9/9/9/9/4R4/9/9/4K4 w - - 0 1"]
    for game in range(3):
        pos = Position()
        for _ in range(90):
            if pos.outcome() is not None:
                break
            fens.append(pos.fen())
            pos.push(rng.choice(pos.legal_moves()))
    for fen in fens[::2]:
        pos = Position.from_fen(fen)
        grid = pos.board()
        mine = sorted(make_iccs(a, b) for a, b in movegen.legal_moves(grid, pos.turn))
        assert mine == pos.legal_moves(), fen
        assert movegen.in_check(grid, pos.turn) == pos.is_check(), fen
        assert movegen.has_legal_move(grid, pos.turn) == bool(pos.legal_moves()), fen


def test_cached_outcomes_follow_push_pop_copy_and_pickling():
    """The outcome is kept per ply: pushing a mate, popping it, copying and pickling the
    position give the rules' answer each time, and the ply cap is applied on top of it."""
    import pickle

    pos = Position.from_fen("3k5/9/9/9/9/9/9/9/R8/1R2K4 w - - 0 1")
    assert pos.outcome() is None and pos.outcome(max_plies=0).termination == "move_limit"
    pos.push("a1d1")
    assert pos.outcome() == ("red", "checkmate") and pos.outcome(max_plies=1) == ("red", "checkmate")
    for copied in (pos.copy(), pickle.loads(pickle.dumps(pos))):
        assert copied.outcome() == ("red", "checkmate") and copied.moves == ["a1d1"]
        copied.pop()
        assert copied.outcome() is None and "a1d1" in copied.legal_moves()
    pos.pop()
    assert pos.outcome() is None
    pos.push("a1a2")
    assert pos.outcome() is None and pos.turn == "black"


def test_in_check_equals_every_enemy_move_test():
    """movegen.in_check looks outward from the general; the definition is "some
    pseudo-legal enemy move lands on it, or the generals face on an open file".
    Both agree for both sides on every grid one pseudo-legal move away from the
    positions of random playouts (thousands of grids, many of them checks)."""

    def by_definition(grid, side):
        g = movegen.find_general(grid, side)
        e = movegen.find_general(grid, movegen.other(side))
        if g is None:
            return True
        if e is not None and e[0] == g[0] and all(grid[r][g[0]] == movegen.EMPTY
                                                  for r in range(min(e[1], g[1]) + 1, max(e[1], g[1]))):
            return True
        return any(t == g for _, t in movegen.pseudo_legal_moves(grid, movegen.other(side)))

    grids = checks = 0
    for pos in playout_positions(11, 4):
        grid = pos.board()
        for move in movegen.pseudo_legal_moves(grid, pos.turn)[::3]:
            after = movegen.apply(grid, move)
            for side in (movegen.RED, movegen.BLACK):
                want = by_definition(after, side)
                assert movegen.in_check(after, side) == want, (pos.fen(), move, side)
                grids += 1
                checks += want
    assert grids > 5000 and checks > 200


def test_attackers_equal_the_pseudo_legal_moves_onto_a_point():
    """movegen.attackers looks outward from a point; it must list exactly the
    pieces whose pseudo-legal moves land there, for both sides, on every point
    of grids from random playouts (empty points, own and enemy pieces)."""
    points = found = 0
    for pos in playout_positions(12, 2):
        grid = pos.board()
        for side in (movegen.RED, movegen.BLACK):
            onto = {}
            for a, t in movegen.pseudo_legal_moves(grid, side):
                onto.setdefault(t, []).append(a)
            for r in range(10):
                for f in range(9):
                    got = movegen.attackers(grid, (f, r), side)
                    assert sorted(got) == sorted(onto.get((f, r), [])), (pos.fen(), side, (f, r))
                    points += 1
                    found += len(got)
    assert points > 20000 and found > 5000, (points, found)


def test_fen_handling():
    assert normalize_fen(None) == normalize_fen("") == normalize_fen("startpos") == START_FEN
    assert normalize_fen(START_FEN.replace(" w ", " r ")) == START_FEN
    assert normalize_fen(START_FEN.split()[0]) == START_FEN  # board only
    assert normalize_fen("rheakaehr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RHEAKAEHR w - - 0 1") == START_FEN
    assert Position.from_fen(START_FEN.replace(" w ", " b ")).turn == "black"
    for bad in ("garbage", "rnbakabnr/9/9 w - - 0 1", START_FEN.replace("K", "1"),
                "4k4/9/9/9/9/9/9/9/9/4K4 w - - 0 1",       # generals face each other
                "3k5/9/9/9/9/9/9/9/9/3RK4 w - - 0 1",      # black (not to move) is in check
                "4k4/9/9/9/9/9/9/9/9/4K3A w - - 0 1",      # advisor outside the palace
                "4k4/9/9/9/9/9/9/9/9/3KB4 w - - 0 1",      # elephant off its points
                "4k4/9/9/9/4B4/9/9/9/9/3K5 w - - 0 1",     # elephant across the river
                "4k4/9/9/9/9/9/9/9/P8/3K5 w - - 0 1",      # soldier behind its start
                "4k4/9/9/9/9/9/1P7/9/9/3K5 w - - 0 1",     # soldier on an odd file before the river
                "4k4/9/9/9/9/9/9/9/9/K8 w - - 0 1"):       # general outside the palace
        with pytest.raises(InvalidFenError):
            Position.from_fen(bad)


def test_first_illegal_and_replay():
    moves = ["h2e2", "h9g7", "h0g2", "i9h9", "i0h0", "b9c7"]
    assert first_illegal(moves) is None
    assert replay(moves) == Position.from_moves(moves).fen()
    for i in range(len(moves)):
        broken = moves[:i] + ["e4e6"] + moves[i + 1:]
        assert first_illegal(broken) == i
    assert first_illegal(["h2e2", "zz"]) == 1
    with pytest.raises(ValueError):
        replay(["h2e2", "h2e2"])


def test_docstring_examples():
    import toolkit.xiangqi as pkg
    from toolkit.xiangqi import coords, engine, movegen, notation, records, rules

    for mod in (pkg, coords, movegen, rules, notation, records, engine):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__
