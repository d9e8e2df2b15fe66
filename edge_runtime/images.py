"""Robust image loading for the device and for training: any photo in, RGB uint8 out.

``load_image`` accepts JPEG, PNG, GIF (the first frame), BMP, WebP and TIFF files (or their
bytes), grayscale, RGBA (composited on a background), CMYK and 16-bit images, and applies the
EXIF orientation of JPEGs. Every failure raises ``ImageLoadError`` with a one-line message
that names the file. What it refuses, and why, before OpenCV decodes a pixel:

* anything but a regular file (a FIFO would block forever), and files above
  ``4 * max_pixels`` bytes, read by :func:`itemrec.edge_runtime.files.read_regular_file`;
* a format other than the six above, recognised by its first bytes, not by its suffix;
* an image whose header gives no size, or a size above ``max_pixels`` (decompression bombs:
  a 2.5 KB JPEG can claim 12000 x 12000 pixels). The JPEG size is libjpeg's own reading of
  the header, which tolerates the junk bytes libjpeg's decoder tolerates;
* a JPEG that libjpeg-turbo, decoding it in full at 1/8 scale, calls corrupt or truncated
  (``simplejpeg`` in strict mode turns libjpeg's warnings into errors). OpenCV's decoder fills
  a truncated JPEG with grey and says nothing, so a cut-off photo would get a confident wrong
  answer; data after the end-of-image marker (the video of a "motion photo") is not read by
  libjpeg and is accepted.

OpenCV's own pixel limit (``OPENCV_IO_MAX_IMAGE_PIXELS``, set by ``itemrec.edge_runtime``)
backs these checks up.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

from itemrec.edge_runtime import MAX_IMAGE_PIXELS
from itemrec.edge_runtime.errors import ImageLoadError
from itemrec.edge_runtime.files import read_regular_file, shown
from itemrec.edge_runtime.geometry import center_crop_resize

#: Larger images are refused before decoding (see ``itemrec.edge_runtime.MAX_IMAGE_PIXELS``).
DEFAULT_MAX_PIXELS = MAX_IMAGE_PIXELS
#: A file may have at most this many bytes per allowed pixel (an uncompressed RGBA BMP has 4).
MAX_BYTES_PER_PIXEL = 4
#: Transparent pixels are composited on mid grey, the least surprising value for a CNN.
DEFAULT_BACKGROUND = (128, 128, 128)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
#: The formats ``load_image`` decodes, as ``image_format`` names them.
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WebP", "TIFF")


def is_image_file(path: str | Path) -> bool:
    """True for a file whose suffix is one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(
    source: str | os.PathLike | bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> np.ndarray:
    """Decode ``source`` (a path or the encoded bytes) to an upright H x W x 3 uint8 RGB array.

    ``max_pixels`` above :data:`DEFAULT_MAX_PIXELS` also needs ``OPENCV_IO_MAX_IMAGE_PIXELS``
    raised in the environment before ``itemrec`` (or ``cv2``) is imported.
    """
    if isinstance(source, bytes | bytearray):
        name, data = "<bytes>", bytes(source)
    else:
        name = shown(source)
        max_bytes = MAX_BYTES_PER_PIXEL * max_pixels
        data = read_regular_file(source, max_bytes, ImageLoadError, "an image")
    if not data:
        raise ImageLoadError(f"{name}: empty file")
    kind = image_format(data)
    if kind is None:
        raise ImageLoadError(f"{name}: not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} image")
    size = peek_size(data)
    if size is None or min(size) <= 0:
        if kind == "JPEG":
            _check_jpeg_data(data, name)  # names what libjpeg found wrong
        raise ImageLoadError(f"{name}: {kind} header without a valid image size")
    if size[0] * size[1] > max_pixels:
        raise ImageLoadError(
            f"{name}: {size[0]}x{size[1]} pixels exceeds the limit of {max_pixels} "
            "(a decompression bomb, or pass a larger max_pixels)"
        )
    if kind == "JPEG":
        _check_jpeg_data(data, name)

    # JPEGs have no alpha, and only the non-UNCHANGED flags make OpenCV apply EXIF
    # orientation; every other format is read UNCHANGED to keep alpha and 16-bit depth.
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR if kind == "JPEG" else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:
        raise ImageLoadError(f"{name}: cannot decode this {kind} ({_first_line(err)})") from None
    if image is None or image.size == 0:
        raise ImageLoadError(f"{name}: corrupt or truncated {kind} (OpenCV cannot decode it)")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ImageLoadError(f"{name}: {image.shape[1]}x{image.shape[0]} pixels exceeds the limit")
    return _to_rgb8(image, background, name)


def load_model_input(path: str | os.PathLike | bytes, size, **kwargs) -> np.ndarray:
    """Load an image and apply the contract's geometry for a model input of ``size``."""
    return center_crop_resize(load_image(path, **kwargs), size)


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


#: What simplejpeg raises for a bad file: libjpeg's errors and warnings are ``ValueError``; an
#: unknown subsampling or colour space in a damaged header is a ``KeyError`` of its tables.
_SIMPLEJPEG_ERRORS = (ValueError, KeyError)


def _check_jpeg_data(data: bytes, name: str) -> None:
    """Refuse a JPEG whose entropy-coded data libjpeg calls corrupt or truncated.

    A strict decode at the smallest scale (1/8) still reads every coefficient, so it sees the
    same data errors as a full decode for a third of its time (25 ms vs 64 ms for a 12 MP
    photo, ``benchmarks/bench_image_loading.py``). CMYK/YCCK files cannot be decoded to grey.
    """
    try:
        colorspace = simplejpeg.decode_jpeg_header(data, strict=False)[2]
        simplejpeg.decode_jpeg(
            data,
            colorspace="CMYK" if colorspace in ("CMYK", "YCCK") else "GRAY",
            min_height=1,
            min_width=1,
            strict=True,
        )
    except _SIMPLEJPEG_ERRORS as err:
        reason = _first_line(err) if isinstance(err, ValueError) else "damaged header"
        raise ImageLoadError(f"{name}: corrupt or truncated JPEG ({reason})") from None


def _to_rgb8(image: np.ndarray, background, name: str) -> np.ndarray:
    """BGR(A)/grey, 8 or 16 bits -> RGB uint8, converting in place where OpenCV can (a 64 MP
    photo is 192 MB: a second copy would double the peak)."""
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=1 / 257)  # round(v / 257): 65535 -> 255
    elif image.dtype != np.uint8:
        raise ImageLoadError(f"{name}: unsupported pixel type {image.dtype}")

    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)
    if channels == 4:
        return _composite(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA, dst=image), background)
    raise ImageLoadError(f"{name}: unsupported number of channels ({channels})")


