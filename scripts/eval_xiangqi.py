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
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
import scripts._common as common  # noqa: E402

from toolkit.xiangqi.match_stats import format_elo  # noqa: E402
from toolkit.xiangqi.player import Player  # noqa: E402
from toolkit.xiangqi.rules import Position  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=None,
                        help="model directory (config.json + model.weights.h5); unset: the bundled one")
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
    common.add_verbose(parser)
    return parser


def parse_args(argv=None):
    """The options, checked before anything slow: a bad value, a missing file or model directory,
    or a missing engine (when a match needs it) is a one-line error."""
    from scripts.play_xiangqi import ENGINE_OPENING_PLIES, check_model_dir

    args = build_parser().parse_args(argv)
    common.check_at_least(args, 0, "positions", "random-games", "engine-games", "conditioning-games",
                          "opening-plies")
    common.check_at_least(args, 1, "max-plies")
    if not 0 <= args.val_fraction <= 1:
        raise common.UsageError(f"--val-fraction must lie in [0, 1] (e.g. 0.05), got {args.val_fraction}")
    bad_depths = [d for d in args.engine_depths if d < 1]
    if bad_depths:
        raise common.UsageError(f"--engine-depths must all be >= 1, got {bad_depths[0]}")
    if uses_engine(args) and args.opening_plies == 0 and max(engine_match_sizes(args)) > 2:
        raise common.UsageError(
            f"--opening-plies 0 replays the same 2 games in every engine match of more than 2 games (the "
            f"engine at a fixed depth and the greedy model are deterministic): use --opening-plies "
            f"{ENGINE_OPENING_PLIES} (the default) or at most 2 engine games")
    check_model_dir(args.model)
    for path in args.games:
        if not os.path.isfile(path):
            raise common.UsageError(f"--games {path}: no such file; give game records (JSONL or PGN), "
                                    f"e.g. from scripts/gen_xiangqi_games.py")
    if args.merge and not os.path.isfile(args.merge):
        raise common.UsageError(f"--merge {args.merge}: no such file; give the --json file of an earlier run")
    if uses_engine(args):
        from toolkit.xiangqi.engine import find_engine

        args.engine = find_engine(args.engine)  # EngineNotFoundError: where it looked, and the fix
    return args


def conditioning_games(args):
    return args.conditioning_games if args.conditioning_games is not None else args.random_games


def engine_match_sizes(args):
    """The game counts of the matches against the engine (empty if none)."""
    sizes = [args.engine_games] if args.engine_games > 0 and args.engine_depths else []
    if args.conditioning_opponent == "engine" and conditioning_games(args) > 0:
        sizes.append(conditioning_games(args))
    return sizes


def uses_engine(args):
    return bool(engine_match_sizes(args))


