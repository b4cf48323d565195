#!/usr/bin/env python
r"""Evaluate the Xiangqi GPT: held-out next-move accuracy, legality of the
unconstrained greedy move, matches vs a random mover and fairy-stockfish, and
the effect of outcome conditioning (own-win token vs ``<any>``).

Held-out games: the validation split of ``--games`` (the same hash split
scripts/train_xiangqi.py uses). For up to ``--positions`` positions of those
games: top-1 accuracy among the legal moves against the engine's move, and how
often the greedy 4-character decode (no legality constraint) is a legal move,
and how often the model's most probable 4-character string is (the exact
unconstrained top move, ``MoveScorer.top_move``; not in the timing).
Matches alternate colours, once per ``--players`` kind: ``guarded`` is the
default player of scripts/play_xiangqi.py (the model's move, plus a forced mate
in one or two by checks, a material check that keeps the model from giving
pieces away, and the next best move when the model's walks into a mate in one,
loses by a rule, or throws away a lead by a draw or repetition);
``model`` is the model's best legal move with only a mate in one forced.
Each match gets its score and the Elo difference with a 95% interval from the
Wilson interval of the score (no point estimate below 10 games; a perfect score
has only a lower bound). ``--write`` puts the figures into the model card and the
``<!-- xiangqi_eval -->`` section of docs/benchmarks.md (machine, date,
command). The LAST stdout line is a JSON object with every figure.

Example:
    python scripts/eval_xiangqi.py --games games.jsonl --positions 600 \
        --random-games 100 --engine-games 100 --engine-depths 1 3 --write
"""

import argparse
import json
import os
import sys

import _common  # quiet TF, one-line errors

from toolkit import benchmarking
from toolkit.xiangqi.evaluation import (add_held_out_figures, engine_match_sizes, held_out_games, load_merge,
                                        make_players, merge_into, plan_from, report, run_conditioning, run_matches,
                                        uses_engine)
from toolkit.xiangqi.match import ENGINE_OPENING_PLIES
from toolkit.xiangqi.model_dir import check_model_dir


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=None,
                        help="model directory (config.json + model.weights.h5); unset: the bundled one")
    parser.add_argument("--int8", action="store_true", help="Keras int8 weights (fbgemm with KERAS_BACKEND=torch)")
    parser.add_argument("--games", nargs="*", default=[],
                        help="game records (JSONL or PGN); their validation split is held out for the accuracy "
                             "figures (none: no accuracy figures)")
    parser.add_argument("--val-fraction", type=float, default=0.05,
                        help="share of the --games held out (the hash split of scripts/train_xiangqi.py), 0..1")
    parser.add_argument("--positions", type=int, default=600, help="held-out positions for the accuracy figures")
    parser.add_argument("--random-games", type=int, default=100,
                        help="games vs the random mover (own-win token), per --players kind")
    parser.add_argument("--engine-games", type=int, default=100, help="games per engine depth and --players kind")
    parser.add_argument("--engine-depths", type=int, nargs="*", default=[1, 3],
                        help="fairy-stockfish search depths (each >= 1) for the engine matches")
    parser.add_argument("--engine", default=None,
                        help="fairy-stockfish binary; unset: $XIANGQI_ENGINE, then fairy-stockfish on PATH, "
                             "then /usr/games/fairy-stockfish")
    parser.add_argument("--conditioning-games", type=int, default=None,
                        help="games for the <any> vs own-win comparison; unset: --random-games")
    parser.add_argument("--conditioning-opponent", choices=("random", "engine"), default="random",
                        help="opponent of the conditioning comparison (engine: at the first --engine-depths)")
    parser.add_argument("--players", nargs="+", choices=("guarded", "model"), default=["guarded", "model"],
                        help="player kinds for the matches (the conditioning comparison uses the first)")
    parser.add_argument("--max-plies", type=int, default=300,
                        help="game length cap: a game still going after this many plies is a draw")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random mover and the random openings")
    parser.add_argument("--opening-plies", type=int, default=2,
                        help="random opening plies per pair of games in the engine matches (fairy-stockfish at a "
                             "fixed depth and the greedy model are deterministic)")
    parser.add_argument("--write", action="store_true", help="update the model card and docs/benchmarks.md")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--note", default=None,
                        help="a paragraph for the report, under the commands (e.g. how the parts of a split run "
                             "ran)")
    parser.add_argument("--merge", default=None,
                        help="start from the figures of an earlier run (its --json file): a long evaluation in "
                             "parts")
    _common.add_verbose(parser)
    return parser


