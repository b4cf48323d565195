"""toolkit.xiangqi.player: only legal moves over thousands of random positions
(cheap fake scorers), a forced mate in one, hints, the Elo summary."""

import math
import random

import pytest

from toolkit.xiangqi.coords import make_iccs, parse_iccs
from toolkit.xiangqi.player import (Player, RandomPlayer, elo_from_score, match_summary, mate_in_two, mating_move,
                                    move_balance, move_hazard, play_game, random_opening, score_interval)
from toolkit.xiangqi.rules import Position

MATE_IN_ONE = "3k5/9/9/9/9/9/9/9/R8/4K4 w - - 0 1"  # a1d1 mates (flying general covers e9)
MATE_IN_TWO = "3aka3/9/9/5N3/R8/9/9/9/9/3K5 w - - 0 1"  # f6g8+ e9e8 a5a8#: no mate in one
WALKS_INTO_MATE = "3k5/9/9/P8/9/r8/9/3n5/4K4/3A1A3 w - - 0 1"  # e1d1 lets black mate in one
FREE_CHARIOT = "5k3/9/9/9/r8/9/9/9/9/R2K5 w - - 0 1"  # a0a5 takes a chariot nothing defends
HANGING_CANNON = "r2k5/9/9/9/9/9/4P4/C8/9/4K4 w - - 0 1"  # the a9 chariot attacks the a2 cannon


class FakeScorer:
    """Random scores; records that it was only ever asked about legal moves."""

    def __init__(self, seed=0, prefer=None, avoid=None):
        self.rng = random.Random(seed)
        self.calls = 0
        self.prefer, self.avoid = prefer, avoid

    def score(self, history, candidates, condition=None):
        assert condition in ("red", "black", "draw", "any")
        self.calls += 1
        out = []
        for m in candidates:
            s = self.rng.uniform(-5, 0)
            if m == self.prefer:
                s = 1.0
            if m == self.avoid:
                s = -100.0
            out.append(s)
        return out


class HistoryScorer:
    """Scores by history only, cheap: ignores the position."""

    def score(self, history, candidates, condition=None):
        return [float(hash((len(history), m)) % 1000) for m in candidates]


def test_only_legal_moves_over_thousands_of_positions():
    """3 players x 1,000 random positions (each pyffish call costs ~1-5 ms, so
    the positions, not the player, dominate the run time)."""
    rng = random.Random(0)
    greedy = Player(HistoryScorer(), mate_check=False, guard=False)
    sampler = Player(FakeScorer(1), temperature=1.0, mate_check=False, guard=False, seed=2)
    checked = Player(FakeScorer(3), temperature=1.0, seed=4)  # mate check and guard
    n = choices = 0
    while n < 1000:
        pos = Position()
        for ply in range(rng.randint(20, 150)):
            legal = pos.legal_moves()
            if not legal:
                break
            for player in (greedy, sampler) + ((checked,) if n % 5 == 0 else ()):
                mv = player.choose(pos)
                assert mv in legal, (mv, pos.fen())
                choices += 1
            n += 1
            pos.push(rng.choice(legal))
    assert choices >= 2000


def test_no_legal_moves_returns_none():
    pos = Position.from_fen("3k5/9/9/9/9/9/9/9/9/3RK4 b - - 0 1")  # black is mated
    assert Player(FakeScorer()).choose(pos) is None


def test_finds_mate_in_one_even_when_the_scorer_dislikes_it():
    pos = Position.from_fen(MATE_IN_ONE)
    assert mating_move(pos) == "a1d1"
    player = Player(FakeScorer(prefer="a1a9", avoid="a1d1"))
    mv = player.choose(pos)
    assert mv == "a1d1"
    pos.push(mv)
    out = pos.outcome()
    assert out.result == "red" and out.termination == "checkmate"
    hint = player.hint(Position.from_fen(MATE_IN_ONE), k=3)
    assert hint[0][0] == "a1d1" and len(hint) == 3
    # without the mate check and the guard (which would find it as a "mate in two") the scorer's favourite is played
    pure = Player(FakeScorer(prefer="a1a9", avoid="a1d1"), mate_check=False, guard=False)
    assert pure.choose(Position.from_fen(MATE_IN_ONE)) == "a1a9"


