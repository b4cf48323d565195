"""The Xiangqi web API, in process (Starlette's TestClient): every endpoint and every bad input,
against a cheap deterministic player (the real model plays in tests/scripts/test_serve_xiangqi.py)."""

import threading

import pytest
from starlette.testclient import TestClient

from toolkit.xiangqi.move_worker import MoveWorker
from toolkit.xiangqi.player import Player
from toolkit.xiangqi.records import read_pgn
from toolkit.xiangqi.rules import Position
from toolkit.xiangqi.web_app import create_app
from toolkit.xiangqi.web_games import GameError, GameStore

MATE_IN_ONE = "3k5/9/9/9/9/9/9/9/R8/1R2K4 w - - 0 1"  # red: a1d1 mates


class Alphabetical:
    """Prefers the alphabetically first move: a deterministic stand-in for the model."""

    def score(self, history, candidates, condition=None):
        order = sorted(candidates)
        return [-float(order.index(move)) for move in candidates]


def player():
    return Player(Alphabetical(), guard=False)


@pytest.fixture
def client():
    with TestClient(create_app(player(), opponent="alphabetical", max_games=5)) as test_client:
        yield test_client


def new_game(client, **body):
    response = client.post("/api/games", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    return body["error"]


def test_a_game_as_red_moves_in_every_notation_then_undo(client):
    game = new_game(client, color="red")
    assert game["ply"] == 0 and game["turn"] == "red" and game["human"] == "red" and game["reply"] is None
    assert game["opponent"] == "alphabetical" and len(game["board"]) == 10 and game["board"][0] == "RNBAKABNR"
    assert sorted(game["legal"]) == sorted(Position().legal_moves()) and game["over"] is None
    url = f"/api/games/{game['id']}"
    for text, iccs in (("h2e2", "h2e2"), ("H2+3", "h0g2"), ("车一平二", "i0h0")):
        state = client.post(url + "/moves", json={"move": text}).json()
        assert state["played"]["iccs"] == iccs and state["reply"]["side"] == "black"
        assert state["last"] == state["reply"]["iccs"] and state["turn"] == "red"
    assert state["ply"] == 6 and [m["iccs"] for m in state["moves"]][::2] == ["h2e2", "h0g2", "i0h0"]
    assert state["moves"][0] == {"iccs": "h2e2", "wxf": "C2=5", "chinese": "炮二平五", "side": "red"}
    pos = Position.from_moves([m["iccs"] for m in state["moves"]])  # every reply was legal
    stats = client.get("/api/stats").json()
    assert stats["games"] == 1 and stats["replies"] == 3 and stats["batches"] == 3 and stats["max_games"] == 5
    assert client.get(url).json()["fen"] == pos.fen()
    undone = client.post(url + "/undo").json()
    assert undone["ply"] == 4 and undone["undone"] == [m["iccs"] for m in state["moves"][4:]]
    client.post(url + "/undo"), client.post(url + "/undo")
    assert "nothing to undo" in error(client.post(url + "/undo"), 409)


def test_as_black_the_model_opens_and_hints_are_probabilities(client):
    game = new_game(client, color="black")
    assert game["ply"] == 1 and game["reply"]["side"] == "red" and game["turn"] == "black"
    assert game["reply"]["iccs"] == sorted(Position().legal_moves())[0]
    hints = client.get(f"/api/games/{game['id']}/hint").json()["hints"]
    assert len(hints) == 3 and all(0 < h["probability"] < 1 for h in hints)
    assert hints[0]["probability"] > hints[1]["probability"] > hints[2]["probability"]
    assert {h["iccs"] for h in hints} <= set(game["legal"]) and all(h["chinese"] and h["wxf"] for h in hints)
    assert "you have not moved" in error(client.post(f"/api/games/{game['id']}/undo"), 409)


def test_a_forced_game_ends_with_its_result_and_a_pgn(client, tmp_path):
    game = new_game(client, color="red", fen=MATE_IN_ONE)
    url = f"/api/games/{game['id']}"
    state = client.post(url + "/moves", json={"move": "a1d1"}).json()
    assert state["over"] == {"result": "red", "termination": "checkmate", "text": "red wins by checkmate"}
    assert state["reply"] is None and state["legal"] == []
    assert "the game is over: red wins by checkmate" in error(client.post(url + "/moves", json={"move": "a0a1"}), 409)
    assert "over" in error(client.get(url + "/hint"), 409)
    pgn = client.get(url + "/pgn")
    assert pgn.status_code == 200 and "attachment" in pgn.headers["content-disposition"]
    (tmp_path / "game.pgn").write_text(pgn.text, encoding="utf-8")
    games, _ = read_pgn(str(tmp_path / "game.pgn"))
    assert games[0].moves == ["a1d1"] and games[0].result == "red" and MATE_IN_ONE.split()[0] in games[0].fen
    assert '[Termination "red wins by checkmate"]' in pgn.text
    undone = client.post(url + "/undo").json()  # the mating move alone: there was no reply
    assert undone["undone"] == ["a1d1"] and undone["over"] is None and undone["ply"] == 0


@pytest.mark.parametrize("body, status, words", [
    (b"{", 400, "not JSON"), (b"[1, 2]", 400, "JSON object"), (b"\xff\xfe", 400, "not JSON"),
    (b"{}", 422, "missing 'move'"), (b'{"move": 7}', 422, "short string"), (b'{"move": ""}', 422, "short string"),
    (b'{"move": "a0a5"}', 422, "illegal move 'a0a5'"), (b'{"move": "z9z9"}', 422, "z9z9"),
    (b'{"move": "' + b"h" * 100 + b'"}', 422, "short string"),
])
def test_bad_moves_are_one_line_4xx(client, body, status, words):
    game = new_game(client)
    response = client.post(f"/api/games/{game['id']}/moves", content=body,
                           headers={"content-type": "application/json"})
    assert words in error(response, status)
    assert client.get(f"/api/games/{game['id']}").json()["ply"] == 0  # nothing changed


def test_bad_requests_and_unknown_games(client):
    assert "color must be" in error(client.post("/api/games", json={"color": "green"}), 422)
    assert "bad fen" in error(client.post("/api/games", json={"fen": "not a fen"}), 422)
    assert "unknown field 'colour'" in error(client.post("/api/games", json={"colour": "red"}), 422)
    for method, path in (("GET", ""), ("POST", "/moves"), ("POST", "/undo"), ("GET", "/hint"), ("GET", "/pgn")):
        for game_id in ("0123456789abcdef", "..%2F..%2Fetc", "x" * 5000):
            response = client.request(method, f"/api/games/{game_id}{path}", json={"move": "h2e2"})
            assert response.status_code == 404, (method, path, response.text)
            assert len(response.json()["error"]) < 200
    assert "Method Not Allowed" in error(client.delete("/api/games"), 405)
    assert "Not Found" in error(client.get("/api/nothing"), 404)


def test_a_body_over_the_limit_is_refused_declared_or_streamed(client):
    game = new_game(client)
    big = b'{"move": "h2e2", "pad": "' + b"x" * 5000 + b'"}'
    assert "limit is 4096" in error(client.post(f"/api/games/{game['id']}/moves", content=big), 413)
    streamed = client.post(f"/api/games/{game['id']}/moves", content=iter([big[:3000], big[3000:]]))
    assert "over 4096 bytes" in error(streamed, 413)
    assert client.post(f"/api/games/{game['id']}/moves", json={"move": "h2e2"}).json()["ply"] == 2


def test_games_are_isolated_capped_and_expire(client):
    first, second = new_game(client), new_game(client, color="black")
    client.post(f"/api/games/{first['id']}/moves", json={"move": "h2e2"})
    assert client.get(f"/api/games/{second['id']}").json()["ply"] == 1
    assert client.get(f"/api/games/{first['id']}").json()["ply"] == 2
    for _ in range(3):
        new_game(client)
    assert "too many open games (5" in error(client.post("/api/games", json={}), 503)
    store = client.app.state.api.store
    now = store.clock()
    store.clock = lambda: now + store.idle_seconds + 1
    assert "expired" in error(client.get(f"/api/games/{first['id']}"), 404)
    assert len(store) == 0 and new_game(client)["ply"] == 0


def test_a_failing_player_is_a_500_and_the_server_goes_on():
    class Broken:
        def score(self, history, candidates, condition=None):
            if len(history) == 1:
                raise RuntimeError("model exploded")
            return [0.0] * len(candidates)

    with TestClient(create_app(Player(Broken(), guard=False)), raise_server_exceptions=False) as client:
        game = new_game(client)
        assert "internal error (RuntimeError)" in error(
            client.post(f"/api/games/{game['id']}/moves", json={"move": "h2e2"}), 500)
        assert new_game(client, color="black")["ply"] == 1


def test_game_store_refuses_clearly():
    store = GameStore(max_games=1, idle_seconds=10)
    with pytest.raises(GameError, match="unknown game id 'abc'"):
        store.get("abc")
    game = store.create("black")
    with pytest.raises(GameError, match="it is red's move, not yours"):
        game.play_human("h2e2")
    game.push("h2e2", after=Position())  # not this game one move on: ignored, the move is pushed
    assert game.pos.moves == ["h2e2"]
    game.push("h9g7", after=Position.from_moves(["h2e2", "h9g7"]))
    assert game.pos.moves == ["h2e2", "h9g7"] and [n["iccs"] for n in game.names] == ["h2e2", "h9g7"]


def test_the_worker_batches_the_replies_of_waiting_games():
    """Replies queued while the worker is busy go to the player in one choose_many call."""
    release, calls = threading.Event(), []

    class Recording:
        def choose_many(self, positions):
            calls.append(len(positions))
            release.wait(10)
            return [pos.legal_moves()[0] for pos in positions]

    worker = MoveWorker(Recording(), max_batch=8)
    try:
        first = worker.submit("choose", Position())
        while not calls:
            pass
        waiting = [worker.submit("choose", Position.from_moves(["h2e2"])) for _ in range(10)]
        release.set()
        assert first.result(10)[0] == Position().legal_moves()[0]
        assert all(f.result(10)[0] == Position.from_moves(["h2e2"]).legal_moves()[0] for f in waiting)
        assert calls == [1, 8, 2] and worker.batched == 11 and worker.batches == 3
    finally:
        worker.close()


def test_the_module_examples_run():
    import doctest

    from toolkit.xiangqi import move_worker, web_app, web_games

    for module in (web_games, move_worker, web_app):
        result = doctest.testmod(module)
        assert result.attempted and result.failed == 0, module.__name__


class PidPlayer:
    """A picklable player that says which process answered (its hint)."""

    def choose(self, pos):
        return pos.legal_moves()[0]

    def hint(self, pos, k=3, probabilities=False):
        import os

        return [(str(os.getpid()), 1.0)]


def failing_factory():
    raise RuntimeError("no model here")


def test_a_pool_of_player_processes_keeps_each_game_on_one():
    from toolkit.xiangqi.move_worker import MovePool

    pool = MovePool(PidPlayer, processes=2)
    try:
        start = Position.from_moves(["h2e2", "h9g7"])
        move, after = pool.submit("choose", start, key="a").result(60)
        assert move == start.legal_moves()[0] and after.moves == start.moves + [move]
        assert after.fen() == Position.from_moves(after.moves).fen() and after.legal_moves()  # a working copy
        pids = {key: {pool.submit("hint", start, key=key).result(60)[0][0] for _ in range(3)}
                for key in ("a", "b", "c", "d", "e")}
        assert all(len(answered) == 1 for answered in pids.values())  # one process per game
        assert len(set.union(*pids.values())) == 2  # both processes serve games
        assert pool.batched == 1
    finally:
        pool.close()
    with pytest.raises(RuntimeError, match="did not start"):
        MovePool(failing_factory, processes=1, start_timeout=60)
