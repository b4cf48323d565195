"""The Xiangqi GPT's vocabulary and game encoding (NumPy only): the ICCS characters,
the special tokens, game <-> ids, left-right mirroring and the legal-continuation
bitmasks of every character of a game.

A game is ``[result] + the 4 characters of each ICCS move + [<end>]`` (``<end>``
only when the game is over). ``result`` is ``<red>``, ``<black>``, ``<draw>`` or
``<any>`` (unknown / unconditioned): trained with the real result (replaced by
``<any>`` with some probability), the model can be asked for a given side's
winning moves at play time.

>>> ids = encode_game(["h2e2", "h9g7"], "red", over=False)
>>> ids
[1, 13, 17, 10, 17, 13, 24, 12, 22]
>>> decode_game(ids)
('red', ['h2e2', 'h9g7'], False)
"""

import numpy as np

PAD, RED_TOKEN, BLACK_TOKEN, DRAW_TOKEN, ANY_TOKEN, END = range(6)
SPECIALS = ["<pad>", "<red>", "<black>", "<draw>", "<any>", "<end>"]
CHARS = "abcdefghi0123456789"
VOCAB = SPECIALS + list(CHARS)
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
CHAR_ID = {c: TOKEN_ID[c] for c in CHARS}
RESULT_TOKEN = {"red": RED_TOKEN, "black": BLACK_TOKEN, "draw": DRAW_TOKEN, None: ANY_TOKEN, "any": ANY_TOKEN}
TOKEN_RESULT = {RED_TOKEN: "red", BLACK_TOKEN: "black", DRAW_TOKEN: "draw", ANY_TOKEN: None}


def move_ids(move):
    """The 4 token ids of an ICCS move (``'h2e2'``)."""
    if len(move) != 4:
        raise ValueError(f"not a 4-character ICCS move: {move!r}")
    return [CHAR_ID[c] for c in move.lower()]


def encode_game(moves, result=None, over=True):
    """``[result token] + chars of each move + [<end>]`` (``<end>`` if ``over``).
    ``result``: 'red' | 'black' | 'draw' | None/'any' (unknown)."""
    ids = [RESULT_TOKEN[result]]
    for m in moves:
        ids.extend(move_ids(m))
    if over:
        ids.append(END)
    return ids


def decode_game(ids):
    """``(result, moves, over)`` for ids made by :func:`encode_game` (padding ignored)."""
    ids = [int(i) for i in ids if int(i) != PAD]
    if not ids or ids[0] not in TOKEN_RESULT:
        raise ValueError("ids must start with a result token")
    result, body, over = TOKEN_RESULT[ids[0]], ids[1:], False
    if body and body[-1] == END:
        body, over = body[:-1], True
    if len(body) % 4 or any(i not in range(len(SPECIALS), len(VOCAB)) for i in body):
        raise ValueError("moves must be whole 4-character ICCS moves")
    moves = ["".join(VOCAB[i] for i in body[k:k + 4]) for k in range(0, len(body), 4)]
    return result, moves, over


_MIRROR = str.maketrans("abcdefghi", "ihgfedcba")


def mirror_moves(moves):
    """The left-right mirrored game (files a<->i): as legal, same result."""
    return [m.translate(_MIRROR) for m in moves]


def legal_char_masks(moves, fen=None):
    """The legal continuations of every character of a game, as bitmasks over :data:`VOCAB` ids.

    Row ``i`` holds 4 masks for ply ``i``: the characters ``c`` such that the real
    move's first ``k`` characters followed by ``c`` start a legal move (``k`` = 0..3),
    i.e. the legal from-files; the legal from-ranks on the real from-file; the
    legal to-files of the real from-point; the legal to-ranks on the real
    to-file. Bit ``j`` of a mask stands for ``VOCAB[j]``. Every real move's
    character is in its mask (ValueError naming the ply otherwise). Rules from
    :func:`toolkit.xiangqi.movegen.legal_moves` (equal to pyffish's in the tests),
    about 0.5 ms a ply.

    >>> m = legal_char_masks(["h2e2"])
    >>> [VOCAB[j] for j in range(len(VOCAB)) if m[0, 2] >> j & 1]  # files the h2 cannon reaches (b2: own cannon)
    ['c', 'd', 'e', 'f', 'g', 'h', 'i']
    """
    from toolkit.xiangqi import movegen
    from toolkit.xiangqi.coords import make_iccs, parse_iccs
    from toolkit.xiangqi.rules import START_FEN

    grid = movegen.grid_from_fen(fen or START_FEN)
    side = movegen.RED if (fen or START_FEN).split()[1] in ("w", "r") else movegen.BLACK
    out = np.zeros((len(moves), 4), np.int32)
    for i, move in enumerate(moves):
        legal = [make_iccs(frm, to) for frm, to in movegen.legal_moves(grid, side)]
        move = move.lower()
        if move not in legal:
            raise ValueError(f"ply {i + 1}: {move!r} is not legal (legal: {len(legal)} moves)")
        for k in range(4):
            for m in legal:
                if m[:k] == move[:k]:
                    out[i, k] |= 1 << CHAR_ID[m[k]]
        grid, side = movegen.apply(grid, parse_iccs(move)), movegen.other(side)
    return out


_MIRROR_BITS = [(CHAR_ID[a], CHAR_ID[b]) for a, b in zip("abcdefghi", "ihgfedcba")]
_FILE_BITS = np.int32(sum(1 << a for a, _ in _MIRROR_BITS))


def mirror_masks(masks):
    """:func:`legal_char_masks` of the mirrored game (file bits a<->i; rank bits unchanged)."""
    masks = np.asarray(masks, np.int32)
    files = np.zeros_like(masks)
    for a, b in _MIRROR_BITS:
        files |= ((masks >> a) & 1) << b
    return (masks & ~_FILE_BITS) | files


__all__ = ["PAD", "RED_TOKEN", "BLACK_TOKEN", "DRAW_TOKEN", "ANY_TOKEN", "END", "SPECIALS", "CHARS", "VOCAB",
           "TOKEN_ID", "CHAR_ID", "RESULT_TOKEN", "TOKEN_RESULT", "move_ids", "encode_game", "decode_game",
           "mirror_moves", "legal_char_masks", "mirror_masks"]
