"""Game records: the seed article's JSON lines, ICCS PGN and our own JSONL.
Good files parse; a file with a corrupt line, an illegal move and a duplicate
game reports exactly those counts and keeps the rest; the writer appends
whole, fsynced lines and survives a partial line left by a killed writer."""

import json

import pytest

from toolkit.xiangqi.records import (GameRecord, GameWriter, ReadStats, append_game, parse_iccs_moves, read_games,
                                     read_jsonl, read_pgn, read_seed_jsonl, repair_tail, write_pgn)
from toolkit.xiangqi.rules import START_FEN, Position

G1 = ["h2e2", "h9g7", "h0g2", "i9h9", "i0h0", "b9c7"]
G2 = ["b2e2", "b9c7", "b0c2", "a9b9", "a0b0", "h7h3"]
G3 = ["c3c4", "g6g5", "b0c2", "h9g7"]
ILLEGAL = ["h2e2", "h9g7", "e2e9"]                      # the cannon cannot take the general like that
ENDGAME_FEN = "3k5/9/9/9/9/9/9/9/9/R3K4 w - - 0 1"
ENDGAME = ["a0d0"]                                      # mate in one


def _lines(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return str(path)


def _seed(moves, result, fen="", sep=""):
    return {"iccs": sep.join(moves), "fen": fen, "items": {"棋局结果": result, "赛事": "测试"}}


def test_parse_iccs_moves_forms():
    assert parse_iccs_moves("h2e2h9g7") == parse_iccs_moves("h2e2 h9g7") == ["h2e2", "h9g7"]
    assert parse_iccs_moves("H2-E2 H9-G7") == parse_iccs_moves("h2e2,h9g7") == ["h2e2", "h9g7"]
    assert parse_iccs_moves(["H2E2", "h9g7"]) == ["h2e2", "h9g7"] and parse_iccs_moves("") == []
    for bad in ("h2e2h9g", "h2e2zz99", 42, ["h2e2", 5]):
        with pytest.raises(ValueError):
            parse_iccs_moves(bad)


def test_seed_format_good_file(tmp_path):
    path = _lines(tmp_path / "seed.json", [
        _seed(G1, 2), _seed(G2, 1, sep=" "), _seed([m.upper() for m in G3], "0", sep=" "),
        _seed(ENDGAME, 2, fen=ENDGAME_FEN), {"iccs": "c3c4", "fen": None, "items": {}},
        "", "   ",  # blank lines are not records
    ])
    games, stats = read_seed_jsonl(path)
    assert stats == ReadStats(read=5, kept=5)
    assert [g.moves for g in games] == [G1, G2, G3, ENDGAME, ["c3c4"]]
    assert [g.result for g in games] == ["red", "draw", "black", "red", None]
    assert games[0].fen is None and games[3].fen == ENDGAME_FEN and games[3].start_fen() == ENDGAME_FEN
    assert games[0].meta == {"赛事": "测试"} and games[0].source == "seed.json"
    assert read_games(path)[0] == games  # auto-detected as the seed format
    games, _ = read_seed_jsonl(path, terminations=True)
    assert games[3].termination == "checkmate" and games[0].termination is None


def test_seed_format_bad_file_counts(tmp_path):
    path = _lines(tmp_path / "seed_bad.json", [
        _seed(G1, 2),
        '{"iccs": "h2e2h9g7", "fen": "", "items": {',   # corrupt JSON
        _seed(ILLEGAL, 0),                               # illegal move
        _seed(G2, 1),
        _seed(G1, 0, sep=" "),                          # duplicate of the first game (other spelling)
        _seed(G3, 2),
    ])
    games, stats = read_seed_jsonl(path)
    assert (stats.read, stats.kept, stats.corrupt_lines, stats.illegal_games, stats.duplicates) == (6, 3, 1, 1, 1)
    assert [g.moves for g in games] == [G1, G2, G3]
    assert [where.rsplit(":", 1)[1] for where, _ in stats.errors] == ["2", "3", "5"]
    assert "illegal move 3" in stats.errors[1][1]


def test_seed_format_more_corruption(tmp_path):
    path = _lines(tmp_path / "seed_worse.json", [
        '["not", "an", "object"]', '{"fen": ""}', '{"iccs": "h2e2h9"}', '{"iccs": 12}',
        '{"iccs": "h2e2", "fen": "garbage"}', _seed(G1, 2),
    ])
    games, stats = read_seed_jsonl(path)
    assert (stats.read, stats.kept, stats.corrupt_lines, stats.illegal_games, stats.duplicates) == (6, 1, 5, 0, 0)


PGN_GOOD = """[Game "Chinese Chess"]
[Event "test"]
[Format "ICCS"]
[Result "1-0"]

1. h2e2 h9g7 {a comment} 2. h0g2 (2. b0c2 b9c7) i9h9
3. i0h0 b9c7 1-0

[Game "Chinese Chess"]
[Format "ICCS"]
[FEN "3k5/9/9/9/9/9/9/9/9/R3K4 w - - 0 1"]

1. A0-D0 1-0

[Game "Chinese Chess"]
[Format "ICCS"]
[Result "1/2-1/2"]

1. b2e2 b9c7 2. b0c2 a9b9 3. a0b0 h7h3
"""

PGN_BAD = """[Format "ICCS"]
[Result "1-0"]

1. h2e2 h9g7 2. h0g2 i9h9 3. i0h0 b9c7 1-0

[Format "ICCS"]
[Result "0-1"]

1. h2e2 h9g7 2. e2e9 0-1

[Format "ICCS"]
[Result "1-0"]

1. h2e2 h9g7 {unclosed comment 2. h0g2 1-0

[Format "ICCS"]
[Result "1-0"]

1. h2e2 h9g7 2. h0g2 i9h9 3. i0h0 b9c7 1-0

[Format "ICCS"]
[Result "0-1"]

1. c3c4 g6g5 2. b0c2 h9g7 0-1
"""


def test_pgn_good_file(tmp_path):
    path = tmp_path / "good.pgn"
    path.write_text(PGN_GOOD, encoding="utf-8")
    games, stats = read_pgn(str(path))
    assert stats == ReadStats(read=3, kept=3)
    assert [g.moves for g in games] == [G1, ENDGAME, G2]
    assert [g.result for g in games] == ["red", "red", "draw"]
    assert games[1].fen == ENDGAME_FEN and games[0].meta["Event"] == "test"
    assert read_games(str(path))[0] == games
    again = tmp_path / "again.pgn"
    write_pgn(str(again), games)
    regames, restats = read_pgn(str(again))
    assert [(g.moves, g.result, g.start_fen()) for g in regames] == [(g.moves, g.result, g.start_fen()) for g in games]


def test_pgn_bad_file_counts(tmp_path):
    path = tmp_path / "bad.pgn"
    path.write_text(PGN_BAD, encoding="utf-8")
    games, stats = read_pgn(str(path))
    assert (stats.read, stats.kept, stats.corrupt_lines, stats.illegal_games, stats.duplicates) == (5, 2, 1, 1, 1)
    assert [g.moves for g in games] == [G1, G3]


def test_pgn_in_other_notations(tmp_path):
    path = tmp_path / "wxf.pgn"
    path.write_text('[Format "WXF"]\n[Result "1-0"]\n\n1. C2=5 H8+7 2. H2+3 R9=8 1-0\n\n'
                    '[Format "Chinese"]\n[Result "0-1"]\n\n1. 炮二平五 马８进７ 2. 马二进三 车９平８ 0-1\n\n'
                    '[Format "WXF"]\n[Result "0-1"]\n\n1. C2=5 H8+7 2. C5+9 0-1\n', encoding="utf-8")
    games, stats = read_pgn(str(path))
    assert [g.moves for g in games] == [["h2e2", "h9g7", "h0g2", "i9h9"]]
    assert (stats.kept, stats.duplicates, stats.illegal_games) == (1, 1, 1)


def test_own_jsonl_round_trip(tmp_path):
    path = str(tmp_path / "own.jsonl")
    recs = [GameRecord(moves=G1, result="red", termination="checkmate", source="selfplay",
                       engine={"red": {"depth": 3}, "black": {"nodes": 500}}, id="s0-0000000"),
            GameRecord(moves=ENDGAME, result="red", termination="checkmate", fen=ENDGAME_FEN, source="x", id="b"),
            GameRecord(moves=G2, result=None, source="unknown result")]
    with GameWriter(path) as w:
        for r in recs[:2]:
            w.write(r)
    append_game(path, recs[2])
    lines = open(path, encoding="utf-8").read().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["plies"] == len(G1) and "fen" not in json.loads(lines[0])
    games, stats = read_jsonl(path)
    assert stats == ReadStats(read=3, kept=3)
    assert games == recs
    assert read_games(path)[0] == recs


def test_gzip_files_read_like_plain_ones(tmp_path):
    """*.gz game files (the bundled model ships its training games compressed) are read as they are:
    the same games and counts as the plain file, for JSONL and PGN, bad lines included."""
    import gzip

    plain = tmp_path / "bad.pgn"
    plain.write_text(PGN_BAD, encoding="utf-8")
    packed = tmp_path / "bad.pgn.gz"
    packed.write_bytes(gzip.compress(PGN_BAD.encode("utf-8")))
    (got, got_stats), (ref, ref_stats) = read_games(str(packed)), read_pgn(str(plain))
    assert [(g.moves, g.result, g.fen) for g in got] == [(g.moves, g.result, g.fen) for g in ref] and len(got) == 2
    assert (got_stats.read, got_stats.kept, got_stats.corrupt_lines, got_stats.illegal_games, got_stats.duplicates) \
        == (ref_stats.read, ref_stats.kept, ref_stats.corrupt_lines, ref_stats.illegal_games, ref_stats.duplicates)
    recs = [GameRecord(moves=G1, result="red", id="a"), GameRecord(moves=G2, result="draw", id="b")]
    lines = [r.to_json() for r in recs] + ["not json"]
    jpath = tmp_path / "own.jsonl.gz"
    jpath.write_bytes(gzip.compress(("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines)
                                     + "\n").encode("utf-8")))
    games, stats = read_games(str(jpath))
    assert games == recs and (stats.read, stats.kept, stats.corrupt_lines) == (3, 2, 1)


def test_own_jsonl_bad_file_counts(tmp_path):
    good = [GameRecord(moves=m, result="draw", id=str(i)).to_json() for i, m in enumerate((G1, G2, G3))]
    path = _lines(tmp_path / "own_bad.jsonl", [
        good[0],
        "this is not json",                                  # corrupt line
        {"id": "x", "moves": ILLEGAL, "result": "red"},      # illegal move
        good[1],
        dict(good[0], id="dup"),                             # same start + moves as the first: duplicate
        good[2],
        {"moves": G3, "result": "white"},                    # not a result we know: corrupt
    ])
    games, stats = read_jsonl(path)
    assert (stats.read, stats.kept, stats.corrupt_lines, stats.illegal_games, stats.duplicates) == (7, 3, 2, 1, 1)
    assert [g.id for g in games] == ["0", "1", "2"]
    # de-duplication across files through a shared set
    seen = set()
    read_jsonl(path, seen=seen)
    _, stats2 = read_jsonl(path, seen=seen)
    assert stats2.kept == 0 and stats2.duplicates == 4


def test_partial_last_line_and_repair(tmp_path):
    path = str(tmp_path / "killed.jsonl")
    append_game(path, GameRecord(moves=G1, result="red", id="a"))
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "b", "moves": ["h2e2", "h9')         # a writer killed mid-line
    games, stats = read_jsonl(path)
    assert (stats.kept, stats.corrupt_lines) == (1, 1)
    append_game(path, GameRecord(moves=G2, result="draw", id="c"))  # the writer starts a fresh line
    games, stats = read_jsonl(path)
    assert [g.id for g in games] == ["a", "c"] and stats.corrupt_lines == 1
    # repair_tail cuts only an unterminated last line
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "d", "mo')
    assert repair_tail(path) == len('{"id": "d", "mo')
    assert repair_tail(path) == 0 and open(path, encoding="utf-8").read().endswith("\n")
    assert [g.id for g in read_jsonl(path)[0]] == ["a", "c"]
    with open(path, "a", encoding="utf-8") as f:  # a whole record that only lacks its newline is kept
        f.write(json.dumps(GameRecord(moves=G3, id="e").to_json()))
    assert repair_tail(path) == 0 and [g.id for g in read_jsonl(path)[0]] == ["a", "c", "e"]
    solo = str(tmp_path / "solo.jsonl")
    with open(solo, "w") as f:
        f.write('{"partial')
    assert repair_tail(solo) == 9 and open(solo).read() == ""
    assert repair_tail(str(tmp_path / "missing.jsonl")) == 0


def test_record_position_and_key():
    g = GameRecord(moves=ENDGAME, fen=ENDGAME_FEN, result="red")
    assert g.position().outcome() == ("red", "checkmate")
    assert GameRecord(moves=G1).key() == (START_FEN, tuple(G1))
    assert Position.from_moves(G1).fen() == GameRecord(moves=G1).position().fen()
