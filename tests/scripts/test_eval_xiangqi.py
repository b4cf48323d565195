"""scripts/eval_xiangqi.py with a tiny random model: held-out accuracy figures,
one random-mover match per player kind (guarded and model alone), the
conditioning comparison, the JSON file and the report lines."""

import json

from models.xiangqi import split_games
from scripts import eval_xiangqi
from toolkit.xiangqi.player import RandomPlayer, play_game
from toolkit.xiangqi.records import GameRecord, append_game, read_games


def test_eval_reports_both_player_kinds(tiny_xiangqi_model, tmp_path, capsys):
    games = tmp_path / "games.jsonl"
    for i in range(8):
        pos, out = play_game(RandomPlayer(i), RandomPlayer(100 + i), max_plies=12)
        append_game(str(games), GameRecord(moves=pos.moves, result="draw", termination=out.termination))
    held_out = split_games(read_games(str(games))[0], 0.5)[1]
    assert held_out  # the split is a hash of the moves: at 0.5 some of 8 games are held out
    out_json = tmp_path / "eval.json"
    assert eval_xiangqi.main(["--model", tiny_xiangqi_model, "--games", str(games), "--val-fraction", "0.5",
                              "--positions", "6", "--random-games", "2", "--engine-games", "0",
                              "--conditioning-games", "2", "--max-plies", "24",
                              "--players", "guarded", "model", "--json", str(out_json),
                              "--note", "Both parts ran at once."]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res == json.loads(out_json.read_text()) and res["complete"] is True
    assert res["val_games"] == len(held_out)
    for key in ("accuracy_any", "accuracy_own"):
        a = res[key]
        assert a["positions"] == 6 and 0 <= a["top1_accuracy"] <= 1
        assert 0 <= a["greedy_legal_rate"] <= 1 and 0 <= a["top_move_legal_rate"] <= 1
    matches = res["matches"]
    assert set(matches) == {"vs random mover (guarded, own-win token)",
                            "vs random mover (model + mate in one, own-win token)",
                            "vs random mover (guarded, `<any>` token)"}
    for s in matches.values():
        assert s["games"] == 2 and s["illegal_moves"] == 0 and s["wins"] + s["draws"] + s["losses"] == 2
    assert res["conditioning"]["player"] == "guarded" and res["conditioning"]["games"] == 2
    assert res["note"] == "Both parts ran at once." and "--note" not in res["commands"][-1]
    body = eval_xiangqi.report(res, "cmd")
    assert "\nBoth parts ran at once.\n" in body
    assert "| vs random mover (guarded, own-win token) | 2 |" in body
    assert "Conditioning (random mover, guarded player)" in body
