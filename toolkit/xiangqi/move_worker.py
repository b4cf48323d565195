"""The threads (and processes) that run a Xiangqi player for many games at once.

A model is not thread-safe, so one :class:`MoveWorker` thread takes the
requests of the web page for a player: the replies (``'choose'``) and the
hints (``'hint'``), each on its own copy of a position. Requests that arrive
while it works wait in a queue and are taken together: the replies of up to
``max_batch`` games in one ``player.choose_many`` call (one batched model pass
when the player's scorer has ``score_many``), then the hints one by one.

The rules work around the model (the player's guard: pyffish calls of about a
millisecond each, pure-Python move generation) holds Python's lock, so one
process uses one core for it. :class:`MovePool` runs ``processes`` workers,
each in its own process with its own player (built there by a picklable
``factory``), and sends each game to the same one (its caches live there).

>>> from toolkit.xiangqi.player import RandomPlayer
>>> from toolkit.xiangqi.rules import Position
>>> worker = MoveWorker(RandomPlayer(0))
>>> move, after = worker.submit("choose", Position()).result()
>>> move in Position().legal_moves(), after.moves == [move]
(True, True)
>>> worker.close()
"""

import collections
import concurrent.futures
import multiprocessing
import queue
import threading
import time


def answer_batch(player, items):
    """``items``: ``[(kind, pos, options)]`` -> one answer (or the exception raised) per item:
    the replies (``(move, position after it)``) in one ``choose_many`` call, then the hints one
    by one."""
    answers = [None] * len(items)
    replies = [i for i, (kind, _, _) in enumerate(items) if kind == "choose"]
    if replies:
        try:
            chosen = _choose_many(player, [items[i][1] for i in replies])
            answers = _played(items, replies, chosen, answers)
        except Exception as error:  # noqa: BLE001: each caller gets it
            for i in replies:
                answers[i] = error
    for i, (kind, pos, options) in enumerate(items):
        if kind == "hint":
            try:
                answers[i] = player.hint(pos, **options)
            except Exception as error:  # noqa: BLE001
                answers[i] = error
    return answers


def _played(items, replies, chosen, answers):
    """Each reply as ``(move, position after it)``: the move pushed on the request's own copy, with
    what a page shows next (outcome, check, legal moves) computed here, where the guard has just
    asked the rules the same questions (cached), instead of again by the caller."""
    for i, move in zip(replies, chosen):
        pos = items[i][1]
        if move is not None:
            pos.push(move)
            if pos.outcome() is None:
                pos.is_check()
        answers[i] = (move, pos)
    return answers


class MoveWorker:
    """``submit(kind, pos, **options)`` -> a ``concurrent.futures.Future`` of
    the player's answer; ``close()`` ends the thread after the queued work.
    ``batches`` counts the model passes and ``batched`` the replies in them.
    ``run_batch`` (instead of ``player``): a function of ``[(kind, pos,
    options)]`` returning the answers (:class:`MovePool`'s processes)."""

    def __init__(self, player=None, max_batch=64, run_batch=None):
        self.run_batch = run_batch or (lambda items: answer_batch(player, items))
        self.max_batch = int(max_batch)
        self.queue = queue.Queue()
        self.batches = self.batched = 0
        self.busy_seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="xiangqi-player", daemon=True)
        self.thread.start()

    def submit(self, kind, pos, **options):
        if kind not in ("choose", "hint"):
            raise ValueError(f"kind must be 'choose' or 'hint', got {kind!r}")
        future = concurrent.futures.Future()
        self.queue.put((kind, pos, options, future))
        return future

    def close(self):
        self.queue.put(None)
        self.thread.join(timeout=60)

    def _take(self):
        """The next requests: one (blocking), then whatever else is queued, up to ``max_batch``; None at close."""
        first = self.queue.get()
        if first is None:
            return None
        taken = [first]
        while len(taken) < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self.queue.put(None)  # close after this batch
                break
            taken.append(item)
        return taken

    def _run(self):
        while True:
            taken = self._take()
            if taken is None:
                return
            started = time.perf_counter()
            try:
                answers = self.run_batch([item[:3] for item in taken])
            except Exception as error:  # noqa: BLE001: e.g. a worker process that died
                answers = [error] * len(taken)
            replies = sum(item[0] == "choose" for item in taken)
            self.batches, self.batched = self.batches + bool(replies), self.batched + replies
            self.busy_seconds += time.perf_counter() - started
            for (*_, future), answer in zip(taken, answers):
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)


