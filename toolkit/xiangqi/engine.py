"""A small UCI client for fairy-stockfish playing xiangqi.

Moves go in and come out in ICCS; the engine's own UCI coordinates (ranks
1-10) are converted only by :mod:`toolkit.xiangqi.coords`.

>>> with UciEngine() as eng:                                   # doctest: +SKIP
...     eng.new_game()
...     res = eng.search(moves=["h2e2"], depth=4, multipv=3)
...     res.bestmove, [(l.pv[0], l.score) for l in res.lines]
('h9g7', [('h9g7', 28), ('b9c7', 20), ('b7e7', 3)])

The binary is looked up as: the ``path`` argument, ``$XIANGQI_ENGINE``,
``fairy-stockfish`` on ``PATH``, ``/usr/games/fairy-stockfish`` (Debian's
package). A missing binary raises :class:`EngineNotFoundError` naming where
it looked.
"""

import collections
import os
import queue
import shutil
import subprocess
import threading
import time
from typing import List, NamedTuple, Optional

from .coords import iccs_to_uci, uci_to_iccs

DEFAULT_NAME = "fairy-stockfish"
DEFAULT_PATHS = ("/usr/games/fairy-stockfish", "/usr/local/bin/fairy-stockfish")
MATE_SCORE = 100_000  # centipawn stand-in for "mate in n": MATE_SCORE - n


class EngineError(RuntimeError):
    """The engine failed, timed out, or said something we cannot use."""


class EngineNotFoundError(EngineError, FileNotFoundError):
    """No engine binary where we looked."""


class EngineUnusableError(EngineError, ValueError):
    """A binary that was found but does not work as fairy-stockfish (a user's mistake: a
    ValueError, reported in one line naming the binary and the fix)."""


def find_engine(path=None):
    """Absolute path of the engine binary, or EngineNotFoundError naming the places tried."""
    tried = []
    candidates = [path] if path else [os.environ.get("XIANGQI_ENGINE"), DEFAULT_NAME, *DEFAULT_PATHS]
    for cand in candidates:
        if not cand:
            continue
        tried.append(cand)
        found = cand if os.path.isfile(cand) and os.access(cand, os.X_OK) else shutil.which(cand)
        if found:
            return os.path.abspath(found)
    hint = ("install it with `apt-get install fairy-stockfish` (Debian/Ubuntu) or pass the "
            "binary's path (--engine PATH, $XIANGQI_ENGINE)")
    raise EngineNotFoundError(f"xiangqi engine not found at {', '.join(map(repr, tried))}: {hint}")


class PVLine(NamedTuple):
    """One MultiPV line: ``score`` is centipawns for the side to move (mates
    mapped to +-(MATE_SCORE - n)); ``pv`` is a list of ICCS moves."""
    multipv: int
    depth: int
    score_cp: Optional[int]
    mate: Optional[int]
    nodes: int
    pv: List[str]

    @property
    def score(self):
        if self.mate is not None:
            return (MATE_SCORE - abs(self.mate)) * (1 if self.mate > 0 else -1)
        return self.score_cp if self.score_cp is not None else 0


class SearchResult(NamedTuple):
    bestmove: Optional[str]   # ICCS, None if the engine had no move
    ponder: Optional[str]
    lines: List[PVLine]       # sorted by multipv index


