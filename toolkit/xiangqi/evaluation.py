"""The Xiangqi GPT's evaluation (framework-free; the scorer is passed in, e.g.
``models.xiangqi.MoveScorer``): held-out next-move figures, matches against a
random mover and fairy-stockfish per player kind, the outcome-conditioning
comparison, the report (Markdown) and the merge of an earlier run's figures.

The figures of a run are one dict (``res``): ``model``, ``val_games``,
``accuracy_any`` / ``accuracy_own`` (:func:`held_out_accuracy`), ``matches``
(name -> :func:`~toolkit.xiangqi.match.run_match` summary), ``conditioning``,
``commands``, ``note``, ``complete``.

>>> plan = EvalPlan(random_games=0, engine_games=4, engine_depths=(1, 3))
>>> engine_match_sizes(plan), uses_engine(plan)
([4], True)
"""

import json
import sys
import time
from dataclasses import dataclass
from typing import Optional, Tuple

from .match import MatchSettings, run_match
from .match_stats import format_elo
from .player import Player
from .rules import Position

PLAYER_KINDS = {"guarded": ("guarded", True), "model": ("model + mate in one", False)}  # kind: (name, guard)


@dataclass
class EvalPlan:
    """The matches of an evaluation: ``random_games`` against the random mover and
    ``engine_games`` at each of ``engine_depths`` (fairy-stockfish binary ``engine``,
    None: looked up) for each of ``players`` (:data:`PLAYER_KINDS`), then the
    own-win vs ``<any>`` comparison of ``conditioning_games`` (None: ``random_games``)
    against ``conditioning_opponent`` ('random' or 'engine' at the first depth) with
    the first player kind; games capped at ``max_plies``, ``seed`` for the random
    mover and the openings, ``opening_plies`` random plies per pair of engine games."""

    random_games: int = 100
    engine_games: int = 100
    engine_depths: Tuple[int, ...] = (1, 3)
    engine: Optional[str] = None
    conditioning_games: Optional[int] = None
    conditioning_opponent: str = "random"
    players: Tuple[str, ...] = ("guarded", "model")
    max_plies: int = 300
    seed: int = 0
    opening_plies: int = 2

    def conditioning_size(self):
        return self.conditioning_games if self.conditioning_games is not None else self.random_games


def engine_match_sizes(plan):
    """The game counts of the matches against the engine (empty if none)."""
    sizes = [plan.engine_games] if plan.engine_games > 0 and plan.engine_depths else []
    if plan.conditioning_opponent == "engine" and plan.conditioning_size() > 0:
        sizes.append(plan.conditioning_size())
    return sizes


def uses_engine(plan):
    return bool(engine_match_sizes(plan))


# ------------------------------------------------------------------ held-out figures
def held_out_games(paths, val_fraction):
    """The validation split (the hash split of the training) of every record file in ``paths``."""
    from .records import read_games
    from .training_data import split_games

    held_out = []
    for path in paths:
        games, _ = read_games(path)
        held_out.extend(split_games(games, val_fraction)[1])
    return held_out


def _is_legal(pos, move):
    return pos.is_legal(move) if "?" not in move else False


