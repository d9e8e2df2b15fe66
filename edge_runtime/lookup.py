"""Nearest-representative lookup: which gallery items does an embedding look like?

An item's score is the best cosine of its representatives, ``s_j = max_{i in item j} <q, g_i>``
(embeddings are L2-normalised, so the dot product is the cosine). The answer is the top-k items
by score, ties to the lower item index; the best one is accepted when ``s >= threshold``, else
the image shows an "unknown" item. All representatives live in one contiguous float32 matrix,
grouped by item.

Small galleries take one matrix-vector product and one ``np.maximum.reduceat``. From
``FAST_MIN_ROWS`` representatives on, one query goes through the int8 scorer
(``edge_runtime.scorer``): approximate scores of every row, a proven lower bound ``L`` of the
k-th best item score (exact scores of the rows in the blocks with the best approximate
maxima), then exact scores only for the rows whose approximate score is at least
``L - bound``. Every row of a top-k item passes that test, so the answer is the exact one.

``GalleryLookup`` reads a gallery through its vector cache (``edge_runtime.vector_cache``)
and follows its changes: a change while it runs costs time in proportion to the change (the
changed items are masked out of the cached matrix and scored exactly beside it), until the
changes add up to ``DELTA_FRACTION`` of the gallery and it reloads.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.gallery import Gallery, GalleryVectors
from itemrec.edge_runtime.scorer import Int8Scorer
from itemrec.edge_runtime.vector_cache import CachedVectors, cache_path, read_cache, write_cache

#: Below this many representatives numpy's exact product beats the scorer (one query, 128-d,
#: one core: 0.021 vs 0.052 ms at 1,000 rows, 0.082 vs 0.089 at 5,000, 0.15 vs 0.12 at 10,000).
FAST_MIN_ROWS = 8_000
BLOCK = 256  # rows per block of approximate maxima
#: Changed items are kept beside the cached matrix until they reach this share of its rows.
DELTA_FRACTION = 0.05
DELTA_MIN_ROWS = 2_000


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

    def __init__(self, vectors: GalleryVectors, threshold: float | None = None, scorer="auto"):
        """``scorer``: an ``Int8Scorer`` of ``vectors.matrix``; ``"auto"``: one is made when
        the matrix has ``FAST_MIN_ROWS`` rows or more; None: exact products only."""
        self.threshold = threshold
        self._load(vectors, scorer)

    def _load(self, vectors, scorer="auto") -> None:
        self.codes, self.names = vectors.codes, vectors.names
        self.matrix = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
        item_index = np.asarray(vectors.item_index)
        if len(item_index) and np.any(np.diff(item_index) < 0):
            raise ValueError("representatives must be grouped by item (item_index non-decreasing)")
        self.item_index = item_index
        self._items_with_vectors = np.unique(item_index)
        self._starts = np.searchsorted(item_index, self._items_with_vectors)
        # One representative per item, every item present: the scores are the item scores.
        self._one_per_item = len(item_index) == len(self.codes) == len(self._items_with_vectors)
        if isinstance(scorer, str):
            scorer = None
            if len(self.matrix) >= FAST_MIN_ROWS:
                try:
                    scorer = Int8Scorer.build(self.matrix)
                except ModelError:  # an interpreter without the kernel: exact products only
                    scorer = None
        self.scorer = scorer

    @property
    def item_count(self) -> int:
        return len(self.codes)

    def item_scores(self, queries: np.ndarray) -> np.ndarray:
        """``N x items`` best cosine per item for ``N x D`` queries (-inf for an item with none)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        return self._per_item(queries @ self.matrix.T)

    def _per_item(self, scores: np.ndarray) -> np.ndarray:
        """Per-row scores (``V`` or ``N x V``) -> per-item best scores."""
        if self._one_per_item:
            return scores
        best = np.full((*scores.shape[:-1], len(self.codes)), -np.inf, dtype=np.float32)
        if len(self._starts):
            best[..., self._items_with_vectors] = np.maximum.reduceat(scores, self._starts, axis=-1)
        return best

    def top_k_indices(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, item indices)``, both ``N x min(k, items)``, best first, ties by index."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = min(k, len(self.codes))
        if len(queries) == 1 and 0 < k < len(self.codes):
            if self.scorer is not None:
                scores, indices = self._fast_top_k(queries[0], k)
            else:  # one product and one selection, fewer calls than the batched path
                scores, indices = _top_k_one(self._per_item(self.matrix @ queries[0]), k)
            return scores[np.newaxis], indices[np.newaxis]
        return _top_k(self.item_scores(queries), k)

    def _fast_top_k(self, query, k, floor=-np.inf, dead_rows=None):
        """The exact top-k ``(scores, item indices)`` of one query, through the scorer.

        ``floor``: a known lower bound of the k-th best score (from items scored elsewhere);
        ``dead_rows``: rows to leave out.
        """
        approx = self.scorer.scores(query)
        if dead_rows is not None and len(dead_rows):
            approx[dead_rows] = -np.inf
        bound = self.scorer.bound(query)
        lower = max(floor, self._kth_score_lower_bound(approx, query, k))
        if lower == -np.inf:  # too few live items to bound: score every live row exactly
            exact = self.matrix @ query
            exact[approx == -np.inf] = -np.inf
            return _top_k_one(self._per_item(exact), k)
        rows = np.flatnonzero(approx >= lower - bound)
        return self._best_items(rows, self.matrix[rows] @ query, k)

    def _kth_score_lower_bound(self, approx, query, k) -> float:
        """A k-th best item score reached by items in the blocks of best approximate maxima."""
        full = len(approx) // BLOCK * BLOCK
        maxima = approx[:full].reshape(-1, BLOCK).max(axis=1)
        if full < len(approx):
            maxima = np.append(maxima, approx[full:].max())
        need = min(len(maxima), 2 * k)
        threshold = np.partition(maxima, len(maxima) - need)[len(maxima) - need]
        if threshold == -np.inf:
            return -np.inf
        rows = np.flatnonzero(approx >= threshold)
        scores, _ = self._best_items(rows, self.matrix[rows] @ query, k)
        return float(scores[-1]) if len(scores) == k else -np.inf

    def _best_items(self, rows, scores, k):
        """Top-k items (scores, indices; ties by index) among ``rows`` with exact ``scores``."""
        items = self.item_index[rows]
        order = np.lexsort((items, -scores))  # best first, ties by item
        items, scores = items[order], scores[order]
        _, first = np.unique(items, return_index=True)  # each item's best row
        first.sort()
        return scores[first][:k], items[first][:k].astype(np.int64)

    def identify(self, query: np.ndarray, k: int = 5) -> Identification:
        """The top-k items for one query embedding."""
        scores, indices = self.top_k_indices(query, k)
        matches = [
            Match(self.codes[i], self.names[i], float(s))
            for s, i in zip(scores[0], indices[0], strict=True)
            if np.isfinite(s)
        ]
        return Identification(matches, self.threshold)


