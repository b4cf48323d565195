"""Xiangqi (Chinese chess) for the Xiangqi GPT: rules, notations, game records
and a fairy-stockfish client. Backend-free (no keras); rules come from pyffish.

* :mod:`.coords`   ICCS <-> UCI coordinates (the one conversion place)
* :mod:`.movegen`  piece geometry on a 10x9 grid (names moves, explains illegal ones)
* :mod:`.rules`    :class:`Position` / ``Game``: push/pop, legal moves, check, outcomes
* :mod:`.notation` ICCS / WXF / Chinese conversions and :func:`parse_move`
* :mod:`.records`  seed JSONL, ICCS PGN and own JSONL readers, the appending writer
* :mod:`.engine`   :class:`UciEngine` for fairy-stockfish
* :mod:`.material` piece values and the one-exchange balance of a move
* :mod:`.player`   the move chooser around any scorer (guard, random and engine players, matches)

>>> from toolkit.xiangqi import Position, parse_move, iccs_to_chinese
>>> pos = Position()
>>> mv = parse_move(pos, "C2=5"); iccs_to_chinese(pos, mv)
'炮二平五'
"""

from .coords import iccs_to_uci, normalize_iccs, uci_to_iccs
from .engine import EngineError, EngineNotFoundError, UciEngine, find_engine
from .notation import chinese_to_iccs, iccs_to_chinese, iccs_to_wxf, move_names, parse_move, wxf_to_iccs
from .records import (GameRecord, GameWriter, ReadStats, append_game, read_games, read_jsonl, read_pgn,
                      read_seed_jsonl, repair_tail)
from .rules import (BLACK, RED, START_FEN, Game, IllegalMoveError, InvalidFenError, Outcome, Position,
                    first_illegal, normalize_fen)

__all__ = [
    "Position", "Game", "Outcome", "IllegalMoveError", "InvalidFenError", "START_FEN", "RED", "BLACK",
    "normalize_fen", "first_illegal", "iccs_to_uci", "uci_to_iccs", "normalize_iccs",
    "iccs_to_wxf", "wxf_to_iccs", "iccs_to_chinese", "chinese_to_iccs", "parse_move", "move_names",
    "GameRecord", "ReadStats", "GameWriter", "append_game", "repair_tail", "read_games", "read_jsonl",
    "read_pgn", "read_seed_jsonl", "UciEngine", "EngineError", "EngineNotFoundError", "find_engine",
]
