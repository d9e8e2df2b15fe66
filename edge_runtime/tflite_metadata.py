"""Read the named metadata of a ``.tflite`` file without TensorFlow or the flatbuffers package.

A TFLite model is a flatbuffer whose root table is ``Model`` (tensorflow/lite/schema/schema.fbs)::

    table Model    { version:uint (0); operator_codes (1); subgraphs (2); description:string (3);
                     buffers:[Buffer] (4); metadata_buffer:[int] (5); metadata:[Metadata] (6);
                     signature_defs (7); ... }
    table Metadata { name:string (0); buffer:uint (1); }
    table Buffer   { data:[ubyte] (0); offset:ulong (1); size:ulong (2); }

``Metadata.buffer`` indexes ``Model.buffers``. A buffer's bytes are inline (``data``) or, in
models over 2 GB, stored after the flatbuffer at ``offset`` (from the start of the file) with
``size`` bytes. The file identifier ``TFL3`` sits at bytes 4..8.

Flatbuffer encoding used here (little endian): the file starts with a uint32 offset to the root
table; a table starts with an int32 ``soffset`` and its vtable lies at ``table - soffset``; the
vtable holds uint16 ``vtable size``, uint16 ``table size`` and one uint16 offset per field
(0 = absent); reference fields hold a uint32 offset relative to the field's own position;
vectors and strings start with a uint32 length.
"""

from __future__ import annotations

import struct

from itemrec.edge_runtime.errors import ModelError

TFLITE_IDENTIFIER = b"TFL3"

_MODEL_BUFFERS = 4
_MODEL_METADATA = 6
_METADATA_NAME = 0
_METADATA_BUFFER = 1
_BUFFER_DATA = 0
_BUFFER_OFFSET = 1
_BUFFER_SIZE = 2


def has_tflite_identifier(data: bytes) -> bool:
    """True when ``data`` carries the TFLite file identifier at bytes 4..8."""
    return len(data) >= 8 and data[4:8] == TFLITE_IDENTIFIER


class _Reader:
    """Bounds-checked access to flatbuffer tables, vectors and strings."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)

    def _unpack(self, fmt: str, pos: int):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise ModelError(f"offset {pos} runs past the end ({len(self.data)} bytes)")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def root(self) -> int:
        return self._unpack("<I", 0)

    def field_pos(self, table: int, field: int) -> int | None:
        """Absolute position of ``field`` in ``table``, or None when it is absent."""
        vtable = table - self._unpack("<i", table)
        vtable_size = self._unpack("<H", vtable)
        slot = 4 + 2 * field
        if slot + 2 > vtable_size:
            return None
        offset = self._unpack("<H", vtable + slot)
        return table + offset if offset else None

    def scalar(self, table: int, field: int, fmt: str, default=0):
        pos = self.field_pos(table, field)
        return default if pos is None else self._unpack(fmt, pos)

    def reference(self, table: int, field: int) -> int | None:
        """Absolute position of the table/vector/string a reference field points to."""
        pos = self.field_pos(table, field)
        return None if pos is None else pos + self._unpack("<I", pos)

    def vector_length(self, vector: int) -> int:
        return self._unpack("<I", vector)

    def table_at(self, vector: int, index: int) -> int:
        element = vector + 4 + 4 * index
        return element + self._unpack("<I", element)

    def bytes_at(self, vector: int) -> bytes:
        length = self.vector_length(vector)
        start = vector + 4
        if start + length > len(self.data):
            raise ModelError(f"a {length}-byte vector at {vector} runs past the end")
        return bytes(self.data[start : start + length])


def read_metadata(model: bytes) -> dict[str, bytes]:
    """Return ``{name: bytes}`` for every entry of the model's ``metadata`` list.

    Raises ``ModelError`` when the bytes are not a TFLite flatbuffer or are truncated.
    """
    if not has_tflite_identifier(model):
        raise ModelError("not a TFLite model (no 'TFL3' identifier at bytes 4..8)")
    reader = _Reader(model)
    root = reader.root()
    metadata = reader.reference(root, _MODEL_METADATA)
    if metadata is None:
        return {}
    buffers = reader.reference(root, _MODEL_BUFFERS)
    buffer_count = 0 if buffers is None else reader.vector_length(buffers)
    result = {}
    for i in range(reader.vector_length(metadata)):
        entry = reader.table_at(metadata, i)
        name_pos = reader.reference(entry, _METADATA_NAME)
        name = "" if name_pos is None else reader.bytes_at(name_pos).decode("utf-8", "replace")
        index = reader.scalar(entry, _METADATA_BUFFER, "<I")
        if index >= buffer_count:
            raise ModelError(f"metadata {name!r} points at missing buffer {index}")
        result[name] = _buffer_bytes(reader, reader.table_at(buffers, index))
    return result


def _buffer_bytes(reader: _Reader, buffer: int) -> bytes:
    data = reader.reference(buffer, _BUFFER_DATA)
    if data is not None:
        return reader.bytes_at(data)
    offset = reader.scalar(buffer, _BUFFER_OFFSET, "<Q")
    size = reader.scalar(buffer, _BUFFER_SIZE, "<Q")
    if offset > 1:  # 0 and 1 mean "no external data" in the schema
        if offset + size > len(reader.data):
            raise ModelError(f"a {size}-byte buffer at {offset} runs past the end")
        return bytes(reader.data[offset : offset + size])
    return b""
