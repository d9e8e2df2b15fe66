"""The image geometry of the contract: centre crop to the model's aspect, then resize.

Training (tf.data), the device (OpenCV) and the Android core (Java) all do exactly this:

1. crop the largest centred box with the target aspect ratio ``width / height``;
2. resize it bilinearly with half-pixel centres and no antialiasing
   (``cv2.INTER_LINEAR`` == ``tf.image.resize(method="bilinear", antialias=False)``);
3. hand the model RGB uint8 values in 0..255 (normalisation is a layer in the model).
"""

from __future__ import annotations

import cv2
import numpy as np


def center_crop_box(height: int, width: int, target_height: int, target_width: int):
    """Return ``(top, left, crop_height, crop_width)`` of the centred crop with the target aspect.

    The crop keeps the whole of the limiting side; the other side is trimmed equally
    from both ends (the odd pixel, if any, from the bottom/right).
    """
    if min(height, width, target_height, target_width) <= 0:
        raise ValueError("image and target sizes must be positive")
    # Compare aspects with integers: width/height > tw/th  <=>  width*th > tw*height.
    if width * target_height > target_width * height:
        crop_h = height
        crop_w = max(1, round(height * target_width / target_height))
    else:
        crop_w = width
        crop_h = max(1, round(width * target_height / target_width))
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def center_crop_resize(image: np.ndarray, size) -> np.ndarray:
    """Centre-crop ``image`` (H x W x C uint8) to the aspect of ``size`` and resize to it.

    ``size`` is ``(height, width)`` or a single int for a square input.
    """
    target_h, target_w = (size, size) if isinstance(size, int) else size
    top, left, crop_h, crop_w = center_crop_box(image.shape[0], image.shape[1], target_h, target_w)
    crop = image[top : top + crop_h, left : left + crop_w]
    if crop.shape[0] == target_h and crop.shape[1] == target_w:
        return np.ascontiguousarray(crop)
    return cv2.resize(crop, (target_w, target_h), interpolation=cv2.INTER_LINEAR)
