"""Seeded image samples from class folders: the calibration, fine-tuning and verification sets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import ImageLoadError, InputError
from itemrec.edge_runtime.folders import flatten, scan_class_folders
from itemrec.edge_runtime.images import load_model_input


@dataclasses.dataclass
class ImageSample:
    """Images at the model's input size (N x H x W x 3 uint8 RGB), their paths and classes."""

    images: np.ndarray
    paths: list[Path]
    labels: list[str]
    skipped: list[tuple[str, str]]


def _scan(root: Path, classes=None) -> dict[str, list[Path]]:
    """The class folders under ``root``, restricted to ``classes`` when given."""
    found = scan_class_folders(root)
    if classes is not None:
        found = {code: files for code, files in found.items() if code in set(classes)}
    return found


def sample_images(
    root, size, count: int, seed: int = 0, classes=None, progress=None
) -> ImageSample:
    """``count`` images drawn at random (seeded) from the class folders under ``root``."""
    paths, labels = flatten(_scan(Path(root), classes))
    chosen = sorted(np.random.default_rng(seed).permutation(len(paths))[: max(count, 0)])
    return _load([paths[i] for i in chosen], [labels[i] for i in chosen], size, root, progress)


def sample_classes(
    root, size, count: int, seed: int = 0, classes=None, progress=None
) -> ImageSample:
    """All images of classes drawn at random (seeded) until about ``count`` images are held.

    Only classes with at least two images are drawn: each must give a representative and a
    probe. Images keep the folder order, so the first image of a class is its first file.
    """
    by_class = _scan(Path(root), classes)
    codes = [code for code, files in by_class.items() if len(files) >= 2]
    if not codes:
        raise InputError(f"{root}: no class folder holds two or more images")
    chosen, total = [], 0
    for i in np.random.default_rng(seed).permutation(len(codes)):
        if total >= count:
            break
        chosen.append(codes[i])
        total += len(by_class[codes[i]])
    paths, labels = flatten({code: by_class[code] for code in sorted(chosen)})
    return _load(paths, labels, size, root, progress)


def _load(paths, labels, size, root, progress) -> ImageSample:
    images, kept_paths, kept_labels, skipped = [], [], [], []
    for path, label in zip(paths, labels, strict=True):
        try:
            images.append(load_model_input(path, size))
            kept_paths.append(path)
            kept_labels.append(label)
        except ImageLoadError as err:
            skipped.append((str(path), str(err)))
        if progress is not None:
            progress(1)
    if not images:
        raise InputError(f"{root}: no readable images to sample")
    return ImageSample(np.stack(images), kept_paths, kept_labels, skipped)
