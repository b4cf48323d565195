"""scripts/gen_xiangqi_games.py: self-play with a tiny search makes valid games;
a run killed mid-way and rerun ends with exactly the requested games, the same
ones an uninterrupted run makes: none lost, none duplicated. The engine is
required: without fairy-stockfish these tests FAIL (no skip)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from toolkit.xiangqi.engine import EngineNotFoundError, find_engine
from toolkit.xiangqi.records import read_jsonl
from toolkit.xiangqi.rules import Position, first_illegal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gen_xiangqi_games.py")
N_GAMES = 6
ARGS = ["--games", str(N_GAMES), "--depth-min", "1", "--depth-max", "2", "--nodes-min", "150",
        "--nodes-max", "400", "--opening-plies", "4", "--multipv", "3", "--max-plies", "60",
        "--seed", "11", "--quiet"]


def _engine_path():
    try:
        return find_engine()
    except EngineNotFoundError as e:
        pytest.fail(f"fairy-stockfish is required (apt-get install fairy-stockfish): {e}")


def _run(out, *extra, timeout=180):
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(out), *ARGS, "--engine", _engine_path(), *extra],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _games(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with two workers."""
    out = tmp_path_factory.mktemp("ref") / "games.jsonl"
    _run(out, "--workers", "2")
    return out


def test_help():
    proc = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0
    for flag in ("--out", "--games", "--workers", "--depth-min", "--depth-max", "--nodes", "--opening-plies",
                 "--multipv", "--seed", "--engine", "--max-plies"):
        assert flag in proc.stdout
    text = " ".join(proc.stdout.split())  # argparse wraps the option help
    for shown in ("candidates per opening ply (default: 4)", "softmax temperature in centipawns (> 0) (default: 100.0)",
                  "seed of the game ids, search limits and openings (default: 0)", "(default: softmax)"):
        assert shown in text
    assert "    python scripts/gen_xiangqi_games.py --out games.jsonl --games 1000 --workers 4 \\\n" in proc.stdout


