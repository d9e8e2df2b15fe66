"""Image loading on real encoded files: formats, colour models, orientation, bad input."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from itemrec.edge_runtime.errors import ImageLoadError
from itemrec.edge_runtime.images import is_image_file, load_image, load_model_input, peek_size

# 20 rows x 40 columns: left half red, right half blue.
RED_BLUE = np.zeros((20, 40, 3), np.uint8)
RED_BLUE[:, :20] = (255, 0, 0)
RED_BLUE[:, 20:] = (0, 0, 255)


def _pil_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "WEBP", "TIFF"])
def test_lossless_formats_decode_exactly_as_rgb(fmt, tmp_path):
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(
        _pil_bytes(Image.fromarray(RED_BLUE), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    )
    np.testing.assert_array_equal(load_image(path), RED_BLUE)


def test_jpeg_is_rgb_not_bgr():
    out = load_image(_pil_bytes(Image.fromarray(RED_BLUE), "JPEG", quality=95))
    assert out.shape == (20, 40, 3)
    assert out[10, 5, 0] > 240 and out[10, 5, 2] < 15  # red stays red
    assert out[10, 35, 2] > 240 and out[10, 35, 0] < 15


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = _pil_bytes(Image.fromarray(RED_BLUE), "JPEG", quality=95, exif=exif.tobytes())
    out = load_image(data)
    assert out.shape == (40, 20, 3)  # upright: portrait now
    assert out[5, 10, 0] > 240 and out[35, 10, 2] > 240  # red on top, blue below


def test_grayscale_becomes_three_equal_channels():
    gray = np.tile(np.arange(0, 200, 5, dtype=np.uint8), (10, 1))
    out = load_image(_pil_bytes(Image.fromarray(gray), "PNG"))
    assert out.shape == (10, 40, 3)
    np.testing.assert_array_equal(out[:, :, 0], gray)
    np.testing.assert_array_equal(out[:, :, 1], out[:, :, 2])


def test_rgba_is_composited_on_the_background():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, :, 3] = 255  # opaque red row
    rgba[1, :, 3] = 0  # transparent
    rgba[2, :, 3] = 51  # 20 % red
    out = load_image(_pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"), background=(0, 100, 200))
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[1, 0], [0, 100, 200])
    # 255*0.2 + 0*0.8 = 51; 100*0.8 = 80; 200*0.8 = 160
    np.testing.assert_array_equal(out[2, 0], [51, 80, 160])


def test_cmyk_jpeg_decodes_to_rgb():
    data = _pil_bytes(Image.fromarray(RED_BLUE).convert("CMYK"), "JPEG", quality=95)
    out = load_image(data)
    assert out.shape == (20, 40, 3)
    assert out[10, 5, 0] > 230 and out[10, 5, 2] < 25
    assert out[10, 35, 2] > 230 and out[10, 35, 0] < 25


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    deep = np.array([[0, 257 * 100, 65535]], np.uint16)
    ok, encoded = cv2.imencode(".png", deep)
    out = load_image(encoded.tobytes())
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255])


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def test_decompression_bomb_is_refused_before_decoding():
    data = _png_header_only(100_000, 100_000)  # 10 gigapixels in 33 bytes
    assert peek_size(data) == (100_000, 100_000)
    with pytest.raises(ImageLoadError, match="exceeds the limit"):
        load_image(data)


def test_max_pixels_is_configurable():
    data = _pil_bytes(Image.fromarray(RED_BLUE), "PNG")
    with pytest.raises(ImageLoadError, match="40x20 pixels exceeds the limit of 799"):
        load_image(data, max_pixels=799)
    assert load_image(data, max_pixels=800).shape == (20, 40, 3)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_header_sizes(fmt):
    assert peek_size(_pil_bytes(Image.fromarray(RED_BLUE), fmt)) == (40, 20)


def test_truncated_jpeg_is_refused(tmp_path):
    data = _pil_bytes(Image.fromarray(RED_BLUE), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg: corrupt or truncated JPEG \("):
        load_image(path)


def test_truncated_png_is_refused(tmp_path):
    data = _pil_bytes(Image.fromarray(RED_BLUE), "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) - 30])
    with pytest.raises(ImageLoadError, match=r"cut\.png"):
        load_image(path)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty file"), (b"hello, I am text\n", "not a JPEG, PNG, GIF, BMP, WebP or TIFF image")],
)
def test_non_images_are_refused(tmp_path, content, message):
    path = tmp_path / "notes.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=f"notes.jpg: {message}"):
        load_image(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageLoadError, match="absent.png"):
        load_image(tmp_path / "absent.png")


def test_load_model_input_applies_the_contract_geometry():
    out = load_model_input(_pil_bytes(Image.fromarray(RED_BLUE), "PNG"), (8, 8))
    # Centre square of a red|blue image: left half red, right half blue.
    assert out.shape == (8, 8, 3)
    assert out[4, 0, 0] == 255 and out[4, 7, 2] == 255


def test_is_image_file():
    assert is_image_file("a/B.JPG") and is_image_file("x.webp")
    assert not is_image_file("names.csv")
