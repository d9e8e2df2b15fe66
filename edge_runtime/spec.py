"""``ModelSpec``: what the device must know about an embedding model to use it.

The spec travels inside the ``.tflite`` file as metadata (name ``itemrec_spec``) and beside
it as ``<model>.spec.json``. The fingerprint is the SHA-256 of the final ``.tflite`` bytes;
it is computed when a model file is loaded rather than stored inside it (a file cannot
contain its own hash), and a gallery records it to refuse embeddings from another model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from itemrec.edge_runtime import __version__
from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.files import read_regular_file, shown, write_bytes_atomically

#: A larger spec file is refused before reading (a real one has about 400 bytes).
MAX_SPEC_BYTES = 1_000_000

SPEC_METADATA_NAME = "itemrec_spec"
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Input geometry, output size and provenance of an embedding model."""

    input_height: int
    input_width: int
    embedding_size: int
    backbone: str
    quantization: str = "float32"
    fingerprint: str | None = None
    config_hash: str | None = None
    itemrec_version: str = __version__

    def __post_init__(self):
        for name in ("input_height", "input_width", "embedding_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ModelError(f"ModelSpec.{name} must be a positive integer, got {value!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ModelError(
                f"ModelSpec.quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}"
            )

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the model's input image."""
        return self.input_height, self.input_width

    def with_fingerprint(self, fingerprint: str) -> ModelSpec:
        return dataclasses.replace(self, fingerprint=fingerprint)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        if not isinstance(data, dict):
            raise ModelError(f"a model spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = {"input_height", "input_width", "embedding_size", "backbone"} - data.keys()
        if missing:
            raise ModelError(f"model spec lacks {', '.join(sorted(missing))}")
        # Unknown keys come from newer writers: ignore them rather than refuse the model.
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelError(f"model spec is not valid JSON: {err}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        write_bytes_atomically(path, (self.to_json() + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """The spec in the JSON file ``path``; ``ModelError`` naming the file if it cannot be."""
        data = read_regular_file(path, MAX_SPEC_BYTES, ModelError, "a model spec")
        try:
            return cls.from_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ModelError(f"{shown(path)}: model spec is not UTF-8") from None
        except ModelError as err:
            raise ModelError(f"{shown(path)}: {err.one_line()}") from None


def sidecar_path(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.spec.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".spec.json")


def fingerprint_bytes(data: bytes) -> str:
    """SHA-256 hex digest of a model's bytes."""
    return hashlib.sha256(data).hexdigest()


def fingerprint_file(path: str | Path) -> str:
    """SHA-256 hex digest of a model file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
