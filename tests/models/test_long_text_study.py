"""models/long_text_study.py on a tiny random MLM folder (16 positions) and a tiny corpus passed
in: the cells of two methods at K in {0, 2} run and land in the results file, every method
fills the same masks, a rerun skips finished cells and a killed one redoes only the missing
ones, a results file of another model or setup is refused, bad settings are one line, and the
report of a synthetic results file has its tables and writes the PNG."""

import json

import numpy as np
import pytest

from models.long_text_study import (StudySettings, cut_pieces, read_results, reading_lines, report_tables, run_study,
                                    training_batches, write_report)
from tests.mlm_assets import POSITIONS, make_tiny_mlm_folder, tiny_text
from toolkit.mlm_data import CLS, PAD, StreamSettings, batch_for_step

CHARACTERS = 3000
LENGTHS = [POSITIONS, 40]


def tiny_documents():
    """About 20 documents of People's Daily text of 150 characters (every token in the tiny vocabulary)."""
    text = tiny_text(CHARACTERS)
    return [text[start:start + 150] for start in range(0, len(text), 150)]


def tiny_settings(folder, results, **overrides):
    settings = dict(model_dir=folder, results=str(results), methods=["chunked", "copy"], attentions=["softmax"],
                    lengths=LENGTHS, steps=[0, 2], seeds=[0], batch_size=2, train_length=32, held_out=0.3)
    return StudySettings(**{**settings, **overrides})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_mlm_folder(tmp_path_factory.mktemp("study") / "model", characters=CHARACTERS)


@pytest.fixture(scope="module")
def study(folder, tmp_path_factory):
    results = tmp_path_factory.mktemp("results") / "results.jsonl"
    lines = []
    rows = run_study(tiny_settings(folder, results), tiny_documents(), say=lines.append)
    return results, rows, lines


def test_every_cell_runs_and_is_written(study):
    results, rows, lines = study
    keys = {(row["method"], row["attention"], row["length"], row["steps"], row["seed"]) for row in rows}
    assert keys == {(method, "softmax", length, steps, 0) for method in ("chunked", "copy") for length in LENGTHS
                    for steps in (0, 2)}
    assert read_results(str(results)) == rows and len(lines) == 8
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["loss"] > 0 and row["masked_tokens"] > 0
        assert row["setup"]["positions"] == POSITIONS and row["setup"]["train_length"] == 32
    assert all(row["train_seconds"] > 0 for row in rows if row["steps"] == 2)


def test_every_method_fills_the_same_masks(study):
    _, rows, _ = study
    by_key = {(row["method"], row["length"], row["steps"]): row for row in rows}
    for length in LENGTHS:
        assert by_key[("chunked", length, 0)]["masked_tokens"] == by_key[("copy", length, 0)]["masked_tokens"]
    # at the trained length, zero-shot, copy's table starts with the trained rows: the same model as chunked
    assert by_key[("copy", POSITIONS, 0)]["loss"] == pytest.approx(by_key[("chunked", POSITIONS, 0)]["loss"],
                                                                   rel=1e-4)


def test_a_rerun_skips_finished_cells_and_a_killed_one_redoes_only_the_missing(study, folder, tmp_path):
    results, rows, _ = study
    lines = []
    assert len(run_study(tiny_settings(folder, results), tiny_documents(), say=lines.append)) == 8
    assert lines == ["8 cells already in " + str(results) + ": skipped"]
    killed = tmp_path / "killed.jsonl"
    kept = [row for row in rows if (row["method"], row["length"], row["steps"]) != ("copy", 40, 0)]
    killed.write_text("".join(json.dumps(row) + "\n" for row in kept) + '{"method": "copy", "attent')
    lines = []
    again = run_study(tiny_settings(folder, killed), tiny_documents(), say=lines.append)
    assert len(lines) == 2 and lines[1].startswith("copy softmax length 40 K 0 seed 0: accuracy ")
    assert len(again) == 8 and len(read_results(str(killed))) == 8
    redone = next(row for row in again if (row["method"], row["length"], row["steps"]) == ("copy", 40, 0))
    original = next(row for row in rows if (row["method"], row["length"], row["steps"]) == ("copy", 40, 0))
    assert redone["accuracy"] == original["accuracy"] and redone["loss"] == pytest.approx(original["loss"])


