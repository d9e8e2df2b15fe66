"""Turn images or precomputed vectors into gallery representatives.

Images come from files (``gallery build`` walks ``ROOT/<code>/<images>``, ``gallery add`` and
``enroll IMAGES...`` take a list) or from the camera (``enroll --camera 0 --shots 5``).
Unreadable images are skipped and reported, never fatal. With ``augment=K`` each photo
also adds K augmented views of itself (``edge_runtime.augment``) as representatives.
``gallery import`` takes vectors already computed with the gallery's model from an ``.npz``
(``read_vectors_npz``). Bulk work commits ``BATCH_ITEMS`` items per transaction: one disk
sync per item made 100,000 items take 136 s.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from itemrec.edge_runtime.augment import augmented_views
from itemrec.edge_runtime.camera import FrameGrabber, center_roi
from itemrec.edge_runtime.errors import CameraLostError, ImageLoadError, InputError
from itemrec.edge_runtime.files import atomic_path, read_regular_file, shown
from itemrec.edge_runtime.folders import scan_class_folders
from itemrec.edge_runtime.gallery import (
    Enrollment,
    Gallery,
    item_code_problem,
    item_name_problem,
)
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel

#: Items per transaction in bulk enrolment (bench_lookup: 100k items import at ~1,000 items
#: per commit as fast as in one; smaller batches lose less to an interruption).
BATCH_ITEMS = 1000
#: A names file larger than this is refused before reading (a catalogue of 100,000 items
#: with 100-character names is 10 MB).
MAX_NAMES_FILE_BYTES = 100_000_000


@dataclass
class EnrollmentReport:
    """What a build or enrolment added, and every image it skipped with the reason."""

    items: int = 0
    representatives: int = 0
    skipped: list[str] = field(default_factory=list)


def read_names_csv(path: str | Path) -> dict[str, str]:
    """A CSV whose header has the columns ``code`` and ``name`` -> ``{code: name}``.

    UTF-8, with or without the byte-order mark spreadsheet programs write; other columns are
    ignored, blank lines skipped, cells stripped. Every problem is an ``InputError`` naming
    the file and line: text that is not UTF-8, an unclosed quote, a field over the csv
    module's 128 KiB limit, a missing code or name, one that cannot be stored
    (:func:`~itemrec.edge_runtime.gallery.item_code_problem`), and a code given twice.
    """
    where = shown(path)
    data = read_regular_file(path, MAX_NAMES_FILE_BYTES, InputError, "a names file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{where}:{line}: not UTF-8 (byte 0x{data[err.start]:02x}); save it as "
            "'CSV UTF-8' in a spreadsheet program"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    names, first_seen = {}, {}
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        if "code" not in header or "name" not in header:
            raise InputError(f"{where}:1: the header must name the columns 'code' and 'name'")
        code_at, name_at = header.index("code"), header.index("name")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = f"{where}:{reader.line_num}"
            if len(row) <= max(code_at, name_at):
                raise InputError(f"{line}: {len(row)} column(s), expected a code and a name")
            code, name = row[code_at].strip(), row[name_at].strip()
            problem = item_code_problem(code) or item_name_problem(name)
            if problem:
                raise InputError(f"{line}: {problem}")
            if code in names:
                raise InputError(
                    f"{line}: code {code!r} is already named on line {first_seen[code]}"
                )
            names[code], first_seen[code] = name, reader.line_num
    except csv.Error as err:
        raise InputError(f"{where}:{reader.line_num}: not valid CSV ({err})") from None
    return names


def embed_with_views(model: EmbeddingModel, image: np.ndarray, augment: int) -> np.ndarray:
    """The embedding of ``image`` and of ``augment`` augmented views of it, (1 + K) x D."""
    views = augmented_views(image, augment, model.input_size)
    return np.stack([model.embed(image)] + [model.embed(view) for view in views])


def embed_files(
    model: EmbeddingModel,
    paths: Iterable[str | Path],
    report: EnrollmentReport,
    augment: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Embed every readable image (and ``augment`` views of it, sources ``<path>#view<k>``);
    unreadable ones go to ``report.skipped``."""
    vectors, sources = [], []
    for path in paths:
        try:
            image = load_image(path)
        except ImageLoadError as err:
            report.skipped.append(err.one_line())
            continue
        vectors.append(embed_with_views(model, image, augment))
        sources += [str(path)] + [f"{path}#view{k}" for k in range(1, augment + 1)]
    if not vectors:
        return np.zeros((0, model.spec.embedding_size), np.float32), sources
    return np.concatenate(vectors), sources


