"""Random legal game records for the Xiangqi GPT tests (data, training, scoring)."""

import random

from toolkit.xiangqi.records import GameRecord, GameWriter
from toolkit.xiangqi.rules import Position


def random_games(n, seed=0, plies=30):
    """``n`` random playouts of at most ``plies`` plies, each with a random result."""
    rng = random.Random(seed)
    games = []
    for i in range(n):
        pos = Position()
        for _ in range(plies):
            legal = pos.legal_moves()
            if not legal:
                break
            pos.push(rng.choice(legal))
        games.append(GameRecord(moves=pos.moves, result=rng.choice(["red", "black", "draw"]),
                                termination="move_limit", source="test", id=f"t{i}"))
    return games


def write_games(path, games):
    """``games`` as an own-JSONL record file at ``path``; returns the path as a string."""
    with GameWriter(str(path)) as writer:
        for game in games:
            writer.write(game.to_json())
    return str(path)
