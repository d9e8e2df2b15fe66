"""The vector cache beside a gallery, and a GalleryLookup that follows changes incrementally."""

from __future__ import annotations

import os

import numpy as np
import pytest

from itemrec.edge_runtime import lookup as lookup_module
from itemrec.edge_runtime.gallery import Enrollment, Gallery, GalleryVectors
from itemrec.edge_runtime.lookup import GalleryLookup, Lookup
from itemrec.edge_runtime.spec import ModelSpec
from itemrec.edge_runtime.vector_cache import cache_path

DIM = 16
SPEC = ModelSpec(32, 32, DIM, "test", fingerprint="f" * 64)


def unit_rows(rng, n):
    rows = rng.normal(size=(n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def big(tmp_path, monkeypatch):
    """A 3,000-item gallery (some items with two representatives) that gets the int8 scorer."""
    monkeypatch.setattr(lookup_module, "FAST_MIN_ROWS", 1000)
    monkeypatch.setattr(lookup_module, "DELTA_MIN_ROWS", 50)
    rng = np.random.default_rng(0)
    with Gallery.create(tmp_path / "g.db", SPEC) as g:
        g.enroll_many(
            [
                Enrollment(f"c{i:05d}", f"name {i}", unit_rows(rng, 1 + (i % 7 == 0)))
                for i in range(3000)
            ]
        )
        yield g


def answers(lookup, queries, k=5):
    return [
        [(m.code, m.name, round(m.score, 5)) for m in lookup.identify(q, k).matches]
        for q in queries
    ]


def exact_answers(gallery, queries, k=5):
    vectors = gallery.vectors()
    exact = Lookup(vectors, scorer=None)
    return answers(exact, queries, k)


def test_cache_is_written_then_mapped_and_rebuilt_when_stale(big):
    path = cache_path(big.path)
    first = GalleryLookup(big)
    assert first.cache_state == "written" and path.exists() and first.scorer is not None
    again = GalleryLookup(big)
    assert again.cache_state == "fresh"
    assert isinstance(again.matrix, np.ndarray) and not again.matrix.flags.writeable  # mapped
    queries = unit_rows(np.random.default_rng(1), 10)
    assert answers(again, queries) == answers(first, queries) == exact_answers(big, queries)
    big.enroll("c00001", None, unit_rows(np.random.default_rng(2), 1))
    stale = GalleryLookup(big)
    assert stale.cache_state == "written"
    assert answers(stale, queries) == exact_answers(big, queries)


def test_a_corrupt_or_foreign_cache_is_ignored_and_replaced(big, tmp_path):
    GalleryLookup(big)
    path = cache_path(big.path)
    path.write_bytes(b"ITEMRECV" + os.urandom(500))
    lookup = GalleryLookup(big)
    assert lookup.cache_state == "written"
    other = Gallery.create(tmp_path / "other.db", SPEC)  # another gallery id, same revision 0
    os.replace(path, cache_path(other.path))
    assert GalleryLookup(other).item_count == 0


def test_an_unwritable_folder_costs_the_cache_not_the_answer(big, monkeypatch):
    monkeypatch.setattr("tempfile.mkstemp", lambda **kw: (_ for _ in ()).throw(PermissionError()))
    lookup = GalleryLookup(big)
    assert lookup.cache_state == "unwritable"
    vectors = big.vectors()
    assert lookup.identify(vectors.matrix[5]).item.code == vectors.codes[vectors.item_index[5]]


def test_changes_while_running_are_applied_as_a_delta(big):
    lookup = GalleryLookup(big)
    base = lookup.matrix
    rng = np.random.default_rng(3)
    queries = unit_rows(rng, 20)
    target = queries[0]
    big.enroll("c00010", "renamed", target[np.newaxis])  # an old item gets a new best row
    near = target + 0.1 * unit_rows(rng, 1)
    big.enroll("new", "New item", near / np.linalg.norm(near))
    big.remove("c00020")
    big.set_threshold(0.3)
    assert lookup.refresh()
    assert lookup.matrix is base  # no reload: the cached matrix is still the one mapped
    assert lookup.threshold == 0.3
    assert answers(lookup, queries) == exact_answers(big, queries)
    top = lookup.identify(target, 2).matches
    assert [m.code for m in top] == ["c00010", "new"] and top[0].name == "renamed"
    removed = big.vectors(["c00021"]).matrix[0]
    big.remove("c00021")
    lookup.refresh()
    assert "c00021" not in [m.code for m in lookup.identify(removed, 10).matches]


def test_changes_past_the_delta_limit_reload(big):
    lookup = GalleryLookup(big)
    base = lookup.matrix
    rng = np.random.default_rng(4)
    big.enroll_many([Enrollment(f"n{i}", None, unit_rows(rng, 1)) for i in range(200)])
    assert lookup.refresh() and lookup.matrix is not base
    queries = unit_rows(rng, 10)
    assert answers(lookup, queries) == exact_answers(big, queries)


def test_a_version_1_gallery_is_migrated_and_logs_from_then_on(tmp_path):
    with Gallery.create(tmp_path / "old.db", SPEC) as g:
        g.enroll("a", None, unit_rows(np.random.default_rng(5), 1))
        g._db.execute("DROP TABLE changes")
        g._db.execute("DELETE FROM settings WHERE key IN ('changes_from', 'gallery_id')")
        g._db.execute("UPDATE schema_version SET version = 1")
    before = (tmp_path / "old.db").read_bytes()
    with Gallery.open(tmp_path / "old.db") as g:  # a reader never writes: no migration
        assert g.gallery_id is None and g.changed_since(g.revision) is None  # reload all
        assert g.items()[0].code == "a"
    assert (tmp_path / "old.db").read_bytes() == before
    with Gallery.open(tmp_path / "old.db", write=True) as g:
        revision = g.revision
        assert g.gallery_id and g.changed_since(revision) == set()
        assert g.changed_since(revision - 1) is None  # before the log began: reload all
        g.enroll("b", None, unit_rows(np.random.default_rng(6), 1))
        assert g.changed_since(revision) == {"b"}


def test_vectors_of_some_codes(big):
    some = big.vectors(["c00007", "c00003", "missing"])
    assert some.codes == ["c00003", "c00007"]
    np.testing.assert_array_equal(some.item_index, [0, 1, 1])  # c00007 has two rows
    assert isinstance(some, GalleryVectors)


def test_counts_and_membership_follow_the_changes(big):
    lookup = GalleryLookup(big)
    assert lookup.item_count == 3000 and "c00005" in lookup and "new" not in lookup
    rows = lookup.representative_count
    big.enroll("new", None, unit_rows(np.random.default_rng(7), 2))
    big.enroll("c00005", None, unit_rows(np.random.default_rng(8), 1))  # had one row
    big.remove("c00006")  # had one row
    lookup.refresh()
    assert lookup.item_count == 3000 and "new" in lookup and "c00006" not in lookup
    assert lookup.representative_count == rows + 2 + 1 - 1
    assert lookup.item_count == len(big.items())
