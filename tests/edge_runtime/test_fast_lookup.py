"""The int8 scorer path of the lookup returns exactly the top-k of exact search."""

from __future__ import annotations

import numpy as np
import pytest

from itemrec.edge_runtime import lookup as lookup_module
from itemrec.edge_runtime.gallery import GalleryVectors
from itemrec.edge_runtime.lookup import Lookup
from itemrec.edge_runtime.scorer import Int8Scorer


def unit_rows(rng, n, dim):
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def both(matrix, item_index, items):
    """The same gallery twice: exact products only, and through the int8 scorer."""
    codes = [f"i{j:05d}" for j in range(items)]
    vectors = GalleryVectors(matrix, np.asarray(item_index), codes, codes)
    exact = Lookup(vectors, scorer=None)
    fast = Lookup(vectors, scorer=Int8Scorer.build(matrix))
    return exact, fast


def assert_same_top_k(exact, fast, queries, ks=(1, 5, 10)):
    for k in ks:
        for q in queries:
            want_scores, want = exact.top_k_indices(q, k)
            got_scores, got = fast.top_k_indices(q, k)
            np.testing.assert_array_equal(got, want)
            # Products of gathered rows may round the last bit differently from the full one.
            np.testing.assert_allclose(got_scores, want_scores, rtol=0, atol=1e-6)


def test_scorer_error_stays_within_its_bound():
    rng = np.random.default_rng(0)
    matrix = unit_rows(rng, 5000, 64)
    scorer = Int8Scorer.build(matrix)
    for q in unit_rows(rng, 20, 64):
        error = np.abs(scorer.scores(q) - matrix @ q).max()
        assert 0 < error <= scorer.bound(q)
        assert scorer.bound(q) < 0.05  # tight enough to leave few rows to re-rank


def test_random_gallery_with_several_representatives_per_item():
    rng = np.random.default_rng(1)
    items = 2000
    item_index = np.sort(np.concatenate([np.arange(items), rng.integers(0, items, 4000)]))
    matrix = unit_rows(rng, len(item_index), 48)
    exact, fast = both(matrix, item_index, items)
    near = matrix[rng.integers(0, len(matrix), 30)] + 0.5 * unit_rows(rng, 30, 48)
    queries = np.concatenate([unit_rows(rng, 30, 48), near / np.linalg.norm(near, axis=1)[:, None]])
    assert_same_top_k(exact, fast, queries)


def test_ties_go_to_the_lower_item_index():
    # Quarter-valued vectors: every product is exact in float32, so ties are exact ties.
    rng = np.random.default_rng(2)
    base = rng.integers(-4, 5, size=(600, 16)).astype(np.float32) / 4
    base[0] = 0.5
    matrix = np.concatenate([base, base[:300]])  # items 600..899 copy items 0..299
    item_index = np.arange(len(matrix))
    item_index[-1] = item_index[-2]  # and the last item holds two tied representatives
    exact, fast = both(matrix, item_index, len(matrix) - 1)
    queries = np.concatenate([base[:20], np.full((1, 16), 0.25, np.float32)])
    assert_same_top_k(exact, fast, queries, ks=(1, 2, 3, 7))
    _, top = fast.top_k_indices(base[0], 2)
    assert list(top[0]) == [0, 600]  # equal scores: item 0 before its copy


def test_one_item_filling_the_best_blocks_falls_back_and_stays_exact():
    rng = np.random.default_rng(3)
    query = unit_rows(rng, 1, 32)[0]
    crowd = query + 0.05 * rng.normal(size=(1500, 32)).astype(np.float32)  # all of item 0
    crowd /= np.linalg.norm(crowd, axis=1, keepdims=True)
    matrix = np.concatenate([crowd, unit_rows(rng, 3000, 32)])
    item_index = np.concatenate([np.zeros(1500, int), np.arange(1, 3001)])
    exact, fast = both(matrix, item_index, 3001)
    assert_same_top_k(exact, fast, [query], ks=(1, 5, 20))


def test_large_galleries_get_a_scorer_small_ones_do_not(monkeypatch):
    rng = np.random.default_rng(4)
    codes = [str(i) for i in range(300)]
    vectors = GalleryVectors(unit_rows(rng, 300, 8), np.arange(300), codes, codes)
    assert Lookup(vectors).scorer is None
    monkeypatch.setattr(lookup_module, "FAST_MIN_ROWS", 100)
    assert isinstance(Lookup(vectors).scorer, Int8Scorer)


@pytest.mark.parametrize("threads", [1, 2])
def test_scorer_runs_with_threads(threads):
    matrix = unit_rows(np.random.default_rng(5), 1000, 16)
    scorer = Int8Scorer.build(matrix, threads=threads)
    assert scorer.scores(matrix[3]).shape == (1000,)
    assert int(np.argmax(scorer.scores(matrix[3]))) == 3
