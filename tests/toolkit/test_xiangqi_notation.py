"""ICCS / WXF / Chinese move names: round trips on every legal move of many
positions (start, random middlegames, tandem chariots/horses/cannons/soldiers),
known names, pyffish's WXF as an oracle, and the reasons bad input is refused."""

import random

import pyffish as sf
import pytest

from toolkit.xiangqi.coords import iccs_to_uci, parse_iccs
from toolkit.xiangqi.notation import (chinese_to_iccs, designate, iccs_to_chinese, iccs_to_wxf, move_names,
                                      parse_move, wxf_to_iccs)
from toolkit.xiangqi.rules import IllegalMoveError, Position

TANDEM_ROOKS = "3ak4/4r4/4r4/9/4R4/9/4R4/9/4A4/3K5 w - - 0 1"        # red e5,e3; black e8,e7
HORSES_CANNONS = "2nk2c2/9/2n3c2/9/6C2/2N6/9/2N3C2/9/4K4 w - - 0 1"   # tandem horses and cannons
PAWNS3 = "3k5/9/2P6/p1P1P4/2P6/6p2/6p2/6p2/9/4K4 w - - 0 1"          # red 3 on c, black 3 on g
PAWNS5 = "1P2k4/1P7/1P7/pP7/1P7/7p1/7p1/7p1/7p1/3K5 w - - 0 1"       # red 5 on b, black 4 on h
TWO_FILES = "4k4/9/2P6/2P3P2/2P3P2/p7p/p7p/9/9/3K5 w - - 0 1"        # red 3 on c + 2 on g; black 2 on a, 2 on i
PIN = "3k5/4r4/9/9/9/9/4R4/9/9/4K4 w - - 0 1"                        # red chariot e3 pinned on the e-file


def _both_sides(fen):
    return [fen, fen.replace(" w ", " b ")]


def _random_middlegames(n=3, plies=(24, 40, 70)):
    out = []
    for seed in range(n):
        rng = random.Random(seed)
        pos = Position()
        for _ in range(plies[seed % len(plies)]):
            if pos.outcome() is not None:
                break
            pos.push(rng.choice(pos.legal_moves()))
        out.append(pos.fen())
    return out


POSITIONS = ([Position().fen(), Position.from_moves(["h2e2"]).fen()] + _random_middlegames()
             + [f for fen in (TANDEM_ROOKS, HORSES_CANNONS, PAWNS3, PAWNS5, TWO_FILES, PIN) for f in _both_sides(fen)])


@pytest.mark.parametrize("fen", POSITIONS)
def test_round_trip_every_legal_move(fen):
    pos = Position.from_fen(fen)
    legal = pos.legal_moves()
    assert legal, fen
    wxf_names, cn_names = {}, {}
    for mv in legal:
        wxf, cn = iccs_to_wxf(pos, mv), iccs_to_chinese(pos, mv)
        assert wxf_to_iccs(pos, wxf) == mv, (fen, mv, wxf)
        assert chinese_to_iccs(pos, cn) == mv, (fen, mv, cn)
        for text in (mv, mv.upper(), f"{mv[:2]}-{mv[2:]}", wxf, cn):
            assert parse_move(pos, text) == mv, (fen, mv, text)
        assert wxf not in wxf_names and cn not in cn_names, (fen, mv, wxf, cn)
        wxf_names[wxf], cn_names[cn] = mv, mv
        digits = "１２３４５６７８９"
        if pos.turn == "black":  # black's Chinese names use full-width digits; ASCII ones are read too
            assert any(c in digits for c in cn)
            ascii_cn = "".join(str(digits.index(c) + 1) if c in digits else c for c in cn)
            assert parse_move(pos, ascii_cn) == mv
        else:
            assert not any(c in digits or c.isascii() for c in cn), cn
    # a position's names must not depend on cached state: a fresh object agrees
    again = Position.from_fen(fen)
    assert {iccs_to_wxf(again, m) for m in legal} == set(wxf_names)


@pytest.mark.parametrize("fen", POSITIONS)
def test_wxf_matches_pyffish_for_single_pieces(fen):
    """pyffish's own WXF writer as an oracle wherever no tandem marker is involved
    (pyffish only marks tandem pieces when the plain name would be ambiguous,
    whereas WXF marks them always)."""
    pos = Position.from_fen(fen)
    grid = pos.board()
    checked = 0
    for mv in pos.legal_moves():
        d = designate(grid, pos.turn, *parse_iccs(mv))
        if d.n == 1:
            ref = sf.get_san("xiangqi", fen, iccs_to_uci(mv), False, sf.NOTATION_XIANGQI_WXF)
            assert iccs_to_wxf(pos, mv) == ref, (fen, mv)
            checked += 1
    assert checked > 0


