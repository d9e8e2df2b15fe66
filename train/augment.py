"""Training-time augmentation: what a shop-floor photo of a product does to its pixels.

On float32 RGB images in 0..255, one image at a time (TensorFlow ops, inside tf.data).
Each named step can be switched on alone (``--augmentations``) so it can be measured
alone; in order:

- ``clutter``: the product shrunk onto another training image, as on a crowded shelf;
- ``crop``: a random resized crop (scale and aspect), the framing of a hand-held camera;
- ``perspective``: the corners moved independently, a package seen at an angle;
- ``occlusion``: a rectangle of another image over part of the product (a hand, a label);
- ``blur``: Gaussian (focus) or motion blur (a moving hand);
- ``lighting``: brightness, contrast, saturation, hue and white balance (per-channel gain);
- ``jpeg``: re-encoded at a random JPEG quality.

Horizontal flips are off by default: products carry text and logos, and a mirrored
package is a view the camera never sees (it would also teach the model that a product
and its mirror-image look-alike are the same item).
"""

from __future__ import annotations

import dataclasses
import math

from itemrec.train.config import AUGMENTATIONS
from itemrec.train.keras_api import tf

#: Steps that need a second image (the ``other`` argument of :func:`augment`).
NEEDS_OTHER_IMAGE = frozenset({"clutter", "occlusion"})


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Which steps run, and how strong each is."""

    steps: tuple[str, ...] = AUGMENTATIONS
    flip: bool = False
    crop_area: tuple[float, float] = (0.5, 1.0)  # fraction of the image the crop covers
    crop_aspect: tuple[float, float] = (3 / 4, 4 / 3)
    perspective: float = 0.12  # largest corner shift, as a fraction of the side
    clutter_probability: float = 0.5
    clutter_scale: tuple[float, float] = (0.55, 0.9)  # product side / frame side
    occlusion_probability: float = 0.4
    occlusion_area: tuple[float, float] = (0.05, 0.2)
    blur_probability: float = 0.5
    blur_sigma: float = 1.5  # Gaussian blur, largest sigma in px (96 px frame)
    motion_length: float = 7.0  # motion blur, longest streak in px
    brightness: float = 0.15  # max shift, as a fraction of full scale
    contrast: float = 0.2  # factor in [1 - c, 1 + c]
    saturation: float = 0.2  # factor in [1 - s, 1 + s]
    hue: float = 0.02  # max hue rotation, as a fraction of the colour circle
    white_balance: float = 0.1  # per-channel gain in [1 - w, 1 + w]
    jpeg_quality: tuple[int, int] = (30, 95)

    @classmethod
    def named(cls, names, flip: bool = False) -> Augmentation:
        """Only the steps in ``names`` (an iterable of :data:`AUGMENTATIONS`)."""
        names = tuple(names)
        unknown = sorted(set(names) - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}")
        return cls(steps=tuple(s for s in AUGMENTATIONS if s in names), flip=flip)

    @property
    def needs_other_image(self) -> bool:
        return bool(NEEDS_OTHER_IMAGE & set(self.steps))


def augment(image, size: int, aug: Augmentation, other=None):
    """A randomly augmented ``size x size`` copy of ``image`` (float32, 0..255).

    ``other`` (another training image, same size) is needed by ``clutter`` and ``occlusion``.
    """
    steps = set(aug.steps)
    image = tf.image.resize(image, (size, size))
    if other is not None:
        other = tf.image.resize(other, (size, size))
    if "clutter" in steps and other is not None:
        image = _maybe(aug.clutter_probability, lambda: _on_clutter(image, other, aug), image)
    if "crop" in steps:
        image = _random_resized_crop(image, size, aug)
    if "perspective" in steps and aug.perspective > 0:
        image = _perspective(image, aug.perspective)
    if aug.flip:
        image = tf.image.random_flip_left_right(image)
    if "occlusion" in steps and other is not None:
        image = _maybe(aug.occlusion_probability, lambda: _occluded(image, other, aug), image)
    if "blur" in steps:
        image = _maybe(aug.blur_probability, lambda: _blurred(image, aug), image)
    x = image / 255.0
    if "lighting" in steps:
        x = _lighting(x, aug)
    x = tf.clip_by_value(x, 0.0, 1.0)
    if "jpeg" in steps:
        low, high = aug.jpeg_quality
        x = tf.image.random_jpeg_quality(x, low, high)
    return tf.ensure_shape(tf.clip_by_value(x, 0.0, 1.0) * 255.0, [size, size, 3])


def _maybe(probability: float, transform, image):
    return tf.cond(tf.random.uniform([]) < probability, transform, lambda: image)


def _uniform(low, high):
    return tf.random.uniform([], low, high)


def _random_resized_crop(image, size: int, aug: Augmentation):
    begin, extent, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=0.0,
        aspect_ratio_range=aug.crop_aspect,
        area_range=aug.crop_area,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, extent)
    return tf.image.resize(crop, (size, size), method="bilinear", antialias=False)


def _perspective(image, strength: float):
    """Map the frame onto a random quadrilateral: each corner moves up to ``strength`` x side.

    The projective transform ``(x, y) -> ((a0 x + a1 y + a2) / (c0 x + c1 y + 1), ...)``
    takes each output corner to its moved input corner (8 equations, 8 unknowns).
    """
    size = tf.cast(tf.shape(image)[0], tf.float32)
    corners = tf.constant([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]) * (size - 1.0)
    moved = corners + tf.random.uniform([4, 2], -strength, strength) * size
    x, y = corners[:, 0], corners[:, 1]
    u, v = moved[:, 0], moved[:, 1]
    zeros, ones = tf.zeros(4), tf.ones(4)
    rows_u = tf.stack([x, y, ones, zeros, zeros, zeros, -x * u, -y * u], axis=1)
    rows_v = tf.stack([zeros, zeros, zeros, x, y, ones, -x * v, -y * v], axis=1)
    matrix = tf.concat([rows_u, rows_v], axis=0)
    target = tf.concat([u, v], axis=0)[:, None]
    transform = tf.reshape(tf.linalg.solve(matrix, target), [1, 8])
    shape = tf.shape(image)[:2]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=shape,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return warped[0]


def _on_clutter(image, other, aug: Augmentation):
    """``image`` shrunk to a random scale and placed at a random spot on ``other``."""
    size = tf.shape(image)[0]
    side = tf.cast(tf.cast(size, tf.float32) * _uniform(*aug.clutter_scale), tf.int32)
    small = tf.image.resize(image, (side, side))
    top = tf.random.uniform([], 0, size - side + 1, tf.int32)
    left = tf.random.uniform([], 0, size - side + 1, tf.int32)
    return _paste(other, small, top, left)


def _occluded(image, other, aug: Augmentation):
    """A random rectangle of ``image`` replaced by the same rectangle of ``other``."""
    size = tf.cast(tf.shape(image)[0], tf.float32)
    area = _uniform(*aug.occlusion_area) * size * size
    aspect = tf.exp(_uniform(math.log(1 / 3), math.log(3.0)))
    height = tf.cast(tf.clip_by_value(tf.sqrt(area * aspect), 1.0, size), tf.int32)
    width = tf.cast(tf.clip_by_value(tf.sqrt(area / aspect), 1.0, size), tf.int32)
    top = tf.random.uniform([], 0, tf.cast(size, tf.int32) - height + 1, tf.int32)
    left = tf.random.uniform([], 0, tf.cast(size, tf.int32) - width + 1, tf.int32)
    patch = tf.slice(other, [top, left, 0], [height, width, 3])
    return _paste(image, patch, top, left)


def _paste(canvas, patch, top, left):
    """``canvas`` with ``patch`` over it, its top-left corner at (``top``, ``left``)."""
    size = tf.shape(canvas)[0]
    height, width = tf.shape(patch)[0], tf.shape(patch)[1]
    padding = [[top, size - top - height], [left, size - left - width], [0, 0]]
    placed = tf.pad(patch, padding)
    mask = tf.pad(tf.ones([height, width, 1]), padding)
    return canvas * (1.0 - mask) + placed * mask


def _blurred(image, aug: Augmentation):
    """Gaussian blur or motion blur (a streak at a random angle), chosen at random."""
    kernel = tf.cond(
        tf.random.uniform([]) < 0.5,
        lambda: _gaussian_kernel(_uniform(0.3, aug.blur_sigma)),
        lambda: _motion_kernel(_uniform(2.0, aug.motion_length), _uniform(0.0, math.pi)),
    )
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    padded = tf.pad(image[None], [[0, 0], [4, 4], [4, 4], [0, 0]], mode="SYMMETRIC")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")[0]


_KERNEL_GRID = tf.range(-4.0, 5.0)  # a 9 x 9 kernel: room for sigma 1.5 and a 7 px streak


def _gaussian_kernel(sigma):
    weights = tf.exp(-0.5 * tf.square(_KERNEL_GRID / sigma))
    kernel = weights[:, None] * weights[None, :]
    return kernel / tf.reduce_sum(kernel)


def _motion_kernel(length, angle):
    """A line of ``length`` px through the center at ``angle``, anti-aliased by distance."""
    y, x = tf.meshgrid(_KERNEL_GRID, _KERNEL_GRID, indexing="ij")
    along = x * tf.cos(angle) + y * tf.sin(angle)
    across = tf.abs(-x * tf.sin(angle) + y * tf.cos(angle))
    kernel = tf.nn.relu(1.0 - across) * tf.cast(tf.abs(along) <= length / 2, tf.float32)
    return kernel / tf.reduce_sum(kernel)


def _lighting(x, aug: Augmentation):
    """Exposure, contrast, colour and white balance of ``x`` in 0..1."""
    if aug.brightness:
        x = tf.image.random_brightness(x, aug.brightness)
    if aug.contrast:
        x = tf.image.random_contrast(x, 1 - aug.contrast, 1 + aug.contrast)
    if aug.saturation:
        x = tf.image.random_saturation(x, 1 - aug.saturation, 1 + aug.saturation)
    if aug.hue:
        x = tf.image.random_hue(x, aug.hue)
    if aug.white_balance:
        gains = tf.random.uniform([3], 1 - aug.white_balance, 1 + aug.white_balance)
        x = x * gains / tf.reduce_mean(gains)
    return x
