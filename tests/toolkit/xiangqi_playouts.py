"""Random playouts for the Xiangqi tests that compare a fast function with its definition."""

import random

from toolkit.xiangqi.rules import Position


def playout_positions(seed, games):
    """The positions of ``games`` random playouts of 40-160 plies (each yielded
    before its random move is played)."""
    rng = random.Random(seed)
    for _ in range(games):
        pos = Position()
        for _ in range(rng.randint(40, 160)):
            if pos.outcome() is not None:
                break
            yield pos
            pos.push(rng.choice(pos.legal_moves()))
