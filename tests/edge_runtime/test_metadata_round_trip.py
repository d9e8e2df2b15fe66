"""Round trip: ``convert.metadata`` writes with TensorFlow, ``edge_runtime`` reads without it."""

from __future__ import annotations

import pytest
from edge_helpers import FP32_MODEL

pytest.importorskip("tensorflow", reason="the writer side (convert) needs TensorFlow")

from itemrec.edge_runtime.spec import SPEC_METADATA_NAME, ModelSpec
from itemrec.edge_runtime.tflite_metadata import read_metadata


def test_embed_metadata_round_trip_and_replace():
    from itemrec.convert.metadata import embed_metadata

    original = FP32_MODEL.read_bytes()
    before = read_metadata(original)
    once = embed_metadata(original, "notes", b"\x00\x01binary\xff")
    twice = embed_metadata(once, "notes", "ünïcode".encode())
    after = read_metadata(twice)
    assert after["notes"] == "ünïcode".encode()
    assert set(after) == set(before) | {"notes"}  # replaced, not duplicated
    assert after[SPEC_METADATA_NAME] == before[SPEC_METADATA_NAME]
    assert twice[4:8] == b"TFL3"


def test_embed_spec_drops_the_fingerprint():
    from itemrec.convert.metadata import embed_spec

    spec = ModelSpec(32, 32, 16, "tiny_conv", "float32", fingerprint="ab" * 32, config_hash="c0")
    stored = read_metadata(embed_spec(FP32_MODEL.read_bytes(), spec))[SPEC_METADATA_NAME]
    assert ModelSpec.from_json(stored) == ModelSpec(32, 32, 16, "tiny_conv", config_hash="c0")
    assert b"fingerprint" not in stored


def test_buffer_stored_after_the_flatbuffer_is_read_by_offset():
    """Models over 2 GB keep buffers after the flatbuffer (Buffer.offset/size from file start)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    payload = b"stored outside the flatbuffer"
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(FP32_MODEL.read_bytes()))
    buffer = schema.BufferT()
    buffer.offset, buffer.size = 2, len(payload)  # placeholder offset, same encoded width
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "outside", len(model.buffers) - 1
    model.metadata.append(entry)
    length = len(flatbuffer_utils.convert_object_to_bytearray(model))
    buffer.offset = length
    data = flatbuffer_utils.convert_object_to_bytearray(model, extra_buffer=payload)
    assert len(data) == length + len(payload)
    assert read_metadata(data)["outside"] == payload
