"""Class folders: ``ROOT/<item code>/<image files>``, the one dataset layout of itemrec.

Training, evaluation and gallery building all read this layout, so there is one reader.
Hidden entries (``.DS_Store``, ``._IMG_1.jpg``) are ignored. Everything else that cannot
be used is left out and, when the caller passes a ``skipped`` list, named there with the
reason: a class folder whose name cannot be an item code, and inside a class folder a
sub-folder, a file without an image suffix (:data:`~itemrec.edge_runtime.images.IMAGE_SUFFIXES`),
and an entry that is not a regular file: a FIFO, a socket, a dangling symbolic link or one
in a loop. Files beside the class folders (a ``names.csv``) are not entries of any class.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.files import shown
from itemrec.edge_runtime.gallery import item_code_problem
from itemrec.edge_runtime.images import IMAGE_SUFFIXES, is_image_file


def scan_class_folders(root: str | Path, skipped: list[str] | None = None) -> dict[str, list[Path]]:
    """Map each class folder name to its sorted image paths (classes sorted by name).

    Empty class folders are kept (with an empty list) so that callers can report them.
    Entries left out are appended to ``skipped`` as ``"<path>: <reason>"`` when it is given.
    """
    root = Path(root)
    skipped = [] if skipped is None else skipped
    if not root.is_dir():
        raise InputError(f"{shown(root)}: not a directory")
    try:
        entries = sorted(root.iterdir())
    except OSError as err:
        raise InputError(f"{shown(root)}: {err.strerror or err}") from None
    classes = {}
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        problem = item_code_problem(entry.name)
        if problem:
            skipped.append(f"{shown(entry)}: class folder left out: {problem}")
            continue
        classes[entry.name] = _images_of(entry, skipped)
    if not classes:
        raise InputError(f"{shown(root)}: no class folders (expected ROOT/<code>/<images>)")
    return classes


def _images_of(folder: Path, skipped: list[str]) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        skipped.append(f"{shown(folder)}: {err.strerror or err}")
        return []
    images = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        problem = _entry_problem(entry)
        if problem:
            skipped.append(f"{shown(entry)}: {problem}")
        else:
            images.append(entry)
    return images


def _entry_problem(entry: Path) -> str | None:
    """Why ``entry`` of a class folder is not an image file to read, or None."""
    try:
        mode = os.stat(entry).st_mode  # follows symbolic links
    except FileNotFoundError:
        return "a symbolic link to nothing"
    except OSError as err:
        return err.strerror or str(err)
    if stat.S_ISDIR(mode):
        return "a folder inside a class folder (not searched)"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device)"
    if not is_image_file(entry):
        return f"not an image file name ({', '.join(IMAGE_SUFFIXES)})"
    return None


def flatten(classes: dict[str, list[Path]]) -> tuple[list[Path], list[str]]:
    """``(paths, labels)`` in class order, one entry per image."""
    paths, labels = [], []
    for code, files in classes.items():
        paths.extend(files)
        labels.extend([code] * len(files))
    return paths, labels
