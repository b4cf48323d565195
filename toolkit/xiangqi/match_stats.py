"""Match statistics that stay honest at small numbers of games (framework-free).

The score (win 1, draw 1/2, loss 0, averaged) gets a 95% Wilson score interval
(Wilson 1927), treating the score as a binomial proportion: conservative when
there are draws (a game's score varies at most as much as a win/loss), never
empty at 0 or 1, and sound for a handful of games, where the normal
approximation collapses to a point. The Elo interval is the Elo of the score
interval's ends: a perfect score has no upper bound (``elo_high`` is None), a
zero score no lower bound. A point Elo estimate is given only from
:data:`MIN_GAMES_FOR_ELO` games on and for a score strictly between 0 and 1;
otherwise ``elo`` is None and :func:`format_elo` says why.

>>> s = match_summary([1, 1])
>>> s["elo"] is None, s["elo_high"] is None, round(s["score_low"], 3)
(True, True, 0.342)
>>> format_elo(s)
'n/a (2 games; an Elo estimate needs >= 10)'
"""

import math

MIN_GAMES_FOR_ELO = 10
Z_95 = 1.96


def elo_from_score(score):
    """Elo difference of an expected score in [0, 1]: ``-400 log10(1/score - 1)``,
    ``-inf`` at 0 and ``+inf`` at 1 (no clamping)."""
    if score <= 0:
        return -math.inf
    if score >= 1:
        return math.inf
    return -400.0 * math.log10(1.0 / score - 1.0) + 0.0  # + 0.0: no '-0'


def score_interval(score, n, z=Z_95):
    """Wilson score interval for a mean score ``score`` over ``n`` games; the
    ends are exactly 0 and 1 at a zero and a perfect score (0 wins of 100
    games: score <= 0.037 at 95%)."""
    if n < 1:
        raise ValueError(f"a score interval needs at least one game, got n={n}")
    z2 = z * z
    centre = (score + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(score * (1 - score) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if score <= 0 else max(0.0, centre - half)
    high = 1.0 if score >= 1 else min(1.0, centre + half)
    return low, high


def _finite_or_none(value):
    return value if math.isfinite(value) else None


def match_summary(points, min_games=MIN_GAMES_FOR_ELO):
    """``points``: per-game scores of the player (1, 0.5, 0). W/D/L, the score
    with its 95% Wilson interval (``score_low``, ``score_high``), and the Elo:
    ``elo_low``/``elo_high`` are the Elo of the interval's ends (None when
    unbounded), ``elo`` the point estimate (None with fewer than ``min_games``
    games or a zero or perfect score)."""
    n = len(points)
    if n == 0:
        raise ValueError("no games")
    wins = sum(1 for p in points if p == 1)
    draws = sum(1 for p in points if p == 0.5)
    losses = n - wins - draws
    score = sum(points) / n
    low, high = score_interval(score, n)
    elo = _finite_or_none(elo_from_score(score)) if n >= min_games else None
    return {"games": n, "wins": wins, "draws": draws, "losses": losses, "score": score,
            "score_low": low, "score_high": high, "elo": elo,
            "elo_low": _finite_or_none(elo_from_score(low)), "elo_high": _finite_or_none(elo_from_score(high)),
            "elo_min_games": min_games}


def format_elo(summary):
    """The Elo of a :func:`match_summary` in words: ``+89 [-143, +319]``,
    ``>= +165`` (a perfect score), ``<= -165`` (a zero score), or why there is
    no estimate (too few games)."""
    n = summary["games"]
    low, high = summary.get("elo_low"), summary.get("elo_high")
    min_games = summary.get("elo_min_games", MIN_GAMES_FOR_ELO)
    if n < min_games:
        return f"n/a ({n} game{'s' if n != 1 else ''}; an Elo estimate needs >= {min_games})"
    if high is None and low is not None:
        return f">= {low:+.0f}"
    if low is None and high is not None:
        return f"<= {high:+.0f}"
    if summary.get("elo") is None or low is None:
        return "n/a"
    return f"{summary['elo']:+.0f} [{low:+.0f}, {high:+.0f}]"


def format_score(summary):
    """``0.625 [0.306, 0.863]``: the score and its 95% interval (just the score
    for a summary without the interval, e.g. an old ``--json`` file)."""
    if "score_low" not in summary:
        return f"{summary['score']:.3f}"
    return f"{summary['score']:.3f} [{summary['score_low']:.3f}, {summary['score_high']:.3f}]"


__all__ = ["MIN_GAMES_FOR_ELO", "elo_from_score", "score_interval", "match_summary", "format_elo", "format_score"]
