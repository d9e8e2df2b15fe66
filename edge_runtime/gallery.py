"""The device gallery: items and their representative embeddings in one SQLite file.

Tables: ``schema_version``; ``settings`` (model fingerprint and spec, unknown-item threshold,
a revision counter bumped by every change, a random gallery id); ``items`` (unique code, name,
free-form JSON attributes); ``embeddings`` (several float32 representatives per item, the
source of each and when it was added); ``changes`` (which item codes each revision touched,
NULL for a setting, from schema version 2: a reader that holds revision R reloads only what
changed since). WAL journal; every enrolment is one transaction (a bulk enrolment: one per
batch), so an interrupted one leaves each item absent or complete, never half there.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import GalleryError, InputError, ModelError
from itemrec.edge_runtime.spec import ModelSpec

SCHEMA_VERSION = 2  # 2: the changes log (a version-1 gallery is migrated on opening)

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    source TEXT,
    added_at TEXT NOT NULL
);
CREATE INDEX embeddings_item ON embeddings(item_id);
"""
# The log is written in the same transaction as the change it records.
_CHANGES = """
CREATE TABLE IF NOT EXISTS changes (revision INTEGER NOT NULL, code TEXT);
CREATE INDEX IF NOT EXISTS changes_revision ON changes(revision);
"""


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    attributes: dict
    representatives: int


@dataclass(frozen=True)
class GalleryVectors:
    """Every representative, grouped by item: ``matrix[i]`` belongs to ``codes[item_index[i]]``."""

    matrix: np.ndarray  # V x D float32, C-contiguous, rows of one item adjacent
    item_index: np.ndarray  # V int64, non-decreasing
    codes: list[str]
    names: list[str]


