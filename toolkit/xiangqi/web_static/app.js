// The page's logic: a game lives on the server (/api/games/{id}); its id is kept in the URL's hash,
// so a reload returns to the same game.
"use strict";

const App = (() => {
  let state = null, selected = null, hinted = [], waiting = false;
  const $ = (id) => document.getElementById(id);

  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  function targetsOf(from) {
    return state.legal.filter((move) => move.slice(0, 2) === from).map((move) => move.slice(2, 4));
  }

  function myPiece(sq) {
    const file = "abcdefghi".indexOf(sq[0]), rank = Number(sq.slice(1));
    const piece = state.board[rank][file];
    if (piece === ".") return false;
    return (piece === piece.toUpperCase()) === (state.human === "red");
  }

  function onClick(sq) {
    if (!state || waiting || state.over || state.turn !== state.human) return;
    if (selected && targetsOf(selected).includes(sq)) { play(selected + sq); return; }
    selected = myPiece(sq) && targetsOf(sq).length ? sq : null;
    render();
  }

  function statusText() {
    if (state.over) return `Game over: ${state.over.text}`;
    if (waiting) return "Xiangqi GPT is thinking…";
    const check = state.check ? " — check!" : "";
    return state.turn === state.human ? `Your move (${state.human})${check}` : `${state.turn} to move${check}`;
  }

  function renderMoves() {
    const list = $("moves");
    list.innerHTML = "";
    for (const move of state.moves) {
      const item = document.createElement("li");
      item.dataset.iccs = move.iccs;
      item.dataset.side = move.side;
      item.innerHTML = `${move.chinese} <span class="iccs">${move.iccs}</span>`;
      list.appendChild(item);
    }
    list.scrollTop = list.scrollHeight;
  }

  function render() {
    Board.draw($("board"), state, { flipped: state.human === "black", selected,
                                    targets: selected ? targetsOf(selected) : [], hinted, onClick });
    $("status").textContent = statusText();
    $("status").className = state.over ? "over" : "";
    $("opponent").textContent = `Opponent: ${state.opponent}`;
    $("pgn").href = `/api/games/${state.id}/pgn`;
    $("undo").disabled = waiting || !state.moves.some((move) => move.side === state.human);
    $("hint").disabled = waiting || !!state.over || state.turn !== state.human;
    renderMoves();
  }

  // action: a promise of the new state; on an error the page goes back to `before` (the last state the server sent)
  async function run(action, before) {
    waiting = true;
    $("error").textContent = "";
    if (state) render();
    try {
      state = await action();
      location.hash = state.id;
    } catch (error) {
      $("error").textContent = error.message;
      if (before) state = before;
    } finally {
      waiting = false;
      if (state) render();
    }
  }

  function play(move) {
    selected = null; hinted = [];
    $("hints").innerHTML = "";
    // show the person's move at once, while the model thinks
    const before = state;
    const file = (c) => "abcdefghi".indexOf(c);
    const board = state.board.map((row) => row.split(""));
    const [f1, r1, f2, r2] = [file(move[0]), Number(move[1]), file(move[2]), Number(move[3])];
    board[r2][f2] = board[r1][f1];
    board[r1][f1] = ".";
    state = Object.assign({}, state, { board: board.map((row) => row.join("")), last: move, legal: [] });
    run(() => api("POST", `/api/games/${state.id}/moves`, { move }), before);
  }

  async function hint() {
    $("error").textContent = "";
    try {
      const data = await api("GET", `/api/games/${state.id}/hint`);
      const list = $("hints");
      list.innerHTML = "";
      for (const h of data.hints) {
        const item = document.createElement("li");
        item.dataset.iccs = h.iccs;
        item.innerHTML = `${h.chinese} <span class="iccs">${h.iccs}</span> ${(100 * h.probability).toFixed(1)}%`;
        list.appendChild(item);
      }
      hinted = data.hints.length ? [data.hints[0].iccs.slice(0, 2), data.hints[0].iccs.slice(2, 4)] : [];
      render();
    } catch (error) {
      $("error").textContent = error.message;
    }
  }

  function newGame(color) {
    selected = null; hinted = [];
    $("hints").innerHTML = "";
    run(() => api("POST", "/api/games", { color }));
  }

  function start() {
    $("undo").addEventListener("click", () => { hinted = []; $("hints").innerHTML = "";
                                               run(() => api("POST", `/api/games/${state.id}/undo`)); });
    $("hint").addEventListener("click", hint);
    $("new-red").addEventListener("click", () => newGame("red"));
    $("new-black").addEventListener("click", () => newGame("black"));
    const id = location.hash.slice(1);
    if (id) run(() => api("GET", `/api/games/${id}`).catch(() => api("POST", "/api/games", { color: "red" })));
    else newGame("red");
  }

  return { start, state: () => state };
})();

App.start();
