"""Write named metadata into a ``.tflite`` file (the converter's half of the spec contract).

The device reads it back with ``edge_runtime.tflite_metadata.read_metadata`` (no TensorFlow).
"""

from __future__ import annotations

import json

from itemrec.edge_runtime.spec import SPEC_METADATA_NAME, ModelSpec


def embed_metadata(tflite_bytes: bytes, name: str, data: bytes) -> bytes:
    """Return the model with metadata ``name`` set to ``data`` (replacing an entry of that name).

    Uses TensorFlow's schema object API (``tensorflow.lite.tools.flatbuffer_utils``): the model
    is unpacked, a ``Buffer`` holding ``data`` is appended, a ``Metadata`` entry points at it,
    and the model is packed again with the ``TFL3`` identifier.
    """
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite_bytes))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(data), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    others = [m for m in (model.metadata or []) if _name(m) != name]
    model.metadata = others + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def embed_spec(tflite_bytes: bytes, spec: ModelSpec) -> bytes:
    """Embed ``spec`` (without its fingerprint: a file cannot hold its own hash) as UTF-8 JSON."""
    payload = spec.to_dict()
    payload.pop("fingerprint", None)
    text = json.dumps(payload, indent=2, sort_keys=True)
    return embed_metadata(tflite_bytes, SPEC_METADATA_NAME, text.encode("utf-8"))


def _name(entry) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)
