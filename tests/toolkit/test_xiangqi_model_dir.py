"""toolkit.xiangqi.model_dir: a missing directory, a file, and a directory without
the model files are one-line ValueErrors naming the path and the fix."""

import pytest

from toolkit.xiangqi.model_dir import check_model_dir

FIX = ("give a directory with config.json and model.weights.h5 (scripts/train_xiangqi.py --out DIR writes them), "
       "or leave --model out for the bundled model")


def test_bad_model_directories_are_one_line_errors(tmp_path):
    cases = {tmp_path / "missing": "no such directory", tmp_path / "a_file": "not a directory",
             tmp_path / "empty": "no config.json or model.weights.h5 in it",
             tmp_path / "half": "no model.weights.h5 in it"}
    (tmp_path / "a_file").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    for path, what in cases.items():
        with pytest.raises(ValueError) as error:
            check_model_dir(str(path))
        assert str(error.value) == f"--model {path}: {what}; {FIX}"


def test_a_model_directory_and_the_bundled_model_pass(tmp_path):
    for name in ("config.json", "model.weights.h5"):
        (tmp_path / name).write_text("")
    assert check_model_dir(str(tmp_path)) is None
    assert check_model_dir(None) is None
