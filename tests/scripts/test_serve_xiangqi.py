"""scripts/serve_xiangqi.py in a real browser: the server (the bundled model) on a free loopback
port, Debian's chromium driven headless by Selenium (chromium and chromium-driver come from
`make system-deps`). Three moves by clicking, the model's replies legal, undo, a hint, a new game
as black, a forced game played to its result, a phone-sized viewport, a non-blank screenshot;
and the script's bad options as one line. The API itself: tests/toolkit/test_web_app.py."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from toolkit.xiangqi.rules import Position

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "serve_xiangqi.py")
MATE_IN_ONE = "3k5/9/9/9/9/9/9/9/R8/1R2K4 w - - 0 1"  # red: a1d1 mates


def browser_paths():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [path for path in (chromium, driver) if not os.path.exists(path)]
    assert not missing, f"{missing} missing: `make system-deps` installs Debian's chromium and chromium-driver"
    return chromium, driver


@pytest.fixture(scope="module")
def server():
    """The server on any free port of 127.0.0.1 (one player process, batches of up to 4 games: a
    quicker start than the defaults): its URL, read from the line it prints."""
    proc = subprocess.Popen([sys.executable, SCRIPT, "--port", "0", "--processes", "1", "--max-batch", "4"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the model is loaded and the server listens
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"no URL in {line!r}; stderr: {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}"
        yield found.group(0)
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode in (0, -15), proc.stderr.read()[-2000:]


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def api(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path.lstrip("/"), data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait(driver, condition, seconds=20):
    return WebDriverWait(driver, seconds).until(lambda d: condition(d))


def moves_shown(driver):
    """The ICCS moves of the move list, read in one script (the page redraws the list as replies come)."""
    return driver.execute_script("return [...document.querySelectorAll('#moves li')].map(li => li.dataset.iccs)")


def status(driver):
    return driver.execute_script("return document.getElementById('status').textContent")


def click(driver, square):
    driver.find_element(By.CSS_SELECTOR, f"[data-sq='{square}']").click()


def game_id(driver):
    return driver.execute_script("return location.hash.slice(1)")


def play_by_clicks(driver, url, move):
    before = len(moves_shown(driver))
    click(driver, move[:2])
    targets = set(driver.execute_script(
        "return [...document.querySelectorAll('[data-target]')].map(t => t.dataset.target)"))
    assert move[2:] in targets, (move, targets)  # the legal targets are highlighted
    click(driver, move[2:])
    wait(driver, lambda d: len(moves_shown(d)) == before + 2 and status(d).startswith("Your move"))


def test_play_three_moves_undo_hint_and_a_new_game_as_black(server, browser, tmp_path):
    browser.get(server)
    wait(browser, lambda d: status(d) == "Your move (red)" and game_id(d))
    assert "Xiangqi GPT" in browser.find_element(By.ID, "opponent").text
    for _ in range(3):
        state = api(server, f"/api/games/{game_id(browser)}")
        play_by_clicks(browser, server, sorted(state["legal"])[len(state["moves"]) % 5])
    shown = moves_shown(browser)
    assert len(shown) == 6 and Position.from_moves(shown).ply == 6  # every reply a legal move
    assert browser.find_elements(By.CSS_SELECTOR, "[data-last]")  # the last move is marked
    browser.find_element(By.ID, "undo").click()
    wait(browser, lambda d: moves_shown(d) == shown[:4])
    browser.find_element(By.ID, "hint").click()
    hints = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#hints li"))
    assert len(hints) == 3 and all(re.search(r"\d+\.\d%$", h.text) for h in hints)
    legal = set(Position.from_moves(shown[:4]).legal_moves())
    assert {h.get_attribute("data-iccs") for h in hints} <= legal
    shot = tmp_path / "board.png"
    browser.save_screenshot(str(shot))
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] > 300 and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50
    browser.find_element(By.ID, "new-black").click()
    wait(browser, lambda d: len(moves_shown(d)) == 1 and status(d) == "Your move (black)")
    first = moves_shown(browser)[0]
    assert first in Position().legal_moves()


def test_a_forced_game_from_a_position_ends_with_its_result(server, browser):
    game = api(server, "/api/games", {"color": "red", "fen": MATE_IN_ONE})
    browser.get(server + "#" + game["id"])
    browser.refresh()  # the hash alone does not reload the page
    wait(browser, lambda d: status(d) == "Your move (red)" and game_id(d) == game["id"])
    click(browser, "a1")
    click(browser, "d1")
    wait(browser, lambda d: status(d) == "Game over: red wins by checkmate")
    assert moves_shown(browser) == ["a1d1"]
    assert browser.find_element(By.ID, "hint").get_attribute("disabled")
    href = browser.find_element(By.ID, "pgn").get_attribute("href")
    with urllib.request.urlopen(href, timeout=30) as response:
        assert "1. a1d1 1-0" in response.read().decode()


def test_the_page_fits_a_phone(server, browser):
    browser.set_window_size(390, 844)
    try:
        browser.get(server)
        wait(browser, lambda d: status(d) == "Your move (red)")
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        board = browser.find_element(By.ID, "board").rect
        assert 300 <= board["width"] <= width and board["x"] >= 0
        play_by_clicks(browser, server, "h2e2")
    finally:
        browser.set_window_size(1000, 800)


def test_a_port_in_use_is_one_line_before_the_model_loads():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, SCRIPT, "--port", str(port)], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
    assert proc.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, words", [(["--port", "70000"], "--port must be in 0..65535"),
                                         (["--max-games", "0"], "--max-games"),
                                         (["--model", "/nonexistent"], "/nonexistent")])
def test_bad_options_are_one_line(argv, words):
    proc = subprocess.run([sys.executable, SCRIPT, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
