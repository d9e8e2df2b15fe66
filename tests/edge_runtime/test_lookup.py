"""Nearest-representative lookup on constructed embeddings with hand-worked answers."""

from __future__ import annotations

import numpy as np
import pytest

from itemrec.edge_runtime.gallery import GalleryVectors
from itemrec.edge_runtime.lookup import Lookup


def unit(*values):
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def constructed(threshold=None) -> Lookup:
    """Items a (two representatives), b, c (one each) in 3-D."""
    matrix = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0.6, 0.8, 0), unit(0, 0, 1)])
    vectors = GalleryVectors(matrix, np.array([0, 0, 1, 2]), ["a", "b", "c"], ["A", "B", "C"])
    return Lookup(vectors, threshold)


def test_item_score_is_its_best_representative_and_order_is_exact():
    lookup = constructed()
    query = unit(0, 0.8, 0.6)
    # a: max(0, 0.8) = 0.8; b: 0.6*0 + 0.8*0.8 = 0.64; c: 0.6.
    np.testing.assert_allclose(lookup.item_scores(query)[0], [0.8, 0.64, 0.6], atol=1e-6)
    result = lookup.identify(query, k=3)
    assert [m.code for m in result.matches] == ["a", "b", "c"]
    assert [m.name for m in result.matches] == ["A", "B", "C"]
    assert result.item.code == "a"
    assert [m.code for m in lookup.identify(unit(0, 0.1, 1), k=2).matches] == ["c", "a"]


def test_threshold_turns_a_weak_best_match_into_unknown():
    lookup = constructed(threshold=0.9)
    weak = lookup.identify(unit(1, 1, 1), k=1)  # best 0.6*0.577+0.8*0.577 = 0.808
    assert weak.item is None and weak.matches[0].code == "b"
    assert weak.to_dict()["code"] is None
    assert weak.matches[0].score == pytest.approx(1.4 / np.sqrt(3), abs=1e-6)
    strong = lookup.identify(unit(0.1, 1, 0), k=1)
    assert strong.item.code == "a" and strong.item.score >= 0.9


def test_ties_are_broken_by_item_order_and_k_is_capped():
    lookup = constructed()
    result = lookup.identify(unit(1, 0, 1), k=10)  # a and c tie at 0.7071
    assert [m.code for m in result.matches] == ["a", "c", "b"]
    assert result.matches[0].score == pytest.approx(result.matches[1].score)


def test_empty_gallery_answers_unknown():
    empty = Lookup(GalleryVectors(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), [], []))
    result = empty.identify(unit(1, 0, 0))
    assert result.matches == [] and result.item is None


def test_large_random_gallery_matches_brute_force():
    rng = np.random.default_rng(3)
    items, dim = 500, 32
    item_index = np.sort(rng.integers(0, items, 1500))
    item_index[:items] = np.arange(items)  # every item has at least one representative
    item_index.sort()
    matrix = rng.normal(size=(len(item_index), dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    codes = [f"item{i:04d}" for i in range(items)]
    lookup = Lookup(GalleryVectors(matrix, item_index, codes, codes))
    queries = rng.normal(size=(20, dim)).astype(np.float32)
    scores, indices = lookup.top_k_indices(queries, 7)
    for q, row_scores, row_indices in zip(queries, scores, indices, strict=True):
        per_vector = matrix @ q
        best = np.array([per_vector[item_index == i].max() for i in range(items)])
        expected = np.argsort(-best, kind="stable")[:7]
        np.testing.assert_array_equal(row_indices, expected)
        np.testing.assert_allclose(row_scores, best[expected], atol=1e-5)


def test_representatives_must_be_grouped_by_item():
    with pytest.raises(ValueError, match="grouped by item"):
        Lookup(
            GalleryVectors(np.eye(3, dtype=np.float32), np.array([1, 0, 1]), ["a", "b"], ["a", "b"])
        )
