"""fairy-stockfish self-play games for the Xiangqi GPT (framework-free): one
reproducible game per index, worker processes with an engine each, and a
resumable output file.

Game ``i`` of seed ``S`` has the id ``s<S>-<i:07d>`` and is reproducible (fresh
hash per game, one engine thread, its own RNG). The first ``opening_plies``
plies are drawn from the engine's ``multipv`` candidates (softmax over their
scores at ``temperature`` centipawns, or uniformly); each side gets its own
search limit, a depth or a node count (log-uniform) from the settings' ranges.
:func:`indices_to_play` counts the valid games already in the output file
(after cutting a partial last line left by a kill) and lists the missing
indices; :func:`play_games` plays them, appending each finished game at once.

>>> game_id(0, 12)
's0-0000012'
>>> import random
>>> sample_limit(random.Random(0), SelfPlaySettings(depths=(2, 2)))
{'depth': 2}
"""

import json
import math
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional, Tuple

from .engine import EngineError, UciEngine
from .records import GameRecord, GameWriter, read_jsonl, repair_tail
from .rules import START_FEN, Position


@dataclass(frozen=True)
class SelfPlaySettings:
    """How the games are played: search depths ``depths`` (min, max) and/or node counts
    ``nodes`` (min, max) (a side's limit drawn from one of the given kinds), the opening
    (``opening_plies`` plies from ``multipv`` candidates, ``opening_sampling`` 'softmax' at
    ``temperature`` centipawns or 'uniform'), the ply cap ``max_plies`` (a draw, termination
    ``move_limit``), the start ``fen`` (None: the standard one), the ``seed`` of the ids,
    limits and openings, the engine's hash (``hash_mb``) and seconds per search
    (``search_timeout``)."""

    depths: Optional[Tuple[int, int]] = (1, 4)
    nodes: Optional[Tuple[int, int]] = None
    opening_plies: int = 8
    multipv: int = 4
    opening_sampling: str = "softmax"
    temperature: float = 100.0
    max_plies: int = 300
    fen: Optional[str] = None
    seed: int = 0
    hash_mb: int = 16
    search_timeout: float = 120.0


def game_id(seed, index):
    return f"s{seed}-{index:07d}"


# --- one game ---------------------------------------------------------------------
def sample_limit(rng, settings):
    """One side's search limit: ``{'depth': d}`` or ``{'nodes': n}`` (log-uniform)."""
    kinds = (["depth"] if settings.depths else []) + (["nodes"] if settings.nodes else [])
    kind = rng.choice(kinds)
    if kind == "depth":
        return {"depth": rng.randint(*settings.depths)}
    low, high = math.log(settings.nodes[0]), math.log(settings.nodes[1])
    return {"nodes": int(round(math.exp(rng.uniform(low, high))))}


def choose_opening_move(rng, lines, legal, settings):
    """A move drawn from the engine's MultiPV ``lines`` (legal first moves only), or None."""
    candidates = [(line.pv[0], line.score) for line in lines if line.pv and line.pv[0] in legal]
    if not candidates:
        return None
    if settings.opening_sampling == "uniform":
        return rng.choice(candidates)[0]
    top = max(score for _, score in candidates)
    weights = [math.exp((score - top) / max(settings.temperature, 1e-6)) for _, score in candidates]
    return rng.choices([move for move, _ in candidates], weights=weights)[0]


def _engine_move(engine, pos, limit, rng, settings):
    legal = set(pos.legal_moves())
    if pos.ply < settings.opening_plies and settings.multipv > 1:
        found = engine.search(pos.start_fen, pos.moves, multipv=settings.multipv, timeout=settings.search_timeout,
                              **limit)
        move = choose_opening_move(rng, found.lines, legal, settings) or found.bestmove
    else:
        move = engine.search(pos.start_fen, pos.moves, multipv=1, timeout=settings.search_timeout, **limit).bestmove
    if move not in legal:
        raise EngineError(f"engine move {move!r} is not legal in {pos.fen()}")
    return move