def enroll_files(
    gallery: Gallery,
    model: EmbeddingModel,
    code: str,
    name: str | None,
    paths: Iterable[str | Path],
    report: EnrollmentReport | None = None,
    augment: int = 0,
) -> EnrollmentReport:
    """Embed ``paths`` (each with ``augment`` views) and add them to item ``code`` in one
    transaction."""
    report = report if report is not None else EnrollmentReport()
    enrollment = _embedded_item(model, code, name, paths, report, augment)
    if enrollment is not None:
        gallery.enroll_many([enrollment])
        _count(report, [enrollment])
    return report


def _embedded_item(model, code, name, paths, report, augment=0) -> Enrollment | None:
    vectors, sources = embed_files(model, paths, report, augment)
    if len(vectors) == 0:
        report.skipped.append(f"{code}: no readable image, item not enrolled")
        return None
    return Enrollment(code, name, vectors, sources)


def _count(report: EnrollmentReport, enrollments: list[Enrollment]) -> None:
    report.items += len(enrollments)
    report.representatives += sum(len(e.vectors) for e in enrollments)


def enroll_batched(
    gallery: Gallery, enrollments: Iterable[Enrollment | None], report: EnrollmentReport
) -> EnrollmentReport:
    """Enrol a stream of items, ``BATCH_ITEMS`` per transaction (None entries are skipped)."""
    batch = []
    for enrollment in enrollments:
        if enrollment is not None:
            batch.append(enrollment)
        if len(batch) >= BATCH_ITEMS:
            gallery.enroll_many(batch)
            _count(report, batch)
            batch = []
    if batch:
        gallery.enroll_many(batch)
        _count(report, batch)
    return report


def build_gallery(
    model: EmbeddingModel,
    images_dir: str | Path,
    db_path: str | Path,
    names: dict[str, str] | None = None,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
    augment: int = 0,
) -> EnrollmentReport:
    """Create ``db_path`` and enrol each class folder of ``images_dir`` (folder name = code),
    each image with ``augment`` augmented views.

    The gallery is built in a hidden temporary file beside ``db_path`` and appears under its
    name only when complete: a killed build leaves no gallery (and the rerun starts afresh).
    Every file and folder left out is named in ``report.skipped``.
    """
    db_path = Path(db_path)
    if db_path.exists() or db_path.is_symlink():
        raise InputError(f"{shown(db_path)} already exists; remove it or use 'gallery add'")
    report = EnrollmentReport()
    classes = scan_class_folders(images_dir, report.skipped)
    for code in [code for code, paths in classes.items() if not paths]:
        report.skipped.append(
            f"{shown(Path(images_dir) / code)}: empty class folder, item not enrolled"
        )
        del classes[code]
    names = names or {}
    try:
        with atomic_path(db_path, replace=False) as temp:
            temp.unlink()  # SQLite creates the file itself
            with Gallery.create(temp, model.spec) as gallery:
                items = (
                    _embedded_item(model, code, names.get(code), paths, report, augment)
                    for code, paths in progress(list(classes.items()))
                )
                enroll_batched(gallery, items, report)
                gallery.checkpoint()
    except FileExistsError:
        raise InputError(f"{shown(db_path)} was created by someone else meanwhile") from None
    return report


