#!/usr/bin/env python
"""Load on the Xiangqi web server: concurrent games, each a client playing random legal
moves, against scripts/serve_xiangqi.py on 127.0.0.1.

Runs, in one process run, three servers: the default (--max-batch 64 --processes 2: replies
batched across games, two player processes), unbatched (--max-batch 1) and one player process
(--processes 1). Each plays one game alone and --games concurrent games of --moves moves with
no thinking time (the worst case: every client posts its next move as soon as the reply
comes); the first server of --servers also at a person's pace (--think LOW HIGH seconds before
each move). Per run: p50 / p95 / max seconds per model reply (the round trip of a move: the
person's move in, the model's reply out), replies per second, the mean batch of the model's
passes, the peak RSS of the server and its player processes, errors, and games whose state
came back mixed with another's (each client checks every state against its own record, and
every game is read back at the end). Goal: p95 under 1 s at 50 concurrent games.
--write puts the table into docs/benchmarks.md (section bench_web_xiangqi).

Examples:
    python scripts/bench_web_xiangqi.py
    python scripts/bench_web_xiangqi.py --games 50 --moves 20 --write
    python scripts/bench_web_xiangqi.py --games 4 --moves 3 --servers default   # a quick look
"""

import argparse
import os
import sys

import _common  # quiet TF, one-line errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "scripts", "serve_xiangqi.py")
SERVERS = {"default": (True, 2), "unbatched": (False, 2), "one-process": (True, 1)}  # (batched, processes)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--games", type=int, default=50, help="concurrent games (>= 1)")
    parser.add_argument("--moves", type=int, default=20, help="moves per game (>= 1)")
    parser.add_argument("--think", type=float, nargs=2, default=[1.0, 3.0], metavar=("LOW", "HIGH"),
                        help="the paced run: seconds before each move, uniform in [LOW, HIGH] (0 0: no paced run)")
    parser.add_argument("--servers", nargs="+", choices=sorted(SERVERS), default=list(SERVERS),
                        help="which servers to run: default: --max-batch 64 --processes 2; unbatched: "
                             "--max-batch 1 --processes 2; one-process: --max-batch 64 --processes 1")
    parser.add_argument("--max-batch", type=int, default=64,
                        help="the --max-batch of the batched servers (default and one-process; >= 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clients' random moves")
    _common.add_write(parser, "the table into --md (section bench_web_xiangqi)")
    _common.add_verbose(parser)
    return parser


def server_options(args, name):
    """The server's options: --max-batch (--max-batch of this run, or 1 unbatched) and --processes."""
    batched, processes = SERVERS[name]
    return ["--max-batch", str(args.max_batch if batched else 1), "--processes", str(processes)]


def measure(args, name, paced):
    """One server: a lone game, ``--games`` games without thinking, and (``paced``) at --think's pace."""
    from toolkit.xiangqi.web_load import ServerProcess, latency_summary, play_games

    runs = [(1, (0.0, 0.0)), (args.games, (0.0, 0.0))]
    if paced and args.think[1] > 0:
        runs.append((args.games, tuple(args.think)))
    rows = []
    options = server_options(args, name)
    with ServerProcess([sys.executable, SERVER, "--port", "0", "--max-games", str(max(args.games + 1, 200))]
                       + options, cwd=ROOT) as server:
        for games, think in runs:
            before = play_games(server.url, 0, 0)["stats"]
            result = play_games(server.url, games, args.moves, args.seed, think)
            after = result["stats"]
            rows.append(dict(latency_summary(result), server=name, games=games, think=think,
                             mean_batch=(after["replies"] - before["replies"]) / max(after["batches"] - before[
                                 "batches"], 1), rss_mb=server.peak_rss_mb(),
                             errors=len(result["errors"]), mixed=len(result["mixed"]),
                             first_error=(result["errors"] or [""])[0]))
            print(f"{name}, {games} games, think {think}: p50 {rows[-1]['p50']:.3f} s, p95 {rows[-1]['p95']:.3f} s, "
                  f"{rows[-1]['replies_per_s']:.1f} replies/s", flush=True)
    return rows


def table(args, rows):
    head = ["server", "games", "thinking s", "replies", "p50 s", "p95 s", "max s", "replies/s", "mean batch",
            "peak RSS MiB", "errors", "mixed"]
    body = [[f"{r['server']} ({' '.join(server_options(args, r['server']))})", str(r["games"]),
             "%g-%g" % r["think"] if r["think"][1] else "0", str(r["replies"]), f"{r['p50']:.3f}", f"{r['p95']:.3f}",
             f"{r['max']:.3f}", f"{r['replies_per_s']:.1f}", f"{r['mean_batch']:.1f}", f"{r['rss_mb']:.0f}",
             str(r["errors"]), str(r["mixed"])] for r in rows]
    return head, body


def summary(args, rows):
    alone = {r["server"]: r for r in rows if r["games"] == 1}
    loaded = [r for r in rows if r["games"] == args.games and not r["think"][1]]
    return " ".join(f"{r['server']}: p95 {r['p95']:.2f} s at {r['games']} games without thinking, "
                    f"{r['replies_per_s']:.1f} replies/s = {r['replies_per_s'] / alone[r['server']]['replies_per_s']:.1f}x "
                    f"a lone game's." for r in loaded if r["server"] in alone)


def main(argv=None):
    args = build_parser().parse_args(argv)
    _common.check_at_least(args, 1, "games", "moves")
    _common.check_at_least(args, 2, "max-batch")
    if not 0 <= args.think[0] <= args.think[1]:
        raise _common.UsageError(f"--think needs 0 <= LOW <= HIGH, got {args.think}")
    from toolkit import benchmarking

    rows = [row for i, name in enumerate(args.servers) for row in measure(args, name, paced=i == 0)]
    head, body = table(args, rows)
    print(benchmarking.text_table(head, body))
    text = (f"{args.games} concurrent games of {args.moves} moves (the clients play random legal moves) against "
            f"`scripts/serve_xiangqi.py` on 127.0.0.1, the bundled model with its rule guard, TensorFlow backend, "
            f"the load client in the same machine's third process; a reply's time is the round trip of `POST "
            f"/api/games/{{id}}/moves`; replies/s over the whole run. Goal: p95 under 1 s at 50 games. "
            + summary(args, rows))
    body_md = benchmarking.section_body("Xiangqi web server under load", "scripts/bench_web_xiangqi.py", text,
                                        benchmarking.markdown_table(head, body, "lrrrrrrrrrrr"), argv)
    benchmarking.report(body_md, "bench_web_xiangqi", args.write, args.md)
    errors = [r["first_error"] for r in rows if r["first_error"]]
    if errors:
        raise _common.UsageError(f"{len(errors)} runs had errors; the first: {errors[0]}")
    return 0


if __name__ == "__main__":
    _common.run(main)
