#!/usr/bin/env python
r"""Self-play Xiangqi games with fairy-stockfish for the Xiangqi GPT.

Games go to a JSONL file (toolkit.xiangqi.records format), appended one line
each as soon as a game finishes, fsynced, so a killed run loses only the games
in progress. Game ``i`` of seed ``S`` has the id ``s<S>-<i:07d>`` and is
reproducible (fresh hash per game, one engine thread, its own RNG); a rerun
with the same arguments counts the valid games already in the file, cuts a
partial last line left by a kill, and plays only the missing indices until
the file holds ``--games`` games: nothing lost, nothing duplicated.

Diversity: the first ``--opening-plies`` plies are drawn from the engine's
``--multipv`` candidates (softmax over their scores at ``--temperature``
centipawns, or uniformly); each side of each game gets its own search limit,
a depth in [--depth-min, --depth-max] or a node count in [--nodes-min,
--nodes-max] (log-uniform), mixed when both ranges are given. A game ends by
the rules (mate, stalemate, repetition, perpetual check, ...; via pyffish) or
at ``--max-plies`` (a draw, termination ``move_limit``).

Example:
    python scripts/gen_xiangqi_games.py --out games.jsonl --games 1000 --workers 4 \
        --depth-min 2 --depth-max 6 --opening-plies 8 --multipv 4 --seed 0
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import signal
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from scripts import _common  # noqa: E402

from toolkit.xiangqi.engine import EngineError, UciEngine, find_engine  # noqa: E402
from toolkit.xiangqi.records import GameRecord, GameWriter, read_jsonl, repair_tail  # noqa: E402
from toolkit.xiangqi.rules import START_FEN, Position, normalize_fen  # noqa: E402


def game_id(seed, index):
    return f"s{seed}-{index:07d}"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--out", required=True, help="JSONL file to append games to (created if missing)")
    parser.add_argument("--games", type=int, required=True,
                        help="number of games the file should hold in the end (>= 1)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes, one engine each")
    parser.add_argument("--depth-min", type=int,
                        help="smallest search depth (>= 1); with neither depths nor nodes: depths 1..4")
    parser.add_argument("--depth-max", type=int, help="largest search depth; unset: --depth-min")
    parser.add_argument("--nodes", type=int, help="fixed node limit (same as --nodes-min N --nodes-max N)")
    parser.add_argument("--nodes-min", type=int, help="smallest node limit (>= 1)")
    parser.add_argument("--nodes-max", type=int, help="largest node limit; unset: --nodes-min")
    parser.add_argument("--opening-plies", type=int, default=8, help="plies drawn from MultiPV candidates")
    parser.add_argument("--multipv", type=int, default=4, help="candidates per opening ply")
    parser.add_argument("--opening-sampling", choices=("softmax", "uniform"), default="softmax",
                        help="how an opening ply is drawn from the candidates: softmax over their scores at "
                             "--temperature, or uniformly")
    parser.add_argument("--temperature", type=float, default=100.0, help="softmax temperature in centipawns (> 0)")
    parser.add_argument("--max-plies", type=int, default=300, help="ply cap: a draw with termination move_limit")
    parser.add_argument("--fen", default=None, help="start position; unset: the standard one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the game ids, search limits and openings")
    parser.add_argument("--engine", default=None,
                        help="fairy-stockfish binary; unset: $XIANGQI_ENGINE, then fairy-stockfish on PATH, "
                             "then /usr/games/fairy-stockfish")
    parser.add_argument("--hash", type=int, default=16, help="engine hash MB")
    parser.add_argument("--search-timeout", type=float, default=120.0, help="seconds per engine search")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _common.add_verbose(parser)
    return parser


def resolve_limits(args):
    """Fill in the depth and node ranges (depths 1..4 when neither is given) and check them."""
    if args.nodes is not None:
        args.nodes_min = args.nodes_min or args.nodes
        args.nodes_max = args.nodes_max or args.nodes
    have_depth = args.depth_min is not None or args.depth_max is not None
    have_nodes = args.nodes_min is not None or args.nodes_max is not None
    if not have_depth and not have_nodes:
        args.depth_min, args.depth_max, have_depth = 1, 4, True
    if have_depth:
        args.depth_min = args.depth_min if args.depth_min is not None else args.depth_max
        args.depth_max = args.depth_max if args.depth_max is not None else args.depth_min
        if not 1 <= args.depth_min <= args.depth_max:
            raise _common.UsageError(f"need 1 <= --depth-min <= --depth-max, got {args.depth_min} and "
                                     f"{args.depth_max}")
    if have_nodes:
        args.nodes_min = args.nodes_min if args.nodes_min is not None else args.nodes_max
        args.nodes_max = args.nodes_max if args.nodes_max is not None else args.nodes_min
        if not 1 <= args.nodes_min <= args.nodes_max:
            raise _common.UsageError(f"need 1 <= --nodes-min <= --nodes-max, got {args.nodes_min} and "
                                     f"{args.nodes_max}")
    args.have_depth, args.have_nodes = have_depth, have_nodes


def parse_args(argv=None):
    """The options, checked: a bad value is a one-line :class:`_common.UsageError`."""
    args = build_parser().parse_args(argv)
    _common.check_at_least(args, 1, "games", "workers", "multipv", "max-plies", "hash")
    _common.check_at_least(args, 0, "opening-plies")
    for option in ("temperature", "search-timeout"):
        value = getattr(args, option.replace("-", "_"))
        if not 0 < value < float("inf"):
            raise _common.UsageError(f"--{option} must be a number > 0, got {value}")
    resolve_limits(args)
    return args


# --- one game ---------------------------------------------------------------------
def sample_limit(rng, args):
    kinds = (["depth"] if args.have_depth else []) + (["nodes"] if args.have_nodes else [])
    kind = rng.choice(kinds)
    if kind == "depth":
        return {"depth": rng.randint(args.depth_min, args.depth_max)}
    lo, hi = math.log(args.nodes_min), math.log(args.nodes_max)
    return {"nodes": int(round(math.exp(rng.uniform(lo, hi))))}


def choose_opening_move(rng, lines, legal, args):
    cands = [(ln.pv[0], ln.score) for ln in lines if ln.pv and ln.pv[0] in legal]
    if not cands:
        return None
    if args.opening_sampling == "uniform":
        return rng.choice(cands)[0]
    top = max(s for _, s in cands)
    weights = [math.exp((s - top) / max(args.temperature, 1e-6)) for _, s in cands]
    return rng.choices([m for m, _ in cands], weights=weights)[0]


def play_game(engine, args, index):
    """Play game ``index``; returns its JSON dict."""
    rng = random.Random(f"xiangqi-selfplay:{args.seed}:{index}")
    limits = {"red": sample_limit(rng, args), "black": sample_limit(rng, args)}
    engine.new_game()
    pos = Position(args.fen)
    while True:
        out = pos.outcome(max_plies=args.max_plies)
        if out is not None:
            break
        limit = limits[pos.turn]
        legal = set(pos.legal_moves())
        move = None
        if pos.ply < args.opening_plies and args.multipv > 1:
            res = engine.search(pos.start_fen, pos.moves, multipv=args.multipv, timeout=args.search_timeout, **limit)
            move = choose_opening_move(rng, res.lines, legal, args)
            move = move or res.bestmove
        else:
            move = engine.search(pos.start_fen, pos.moves, multipv=1, timeout=args.search_timeout, **limit).bestmove
        if move not in legal:
            raise EngineError(f"engine move {move!r} is not legal in {pos.fen()}")
        pos.push(move)
    engine_info = {"name": engine.name, "variant": "xiangqi", "red": limits["red"], "black": limits["black"],
                   "multipv": args.multipv, "opening_plies": args.opening_plies,
                   "opening_sampling": args.opening_sampling, "temperature": args.temperature,
                   "max_plies": args.max_plies, "seed": args.seed, "index": index}
    fen = pos.start_fen if pos.start_fen != START_FEN else None
    return GameRecord(moves=pos.moves, result=out.result, termination=out.termination, fen=fen,
                      source="selfplay:fairy-stockfish", engine=engine_info, id=game_id(args.seed, index)).to_json()


# --- workers -----------------------------------------------------------------------
_ENGINE = None
_ARGS = None


def _watch_parent(parent):
    """Exit when the parent dies (a killed run must not leave workers behind)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(args, engine_path, parent=None):
    """Pool initializer (``parent`` given: ignore Ctrl-C, exit with the parent)
    or the in-process setup for ``--workers 1``."""
    global _ENGINE, _ARGS
    if parent is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _ARGS = args
    _ENGINE = UciEngine(engine_path, hash_mb=args.hash)


