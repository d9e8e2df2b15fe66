"""Write and read ``gallery.bin``, the gallery the Android app reads (``docs/gallery-format.md``).

Version 1, little-endian: a 68-byte header, the items (code and name, UTF-8 with uint16
lengths), each vector's item index (uint32), the L2-normalised vectors (float32,
row-major) and a CRC-32 of every byte before it. numpy and the standard library only.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import GalleryError
from itemrec.edge_runtime.files import read_regular_file, write_bytes_atomically

MAGIC = b"IRGALLRY"
VERSION = 1
HEADER = struct.Struct("<8sIIIIfII32s")  # magic, version, dim, items, vectors, threshold, h, w, sha
assert HEADER.size == 68
CRC_SIZE = 4
#: A larger file is refused before reading (1M representatives of 128 floats are 512 MB).
MAX_GALLERY_BIN_BYTES = 1 << 31
MAX_TEXT_BYTES = 0xFFFF


@dataclass(frozen=True)
class GalleryBin:
    """The contents of one ``gallery.bin``."""

    codes: tuple[str, ...]
    names: tuple[str, ...]
    item_index: np.ndarray  # (vector_count,) uint32, index into codes/names
    vectors: np.ndarray  # (vector_count, dim) float32, rows L2-normalised
    threshold: float | None  # cosine threshold for "unknown item"; None when not calibrated
    input_size: tuple[int, int]  # model input (height, width)
    fingerprint_hex: str  # SHA-256 of the .tflite that made the vectors

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def write_gallery_bin(
    path,
    *,
    codes: Sequence[str],
    names: Sequence[str],
    item_index,
    vectors,
    threshold: float | None,
    input_size: tuple[int, int],
    fingerprint_hex: str,
) -> Path:
    """Write a version-1 ``gallery.bin`` atomically (temp file + rename, the umask's mode).

    ``vectors`` (vector_count x dim) are L2-normalised here (in float64, stored as float32),
    so the file always holds unit rows; a zero or non-finite row is refused.
    ``item_index[i]`` is the item (position in ``codes``) of vector ``i``.
    Raises ``GalleryError`` on inconsistent arrays.
    """
    path = Path(path)
    payload = _encode(
        str(path), codes, names, item_index, vectors, threshold, input_size, fingerprint_hex
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, payload)
    return path


def _encode(
    name, codes, names, item_index, vectors, threshold, input_size, fingerprint_hex
) -> bytes:
    """Return the bytes of a version-1 ``gallery.bin`` (arguments as ``write_gallery_bin``)."""

    def fail(message: str) -> GalleryError:
        return GalleryError(f"{name}: {message}")

    codes, names = list(codes), list(names)
    if len(codes) != len(names):
        raise fail(f"{len(codes)} codes but {len(names)} names")
    if len(set(codes)) != len(codes):
        raise fail("item codes are not unique")
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise fail(f"vectors must be a (vector_count, dim) array with dim > 0, got {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise fail("vectors must be finite and non-zero")
    unit = (vectors / norms[:, None]).astype("<f4")
    index = np.asarray(item_index)
    if index.size == 0:
        index = index.astype(np.int64)  # [] arrives as float64
    if index.shape != (len(unit),) or not np.issubdtype(index.dtype, np.integer):
        raise fail(f"item_index must hold one integer per vector ({len(unit)}), got {index.shape}")
    if index.size and (index.min() < 0 or index.max() >= len(codes)):
        raise fail(f"item index out of range 0..{len(codes) - 1}")
    height, width = (int(v) for v in input_size)
    if height <= 0 or width <= 0:
        raise fail(f"input size must be positive, got {input_size}")
    try:
        fingerprint = bytes.fromhex(fingerprint_hex)
    except ValueError:
        fingerprint = b""
    if len(fingerprint) != 32:
        raise fail("fingerprint must be 64 hex digits (SHA-256)")
    stored_threshold = math.nan if threshold is None else float(threshold)

    parts = [
        HEADER.pack(
            MAGIC,
            VERSION,
            unit.shape[1],
            len(codes),
            len(unit),
            stored_threshold,
            height,
            width,
            fingerprint,
        )
    ]
    for code, item_name in zip(codes, names, strict=True):
        for text in (code, item_name):
            raw = text.encode("utf-8")
            if len(raw) > MAX_TEXT_BYTES:
                raise fail(f"text longer than {MAX_TEXT_BYTES} UTF-8 bytes: {text[:40]!r}...")
            parts += [struct.pack("<H", len(raw)), raw]
    parts += [index.astype("<u4").tobytes(), unit.tobytes()]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def read_gallery_bin(path) -> GalleryBin:
    """Read and validate a ``gallery.bin``; raises ``GalleryError`` naming the file."""
    path = Path(path)
    data = read_regular_file(path, MAX_GALLERY_BIN_BYTES, GalleryError, "a gallery.bin")
    return decode_gallery(data, name=str(path))


def decode_gallery(data: bytes, *, name: str = "gallery.bin") -> GalleryBin:
    """Parse the bytes of a ``gallery.bin``, checking magic, version, sizes, CRC and indices."""

    def fail(message: str) -> GalleryError:
        return GalleryError(f"{name}: {message}")

    if len(data) < HEADER.size + CRC_SIZE:
        raise fail(
            f"truncated: {len(data)} bytes, shorter than the {HEADER.size}-byte header and the CRC"
        )
    magic, version, dim, item_count, vector_count, threshold, height, width, fingerprint = (
        HEADER.unpack_from(data, 0)
    )
    if magic != MAGIC:
        raise fail(f"bad magic {magic!r}, expected {MAGIC!r}: not an itemrec gallery.bin")
    if version != VERSION:
        raise fail(f"unsupported format version {version}, this reader knows {VERSION}")
    if dim == 0 or height == 0 or width == 0:
        raise fail(f"zero size in header (dim {dim}, input {height}x{width})")

    offset = HEADER.size
    texts: list[bytes] = []
    for _ in range(2 * item_count):
        if offset + 2 > len(data) - CRC_SIZE:
            raise fail(f"truncated: file ends inside item {len(texts) // 2}")
        (length,) = struct.unpack_from("<H", data, offset)
        offset += 2
        if offset + length > len(data) - CRC_SIZE:
            raise fail(f"truncated: file ends inside item {len(texts) // 2}")
        texts.append(bytes(data[offset : offset + length]))
        offset += length
    expected = offset + 4 * vector_count + 4 * vector_count * dim + CRC_SIZE
    if len(data) < expected:
        raise fail(f"truncated: the counts need {expected} bytes, the file has {len(data)}")
    if len(data) > expected:
        raise fail(f"size mismatch: the counts need {expected} bytes, the file has {len(data)}")

    (stored_crc,) = struct.unpack_from("<I", data, len(data) - CRC_SIZE)
    actual_crc = zlib.crc32(data[: len(data) - CRC_SIZE])
    if stored_crc != actual_crc:
        raise fail(f"CRC mismatch (stored {stored_crc:08x}, computed {actual_crc:08x}): corrupt")

    item_index = np.frombuffer(data, dtype="<u4", count=vector_count, offset=offset)
    offset += 4 * vector_count
    if vector_count and int(item_index.max()) >= item_count:
        raise fail(f"item index {int(item_index.max())} out of range (item_count {item_count})")
    vectors = np.frombuffer(data, dtype="<f4", count=vector_count * dim, offset=offset)
    try:
        strings = [raw.decode("utf-8") for raw in texts]
    except UnicodeDecodeError:
        raise fail("an item code or name is not valid UTF-8") from None
    codes = tuple(strings[0::2])
    if len(set(codes)) != len(codes):
        raise fail("item codes are not unique")
    return GalleryBin(
        codes=codes,
        names=tuple(strings[1::2]),
        item_index=item_index.astype(np.uint32),
        vectors=vectors.reshape(vector_count, dim).astype(np.float32),
        threshold=None if math.isnan(threshold) else float(threshold),
        input_size=(int(height), int(width)),
        fingerprint_hex=fingerprint.hex(),
    )
