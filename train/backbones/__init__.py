"""Feature-extractor backbones: 0..255 RGB in, the last feature map (before pooling) out.

Normalisation is the model's first layer (:class:`InputNormalization`), so callers
feed raw RGB. Every model is flat (standard Keras layers and registered custom layers
only), so tfmot can quantise a model built from ``backbone.input``/``backbone.output``.
"""

from __future__ import annotations

import os

from itemrec.edge_runtime.errors import InputError

from . import efficientnet_lite, inception_v3
from .input_normalization import InputNormalization
from .keras_weights import load_keras_weights

BACKBONES = ("inception_v3", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")

__all__ = [
    "BACKBONES",
    "InputNormalization",
    "build_backbone",
    "build_classifier",
    "default_image_size",
    "min_image_size",
]


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def default_image_size(name: str) -> int:
    """The side its ImageNet weights were trained at: 299, 224, 240 or 260 px."""
    _check_name(name)
    if name == "inception_v3":
        return 299
    return efficientnet_lite.VARIANTS[name].image_size


def min_image_size(name: str) -> int:
    """The smallest side the backbone accepts (75 px for InceptionV3, 32 for the Lites)."""
    _check_name(name)
    if name == "inception_v3":
        return inception_v3.MIN_IMAGE_SIZE
    return efficientnet_lite.MIN_IMAGE_SIZE


def _size(name: str, image_size) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(side, int) for side in size):
        raise InputError(f"image size must be an int or (height, width), got {image_size!r}")
    height, width = size
    smallest = min_image_size(name)
    if min(height, width) < smallest:
        raise InputError(
            f"{name} needs images of at least {smallest}x{smallest} px, got {height}x{width}"
        )
    return int(height), int(width)


def _check_weights(weights: str) -> None:
    if (
        weights in ("imagenet", "none")
        or os.path.exists(weights)
        or os.path.exists(f"{weights}.index")
    ):
        return
    raise InputError(f"{weights}: no such weights file (weights are 'imagenet', 'none' or a path)")


def build_backbone(name: str, image_size: int | tuple[int, int], weights: str = "imagenet"):
    """Build backbone ``name`` for ``image_size`` (side or ``(height, width)``).

    ``weights``: ``"imagenet"``, ``"none"`` (random) or the path of a weights file
    (``.pth`` state dict for the Lites, a Keras weights file for any backbone).
    Returns a tf_keras Model named ``name``: float32 RGB 0..255 in, (B, h', w', C) out.
    """
    _check_name(name)
    height, width = _size(name, image_size)
    _check_weights(weights)
    if name == "inception_v3":
        path = None if weights == "none" else inception_v3.weights_path(weights)
        model = inception_v3.build_inception_v3(height, width)
        if path is not None:
            load_keras_weights(model, path)
        return model
    model, weight_map = efficientnet_lite.build_efficientnet_lite(name, height, width)
    if weights != "none":
        efficientnet_lite.load_weights(model, weight_map, weights)
    return model


def build_classifier(name: str, weights: str = "imagenet"):
    """The ImageNet classifier of an EfficientNet-Lite (softmax over 1000 classes).

    At the default image size; used to prove the weight port on real photos.
    """
    _check_name(name)
    if name == "inception_v3":
        raise InputError("build_classifier supports the efficientnet_lite backbones only")
    size = default_image_size(name)
    model, weight_map = efficientnet_lite.build_efficientnet_lite(name, size, size, True)
    if weights != "none":
        efficientnet_lite.load_weights(model, weight_map, weights)
    return model