def test_guard_plays_a_forced_mate_in_two_by_checks():
    pos = Position.from_fen(MATE_IN_TWO)
    assert mating_move(pos) is None
    mv = mate_in_two(pos)
    assert mv == "f6g8" and pos.gives_check(mv)
    pos.push(mv)
    replies = pos.legal_moves()
    assert replies
    for reply in replies:  # every answer allows a mate
        pos.push(reply)
        mate = mating_move(pos)
        assert mate is not None
        pos.push(mate)
        assert pos.outcome().result == "red"
        pos.pop()
        pos.pop()
    pos.pop()
    assert Player(FakeScorer(prefer="a5a6", avoid="f6g8")).choose(pos) == "f6g8"
    assert Player(FakeScorer(prefer="a5a6", avoid="f6g8"), guard=False).choose(pos) == "a5a6"
    assert Player(FakeScorer(prefer="a5a6")).hint(pos, k=2)[0][0] == "f6g8"
    assert mate_in_two(Position()) is None


def test_guard_does_not_walk_into_a_mate_in_one():
    pos = Position.from_fen(WALKS_INTO_MATE)
    assert move_hazard(pos, "e1d1") == 2
    pos.push("e1d1")
    assert mating_move(pos) is not None
    pos.pop()
    assert Player(FakeScorer(prefer="e1d1"), guard=False).choose(pos) == "e1d1"
    mv = Player(FakeScorer(prefer="e1d1")).choose(pos)
    assert mv != "e1d1" and move_hazard(pos, mv) == 0
    pos.push(mv)
    assert mating_move(pos) is None
    # every move is hazardous: the model's favourite among the least bad
    only_bad = Position.from_fen("3k5/9/9/9/9/r8/9/3n5/4K4/3A1A3 w - - 0 1")
    assert sorted(only_bad.legal_moves()) == ["e1d1", "e1e2"] and move_hazard(only_bad, "e1e2") == 0


def test_guard_takes_free_material_and_saves_a_hanging_piece():
    grid = Position.from_fen(FREE_CHARIOT).board()
    assert move_balance(grid, parse_iccs("a0a5")) == 9.0 and move_balance(grid, parse_iccs("a0b0")) == 0.0
    pos = Position.from_fen(FREE_CHARIOT)
    assert Player(FakeScorer(prefer="a0b0", avoid="a0a5")).choose(pos) == "a0a5"
    assert Player(FakeScorer(prefer="a0b0"), guard=False).choose(pos) == "a0b0"
    assert Player(FakeScorer(prefer="a0b0"), material_margin=None).choose(pos) == "a0b0"
    assert Player(FakeScorer(prefer="a0b0"), material_margin=9.0).choose(pos) == "a0b0"  # within the margin

    pos = Position.from_fen(HANGING_CANNON)
    grid = pos.board()
    assert move_balance(grid, parse_iccs("e3e4")) == -4.5
    for seed in range(5):  # whatever the model's order after its favourite, the cannon is saved
        mv = Player(FakeScorer(seed, prefer="e3e4")).choose(pos)
        assert mv != "e3e4" and move_balance(grid, parse_iccs(mv)) >= -1.0, mv
        after = Position.from_fen(HANGING_CANNON)
        after.push(mv)
        assert not [m for m in after.legal_moves() if after.piece_at(m[2:]) == "C"], mv  # nothing takes it
    assert Player(FakeScorer(prefer="e3e4"), guard=False).choose(pos) == "e3e4"
    hint = Player(FakeScorer(prefer="e3e4")).hint(pos, k=3)  # the hint leads with the guarded move
    assert hint[0][0] != "e3e4" and "e3e4" in [m for m, _ in hint] and len(hint) == 3
    assert Player(FakeScorer(prefer="e3e4"), guard=False).hint(pos, k=1)[0][0] == "e3e4"
    with pytest.raises(ValueError, match="material_margin"):
        Player(FakeScorer(), material_margin=-1)