def parse_info(line):
    """A :class:`PVLine` from a UCI ``info ... pv ...`` line, or None.

    >>> parse_info("info depth 3 seldepth 3 multipv 2 score cp 69 nodes 628 nps 1 pv h10g8 d1e2")
    PVLine(multipv=2, depth=3, score_cp=69, mate=None, nodes=628, pv=['h9g7', 'd0e1'])
    """
    tok = line.split()
    if not tok or tok[0] != "info" or "pv" not in tok or "score" not in tok:
        return None
    fields = {"multipv": 1, "depth": 0, "nodes": 0}
    cp = mate = None
    i = 1
    pv = []
    while i < len(tok):
        t = tok[i]
        if t in ("multipv", "depth", "nodes") and i + 1 < len(tok):
            try:
                fields[t] = int(tok[i + 1])
            except ValueError:
                return None
            i += 2
        elif t == "score" and i + 2 < len(tok):
            try:
                val = int(tok[i + 2])
            except ValueError:
                return None
            if tok[i + 1] == "cp":
                cp = val
            elif tok[i + 1] == "mate":
                mate = val
            i += 3
        elif t == "pv":
            for m in tok[i + 1:]:
                try:
                    pv.append(uci_to_iccs(m))
                except ValueError:
                    break
            break
        else:
            i += 1
    if cp is None and mate is None:
        return None
    return PVLine(fields["multipv"], fields["depth"], cp, mate, fields["nodes"], pv)


def open_engine(path=None, **settings):
    """A started :class:`UciEngine` (``settings``: its keyword arguments, e.g. ``hash_mb``).
    ``path`` is looked up by :func:`find_engine` (:class:`EngineNotFoundError` names where it
    looked); a binary that does not speak UCI xiangqi is an :class:`EngineUnusableError` whose
    one line names it and the fix."""
    found = find_engine(path)
    try:
        return UciEngine(found, **settings)
    except EngineError as error:
        reason = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise EngineUnusableError(f"--engine {found} does not work as fairy-stockfish ({reason.strip()[:500]}); "
                                  f"install it with `apt-get install fairy-stockfish` or pass --engine PATH") from None


def check_engine(path=None):
    """The absolute path of a working engine binary, started once and closed: a missing or
    broken binary fails here in one line (see :func:`open_engine`), not later in every worker."""
    engine = open_engine(path)
    engine.close()
    return engine.path