def read_vectors_npz(path: str | Path, dim: int, fingerprint: str | None) -> list[Enrollment]:
    """Items from an ``.npz`` of precomputed embeddings, checked, rows L2-normalised.

    Arrays: ``codes`` (N strings, non-empty, unique), ``vectors`` (N x D, finite, non-zero;
    D the model's embedding size), optionally ``names`` (N strings) and ``fingerprint`` (the
    sha256 of the model that computed them: it must be the gallery's).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a readable .npz of vectors ({err})") from None
    missing = {"codes", "vectors"} - arrays.keys()
    if missing:
        raise InputError(f"{path}: missing array(s) {', '.join(sorted(missing))}")
    codes, vectors = arrays["codes"], arrays["vectors"]
    if codes.ndim != 1 or codes.dtype.kind not in "US":
        raise InputError(f"{path}: 'codes' must be a 1-D array of strings")
    codes = [str(c).strip() for c in codes.astype(str)]
    if vectors.ndim != 2 or vectors.shape != (len(codes), dim):
        raise InputError(
            f"{path}: 'vectors' must be {len(codes)} x {dim} (the model's embedding size), "
            f"got {'x'.join(map(str, vectors.shape))}"
        )
    if vectors.dtype.kind not in "fiu":
        raise InputError(f"{path}: 'vectors' must be numbers, got {vectors.dtype}")
    vectors = vectors.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):
        raise InputError(f"{path}: row {bad[0]} ({codes[bad[0]]!r}) is not finite")
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(norms == 0):
        raise InputError(f"{path}: row {int(np.argmin(norms))} is all zeros")
    empty = [i for i, c in enumerate(codes) if not c]
    if empty:
        raise InputError(f"{path}: row {empty[0]} has an empty code")
    if len(set(codes)) != len(codes):
        seen, duplicate = set(), None
        for code in codes:
            if code in seen:
                duplicate = code
                break
            seen.add(code)
        raise InputError(f"{path}: code {duplicate!r} appears more than once")
    names = arrays.get("names")
    if names is not None and (names.shape != (len(codes),) or names.dtype.kind not in "US"):
        raise InputError(f"{path}: 'names' must be {len(codes)} strings")
    stored = arrays.get("fingerprint")
    if stored is not None and fingerprint is not None and str(stored) != fingerprint:
        raise InputError(
            f"{path}: computed by model {str(stored)[:12]}, the gallery's model is "
            f"{fingerprint[:12]}: embed with the gallery's model"
        )
    vectors /= norms[:, np.newaxis]
    names = [None] * len(codes) if names is None else [str(n).strip() or None for n in names]
    source = f"import:{Path(path).name}"
    return [
        Enrollment(code, name, vectors[i : i + 1], [source])
        for i, (code, name) in enumerate(zip(codes, names, strict=True))
    ]


def enroll_camera(
    gallery: Gallery,
    model: EmbeddingModel,
    grabber: FrameGrabber,
    code: str,
    name: str | None,
    shots: int,
    roi: float = 0.6,
    interval: float = 0.5,
    stall_seconds: float = 10.0,
    augment: int = 0,
) -> EnrollmentReport:
    """Take ``shots`` frames ``interval`` s apart (centre region) and enrol them together,
    each with ``augment`` augmented views."""
    vectors = []
    with grabber:
        while len(vectors) < shots:
            frame = grabber.latest(timeout=stall_seconds)
            if frame is None:
                source = grabber.source
                raise CameraLostError(f"no frame from camera {source!r} for {stall_seconds:g} s")
            rgb = cv2.cvtColor(center_roi(frame, roi), cv2.COLOR_BGR2RGB)
            vectors.append(embed_with_views(model, rgb, augment))
            if len(vectors) < shots:
                time.sleep(interval)
    matrix = np.concatenate(vectors)
    sources = [f"camera:{grabber.source}"] * len(matrix)
    gallery.enroll(code, name, matrix, sources)
    return EnrollmentReport(items=1, representatives=len(matrix))