def held_out_accuracy(scorer, games, n_positions, condition):
    """Over up to ``n_positions`` positions spread evenly over ``games``: top-1 among the legal
    moves vs the recorded move, how often the greedy 4-character decode and the most probable
    4-character string (``scorer.top_move``, not timed) are legal, and seconds per scoring pass.
    ``condition``: 'own' (the side to move's win token) or 'any'. None without positions."""
    positions = [(game, ply) for game in games for ply in range(len(game.moves))]
    if not positions:
        return None
    chosen = positions[::max(1, len(positions) // n_positions)][:n_positions]
    hits = legal_greedy = legal_top = 0
    started, top_seconds = time.perf_counter(), 0.0
    for game, ply in chosen:
        pos = Position.from_moves(game.moves[:ply])
        legal = pos.legal_moves()
        token = pos.turn if condition == "own" else "any"
        scores, greedy = scorer.score(pos.moves, legal, token, greedy=True)
        best = legal[int(max(range(len(legal)), key=lambda k: scores[k]))]
        hits += best == game.moves[ply]
        legal_greedy += _is_legal(pos, greedy)
        top_started = time.perf_counter()
        legal_top += _is_legal(pos, scorer.top_move(pos.moves, token))
        top_seconds += time.perf_counter() - top_started
    count = len(chosen)
    return {"positions": count, "top1_accuracy": hits / count, "greedy_legal_rate": legal_greedy / count,
            "top_move_legal_rate": legal_top / count,
            "seconds_per_position": (time.perf_counter() - started - top_seconds) / count}


def add_held_out_figures(res, scorer, games, n_positions, log=None):
    """``accuracy_any`` and ``accuracy_own`` into ``res``, each also logged as it ends."""
    for condition in ("any", "own"):
        res[f"accuracy_{condition}"] = held_out_accuracy(scorer, games, n_positions, condition)
        label = "<any>" if condition == "any" else "own"
        print(f"[accuracy {label}] {json.dumps(res[f'accuracy_{condition}'])}", file=log or sys.stderr, flush=True)


# ------------------------------------------------------------------ matches
def play_eval_match(player, opponent, games, depth, plan, label, log=None):
    """One match (its game lines to ``log``, default stderr); its summary with ``wall_seconds``."""
    log = log or sys.stderr
    settings = MatchSettings(opponent=opponent, games=games, engine_depth=depth, engine=plan.engine,
                             max_plies=plan.max_plies, seed=plan.seed,
                             opening_plies=plan.opening_plies if opponent == "engine" else 0)
    started = time.time()
    summary = run_match(settings, player, out=log)
    summary["wall_seconds"] = round(time.time() - started, 1)
    print(f"[{label}] {json.dumps(summary)}", file=log, flush=True)
    return summary


def make_players(scorer, plan):
    """One own-win :class:`Player` per kind of ``plan.players``."""
    return {kind: Player(scorer, condition="own", guard=PLAYER_KINDS[kind][1], seed=plan.seed)
            for kind in plan.players}


def run_matches(players, plan, res, flush, log=None):
    """The random-mover and engine matches of every player kind into ``res['matches']``,
    ``flush()`` after each (a long evaluation stopped early keeps its figures); their game
    lines and summaries go to ``log`` (default stderr)."""
    for kind, player in players.items():
        name = PLAYER_KINDS[kind][0]
        if plan.random_games > 0:
            res["matches"][f"vs random mover ({name}, own-win token)"] = play_eval_match(
                player, "random", plan.random_games, 1, plan, f"random own {kind}", log)
            flush()
        for depth in plan.engine_depths:
            if plan.engine_games > 0:
                res["matches"][f"vs fairy-stockfish depth {depth} ({name}, own-win token)"] = play_eval_match(
                    player, "engine", plan.engine_games, depth, plan, f"engine d{depth} own {kind}", log)
                flush()


def run_conditioning(scorer, players, plan, res, log=None):
    """The own-win vs ``<any>`` comparison with the first player kind into ``res`` (an own-win
    match of the same size already played is reused); its matches logged as in :func:`run_matches`."""
    games = plan.conditioning_size()
    first = plan.players[0]
    name, own = PLAYER_KINDS[first][0], players[first]
    any_player = Player(scorer, condition="any", guard=own.guard, seed=plan.seed)
    opponent, depth = plan.conditioning_opponent, (plan.engine_depths or [1])[0]
    label = "random mover" if opponent == "random" else f"fairy-stockfish depth {depth}"
    own_key = f"vs {label} ({name}, own-win token)"
    own_summary = res["matches"].get(own_key)
    if own_summary is None or own_summary["games"] != games:
        own_summary = res["matches"][own_key + f", {games} games"] = play_eval_match(
            own, opponent, games, depth, plan, "cond own", log)
    any_summary = res["matches"][f"vs {label} ({name}, `<any>` token)"] = play_eval_match(
        any_player, opponent, games, depth, plan, "cond any", log)
    res["conditioning"] = {"opponent": label, "player": name, "games": games, "own": own_summary["score"],
                           "any": any_summary["score"]}


# ------------------------------------------------------------------ report and merge
def match_row(summary):
    """The cells of a match's table row after its name."""
    return (f"{summary['games']} | +{summary['wins']} ={summary['draws']} -{summary['losses']} | "
            f"{summary['score']:.3f} | {format_elo(summary)} | {summary['mean_plies']} | "
            f"{summary['seconds_per_move']:.3f}")


def _held_out_lines(res):
    lines = []
    for key, title in (("accuracy_any", "`<any>` token"), ("accuracy_own", "own-win token")):
        figures = res.get(key)
        if figures:
            top_move = (f", most probable 4-char move legal {100 * figures['top_move_legal_rate']:.1f}%"
                        if "top_move_legal_rate" in figures else "")
            lines.append(f"- Held-out next move ({title}, {figures['positions']} positions of {res['val_games']} "
                         f"held-out engine games): top-1 among legal moves {100 * figures['top1_accuracy']:.1f}%, "
                         f"greedy 4-char move legal {100 * figures['greedy_legal_rate']:.1f}% (goal 98%)"
                         f"{top_move}, {figures['seconds_per_position']:.3f} s per scoring pass")
    return lines


def _match_lines(res):
    lines = ["", "| match (model plays both colours) | games | W/D/L | score | Elo [95%] | mean plies | s/move |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {match_row(summary)} |" for name, summary in res["matches"].items()]
    conditioning = res.get("conditioning")
    if conditioning:
        player = conditioning.get("player", "model + mate in one")
        lines += ["", f"Conditioning ({conditioning['opponent']}, {player} player): own-win token score "
                  f"{conditioning['own']:.3f} vs `<any>` {conditioning['any']:.3f} ({conditioning['games']} games "
                  f"each, same model, same seeds): difference {conditioning['own'] - conditioning['any']:+.3f}."]
    per_move = [summary["seconds_per_move"] for summary in res["matches"].values()]
    if per_move:
        lines.append(f"\nSeconds per model move (mean over the matches): {sum(per_move) / len(per_move):.3f} "
                     f"(goal < 0.2).")
    return lines


def report(res, command, machine, date):
    """The Markdown report of the figures ``res``: ``machine`` and ``date`` (strings), the
    commands (``res['commands']``, else ``command``), the note, held-out figures, the match
    table, the conditioning comparison and the mean seconds per move."""
    commands = res.get("commands") or [command]
    lines = [f"Machine: {machine}; date {date}; model `{res['model']}`.",
             "Command" + ("s" if len(commands) > 1 else "") + ": " + "; then ".join(f"`{c}`" for c in commands), ""]
    if res.get("note"):
        lines += [res["note"], ""]
    return "\n".join(lines + _held_out_lines(res) + _match_lines(res))


def load_merge(path):
    """The figures of an earlier run (its ``--json`` file); a file that is not one is a one-line
    ValueError naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            old = json.load(handle)
    except ValueError as error:
        reason = next(line for line in (str(error).strip() or type(error).__name__).splitlines() if line.strip())
        raise ValueError(f"--merge {path}: not JSON ({reason[:500]}); give the --json file of an earlier run") \
            from None
    if not isinstance(old, dict) or not isinstance(old.get("matches", {}), dict):
        raise ValueError(f"--merge {path}: not the --json file of an earlier run (no figures object)")
    return old


def merge_into(res, old, have_val):
    """Fold an earlier run's figures ``old`` into ``res`` (its matches added; its other figures
    kept where ``res`` has none, or all of them when this run has no held-out games:
    ``have_val`` False); returns its commands."""
    for key, value in old.items():
        if key == "matches":
            res["matches"].update(value)
        elif key not in ("complete", "commands", "model") and (key not in res or not have_val):
            res[key] = value
    return old.get("commands", [])


def plan_from(options):
    """An :class:`EvalPlan` from an object with its fields as attributes (e.g. parsed options)."""
    return EvalPlan(**{name: getattr(options, name) for name in EvalPlan.__dataclass_fields__
                       if hasattr(options, name)})


__all__ = ["PLAYER_KINDS", "EvalPlan", "engine_match_sizes", "uses_engine", "held_out_games", "held_out_accuracy",
           "add_held_out_figures", "play_eval_match", "make_players", "run_matches", "run_conditioning", "match_row",
           "report", "load_merge", "merge_into", "plan_from"]
