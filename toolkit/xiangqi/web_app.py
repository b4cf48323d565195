"""Play Xiangqi in a browser: the ASGI app (Starlette) of one page and a small JSON API.

Everything the page needs is served from ``toolkit/xiangqi/web_static`` (no
CDN: the page works offline). The API, every body a JSON object of at most
``max_body`` bytes, every error ``{"error": "<one line>"}`` with a 4xx status:

================================  ==============================================================
``POST /api/games``               ``{"color": "red"|"black", "fen": optional}``: a new game (201);
                                  the model moves first when it is its turn
``GET /api/games/{id}``           the game's state (:meth:`~toolkit.xiangqi.web_games.WebGame.state`)
``POST /api/games/{id}/moves``    ``{"move": "h2e2" | "C2=5" | "炮二平五"}``: your move, then the
                                  model's reply; the state with ``"reply"``
``POST /api/games/{id}/undo``     take back your last move and the reply; the state with ``"undone"``
``GET /api/games/{id}/hint``      the model's top 3 moves with their probabilities among the legal moves
``GET /api/games/{id}/pgn``       the game as PGN (a download)
``GET /api/stats``                open games, replies, batched model passes, the model's busy seconds
================================  ==============================================================

Games live in memory (:class:`~toolkit.xiangqi.web_games.GameStore`: idle
expiry, a cap on open games); requests on one game are handled one at a
time, and the player runs on one thread for all games, or on one per
player process (:class:`~toolkit.xiangqi.move_worker.MovePool`, each game
always on the same one), the replies of waiting games batched.

>>> from starlette.testclient import TestClient
>>> from toolkit.xiangqi.player import RandomPlayer
>>> with TestClient(create_app(RandomPlayer(0))) as client:
...     game = client.post("/api/games", json={"color": "red"}).json()
...     client.post(f"/api/games/{game['id']}/moves", json={"move": "h2e2"}).json()["ply"]
2
"""

import asyncio
import contextlib
import json
import pathlib
import time
from collections import defaultdict

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .move_worker import MovePool
from .notation import move_names
from .web_games import GameError, GameStore

STATIC_DIR = pathlib.Path(__file__).with_name("web_static")
MAX_BODY = 4096


def error_response(status, message):
    return JSONResponse({"error": message}, status_code=status)


