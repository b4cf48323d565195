#!/usr/bin/env python
"""Play Xiangqi against the Xiangqi GPT, or run a match.

Interactive (default): a coloured board with coordinates; type moves in ICCS
(``h2e2``), WXF (``C2=5``) or Chinese (``炮二平五``). Commands: ``undo`` (take
back your last move and the model's reply), ``hint``, ``resign``, ``save FILE``
(ICCS PGN), ``moves``, ``help``, ``quit``. Ctrl-C ends the game and prints its
moves so far.

Match (``--opponent random|engine``): the model plays ``--games`` games,
alternating colours (red in odd-numbered games), against a random mover or
fairy-stockfish at ``--engine-depth``. Against the engine each pair of games
starts from its own ``--opening-plies`` random plies (default 2): the engine at
a fixed depth and the greedy model are deterministic, so without them every
pair would replay the same two games. Prints each game, W/D/L, the score with
its 95% Wilson interval and the Elo difference derived from it (an Elo point
estimate from 10 games on; a perfect score has no upper bound), and how many
distinct openings and games were played; the LAST stdout line is a JSON object
(games, wins, draws, losses, score, score_low, score_high, elo, elo_low,
elo_high, openings, distinct_games, illegal_moves, seconds_per_move, ...;
an unknown or unbounded Elo is null).

Examples:
    python scripts/play_xiangqi.py                       # you are red
    python scripts/play_xiangqi.py --color black
    python scripts/play_xiangqi.py --opponent engine --engine-depth 1 --games 2 --show-board
    python scripts/play_xiangqi.py --opponent engine --engine-depth 1 --games 20
    python scripts/play_xiangqi.py --opponent random --games 100 --seed 0
"""

import argparse
import sys

import _common  # quiet TF, one-line errors

from toolkit.xiangqi.match import ENGINE_OPENING_PLIES, MatchSettings, run_match
from toolkit.xiangqi.model_dir import check_model_dir
from toolkit.xiangqi.session import play_interactive, use_color


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=None,
                        help="model directory (config.json + model.weights.h5, as scripts/train_xiangqi.py "
                             "saves it); unset: the bundled models/xiangqi_model")
    parser.add_argument("--int8", action="store_true", help="Keras int8 weights (fbgemm with KERAS_BACKEND=torch)")
    parser.add_argument("--opponent", choices=("human", "random", "engine"), default="human",
                        help="human: play interactively; random or engine: a match of --games games against a "
                             "random mover or fairy-stockfish")
    parser.add_argument("--color", choices=("red", "black"), default="red", help="your colour (interactive)")
    parser.add_argument("--games", type=int, default=10, help="match: number of games (>= 1)")
    parser.add_argument("--engine-depth", type=int, default=1, help="match: fairy-stockfish search depth (>= 1)")
    parser.add_argument("--engine", default=None,
                        help="fairy-stockfish binary; unset: $XIANGQI_ENGINE, then fairy-stockfish on PATH, "
                             "then /usr/games/fairy-stockfish")
    parser.add_argument("--condition", choices=("own", "any"), default="own",
                        help="result token the model is given: its own win, or <any>")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 plays the model's best move; > 0 samples from softmax(logprob / temperature)")
    parser.add_argument("--no-mate-check", action="store_true", help="do not force a mate in one")
    parser.add_argument("--no-guard", action="store_true",
                        help="the model's move only: no forced mate in two by checks, no material check, and no "
                             "replacing a move that walks into a mate in one, loses by a rule, or throws away a "
                             "lead by a draw or repetition")
    parser.add_argument("--material-margin", type=float, default=1.0,
                        help="guard: play only moves whose one-exchange material balance is within this many "
                             "points of the best legal move's (chariot 9, cannon 4.5, horse 4, elephant/advisor "
                             "2, soldier 1; 100 turns the material check off)")
    parser.add_argument("--max-plies", type=int, default=300,
                        help="game length cap: a game still going after this many plies is a draw (>= 1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random mover, the random openings and sampling (--temperature > 0)")
    parser.add_argument("--opening-plies", type=int, default=None,
                        help=f"match: random opening plies, shared by each pair of games (colours swapped); "
                             f"unset: {ENGINE_OPENING_PLIES} against the engine, 0 against the random mover")
    parser.add_argument("--show-board", action="store_true", help="match: print each game's final board")
    parser.add_argument("--no-color", action="store_true", help="no ANSI colours")
    parser.add_argument("--quiet", action="store_true", help="match: only the summary and the JSON line")
    _common.add_verbose(parser)
    return parser


def parse_args(argv=None):
    """The options, checked: a bad value is a one-line :class:`_common.UsageError`."""
    args = build_parser().parse_args(argv)
    _common.check_at_least(args, 1, "games", "engine-depth", "max-plies")
    _common.check_at_least(args, 0, "opening-plies", "material-margin")
    if not args.temperature >= 0:
        raise _common.UsageError(f"--temperature must be >= 0 (0 plays the best move, > 0 samples), "
                                 f"got {args.temperature}")
    if args.opening_plies is None:
        args.opening_plies = ENGINE_OPENING_PLIES if args.opponent == "engine" else 0
    check_openings(args)
    check_model_dir(args.model)
    return args


def check_openings(args):
    """Refuse an engine match that can only repeat two games: a deterministic
    engine, a deterministic model and no random openings."""
    if args.opponent == "engine" and args.games > 2 and args.opening_plies == 0 and args.temperature == 0:
        raise _common.UsageError(
            f"--games {args.games} with --opening-plies 0 against the engine replays the same 2 games "
            f"(the engine at a fixed depth and the model at --temperature 0 are deterministic): "
            f"use --opening-plies {ENGINE_OPENING_PLIES} (the default) or --games 2")



def load_player(args):
    """The model of ``--model`` in a :class:`Player` with the options' settings."""
    from models.xiangqi import load_player as load_model_player

    return load_model_player(args.model, quantize="int8" if args.int8 else None, temperature=args.temperature,
                             condition=args.condition, mate_check=not args.no_mate_check, guard=not args.no_guard,
                             seed=args.seed, material_margin=args.material_margin)


def match_settings(args):
    return MatchSettings(opponent=args.opponent, games=args.games, engine_depth=args.engine_depth,
                         engine=args.engine, max_plies=args.max_plies, seed=args.seed,
                         opening_plies=args.opening_plies, show_board=args.show_board, color=not args.no_color,
                         quiet=args.quiet)


def main(argv=None):
    args = parse_args(argv)
    if args.opponent == "human":
        play_interactive(load_player(args), human=args.color, max_plies=args.max_plies,
                         color=use_color(sys.stdout, args.no_color))
    else:
        run_match(match_settings(args), lambda: load_player(args))
    return 0


if __name__ == "__main__":
    _common.run(main)
