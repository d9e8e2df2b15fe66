"""The numbers of the verification report, against hand-worked examples and numpy references."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from itemrec.convert.graph import inspect_graph
from itemrec.convert.verify import cosines, rank1
from itemrec.train.run_dir import config_hash

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_cosines_row_by_row():
    a = np.array([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [-3.0, -4.0], [0.0, 5.0]])
    np.testing.assert_allclose(cosines(a, b), [1.0, -1.0, np.sqrt(0.5)])


def test_rank1_first_image_of_each_class_represents():
    # Classes a, b, c: the first image of each (rows 0, 2, 4) is its representative.
    e = np.array(
        [
            [1.0, 0.0, 0.0],  # a rep
            [0.9, 0.1, 0.0],  # a probe -> nearest a: hit
            [0.0, 1.0, 0.0],  # b rep
            [0.8, 0.2, 0.0],  # b probe -> nearest a: miss
            [0.0, 0.0, 1.0],  # c rep
            [0.0, 0.1, 0.9],  # c probe -> hit
            [0.1, 0.0, 0.9],  # c probe -> hit
        ]
    )
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert rank1(e, list("aabbccc")) == pytest.approx(3 / 4)


def test_config_hash_is_the_sha256_of_the_canonical_json():
    expected = hashlib.sha256(b'{"a":[1,2],"b":"x"}').hexdigest()
    assert config_hash({"b": "x", "a": [1, 2]}) == expected


def test_integer_check_on_the_float_and_int8_fixtures():
    fp32 = inspect_graph((FIXTURES / "tiny_fp32.tflite").read_bytes())
    int8 = inspect_graph((FIXTURES / "tiny_int8.tflite").read_bytes())
    assert not fp32["integer"] and "CONV_2D#2" in fp32["float_ops"]
    assert int8["integer"] and int8["float_ops"] == []
    assert int8["ops"]["QUANTIZE"] == 1 and int8["ops"]["L2_NORMALIZATION"] == 1
