"""The device gallery: items and their representative embeddings in one SQLite file.

Tables: ``schema_version``; ``settings`` (model fingerprint and spec, unknown-item threshold,
a revision counter bumped by every change, a random gallery id); ``items`` (unique code, name,
free-form JSON attributes); ``embeddings`` (several float32 representatives per item, the
source of each and when it was added); ``changes`` (which item codes each revision touched,
NULL for a setting, from schema version 2: a reader that holds revision R reloads only what
changed since). WAL journal; every enrolment is one transaction (a bulk enrolment: one per
batch), so an interrupted one leaves each item absent or complete, never half there.

Opening checks the schema before anything else, and a reader (``Gallery.open(path)``) never
writes: it leaves the journal mode alone and sets ``query_only``, so ``gallery list`` on a
foreign SQLite file changes no byte of it. A writer (``write=True``) then switches to WAL and
brings a version-1 gallery to version 2 (a reader of version 1 just reloads everything).
Every SQLite error becomes one line naming the file: ``GalleryBusyError`` (exit 7) when
another process holds the write lock for more than :data:`BUSY_TIMEOUT_S`, ``GalleryError``
(exit 4) for a corrupt or foreign file, with what to do.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import GalleryBusyError, GalleryError, InputError, ModelError
from itemrec.edge_runtime.files import shown
from itemrec.edge_runtime.gallery_bin import MAX_TEXT_BYTES
from itemrec.edge_runtime.spec import ModelSpec

SCHEMA_VERSION = 2  # 2: the changes log (a writer migrates a version-1 gallery on opening)
#: Seconds a writer waits for another one's lock before ``GalleryBusyError``: an enrolment
#: holds it for one transaction (milliseconds), so 5 s means a stuck or very slow process.
BUSY_TIMEOUT_S = 5.0
_TABLES = {"schema_version", "settings", "items", "embeddings"}

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


def item_code_problem(code: str) -> str | None:
    """Why ``code`` cannot be an item code, or None if it can.

    A code is one line of printable text without white space at either end: ``gallery list``
    prints codes tab-separated, and a blank code could not be told apart from a missing one.
    """
    if not isinstance(code, str) or not code.strip():
        return "an item code must not be empty or blank"
    if not code.isprintable():
        return f"item code '{shown(code)[:60]}' has a tab, newline or other control character"
    if len(code.encode("utf-8")) > MAX_TEXT_BYTES:
        return f"an item code has more than {MAX_TEXT_BYTES} bytes of UTF-8"
    if code != code.strip():
        return f"item code {code!r} starts or ends with white space"
    return None


def item_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an item name, or None: one printable line that fits the
    Android gallery's length field (:data:`~itemrec.edge_runtime.gallery_bin.MAX_TEXT_BYTES`)."""
    if not isinstance(name, str) or not name.strip():
        return "an item name must not be empty or blank"
    if not name.isprintable():
        return f"item name '{shown(name)[:60]}' has a tab, newline or other control character"
    if len(name.encode("utf-8")) > MAX_TEXT_BYTES:
        return f"an item name has more than {MAX_TEXT_BYTES} bytes of UTF-8"
    return None