def accuracy(scorer, games, n_positions, condition):
    """Top-1 among legal moves vs the recorded move, greedy-move legality, and time per scoring pass."""
    positions = [(g, i) for g in games for i in range(len(g.moves))]
    if not positions:
        return None
    step = max(1, len(positions) // n_positions)
    chosen = positions[::step][:n_positions]
    hits = legal_greedy = legal_top = 0
    t0, t_top = time.perf_counter(), 0.0
    for g, i in chosen:
        pos = Position.from_moves(g.moves[:i])
        legal = pos.legal_moves()
        cond = pos.turn if condition == "own" else "any"
        scores, greedy = scorer.score(pos.moves, legal, cond, greedy=True)
        best = legal[int(max(range(len(legal)), key=lambda k: scores[k]))]
        hits += best == g.moves[i]
        legal_greedy += pos.is_legal(greedy) if "?" not in greedy else False
        t = time.perf_counter()
        top = scorer.top_move(pos.moves, cond)
        legal_top += pos.is_legal(top) if "?" not in top else False
        t_top += time.perf_counter() - t
    n = len(chosen)
    return {"positions": n, "top1_accuracy": hits / n, "greedy_legal_rate": legal_greedy / n,
            "top_move_legal_rate": legal_top / n,
            "seconds_per_position": (time.perf_counter() - t0 - t_top) / n}


def match(play, player, opponent, games, depth, args, label):
    margs = types.SimpleNamespace(opponent=opponent, engine_depth=depth, games=games, engine=args.engine,
                                  max_plies=args.max_plies, seed=args.seed, show_board=False, no_color=True,
                                  quiet=False, condition=player.condition,
                                  opening_plies=args.opening_plies if opponent == "engine" else 0)
    t = time.time()
    s = play.run_match(margs, out=sys.stderr, player=player)
    s["wall_seconds"] = round(time.time() - t, 1)
    print(f"[{label}] {json.dumps(s)}", file=sys.stderr, flush=True)
    return s


def fmt_match(s):
    return (f"{s['games']} | +{s['wins']} ={s['draws']} -{s['losses']} | {s['score']:.3f} | "
            f"{format_elo(s)} | {s['mean_plies']} | {s['seconds_per_move']:.3f}")


def report(res, command):
    cmds = res.get("commands") or [command]
    lines = [f"Machine: {common.machine_description()}; date {common.today()}; model `{res['model']}`.",
             "Command" + ("s" if len(cmds) > 1 else "") + ": " + "; then ".join(f"`{c}`" for c in cmds), ""]
    if res.get("note"):
        lines += [res["note"], ""]
    for key, title in (("accuracy_any", "`<any>` token"), ("accuracy_own", "own-win token")):
        a = res.get(key)
        if a:
            lines.append(f"- Held-out next move ({title}, {a['positions']} positions of {res['val_games']} "
                         f"held-out engine games): top-1 among legal moves {100 * a['top1_accuracy']:.1f}%, "
                         f"greedy 4-char move legal {100 * a['greedy_legal_rate']:.1f}% (goal 98%)"
                         + (f", most probable 4-char move legal {100 * a['top_move_legal_rate']:.1f}%"
                            if "top_move_legal_rate" in a else "") + ", "
                         f"{a['seconds_per_position']:.3f} s per scoring pass")
    lines += ["", "| match (model plays both colours) | games | W/D/L | score | Elo [95%] | mean plies | s/move |",
              "|---|---|---|---|---|---|---|"]
    for name, s in res["matches"].items():
        lines.append(f"| {name} | {fmt_match(s)} |")
    c = res.get("conditioning")
    if c:
        player = c.get("player", "model + mate in one")
        lines += ["", f"Conditioning ({c['opponent']}, {player} player): own-win token score {c['own']:.3f} "
                  f"vs `<any>` {c['any']:.3f} ({c['games']} games each, same model, same seeds): "
                  f"difference {c['own'] - c['any']:+.3f}."]
    spm = [s["seconds_per_move"] for s in res["matches"].values()]
    if spm:
        lines.append(f"\nSeconds per model move (mean over the matches): {sum(spm) / len(spm):.3f} (goal < 0.2).")
    return "\n".join(lines)


def held_out_games(args):
    """The validation split of every ``--games`` file (read before the model loads: a bad file fails fast)."""
    from models.xiangqi import split_games
    from toolkit.xiangqi.records import read_games

    val = []
    for path in args.games:
        games, _ = read_games(path)
        val.extend(split_games(games, args.val_fraction)[1])
    return val


def load_merge(path):
    """The figures of an earlier run (its ``--json`` file); a file that is not one is a one-line error."""
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except ValueError as error:
        raise common.UsageError(f"--merge {path}: not JSON ({common.one_line(error)}); give the --json file "
                                f"of an earlier run") from None
    if not isinstance(old, dict) or not isinstance(old.get("matches", {}), dict):
        raise common.UsageError(f"--merge {path}: not the --json file of an earlier run (no figures object)")
    return old


def merge_into(res, old, have_val):
    """Fold an earlier run's figures into ``res``; returns its commands."""
    for k, v in old.items():
        if k == "matches":
            res["matches"].update(v)
        elif k not in ("complete", "commands", "model") and (k not in res or not have_val):
            res[k] = v
    return old.get("commands", [])


def shown_command(argv):
    """The command line for the report, without ``--note`` (prose, not part of what is measured)."""
    shown = list(argv if argv is not None else sys.argv[1:])
    if "--note" in shown:
        i = shown.index("--note")
        del shown[i:i + 2]
    return "python scripts/eval_xiangqi.py " + " ".join(a for a in shown if not a.startswith("--note="))


PLAYER_KINDS = {"guarded": ("guarded", True), "model": ("model + mate in one", False)}


def run_matches(play, players, args, res, flush):
    """The random-mover and engine matches of every player kind, each written out as it ends."""
    for kind, own in players.items():
        name = PLAYER_KINDS[kind][0]
        if args.random_games > 0:
            res["matches"][f"vs random mover ({name}, own-win token)"] = match(
                play, own, "random", args.random_games, 1, args, f"random own {kind}")
            flush()
        for d in args.engine_depths:
            if args.engine_games > 0:
                res["matches"][f"vs fairy-stockfish depth {d} ({name}, own-win token)"] = match(
                    play, own, "engine", args.engine_games, d, args, f"engine d{d} own {kind}")
                flush()


def run_conditioning(play, scorer, players, args, res):
    """The own-win vs ``<any>`` comparison with the first player kind (reusing a same-size match)."""
    n_cond = conditioning_games(args)
    first = args.players[0]
    name, own = PLAYER_KINDS[first][0], players[first]
    anyp = Player(scorer, condition="any", guard=own.guard, seed=args.seed)
    opp, d = args.conditioning_opponent, (args.engine_depths or [1])[0]
    label = "random mover" if opp == "random" else f"fairy-stockfish depth {d}"
    own_key = f"vs {label} ({name}, own-win token)"
    s_own = res["matches"].get(own_key)
    if s_own is None or s_own["games"] != n_cond:
        s_own = res["matches"][own_key + f", {n_cond} games"] = match(play, own, opp, n_cond, d, args, "cond own")
    s_any = res["matches"][f"vs {label} ({name}, `<any>` token)"] = match(play, anyp, opp, n_cond, d, args,
                                                                          "cond any")
    res["conditioning"] = {"opponent": label, "player": name, "games": n_cond, "own": s_own["score"],
                           "any": s_any["score"]}


def main(argv=None):
    args = parse_args(argv)
    old = load_merge(args.merge) if args.merge else None
    val = held_out_games(args) if args.games else []
    from models.xiangqi import BUNDLED_DIR, MoveScorer, load_xiangqi_model
    from scripts import play_xiangqi as play

    model_dir = args.model or BUNDLED_DIR
    scorer = MoveScorer(load_xiangqi_model(model_dir))
    scorer.warmup()  # tracing is not counted in the seconds per move
    res = {"model": os.path.relpath(model_dir, common.ROOT) if args.model is None else model_dir, "matches": {},
           "val_games": len(val)}
    commands = merge_into(res, old, bool(val)) if old is not None else []
    if val and args.positions > 0:
        res["accuracy_any"] = accuracy(scorer, val, args.positions, "any")
        print(f"[accuracy <any>] {json.dumps(res['accuracy_any'])}", file=sys.stderr, flush=True)
        res["accuracy_own"] = accuracy(scorer, val, args.positions, "own")
        print(f"[accuracy own] {json.dumps(res['accuracy_own'])}", file=sys.stderr, flush=True)
    if args.note:
        res["note"] = args.note
    command = shown_command(argv)
    res["commands"] = commands + [command]

    def flush(final=False):
        """Write what is measured so far (a long evaluation stopped early keeps its figures)."""
        res["complete"] = final
        body = report(res, command) + ("" if final else "\n\n(partial: evaluation still running or stopped)")
        if args.write:
            common.write_benchmark_section("xiangqi_eval", "## Xiangqi GPT evaluation\n\n" + body)
            card = os.path.join(model_dir, "MODEL_CARD.md")
            common.write_benchmark_section("xiangqi_eval", "## Evaluation\n\n" + body, path=card)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
        return body

    flush()
    players = {kind: Player(scorer, condition="own", guard=PLAYER_KINDS[kind][1], seed=args.seed)
               for kind in args.players}
    run_matches(play, players, args, res, flush)
    if conditioning_games(args) > 0:
        run_conditioning(play, scorer, players, args, res)
        flush()
    body = flush(final=True)
    print(body)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    common.run(main)