@pytest.mark.parametrize("args,needle", [
    (["--games", "0"], "--games must be >= 1, got 0"),
    (["--games", "2", "--workers", "0"], "--workers must be >= 1, got 0"),
    (["--games", "2", "--multipv", "0"], "--multipv must be >= 1, got 0"),
    (["--games", "2", "--opening-plies", "-1"], "--opening-plies must be >= 0, got -1"),
    (["--games", "2", "--temperature", "0"], "--temperature must be a number > 0, got 0.0"),
    (["--games", "2", "--search-timeout", "-5"], "--search-timeout must be a number > 0, got -5.0"),
    (["--games", "2", "--depth-min", "3", "--depth-max", "2"], "need 1 <= --depth-min <= --depth-max, got 3 and 2"),
    (["--games", "2", "--fen", "not a fen"], "--fen: not a valid xiangqi FEN"),
    (["--games", "2", "--engine", "/bin/true"], "--engine /bin/true does not work as fairy-stockfish"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, needle):
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "g.jsonl"), *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not (tmp_path / "g.jsonl").exists()


def wait_for_a_game(proc, out, timeout=120):
    """Until ``out`` holds a finished game (or the run ended, or ``timeout`` seconds passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.02)


def test_ctrl_c_keeps_the_finished_games_without_a_traceback(tmp_path):
    out = tmp_path / "games.jsonl"
    proc = subprocess.Popen([sys.executable, SCRIPT, "--out", str(out), *ARGS, "--games", "200", "--workers", "1",
                             "--engine", _engine_path()], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for_a_game(proc, out)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted: finished games are saved; rerun to continue"
    _, stats = read_jsonl(str(out))
    assert stats.kept >= 1 and stats.corrupt_lines == 0


def test_missing_engine_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nowhere" / "fairy-stockfish")
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "g.jsonl"), "--games", "1",
                           "--engine", missing], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and missing in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "g.jsonl").exists()


def test_games_are_valid(reference):
    games = _games(reference)
    assert len(games) == N_GAMES
    assert sorted(g["id"] for g in games) == [f"s11-{i:07d}" for i in range(N_GAMES)]
    kept, stats = read_jsonl(str(reference))
    assert stats.kept == N_GAMES and stats.corrupt_lines == stats.illegal_games == stats.duplicates == 0
    for g in games:
        assert g["moves"] and first_illegal(g["moves"]) is None  # every move legal when replayed
        assert g["plies"] == len(g["moves"]) <= 60
        assert g["result"] in ("red", "black", "draw")
        final = Position.from_moves(g["moves"])
        assert final.outcome(max_plies=60) == (g["result"], g["termination"])
        shorter = Position.from_moves(g["moves"][:-1])
        assert shorter.outcome(max_plies=60) is None  # the game stopped at its first end
        eng = g["engine"]
        for side in ("red", "black"):
            (kind, value), = eng[side].items()
            assert (kind == "depth" and 1 <= value <= 2) or (kind == "nodes" and 150 <= value <= 400)
        assert eng["multipv"] == 3 and eng["seed"] == 11 and g["id"] == f"s11-{eng['index']:07d}"
    assert len({tuple(g["moves"][:4]) for g in games}) > 1  # openings differ


def test_rerun_on_a_complete_file_adds_nothing(reference, tmp_path):
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(reference.read_bytes())
    _run(copy, "--workers", "1")
    assert copy.read_bytes() == reference.read_bytes()


def test_killed_run_resumes_without_loss_or_duplicates(reference, tmp_path):
    out = tmp_path / "games.jsonl"
    cmd = [sys.executable, SCRIPT, "--out", str(out), *ARGS, "--workers", "2", "--engine", _engine_path()]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for_a_game(proc, out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run: main process, workers, engines
        proc.wait()
    done = _games(out)
    assert 1 <= len(done)
    if len(done) == N_GAMES:
        pytest.fail("the run finished before it could be killed; make the games longer")
    with open(out, "a", encoding="utf-8") as f:  # and a record cut off mid-write
        f.write('{"id": "s11-0000005", "moves": ["h2e2", "h9')
    rerun = _run(out, "--workers", "2")
    assert "partial last line" in rerun.stderr
    games = _games(out)
    ids = [g["id"] for g in games]
    assert len(ids) == N_GAMES == len(set(ids))
    assert {g["id"]: g for g in games} == {g["id"]: g for g in _games(reference)}  # same games, reproducibly
    _, stats = read_jsonl(str(out))
    assert stats.kept == N_GAMES and stats.corrupt_lines == 0


def test_more_games_later_extends_the_file(reference, tmp_path):
    out = tmp_path / "grow.jsonl"
    lines = reference.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:2]), encoding="utf-8")
    _run(out, "--workers", "1")
    assert sorted(g["id"] for g in _games(out)) == sorted(g["id"] for g in _games(reference))


def test_a_duplicate_record_is_not_regenerated_on_rerun(reference, tmp_path):
    """A game identical to an earlier one is dropped by the reader (not counted), but its index
    is done: a rerun makes a new index instead of writing the same record again."""
    out = tmp_path / "dup.jsonl"
    games = _games(reference)
    twin = dict(games[0], id=f"s11-{N_GAMES:07d}")  # index 6 "came out" identical to game 0
    out.write_text(reference.read_text(encoding="utf-8") + json.dumps(twin) + "\n", encoding="utf-8")
    _run(out, "--workers", "1", "--games", str(N_GAMES + 1))
    ids = [g["id"] for g in _games(out)]
    assert len(ids) == len(set(ids)) == N_GAMES + 2, ids  # index 7 was played, index 6 not again
    assert f"s11-{N_GAMES + 1:07d}" in ids
    _, stats = read_jsonl(str(out))
    assert stats.kept == N_GAMES + 1 and stats.duplicates == 1