def check_item_code(code: str) -> str:
    """``code`` if it can be an item code (:func:`item_code_problem`), else ``InputError``."""
    problem = item_code_problem(code)
    if problem:
        raise InputError(problem)
    return code


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
            raise InputError(f"{shown(path)} already exists; remove it or use 'gallery add'")
        with _sqlite_errors(path):
            gallery = cls(path, _connect(path, "rwc"))
            gallery._configure_writer()
            with gallery._transaction():
                for statement in filter(str.strip, (_SCHEMA + _CHANGES).split(";")):
                    gallery._db.execute(statement)
                gallery._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                gallery._set("fingerprint", spec.fingerprint)
                gallery._set("spec", spec.to_json())
                gallery._set("revision", "0")
                gallery._set("gallery_id", uuid.uuid4().hex)
                gallery._set("changes_from", "0")
        return gallery

    @classmethod
    def open(cls, path: str | Path, *, write: bool = False) -> Gallery:
        """Open an existing gallery to read it, or to change it with ``write=True``.

        A missing, corrupt or foreign file raises ``GalleryError``, a locked one
        ``GalleryBusyError``; neither is written to.
        """
        path = Path(path)
        if not path.exists():
            raise GalleryError(
                f"gallery {shown(path)} does not exist; create it with 'gallery build'"
            )
        if not path.is_file():
            raise GalleryError(f"gallery {shown(path)} is not a regular file")
        with _sqlite_errors(path):
            gallery = cls(path, _connect(path, "rw"))
            try:
                version = gallery._check_schema()
                if write:
                    gallery._configure_writer()
                    if version < 2:
                        gallery._add_changes_log()
                else:
                    gallery._db.execute("PRAGMA query_only=ON")
            except BaseException:
                gallery.close()
                raise
        return gallery

    def _check_schema(self) -> int:
        """Refuse a SQLite file that is not an itemrec gallery this version can read; return
        its schema version."""
        self._db.execute("PRAGMA foreign_keys=ON")
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if not _TABLES <= tables:
            missing = ", ".join(sorted(_TABLES - tables))
            raise GalleryError(
                f"{shown(self.path)} is a SQLite file but not an itemrec gallery "
                f"(no table {missing})"
            )
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is None or not isinstance(row[0], int) or row[0] > SCHEMA_VERSION:
            found = "no" if row is None else repr(row[0])
            raise GalleryError(
                f"{shown(self.path)} has schema version {found}; this itemrec reads up to "
                f"{SCHEMA_VERSION}"
            )
        return row[0]

    def _add_changes_log(self) -> None:
        """Version 1 -> 2: start logging changes from the current revision on."""
        with self._transaction():
            for statement in filter(str.strip, _CHANGES.split(";")):
                self._db.execute(statement)
            self._db.execute("UPDATE schema_version SET version = 2")
            self._set("changes_from", str(self.revision))
            if self._get("gallery_id") is None:
                self._set("gallery_id", uuid.uuid4().hex)

    def _configure_writer(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the main file (before copying or renaming it)."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
        value = self._get("revision")
        try:
            return int(value or 0)
        except (TypeError, ValueError):
            raise self._bad_setting("revision", value, "an integer") from None

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
        if value is None:
            return None
        try:
            threshold = float(value)
        except (TypeError, ValueError):
            threshold = math.nan
        if not -1.0 <= threshold <= 1.0:  # also false for nan
            raise self._bad_setting("threshold", value, "a cosine in [-1, 1]")
        return threshold

    def _bad_setting(self, key: str, value, expected: str) -> GalleryError:
        return GalleryError(
            f"{shown(self.path)}: setting {key!r} is {str(value)[:40]!r}, not {expected}; "
            f"fix it with 'itemrec-edge gallery set-threshold' or rebuild the gallery"
        )

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
                        (item_id, v.tobytes(), _storable(source), added)
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
        check_item_code(e.code)
        if e.name and item_name_problem(e.name):
            raise InputError(item_name_problem(e.name))
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
                raise InputError(f"no item with code {code!r} in {shown(self.path)}")
            self._bump_revision([code])

    def items(self) -> list[Item]:
        rows = self._db.execute(
            "SELECT code, name, attributes, (SELECT COUNT(*) FROM embeddings e"
            " WHERE e.item_id = items.id) FROM items ORDER BY code"
        ).fetchall()
        return [Item(code, name, self._attributes(code, attrs), n) for code, name, attrs, n in rows]

    def _attributes(self, code: str, text) -> dict:
        try:
            attributes = json.loads(text)
        except (TypeError, ValueError):
            attributes = None
        if not isinstance(attributes, dict):
            raise GalleryError(
                f"{shown(self.path)}: the attributes of item {code!r} are not a JSON object "
                f"({str(text)[:40]!r}); fix or remove the item"
            )
        return attributes

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
        if not all(isinstance(vector, bytes) and len(vector) == 4 * dim for _, vector in rows):
            raise GalleryError(
                f"{shown(self.path)}: a stored vector does not have {dim} float32 values; "
                "rebuild it from the images with 'itemrec-edge gallery build'"
            )
        blob = b"".join(vector for _, vector in rows)
        matrix = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), dim).copy()
        item_index = np.fromiter((position[i] for i, _ in rows), dtype=np.int64, count=len(rows))
        return GalleryVectors(
            matrix, item_index, [c for _, c, _ in items], [n for _, _, n in items]
        )

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _storable(source: str | None) -> str | None:
    """``source`` as valid UTF-8: a file name's undecodable bytes become ``\\xNN`` escapes."""
    if source is None:
        return None
    return os.fsencode(source).decode("utf-8", "backslashreplace")


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """A connection to ``path`` (``mode``: SQLite's ``rw`` or ``rwc``) that reports errors
    as :class:`GalleryError`; the path is quoted, so ``#``, ``?`` and ``%`` in it are safe."""
    uri = "file:" + urllib.parse.quote(os.fspath(path.absolute())) + f"?mode={mode}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, factory=_Connection)
    db.gallery_path = path
    db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return db


