"""The edge's pure-Python metadata reader against the converter's TensorFlow-based writer."""

from __future__ import annotations

import json

import pytest
from edge_helpers import FP32_MODEL, INT8_MODEL

from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.spec import SPEC_METADATA_NAME
from itemrec.edge_runtime.tflite_metadata import has_tflite_identifier, read_metadata


@pytest.mark.parametrize("path, quantization", [(FP32_MODEL, "float32"), (INT8_MODEL, "int8")])
def test_fixture_models_carry_their_spec(path, quantization):
    metadata = read_metadata(path.read_bytes())
    spec = json.loads(metadata[SPEC_METADATA_NAME])
    assert spec["quantization"] == quantization
    assert (spec["input_height"], spec["input_width"], spec["embedding_size"]) == (32, 32, 16)
    assert "fingerprint" not in spec  # a file cannot carry its own hash
    # The converter's own entries are read too.
    assert metadata["min_runtime_version"].rstrip(b"\0").startswith(b"1.")


def test_not_tflite_and_truncated_bytes_are_refused():
    data = FP32_MODEL.read_bytes()
    assert has_tflite_identifier(data)
    assert not has_tflite_identifier(b"\0\0\0\0TFL")
    with pytest.raises(ModelError, match="TFL3"):
        read_metadata(data[:4] + b"ZIP!" + data[8:])
    # Cut before the metadata's bytes end: an error, never a wrong answer. (Cuts further on
    # only lose weights, which the interpreter refuses: see test_interpreter.)
    for length in range(8, 2800, 97):
        with pytest.raises(ModelError, match="past the end"):
            read_metadata(data[:length])