def _composite(rgba: np.ndarray, background) -> np.ndarray:
    """Alpha-blend an RGBA image over a solid background colour, with rounding.

    ``rgb * a + bg * (255 - a) + 127 <= 255 * 255 + 127`` fits uint16.
    """
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    blended = rgba[:, :, :3].astype(np.uint16) * alpha
    blended += np.asarray(background, dtype=np.uint16).reshape(1, 1, 3) * (255 - alpha)
    blended += 127
    blended //= 255
    return blended.astype(np.uint8)


def image_format(data: bytes) -> str | None:
    """The name (one of :data:`FORMATS`) of the format ``data`` starts with, None if another."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "TIFF"
    return None


def peek_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a JPEG, PNG, GIF, BMP, WebP or TIFF; None if unknown.

    Read before decoding so that a tiny file claiming billions of pixels is refused cheaply.
    """
    try:
        return _HEADER_READERS[image_format(data)](data)
    except (struct.error, *_SIMPLEJPEG_ERRORS):  # KeyError also stands for an unknown format
        return None


def _jpeg_size(data: bytes) -> tuple[int, int]:
    height, width, _, _ = simplejpeg.decode_jpeg_header(data, strict=False)
    return width, height


def _bmp_size(data: bytes) -> tuple[int, int]:
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit unsigned sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first directory (classic TIFF and BigTIFF)."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\0", b"\0+")
    offset = struct.unpack(order + ("Q" if big else "I"), data[8:16] if big else data[4:8])[0]
    count_format, entry_format = ("Q", "HHQ8s") if big else ("H", "HHI4s")
    count_size = struct.calcsize(order + count_format)
    entry = struct.Struct(order + entry_format)
    (count,) = struct.unpack(order + count_format, data[offset : offset + count_size])
    values = {}
    for index in range(min(count, 4096)):
        start = offset + count_size + index * entry.size
        tag, kind, _, raw = entry.unpack(data[start : start + entry.size])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT, LONG or LONG8
            code = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if code is None:
                return None
            values[tag] = struct.unpack(order + code, raw[: struct.calcsize(code)])[0]
    if 256 not in values or 257 not in values:
        return None
    return values[256], values[257]


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


def _png_size(data: bytes) -> tuple[int, int] | None:
    return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None


def _gif_size(data: bytes) -> tuple[int, int]:
    return struct.unpack("<HH", data[6:10])


_HEADER_READERS = {
    "JPEG": _jpeg_size,
    "PNG": _png_size,
    "GIF": _gif_size,
    "BMP": _bmp_size,
    "WebP": _webp_size,
    "TIFF": _tiff_size,
}
