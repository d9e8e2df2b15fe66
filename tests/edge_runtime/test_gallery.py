"""The SQLite gallery: storage, grouping, threshold, refusals and crash safety."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from itemrec.edge_runtime.errors import GalleryBusyError, GalleryError, InputError
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.lookup import GalleryLookup
from itemrec.edge_runtime.spec import ModelSpec

SPEC = ModelSpec(32, 32, 3, "test", fingerprint="f" * 64)


def rows(*vectors):
    return np.asarray(vectors, np.float32)


@pytest.fixture
def gallery(tmp_path):
    with Gallery.create(tmp_path / "g.db", SPEC) as g:
        g.enroll("b", "Bread", rows([0, 1, 0]), ["b1.jpg"], {"shelf": 3})
        g.enroll("a", None, rows([1, 0, 0], [0.6, 0.8, 0]))
        yield g


def test_vectors_are_grouped_by_item_in_code_order(gallery):
    gallery.enroll("b", None, rows([0, 0, 1]))  # a third representative, added later
    v = gallery.vectors()
    assert v.codes == ["a", "b"] and v.names == ["a", "Bread"]  # no name: the code
    np.testing.assert_array_equal(v.item_index, [0, 0, 1, 1])
    np.testing.assert_array_equal(v.matrix, rows([1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]))
    assert v.matrix.dtype == np.float32 and v.matrix.flags.c_contiguous
    items = {i.code: i for i in gallery.items()}
    assert items["b"].representatives == 2 and items["b"].attributes == {"shelf": 3}


def test_wal_schema_version_and_reopen(gallery, tmp_path):
    gallery.close()
    db = sqlite3.connect(tmp_path / "g.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == 2
    db.close()
    with Gallery.open(tmp_path / "g.db") as again:
        assert again.spec == SPEC and again.fingerprint == "f" * 64
        assert [i.code for i in again.items()] == ["a", "b"]


def test_remove_threshold_and_revision(gallery):
    start = gallery.revision
    gallery.set_threshold(0.75)
    assert gallery.threshold == 0.75
    gallery.remove("a")
    assert [i.code for i in gallery.items()] == ["b"]
    assert len(gallery.vectors().matrix) == 1  # representatives went with the item
    assert gallery.revision == start + 2
    with pytest.raises(InputError, match="no item with code 'zz'"):
        gallery.remove("zz")
    for bad in (1.5, float("nan")):
        with pytest.raises(InputError, match=r"\[-1, 1\]"):
            gallery.set_threshold(bad)
    gallery.set_threshold(None)
    assert gallery.threshold is None


def test_lookup_refreshes_when_the_gallery_changes(gallery):
    lookup = GalleryLookup(gallery)
    assert lookup.identify(rows([0, 0, 1])[0]).matches[0].code in ("a", "b")
    assert not lookup.refresh()
    gallery.enroll("c", "Coffee", rows([0, 0, 1]))
    gallery.set_threshold(0.5)
    assert lookup.refresh()
    result = lookup.identify(rows([0, 0.6, 0.8])[0])
    assert result.item.code == "c" and result.item.score == pytest.approx(0.8)
    assert lookup.threshold == 0.5
    assert GalleryLookup(gallery, threshold=0.9).threshold == 0.9  # an override wins


def test_a_failed_enrolment_leaves_nothing(gallery):
    before = gallery.revision
    with pytest.raises(GalleryError, match="2 vectors but 1 sources"):
        gallery.enroll("d", "D", rows([1, 0, 0], [0, 1, 0]), ["only-one.jpg"])
    with pytest.raises(GalleryError, match="N x 3 vectors"):
        gallery.enroll("d", "D", rows([1, 0]))
    assert "d" not in [i.code for i in gallery.items()] and gallery.revision == before


def test_another_model_is_refused_with_the_way_to_rebuild(gallery):
    gallery.check_model("f" * 64)
    with pytest.raises(GalleryError, match="rebuild it with 'itemrec-edge gallery build"):
        gallery.check_model("e" * 64, "other.tflite")


def test_missing_corrupt_and_foreign_files(tmp_path, gallery):
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery.open(tmp_path / "nope.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(
        GalleryError, match="junk.db: corrupt or not a gallery .*rebuild from the images"
    ):
        Gallery.open(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(GalleryError, match="other.db is a SQLite file but not an itemrec gallery"):
        Gallery.open(other)
    gallery._db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(GalleryError, match="schema version 99"):
        Gallery.open(gallery.path)
    with pytest.raises(InputError, match="already exists"):
        Gallery.create(gallery.path, SPEC)


# Enrols one item of COUNT random vectors through the real Gallery API, in one transaction.
ENROL_MANY = """
import sys, numpy as np
from itemrec.edge_runtime.gallery import Gallery
with Gallery.open(sys.argv[1], write=True) as g:
    vectors = np.random.default_rng(0).normal(size=(int(sys.argv[2]), g.spec.embedding_size))
    g.enroll("BIG", "Big", vectors.astype(np.float32))
