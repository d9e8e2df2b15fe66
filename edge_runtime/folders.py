"""Class folders: ``ROOT/<item code>/<image files>``, the one dataset layout of itemrec.

Training, evaluation and gallery building all read this layout, so there is one reader.
Hidden entries are ignored; files whose suffix is not an image suffix are ignored too
(a ``names.csv`` or ``README`` can live beside the images).
"""

from __future__ import annotations

from pathlib import Path

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.images import is_image_file


def scan_class_folders(root: str | Path) -> dict[str, list[Path]]:
    """Map each class folder name to its sorted image paths (classes sorted by name).

    Empty class folders are kept (with an empty list) so that callers can report them.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    classes = {
        entry.name: sorted(
            f
            for f in entry.iterdir()
            if f.is_file() and not f.name.startswith(".") and is_image_file(f)
        )
        for entry in sorted(root.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    }
    if not classes:
        raise InputError(f"{root}: no class folders (expected ROOT/<code>/<images>)")
    return classes


def flatten(classes: dict[str, list[Path]]) -> tuple[list[Path], list[str]]:
    """``(paths, labels)`` in class order, one entry per image."""
    paths, labels = [], []
    for code, files in classes.items():
        paths.extend(files)
        labels.extend([code] * len(files))
    return paths, labels
