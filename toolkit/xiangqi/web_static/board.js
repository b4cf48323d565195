// Draws a Xiangqi board in an <svg>: 9 files (a-i) x 10 ranks (0-9), red at the bottom unless flipped.
// Every point has a transparent hit circle with data-sq="h2" (ICCS square name) for clicks and tests.
"use strict";

const Board = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const CELL = 50, MARGIN_X = 34, MARGIN_Y = 30, FILES = "abcdefghi";
  const NAMES = { K: "帥", A: "仕", B: "相", N: "傌", R: "俥", C: "炮", P: "兵",
                  k: "將", a: "士", b: "象", n: "馬", r: "車", c: "砲", p: "卒" };

  function el(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function point(file, rank, flipped) {
    const col = flipped ? 8 - file : file, row = flipped ? rank : 9 - rank;
    return [MARGIN_X + col * CELL, MARGIN_Y + row * CELL];
  }

  function line(group, a, b, flipped) {
    const [x1, y1] = point(a[0], a[1], flipped), [x2, y2] = point(b[0], b[1], flipped);
    el("line", { x1, y1, x2, y2, class: "line" }, group);
  }

  function drawGrid(svg, flipped) {
    const group = el("g", { class: "grid" }, svg);
    for (let rank = 0; rank < 10; rank++) line(group, [0, rank], [8, rank], flipped);
    for (let file = 0; file < 9; file++) {
      if (file === 0 || file === 8) { line(group, [file, 0], [file, 9], flipped); continue; }
      line(group, [file, 0], [file, 4], flipped);
      line(group, [file, 5], [file, 9], flipped);
    }
    for (const base of [0, 7]) {  // the palaces' diagonals
      line(group, [3, base], [5, base + 2], flipped);
      line(group, [5, base], [3, base + 2], flipped);
    }
    const y = MARGIN_Y + 4.5 * CELL;
    el("text", { x: MARGIN_X + 1.5 * CELL, y: y + 8, class: "river" }, group, "楚 河");
    el("text", { x: MARGIN_X + 5.5 * CELL, y: y + 8, class: "river" }, group, "漢 界");
    for (let file = 0; file < 9; file++) {
      const [x] = point(file, 0, flipped);
      el("text", { x: x - 4, y: 10 * CELL + 16, class: "label" }, group, FILES[file]);
    }
    for (let rank = 0; rank < 10; rank++) {
      const [, yr] = point(0, rank, flipped);
      el("text", { x: 3, y: yr + 4, class: "label" }, group, String(rank));
    }
  }

  function square(file, rank) { return FILES[file] + rank; }

  // state: {board: [rank0..rank9 strings], last}; view: {flipped, selected, targets, hinted, onClick}
  function draw(svg, state, view) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    drawGrid(svg, view.flipped);
    const marks = el("g", {}, svg), pieces = el("g", {}, svg), hits = el("g", {}, svg);
    const last = state.last ? [state.last.slice(0, 2), state.last.slice(2, 4)] : [];
    for (let rank = 0; rank < 10; rank++) {
      for (let file = 0; file < 9; file++) {
        const sq = square(file, rank), [x, y] = point(file, rank, view.flipped);
        const piece = state.board[rank][file];
        if (last.includes(sq)) el("rect", { x: x - 25, y: y - 25, width: 50, height: 50, class: "mark", "data-last": sq }, marks);
        if ((view.hinted || []).includes(sq)) el("circle", { cx: x, cy: y, r: 26, class: "hinted" }, marks);
        if (piece !== ".") {
          const side = piece === piece.toUpperCase() ? "red" : "black";
          const cls = "piece " + side + (view.selected === sq ? " selected" : "");
          const group = el("g", { class: cls, "data-piece": piece, "data-at": sq }, pieces);
          el("circle", { cx: x, cy: y, r: 22 }, group);
          el("text", { x, y }, group, NAMES[piece] || piece);
        }
        if ((view.targets || []).includes(sq)) el("circle", { cx: x, cy: y, r: 8, class: "target", "data-target": sq }, marks);
        const hit = el("circle", { cx: x, cy: y, r: 24, class: "hit", "data-sq": sq }, hits);
        hit.addEventListener("click", () => view.onClick(sq));
      }
    }
  }

  return { draw, NAMES };
})();
