"""The bad-input corpus: every hostile or odd file itemrec's tools are handed, made by script.

``python tests/bad_inputs.py OUT`` writes it; ``tests/test_bad_inputs.py`` runs every file
through the real commands. Nothing here is a stored binary: each file is made from the tiny
test images, a few bytes of header, or pickle opcodes. The case lists are module constants
(the test's parameters); :func:`write_corpus` makes their files.

* images (``IMAGE_CASES``): valid but unusual files (CMYK, 16-bit, grey, RGBA, palette,
  animated GIF, a motion photo with trailing data, odd names) that must be used, and broken
  or hostile ones (empty, text, truncated, decompression bombs in every accepted format, a
  FIFO, a folder, symbolic link loops, devices, a sparse 1 GB file) that must be refused;
* class-folder entries only ``gallery build`` sees (``FOLDER_CASES``);
* galleries (``GALLERY_CASES``): corrupt, foreign, empty, newer, hand-edited, locked,
  another model's, oddly named;
* names files for ``gallery build --names`` (``NAMES_CASES``);
* model files for ``--model`` (``MODEL_CASES``), among them an HDF5 Keras file with a Lambda;
* torch state-dict pickles for the weights reader (``PICKLE_CASES``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODEL = FIXTURES / "tiny_int8.tflite"
OTHER_MODEL = FIXTURES / "tiny_fp32.tflite"
BAD_INPUT, BAD_MODEL, BUSY = 3, 4, 7  # itemrec.edge_runtime.errors.ExitCode


def reference_images() -> np.ndarray:
    """8 x 32 x 32 x 3 uint8 RGB images (the tiny models' reference set)."""
    return np.load(FIXTURES / "tiny_reference.npz")["images"]


def _photo(index: int = 0, size: int = 64) -> np.ndarray:
    """A reference image enlarged to ``size`` pixels (RGB), a stand-in for a product photo."""
    return cv2.resize(reference_images()[index], (size, size), interpolation=cv2.INTER_CUBIC)


def _pil(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _jpeg(rgb: np.ndarray, **options) -> bytes:
    return _pil(Image.fromarray(rgb), "JPEG", quality=90, **options)


def _png(rgb_or_gray: np.ndarray) -> bytes:
    image = rgb_or_gray if rgb_or_gray.ndim == 2 else cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", image)[1].tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width x height`` grey pixels, with one tiny IDAT."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return (
        b"\x89PNG\r\n\x1a\n"
        + header
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def _jpeg_claiming(width: int, height: int, junk_before_sof: bytes = b"") -> bytes:
    """A real 16 x 16 JPEG whose frame header claims ``width x height``."""
    data = bytearray(_jpeg(_photo(1, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[:sof]) + junk_before_sof + bytes(data[sof:])


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(_pil(Image.fromarray(_photo(2, 16)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(cv2.imencode(".bmp", _photo(3, 16))[1].tobytes())
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _webp_claiming(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas is ``width x height``, holding a 16 x 16 image."""
    simple = cv2.imencode(".webp", _photo(4, 16), [cv2.IMWRITE_WEBP_QUALITY, 90])[1].tobytes()
    image_chunk = simple[12:]  # the VP8 chunk of a simple WebP
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0" * 4
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + image_chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _tiff_claiming(width: int, height: int, big: bool = False, with_size: bool = True) -> bytes:
    """A grey, uncompressed TIFF (or BigTIFF) claiming ``width x height``, 64 bytes of data."""
    pixels = b"\0" * 64
    tags = [(258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1), (278, 4, height)]
    tags += [(279, 4, len(pixels))]
    if with_size:
        tags += [(256, 4, width), (257, 4, height)]
    tags.sort()
    entry = struct.Struct("<HHQQ" if big else "<HHII")
    head = b"II+\0" + struct.pack("<HHQ", 8, 0, 16) if big else b"II*\0" + struct.pack("<I", 8)
    count = struct.pack("<Q" if big else "<H", len(tags))
    data_at = len(head) + len(count) + entry.size * len(tags) + (8 if big else 4)
    directory = b"".join(
        entry.pack(tag, kind, 1, data_at if tag == 273 else value) for tag, kind, value in tags
    )
    return head + count + directory + b"\0" * (8 if big else 4) + pixels


def _motion_photo() -> bytes:
    """A JPEG followed by a video, as Pixel and Samsung phones write them (markers included)."""
    video = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom" + bytes(range(256)) * 40 + b"\xff\xd8\xff\xd9"
    return _jpeg(_photo(5, 64)) + b"MotionPhoto_Data" + video


def _animated_gif() -> bytes:
    frames = [Image.fromarray(_photo(i, 48)) for i in range(3)]
    return _pil(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(_photo(6, 64), exif=exif.tobytes())


def _sixteen_bit_png(channels: int) -> bytes:
    deep = (_photo(7, 40).astype(np.uint16) * 257)[:, :, ::-1]
    return cv2.imencode(".png", deep if channels == 3 else deep[:, :, 0])[1].tobytes()


def _truncated(data: bytes, keep: float, end: bytes = b"") -> bytes:
    return data[: int(len(data) * keep)] + end


# -- how a case's file is made ---------------------------------------------------------------
def content(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data() if callable(data) else data)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def folder(path: Path) -> None:
    path.mkdir()


def symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def sparse_file(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)

    return make


def nothing(path: Path) -> None:
    """The file does not exist."""


@dataclass(frozen=True)
class ImageCase:
    """A file given as an image: to ``identify``/``enroll`` by name, to ``build`` in a folder.

    ``usable``: decoded and used; else refused with one line containing ``reason``.
    ``build_reason``: the reason ``gallery build``'s folder scan gives, when it differs.
    """

    id: str
    name: str
    make: Callable[[Path], None]
    usable: bool
    reason: str = ""
    build_reason: str | None = None
    in_folder: bool = True


_GOOD_JPEG = _jpeg(_photo(0, 64))
_PROGRESSIVE = _jpeg(_photo(1, 64), progressive=True)
_GOOD_PNG = _png(_photo(2, 40))
NOT_REGULAR = "not a regular file"

IMAGE_CASES = [
    # Unusual but valid: used.
    ImageCase(
        "cmyk_jpeg",
        "cmyk.jpg",
        content(lambda: _pil(Image.fromarray(_photo(1)).convert("CMYK"), "JPEG")),
        True,
    ),
    ImageCase("grey_jpeg", "grey.jpg", content(lambda: _jpeg(_photo(2)[:, :, 0])), True),
    ImageCase("progressive_jpeg", "progressive.jpg", content(_PROGRESSIVE), True),
    ImageCase("exif_rotated_jpeg", "rotated.jpg", content(_exif_rotated_jpeg), True),
    ImageCase("motion_photo", "motion_photo.jpg", content(_motion_photo), True),
    ImageCase("png_16bit_rgb", "deep.png", content(lambda: _sixteen_bit_png(3)), True),
    ImageCase("png_16bit_grey", "deep_grey.png", content(lambda: _sixteen_bit_png(1)), True),
    ImageCase("png_grey", "grey.png", content(lambda: _png(_photo(3)[:, :, 1])), True),
    ImageCase(
        "png_rgba",
        "rgba.png",
        content(lambda: _pil(Image.fromarray(_photo(4)).convert("RGBA"), "PNG")),
        True,
    ),
    ImageCase(
        "png_palette",
        "palette.png",
        content(lambda: _pil(Image.fromarray(_photo(5)).convert("P"), "PNG")),
        True,
    ),
    ImageCase(
        "gif_still", "still.gif", content(lambda: _pil(Image.fromarray(_photo(6)), "GIF")), True
    ),
    ImageCase("gif_animated", "animated.gif", content(_animated_gif), True),
    ImageCase(
        "bmp", "plain.bmp", content(lambda: cv2.imencode(".bmp", _photo(7))[1].tobytes()), True
    ),
    ImageCase(
        "webp", "plain.webp", content(lambda: cv2.imencode(".webp", _photo(0))[1].tobytes()), True
    ),
    ImageCase(
        "tiff",
        "plain.tiff",
        content(lambda: _pil(Image.fromarray(_photo(1)), "TIFF", compression="tiff_lzw")),
        True,
    ),
    ImageCase("png_named_jpg", "really_a_png.jpg", content(_GOOD_PNG), True),
    ImageCase("unicode_name", "café 日本 ✓.png", content(_GOOD_PNG), True),
    ImageCase("newline_in_name", "two\nlines.png", content(_GOOD_PNG), True),
    ImageCase("undecodable_name", os.fsdecode(b"bytes_\xff\xfe.png"), content(_GOOD_PNG), True),
    ImageCase("link_to_image", "link.png", symlink_to("../good/0.png"), True),
    # Broken or hostile: refused with one line each.
    ImageCase("empty", "empty.jpg", content(b""), False, "empty file"),
    ImageCase("text", "text.jpg", content(b"this is not an image\n"), False, "not a JPEG, PNG"),
    ImageCase(
        "ppm_bomb",
        "netpbm.jpg",
        content(b"P5 100000 100000 255\n" + b"\0" * 64),
        False,
        "not a JPEG, PNG",
    ),
    ImageCase(
        "jpeg_magic_junk",
        "junk.jpg",
        content(b"\xff\xd8\xff" + bytes(range(256)) * 4),
        False,
        "JPEG",
    ),
    ImageCase(
        "jpeg_truncated",
        "cut.jpg",
        content(lambda: _truncated(_GOOD_JPEG, 0.6)),
        False,
        "corrupt or truncated JPEG",
    ),
    ImageCase(
        "jpeg_truncated_ffd9",
        "cut_ffd9.jpg",
        content(lambda: _truncated(_GOOD_JPEG, 0.6, b"\xff\xd9")),
        False,
        "corrupt or truncated JPEG",
    ),
    ImageCase(
        "jpeg_progressive_truncated",
        "cut_progressive.jpg",
        content(lambda: _truncated(_PROGRESSIVE, 0.5, b"\xff\xd9")),
        False,
        "corrupt or truncated JPEG",
    ),
    ImageCase(
        "jpeg_header_only",
        "header_only.jpg",
        content(lambda: _truncated(_GOOD_JPEG, 0.1)),
        False,
        "JPEG",
    ),
    ImageCase(
        "png_truncated", "cut.png", content(lambda: _truncated(_GOOD_PNG, 0.6)), False, "PNG"
    ),
    ImageCase(
        "png_zero_size",
        "zero.png",
        content(lambda: _png_claiming(0, 10)),
        False,
        "without a valid image size",
    ),
    ImageCase(
        "gif_truncated", "cut.gif", content(lambda: _truncated(_animated_gif(), 0.3)), False, "GIF"
    ),
    ImageCase(
        "webp_truncated",
        "cut.webp",
        content(lambda: _truncated(cv2.imencode(".webp", _photo(0))[1].tobytes(), 0.5)),
        False,
        "WebP",
    ),
    ImageCase(
        "tiff_without_size",
        "sizeless.tif",
        content(lambda: _tiff_claiming(8, 8, with_size=False)),
        False,
        "without a valid image size",
    ),
    ImageCase(
        "bomb_png",
        "bomb.png",
        content(lambda: _png_claiming(100_000, 100_000)),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_jpeg_junk_before_sof",
        "bomb.jpg",
        content(lambda: _jpeg_claiming(12_000, 12_000, b"\0\0")),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_jpeg",
        "bomb_plain.jpg",
        content(lambda: _jpeg_claiming(30_000, 30_000)),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_gif",
        "bomb.gif",
        content(lambda: _gif_claiming(65_535, 65_535)),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_bmp",
        "bomb.bmp",
        content(lambda: _bmp_claiming(50_000, 50_000)),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_webp",
        "bomb.webp",
        content(lambda: _webp_claiming(16_000, 16_000)),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_tiff",
        "bomb.tif",
        content(lambda: _tiff_claiming(20_000, 20_000)),
        False,
        "exceeds the limit",
    ),
    ImageCase(
        "bomb_bigtiff",
        "bomb_big.tif",
        content(lambda: _tiff_claiming(20_000, 20_000, big=True)),
        False,
        "exceeds the limit",
    ),
    ImageCase("sparse_1gb", "huge.jpg", sparse_file(1 << 30), False, "bytes is more than"),
    ImageCase("fifo", "fifo.jpg", fifo, False, NOT_REGULAR),
    ImageCase("device", "zero.jpg", symlink_to("/dev/zero"), False, NOT_REGULAR),
    ImageCase(
        "directory", "folder.jpg", folder, False, "is a directory", "a folder inside a class folder"
    ),
    ImageCase(
        "symlink_loop",
        "loop.jpg",
        symlink_to("loop.jpg"),
        False,
        "Too many levels of symbolic links",
    ),
    ImageCase(
        "dangling_symlink",
        "dangling.jpg",
        symlink_to("nowhere.jpg"),
        False,
        "No such file",
        "a symbolic link to nothing",
    ),
    ImageCase("missing", "missing.jpg", nothing, False, "No such file", in_folder=False),
]


@dataclass(frozen=True)
class FolderCase:
    """An entry of the images folder that only ``gallery build`` sees, named once when skipped."""

    id: str
    path: str  # relative to the images root
    make: Callable[[Path], None]
    reason: str


FOLDER_CASES = [
    FolderCase("non_image_suffix", "G/notes.txt", content(b"shelf 3\n"), "not an image file name"),
    FolderCase("nested_folder", "G/more", folder, "a folder inside a class folder"),
    FolderCase("blank_code", "   ", folder, "must not be empty or blank"),
    FolderCase("tab_in_code", "A\tB", folder, "control character"),
    FolderCase("newline_in_code", "A\nB", folder, "control character"),
    FolderCase("code_with_spaces_around", " C ", folder, "starts or ends with white space"),
    FolderCase("empty_class", "EMPTY", folder, "empty class folder, item not enrolled"),
]


@dataclass
class GalleryCase:
    """A gallery file handed to the commands; ``expect`` maps each command to its exit code.

    Commands: identify, enroll, list, export, build (``build`` into an existing path).
    A command whose code is not 0 must print one line naming the file and leave it unchanged;
    the read-only commands leave it unchanged always.
    """

    id: str
    make: Callable[[Path, Path], Path]  # (folder, a good gallery) -> the case's path
    expect: dict[str, int]
    reason: str = ""
    locked: bool = False


def _copy(name: str, change: Callable[[sqlite3.Connection], None] | None = None):
    def make(folder: Path, good: Path) -> Path:
        path = folder / name
        shutil.copyfile(good, path)
        if change is not None:
            db = sqlite3.connect(path, isolation_level=None)
            change(db)
            db.close()
        return path

    return make


def _corrupt_pages(folder: Path, good: Path) -> Path:
    """Random bytes over every page but the first: a damaged SD card."""
    path = _copy("corrupt_pages.db")(folder, good)
    data = bytearray(path.read_bytes())
    page = struct.unpack(">H", data[16:18])[0] or 65536
    noise = np.random.default_rng(0).integers(0, 256, len(data) - page, dtype=np.uint8)
    data[page:] = noise.tobytes()
    path.write_bytes(bytes(data))
    return path


def _corrupt_header(folder: Path, good: Path) -> Path:
    path = _copy("corrupt_header.db")(folder, good)
    data = bytearray(path.read_bytes())
    data[:100] = bytes(range(100))
    path.write_bytes(bytes(data))
    return path


def _foreign(folder: Path, good: Path) -> Path:
    """Someone else's SQLite file, in rollback-journal mode (WAL would change its header)."""
    path = folder / "foreign.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers (name) VALUES ('Ada'), ('Grace')")
    db.close()
    return path


def _write_file(name: str, data: bytes):
    def make(folder: Path, good: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def _another_models(folder: Path, good: Path) -> Path:
    return _copy("other_model.db", _setting("fingerprint", "0" * 64))(folder, good)


def _setting(key: str, value: str):
    return lambda db: db.execute("UPDATE settings SET value = ? WHERE key = ?", (value, key))


_ALL_BAD = {"identify": BAD_MODEL, "enroll": BAD_MODEL, "list": BAD_MODEL, "export": BAD_MODEL}
_ALL_OK = {"identify": 0, "enroll": 0, "list": 0, "export": 0}

GALLERY_CASES = [
    GalleryCase("corrupt_pages", _corrupt_pages, _ALL_BAD, "corrupt"),
    GalleryCase("corrupt_header", _corrupt_header, _ALL_BAD, "corrupt or not a gallery"),
    GalleryCase("foreign_sqlite", _foreign, _ALL_BAD, "not an itemrec gallery"),
    GalleryCase("empty_file", _write_file("empty.db", b""), _ALL_BAD, "not an itemrec gallery"),
    GalleryCase("not_sqlite", _write_file("text.db", b"hello\n" * 100), _ALL_BAD, "not a gallery"),
    GalleryCase(
        "directory",
        lambda folder, good: (folder / "dir.db").mkdir() or folder / "dir.db",
        _ALL_BAD,
        "not a regular file",
    ),
    GalleryCase(
        "fifo",
        lambda folder, good: os.mkfifo(folder / "fifo.db") or folder / "fifo.db",
        _ALL_BAD,
        "not a regular file",
    ),
    GalleryCase("missing", lambda folder, good: folder / "missing.db", _ALL_BAD, "does not exist"),
    GalleryCase(
        "newer_schema",
        _copy("newer.db", lambda db: db.execute("UPDATE schema_version SET version = 99")),
        _ALL_BAD,
        "schema version 99",
    ),
    GalleryCase(
        "another_models",
        _another_models,
        {**_ALL_OK, "identify": BAD_MODEL, "enroll": BAD_MODEL},
        "did not make the embeddings",
    ),
    GalleryCase(
        "threshold_not_a_number",
        _copy("threshold.db", _setting("threshold", "high")),
        {**_ALL_OK, "identify": BAD_MODEL, "list": BAD_MODEL, "export": BAD_MODEL},
        "setting 'threshold'",
    ),
    GalleryCase(
        "threshold_nan",
        _copy("threshold_nan.db", _setting("threshold", "nan")),
        {**_ALL_OK, "identify": BAD_MODEL, "list": BAD_MODEL, "export": BAD_MODEL},
        "setting 'threshold'",
    ),
    GalleryCase(
        "revision_not_a_number",
        _copy("revision.db", _setting("revision", "x")),
        {**_ALL_OK, "identify": BAD_MODEL},
        "setting 'revision'",
    ),
    GalleryCase(
        "attributes_not_json",
        _copy("attributes.db", lambda db: db.execute("UPDATE items SET attributes = '{oops'")),
        {**_ALL_OK, "list": BAD_MODEL},
        "attributes of item",
    ),
    GalleryCase(
        "vector_wrong_size",
        _copy("vector.db", lambda db: db.execute("UPDATE embeddings SET vector = x'00'")),
        {**_ALL_OK, "identify": BAD_MODEL, "export": BAD_MODEL},
        "float32 values",
    ),
    GalleryCase(
        "spec_not_json", _copy("spec.db", _setting("spec", "{")), _ALL_BAD, "stored model spec"
    ),
    GalleryCase(
        "locked_by_a_writer",
        _copy("locked.db"),
        {**_ALL_OK, "enroll": BUSY},
        "busy, retry",
        locked=True,
    ),
    GalleryCase("odd_path", _copy("odd #?% ü.db"), _ALL_OK),
]
for _case in GALLERY_CASES:  # building into an existing path is refused, whatever it holds
    _case.expect = {"build": 0 if _case.id == "missing" else BAD_INPUT, **_case.expect}


@dataclass(frozen=True)
class NamesCase:
    """A names file for ``gallery build --names``: exit code and the error's fragment."""

    id: str
    make: Callable[[Path], None]
    exit_code: int
    reason: str = ""


def _names(text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    return content(text.encode(encoding))


NAMES_CASES = [
    NamesCase("utf8_bom", _names("\ufeffcode,name\nG,Green tea\n"), 0),
    NamesCase("extra_columns", _names("price,name,code\n3,Green tea,G\n"), 0),
    NamesCase(
        "row_without_name", _names("code,name\nG,Green tea\nH\n"), BAD_INPUT, ":3: 1 column(s)"
    ),
    NamesCase(
        "unclosed_quote", _names('code,name\nG,"Green tea\nH,Hops\n'), BAD_INPUT, "not valid CSV"
    ),
    NamesCase(
        "huge_name",
        _names("code,name\nG," + "x" * 200_000 + "\n"),
        BAD_INPUT,
        ":2: not valid CSV (field larger",
    ),
    NamesCase("latin1", _names("code,name\nG,Grüner Tee\n", "latin-1"), BAD_INPUT, ":2: not UTF-8"),
    NamesCase(
        "duplicate_code",
        _names("code,name\nG,Green tea\nH,Hops\nG,Gin\n"),
        BAD_INPUT,
        ":4: code 'G' is already named on line 2",
    ),
    NamesCase("tab_in_name", _names("code,name\nG,Green\ttea\n"), BAD_INPUT, ":2: item name"),
    NamesCase(
        "blank_code",
        _names("code,name\n  ,Green tea\n"),
        BAD_INPUT,
        ":2: an item code must not be empty",
    ),
    NamesCase("no_header", _names("G,Green tea\n"), BAD_INPUT, ":1: the header must name"),
    NamesCase("empty", _names(""), BAD_INPUT, ":1: the header must name"),
    NamesCase("binary", content(bytes(range(256)) * 8), BAD_INPUT, "not UTF-8"),
    NamesCase("fifo", fifo, BAD_INPUT, NOT_REGULAR),
]


@dataclass(frozen=True)
class ModelCase:
    """A file given as ``--model``: refused with exit code 4 by every command."""

    id: str
    make: Callable[[Path], None]
    reason: str


def _hdf5_keras_with_lambda() -> bytes:
    """The signature and superblock start of an HDF5 file, as a Keras .h5/.keras would have."""
    return b"\x89HDF\r\n\x1a\n" + b"\0" * 8 + b"model_config {Lambda: marshal}" + b"\0" * 512


MODEL_CASES = [
    ModelCase("empty", content(b""), "not a TFLite model"),
    ModelCase("text", content(b"not a model\n" * 10), "not a TFLite model"),
    ModelCase("hdf5_keras", content(_hdf5_keras_with_lambda), "not a TFLite model"),
    ModelCase(
        "truncated_tflite", content(lambda: _truncated(MODEL.read_bytes(), 0.5)), "cannot be loaded"
    ),
    ModelCase("fifo", fifo, NOT_REGULAR),
    ModelCase("directory", folder, "is a directory"),
    ModelCase("missing", nothing, "No such file"),
]


# -- torch state-dict pickles, assembled from opcodes (no torch, no pickler checks) ----------
@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(frozen=True)
class Call:
    function: object
    args: tuple


@dataclass(frozen=True)
class PersistentId:
    value: tuple


def _opcodes(value) -> bytes:
    """Protocol-2 pickle opcodes that rebuild ``value`` (Global/Call/PersistentId included)."""
    if value is None:
        return b"N"
    if value is True or value is False:
        return b"\x88" if value else b"\x89"
    if isinstance(value, int):
        raw = value.to_bytes((value.bit_length() + 8) // 8 or 1, "little", signed=True)
        return b"\x8a" + bytes([len(raw)]) + raw
    if isinstance(value, float):
        return b"G" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return b"X" + struct.pack("<I", len(raw)) + raw
    if isinstance(value, tuple):
        return b"(" + b"".join(map(_opcodes, value)) + b"t"
    if isinstance(value, list):
        return b"](" + b"".join(map(_opcodes, value)) + b"e"
    if isinstance(value, dict):
        items = b"".join(_opcodes(k) + _opcodes(v) for k, v in value.items())
        return b"}(" + items + b"u"
    if isinstance(value, Global):
        return f"c{value.module}\n{value.name}\n".encode()
    if isinstance(value, Call):
        return _opcodes(value.function) + _opcodes(value.args) + b"R"
    if isinstance(value, PersistentId):
        return _opcodes(value.value) + b"Q"
    raise TypeError(value)


def _pickle(value) -> bytes:
    return b"\x80\x02" + _opcodes(value) + b"."


MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
SYS_INFO = {"protocol_version": PROTOCOL, "little_endian": True, "type_sizes": {}}


def _tensor(key="0", numel=4, offset=0, size=(2, 2), stride=(2, 1), view=None, kind="FloatStorage"):
    storage = PersistentId(("storage", Global("torch", kind), key, "cpu", numel, view))
    rebuild = Global("torch._utils", "_rebuild_tensor_v2")
    hooks = Call(Global("collections", "OrderedDict"), ())
    return Call(rebuild, (storage, offset, size, stride, False, hooks))


def _state_file(state, keys=("0",), storages=None, header=None) -> bytes:
    """A legacy torch file: the header pickles, ``state``, ``keys``, then the storages."""
    if storages is None:
        storages = (np.arange(4, dtype="<f4"),)
    parts = [_pickle(MAGIC), _pickle(PROTOCOL), _pickle(header or SYS_INFO)]
    parts += [_pickle(state), _pickle(list(keys))]
    parts += [struct.pack("<q", array.size) + array.tobytes() for array in storages]
    return b"".join(parts)


@dataclass(frozen=True)
class PickleCase:
    """A weights file for the torch-pickle reader: read (``usable``) or one ModelError."""

    id: str
    data: Callable[[], bytes]
    usable: bool = False
    reason: str = ""


def _thousand_views() -> bytes:
    """One 4 MB storage viewed in full by 1000 tensors: 4 GB if each became a copy."""
    million = np.zeros(1_000_000, dtype="<f4")
    view = _tensor(numel=million.size, size=(million.size,), stride=(1,))
    return _state_file({f"w{i}": view for i in range(1000)}, storages=(million,))


PICKLE_CASES = [
    PickleCase("valid", lambda: _state_file({"w": _tensor()}), True),
    PickleCase(
        "zero_strides_20000_squared",
        lambda: _state_file(
            {"w": _tensor(numel=1, size=(20000, 20000), stride=(0, 0))},
            storages=(np.ones(1, "<f4"),),
        ),
        reason="the tensors claim 1600000000 bytes",
    ),
    PickleCase(
        "storage_claims_more_than_the_file",
        lambda: _state_file({"w": _tensor(numel=10**12)}),
        reason="its id says",
    ),
    PickleCase(
        "storage_header_huge",
        lambda: _state_file({"w": _tensor()}, storages=()) + struct.pack("<q", 2**62),
        reason="its id says 4",
    ),
    PickleCase(
        "negative_offset", lambda: _state_file({"w": _tensor(offset=-5)}), reason="not a count"
    ),
    PickleCase(
        "bool_size", lambda: _state_file({"w": _tensor(size=(True, 2))}), reason="not a count"
    ),
    PickleCase(
        "float_stride", lambda: _state_file({"w": _tensor(stride=(1.5, 1))}), reason="not a count"
    ),
    PickleCase(
        "giant_size", lambda: _state_file({"w": _tensor(size=(10**30, 1))}), reason="not a count"
    ),
    PickleCase(
        "nine_dimensions",
        lambda: _state_file({"w": _tensor(size=(1,) * 9, stride=(1,) * 9)}),
        reason="a tensor with size",
    ),
    PickleCase(
        "size_stride_mismatch",
        lambda: _state_file({"w": _tensor(size=(2, 2), stride=(1,))}),
        reason="a tensor with size",
    ),
    PickleCase(
        "view_outside_storage",
        lambda: _state_file({"w": _tensor(view=("9", 2, 100))}),
        reason="outside 4",
    ),
    PickleCase(
        "zero_extent_huge_other",
        lambda: _state_file({"w": _tensor(size=(0, 2**40), stride=(1, 1))}),
        reason="not a count",
    ),
    PickleCase("thousand_views_of_one_storage", _thousand_views, reason="the tensors claim"),
    PickleCase(
        "os_system",
        lambda: _state_file({"w": Call(Global("os", "system"), ("touch /tmp/itemrec-pwned",))}),
        reason="refusing to load global os.system",
    ),
    PickleCase(
        "builtins_eval_in_header",
        lambda: _pickle(Call(Global("builtins", "eval"), ("1",))),
        reason="refusing to load global builtins.eval",
    ),
    PickleCase(
        "nested_state",
        lambda: _state_file({"state_dict": {"w": _tensor()}}),
        reason="not a named tensor",
    ),
    PickleCase(
        "tuple_storage_key",
        lambda: _state_file({"w": _tensor(key=("a", "b"))}),
        reason="storage key",
    ),
    PickleCase(
        "big_endian",
        lambda: _state_file({"w": _tensor()}, header={"little_endian": False}),
        reason="little-endian",
    ),
    PickleCase(
        "bad_magic",
        lambda: _pickle(12345) + _state_file({"w": _tensor()}),
        reason="bad magic number",
    ),
    PickleCase(
        "truncated_pickle", lambda: _state_file({"w": _tensor()})[:60], reason="corrupt pickle"
    ),
    PickleCase("truncated_storage", lambda: _state_file({"w": _tensor()})[:-6], reason="truncated"),
    PickleCase(
        "unknown_storage_type",
        lambda: _state_file({"w": _tensor(kind="QUInt8Storage")}),
        reason="torch.QUInt8Storage",
    ),
    PickleCase("zip_format", lambda: b"PK\x03\x04" + b"\0" * 100, reason="zip-format"),
    PickleCase("empty", lambda: b"", reason="corrupt pickle"),
]


# -- writing the corpus ------------------------------------------------------------------------
@dataclass
class Corpus:
    """Where :func:`write_corpus` put everything."""

    root: Path
    good: list[Path] = field(default_factory=list)  # usable images, outside the case folder
    images: dict[str, Path] = field(default_factory=dict)  # ImageCase.id -> path
    class_folders: Path | None = None  # for gallery build: G/<every image case> and more
    folder_entries: dict[str, Path] = field(default_factory=dict)  # FolderCase.id -> path
    gallery: Path | None = None  # a good gallery of the tiny int8 model
    galleries: dict[str, Path] = field(default_factory=dict)
    names: dict[str, Path] = field(default_factory=dict)
    models: dict[str, Path] = field(default_factory=dict)
    pickles: dict[str, Path] = field(default_factory=dict)


def write_corpus(root: Path) -> Corpus:
    """Make every case's file under ``root`` (which must not exist)."""
    root.mkdir(parents=True)
    corpus = Corpus(root)
    for index in range(3):
        corpus.good.append(root / "good" / f"{index}.png")
        corpus.good[-1].parent.mkdir(exist_ok=True)
        corpus.good[-1].write_bytes(_png(_photo(index, 48)))

    cases = root / "images"
    cases.mkdir()
    for case in IMAGE_CASES:
        corpus.images[case.id] = cases / case.name
        case.make(cases / case.name)

    folders = corpus.class_folders = root / "class_folders"
    (folders / "G").mkdir(parents=True)  # one good image, then every case beside it
    shutil.copyfile(corpus.good[0], folders / "G" / "0_good.png")
    for case in IMAGE_CASES:
        if case.in_folder:
            make = symlink_to("../../good/0.png") if case.id == "link_to_image" else case.make
            make(folders / "G" / case.name)
    for case in FOLDER_CASES:
        corpus.folder_entries[case.id] = folders / case.path
        case.make(folders / case.path)

    corpus.gallery = _good_gallery(root / "good.db", corpus.good)
    galleries = root / "galleries"
    galleries.mkdir()
    for case in GALLERY_CASES:
        corpus.galleries[case.id] = case.make(galleries, corpus.gallery)

    for kind, cases_of_kind, store in (
        ("names", NAMES_CASES, corpus.names),
        ("models", MODEL_CASES, corpus.models),
    ):
        (root / kind).mkdir()
        for case in cases_of_kind:
            store[case.id] = root / kind / f"{case.id}.{'csv' if kind == 'names' else 'tflite'}"
            case.make(store[case.id])

    (root / "pickles").mkdir()
    for case in PICKLE_CASES:
        corpus.pickles[case.id] = root / "pickles" / f"{case.id}.pth"
        corpus.pickles[case.id].write_bytes(case.data())
    return corpus


def _good_gallery(path: Path, images: list[Path]) -> Path:
    """A gallery of the tiny int8 model: one item per good image (codes A, B, ...)."""
    from itemrec.edge_runtime.gallery import Gallery
    from itemrec.edge_runtime.images import load_image
    from itemrec.edge_runtime.interpreter import EmbeddingModel

    model = EmbeddingModel(MODEL, threads=1)
    with Gallery.create(path, model.spec) as gallery:
        for index, image in enumerate(images):
            code = chr(ord("A") + index)
            gallery.enroll(code, f"Item {code}", model.embed(load_image(image))[None], [str(image)])
        gallery.set_threshold(0.5)
        gallery.checkpoint()
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/bad_inputs.py OUT (a folder that does not exist yet)")
    made = write_corpus(Path(sys.argv[1]))
    counts = {
        "images": len(made.images),
        "folder entries": len(made.folder_entries),
        "galleries": len(made.galleries),
        "names files": len(made.names),
        "models": len(made.models),
        "pickles": len(made.pickles),
    }
    print(json.dumps({"root": str(made.root), **counts}))
