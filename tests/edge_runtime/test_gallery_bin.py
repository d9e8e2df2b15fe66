"""gallery.bin writer/reader: round trip, byte layout against hand-computed offsets, refusals."""

import math
import struct
import zlib

import numpy as np
import pytest

from itemrec.edge_runtime.errors import GalleryError
from itemrec.edge_runtime.gallery_bin import read_gallery_bin, write_gallery_bin

FINGERPRINT = "ab" * 32


def small_gallery(**overrides):
    """Two items, three vectors, dim 2: small enough to lay out by hand."""
    arrays = dict(
        codes=["A", "BC"],
        names=["x", ""],
        item_index=[0, 1, 0],
        vectors=[[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]],
        threshold=0.5,
        input_size=(24, 32),
        fingerprint_hex=FINGERPRINT,
    )
    arrays.update(overrides)
    return arrays


@pytest.fixture
def small_file(tmp_path):
    return write_gallery_bin(tmp_path / "gallery.bin", **small_gallery())


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_byte_layout_matches_hand_computed_offsets(small_file):
    data = small_file.read_bytes()
    # header 68 + items (2+1+2+1) + (2+2+2+0) + index 3*4 + vectors 3*2*4 + crc 4
    assert len(data) == 68 + 6 + 6 + 12 + 24 + 4 == 120
    assert data[0:8] == b"IRGALLRY"
    assert struct.unpack_from("<IIII", data, 8) == (1, 2, 2, 3)  # version, dim, items, vectors
    assert struct.unpack_from("<f", data, 24)[0] == 0.5
    assert struct.unpack_from("<II", data, 28) == (24, 32)
    assert data[36:68] == bytes([0xAB] * 32)
    assert data[68:80] == b"\x01\x00A\x01\x00x\x02\x00BC\x00\x00"
    assert struct.unpack_from("<3I", data, 80) == (0, 1, 0)
    assert struct.unpack_from("<6f", data, 92) == pytest.approx((0.6, 0.8, 0, 1, 1, 0), abs=1e-7)
    assert struct.unpack_from("<I", data, 116)[0] == zlib.crc32(data[:116])


def test_round_trip_keeps_everything_and_normalises_rows(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 7)) * 3
    arrays = small_gallery(
        codes=["4006381333931", "SKU-2", "緑茶"],
        names=["Crème fraîche", "", "green tea 500 ml"],
        item_index=np.array([2, 0, 1, 2, 2]),
        vectors=vectors,
        input_size=(299, 224),
    )
    gallery = read_gallery_bin(write_gallery_bin(tmp_path / "g.bin", **arrays))
    assert gallery.codes == ("4006381333931", "SKU-2", "緑茶")
    assert gallery.names == ("Crème fraîche", "", "green tea 500 ml")
    assert gallery.item_index.tolist() == [2, 0, 1, 2, 2]
    assert gallery.dim == 7
    expected = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(gallery.vectors, expected, atol=1e-7)
    assert gallery.threshold == pytest.approx(0.5)
    assert gallery.input_size == (299, 224)
    assert gallery.fingerprint_hex == FINGERPRINT


def test_missing_threshold_is_stored_as_nan_and_read_as_none(tmp_path):
    path = write_gallery_bin(tmp_path / "g.bin", **small_gallery(threshold=None))
    assert math.isnan(struct.unpack_from("<f", path.read_bytes(), 24)[0])
    assert read_gallery_bin(path).threshold is None


def test_empty_gallery_round_trips(tmp_path):
    arrays = small_gallery(codes=[], names=[], item_index=[], vectors=np.zeros((0, 4)))
    gallery = read_gallery_bin(write_gallery_bin(tmp_path / "g.bin", **arrays))
    assert gallery.codes == () and gallery.vectors.shape == (0, 4)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, small_file):
    before = small_file.read_bytes()
    with pytest.raises(GalleryError, match="not unique"):
        write_gallery_bin(small_file, **small_gallery(codes=["A", "A"]))
    assert small_file.read_bytes() == before
    write_gallery_bin(small_file, **small_gallery(threshold=0.25))
    assert read_gallery_bin(small_file).threshold == 0.25
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.bin"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(names=["x"]), "2 codes but 1 names"),
        (dict(codes=["A", "A"]), "not unique"),
        (dict(vectors=[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), "non-zero"),
        (dict(vectors=[1.0, 2.0, 3.0]), "vector_count, dim"),
        (dict(item_index=[0, 2, 0]), "out of range"),
        (dict(item_index=[0, 1]), "one integer per vector"),
        (dict(input_size=(0, 32)), "input size"),
        (dict(fingerprint_hex="abc"), "64 hex digits"),
        (dict(names=["x", "y" * 70000]), "longer than 65535"),
    ],
)
def test_writer_refuses_inconsistent_arrays(tmp_path, overrides, message):
    with pytest.raises(GalleryError, match=message):
        write_gallery_bin(tmp_path / "g.bin", **small_gallery(**overrides))
    assert not (tmp_path / "g.bin").exists()


def corrupt(data: bytes, kind: str) -> bytes:
    """One broken variant of the 120-byte small gallery per validation rule."""
    body = bytearray(data[:-4])
    if kind == "magic":
        return b"XRGALLRY" + data[8:]
    if kind == "version":
        struct.pack_into("<I", body, 8, 7)
        return with_crc(bytes(body))
    if kind == "truncated":
        return data[:-1]
    if kind == "short":
        return data[:40]
    if kind == "counts":
        struct.pack_into("<I", body, 20, 4)  # vector_count 3 -> 4: file is too short for it
        return with_crc(bytes(body))
    if kind == "extra":
        return with_crc(bytes(body) + b"\0" * 8)
    if kind == "crc":
        flipped = bytearray(data)
        flipped[100] ^= 0x80
        return bytes(flipped)
    if kind == "index":
        struct.pack_into("<I", body, 84, 2)  # second vector -> item 2 of 2
        return with_crc(bytes(body))
    if kind == "utf8":
        body[70] = 0xFF  # the code "A"
        return with_crc(bytes(body))
    if kind == "duplicate":
        return with_crc(bytes(body[:74]) + b"\x01\x00A\x00\x00" + bytes(body[80:]))  # BC -> A
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("magic", "bad magic"),
        ("version", "unsupported format version 7"),
        ("truncated", "truncated"),
        ("short", "truncated: 40 bytes"),
        ("counts", "truncated: the counts need 132 bytes, the file has 120"),
        ("extra", "size mismatch: the counts need 120 bytes, the file has 128"),
        ("crc", "CRC mismatch"),
        ("index", r"item index 2 out of range \(item_count 2\)"),
        ("utf8", "not valid UTF-8"),
        ("duplicate", "not unique"),
    ],
)
def test_reader_refuses_broken_files_naming_them(tmp_path, small_file, kind, message):
    broken = tmp_path / f"{kind}.bin"
    broken.write_bytes(corrupt(small_file.read_bytes(), kind))
    with pytest.raises(GalleryError, match=message) as error:
        read_gallery_bin(broken)
    assert str(error.value).startswith(str(broken))


def test_reader_names_a_missing_file(tmp_path):
    with pytest.raises(GalleryError, match="missing.bin: No such file"):
        read_gallery_bin(tmp_path / "missing.bin")