def test_guard_order_losing_at_once_then_material_then_repetition(monkeypatch):
    """The guard's preference, with the balance and the hazard of each move
    made up: a sound (within the margin) harmless move in the model's order;
    else material is given up rather than lose at once (hazard 2), and a
    repetition when ahead (hazard 1) is kept rather than give material up."""
    import toolkit.xiangqi.player as player_module

    pos = Position()
    legal = pos.legal_moves()
    a, b, c, d = "h2e2", "b2e2", "h0g2", "c3c4"  # the model's order
    model = {a: 0.0, b: -1.0, c: -2.0, d: -3.0}

    class Fixed:
        def score(self, history, candidates, condition=None):
            return [model.get(m, -50.0) for m in candidates]

    def play(balance, hazard):
        monkeypatch.setattr(player_module, "move_balance", lambda grid, mv: balance.get(make_iccs(*mv), -20.0))
        monkeypatch.setattr(player_module, "move_hazard", lambda pos, mv, ahead=None: hazard.get(mv, 2))
        return Player(Fixed()).choose(pos)

    assert set(model) <= set(legal)
    sound = {a: 0.0, b: 0.0, c: 0.0, d: 0.0}
    assert play(sound, {a: 0, b: 0, c: 0, d: 0}) == a
    assert play(sound, {a: 2, b: 1, c: 0, d: 0}) == c  # first harmless one
    assert play({a: 0.0, b: -4.0, c: 0.0, d: 0.0}, {a: 2, b: 0, c: 0, d: 0}) == c  # b gives 4 away
    assert play({a: 0.0, b: -4.0, c: -9.0, d: 0.0}, {a: 2, b: 0, c: 0, d: 2}) == b  # less given away than c
    assert play({a: 0.0, b: -4.0, c: -9.0, d: 0.0}, {a: 2, b: 0, c: 0, d: 1}) == d  # repetition over material
    assert play({a: 0.0, b: -4.0, c: -9.0, d: 0.0}, {}) == a  # all lose at once: the model's favourite


def test_guard_avoids_repeating_a_position_only_when_ahead():
    moves = ["e9e8", "a5a6", "e8e9", "a6a5", "e9e8"]  # red to move; a5a6 would repeat the position after ply 2
    ahead = Position.from_fen("3aka3/9/9/9/R8/9/9/9/9/3K5 b - - 0 1")  # red: a rook against two advisors
    even = Position.from_fen("3aka3/9/9/9/R8/9/9/9/8r/3K5 b - - 0 1")  # a rook each
    for pos in (ahead, even):
        pos.push_many(moves)
    assert move_hazard(ahead, "a5a6") == 1 and move_hazard(even, "a5a6") == 0
    assert move_hazard(ahead, "a5a7") == 0
    assert Player(FakeScorer(prefer="a5a6")).choose(ahead) != "a5a6"
    assert Player(FakeScorer(prefer="a5a6")).choose(even) == "a5a6"
    assert Player(FakeScorer(prefer="a5a6"), guard=False).choose(ahead) == "a5a6"


