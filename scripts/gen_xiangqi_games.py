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
import sys

import _common  # quiet logs, one-line errors

from toolkit.xiangqi.engine import check_engine
from toolkit.xiangqi.rules import normalize_fen
from toolkit.xiangqi.selfplay import SelfPlaySettings, indices_to_play, play_games


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


def checked_range(args, kind):
    """(min, max) of ``--KIND-min`` / ``--KIND-max`` (``kind``: depth or nodes), an unset end
    taking the other's value; a one-line error unless 1 <= min <= max."""
    low, high = getattr(args, f"{kind}_min"), getattr(args, f"{kind}_max")
    low, high = (low if low is not None else high), (high if high is not None else low)
    if not 1 <= low <= high:
        raise _common.UsageError(f"need 1 <= --{kind}-min <= --{kind}-max, got {low} and {high}")
    return low, high


def resolve_limits(args):
    """``args.depth_range`` and ``args.nodes_range``: (min, max), or None where not given
    (depths 1..4 when neither is), checked."""
    if args.nodes is not None:
        args.nodes_min = args.nodes_min or args.nodes
        args.nodes_max = args.nodes_max or args.nodes
    have_depth = args.depth_min is not None or args.depth_max is not None
    have_nodes = args.nodes_min is not None or args.nodes_max is not None
    args.depth_range = checked_range(args, "depth") if have_depth else None if have_nodes else (1, 4)
    args.nodes_range = checked_range(args, "nodes") if have_nodes else None


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


def selfplay_settings(args):
    """The :class:`SelfPlaySettings` of the checked options (``--fen`` normalized: a bad one is a
    one-line error)."""
    fen = None
    if args.fen:
        try:
            fen = normalize_fen(args.fen)
        except ValueError as error:
            raise _common.UsageError(f"--fen: {_common.one_line(error)}") from None
    return SelfPlaySettings(depths=args.depth_range, nodes=args.nodes_range,
                            opening_plies=args.opening_plies, multipv=args.multipv,
                            opening_sampling=args.opening_sampling, temperature=args.temperature,
                            max_plies=args.max_plies, fen=fen, seed=args.seed, hash_mb=args.hash,
                            search_timeout=args.search_timeout)


def main(argv=None):
    args = parse_args(argv)
    settings = selfplay_settings(args)
    engine_path = check_engine(args.engine)  # a missing or broken binary: one line now, not in every worker
    have, todo = indices_to_play(args.out, args.games, args.seed)
    if not todo:
        print(f"{args.out} already holds {have} games (asked for {args.games})", file=sys.stderr)
        return 0

    from tqdm import tqdm

    bar = tqdm(total=args.games, initial=have, unit="game", desc="self-play", disable=args.quiet)

    def on_game(record):
        bar.update(1)
        bar.set_postfix_str(f"{record['result']}/{record['termination']} {record['plies']} plies")

    try:
        failures = play_games(settings, engine_path, todo, args.out, workers=args.workers, on_game=on_game)
    except KeyboardInterrupt:
        print("interrupted: finished games are saved; rerun to continue", file=sys.stderr)
        return 130
    finally:
        bar.close()
    if failures:
        print(f"{failures} games failed; rerun to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    _common.run(main)