#: SQLite's primary result codes that get their own message.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26


class _sqlite_errors:  # noqa: N801  (used like a function: ``with _sqlite_errors(path):``)
    """Turn SQLite's errors inside the block into one-line ``GalleryError``s naming ``path``."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, err, tb):
        if exc_type is None or not issubclass(exc_type, sqlite3.DatabaseError):
            return False
        if issubclass(exc_type, sqlite3.ProgrammingError):
            return False  # our bug, not the file's
        reason = str(err) or exc_type.__name__
        code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
        primary = code & 0xFF if code is not None else _code_from_message(reason)
        name = shown(self.path)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            raise GalleryBusyError(
                f"{name}: busy, retry: another process has held it for more than "
                f"{BUSY_TIMEOUT_S:g} s ({reason})"
            ) from None
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            what = "corrupt" if primary == _SQLITE_CORRUPT else "corrupt or not a gallery"
            raise GalleryError(
                f"{name}: {what} ({reason}): rebuild from the images with "
                "'itemrec-edge gallery build'"
            ) from None
        raise GalleryError(f"{name}: {reason}") from None


def _code_from_message(message: str) -> int | None:
    """Python 3.10 has no ``sqlite_errorcode``: SQLite's fixed messages stand in for it."""
    for code, text in (
        (_SQLITE_BUSY, "database is locked"),
        (_SQLITE_LOCKED, "database table is locked"),
        (_SQLITE_CORRUPT, "malformed"),
        (_SQLITE_NOTADB, "not a database"),
    ):
        if text in message:
            return code
    return None


class _Cursor(sqlite3.Cursor):
    """A cursor whose statements and fetches report SQLite errors as ``GalleryError``."""

    def execute(self, *args):
        with _sqlite_errors(self.connection.gallery_path):
            return super().execute(*args)

    def executemany(self, *args):
        with _sqlite_errors(self.connection.gallery_path):
            return super().executemany(*args)

    def fetchone(self):
        with _sqlite_errors(self.connection.gallery_path):
            return super().fetchone()

    def fetchmany(self, *args):
        with _sqlite_errors(self.connection.gallery_path):
            return super().fetchmany(*args)

    def fetchall(self):
        with _sqlite_errors(self.connection.gallery_path):
            return super().fetchall()

    def __next__(self):
        with _sqlite_errors(self.connection.gallery_path):
            return super().__next__()


class _Connection(sqlite3.Connection):
    """The gallery's connection: every cursor is a :class:`_Cursor`."""

    gallery_path = Path("gallery.db")

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, *args):
        return self.cursor().execute(*args)

    def executemany(self, *args):
        return self.cursor().executemany(*args)

    def close(self):
        with _sqlite_errors(self.gallery_path):
            super().close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
