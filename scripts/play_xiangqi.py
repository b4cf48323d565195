#!/usr/bin/env python
"""Play Xiangqi against the Xiangqi GPT, or run a match.

Interactive (default): a coloured board with coordinates; type moves in ICCS
(``h2e2``), WXF (``C2=5``) or Chinese (``炮二平五``). Commands: ``undo`` (take
back your last move and the model's reply), ``hint``, ``resign``, ``save FILE``
(ICCS PGN), ``moves``, ``help``, ``quit``.

Match (``--opponent random|engine``): the model plays ``--games`` games,
alternating colours (red in even games), against a random mover or
fairy-stockfish at ``--engine-depth``; prints each game, W/D/L, the score and
the Elo difference with its 95% interval; the LAST stdout line is a JSON object
(games, wins, draws, losses, score, elo, elo_low, elo_high, illegal_moves,
seconds_per_move, ...).

Examples:
    python scripts/play_xiangqi.py                       # you are red
    python scripts/play_xiangqi.py --color black
    python scripts/play_xiangqi.py --opponent engine --engine-depth 1 --games 2 --show-board
    python scripts/play_xiangqi.py --opponent random --games 100 --seed 0
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
import scripts._common  # noqa: E402,F401  (quiet TF, CPU only)

from toolkit.xiangqi import movegen  # noqa: E402
from toolkit.xiangqi.notation import move_names, parse_move  # noqa: E402
from toolkit.xiangqi.player import (EnginePlayer, Player, RandomPlayer, match_summary,  # noqa: E402
                                    play_game, random_opening)
from toolkit.xiangqi.records import GameRecord, write_pgn  # noqa: E402
from toolkit.xiangqi.rules import IllegalMoveError, Position  # noqa: E402

RED_FG, BLACK_FG, DIM, BOLD, RESET, HILITE = "\033[31;1m", "\033[34;1m", "\033[2m", "\033[1m", "\033[0m", "\033[43m"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", default=None, help="model directory (config.json + model.weights.h5); default: bundled")
    p.add_argument("--opponent", choices=("human", "random", "engine"), default="human")
    p.add_argument("--color", choices=("red", "black"), default="red", help="your colour (interactive)")
    p.add_argument("--games", type=int, default=10, help="match games")
    p.add_argument("--engine-depth", type=int, default=1)
    p.add_argument("--engine", default=None, help="fairy-stockfish binary (default: PATH, /usr/games)")
    p.add_argument("--condition", choices=("own", "any"), default="own",
                   help="result token the model is given: its own win, or <any>")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = best move; > 0 samples")
    p.add_argument("--no-mate-check", action="store_true", help="do not force a mate in one")
    p.add_argument("--no-guard", action="store_true",
                   help="the model's move only: no forced mate in two by checks, no material check, and no "
                        "replacing a move that walks into a mate in one, loses by a rule, or throws away a lead "
                        "by a draw or repetition")
    p.add_argument("--material-margin", type=float, default=1.0,
                   help="guard: play only moves whose one-exchange material balance is within this many points "
                        "of the best legal move's (chariot 9, cannon 4.5, horse 4, elephant/advisor 2, "
                        "soldier 1; default 1; 100 turns the material check off)")
    p.add_argument("--max-plies", type=int, default=300, help="game length cap (a draw)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--opening-plies", type=int, default=0,
                   help="match: random opening plies, shared by each pair of games (colours swapped)")
    p.add_argument("--show-board", action="store_true", help="match: print each game's final board")
    p.add_argument("--no-color", action="store_true", help="no ANSI colours")
    p.add_argument("--quiet", action="store_true", help="match: only the summary and the JSON line")
    args = p.parse_args(argv)
    if not args.material_margin >= 0:
        p.error(f"--material-margin must be >= 0, got {args.material_margin}")
    return args


def render_board(pos, color=True, last=None):
    """The board, red at the bottom, ranks 9..0 on the left, files a..i below."""
    grid = pos.board()
    marks = set()
    if last:
        from toolkit.xiangqi.coords import parse_iccs
        marks = set(parse_iccs(last))
    lines = []
    for r in range(9, -1, -1):
        cells = []
        for f in range(9):
            piece = grid[r][f]
            if piece == movegen.EMPTY:
                text = (DIM + "+" + RESET) if color else "+"
            elif color:
                text = (RED_FG if piece.isupper() else BLACK_FG) + piece + RESET
            else:
                text = piece
            if color and (f, r) in marks:
                text = HILITE + text + RESET
            cells.append(text)
        lines.append(f"{r} " + " ".join(cells))
        if r == 5:
            lines.append("  " + ("~" * 17 if not color else DIM + "~" * 17 + RESET))
    lines.append("  a b c d e f g h i")
    return "\n".join(lines)


def load_player(args):
    from models.xiangqi import MoveScorer, load_xiangqi_model

    model = load_xiangqi_model(args.model)
    scorer = MoveScorer(model)
    scorer.warmup()  # trace now: the first moves are not slower than the rest
    return Player(scorer, temperature=args.temperature, condition=args.condition,
                  mate_check=not args.no_mate_check, guard=not args.no_guard, seed=args.seed,
                  material_margin=args.material_margin)


# ------------------------------------------------------------------ match
def run_match(args, out=None, player=None):
    """Play the match; returns the summary dict (also the last line printed)."""
    out = out or sys.stdout
    player = player or load_player(args)
    engine = None
    if args.opponent == "engine":
        from toolkit.xiangqi.engine import UciEngine, find_engine

        engine = UciEngine(find_engine(args.engine))
        opponent = EnginePlayer(engine, depth=args.engine_depth)
        name = f"fairy-stockfish depth {args.engine_depth}"
    else:
        opponent = RandomPlayer(seed=args.seed)
        name = "random mover"
    points, times, plies = [], [], []
    illegal = 0
    try:
        for g in range(args.games):
            model_red = g % 2 == 0
            red, black = (player, opponent) if model_red else (opponent, player)
            if engine is not None:
                engine.new_game()

            def on_move(pos, mv, dt, model_red=model_red):
                # the side that just moved is the opposite of pos.turn
                if (pos.turn == movegen.BLACK) == model_red:
                    times.append(dt)

            try:
                opening = random_opening(getattr(args, "opening_plies", 0), f"opening:{args.seed}:{g // 2}")
                pos, outcome = play_game(red, black, max_plies=args.max_plies, on_move=on_move, opening=opening)
            except IllegalMoveError:  # cannot happen (only legal moves are scored); counted if it does
                illegal += 1
                points.append(0.0)
                continue
            mine = "red" if model_red else "black"
            pt = 1.0 if outcome.result == mine else 0.5 if outcome.result == "draw" else 0.0
            points.append(pt)
            plies.append(pos.ply)
            if not args.quiet:
                print(f"game {g + 1}/{args.games}: model {mine:5s} vs {name}: "
                      f"{outcome.result} by {outcome.termination} in {pos.ply} plies "
                      f"-> {'win' if pt == 1 else 'draw' if pt == 0.5 else 'loss'}", file=out, flush=True)
            if args.show_board:
                print(render_board(pos, color=not args.no_color, last=pos.moves[-1] if pos.moves else None),
                      file=out, flush=True)
    finally:
        if engine is not None:
            engine.close()
    s = match_summary(points)
    if engine is not None:
        s["engine_restarts"] = opponent.restarts  # searches retried on a fresh engine after a stall
    s.update(illegal_moves=illegal, seconds_per_move=round(sum(times) / max(1, len(times)), 4),
             opponent=name, condition=args.condition, opening_plies=getattr(args, "opening_plies", 0), mean_plies=round(sum(plies) / max(1, len(plies)), 1))
    print(f"model vs {name}: +{s['wins']} ={s['draws']} -{s['losses']} in {s['games']} games, "
          f"score {s['score']:.3f}, Elo {s['elo']:+.0f} [{s['elo_low']:+.0f}, {s['elo_high']:+.0f}] (95%), "
          f"{s['seconds_per_move']:.3f} s/move", file=out)
    print(json.dumps(s), file=out, flush=True)
    return s


# ------------------------------------------------------------ interactive
HELP = ("moves: ICCS h2e2 | WXF C2=5 | Chinese 炮二平五;  commands: undo, hint, resign, save FILE, "
        "moves, help, quit")


def interactive(args, inp=None, out=None):
    inp = inp or sys.stdin
    out = out or sys.stdout
    color = not args.no_color and hasattr(out, "isatty") and out.isatty()
    color = color or (not args.no_color and os.environ.get("FORCE_COLOR") == "1")
    player = load_player(args)
    pos = Position()
    human = args.color
    result = None

    def say(*a):
        print(*a, file=out, flush=True)

    def show():
        say(render_board(pos, color=color, last=pos.moves[-1] if pos.moves else None))

    def model_move():
        t = time.perf_counter()
        mv = player.choose(pos)
        names = move_names(pos, mv)
        pos.push(mv)
        say(f"model plays {names['iccs']}  ({names['wxf']}, {names['chinese']})  "
            f"[{time.perf_counter() - t:.2f}s]")

    say(f"You play {human}. {HELP}")
    if human == "black":
        model_move()
    show()
    while True:
        out_come = pos.outcome(max_plies=args.max_plies)
        if out_come is not None:
            result = out_come.result
            say(f"game over: {out_come.result} ({out_come.termination})")
            break
        out.write(f"{pos.turn} to move> ")
        out.flush()
        line = inp.readline()
        if not line:
            say("")
            break
        text = line.strip()
        if not text:
            continue
        cmd, _, rest = text.partition(" ")
        cmd = cmd.lower()
        if cmd in ("quit", "exit"):
            break
        if cmd == "help":
            say(HELP)
            continue
        if cmd == "moves":
            say(" ".join(pos.moves) or "(no moves yet)")
            continue
        if cmd == "resign":
            result = "black" if human == "red" else "red"
            say(f"you resign: {result} wins")
            break
        if cmd == "undo":
            # take back the model's reply and your last move
            if pos.ply < 2 + (human == "black"):
                say("nothing to undo")
                continue
            undone = [pos.pop(), pos.pop()]
            say(f"undone: {' '.join(reversed(undone))}")
            show()
            continue
        if cmd == "hint":
            hints = player.hint(pos, k=3)
            say("hint: " + ", ".join(f"{m} ({move_names(pos, m)['wxf']}, {s:.2f})" for m, s in hints))
            continue
        if cmd == "save":
            path = rest.strip()
            if not path:
                say("usage: save FILE")
                continue
            try:
                write_pgn(path, [GameRecord(moves=pos.moves, result=None)])
                say(f"saved {pos.ply} plies to {path}")
            except OSError as e:
                say(f"cannot save: {e}")
            continue
        try:
            mv = parse_move(pos, text)
        except (IllegalMoveError, ValueError) as e:
            reason = getattr(e, "reason", None) or str(e)
            say(f"illegal move {text!r}: {reason}")
            continue
        pos.push(mv)
        if pos.outcome(max_plies=args.max_plies) is None:
            model_move()
        show()
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.opponent == "human":
        interactive(args)
        return 0
    if args.games < 1:
        print("error: --games must be >= 1", file=sys.stderr)
        return 2
    run_match(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