@dataclass(frozen=True)
class Enrollment:
    """One item's new representatives for ``Gallery.enroll_many``."""

    code: str
    name: str | None
    vectors: np.ndarray  # N x D float32
    sources: list[str | None] | None = None
    attributes: dict | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Gallery:
    """A connection to one ``gallery.db``; use ``Gallery.create`` or ``Gallery.open``."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, spec: ModelSpec) -> Gallery:
        """Create a new empty gallery for the model described by ``spec`` (with fingerprint)."""
        path = Path(path)
        if spec.fingerprint is None:
            raise GalleryError("a gallery needs the model's fingerprint")
        if path.exists():
            raise InputError(f"{path} already exists; remove it or use 'gallery add'")
        try:
            db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as err:
            raise GalleryError(f"cannot create gallery {path}: {err}") from None
        gallery = cls(path, db)
        gallery._configure()
        with gallery._transaction():
            for statement in filter(str.strip, (_SCHEMA + _CHANGES).split(";")):
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            gallery._set("fingerprint", spec.fingerprint)
            gallery._set("spec", spec.to_json())
            gallery._set("revision", "0")
            gallery._set("gallery_id", uuid.uuid4().hex)
            gallery._set("changes_from", "0")
        return gallery

    @classmethod
    def open(cls, path: str | Path) -> Gallery:
        """Open an existing gallery; a missing, corrupt or foreign file raises ``GalleryError``."""
        path = Path(path)
        if not path.is_file():
            raise GalleryError(f"gallery {path} does not exist; create it with 'gallery build'")
        try:
            db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
            gallery = cls(path, db)
            gallery._configure()
            row = db.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.DatabaseError as err:
            raise GalleryError(f"{path} is not a readable itemrec gallery ({err})") from None
        if row is None or row[0] > SCHEMA_VERSION:
            found = "no" if row is None else row[0]
            raise GalleryError(
                f"{path} has schema version {found}; this itemrec reads up to {SCHEMA_VERSION}"
            )
        if row[0] < 2:
            gallery._add_changes_log()
        return gallery

    def _add_changes_log(self) -> None:
        """Version 1 -> 2: start logging changes from the current revision on."""
        with self._transaction():
            for statement in filter(str.strip, _CHANGES.split(";")):
                self._db.execute(statement)
            self._db.execute("UPDATE schema_version SET version = 2")
            self._set("changes_from", str(self.revision))
            if self._get("gallery_id") is None:
                self._set("gallery_id", uuid.uuid4().hex)

    def _configure(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self._db)

    # -- settings --------------------------------------------------------------------------
    def _get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set(self, key: str, value: str | None) -> None:
        self._db.execute(
            "INSERT INTO settings VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _bump_revision(self, codes=(None,)) -> None:
        """Count one change and log the item ``codes`` it touched (None: a setting)."""
        self._db.execute(
            "UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'"
        )
        revision = self.revision
        self._db.executemany(
            "INSERT INTO changes (revision, code) VALUES (?, ?)", [(revision, c) for c in codes]
        )

    @property
    def fingerprint(self) -> str:
        return self._get("fingerprint")

    @property
    def spec(self) -> ModelSpec:
        try:
            return ModelSpec.from_json(self._get("spec") or "")
        except ModelError as err:
            raise GalleryError(f"{self.path}: stored model spec is unreadable: {err}") from None

    @property
    def revision(self) -> int:
        """A counter that changes whenever items, representatives or the threshold change."""
        return int(self._get("revision") or 0)

    @property
    def gallery_id(self) -> str | None:
        """A random id given at creation: two galleries never share it."""
        return self._get("gallery_id")

    def changed_since(self, revision: int) -> set[str | None] | None:
        """The item codes changed after ``revision`` (None in the set: a setting changed);
        None when the log does not reach back that far (then reload everything)."""
        start = self._get("changes_from")
        if start is None or revision < int(start) or revision > self.revision:
            return None
        rows = self._db.execute(
            "SELECT DISTINCT code FROM changes WHERE revision > ?", (revision,)
        ).fetchall()
        return {code for (code,) in rows}

    @property
    def threshold(self) -> float | None:
        """The cosine below which an answer is "unknown"; None until one is calibrated or set."""
        value = self._get("threshold")
        return None if value is None else float(value)

    def set_threshold(self, value: float | None) -> None:
        if value is not None and not -1.0 <= value <= 1.0:
            raise InputError(f"a cosine threshold lies in [-1, 1], got {value}")
        with self._transaction():
            self._set("threshold", None if value is None else repr(float(value)))
            self._bump_revision()

    def check_model(self, fingerprint: str, model_path: str | Path = "the model") -> None:
        """Refuse a model other than the one that made this gallery's embeddings."""
        if fingerprint != self.fingerprint:
            raise GalleryError(
                f"{model_path} (fingerprint {fingerprint[:12]}) did not make the embeddings in "
                f"{self.path} (fingerprint {(self.fingerprint or '?')[:12]}); rebuild it with "
                f"'itemrec-edge gallery build --model {model_path} --images DIR --db NEW.db'"
            )

    # -- items -----------------------------------------------------------------------------
    def enroll(
        self,
        code: str,
        name: str | None,
        vectors: np.ndarray,
        sources: list[str | None] | None = None,
        attributes: dict | None = None,
    ) -> int:
        """Add representatives to item ``code`` (created if new) in one transaction.

        ``name``/``attributes`` replace the stored ones when given. Returns the item's
        representative count afterwards.
        """
        return self.enroll_many([Enrollment(code, name, vectors, sources, attributes)])[0]

    def enroll_many(self, enrollments: list[Enrollment]) -> list[int]:
        """``enroll`` several items in one transaction (all or none); their counts afterwards.

        One transaction per item costs a disk sync each: 100,000 items took 136 s that way.
        """
        checked = [self._checked(e) for e in enrollments]
        if not checked:
            return []
        added = _now()
        counts = []
        with self._transaction():
            for e, vectors, sources in checked:
                item_id = self._upsert_item(e)
                self._db.executemany(
                    "INSERT INTO embeddings (item_id, vector, source, added_at)"
                    " VALUES (?, ?, ?, ?)",
                    [
                        (item_id, v.tobytes(), source, added)
                        for v, source in zip(vectors, sources, strict=True)
                    ],
                )
                counts.append(
                    self._db.execute(
                        "SELECT COUNT(*) FROM embeddings WHERE item_id = ?", (item_id,)
                    ).fetchone()[0]
                )
            self._bump_revision([e.code for e, _, _ in checked])
        return counts

    def _checked(self, e: Enrollment):
        vectors = np.ascontiguousarray(e.vectors, dtype=np.float32)
        dim = self._embedding_size
        if vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) == 0:
            raise GalleryError(f"enrolment needs N x {dim} vectors, got shape {vectors.shape}")
        if not e.code:
            raise InputError("an item code must not be empty")
        sources = list(e.sources) if e.sources is not None else [None] * len(vectors)
        if len(sources) != len(vectors):
            raise GalleryError(f"{len(vectors)} vectors but {len(sources)} sources")
        return e, vectors, sources

    @property
    def _embedding_size(self) -> int:
        if not hasattr(self, "_dim"):
            self._dim = self.spec.embedding_size
        return self._dim

    def _upsert_item(self, e: Enrollment) -> int:
        row = self._db.execute("SELECT id FROM items WHERE code = ?", (e.code,)).fetchone()
        if row is None:
            cursor = self._db.execute(
                "INSERT INTO items (code, name, attributes) VALUES (?, ?, ?)",
                (e.code, e.name or e.code, json.dumps(e.attributes or {})),
            )
            return cursor.lastrowid
        item_id = row[0]
        if e.name:
            self._db.execute("UPDATE items SET name = ? WHERE id = ?", (e.name, item_id))
        if e.attributes is not None:
            self._db.execute(
                "UPDATE items SET attributes = ? WHERE id = ?", (json.dumps(e.attributes), item_id)
            )
        return item_id

    def remove(self, code: str) -> None:
        """Delete an item and all its representatives."""
        with self._transaction():
            cursor = self._db.execute("DELETE FROM items WHERE code = ?", (code,))
            if cursor.rowcount == 0:
                raise InputError(f"no item with code {code!r} in {self.path}")
            self._bump_revision([code])

    def items(self) -> list[Item]:
        rows = self._db.execute(
            "SELECT code, name, attributes, (SELECT COUNT(*) FROM embeddings e"
            " WHERE e.item_id = items.id) FROM items ORDER BY code"
        ).fetchall()
        return [Item(code, name, json.loads(attrs), n) for code, name, attrs, n in rows]

    def vectors(self, codes: list[str] | None = None) -> GalleryVectors:
        """All representatives (or those of ``codes``) as one contiguous float32 matrix,
        grouped by item in code order. Unknown codes are left out."""
        dim = self.spec.embedding_size
        if codes is None:
            where, params = "", ()
        else:
            where = " WHERE i.code IN (SELECT value FROM json_each(?))"
            params = (json.dumps(sorted(set(codes))),)
        items = self._db.execute(
            "SELECT i.id, i.code, i.name FROM items i" + where + " ORDER BY i.code", params
        ).fetchall()
        position = {item_id: i for i, (item_id, _, _) in enumerate(items)}
        rows = self._db.execute(
            "SELECT e.item_id, e.vector FROM embeddings e JOIN items i ON i.id = e.item_id"
            + where
            + " ORDER BY i.code, e.id",
            params,
        ).fetchall()
        blob = b"".join(vector for _, vector in rows)
        if len(blob) != 4 * dim * len(rows):
            raise GalleryError(f"{self.path}: a stored vector does not have {dim} float32 values")
        matrix = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), dim).copy()
        item_index = np.fromiter((position[i] for i, _ in rows), dtype=np.int64, count=len(rows))
        return GalleryVectors(
            matrix, item_index, [c for _, c, _ in items], [n for _, _, n in items]
        )

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
