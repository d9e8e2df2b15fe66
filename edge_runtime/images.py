"""Robust image loading for the device and for training: any photo in, RGB uint8 out.

``load_image`` accepts JPEG, PNG, BMP, WebP and TIFF files (or their bytes), grayscale,
RGBA (composited on a background), CMYK and 16-bit images, applies the EXIF orientation
of JPEGs, and refuses decompression bombs before decoding them. Every failure raises
``ImageLoadError`` with a one-line message that names the file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from itemrec.edge_runtime.errors import ImageLoadError
from itemrec.edge_runtime.geometry import center_crop_resize

#: Larger images are refused before decoding (a 12 MP phone photo is 12e6 pixels).
DEFAULT_MAX_PIXELS = 64_000_000
#: Transparent pixels are composited on mid grey, the least surprising value for a CNN.
DEFAULT_BACKGROUND = (128, 128, 128)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_image_file(path: str | Path) -> bool:
    """True for a file whose suffix is one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(
    source: str | os.PathLike | bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> np.ndarray:
    """Decode ``source`` (a path or the encoded bytes) to an upright H x W x 3 uint8 RGB array."""
    name = "<bytes>" if isinstance(source, bytes | bytearray) else os.fspath(source)
    data = bytes(source) if isinstance(source, bytes | bytearray) else _read(name)
    if not data:
        raise ImageLoadError(f"{name}: empty file")

    size = peek_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageLoadError(
            f"{name}: {size[0]}x{size[1]} pixels exceeds the limit of {max_pixels} "
            "(a decompression bomb, or pass a larger max_pixels)"
        )
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    if is_jpeg and not _jpeg_is_complete(data):
        raise ImageLoadError(f"{name}: truncated JPEG (no end-of-image marker after the scan)")

    # JPEGs have no alpha, and only the non-UNCHANGED flags make OpenCV apply EXIF
    # orientation; every other format is read UNCHANGED to keep alpha and 16-bit depth.
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:
        raise ImageLoadError(f"{name}: cannot decode ({_first_line(err)})") from None
    if image is None or image.size == 0:
        raise ImageLoadError(f"{name}: not a readable image")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ImageLoadError(f"{name}: {image.shape[1]}x{image.shape[0]} pixels exceeds the limit")
    return _to_rgb8(image, background, name)


def load_model_input(path: str | os.PathLike | bytes, size, **kwargs) -> np.ndarray:
    """Load an image and apply the contract's geometry for a model input of ``size``."""
    return center_crop_resize(load_image(path, **kwargs), size)


def _read(name: str) -> bytes:
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError as err:
        raise ImageLoadError(f"{name}: {err.strerror or err}") from None


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _jpeg_is_complete(data: bytes) -> bool:
    """A JPEG whose last scan is followed by an end-of-image marker (not cut off)."""
    last_scan = data.rfind(b"\xff\xda")
    return last_scan > 0 and data.find(b"\xff\xd9", last_scan) > 0


def _to_rgb8(image: np.ndarray, background, name: str) -> np.ndarray:
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageLoadError(f"{name}: unsupported pixel type {image.dtype}")

    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return _composite(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), background)
    raise ImageLoadError(f"{name}: unsupported number of channels ({channels})")


def _composite(rgba: np.ndarray, background) -> np.ndarray:
    """Alpha-blend an RGBA image over a solid background colour, with rounding."""
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    rgb = rgba[:, :, :3].astype(np.uint32)
    bg = np.asarray(background, dtype=np.uint32).reshape(1, 1, 3)
    return ((rgb * alpha + bg * (255 - alpha) + 127) // 255).astype(np.uint8)


def peek_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a PNG, JPEG, GIF, BMP or WebP; None if unknown.

    Read before decoding so that a tiny file claiming billions of pixels is refused cheaply.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", data[16:24])
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
    except struct.error:
        return None
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None