def _top_k_one(best: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``_top_k`` of one row of scores, with fewer calls."""
    k = min(k, len(best))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    cut = np.partition(best, len(best) - k)[len(best) - k]
    candidates = np.flatnonzero(best >= cut)
    order = np.lexsort((candidates, -best[candidates]))[:k]
    return best[candidates[order]], candidates[order]


def _top_k(best: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``best`` (N x items): the top-k scores and indices, ties by index.

    Every item tied with the k-th score is a candidate, so a tie at the cut goes to the lower
    index too (``argpartition`` alone would pick among them arbitrarily).
    """
    k = min(k, best.shape[1])
    scores = np.zeros((len(best), k), np.float32)
    indices = np.zeros((len(best), k), np.int64)
    if k <= 0:
        return scores, indices
    kth = np.partition(best, best.shape[1] - k, axis=1)[:, best.shape[1] - k]
    for row, (values, cut) in enumerate(zip(best, kth, strict=True)):
        candidates = np.flatnonzero(values >= cut)
        order = np.lexsort((candidates, -values[candidates]))[:k]
        indices[row] = candidates[order]
        scores[row] = values[indices[row]]
    return scores, indices


class GalleryLookup(Lookup):
    """A ``Lookup`` over a gallery, through its vector cache, that follows the gallery's changes.

    ``refresh()`` (the live loop calls it every second) applies what changed since the last
    call: the changed items' current representatives are scored exactly beside the cached
    matrix, in which their old rows are masked, so the cost follows the change.
    """

    def __init__(self, gallery: Gallery, threshold: float | None = None, cache: bool = True):
        self.gallery = gallery
        self._threshold_override = threshold
        self._use_cache = cache
        self._revision = None
        self.cache_state = "none"  # "fresh" (mapped), "written", "unwritable" or "none"
        self._reset_delta()
        super().__init__(GalleryVectors(np.zeros((0, 0), np.float32), np.zeros(0), [], []))
        self.refresh()

    def _reset_delta(self) -> None:
        self._delta: dict[str, tuple[str, np.ndarray] | None] = {}  # code -> (name, vectors)
        self._dead_rows = np.zeros(0, np.int64)
        self._delta_lookup: Lookup | None = None
        self._delta_rows = 0

    @property
    def item_count(self) -> int:
        """Items in the gallery now, the changes since the cached base included."""
        changed_in_base = sum(self._in_base(code) for code in self._delta)
        live = sum(v is not None for v in self._delta.values())
        return len(self.codes) - changed_in_base + live

    @property
    def representative_count(self) -> int:
        return len(self.matrix) - len(self._dead_rows) + self._delta_rows

    def __contains__(self, code: str) -> bool:
        """Whether the gallery holds item ``code`` now."""
        if code in self._delta:
            return self._delta[code] is not None
        return self._in_base(code)

    def _in_base(self, code: str) -> bool:
        i = bisect.bisect_left(_Keys(self.codes), code)
        return i < len(self.codes) and self.codes[i] == code

    def refresh(self) -> bool:
        """Follow the gallery's changes (and the stored threshold); True if there were any."""
        revision = self.gallery.revision
        if revision == self._revision:
            return False
        changed = None
        if self._revision is not None:
            changed = self.gallery.changed_since(self._revision)
        if changed is None or not self._apply_changes(changed - {None}):
            self._reload(revision)
        override = self._threshold_override
        self.threshold = override if override is not None else self.gallery.threshold
        self._revision = revision
        return True

    # -- the cached base ---------------------------------------------------------------------
    def _reload(self, revision: int) -> None:
        self._reset_delta()
        key = {
            "gallery_id": self.gallery.gallery_id,
            "fingerprint": self.gallery.fingerprint,
            "revision": revision,
        }
        path = cache_path(self.gallery.path)
        cached = read_cache(path, key) if self._use_cache else None
        if cached is not None:
            self.cache_state = "fresh"
            scorer = None  # a small gallery, or an interpreter that cannot run the scorer
            if cached.scorer is not None:
                try:
                    scorer = Int8Scorer(**cached.scorer)
                except ModelError:
                    scorer = None
            self._load(cached, scorer)
            return
        vectors = self.gallery.vectors()
        self._load(vectors)
        if self._use_cache:
            written = write_cache(
                path,
                CachedVectors(
                    key,
                    vectors.matrix,
                    vectors.item_index,
                    vectors.codes,
                    vectors.names,
                    None if self.scorer is None else self.scorer.parts(),
                ),
            )
            self.cache_state = "written" if written else "unwritable"

    # -- changes since the base --------------------------------------------------------------
    def _apply_changes(self, codes: set[str]) -> bool:
        """Mask the changed items' cached rows, score their current rows beside; False when
        the changes have grown too large to keep beside the base (then reload)."""
        fresh = self.gallery.vectors(sorted(codes))
        present = {}
        for i, code in enumerate(fresh.codes):
            present[code] = (fresh.names[i], fresh.matrix[fresh.item_index == i])
        for code in codes:
            self._delta[code] = present.get(code)
        self._delta_rows = sum(len(v[1]) for v in self._delta.values() if v is not None)
        if self._delta_rows > max(DELTA_MIN_ROWS, DELTA_FRACTION * len(self.matrix)):
            return False
        dead = [self._base_rows(code) for code in codes]
        self._dead_rows = np.unique(np.concatenate([self._dead_rows, *dead]).astype(np.int64))
        live = sorted((code, v) for code, v in self._delta.items() if v is not None)
        if live:
            matrix = np.concatenate([v[1] for _, v in live])
            item_index = np.repeat(np.arange(len(live)), [len(v[1]) for _, v in live])
            self._delta_lookup = Lookup(
                GalleryVectors(matrix, item_index, [c for c, _ in live], [v[0] for _, v in live])
            )
        else:
            self._delta_lookup = None
        return True

    def _base_rows(self, code: str) -> np.ndarray:
        """The cached rows of item ``code`` (codes are in code order), empty if it is new."""
        if not self._in_base(code):
            return np.zeros(0, np.int64)
        i = bisect.bisect_left(_Keys(self.codes), code)
        start, end = np.searchsorted(self.item_index, [i, i + 1])
        return np.arange(start, end, dtype=np.int64)

    def identify(self, query: np.ndarray, k: int = 5) -> Identification:
        """The top-k items for one query embedding, the changes since the base included."""
        if self._delta_lookup is None and not len(self._dead_rows):
            return super().identify(query, k)
        query = np.asarray(query, np.float32).reshape(-1)
        found = []  # (score, tie rank, code, name): base items by index, then changed ones
        floor = -np.inf
        if self._delta_lookup is not None:
            scores, indices = self._delta_lookup.top_k_indices(query, k)
            delta = self._delta_lookup
            for s, i in zip(scores[0], indices[0], strict=True):
                found.append((float(s), len(self.codes) + i, delta.codes[i], delta.names[i]))
            if len(scores[0]) == k:
                floor = float(scores[0][-1])
        if len(self.codes):
            if self.scorer is not None and k < len(self.codes):
                scores, indices = self._fast_top_k(query, k, floor, self._dead_rows)
            else:
                exact = self.matrix @ query
                exact[self._dead_rows] = -np.inf
                scores, indices = _top_k_one(self._per_item(exact), k)
            found += [
                (float(s), i, self.codes[i], self.names[i])
                for s, i in zip(scores, indices, strict=True)
            ]
        found.sort(key=lambda m: (-m[0], m[1]))
        matches = [Match(c, n, s) for s, _, c, n in found[:k] if np.isfinite(s)]
        return Identification(matches, self.threshold)


class _Keys:
    """``bisect`` over a sequence of codes without copying it."""

    def __init__(self, codes):
        self._codes = codes

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, i: int) -> str:
        return self._codes[i]
