"""Load on the Xiangqi web server: many games at once, each a client playing
random legal moves as fast as the replies come (no thinking time: the worst
case), with every reply timed and every game checked against its own record.

``play_games(url, games, moves)`` returns the latencies of the model's
replies (the round trip of each ``POST .../moves``), the errors, the games
whose state came back mixed with another's, and the wall time.
:class:`ServerProcess` starts a server command on a free port and reads the
URL it prints.
"""

import asyncio
import random
import re
import subprocess
import time

import numpy as np

from ..benchmarking import proc_status_kb


class ServerProcess:
    """``with ServerProcess(command) as server``: ``server.url`` (read from the
    first stdout line that holds ``http://host:port/``), ``server.peak_rss_mb()`` (with its children)."""

    def __init__(self, command, cwd=None, env=None):
        self.command, self.cwd, self.env = list(command), cwd, env
        self.proc, self.url = None, None

    def __enter__(self):
        self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        for line in self.proc.stdout:
            found = re.search(r"http://[\w.]+:\d+/", line)
            if found:
                self.url = found.group(0)
                return self
        self.proc.wait()
        raise RuntimeError(f"the server exited ({self.proc.returncode}) before printing its URL: "
                           f"{' '.join(self.command)}")

    def peak_rss_mb(self):
        """Peak RSS (VmHWM) of the server and its child processes (its player processes), MiB."""
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        return sum(proc_status_kb("VmHWM", pid) for pid in [self.proc.pid] + children) / 1024.0

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _one_game(client, number, moves, seed, result, think):
    """Create a game as red and play ``moves`` random legal moves (each after ``think`` seconds,
    a ``(low, high)`` uniform range), checking each state returned."""
    rng = random.Random(seed * 100_003 + number)
    response = await client.post("/api/games", json={"color": "red"})
    if response.status_code != 201:
        result["errors"].append(f"game {number}: create {response.status_code} {response.text[:100]}")
        return
    state, record = response.json(), []
    for _ in range(moves):
        if state["over"] is not None or not state["legal"]:
            break
        move = rng.choice(state["legal"])
        if think[1] > 0:
            await asyncio.sleep(rng.uniform(*think))
        started = time.perf_counter()
        response = await client.post(f"/api/games/{state['id']}/moves", json={"move": move})
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            result["errors"].append(f"game {number}: move {move} {response.status_code} {response.text[:100]}")
            return
        new = response.json()
        record += [move] + ([new["reply"]["iccs"]] if new["reply"] else [])
        if new["id"] != state["id"] or [m["iccs"] for m in new["moves"]] != record:
            result["mixed"].append(number)
            return
        result["latencies"].append(elapsed)
        state = new
    result["records"][state["id"]] = record


async def _play(url, games, moves, seed, think):
    import httpx

    result = {"latencies": [], "errors": [], "mixed": [], "records": {}}
    limits = httpx.Limits(max_connections=games + 4, max_keepalive_connections=games + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(_one_game(client, number, moves, seed, result, think) for number in range(games)))
        result["seconds"] = time.perf_counter() - started
        for game_id, record in result["records"].items():  # afterwards, every game is still its own
            state = (await client.get(f"/api/games/{game_id}")).json()
            if [m["iccs"] for m in state["moves"]] != record:
                result["mixed"].append(game_id)
        result["stats"] = (await client.get("/api/stats")).json()
    return result


def play_games(url, games=50, moves=20, seed=0, think=(0.0, 0.0)):
    """Play ``games`` concurrent games of ``moves`` moves each against the server at ``url``, a
    person's thinking time of ``think`` = ``(low, high)`` seconds before each move (``(0, 0)``:
    none, the worst case); returns ``{'latencies', 'errors', 'mixed', 'records', 'seconds', 'stats'}``."""
    return asyncio.run(_play(url, games, moves, seed, tuple(think)))


def latency_summary(result):
    """p50 / p95 / max seconds per reply, replies per second (of the whole run, thinking included)."""
    latencies = np.asarray(result["latencies"]) if result["latencies"] else np.zeros(1)
    return {"replies": len(result["latencies"]), "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)), "max": float(latencies.max()),
            "replies_per_s": len(result["latencies"]) / max(result["seconds"], 1e-9)}


__all__ = ["ServerProcess", "play_games", "latency_summary"]
