"""Training-time augmentation on float32 RGB images in 0..255 (TensorFlow ops, per image).

Horizontal flips are off by default: products carry text and logos, and a mirrored
package is a view the camera never sees (it would also teach the model that a
product and its mirror-image look-alike are the same item).
"""

from __future__ import annotations

import dataclasses

from itemrec.train.keras_api import tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random resized crop, optional horizontal flip, colour jitter."""

    crop_area: tuple[float, float] = (0.5, 1.0)  # fraction of the image the crop covers
    crop_aspect: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = False
    brightness: float = 0.15  # max shift, as a fraction of full scale
    contrast: float = 0.2  # factor in [1 - c, 1 + c]
    saturation: float = 0.2  # factor in [1 - s, 1 + s]
    hue: float = 0.02  # max hue rotation, as a fraction of the colour circle


def augment(image, size: int, aug: Augmentation):
    """Return a randomly augmented ``size x size`` copy of ``image`` (float32, 0..255)."""
    begin, extent, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=0.0,
        aspect_ratio_range=aug.crop_aspect,
        area_range=aug.crop_area,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, extent)
    image = tf.image.resize(crop, (size, size), method="bilinear", antialias=False)
    if aug.flip:
        image = tf.image.random_flip_left_right(image)
    x = image / 255.0
    if aug.brightness:
        x = tf.image.random_brightness(x, aug.brightness)
    if aug.contrast:
        x = tf.image.random_contrast(x, 1 - aug.contrast, 1 + aug.contrast)
    if aug.saturation:
        x = tf.image.random_saturation(x, 1 - aug.saturation, 1 + aug.saturation)
    if aug.hue:
        x = tf.image.random_hue(x, aug.hue)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0