def _choose_many(player, positions):
    if hasattr(player, "choose_many"):
        return player.choose_many(positions)
    return [player.choose(pos) for pos in positions]


def _serve(factory, connection):
    """A worker process: build the player, then answer batches until the pipe closes."""
    player = factory()
    connection.send("ready")
    while True:
        try:
            batch = connection.recv()
        except EOFError:
            return
        answers = answer_batch(player, batch)  # the positions come pickled with their cached FENs and moves
        connection.send([RuntimeError(f"{type(a).__name__}: {a}") if isinstance(a, BaseException) else a
                         for a in answers])


def _ready(connection, timeout):
    try:
        return connection.poll(timeout) and connection.recv() == "ready"
    except (EOFError, OSError):
        return False


class MovePool:
    """``processes`` :class:`MoveWorker` threads, each feeding its own process
    with its own player (``factory()``, called there: it must be picklable,
    e.g. a ``functools.partial`` of a module-level function). ``submit(kind,
    pos, key, **options)``: the requests of one ``key`` (a game id) always go to
    the same process, each new key to the one with the fewest. ``processes=0``:
    one worker in this process."""

    MAX_KEYS = 4096

    def __init__(self, factory, processes=2, max_batch=64, start_timeout=600):
        self.workers, self.children = [], []
        self.keys = collections.OrderedDict()  # key -> worker index
        if processes <= 0:
            self.workers.append(MoveWorker(factory(), max_batch))
            return
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        for _ in range(processes):
            mine, theirs = context.Pipe()
            child = context.Process(target=_serve, args=(factory, theirs), daemon=True)
            child.start()
            theirs.close()  # the child's end: a child that dies is then an EOF here, not a silent wait
            self.children.append((child, mine, threading.Lock()))
        for child, connection, _ in self.children:
            if not _ready(connection, start_timeout):
                self.close()
                raise RuntimeError(f"a player process did not start in {start_timeout} s (exit code "
                                   f"{child.join(5) or child.exitcode}: see its error above)")
        for child in self.children:
            self.workers.append(MoveWorker(max_batch=max_batch, run_batch=self._sender(child)))

    @staticmethod
    def _sender(child):
        process, connection, lock = child

        def run_batch(items):
            with lock:
                connection.send(items)
                try:
                    if connection.poll(600):
                        return connection.recv()
                except (EOFError, OSError):
                    pass
                raise RuntimeError(f"the player process {process.pid} gave no answer (exit code "
                                   f"{process.exitcode})")
        return run_batch

    def submit(self, kind, pos, key="", **options):
        return self.workers[self.worker_of(key)].submit(kind, pos, **options)

    def worker_of(self, key):
        """The worker of ``key``: on first sight the one with the fewest keys (the last
        ``MAX_KEYS`` keys are remembered; an older one is placed again, losing only its caches)."""
        if key not in self.keys:
            counts = [0] * len(self.workers)
            for index in self.keys.values():
                counts[index] += 1
            self.keys[key] = counts.index(min(counts))
            while len(self.keys) > self.MAX_KEYS:
                self.keys.popitem(last=False)
        return self.keys[key]

    @property
    def batches(self):
        return sum(worker.batches for worker in self.workers)

    @property
    def batched(self):
        return sum(worker.batched for worker in self.workers)

    @property
    def busy_seconds(self):
        return sum(worker.busy_seconds for worker in self.workers)

    def close(self):
        for worker in self.workers:
            worker.close()
        for process, connection, _ in self.children:
            connection.close()
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


__all__ = ["MoveWorker", "MovePool", "answer_batch"]
