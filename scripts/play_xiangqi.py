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
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from scripts import _common  # noqa: E402  (quiet TF, CPU only)

from toolkit.xiangqi import movegen  # noqa: E402
from toolkit.xiangqi.match_stats import format_elo, format_score  # noqa: E402
from toolkit.xiangqi.notation import NOTATIONS, bad_move_message, move_names, parse_move  # noqa: E402
from toolkit.xiangqi.player import (EnginePlayer, Player, RandomPlayer, match_summary,  # noqa: E402
                                    play_game, random_opening)
from toolkit.xiangqi.records import GameRecord, write_pgn  # noqa: E402
from toolkit.xiangqi.rules import IllegalMoveError, Position  # noqa: E402

RED_FG, BLACK_FG, DIM, BOLD, RESET, HILITE = "\033[31;1m", "\033[34;1m", "\033[2m", "\033[1m", "\033[0m", "\033[43m"
MODEL_FILES = ("config.json", "model.weights.h5")
ENGINE_OPENING_PLIES = 2  # as scripts/eval_xiangqi.py


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=None,
                        help="model directory (config.json + model.weights.h5, as scripts/train_xiangqi.py "
                             "saves it); unset: the bundled models/xiangqi_model")
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


def check_model_dir(path):
    """A one-line UsageError unless ``path`` (None: the bundled model) is a model directory."""
    if path is None:
        return
    fix = ("give a directory with config.json and model.weights.h5 (scripts/train_xiangqi.py --out DIR "
           "writes them), or leave --model out for the bundled model")
    if not os.path.exists(path):
        raise _common.UsageError(f"--model {path}: no such directory; {fix}")
    if not os.path.isdir(path):
        raise _common.UsageError(f"--model {path}: not a directory; {fix}")
    missing = [name for name in MODEL_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise _common.UsageError(f"--model {path}: no {' or '.join(missing)} in it; {fix}")


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

    check_model_dir(args.model)
    model = load_xiangqi_model(args.model)
    scorer = MoveScorer(model)
    scorer.warmup()  # trace now: the first moves are not slower than the rest
    return Player(scorer, temperature=args.temperature, condition=args.condition,
                  mate_check=not args.no_mate_check, guard=not args.no_guard, seed=args.seed,
                  material_margin=args.material_margin)


# ------------------------------------------------------------------ match
def open_opponent(args):
    """(opponent, engine or None, name); a missing or broken engine is a one-line error."""
    if args.opponent != "engine":
        return RandomPlayer(seed=args.seed), None, "random mover"
    from toolkit.xiangqi.engine import EngineError, UciEngine, find_engine

    path = find_engine(args.engine)  # EngineNotFoundError (a FileNotFoundError): where it looked, and the fix
    try:
        engine = UciEngine(path)
    except EngineError as error:
        raise _common.UsageError(f"--engine {path} does not work as fairy-stockfish ({_common.one_line(error)}); "
                                 f"install it with `apt-get install fairy-stockfish` or pass --engine PATH") from None
    name = f"fairy-stockfish depth {args.engine_depth}"
    return EnginePlayer(engine, depth=args.engine_depth), engine, name


def new_tally():
    """What :func:`play_match_games` records: per-game points, the model's move times, game lengths,
    illegal moves, and the distinct openings and games (move sequences)."""
    return {"points": [], "times": [], "plies": [], "illegal": 0, "openings": set(), "games": set()}


def play_match_games(args, player, opponent, engine, name, out, tally):
    """Play the games, recording them in ``tally`` (:func:`new_tally`) as they finish."""
    for g in range(args.games):
        model_red = g % 2 == 0
        red, black = (player, opponent) if model_red else (opponent, player)
        if engine is not None:
            engine.new_game()

        def on_move(pos, mv, dt, model_red=model_red):
            # the side that just moved is the opposite of pos.turn
            if (pos.turn == movegen.BLACK) == model_red:
                tally["times"].append(dt)

        opening = random_opening(args.opening_plies, f"opening:{args.seed}:{g // 2}")
        tally["openings"].add(tuple(opening))
        try:
            pos, outcome = play_game(red, black, max_plies=args.max_plies, on_move=on_move, opening=opening)
        except IllegalMoveError:  # cannot happen (only legal moves are scored); counted if it does
            tally["illegal"] += 1
            tally["points"].append(0.0)
            continue
        mine = "red" if model_red else "black"
        point = 1.0 if outcome.result == mine else 0.5 if outcome.result == "draw" else 0.0
        tally["points"].append(point)
        tally["plies"].append(pos.ply)
        tally["games"].add(tuple(pos.moves))
        if not args.quiet:
            print(f"game {g + 1}/{args.games}: model {mine:5s} vs {name}: "
                  f"{outcome.result} by {outcome.termination} in {pos.ply} plies "
                  f"-> {'win' if point == 1 else 'draw' if point == 0.5 else 'loss'}", file=out, flush=True)
        if args.show_board:
            print(render_board(pos, color=not args.no_color, last=pos.moves[-1] if pos.moves else None),
                  file=out, flush=True)


def summary_line(summary):
    """The human-readable match summary (the JSON line follows it)."""
    plies, openings = summary["opening_plies"], summary["openings"]
    start = (f"{openings} distinct random opening{'s' if openings != 1 else ''} of {plies} "
             f"pl{'ies' if plies != 1 else 'y'}" if plies else "the start position")
    return (f"model vs {summary['opponent']}: +{summary['wins']} ={summary['draws']} -{summary['losses']} "
            f"in {summary['games']} games ({summary['distinct_games']} distinct) from {start}; "
            f"score {format_score(summary)} (95%), Elo {format_elo(summary)}, "
            f"{summary['seconds_per_move']:.3f} s/move")


def run_match(args, out=None, player=None):
    """Play the match; returns the summary dict (also the last line printed).
    Ctrl-C stops it with the finished games' tally on stderr."""
    out = out or sys.stdout
    opponent, engine, name = open_opponent(args)  # before the model loads: a bad --engine fails fast
    tally = new_tally()
    try:
        player = player or load_player(args)
        play_match_games(args, player, opponent, engine, name, out, tally)
    except KeyboardInterrupt:
        points = tally["points"]
        if points:
            print(f"\nstopped after {len(points)} of {args.games} games: +{points.count(1.0)} "
                  f"={points.count(0.5)} -{points.count(0.0)} (an unfinished match gets no summary)",
                  file=sys.stderr)
        raise
    finally:
        if engine is not None:
            engine.close()
    s = match_summary(tally["points"])
    if engine is not None:
        s["engine_restarts"] = opponent.restarts  # searches retried on a fresh engine after a stall
    times, plies = tally["times"], tally["plies"]
    s.update(illegal_moves=tally["illegal"], seconds_per_move=round(sum(times) / max(1, len(times)), 4),
             opponent=name, condition=args.condition, opening_plies=args.opening_plies,
             openings=len(tally["openings"]), distinct_games=len(tally["games"]),
             mean_plies=round(sum(plies) / max(1, len(plies)), 1))
    print(summary_line(s), file=out)
    print(json.dumps(s), file=out, flush=True)
    return s


# ------------------------------------------------------------ interactive
HELP = (f"moves: {NOTATIONS};  commands: undo, hint, resign, save FILE, moves, help, quit")


class Session:
    """One interactive game: the human's colour, the position, the model player, input and output."""

    def __init__(self, args, player, inp, out, color):
        self.args, self.player, self.inp, self.out, self.color = args, player, inp, out, color
        self.pos = Position()
        self.human = args.color
        self.result = None

    def say(self, *parts):
        print(*parts, file=self.out, flush=True)

    def show(self):
        pos = self.pos
        self.say(render_board(pos, color=self.color, last=pos.moves[-1] if pos.moves else None))

    def model_move(self):
        started = time.perf_counter()
        mv = self.player.choose(self.pos)
        names = move_names(self.pos, mv)
        self.pos.push(mv)
        self.say(f"model plays {names['iccs']}  ({names['wxf']}, {names['chinese']})  "
                 f"[{time.perf_counter() - started:.2f}s]")

    def undo(self):
        """Take back the model's reply and the human's last move."""
        if self.pos.ply < 2 + (self.human == "black"):
            self.say("nothing to undo")
            return
        undone = [self.pos.pop(), self.pos.pop()]
        self.say(f"undone: {' '.join(reversed(undone))}")
        self.show()

    def hint(self):
        hints = self.player.hint(self.pos, k=3)
        self.say("hint: " + ", ".join(f"{m} ({move_names(self.pos, m)['wxf']}, {s:.2f})" for m, s in hints))

    def save(self, path):
        if not path:
            self.say("usage: save FILE")
            return
        try:
            write_pgn(path, [GameRecord(moves=self.pos.moves, result=None)])
            self.say(f"saved {self.pos.ply} plies to {path}")
        except OSError as e:
            self.say(f"cannot save: {e}")

    def human_move(self, text):
        """Play the human's move and the model's reply, or say in one line why the move is refused."""
        try:
            mv = parse_move(self.pos, text)
        except IllegalMoveError as e:
            self.say(bad_move_message(text, e.reason))
            return
        self.pos.push(mv)
        if self.pos.outcome(max_plies=self.args.max_plies) is None:
            self.model_move()
        self.show()

    def command(self, text):
        """Handle one input line; False when the game should stop (quit, resign)."""
        cmd, _, rest = text.partition(" ")
        cmd = cmd.lower()
        if cmd in ("quit", "exit"):
            return False
        if cmd == "resign":
            self.result = "black" if self.human == "red" else "red"
            self.say(f"you resign: {self.result} wins")
            return False
        actions = {"help": lambda: self.say(HELP), "undo": self.undo, "hint": self.hint,
                   "moves": lambda: self.say(" ".join(self.pos.moves) or "(no moves yet)"),
                   "save": lambda: self.save(rest.strip())}
        actions.get(cmd, lambda: self.human_move(text))()
        return True

    def play(self):
        """The game loop; returns the result (None if unfinished)."""
        self.say(f"You play {self.human}. {HELP}")
        if self.human == "black":
            self.model_move()
        self.show()
        while True:
            outcome = self.pos.outcome(max_plies=self.args.max_plies)
            if outcome is not None:
                self.result = outcome.result
                self.say(f"game over: {outcome.result} ({outcome.termination})")
                return self.result
            self.out.write(f"{self.pos.turn} to move> ")
            self.out.flush()
            line = self.inp.readline()
            if not line:
                self.say("")
                return self.result
            text = line.strip()
            if text and not self.command(text):
                return self.result


def interactive(args, inp=None, out=None):
    """Play one game at the terminal; returns the result. Ctrl-C prints the
    game's moves so far (to replay them) and passes the interrupt on."""
    inp = inp or sys.stdin
    out = out or sys.stdout
    color = not args.no_color and hasattr(out, "isatty") and out.isatty()
    color = color or (not args.no_color and os.environ.get("FORCE_COLOR") == "1")
    session = Session(args, load_player(args), inp, out, color)
    try:
        return session.play()
    except KeyboardInterrupt:
        moves = " ".join(session.pos.moves)
        print(f"\ngame stopped after {session.pos.ply} plies" + (f"; its moves (ICCS): {moves}" if moves else ""),
              file=out, flush=True)
        raise


def main(argv=None):
    args = parse_args(argv)
    if args.opponent == "human":
        interactive(args)
    else:
        run_match(args)
    return 0


if __name__ == "__main__":
    _common.run(main)