def test_known_opening_names():
    pos = Position()
    assert move_names(pos, "h2e2") == {"iccs": "h2e2", "wxf": "C2=5", "chinese": "炮二平五"}
    assert parse_move(pos, "炮二平五") == parse_move(pos, "C2=5") == parse_move(pos, "C2.5") == "h2e2"
    assert iccs_to_wxf(pos, "b0c2") == "H8+7" and iccs_to_chinese(pos, "b0c2") == "马八进七"
    assert iccs_to_wxf(pos, "c3c4") == "P7+1" and iccs_to_chinese(pos, "c3c4") == "兵七进一"
    assert iccs_to_wxf(pos, "g0e2") == "E3+5" and iccs_to_chinese(pos, "g0e2") == "相三进五"
    assert iccs_to_wxf(pos, "f0e1") == "A4+5" and iccs_to_chinese(pos, "f0e1") == "仕四进五"
    assert iccs_to_wxf(pos, "a0a2") == "R9+2" and iccs_to_chinese(pos, "a0a2") == "车九进二"
    assert iccs_to_wxf(pos, "e0e1") == "K5+1" and iccs_to_chinese(pos, "e0e1") == "帅五进一"
    pos.push("h2e2")
    assert move_names(pos, "h9g7") == {"iccs": "h9g7", "wxf": "H8+7", "chinese": "马８进７"}
    for text in ("H8+7", "h8+7", "N8+7", "马８进７", "马8进7", "馬8進7", "h9g7", "H9-G7"):
        assert parse_move(pos, text) == "h9g7", text
    assert iccs_to_chinese(pos, "c9e7") == "象３进５" and iccs_to_chinese(pos, "d9e8") == "士４进５"
    assert iccs_to_chinese(pos, "e9e8") == "将５进１" and iccs_to_chinese(pos, "c6c5") == "卒３进１"
    assert iccs_to_wxf(pos, "h7e7") == "C8=5" and iccs_to_chinese(pos, "h7e7") == "炮８平５"
    pos.push("h9g7")
    assert iccs_to_wxf(pos, "e2e6") == "C5+4" and iccs_to_chinese(pos, "e2e6") == "炮五进四"
    assert iccs_to_wxf(pos, "e2e1") == "C5-1" and iccs_to_chinese(pos, "e2e1") == "炮五退一"


def test_tandem_names():
    red = Position.from_fen(TANDEM_ROOKS)
    assert iccs_to_wxf(red, "e5e6") == "R++1" and iccs_to_chinese(red, "e5e6") == "前车进一"
    assert iccs_to_wxf(red, "e3e4") == "R-+1" and iccs_to_chinese(red, "e3e4") == "后车进一"
    assert iccs_to_wxf(red, "e5d5") == "R+=6" and iccs_to_chinese(red, "e5d5") == "前车平六"
    for text in ("+R+1", "R++1", "r++1", "前车进一", "前車進一", "前俥进一"):
        assert parse_move(red, text) == "e5e6", text
    assert parse_move(red, "R+.1") == parse_move(red, "+R=1") == "e5i5"
    assert parse_move(red, "後车进一") == parse_move(red, "-R+1") == "e3e4"
    black = Position.from_fen(TANDEM_ROOKS.replace(" w ", " b "))
    assert iccs_to_wxf(black, "e7e6") == "R++1" and iccs_to_chinese(black, "e7e6") == "前车进１"
    assert iccs_to_wxf(black, "e8d8") == "R-=4" and iccs_to_chinese(black, "e8d8") == "后车平４"

    hc = Position.from_fen(HORSES_CANNONS)
    assert iccs_to_wxf(hc, "c4d6") == "H++6" and iccs_to_chinese(hc, "c4d6") == "前马进六"
    assert iccs_to_wxf(hc, "c2b0") == "H--8" and iccs_to_chinese(hc, "c2b0") == "后马退八"
    assert iccs_to_wxf(hc, "g5g4") == "C+-1" and iccs_to_chinese(hc, "g2g1") == "后炮退一"

    p3 = Position.from_fen(PAWNS3)
    assert [iccs_to_wxf(p3, m) for m in ("c7c8", "c6d6", "c5b5")] == ["P++1", "P7=6", "P-=8"]
    assert [iccs_to_chinese(p3, m) for m in ("c7c8", "c6d6", "c5b5")] == ["前兵进一", "中兵平六", "后兵平八"]
    assert iccs_to_wxf(p3, "e6e7") == "P5+1"
    p3b = Position.from_fen(PAWNS3.replace(" w ", " b "))
    assert [iccs_to_wxf(p3b, m) for m in ("g2g1", "g3f3", "g4h4")] == ["P++1", "P7=6", "P-=8"]
    assert [iccs_to_chinese(p3b, m) for m in ("g2g1", "g3f3", "g4h4")] == ["前卒进１", "中卒平６", "后卒平８"]

    p5 = Position.from_fen(PAWNS5)
    got = [iccs_to_wxf(p5, m) for m in ("b9a9", "b8a8", "b7a7", "b6c6", "b5a5")]
    assert got == ["++=9", "P+=9", "P8=9", "P-=7", "--=9"]
    got = [iccs_to_chinese(p5, m) for m in ("b9a9", "b8a8", "b7a7", "b6c6", "b5a5")]
    assert got == ["一兵平九", "二兵平九", "三兵平九", "四兵平七", "五兵平九"]
    p4b = Position.from_fen(PAWNS5.replace(" w ", " b "))  # black: four soldiers on h
    got = [iccs_to_wxf(p4b, m) for m in ("h1h0", "h2g2", "h3i3", "h4g4")]
    assert got == ["+++1", "P+=7", "P-=9", "--=7"]
    assert iccs_to_chinese(p4b, "h1h0") == "一卒进１" and iccs_to_chinese(p4b, "h4g4") == "四卒平７"

    two = Position.from_fen(TWO_FILES)
    assert [iccs_to_wxf(two, m) for m in ("c7c8", "c6d6", "c5b5", "g6g7", "g5h5")] == \
        ["7++1", "77=6", "7-=8", "3++1", "3-=2"]
    assert [iccs_to_chinese(two, m) for m in ("c7c8", "c6d6", "g5h5")] == ["前七进一", "中七平六", "后三平二"]
    assert parse_move(two, "前兵七进一") == "c7c8"
    two_b = Position.from_fen(TWO_FILES.replace(" w ", " b "))
    assert iccs_to_wxf(two_b, "a3b3") == "1+=2" and iccs_to_chinese(two_b, "a3b3") == "前１平２"  # a3 is black's front
    assert iccs_to_wxf(two_b, "a4b4") == "1-=2" and iccs_to_chinese(two_b, "a4b4") == "后１平２"