def _work(index):
    try:
        return index, play_game(_ENGINE, _ARGS, index), None
    except Exception as e:  # reported by the parent; a rerun retries this index
        if isinstance(e, EngineError):  # the engine may be dead: start a fresh one for the next game
            try:
                _ENGINE.restart()
            except Exception:
                pass
        return index, None, f"{type(e).__name__}: {e}"


def existing_ids(path):
    """(number of valid distinct games, the ids of every record) in an existing output file.

    The ids include the records that the reader drops (a game identical to an earlier one, an
    illegal game): game ``i`` is reproducible, so regenerating its index would only write the
    same record again on every rerun. The count is of distinct valid games, so a rerun makes
    new indices until the file holds ``--games`` of those."""
    if not os.path.exists(path):
        return 0, set()
    _, stats = read_jsonl(path)
    ids = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                ids.add(rec["id"])
    return stats.kept, ids


def working_engine(path):
    """The engine binary's absolute path, started once here: a missing or broken binary is a
    one-line error now, not a failure in every worker."""
    engine_path = find_engine(path)  # EngineNotFoundError: a one-line error naming where it looked
    try:
        UciEngine(engine_path).close()
    except EngineError as e:
        raise _common.UsageError(f"--engine {engine_path} does not work as fairy-stockfish "
                                 f"({_common.one_line(e)}); install it with `apt-get install fairy-stockfish` "
                                 f"or pass --engine PATH") from None
    return engine_path