class XiangqiApi:
    """The API's handlers over one :class:`GameStore` and one :class:`MovePool` of players."""

    def __init__(self, factory, opponent, store, max_body=MAX_BODY, max_batch=64, processes=0):
        self.factory, self.opponent, self.store, self.max_body = factory, opponent, store, int(max_body)
        self.max_batch, self.processes = max_batch, processes
        self.pool = None  # started with the app (lifespan)
        self.locks = defaultdict(asyncio.Lock)  # one request at a time per game

    async def body(self, request, *required):
        """The request's JSON object (at most ``max_body`` bytes) with its ``required`` keys."""
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_body:
            raise GameError(413, f"request body of {declared} bytes: the limit is {self.max_body}")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_body:
                raise GameError(413, f"request body over {self.max_body} bytes")
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GameError(400, f"the body is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise GameError(400, f"the body must be a JSON object, got {type(data).__name__}")
        missing = [key for key in required if key not in data]
        if missing:
            raise GameError(422, f"missing {', '.join(map(repr, missing))} in the body")
        return data

    def state(self, game, status=200, **extra):
        return JSONResponse(dict(game.state(), opponent=self.opponent, **extra), status_code=status)

    async def think(self, kind, game, **options):
        return await asyncio.wrap_future(self.pool.submit(kind, game.pos.copy(), key=game.id, **options))

    async def reply(self, game):
        """The model's move, if it is its turn; its names and seconds, else None."""
        if not game.model_to_move():
            return None
        started = time.perf_counter()
        move, after = await self.think("choose", game)
        return dict(game.push(move, after), seconds=round(time.perf_counter() - started, 4))

    async def create(self, request):
        data = await self.body(request)
        unknown = sorted(set(data) - {"color", "fen"})
        if unknown:
            raise GameError(422, f"unknown field {unknown[0]!r}: a new game takes 'color' and 'fen'")
        game = self.store.create(data.get("color", "red"), data.get("fen"))
        for gone in [gid for gid, lock in self.locks.items() if gid not in self.store.games and not lock.locked()]:
            del self.locks[gone]  # the expired games' locks
        async with self.locks[game.id]:
            reply = await self.reply(game)
            return self.state(game, status=201, reply=reply)

    async def get(self, request):
        game = self.store.get(request.path_params["game_id"])
        async with self.locks[game.id]:
            return self.state(game)

    async def move(self, request):
        data = await self.body(request, "move")
        game = self.store.get(request.path_params["game_id"])
        async with self.locks[game.id]:
            played = game.play_human(data["move"])
            reply = await self.reply(game)
            return self.state(game, played=played, reply=reply)

    async def undo(self, request):
        game = self.store.get(request.path_params["game_id"])
        async with self.locks[game.id]:
            return self.state(game, undone=game.undo())

    async def hint(self, request):
        game = self.store.get(request.path_params["game_id"])
        async with self.locks[game.id]:
            game.check_going()
            if game.pos.turn != game.human:
                raise GameError(409, "a hint is for your move: wait for the reply")
            hints = await self.think("hint", game, k=3, probabilities=True)
            return JSONResponse({"hints": [dict(move_names(game.pos, move), probability=round(p, 4))
                                           for move, p in hints]})

    async def pgn(self, request):
        game = self.store.get(request.path_params["game_id"])
        async with self.locks[game.id]:
            return Response(game.pgn(), media_type="application/x-chess-pgn",
                            headers={"Content-Disposition": f'attachment; filename="xiangqi-{game.id}.pgn"'})

    async def stats(self, request):
        """Open games and the players' counters (replies, model passes, busy seconds)."""
        pool = self.pool
        return JSONResponse({"games": len(self.store), "max_games": self.store.max_games,
                             "idle_seconds": self.store.idle_seconds, "replies": pool.batched,
                             "batches": pool.batches, "busy_seconds": round(pool.busy_seconds, 3)})

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        loop = asyncio.get_running_loop()  # the player processes start (load their model) off the event loop
        self.pool = await loop.run_in_executor(None, MovePool, self.factory, self.processes, self.max_batch)
        try:
            yield
        finally:
            self.pool.close()


async def _game_error(request, error):
    return error_response(error.status, str(error))


async def _http_error(request, error):
    return error_response(error.status_code, f"{error.detail}: {request.method} {request.url.path}")


async def _server_error(request, error):
    return error_response(500, f"internal error ({type(error).__name__}); the server goes on")


def create_app(player=None, opponent="Xiangqi GPT", max_games=200, idle_seconds=3600, max_body=MAX_BODY,
               max_batch=64, factory=None, processes=0):
    """The Starlette app: the page at ``/``, its files under ``/static``, the
    API under ``/api`` (see the module notes). ``player``: an object with
    ``choose(pos)`` (and ``hint(pos, k, probabilities)`` for hints),
    typically :class:`~toolkit.xiangqi.player.Player`; or ``factory``, a
    picklable function returning one, with ``processes`` player processes
    (:class:`~toolkit.xiangqi.move_worker.MovePool`; 0: in this process).
    ``opponent``: how the page names it (its strength)."""
    if (player is None) == (factory is None):
        raise ValueError("give either player or factory")
    if player is not None and processes:
        raise ValueError("player processes need a picklable factory, not a player")
    factory = factory or (lambda: player)
    api = XiangqiApi(factory, opponent, GameStore(max_games, idle_seconds), max_body, max_batch, processes)
    game = "/api/games/{game_id}"
    routes = [
        Route("/", lambda request: FileResponse(STATIC_DIR / "index.html")),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/api/games", api.create, methods=["POST"]),
        Route("/api/stats", api.stats, methods=["GET"]),
        Route(game, api.get, methods=["GET"]),
        Route(game + "/moves", api.move, methods=["POST"]),
        Route(game + "/undo", api.undo, methods=["POST"]),
        Route(game + "/hint", api.hint, methods=["GET"]),
        Route(game + "/pgn", api.pgn, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=api.lifespan,
                    exception_handlers={GameError: _game_error, HTTPException: _http_error, 500: _server_error})
    app.state.api = api
    return app


def serve(app, host="127.0.0.1", port=8000, log_level="warning", out=None):
    """Run ``app`` on uvicorn at ``host:port`` until Ctrl-C; prints the URL once it listens."""
    import sys

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
                print(f"Xiangqi: open http://{shown}:{bound}/ (Ctrl-C stops the server)", file=out or sys.stdout,
                      flush=True)

    Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)).run()


__all__ = ["create_app", "serve", "XiangqiApi", "STATIC_DIR", "MAX_BODY"]
