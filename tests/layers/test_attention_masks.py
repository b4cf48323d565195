"""PaddingMask and UniLMMask with an explicit pad id, no pad id, and an attention-mask input."""

import keras
import numpy as np
import pytest

from layers import PaddingMask, UniLMMask
from tests.layers.layer_checks import check_config_round_trip, check_save_load


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_padding_mask_with_attention_mask_input(tmp_path):
    ids = np.array([[0, 6, 7, 3, 3], [3, 0, 9, 8, 0]], "int32")
    mask = np.array([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]], "int32")
    # no pad id: the attention mask alone (id 0 is a real token)
    assert _np(PaddingMask(pad_id=None)([ids, mask])).tolist() == mask.astype(bool).tolist()
    # a pad id too: both
    both = _np(PaddingMask(pad_id=3)([ids, mask]))
    np.testing.assert_array_equal(both, mask.astype(bool) & (ids != 3))
    assert _np(PaddingMask(pad_id=3)(ids)).tolist() == (ids != 3).tolist()
    with pytest.raises(ValueError, match="pad_id is None"):
        PaddingMask(pad_id=None)(ids)
    assert check_config_round_trip(PaddingMask(pad_id=None)).pad_id is None
    check_save_load(PaddingMask(pad_id=None), [ids, mask], tmp_path)


def test_unilm_mask_pad_id():
    ids = np.array([[5, 0, 7, 3]], "int32")
    seg = np.array([[0, 0, 1, 1]], "int32")
    causal_prefix = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], bool)
    np.testing.assert_array_equal(_np(UniLMMask(pad_id=None)([ids, seg]))[0], causal_prefix)
    np.testing.assert_array_equal(_np(UniLMMask(pad_id=3)([ids, seg]))[0], causal_prefix & (ids[0] != 3))
    np.testing.assert_array_equal(_np(UniLMMask()([ids, seg]))[0], causal_prefix & (ids[0] != 0))  # default 0
    assert check_config_round_trip(UniLMMask(pad_id=3)).pad_id == 3
