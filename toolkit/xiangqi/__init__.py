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
* :mod:`.match`      a match against a random mover or fairy-stockfish: games, summary and JSON lines
* :mod:`.session`    one interactive game (board as text, undo, hint, save, resign) on any streams
* :mod:`.evaluation` held-out next-move figures, evaluation matches, the report, merging runs
* :mod:`.selfplay`   reproducible fairy-stockfish self-play games, workers, resumable output
* :mod:`.model_dir`  the check of a model directory before it loads
* :mod:`.vocabulary` the Xiangqi GPT's tokens, game <-> ids, mirroring, legal-character masks
* :mod:`.training_data` its held-out split, the resumable batch stream, the legal masks of a game set
* :mod:`.training_options` the settings of a training run (``scripts/train_xiangqi.py``'s options)

>>> from toolkit.xiangqi import Position, parse_move, iccs_to_chinese
>>> pos = Position()
>>> mv = parse_move(pos, "C2=5"); iccs_to_chinese(pos, mv)
'炮二平五'
"""

from .coords import iccs_to_uci, normalize_iccs, uci_to_iccs
from .engine import (EngineError, EngineNotFoundError, EngineUnusableError, UciEngine, check_engine, find_engine,
                     open_engine)
from .match import MatchSettings, run_match
from .model_dir import check_model_dir
from .notation import chinese_to_iccs, iccs_to_chinese, iccs_to_wxf, move_names, parse_move, wxf_to_iccs
from .records import (GameRecord, GameWriter, ReadStats, append_game, read_games, read_jsonl, read_pgn,
                      read_seed_jsonl, repair_tail)
from .rules import (BLACK, RED, START_FEN, Game, IllegalMoveError, InvalidFenError, Outcome, Position,
                    first_illegal, normalize_fen)
from .session import Session, play_interactive
from .training_data import BatchSettings, split_games
from .training_options import XiangqiTrainingOptions
from .vocabulary import VOCAB, decode_game, encode_game, legal_char_masks, mirror_moves, move_ids

__all__ = [
    "Position", "Game", "Outcome", "IllegalMoveError", "InvalidFenError", "START_FEN", "RED", "BLACK",
    "normalize_fen", "first_illegal", "iccs_to_uci", "uci_to_iccs", "normalize_iccs",
    "iccs_to_wxf", "wxf_to_iccs", "iccs_to_chinese", "chinese_to_iccs", "parse_move", "move_names",
    "GameRecord", "ReadStats", "GameWriter", "append_game", "repair_tail", "read_games", "read_jsonl",
    "read_pgn", "read_seed_jsonl", "UciEngine", "EngineError", "EngineNotFoundError", "find_engine",
    "EngineUnusableError", "open_engine", "check_engine", "MatchSettings", "run_match", "Session",
    "play_interactive", "check_model_dir",
    "VOCAB", "encode_game", "decode_game", "move_ids", "mirror_moves", "legal_char_masks", "split_games",
    "BatchSettings", "XiangqiTrainingOptions",
]
