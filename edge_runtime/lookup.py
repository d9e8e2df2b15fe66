"""Nearest-representative lookup: which gallery items does an embedding look like?

An item's score is the best cosine of its representatives, ``s_j = max_{i in item j} <q, g_i>``
(embeddings are L2-normalised, so the dot product is the cosine). The answer is the top-k items
by score; the best one is accepted when ``s >= threshold``, else the image shows an "unknown"
item. All representatives live in one contiguous float32 matrix, grouped by item, so a query is
one matrix-vector product and one ``np.maximum.reduceat``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itemrec.edge_runtime.gallery import Gallery, GalleryVectors


@dataclass(frozen=True)
class Match:
    code: str
    name: str
    score: float

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "score": round(self.score, 6)}


@dataclass(frozen=True)
class Identification:
    """The top-k matches (best first) and whether the best one clears the threshold."""

    matches: list[Match]
    threshold: float | None

    @property
    def item(self) -> Match | None:
        """The recognised item, or None when the image shows an unknown item."""
        if not self.matches:
            return None
        best = self.matches[0]
        return best if self.threshold is None or best.score >= self.threshold else None

    def to_dict(self) -> dict:
        item = self.item
        return {
            "code": item.code if item else None,
            "name": item.name if item else None,
            "score": round(self.matches[0].score, 6) if self.matches else None,
            "threshold": self.threshold,
            "top": [m.to_dict() for m in self.matches],
        }


class Lookup:
    """Top-k items for query embeddings over a fixed set of representatives."""

    def __init__(self, vectors: GalleryVectors, threshold: float | None = None):
        self.threshold = threshold
        self._load(vectors)

    def _load(self, vectors: GalleryVectors) -> None:
        self.codes, self.names = vectors.codes, vectors.names
        self.matrix = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
        item_index = np.asarray(vectors.item_index, dtype=np.int64)
        if len(item_index) and np.any(np.diff(item_index) < 0):
            raise ValueError("representatives must be grouped by item (item_index non-decreasing)")
        self._items_with_vectors = np.unique(item_index)
        self._starts = np.searchsorted(item_index, self._items_with_vectors)
        # One representative per item, every item present: the scores are the item scores.
        self._one_per_item = len(item_index) == len(self.codes) == len(self._items_with_vectors)

    @property
    def item_count(self) -> int:
        return len(self.codes)

    def item_scores(self, queries: np.ndarray) -> np.ndarray:
        """``N x items`` best cosine per item for ``N x D`` queries (-inf for an item with none)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        scores = queries @ self.matrix.T
        if self._one_per_item:
            return scores
        best = np.full((len(queries), self.item_count), -np.inf, dtype=np.float32)
        if len(self._starts):
            best[:, self._items_with_vectors] = np.maximum.reduceat(scores, self._starts, axis=1)
        return best

    def top_k_indices(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, item indices)``, both ``N x min(k, items)``, best first, ties by index."""
        best = self.item_scores(queries)
        k = min(k, self.item_count)
        if k <= 0:
            empty = np.zeros((len(best), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        if k < self.item_count:
            candidates = np.argpartition(-best, k - 1, axis=1)[:, :k]
        else:
            candidates = np.broadcast_to(np.arange(self.item_count), best.shape)
        candidate_scores = np.take_along_axis(best, candidates, axis=1)
        order = np.lexsort((candidates, -candidate_scores), axis=1)
        indices = np.take_along_axis(candidates, order, axis=1)
        return np.take_along_axis(best, indices, axis=1), indices

    def identify(self, query: np.ndarray, k: int = 5) -> Identification:
        """The top-k items for one query embedding."""
        scores, indices = self.top_k_indices(query, k)
        matches = [
            Match(self.codes[i], self.names[i], float(s))
            for s, i in zip(scores[0], indices[0], strict=True)
            if np.isfinite(s)
        ]
        return Identification(matches, self.threshold)


class GalleryLookup(Lookup):
    """A ``Lookup`` over a gallery that reloads itself when the gallery changes."""

    def __init__(self, gallery: Gallery, threshold: float | None = None):
        self.gallery = gallery
        self._threshold_override = threshold
        self._revision = None
        super().__init__(GalleryVectors(np.zeros((0, 0), np.float32), np.zeros(0), [], []))
        self.refresh()

    def refresh(self) -> bool:
        """Reload the vectors (and the stored threshold) if the gallery changed; True if so."""
        revision = self.gallery.revision
        if revision == self._revision:
            return False
        self._load(self.gallery.vectors())
        override = self._threshold_override
        self.threshold = override if override is not None else self.gallery.threshold
        self._revision = revision
        return True
