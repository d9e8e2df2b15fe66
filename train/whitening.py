"""PCA whitening of the embeddings, fitted on the training images once training ends.

With ``x`` the L2-normalised embeddings of the (un-augmented) training images, ``mu`` their
mean, ``V`` and ``lambda`` the eigenvectors and eigenvalues of their covariance, and ``s`` the
shrinkage::

    lambda' = (1 - s) * lambda + s * mean(lambda)
    y = normalize((x - mu) @ V @ diag(lambda') ** -1/2)

Whitening spreads the directions the training images barely use and damps the dominant ones,
so a cosine weighs every direction the same. ``s`` pulls the eigenvalues towards their mean:
s = 1 is plain centring, s = 0 full whitening, which amplifies the noise of directions
estimated from few images. It becomes one ``Dense`` layer and an ``L2Normalize`` appended to
the embedder, so the converter, the Pi and the phone run it as part of the model, with no
code of their own (a 128 x 128 matrix: well under 1 % of Lite0's multiply-adds).

On the same trained weights at the defaults, whitened against not: rank-1 +2.1 +- 0.3 points
and open-set EER -1.2 on the dev benchmark (2 seeds), +2.6 +- 1.5 and -4.2 on the sample (3)
(``benchmarks/embedding_postprocess.py --as-trained``; ``docs/defaults.md``, "Whitening").
"""

from __future__ import annotations

import numpy as np

from itemrec.train.callbacks import COLLAPSED_SPREAD, embedding_spread
from itemrec.train.data import ClassFolders, evaluation_dataset
from itemrec.train.keras_api import keras
from itemrec.train.layers import L2Normalize

WHITENING, WHITENED = "whitening", "whitened_embedding"
#: Whitening needs at least this many training classes per embedding dimension: C classes'
#: means span at most C - 1 directions, and whitening raises the others (within-item noise) to
#: the same weight. Fitted on K random training classes of the dev benchmark only (Lite0, 2
#: seeds; ``embedding_postprocess.py --fit-classes``), rank-1 / EER moved -3.1 / +3.4 points at
#: K = 16, +0.3 / +0.7 at 64, +1.3 / -0.3 at 128, +1.5 / -1.0 at 256 and +2.0 / -1.1 with all
#: 823, for 128 dimensions; on the faces-like set (23 classes) rank-1 fell 6 points on one seed.
MIN_CLASSES_PER_DIMENSION = 2


def too_few_classes(classes: int, dimensions: int) -> str | None:
    """Why ``classes`` training classes are too few to whiten ``dimensions``, or None."""
    needed = MIN_CLASSES_PER_DIMENSION * dimensions
    if classes >= needed:
        return None
    per = MIN_CLASSES_PER_DIMENSION
    return f"{classes} training classes, fewer than {needed} ({per} per embedding dimension)"


def fit_whitening(embeddings: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel, bias)`` with ``normalize(x @ kernel + bias)`` the whitened ``x`` (see above)."""
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("whitening needs at least 2 embeddings")
    if not 0 < shrink <= 1:
        raise ValueError(f"the whitening's shrinkage must be in (0, 1], got {shrink}")
    spread = embedding_spread(x)
    if spread < COLLAPSED_SPREAD:  # whitening would blow noise up and hide the collapse
        raise ValueError(f"the training embeddings have collapsed (spread {spread:.4f})")
    mean = x.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    values = (1 - shrink) * np.clip(values, 0, None) + shrink * values.mean()
    kernel = vectors / np.sqrt(values)
    return kernel.astype(np.float32), (-mean @ kernel).astype(np.float32)


def whiten_for_export(
    embedder: keras.Model, train_set: ClassFolders, image_size: int, batch_size: int, shrink: float
) -> tuple[keras.Model, dict]:
    """What training exports: ``embedder`` whitened on the un-augmented ``train_set`` images,
    or as it is (``shrink`` 0, too few classes, collapsed embeddings); and the record of it for
    ``summary.json`` (``shrink`` and ``images``, or ``not_whitened`` with the reason)."""
    if not shrink:
        return embedder, {"shrink": 0.0}
    reason = too_few_classes(len(train_set.classes), int(embedder.output_shape[-1]))
    if reason is None:
        paths, labels = train_set.paths_and_labels
        images = evaluation_dataset(paths, labels, image_size, batch_size)
        try:
            whitened = whiten(embedder, images.map(lambda image, _label: image), shrink)
            return whitened, {"shrink": shrink, "images": len(paths)}
        except ValueError as err:  # collapsed: convert's degenerate check must still see it
            reason = str(err)
    return embedder, {"shrink": 0.0, "not_whitened": reason}


def whiten(embedder: keras.Model, images, shrink: float) -> keras.Model:
    """``embedder`` whitened on its embeddings of ``images`` (batches of RGB 0..255).

    ``ValueError`` when they cannot be: fewer than 2, or collapsed (nearly one point), which
    stays visible unwhitened to ``itemrec-convert``'s degenerate-model check.
    """
    kernel, bias = fit_whitening(embedder.predict(images, verbose=0), shrink)
    return whitened_embedder(embedder, kernel, bias)


def whitened_embedder(embedder: keras.Model, kernel: np.ndarray, bias: np.ndarray) -> keras.Model:
    """``embedder`` followed by the whitening and a new L2 normalisation (a flat model)."""
    dense = keras.layers.Dense(kernel.shape[1], name=WHITENING, dtype="float32")
    outputs = L2Normalize(name=WHITENED, dtype="float32")(dense(embedder.output))
    dense.set_weights([kernel, bias])
    return keras.Model(embedder.input, outputs, name=embedder.name)
