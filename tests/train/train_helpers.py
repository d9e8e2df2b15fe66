"""Helpers for the training tests: a tiny backbone and synthetic class folders."""

from __future__ import annotations

import numpy as np


def tiny_backbone(image_size: int = 32, seed: int = 0):
    """A two-conv backbone without batch norm (deterministic across replica counts)."""
    from itemrec.train.keras_api import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", kernel_initializer=init)(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", kernel_initializer=init)(x)
    return keras.Model(inputs, x, name="tiny")


COLORS = [
    (220, 30, 30),
    (30, 200, 40),
    (40, 60, 230),
    (240, 220, 20),
    (200, 40, 220),
    (20, 210, 210),
]


def write_class_folders(root, classes: int = 5, per_class: int = 3, size: int = 32, seed: int = 0):
    """``root/<code>/<n>.png``: each class a coloured shape, each image a jittered copy."""
    import cv2

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for c in range(classes):
        folder = root / f"item{c:02d}"
        folder.mkdir(exist_ok=True)
        for i in range(per_class):
            image = np.full((size, size, 3), 90, np.uint8)
            center = (size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4)))
            color = tuple(int(v) for v in COLORS[c % len(COLORS)])
            if c % 2:
                cv2.circle(image, center, size // 3, color, -1)
            else:
                half = size // 3
                cv2.rectangle(
                    image,
                    (center[0] - half, center[1] - half),
                    (center[0] + half, center[1] + half),
                    color,
                    -1,
                )
            image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i}.png"), image[:, :, ::-1])
    return root