@pytest.mark.parametrize("change, message", [
    ({"model": "0123456789abcdef"}, "holds results of another model (digest 0123456789abcdef, this model's "),
    ({"setup": {"lr": 0.5}}, "was made with --lr 0.5, here 0.0001: give the same setting, or a new --results"),
], ids=["other-model", "other-lr"])
def test_a_foreign_results_file_is_refused(study, folder, tmp_path, change, message):
    _, rows, _ = study
    row = dict(rows[0])
    row.update(model=change.get("model", row["model"]), setup={**row["setup"], **change.get("setup", {})})
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError) as error:
        run_study(tiny_settings(folder, foreign), tiny_documents(), say=lambda line: None)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("overrides, message", [
    ({"methods": ["tiled"]}, "--methods tiled: unknown method; give chunked, hierarchical, copy, interpolate, random"),
    ({"methods": ["hierarchical-1.5"]}, "--methods hierarchical-1.5: hierarchical-ALPHA needs an alpha strictly"),
    ({"attentions": ["performer"]}, "--attentions performer: unknown attention; give softmax, taylor or performer-M"),
    ({"steps": [0, -1]}, "--steps -1: must be an integer >= 0"),
    ({"lengths": [1]}, "--lengths 1: must be an integer >= 2"),
    ({"methods": ["hierarchical"], "lengths": [300]}, "--lengths 300 is more than hierarchical positions reach: "
                                                      "16**2 = 256 tokens"),
    ({"train_length": 16}, "--train-length 16 is not above the model's 16 trained positions: copy extend"),
    ({"lr": 0.0}, "--lr must be a number > 0, got 0.0"),
], ids=["unknown-method", "bad-alpha", "performer-without-m", "negative-K", "length-1", "past-P**2",
        "train-length-P", "lr-0"])
def test_bad_settings_are_one_line(overrides, message):
    with pytest.raises(ValueError) as error:
        tiny_settings("unused", "unused", **overrides).check(POSITIONS)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_default_cells_pair_each_method_with_softmax_and_each_attention_with_one_method():
    assert StudySettings().variants() == [
        ("chunked", "softmax"), ("hierarchical", "softmax"), ("copy", "softmax"), ("interpolate", "softmax"),
        ("random", "softmax"), ("hierarchical", "performer-64"), ("hierarchical", "performer-256"),
        ("hierarchical", "taylor")]
    assert StudySettings(methods=["hierarchical-0.3"], attentions=["taylor"],
                         attention_method="chunked").variants() == [("chunked", "taylor")]


def test_the_chunked_pieces_cover_every_token_once():
    inputs = np.arange(10, 10 + 2 * 40, dtype=np.int32).reshape(2, 40)
    inputs[:, 0] = CLS
    pieces, targets = cut_pieces(inputs, inputs, POSITIONS)
    assert pieces.shape == (2 * 3, POSITIONS) and (pieces[:, 0] == CLS).all()
    assert (targets[:, 0] == 0).all()
    for row in range(2):
        body = np.concatenate([pieces[piece * 2 + row, 1:] for piece in range(3)])
        assert body[body != PAD].tolist() == inputs[row, 1:].tolist()
    short, _ = cut_pieces(inputs[:, :12], inputs[:, :12], POSITIONS)
    assert np.array_equal(short, inputs[:, :12])  # a sequence the positions hold is read as it is


def test_chunked_training_sees_the_same_tokens_and_masks():
    sequences = np.random.default_rng(0).integers(5, 60, (6, 32)).astype(np.int32)
    sequences[:, 0] = CLS
    settings = tiny_settings("unused", "unused")
    whole = next(training_batches(sequences, settings, 60, seed=3))
    pieces = next(training_batches(sequences, settings, 60, seed=3, chunk_positions=POSITIONS))
    (_, _, _), labels = whole
    (_, _, _), piece_labels = pieces
    (inputs, _), _ = batch_for_step(sequences, 0, StreamSettings(2, 60, 3, head="all"))
    assert sorted(labels[labels > 0].tolist()) == sorted(piece_labels[piece_labels > 0].tolist())
    assert pieces[0][0].shape == (2 * 3, POSITIONS) and inputs.shape == (2, 32)


