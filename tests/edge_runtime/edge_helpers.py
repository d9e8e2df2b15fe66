"""Helpers of the device tests: the tiny models, reference images, PNG and video writers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FP32_MODEL = FIXTURES / "tiny_fp32.tflite"
INT8_MODEL = FIXTURES / "tiny_int8.tflite"
# Reference images whose tiny-model embeddings are far apart (pairwise cosine <= 0.95):
# three gallery items and one item the gallery does not know.
ITEM_IMAGES = {"A": 0, "B": 1, "C": 5}
UNKNOWN_IMAGE = 6


def write_png(path: Path, rgb: np.ndarray, scale: int = 2) -> Path:
    """Write an RGB image, enlarged ``scale`` times (nearest), as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    assert cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    return path


def write_video(path: Path, frames_rgb: list[np.ndarray], fps: float = 30.0) -> Path:
    """An MJPG .avi (written by the headless OpenCV wheel) of 64 x 64 frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 64))
    assert writer.isOpened()
    for rgb in frames_rgb:
        big = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_NEAREST)
        writer.write(cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def build_args(images, db, *extra) -> list:
    """Arguments of ``itemrec-edge gallery build`` with the int8 tiny model."""
    return ["gallery", "build", "--model", INT8_MODEL, "--images", images, "--db", db, *extra]
