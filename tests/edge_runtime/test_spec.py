import hashlib
import os

import pytest

from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.spec import ModelSpec, fingerprint_bytes, fingerprint_file, sidecar_path


def test_json_round_trip_and_unknown_keys_ignored(tmp_path):
    spec = ModelSpec(96, 128, 64, "efficientnet_lite0", "int8", config_hash="abc")
    path = tmp_path / "m.spec.json"
    spec.save(path)
    assert ModelSpec.load(path) == spec
    data = spec.to_dict() | {"added_in_a_later_version": 1}
    assert ModelSpec.from_dict(data) == spec
    assert spec.input_size == (96, 128)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"input_height": 96, "input_width": 96, "backbone": "x"}', "lacks embedding_size"),
        (
            '{"input_height": 0, "input_width": 96, "embedding_size": 8, "backbone": "x"}',
            "input_height must be a positive integer",
        ),
        (
            '{"input_height": 9, "input_width": 9, "embedding_size": 8, "backbone": "x",'
            ' "quantization": "int4"}',
            "quantization must be one of",
        ),
    ],
)
def test_bad_specs_are_refused_with_a_reason(text, message):
    with pytest.raises(ModelError, match=message):
        ModelSpec.from_json(text)


def test_missing_spec_file_is_a_spec_error(tmp_path):
    with pytest.raises(ModelError, match="absent.json: No such file"):
        ModelSpec.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "make, message",
    [
        (os.mkfifo, "not a regular file"),  # would block a reader forever
        (lambda p: p.write_bytes(b"{\xff}"), "model spec is not UTF-8"),
        (lambda p: p.write_text("[1]"), "model.spec.json: .*JSON object"),
    ],
)
def test_a_broken_sidecar_names_itself(tmp_path, make, message):
    path = tmp_path / "model.spec.json"
    make(path)
    with pytest.raises(ModelError, match=message):
        ModelSpec.load(path)


def test_fingerprint_is_sha256_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000  # > 1 MiB: exercises chunked reading
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert fingerprint_file(path) == fingerprint_bytes(data) == expected
    spec = ModelSpec(8, 8, 4, "x").with_fingerprint(expected)
    assert spec.fingerprint == expected


def test_sidecar_path():
    assert sidecar_path("/a/b/model.tflite").as_posix() == "/a/b/model.spec.json"
