"""Turn images into gallery representatives: one item per enrolment, one transaction each.

Images come from files (``gallery build`` walks ``ROOT/<code>/<images>``, ``gallery add`` and
``enroll IMAGES...`` take a list) or from the camera (``enroll --camera 0 --shots 5``).
Unreadable images are skipped and reported, never fatal. With ``augment=K`` each photo
also adds K augmented views of itself (``edge_runtime.augment``) as representatives.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from itemrec.edge_runtime.augment import augmented_views
from itemrec.edge_runtime.camera import FrameGrabber, center_roi
from itemrec.edge_runtime.errors import CameraLostError, ImageLoadError, InputError
from itemrec.edge_runtime.folders import scan_class_folders
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel


@dataclass
class EnrollmentReport:
    """What a build or enrolment added, and every image it skipped with the reason."""

    items: int = 0
    representatives: int = 0
    skipped: list[str] = field(default_factory=list)


def read_names_csv(path: str | Path) -> dict[str, str]:
    """``code,name`` CSV (with that header) -> ``{code: name}``."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise InputError(f"cannot read names file {path}: {err.strerror}") from None
    if rows and not {"code", "name"} <= rows[0].keys():
        raise InputError(f"{path}: the header must be 'code,name'")
    return {row["code"].strip(): row["name"].strip() for row in rows if row.get("code")}


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
            report.skipped.append(str(err))
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
    vectors, sources = embed_files(model, paths, report, augment)
    if len(vectors) == 0:
        report.skipped.append(f"{code}: no readable image, item not enrolled")
        return report
    gallery.enroll(code, name, vectors, sources)
    report.items += 1
    report.representatives += len(vectors)
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
    each image with ``augment`` augmented views."""
    classes = scan_class_folders(images_dir)
    names = names or {}
    report = EnrollmentReport()
    with Gallery.create(db_path, model.spec) as gallery:
        for code, paths in progress(list(classes.items())):
            enroll_files(gallery, model, code, names.get(code), paths, report, augment)
    return report


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
