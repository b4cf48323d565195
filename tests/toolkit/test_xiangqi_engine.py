"""The fairy-stockfish UCI client. The engine is required: without it these
tests FAIL (install: apt-get install fairy-stockfish, or `make system-deps`)."""

import pytest

from toolkit.xiangqi.engine import (EngineError, EngineNotFoundError, EngineUnusableError, UciEngine, check_engine,
                                   find_engine, open_engine, parse_info)
from toolkit.xiangqi.rules import Position


@pytest.fixture(scope="module")
def engine():
    try:
        path = find_engine()
    except EngineNotFoundError as e:
        pytest.fail(f"fairy-stockfish is required for these tests: {e}")
    with UciEngine(path) as eng:
        yield eng


def test_handshake_and_multipv(engine):
    assert engine.name and "Stockfish" in engine.name
    engine.new_game()
    pos = Position.from_moves(["h2e2"])
    res = engine.search(moves=pos.moves, depth=3, multipv=3)
    assert res.bestmove in pos.legal_moves()
    assert [ln.multipv for ln in res.lines] == [1, 2, 3]
    firsts = [ln.pv[0] for ln in res.lines]
    assert len(set(firsts)) == 3 and all(m in pos.legal_moves() for m in firsts)
    assert res.lines[0].pv[0] == res.bestmove and res.lines[0].score >= res.lines[-1].score
    one = engine.search(moves=pos.moves, nodes=200)  # back to one line
    assert len(one.lines) == 1 and one.bestmove in pos.legal_moves()


def test_fen_positions_mate_and_no_move(engine):
    res = engine.search(fen="4k4/9/9/9/9/R8/9/9/9/5K3 w - - 0 1", depth=5)
    assert res.lines[0].mate is not None and res.lines[0].mate > 0 and res.lines[0].score > 90_000
    mated = engine.search(fen="3k5/9/9/9/9/9/9/9/9/3RK4 b - - 0 1", depth=2)
    assert mated.bestmove is None


def test_search_needs_a_limit(engine):
    with pytest.raises(ValueError):
        engine.search()


def test_timeout_stops_the_search():
    with UciEngine() as eng:
        res = eng.search(depth=60, timeout=0.3)  # cannot finish: 'stop' makes it answer
        assert res.bestmove in Position().legal_moves()


def test_missing_binary_names_the_path(tmp_path):
    missing = str(tmp_path / "no-such-engine")
    with pytest.raises(EngineNotFoundError) as err:
        UciEngine(missing)
    assert missing in str(err.value) and "apt-get install fairy-stockfish" in str(err.value)
    not_uci = tmp_path / "not-an-engine"
    not_uci.write_text("#!/bin/sh\nexit 0\n")
    not_uci.chmod(0o755)
    with pytest.raises(EngineError):
        UciEngine(str(not_uci), timeout=2)


def test_close_is_clean_and_idempotent():
    eng = UciEngine()
    proc = eng.proc
    eng.close()
    eng.close()
    assert proc.poll() is not None and eng.proc is None


def test_parse_info_lines():
    ln = parse_info("info depth 7 seldepth 9 multipv 1 score mate -3 nodes 5000 nps 1 time 3 pv e10e9 a5e5")
    assert (ln.depth, ln.mate, ln.score_cp, ln.pv) == (7, -3, None, ["e9e8", "a4e4"]) and ln.score < -90_000
    assert parse_info("info string variant xiangqi") is None
    assert parse_info("info depth 2 currmove h3e3 currmovenumber 1") is None


def test_restart_gives_a_fresh_engine_with_the_same_settings():
    with UciEngine(hash_mb=8) as eng:
        old = eng.proc
        eng.set_option("MultiPV", 2)
        eng.restart()
        assert old.poll() is not None and eng.proc is not old and eng.proc.poll() is None
        assert eng._multipv == 1  # a new process: back to one line
        res = eng.search(depth=2)
        assert res.bestmove in Position().legal_moves() and len(res.lines) == 1


def test_engine_player_retries_a_stalled_search_on_a_restarted_engine():
    from toolkit.xiangqi.player import EnginePlayer

    class Flaky:
        """Fails the first ``fail`` searches (like a search that hangs past its timeout)."""

        def __init__(self, fail):
            self.fail, self.calls, self.restarts = fail, 0, 0

        def bestmove(self, fen, moves, **limits):
            self.calls += 1
            if self.calls <= self.fail:
                raise EngineError("engine did not answer 'go depth 1' within 120s even after 'stop'; killed it")
            return "h2e2"

        def restart(self):
            self.restarts += 1

    flaky = Flaky(fail=1)
    player = EnginePlayer(flaky, depth=1)
    assert player.choose(Position()) == "h2e2"
    assert (flaky.calls, flaky.restarts, player.restarts) == (2, 1, 1)
    stuck = EnginePlayer(Flaky(fail=100), depth=1, max_restarts=2)
    for _ in range(2):  # each failure is retried once on a restarted engine, which fails again
        with pytest.raises(EngineError):
            stuck.choose(Position())
    assert stuck.restarts == 2
    with pytest.raises(EngineError):  # no restarts left: the error goes through at once
        stuck.choose(Position())
    assert stuck.engine.restarts == 2 and stuck.engine.calls == 5


def test_open_and_check_engine_name_a_broken_binary_in_one_line(tmp_path):
    assert check_engine() == find_engine()  # started once and closed
    with open_engine(hash_mb=8) as eng:
        assert eng.proc is not None and eng.name
    not_uci = tmp_path / "not-an-engine"
    not_uci.write_text("#!/bin/sh\necho hello\necho world\n")
    not_uci.chmod(0o755)
    with pytest.raises(EngineUnusableError) as err:
        check_engine(str(not_uci))
    message = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in message
    assert message.startswith(f"--engine {not_uci} does not work as fairy-stockfish (engine ")
    assert message.endswith("); install it with `apt-get install fairy-stockfish` or pass --engine PATH")
    with pytest.raises(EngineNotFoundError):
        open_engine(str(tmp_path / "missing"))
