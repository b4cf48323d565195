#!/usr/bin/env python
"""Play the Xiangqi GPT in a browser: a local web page and its JSON API.

Starts the app of toolkit.xiangqi.web_app on uvicorn and prints its URL. The
page is served from this machine (no CDN: it works offline); games are kept in
memory, at most --max-games at a time, each dropped --idle-minutes after its
last request. Binds to 127.0.0.1 (this machine only) unless --host says
otherwise.

Examples:
    python scripts/serve_xiangqi.py                      # then open http://127.0.0.1:8000/
    python scripts/serve_xiangqi.py --port 8080 --int8   # Keras int8 weights
    python scripts/serve_xiangqi.py --host 0.0.0.0       # reachable from the local network
"""

import argparse
import os
import socket

import _common  # quiet TF, one-line errors

from toolkit.xiangqi.model_dir import check_model_dir


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_common.HelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--model", default=None, help="model directory (config.json + model.weights.h5); "
                                                      "unset: the bundled models/xiangqi_model")
    parser.add_argument("--int8", action="store_true", help="Keras int8 weights")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 plays the model's best move")
    parser.add_argument("--no-guard", action="store_true", help="the model's move only, no rule guard")
    parser.add_argument("--max-games", type=int, default=200, help="open games at most (>= 1)")
    parser.add_argument("--idle-minutes", type=float, default=60.0, help="a game is dropped this long after "
                                                                         "its last request (> 0)")
    parser.add_argument("--max-batch", type=int, default=64, help="replies of at most this many games in one "
                                                                  "batched model pass (>= 1)")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                        help="player processes, each with its own model, a game always on the same one (the "
                             "rule checks around the model hold Python's lock: one process uses one core; 0: "
                             "the server's own process)")
    _common.add_verbose(parser)
    return parser


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    _common.check_at_least(args, 1, "max-games", "max-batch")
    _common.check_at_least(args, 0, "port", "temperature", "processes")
    if not 0 <= args.port <= 65535:
        raise _common.UsageError(f"--port must be in 0..65535, got {args.port}")
    if not args.idle_minutes > 0:
        raise _common.UsageError(f"--idle-minutes must be > 0, got {args.idle_minutes}")
    check_model_dir(args.model)
    check_port_free(args.host, args.port)
    return args


def check_port_free(host, port):
    """A one-line UsageError now, before the model loads, if ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as error:
            raise _common.UsageError(f"cannot listen on {host}:{port} ({error.strerror}): pick another --port "
                                     f"(0: any free one) or stop what uses it") from None


def main(argv=None):
    args = parse_args(argv)
    import functools

    from models.xiangqi import load_player, player_description
    from toolkit.xiangqi.web_app import create_app, serve

    # in each player process: a cache per open game (up to 64) in 64-position steps (a short game's
    # cache is 256 positions, not 1024), traced for batches of up to --max-batch games
    factory = functools.partial(load_player, args.model, quantize="int8" if args.int8 else None,
                                keep=min(args.max_games, 64), bucket=64, batch=args.max_batch,
                                temperature=args.temperature, guard=not args.no_guard)
    app = create_app(factory=factory, processes=args.processes, max_games=args.max_games,
                     idle_seconds=60 * args.idle_minutes, max_batch=args.max_batch,
                     opponent=player_description(args.model, args.temperature, not args.no_guard))
    serve(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    _common.run(main)
