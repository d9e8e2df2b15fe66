"""Enrolment-time augmentation: each enrolment photo may add K more representatives.

An item is enrolled from a photo or two, taken under one light from one angle; the photos the
device sees later are not. Each of the K views of an enrolment photo applies, with seeded
random strength, what a shop changes: a perspective tilt (each corner moved by up to 6 % of
the side), scale and crop (zoom 0.85-1.2 around a shifted centre), lighting (brightness
x0.75-1.25, contrast x0.8-1.2) and white balance (channel gains 0.9-1.1), and sometimes
blur (Gaussian or motion, one in three) and JPEG re-compression (quality 40-90, one in
three). Never a horizontal flip: products carry text.

numpy and OpenCV only: the device has no TensorFlow. The views are drawn from the photo's
own pixels (a seed from their hash), so a gallery built twice is the same.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from itemrec.edge_runtime.geometry import center_crop_resize

#: Views are made at this multiple of the model's input side (crop, warp and blur act on
#: detail the model then sees downscaled, as with a camera), which also bounds their cost.
WORK_SCALE = 2
MAX_CORNER_SHIFT = 0.06
ZOOM_RANGE = (0.85, 1.2)
BRIGHTNESS_RANGE = (0.75, 1.25)
CONTRAST_RANGE = (0.8, 1.2)
CHANNEL_GAIN_RANGE = (0.9, 1.1)
BLUR_PROBABILITY = JPEG_PROBABILITY = 1 / 3
JPEG_QUALITY_RANGE = (40, 90)


def image_seed(image: np.ndarray) -> int:
    """A 64-bit seed from an image's pixels."""
    return int.from_bytes(
        hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()[:8], "little"
    )


def perspective_and_zoom(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move each corner by up to ``MAX_CORNER_SHIFT`` of the side, zoom around a shifted centre.

    The border is replicated, like a shelf continuing past the product.
    """
    h, w = image.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    zoom = rng.uniform(*ZOOM_RANGE)
    centre = np.float32([w, h]) / 2 + rng.uniform(-0.05, 0.05, 2) * np.float32([w, h])
    target = (corners - centre) * zoom + np.float32([w, h]) / 2
    target += rng.uniform(-MAX_CORNER_SHIFT, MAX_CORNER_SHIFT, (4, 2)) * np.float32([w, h])
    matrix = cv2.getPerspectiveTransform(corners, target.astype(np.float32))
    return cv2.warpPerspective(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def lighting(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``out = (x - mean) * contrast + mean * brightness``, then per-channel white-balance gains."""
    x = image.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(*CONTRAST_RANGE) + mean * rng.uniform(*BRIGHTNESS_RANGE)
    x *= rng.uniform(*CHANNEL_GAIN_RANGE, 3).astype(np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian blur (sigma 0.5-1.5 px of the input side) or a motion blur (3-7 px, any angle)."""
    scale = image.shape[0] / 128
    if rng.random() < 0.5:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5) * scale)
    length = max(3, int(round(rng.uniform(3, 7) * scale)))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))


def jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-compress as JPEG at quality 40-90 (RGB in, RGB out)."""
    quality = int(rng.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1))
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1] if ok else image


def augmented_views(image: np.ndarray, count: int, input_size, seed: int = 0) -> list[np.ndarray]:
    """``count`` augmented views of an H x W x 3 uint8 RGB photo, each ``WORK_SCALE`` x the
    model's ``input_size`` (height, width): the model then crops and resizes them as usual."""
    if count <= 0:
        return []
    height, width = input_size
    base = center_crop_resize(image, (WORK_SCALE * height, WORK_SCALE * width))
    rng = np.random.default_rng([seed, image_seed(image)])
    views = []
    for _ in range(count):
        view = lighting(perspective_and_zoom(base, rng), rng)
        if rng.random() < BLUR_PROBABILITY:
            view = blur(view, rng)
        if rng.random() < JPEG_PROBABILITY:
            view = jpeg(view, rng)
        views.append(np.ascontiguousarray(view))
    return views