def parse_args(argv=None):
    """The options, checked before anything slow: a bad value, a missing file or model directory,
    or a missing engine (when a match needs it) is a one-line error."""
    args = build_parser().parse_args(argv)
    _common.check_at_least(args, 0, "positions", "random-games", "engine-games", "conditioning-games",
                           "opening-plies")
    _common.check_at_least(args, 1, "max-plies")
    if not 0 <= args.val_fraction <= 1:
        raise _common.UsageError(f"--val-fraction must lie in [0, 1] (e.g. 0.05), got {args.val_fraction}")
    bad_depths = [depth for depth in args.engine_depths if depth < 1]
    if bad_depths:
        raise _common.UsageError(f"--engine-depths must all be >= 1, got {bad_depths[0]}")
    plan = plan_from(args)
    if uses_engine(plan) and args.opening_plies == 0 and max(engine_match_sizes(plan)) > 2:
        raise _common.UsageError(
            f"--opening-plies 0 replays the same 2 games in every engine match of more than 2 games (the "
            f"engine at a fixed depth and the greedy model are deterministic): use --opening-plies "
            f"{ENGINE_OPENING_PLIES} (the default) or at most 2 engine games")
    check_model_dir(args.model)
    for path in args.games:
        if not os.path.isfile(path):
            raise _common.UsageError(f"--games {path}: no such file; give game records (JSONL or PGN), "
                                     f"e.g. from scripts/gen_xiangqi_games.py")
    if args.merge and not os.path.isfile(args.merge):
        raise _common.UsageError(f"--merge {args.merge}: no such file; give the --json file of an earlier run")
    if uses_engine(plan):
        from toolkit.xiangqi.engine import find_engine

        args.engine = find_engine(args.engine)  # EngineNotFoundError: where it looked, and the fix
    return args


def shown_command(argv):
    """The command line for the report, without ``--note`` (prose, not part of what is measured)."""
    shown = list(argv if argv is not None else sys.argv[1:])
    if "--note" in shown:
        at = shown.index("--note")
        del shown[at:at + 2]
    return "python scripts/eval_xiangqi.py " + " ".join(a for a in shown if not a.startswith("--note="))


def figures_writer(args, res, command, model_dir):
    """``flush(final=False)``: the report of what is measured so far, written to the model card and
    docs/benchmarks.md (``--write``) and ``--json`` (a long evaluation stopped early keeps its figures)."""

    def flush(final=False):
        res["complete"] = final
        body = report(res, command, benchmarking.machine_description(), benchmarking.today())
        body += "" if final else "\n\n(partial: evaluation still running or stopped)"
        if args.write:
            benchmarking.write_benchmark_section("xiangqi_eval", "## Xiangqi GPT evaluation\n\n" + body)
            card = os.path.join(model_dir, "MODEL_CARD.md")
            benchmarking.write_benchmark_section("xiangqi_eval", "## Evaluation\n\n" + body, path=card)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(res, handle, indent=2)
        return body

    return flush


def main(argv=None):
    args = parse_args(argv)
    old = load_merge(args.merge) if args.merge else None
    held_out = held_out_games(args.games, args.val_fraction) if args.games else []  # before the model: fails fast
    from models.xiangqi import BUNDLED_DIR, MoveScorer, load_xiangqi_model

    model_dir = args.model or BUNDLED_DIR
    scorer = MoveScorer(load_xiangqi_model(model_dir, quantize="int8" if args.int8 else None))
    scorer.warmup()  # tracing is not counted in the seconds per move
    res = {"model": os.path.relpath(model_dir, benchmarking.ROOT) if args.model is None else model_dir, "matches": {},
           "val_games": len(held_out)}
    commands = merge_into(res, old, bool(held_out)) if old is not None else []
    if held_out and args.positions > 0:
        add_held_out_figures(res, scorer, held_out, args.positions)
    if args.note:
        res["note"] = args.note
    command = shown_command(argv)
    res["commands"] = commands + [command]
    flush = figures_writer(args, res, command, model_dir)
    flush()
    plan = plan_from(args)
    players = make_players(scorer, plan)
    run_matches(players, plan, res, flush)
    if plan.conditioning_size() > 0:
        run_conditioning(scorer, players, plan, res)
        flush()
    body = flush(final=True)
    print(body)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    _common.run(main)