def play_selfplay_game(engine, settings, index):
    """Play game ``index`` with ``engine`` (a started :class:`UciEngine`); returns its JSON dict."""
    rng = random.Random(f"xiangqi-selfplay:{settings.seed}:{index}")
    limits = {"red": sample_limit(rng, settings), "black": sample_limit(rng, settings)}
    engine.new_game()
    pos = Position(settings.fen)
    while True:
        outcome = pos.outcome(max_plies=settings.max_plies)
        if outcome is not None:
            break
        pos.push(_engine_move(engine, pos, limits[pos.turn], rng, settings))
    engine_info = {"name": engine.name, "variant": "xiangqi", "red": limits["red"], "black": limits["black"],
                   "multipv": settings.multipv, "opening_plies": settings.opening_plies,
                   "opening_sampling": settings.opening_sampling, "temperature": settings.temperature,
                   "max_plies": settings.max_plies, "seed": settings.seed, "index": index}
    fen = pos.start_fen if pos.start_fen != START_FEN else None
    return GameRecord(moves=pos.moves, result=outcome.result, termination=outcome.termination, fen=fen,
                      source="selfplay:fairy-stockfish", engine=engine_info,
                      id=game_id(settings.seed, index)).to_json()


# --- workers -----------------------------------------------------------------------
_ENGINE = None
_SETTINGS = None


def _watch_parent(parent):
    """Exit when the parent dies (a killed run must not leave workers behind)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(settings, engine_path, parent=None):
    """Pool initializer (``parent`` given: ignore Ctrl-C, exit with the parent)
    or the in-process setup of a single worker."""
    global _ENGINE, _SETTINGS
    if parent is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _SETTINGS = settings
    _ENGINE = UciEngine(engine_path, hash_mb=settings.hash_mb)


def _close_worker():
    global _ENGINE
    if _ENGINE is not None:
        _ENGINE.close()
        _ENGINE = None


def _work(index):
    """(index, record or None, error text or None): a failed game is reported, not raised."""
    try:
        return index, play_selfplay_game(_ENGINE, _SETTINGS, index), None
    except Exception as error:  # reported by the parent; a rerun retries this index
        if isinstance(error, EngineError):  # the engine may be dead: start a fresh one for the next game
            try:
                _ENGINE.restart()
            except Exception:
                pass
        return index, None, f"{type(error).__name__}: {error}"


# --- the output file and the run -------------------------------------------------------
def existing_ids(path):
    """(number of valid distinct games, the ids of every record) in an existing output file.

    The ids include the records that the reader drops (a game identical to an earlier one, an
    illegal game): game ``i`` is reproducible, so regenerating its index would only write the
    same record again on every rerun. The count is of distinct valid games, so a rerun makes
    new indices until the file holds the games asked for."""
    if not os.path.exists(path):
        return 0, set()
    _, stats = read_jsonl(path)
    ids = set()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                ids.add(record["id"])
    return stats.kept, ids


def indices_to_play(path, games, seed, log=None):
    """(games already in ``path``, the game indices still to play for ``games`` in all) after
    cutting a partial last line (said on ``log``, default stderr)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cut = repair_tail(path)
    if cut:
        print(f"removed a partial last line ({cut} bytes) left by an interrupted run", file=log or sys.stderr)
    have, ids = existing_ids(path)
    todo, index = [], 0
    while len(todo) < games - have:
        if game_id(seed, index) not in ids:
            todo.append(index)
        index += 1
    return have, todo


def _results(settings, engine_path, todo, workers):
    """(pool or None, an iterator of :func:`_work` results)."""
    if min(workers, len(todo)) == 1:
        _init_worker(settings, engine_path)
        return None, (_work(index) for index in todo)
    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(todo)), initializer=_init_worker,
                                                     initargs=(settings, engine_path, os.getpid()))
    return pool, pool.imap_unordered(_work, todo)


def play_games(settings, engine_path, todo, path, workers=1, on_game=None, log=None):
    """Play the game indices ``todo`` in ``workers`` processes (one engine each), appending each
    finished game to ``path`` at once (``on_game(record)`` after it) and saying each failed one
    on ``log`` (default stderr); returns the number of failures. Ctrl-C stops the workers,
    keeps the finished games and passes the interrupt on."""
    failures = 0
    writer = GameWriter(path)
    pool = None
    try:
        pool, results = _results(settings, engine_path, todo, workers)
        for index, record, error in results:
            if error:
                failures += 1
                print(f"game {game_id(settings.seed, index)} failed: {error}", file=log or sys.stderr)
                continue
            writer.write(record)
            if on_game is not None:
                on_game(record)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _close_worker()
        writer.close()
    return failures


__all__ = ["SelfPlaySettings", "game_id", "sample_limit", "choose_opening_move", "play_selfplay_game",
           "existing_ids", "indices_to_play", "play_games"]