"""
BIG_ITEM = 300_000  # 300k x 3 float32 rows: ~30 MB of pages written to the WAL before COMMIT


@pytest.mark.parametrize("kill_after_mb", [2, 6, 12])
def test_enrolment_killed_inside_its_transaction_leaves_the_gallery_intact(tmp_path, kill_after_mb):
    """SIGKILL a real enrolment while its transaction is writing: the item is absent, the DB ok.

    The write-ahead log grows only while the enrolment's transaction writes its pages (the
    commit comes last), so a kill once it has grown past a few MB lands inside it.
    """
    db_path = tmp_path / "g.db"
    with Gallery.create(db_path, SPEC) as g:
        g.enroll("a", "Apple", rows([1, 0, 0]))
    wal = db_path.with_name(db_path.name + "-wal")
    start = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen([sys.executable, "-c", ENROL_MANY, str(db_path), str(BIG_ITEM)])
    try:
        deadline = time.monotonic() + 60
        while wal_size(wal) - start < kill_after_mb * 1e6:
            assert proc.poll() is None, "the enrolment finished before the kill"
            assert time.monotonic() < deadline, "the write-ahead log did not grow"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
    with Gallery.open(db_path) as g:
        assert g.integrity_ok()
        assert [(i.code, i.representatives) for i in g.items()] == [("a", 1)]
    # The same enrolment, not interrupted, is complete.
    subprocess.run([sys.executable, "-c", ENROL_MANY, str(db_path), "1000"], check=True)
    with Gallery.open(db_path) as g:
        assert [(i.code, i.representatives) for i in g.items()] == [("BIG", 1000), ("a", 1)]


def wal_size(path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_held_write_lock_is_busy_retry_for_writers_only(gallery, monkeypatch):
    gallery.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(gallery.path)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        monkeypatch.setattr("itemrec.edge_runtime.gallery.BUSY_TIMEOUT_S", 0.2)
        with Gallery.open(gallery.path) as reader:  # WAL: readers are never blocked
            assert [i.code for i in reader.items()] == ["a", "b"]
        with Gallery.open(gallery.path, write=True) as writer:
            with pytest.raises(GalleryBusyError, match=r"g\.db: busy, retry"):
                writer.enroll("c", "C", rows([0, 0, 1]))
    finally:
        holder.kill()
        holder.wait()
    with Gallery.open(gallery.path, write=True) as writer:  # free again
        assert writer.enroll("c", "C", rows([0, 0, 1])) == 1


def file_state(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_reading_changes_no_byte_and_leaves_no_journal(gallery, tmp_path):
    gallery.close()
    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)  # rollback journal: WAL would rewrite its header
    db.execute("CREATE TABLE customers (name TEXT)")
    db.commit()
    db.close()
    before = file_state(tmp_path)
    with Gallery.open(gallery.path) as reader:
        reader.items(), reader.vectors(), reader.threshold, reader.revision
    for write in (False, True):
        with pytest.raises(GalleryError, match="not an itemrec gallery"):
            Gallery.open(foreign, write=write)
    assert file_state(tmp_path) == before


def test_a_reader_cannot_write(gallery):
    gallery.close()
    with Gallery.open(gallery.path) as reader:
        with pytest.raises(GalleryError, match="readonly"):
            reader.set_threshold(0.5)


def test_codes_and_names_are_one_printable_line(gallery):
    for code in ("", "   ", "a\tb", "a\nb", " a"):
        with pytest.raises(InputError, match="item code"):
            gallery.enroll(code, None, rows([1, 0, 0]))
    with pytest.raises(InputError, match="item name"):
        gallery.enroll("c", "two\nlines", rows([1, 0, 0]))
    assert [i.code for i in gallery.items()] == ["a", "b"]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("threshold", "high", "setting 'threshold' is 'high'"),
        ("threshold", "nan", "setting 'threshold'"),
        ("revision", "x", "setting 'revision' is 'x'"),
    ],
)
def test_hand_edited_settings_name_the_file(gallery, key, value, message):
    gallery._set(key, value)  # as a hand edit with the sqlite3 shell would
    with pytest.raises(GalleryError, match=f"g.db: {message}"):
        getattr(gallery, key)