def indices_to_play(args):
    """(games already in ``--out``, the game indices still to play) after cutting a partial last line."""
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    cut = repair_tail(args.out)
    if cut:
        print(f"removed a partial last line ({cut} bytes) left by an interrupted run", file=sys.stderr)
    have, ids = existing_ids(args.out)
    todo, i = [], 0
    while len(todo) < args.games - have:
        if game_id(args.seed, i) not in ids:
            todo.append(i)
        i += 1
    return have, todo


def main(argv=None):
    args = parse_args(argv)
    if args.fen:
        try:
            args.fen = normalize_fen(args.fen)
        except ValueError as e:
            raise _common.UsageError(f"--fen: {_common.one_line(e)}") from None
    engine_path = working_engine(args.engine)
    have, todo = indices_to_play(args)
    if not todo:
        print(f"{args.out} already holds {have} games (asked for {args.games})", file=sys.stderr)
        return 0

    from tqdm import tqdm

    bar = tqdm(total=args.games, initial=have, unit="game", desc="self-play", disable=args.quiet)
    failures = 0
    writer = GameWriter(args.out)
    pool = None
    try:
        if min(args.workers, len(todo)) == 1:
            _init_worker(args, engine_path)
            results = (_work(i) for i in todo)
        else:
            pool = mp.get_context("spawn").Pool(min(args.workers, len(todo)), initializer=_init_worker,
                                                initargs=(args, engine_path, os.getpid()))
            results = pool.imap_unordered(_work, todo)
        for index, record, error in results:
            if error:
                failures += 1
                print(f"game {game_id(args.seed, index)} failed: {error}", file=sys.stderr)
                continue
            writer.write(record)
            bar.update(1)
            bar.set_postfix_str(f"{record['result']}/{record['termination']} {record['plies']} plies")
    except KeyboardInterrupt:
        print("interrupted: finished games are saved; rerun to continue", file=sys.stderr)
        return 130
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if _ENGINE is not None:
            _ENGINE.close()
        writer.close()
        bar.close()
    if failures:
        print(f"{failures} games failed; rerun to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    _common.run(main)