def synthetic_rows():
    """A results file's rows for every table of the report: five methods and three attentions,
    three lengths, K in {0, 200, 1000}, two seeds."""
    setup = {"positions": 128, "train_length": 512, "batch_size": 8, "lr": 1e-4, "max_sequences": None,
             "held_out": 0.02, "data": "abc"}
    variants = [(method, "softmax") for method in ("chunked", "hierarchical", "copy", "interpolate", "random")]
    variants += [("hierarchical", attention) for attention in ("performer-64", "performer-256", "taylor")]
    rows = []
    for number, ((method, attention), length, steps, seed) in enumerate(
            (variant, length, steps, seed) for variant in variants for length in (128, 512, 1024)
            for steps in (0, 200, 1000) for seed in (0, 1)):
        rows.append({"method": method, "alpha": 0.4 if method == "hierarchical" else None, "attention": attention,
                     "length": length, "steps": steps, "seed": seed, "accuracy": 0.3 + 0.001 * (number % 97),
                     "loss": 3.0, "masked_tokens": 100, "sequences": 4, "seconds": 1.0, "train_seconds": 2.0,
                     "model": "feedfacefeedface", "setup": setup})
    return rows


def test_the_report_has_its_tables_and_writes_the_png(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in synthetic_rows()))
    text = write_report(str(results), str(tmp_path / "docs" / "study.md"), str(tmp_path / "docs" / "study.png"))
    assert (tmp_path / "docs" / "study.md").read_text(encoding="utf-8") == text
    assert (tmp_path / "docs" / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("### Masked-token accuracy (%), K = 0 continued-training steps",
                    "### Masked-token accuracy (%), K = 1,000 continued-training steps",
                    "### Attention variants: masked-token accuracy (%)",
                    "### Seeds' spread at K = 1,000: mean (min-max, seeds)", "### Every cell"):
        assert heading in text
    assert "| method | 128 tokens | 512 tokens | 1,024 tokens |" in text
    assert "| interpolate | " in text and "| performer-64 | hierarchical | 1,000 | " in text
    assert "2 seeds)" in text and "Su (kexue.fm/archives/7947" in text and "![accuracy" in text
    assert len([line for line in text.splitlines() if line.startswith("| hierarchical | performer-256 | 128 | ")]) == 6
    assert "\n".join(report_tables(synthetic_rows())) in text
    assert "\n".join(reading_lines(synthetic_rows())) in text and "### What the numbers say" in text


def test_the_reading_puts_figures_on_the_claims():
    accuracy = {("hierarchical", 128): 0.30, ("hierarchical", 1024): 0.20, ("copy", 1024): 0.25,
                ("random", 1024): 0.15, ("chunked", 1024): 0.22}
    setup = {"positions": 128}
    rows = [{"method": method, "attention": "softmax", "length": length, "steps": steps, "seed": seed,
             "accuracy": value + 0.01 * steps / 200, "setup": setup}
            for (method, length), value in accuracy.items() for steps in (0, 200) for seed in (0, 1)]
    lines = reading_lines(rows)
    assert lines[:3] == ["", "### What the numbers say", ""] and len(lines) == 5
    assert lines[3] == ("- K = 0, 1,024 tokens: hierarchical 30.0% at 128 -> 20.0% (-10.0 points; Su: about -17 at "
                        "3x his positions); the position methods span 15.0% (random) to 25.0% (copy); random rows "
                        "against copy -10.0 points (Longformer: copy far better); copy against chunks of 128 "
                        "+3.0 points: the methods differ.")
    assert lines[4].startswith("- K = 200, 1,024 tokens: hierarchical 31.0% at 128 -> 21.0% ")
    close = [dict(row, accuracy=0.2 + 0.001 * (row["method"] == "copy")) for row in rows]
    assert reading_lines(close)[3].endswith(": the model hardly tells the methods apart.")
    assert reading_lines([row for row in rows if row["method"] == "hierarchical"]) == []


def test_the_report_of_no_results_is_one_line(tmp_path):
    with pytest.raises(ValueError) as error:
        write_report(str(tmp_path / "none.jsonl"), str(tmp_path / "x.md"), str(tmp_path / "x.png"))
    assert "no result yet" in str(error.value) and "\n" not in str(error.value)