@pytest.mark.parametrize("fen,text,reason", [
    (None, "C5=4", "no piece there"),            # no cannon on red's file 5
    (None, "马五进三", "no piece there"),
    (None, "e4e5", "no piece there"),            # ICCS from an empty square
    (None, "h9g7", "not your piece"),            # black's horse on red's turn
    (None, "马８进７", "not your piece"),          # black's notation on red's turn
    (None, "h2h8", "illegal: piece cannot move there"),
    (None, "R9+3", "illegal: piece cannot move there"),
    (PIN, "e3d3", "illegal: leaves general in check"),
    (PIN, "R5=6", "illegal: leaves general in check"),
    (PIN, "车五平六", "illegal: leaves general in check"),
    (TANDEM_ROOKS, "R5+1", "ambiguous"),         # both chariots on file 5 can
    (TANDEM_ROOKS, "车五平四", "ambiguous"),
    (HORSES_CANNONS, "C3-1", "ambiguous"),
    (None, "", "unparseable"),
    (None, "hello", "unparseable"),
    (None, "C2=0", "unparseable"),
    (None, "C10=5", "unparseable"),
    (None, "炮二平", "unparseable"),
    (None, "炮二平五五", "unparseable"),
    (None, "炮2平五", "unparseable"),            # mixed red/black numerals
    (None, "h2e", "unparseable"),
])
def test_bad_input_reasons(fen, text, reason):
    pos = Position.from_fen(fen)
    with pytest.raises(IllegalMoveError) as err:
        parse_move(pos, text)
    assert err.value.reason == reason, (text, str(err.value))
    assert pos.fen() == Position.from_fen(fen).fen()  # nothing changed


def test_converters_refuse_illegal_iccs():
    pos = Position()
    with pytest.raises(IllegalMoveError) as err:
        iccs_to_wxf(pos, "h2h8")
    assert err.value.reason == "illegal: piece cannot move there"
    with pytest.raises(IllegalMoveError) as err:
        iccs_to_chinese(pos, "zz")
    assert err.value.reason == "unparseable"
    with pytest.raises(IllegalMoveError) as err:
        wxf_to_iccs(pos, "炮二平五")
    assert err.value.reason == "unparseable"


def _message(fen, text):
    from toolkit.xiangqi.notation import bad_move_message

    with pytest.raises(IllegalMoveError) as err:
        parse_move(Position.from_fen(fen), text)
    return bad_move_message(text, err.value.reason)


@pytest.mark.parametrize("text", ["hello there", "xyz", "C2=0", "炮二平", "h2e"])
def test_an_unreadable_move_points_to_the_notations_and_help(text):
    message = _message(None, text)
    assert "\n" not in message and "illegal" not in message
    assert message.startswith(f"cannot read {text!r} as a move:")
    for example in ("ICCS h2e2", "WXF C2=5", "Chinese 炮二平五", "'help'"):
        assert example in message


@pytest.mark.parametrize("fen,text,why", [
    (None, "e0e5", "the piece cannot move there"),
    (None, "R9+3", "the piece cannot move there"),
    (PIN, "e3d3", "it leaves your general in check"),
    (PIN, "车五平六", "it leaves your general in check"),
    (None, "a6a5", "not your piece"),
    (None, "C5=4", "no piece there"),
])
def test_an_illegal_move_says_illegal_once_and_why(fen, text, why):
    message = _message(fen, text)
    assert message == f"illegal move {text!r}: {why}"
    assert message.count("illegal") == 1


def test_an_ambiguous_move_asks_which_piece():
    message = _message(TANDEM_ROOKS, "R5+1")
    assert message.startswith("ambiguous move 'R5+1': more than one piece can make it")
    assert "illegal" not in message
