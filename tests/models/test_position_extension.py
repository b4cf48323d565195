"""models/position_extension.py: each way of extending a trained 16-row position table keeps
the trained rows bit for bit (interpolation: row 0 and every s-th row, the rows its formula
puts there) and builds the table its formula says; the extended BERT + MLM head of a tiny
model folder carries the other weights as they are; bad input is a one-line ValueError."""

import numpy as np
import pytest

from models.mlm_training import load_mlm_model
from models.position_extension import build_extended_mlm, extend_mlm, extend_positions, position_table
from tests.mlm_assets import POSITIONS, make_tiny_mlm_folder

WIDTH = 4


@pytest.fixture(scope="module")
def table():
    return np.random.default_rng(7).normal(0.0, 1.0, (POSITIONS, WIDTH)).astype("float32")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_mlm_folder(tmp_path_factory.mktemp("extension") / "model")


@pytest.mark.parametrize("method", ["copy", "random", "hierarchical"])
def test_the_trained_rows_are_kept_bit_for_bit(table, method):
    extended = extend_positions(table, 40, method, seed=1)
    assert extended.shape == (40, WIDTH) and extended.dtype == table.dtype
    assert extended[:POSITIONS].tobytes() == table.tobytes()


def test_copy_tiles_the_trained_table(table):
    extended = extend_positions(table, 40, "copy")
    for row in range(40):
        assert extended[row].tobytes() == table[row % POSITIONS].tobytes()


@pytest.mark.parametrize("length", [48, 40, 17])
def test_interpolate_reads_the_table_at_j_over_s(table, length):
    """s = length / 16: row j is the table at j / s, linear between its neighbours, the rows at
    integer positions bit for bit, and past row 15 clamped to row 15."""
    extended = extend_positions(table, length, "interpolate")
    for row in range(length):
        position = row * POSITIONS / length
        low = int(np.floor(position))
        if position >= POSITIONS - 1:
            assert extended[row].tobytes() == table[-1].tobytes()
        elif position == low:
            assert extended[row].tobytes() == table[low].tobytes()
        else:
            weight = position - low
            np.testing.assert_allclose(extended[row], (1 - weight) * table[low] + weight * table[low + 1], atol=1e-6)
    scale = length // POSITIONS
    if length % POSITIONS == 0:  # s = 3: rows 3i are the trained rows
        assert extended[::scale].tobytes() == table.tobytes()
    assert extended[0].tobytes() == table[0].tobytes()


def test_random_rows_are_seeded_draws_of_n_0_0_02(table):
    extended = extend_positions(table, 4000, "random", seed=3)
    new = extended[POSITIONS:]
    assert abs(new.mean()) < 0.002 and abs(new.std() - 0.02) < 0.001
    assert np.array_equal(extended, extend_positions(table, 4000, "random", seed=3))
    assert not np.array_equal(new, extend_positions(table, 4000, "random", seed=4)[POSITIONS:])


def test_hierarchical_rows_follow_su_formula(table):
    alpha = 0.3
    extended = extend_positions(table, 60, "hierarchical", alpha=alpha)
    units = (table.astype(np.float64) - alpha * table[0]) / (1 - alpha)
    for row in range(POSITIONS, 60):
        expected = alpha * units[row // POSITIONS] + (1 - alpha) * units[row % POSITIONS]
        np.testing.assert_allclose(extended[row], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length, method, message", [
    (16, "copy", "length 16 is not above the 16 trained positions"),
    (3, "random", "length 3 is not above the 16 trained positions"),
    (40, "tile", "unknown position method 'tile': give one of copy, interpolate, random, hierarchical"),
    (257, "hierarchical", "length 257 is more than hierarchical positions reach: 16**2 = 256"),
], ids=["length-P", "length-below-P", "unknown-method", "past-P**2"])
def test_bad_input_is_a_one_line_value_error(table, length, method, message):
    with pytest.raises(ValueError) as error:
        extend_positions(table, length, method)
    assert message in str(error.value) and "\n" not in str(error.value)


def _predict(model, ids):
    return np.asarray(model.predict([ids, np.zeros_like(ids)], verbose=0))


def test_the_extended_model_keeps_every_other_weight(folder):
    plain, _ = load_mlm_model(folder)
    extended = build_extended_mlm(folder, 40, "random", seed=3)
    before = {weight.path: np.asarray(weight) for weight in plain.weights}
    after = {weight.path: np.asarray(weight) for weight in extended.weights}
    assert set(before) == set(after)
    for path, value in before.items():
        if path != "Embedding-Position/embeddings":
            assert value.tobytes() == after[path].tobytes(), path
    assert np.array_equal(after["Embedding-Position/embeddings"],
                          extend_positions(before["Embedding-Position/embeddings"], 40, "random", seed=3))
    ids = np.random.default_rng(0).integers(5, 100, (2, POSITIONS)).astype("int32")
    np.testing.assert_allclose(_predict(extended, ids), _predict(plain, ids), atol=1e-5)


def test_hierarchical_model_reads_the_table_the_formula_gives(folder):
    hierarchical = build_extended_mlm(folder, 40, "hierarchical", alpha=0.4)
    assert len(position_table(hierarchical)) == POSITIONS  # the decomposition, not a table
    materialised = build_extended_mlm(folder, 40, "copy")
    table = extend_positions(position_table(hierarchical), 40, "hierarchical", alpha=0.4)
    materialised.get_layer("Embedding-Position").embeddings.assign(table)
    ids = np.random.default_rng(1).integers(5, 100, (2, 40)).astype("int32")
    np.testing.assert_allclose(_predict(hierarchical, ids), _predict(materialised, ids), atol=1e-4)


def test_the_attention_is_swapped_and_kept_when_extended_again(folder):
    extended = build_extended_mlm(folder, 24, "copy", attention="performer",
                                  attention_kwargs={"nb_features": 8, "seed": 0})
    again = extend_mlm(extended, 48, "copy")
    for model, rows in ((extended, 24), (again, 48)):
        assert type(model.get_layer("Transformer-0-MultiHeadSelfAttention")).__name__ == "PerformerAttention"
        assert len(position_table(model)) == rows
    assert np.array_equal(position_table(again), extend_positions(position_table(extended), 48, "copy"))
    with pytest.raises(ValueError, match="hierarchical positions are built with hierarchical_position"):
        extend_mlm(extended, 48, "hierarchical")