class UciEngine:
    """fairy-stockfish over UCI, variant xiangqi. Use as a context manager or call :meth:`close`.

    ``timeout``: seconds allowed for the handshake and for ``isready``; a
    search's own limit is ``search(..., timeout=)`` (default 120 s), after
    which the engine is sent ``stop`` and, if it still says nothing, killed.
    """

    def __init__(self, path=None, variant="xiangqi", options=None, threads=1, hash_mb=16, timeout=10.0):
        self._settings = (variant, options, threads, hash_mb, timeout)
        self.path = find_engine(path)
        self.variant = variant
        self.timeout = timeout
        self.name = None
        self.options = {}
        self._tail = collections.deque(maxlen=30)
        self._multipv = 1
        try:
            self.proc = subprocess.Popen([self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, bufsize=1)
        except OSError as e:
            raise EngineError(f"cannot start engine {self.path!r}: {e}") from e
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        try:
            self._send("uci")
            for line in self._until("uciok", timeout):
                if line.startswith("id name "):
                    self.name = line[len("id name "):].strip()
                elif line.startswith("option name "):
                    self._record_option(line)
            variants = self.options.get("UCI_Variant", "")
            if variant != "chess" and variant not in variants.split():
                raise EngineError(f"engine {self.path!r} does not offer UCI_Variant {variant!r}")
            self.set_option("UCI_Variant", variant)
            self.set_option("Threads", threads)
            self.set_option("Hash", hash_mb)
            for k, v in (options or {}).items():
                self.set_option(k, v)
            self.is_ready()
        except BaseException:
            self.close()
            raise

    # --- plumbing -----------------------------------------------------------
    def _read_stdout(self):
        try:
            for line in self.proc.stdout:
                self._lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        self._lines.put(None)  # EOF

    def _record_option(self, line):
        rest = line[len("option name "):]
        name, _, spec = rest.partition(" type ")
        self.options[name.strip()] = spec

    def _send(self, cmd):
        if self.proc.poll() is not None:
            raise EngineError(f"engine {self.path!r} has exited (code {self.proc.returncode}); "
                              f"last output: {list(self._tail)[-5:]}")
        try:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise EngineError(f"engine {self.path!r} stopped reading ({e}); "
                              f"last output: {list(self._tail)[-5:]}") from e

    def _readline(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        try:
            line = self._lines.get(timeout=left)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            self._lines.put(None)
            raise EngineError(f"engine {self.path!r} exited unexpectedly (code {self.proc.poll()}); "
                              f"last output: {list(self._tail)[-5:]}")
        self._tail.append(line)
        return line

    def _until(self, token, timeout):
        """Lines up to and including the first one starting with ``token``."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            try:
                line = self._readline(deadline)
            except TimeoutError:
                raise EngineError(f"engine {self.path!r} gave no {token!r} within {timeout:g}s") from None
            out.append(line)
            if line.split()[:1] == [token]:
                return out

    # --- commands -----------------------------------------------------------
    def set_option(self, name, value):
        if isinstance(value, bool):
            value = "true" if value else "false"
        self._send(f"setoption name {name} value {value}")
        if name == "MultiPV":
            self._multipv = int(value)

    def is_ready(self, timeout=None):
        self._send("isready")
        self._until("readyok", timeout or self.timeout)

    def new_game(self):
        """``ucinewgame`` (clears the hash: searches become reproducible)."""
        self._send("ucinewgame")
        self.is_ready()

    def search(self, fen=None, moves=(), depth=None, nodes=None, movetime=None, multipv=1, timeout=120.0):
        """Search the position ``fen`` (None = start) after ICCS ``moves``.

        Give at least one of ``depth``, ``nodes``, ``movetime`` (ms).
        Returns a :class:`SearchResult` with ICCS moves and, per MultiPV
        index, the last line the engine reported.
        """
        if depth is None and nodes is None and movetime is None:
            raise ValueError("search needs depth, nodes or movetime")
        if multipv != self._multipv:
            self.set_option("MultiPV", multipv)
        pos = "position startpos" if not fen else f"position fen {fen}"
        moves = list(moves)
        if moves:
            pos += " moves " + " ".join(iccs_to_uci(m) for m in moves)
        self._send(pos)
        go = "go"
        if depth is not None:
            go += f" depth {int(depth)}"
        if nodes is not None:
            go += f" nodes {int(nodes)}"
        if movetime is not None:
            go += f" movetime {int(movetime)}"
        self._send(go)
        lines = {}
        deadline = time.monotonic() + timeout
        stopped = False
        while True:
            try:
                line = self._readline(deadline)
            except TimeoutError:
                if stopped:
                    self.close()
                    raise EngineError(f"engine {self.path!r} did not answer {go!r} within {timeout:g}s "
                                      f"even after 'stop'; killed it") from None
                self._send("stop")
                stopped, deadline = True, time.monotonic() + 5.0
                continue
            if line.startswith("info"):
                info = parse_info(line)
                if info is not None:
                    lines[info.multipv] = info
            elif line.startswith("bestmove"):
                tok = line.split()
                best = tok[1] if len(tok) > 1 else "(none)"
                ponder = tok[3] if len(tok) > 3 and tok[2] == "ponder" else None
                try:
                    best = uci_to_iccs(best)
                except ValueError:
                    best = None
                try:
                    ponder = uci_to_iccs(ponder) if ponder else None
                except ValueError:
                    ponder = None
                return SearchResult(best, ponder, [lines[k] for k in sorted(lines)])

    def restart(self):
        """Kill this engine process (if it still runs) and start a fresh one
        with the same path and settings: the way out of a search that hangs."""
        self.close(timeout=0.5)
        self.__init__(self.path, *self._settings)

    def bestmove(self, fen=None, moves=(), **limits):
        """Just the ICCS best move (None if there is none)."""
        return self.search(fen, moves, **limits).bestmove

    def close(self, timeout=2.0):
        """``quit``, wait, then kill if needed. Safe to call twice."""
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close(timeout=0.5)
        except Exception:
            pass
