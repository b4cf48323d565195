"""The thread that runs a Xiangqi player for many games at once.

A model is not thread-safe and a 2-core machine gains nothing from running
two at a time, so one thread takes every request of the web page: the
replies (``'choose'``) and the hints (``'hint'``), each on its own copy of a
position. Requests that arrive while it works wait in a queue and are taken
together: the replies of up to ``max_batch`` games in one
``player.choose_many`` call (one batched model pass when the player's scorer
has ``score_many``), then the hints one by one.

>>> from toolkit.xiangqi.player import RandomPlayer
>>> from toolkit.xiangqi.rules import Position
>>> worker = MoveWorker(RandomPlayer(0))
>>> worker.submit("choose", Position()).result() in Position().legal_moves()
True
>>> worker.close()
"""

import concurrent.futures
import queue
import threading
import time


class MoveWorker:
    """``submit(kind, pos, **options)`` -> a ``concurrent.futures.Future`` of
    the player's answer; ``close()`` ends the thread after the queued work.
    ``batches`` counts the model passes and ``batched`` the replies in them."""

    def __init__(self, player, max_batch=64):
        self.player, self.max_batch = player, int(max_batch)
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
            replies = [item for item in taken if item[0] == "choose"]
            if replies:
                self._answer(replies, lambda: _choose_many(self.player, [pos for _, pos, _, _ in replies]))
                self.batches, self.batched = self.batches + 1, self.batched + len(replies)
            for item in taken:
                if item[0] == "hint":
                    self._answer([item], lambda item=item: [self.player.hint(item[1], **item[2])])
            self.busy_seconds += time.perf_counter() - started

    @staticmethod
    def _answer(items, compute):
        """Set each item's future to its result, or every one to the exception (the thread goes on)."""
        try:
            results = compute()
        except Exception as error:  # noqa: BLE001: the caller of each request gets it
            for *_, future in items:
                future.set_exception(error)
            return
        for (*_, future), result in zip(items, results):
            future.set_result(result)


def _choose_many(player, positions):
    if hasattr(player, "choose_many"):
        return player.choose_many(positions)
    return [player.choose(pos) for pos in positions]


__all__ = ["MoveWorker"]
