"""Measure a converted model against the Keras model it came from, on held-out images.

The ``.tflite`` runs through the device's own wrapper (``edge_runtime.interpreter``, LiteRT),
exactly as on the device. Reported: cosine similarity per image between the Keras and the
TFLite embedding (mean, min), rank-1 of both (the first image of each class represents it,
the others probe; ``train.evaluation.metrics``) beside chance, the spread of the embeddings
(a collapsed model maps every image to one point), file size and median latency.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.train.evaluation import metrics

#: Default ``--min-cosine`` per variant: measured margins below what the sample runs reach.
DEFAULT_MIN_COSINE = {
    "float32": 0.999,
    "float16": 0.995,
    "dynamic": 0.95,
    "int8": 0.95,
    "qat": 0.95,
}


def cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two N x D matrices."""
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    return np.sum(reference * candidate, axis=1) / np.maximum(norms, 1e-12)


def embedding_variance(embeddings: np.ndarray) -> float:
    """Total variance of the rows, ``mean_i ||e_i - mean(e)||^2`` (the covariance's trace).

    For L2-normalised rows it is ``1 - ||mean(e)||^2``: 0 when every image maps to one point
    (a collapsed model), near 1 when the embeddings spread evenly over the sphere.
    """
    embeddings = np.asarray(embeddings, np.float64)
    return float(np.mean(np.sum((embeddings - embeddings.mean(axis=0)) ** 2, axis=1)))


def rank1(embeddings: np.ndarray, labels) -> float:
    """Rank-1 identification rate: first image of each class represents, the others probe."""
    return float(metrics.first_representative_cmc(embeddings, labels, max_rank=1)[0])


def tflite_embeddings(model: EmbeddingModel, images: np.ndarray, progress=None) -> np.ndarray:
    rows = []
    for image in images:
        rows.append(model.embed(image))
        if progress is not None:
            progress(1)
    return np.stack(rows)


def median_latency_ms(
    model: EmbeddingModel, image: np.ndarray, runs: int, warmup: int = 3
) -> float:
    """Median wall time of one ``invoke`` (the prepared input set, inference, output read)."""
    tensor = model.prepare(image)
    for _ in range(warmup):
        model.invoke(tensor)
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        model.invoke(tensor)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def verify(
    path: str | Path,
    images: np.ndarray,
    labels,
    reference: np.ndarray,
    *,
    threads: int,
    latency_runs: int,
    finetuned_reference: np.ndarray | None = None,
    progress=None,
) -> dict:
    """Run the ``.tflite`` at ``path`` on ``images`` and compare with ``reference`` embeddings.

    ``finetuned_reference`` (QAT, pruning) are the embeddings of the fine-tuned Keras model that
    was converted: their cosine isolates the conversion from the fine-tuning.
    """
    model = EmbeddingModel(path, threads=threads)
    embedded = tflite_embeddings(model, images, progress)
    similarity = cosines(reference, embedded)
    result = {
        "images": int(len(images)),
        "classes": int(len(set(labels))),
        "cosine_mean": float(similarity.mean()),
        "cosine_min": float(similarity.min()),
        "rank1_keras": rank1(np.asarray(reference), labels),
        "rank1_tflite": rank1(embedded, labels),
        # One representative per class: guessing finds the right one with probability 1/C.
        "rank1_chance": 1.0 / len(set(labels)),
        "embedding_variance_keras": embedding_variance(reference),
        "embedding_variance_tflite": embedding_variance(embedded),
        "size_bytes": Path(path).stat().st_size,
        "latency_ms_median": median_latency_ms(model, images[0], latency_runs),
        "latency_runs": int(latency_runs),
        "threads": int(model.threads),
        "interpreter": model.backend,
        "fingerprint": model.fingerprint,
    }
    if finetuned_reference is not None:
        converted = cosines(finetuned_reference, embedded)
        result["cosine_to_finetuned_mean"] = float(converted.mean())
        result["cosine_to_finetuned_min"] = float(converted.min())
    return result
