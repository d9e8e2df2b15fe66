"""One embedder interface over a Keras run directory and a ``.tflite`` file.

``itemrec-eval`` measures both through the same path, so the numbers before and after
conversion are comparable: images are loaded and cropped by the device contract, then
``embed_batch`` maps N x H x W x 3 uint8 RGB to N x D L2-normalised float32 rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.interpreter import EmbeddingModel


class TFLiteEmbedder:
    """A ``.tflite`` embedder run by the device's own interpreter wrapper."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.model = EmbeddingModel(path, threads=threads)
        self.name = Path(path).name
        self.input_size = self.model.input_size

    def embed_batch(self, images: np.ndarray) -> np.ndarray:
        return self.model.embed_many(images)


class KerasEmbedder:
    """The embedding model of a training run directory (heads stripped)."""

    def __init__(self, run_dir: str | Path):
        from itemrec.train.keras_api import tf
        from itemrec.train.run_dir import load_run

        run = load_run(run_dir)
        self.model = run.embedder
        self.name = Path(run_dir).name
        self.input_size = run.input_size
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def embed_batch(self, images: np.ndarray) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.model.output_shape[-1]), np.float32)
        return self._predict(np.asarray(images, np.float32)).numpy()


class PretrainedEmbedder(KerasEmbedder):
    """Frozen ImageNet features, globally pooled and L2-normalised: the no-training baseline.

    Named ``pretrained:BACKBONE[@SIZE]`` on the command line, e.g.
    ``pretrained:efficientnet_lite0@96``.
    """

    def __init__(self, backbone: str, image_size: int | None = None):
        from itemrec.train.backbones import build_backbone, default_image_size
        from itemrec.train.keras_api import tf
        from itemrec.train.layers import L2Normalize

        size = image_size or default_image_size(backbone)
        features = build_backbone(backbone, size, weights="imagenet")
        pooled = tf.keras.layers.GlobalAveragePooling2D()(features.output)
        self.model = tf.keras.Model(features.input, L2Normalize()(pooled))
        self.name = f"pretrained-{backbone}@{size}"
        self.input_size = (size, size)
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)


PRETRAINED_PREFIX = "pretrained:"


def open_embedder(path: str | Path, threads: int | None = None):
    """An embedder for a ``.tflite`` file, a run directory or ``pretrained:BACKBONE[@SIZE]``."""
    if str(path).startswith(PRETRAINED_PREFIX):
        name, _, size = str(path)[len(PRETRAINED_PREFIX) :].partition("@")
        if size and not size.isdigit():
            raise ModelError(f"{path}: the size after @ must be a number of pixels")
        return PretrainedEmbedder(name, int(size) if size else None)
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file or directory")
    if path.is_dir():
        return KerasEmbedder(path)
    if path.suffix == ".tflite":
        return TFLiteEmbedder(path, threads=threads)
    raise ModelError(f"{path}: expected a training run directory or a .tflite file")