def test_sampling_follows_the_softmax_of_the_scores():
    """Gumbel-max order: the first move is a sample of softmax(score / T)."""
    scores = {"h2e2": 0.0, "b2e2": -1.0, "h0g2": -2.0}

    class Fixed:
        def score(self, history, candidates, condition=None):
            return [scores.get(m, -50.0) for m in candidates]

    for temperature in (1.0, 0.5):
        player = Player(Fixed(), temperature=temperature, mate_check=False, guard=False, seed=3)
        pos = Position()
        counts = {}
        n = 4000
        for _ in range(n):
            mv = player.choose(pos)
            counts[mv] = counts.get(mv, 0) + 1
        z = sum(math.exp(s / temperature) for s in scores.values())
        for mv, s in scores.items():
            p = math.exp(s / temperature) / z
            assert abs(counts.get(mv, 0) / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 0.005, (mv, counts)


def test_condition_is_passed_to_the_scorer():
    seen = []

    class Spy:
        def score(self, history, candidates, condition=None):
            seen.append(condition)
            return [0.0] * len(candidates)

    pos = Position()
    Player(Spy(), condition="own").choose(pos)
    pos.push("h2e2")
    Player(Spy(), condition="own").choose(pos)
    Player(Spy(), condition="any").choose(pos)
    assert seen == ["red", "black", "any"]
    with pytest.raises(ValueError):
        Player(Spy(), condition="win")


def test_play_game_and_match_summary():
    pos, out = play_game(RandomPlayer(1), RandomPlayer(2), max_plies=30)
    assert out is not None and pos.ply <= 30
    opening = random_opening(4, "x")
    assert len(opening) == 4 and opening == random_opening(4, "x") != random_opening(4, "y")
    pos, out = play_game(RandomPlayer(1), RandomPlayer(2), max_plies=10, opening=opening)
    assert pos.moves[:4] == opening and pos.ply == 10
    s = match_summary([1, 1, 0.5, 0] * 3)
    assert (s["games"], s["wins"], s["draws"], s["losses"]) == (12, 6, 3, 3)
    assert s["score"] == pytest.approx(0.625)
    assert s["elo"] == pytest.approx(-400 * math.log10(1 / 0.625 - 1))
    assert s["elo_low"] < s["elo"] < s["elo_high"]
    assert match_summary([0.5] * 10)["elo"] == pytest.approx(0.0)
    lo, hi = score_interval(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


Z = 1.96


def wilson(wins, n):
    """The Wilson score interval written out from its formula (Wilson 1927)."""
    p = wins / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def elo(score):
    return -400 * math.log10(1 / score - 1)


def test_wilson_interval_known_values():
    # a perfect score w/w: the lower end simplifies to w / (w + z^2), the upper end to exactly 1
    assert score_interval(1.0, 1) == (pytest.approx(1 / (1 + Z * Z)), 1.0)
    assert score_interval(1.0, 1)[0] == pytest.approx(0.2066, abs=1e-4)
    assert score_interval(1.0, 2) == (pytest.approx(2 / (2 + Z * Z)), 1.0)
    assert score_interval(1.0, 2)[0] == pytest.approx(0.3424, abs=1e-4)
    assert score_interval(0.0, 2) == (0.0, pytest.approx(1 - 2 / (2 + Z * Z)))
    assert score_interval(0.5, 100) == pytest.approx(wilson(50, 100))
    assert score_interval(0.3, 20) == pytest.approx(wilson(6, 20))
    with pytest.raises(ValueError):
        score_interval(0.5, 0)


def test_elo_is_unbounded_at_the_ends_and_exact_inside():
    assert elo_from_score(0.75) == pytest.approx(elo(0.75))
    assert elo_from_score(0.5) == 0.0
    assert elo_from_score(1.0) == math.inf and elo_from_score(0.0) == -math.inf


def test_one_or_two_games_give_no_elo_estimate():
    one = match_summary([1])
    assert one["elo"] is None and one["elo_high"] is None  # not +0 [+0, +0]
    two = match_summary([1, 1])
    assert two["elo"] is None and two["elo_high"] is None  # not an estimate equal to its upper bound
    from toolkit.xiangqi.match_stats import format_elo

    assert one["score_low"] == pytest.approx(1 / (1 + Z * Z)) and one["score_high"] == 1.0
    assert one["elo_low"] == pytest.approx(elo(1 / (1 + Z * Z)))
    assert format_elo(one) == "n/a (1 game; an Elo estimate needs >= 10)"
    assert format_elo(two) == "n/a (2 games; an Elo estimate needs >= 10)"
    half = match_summary([1, 0] * 2)
    assert half["elo"] is None and half["elo_low"] == pytest.approx(elo(wilson(2, 4)[0]))
    assert half["elo_high"] == pytest.approx(elo(wilson(2, 4)[1]))


def test_elo_from_ten_games_with_bounds_from_the_wilson_ends():
    from toolkit.xiangqi.match_stats import format_elo

    s = match_summary([1] * 7 + [0.5] * 2 + [0])  # score 0.8 over 10 games
    low, high = wilson(8, 10)
    assert (s["score_low"], s["score_high"]) == (pytest.approx(low), pytest.approx(high))
    assert (s["elo"], s["elo_low"], s["elo_high"]) == (pytest.approx(elo(0.8)), pytest.approx(elo(low)),
                                                      pytest.approx(elo(high)))
    assert format_elo(s) == f"{elo(0.8):+.0f} [{elo(low):+.0f}, {elo(high):+.0f}]"
    # a perfect or zero score has no point estimate and one open end: a bound, not an interval
    perfect = match_summary([1] * 10)
    assert perfect["elo"] is None and perfect["elo_high"] is None
    assert perfect["elo_low"] == pytest.approx(elo(10 / (10 + Z * Z)))
    assert format_elo(perfect) == f">= {elo(10 / (10 + Z * Z)):+.0f}"
    zero = match_summary([0] * 100)  # 0 of 100 still allows a score up to ~3.6%
    assert zero["elo"] is None and zero["elo_low"] is None
    assert zero["elo_high"] == pytest.approx(elo(1 - 100 / (100 + Z * Z)))
    assert format_elo(zero) == f"<= {elo(1 - 100 / (100 + Z * Z)):+.0f}"
