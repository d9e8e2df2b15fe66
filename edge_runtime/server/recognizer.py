"""The interpreter and the gallery, owned by one thread that every caller queues work to.

The camera loop and the HTTP requests share one ``Recognizer``: each call runs in its single
worker thread, so the interpreter embeds one image at a time (it is not thread-safe), the
lookup never answers while it reloads, and SQLite's connection stays in the thread that
opened it. Writes (enrolment, removal, threshold) are transactions on that connection, one
after another: two concurrent enrolments can never lose an item. Every identification
reloads the lookup first if the gallery's revision moved, whoever changed it (this server,
or ``itemrec-edge enroll`` in another process), so a change counts from the next request
on, without a restart and without stopping the camera.

``Recognizer`` also quacks like ``EmbeddingModel`` (``embed``, ``embed_bgr``) and ``GalleryLookup``
(``identify``, ``refresh``, ``item_count``) for ``run_live``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import GalleryLookup, Identification

T = TypeVar("T")


class Recognizer:
    """A model and a gallery behind one worker thread (see the module docstring)."""

    def __init__(self, model_path: str | Path, db_path: str | Path, threads: int | None = None):
        from itemrec.edge_runtime.cli import open_matching

        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recognizer")
        self.model: EmbeddingModel
        self._gallery: Gallery
        self._lookup: GalleryLookup

        def open_in_worker() -> None:
            self.model, self._gallery = open_matching(model_path, db_path, threads, write=True)
            self._lookup = GalleryLookup(self._gallery)

        try:
            self._call(open_in_worker)
        except BaseException:
            self._worker.shutdown()
            raise

    def _call(self, function: Callable[..., T], *args) -> T:
        return self._worker.submit(function, *args).result()

    def close(self) -> None:
        """Close the gallery and end the worker thread (queued calls finish first)."""
        self._call(self._gallery.close)
        self._worker.shutdown()

    # -- what run_live needs ----------------------------------------------------------------
    @property
    def item_count(self) -> int:
        return self._lookup.item_count

    def embed(self, image: np.ndarray) -> np.ndarray:
        return self._call(self.model.embed, image)

    def embed_bgr(self, frame: np.ndarray) -> np.ndarray:
        return self._call(self.model.embed_bgr, frame)

    def identify(self, vector: np.ndarray, k: int) -> Identification:
        return self._call(self._lookup.identify, vector, k)

    def refresh(self) -> bool:
        return self._call(self._lookup.refresh)

    # -- what the HTTP API needs ------------------------------------------------------------
    def identify_image(self, image: np.ndarray, k: int) -> Identification:
        """Top-k items for an RGB image, against the gallery as it is now."""

        def work() -> Identification:
            self._lookup.refresh()
            return self._lookup.identify(self.model.embed(image), k)

        return self._call(work)

    def enroll(
        self, code: str, name: str | None, images: list[np.ndarray], sources: list[str]
    ) -> int:
        """Embed ``images`` and add them to item ``code`` in one transaction; its count after."""

        def work() -> int:
            vectors = self.model.embed_many(images)
            count = self._gallery.enroll(code, name, vectors, sources)
            self._lookup.refresh()
            return count

        return self._call(work)

    def remove(self, code: str) -> bool:
        """Remove item ``code``; False when the gallery has no such item."""

        def work() -> bool:
            self._lookup.refresh()
            if code not in self._lookup:
                return False
            self._gallery.remove(code)
            self._lookup.refresh()
            return True

        return self._call(work)

    def set_threshold(self, value: float | None) -> float | None:
        def work() -> float | None:
            self._gallery.set_threshold(value)
            self._lookup.refresh()
            return self._gallery.threshold

        return self._call(work)

    def threshold(self) -> float | None:
        return self._call(lambda: self._gallery.threshold)

    def listing(self) -> dict:
        """The gallery as ``itemrec-edge gallery list --json`` prints it."""
        from itemrec.edge_runtime.cli import gallery_listing

        return self._call(gallery_listing, self._gallery)

    def status(self) -> dict:
        """``{"model": spec with fingerprint, "gallery": items, representatives, revision,
        threshold}``."""

        def work() -> dict:
            self._lookup.refresh()
            gallery = {
                "items": self._lookup.item_count,
                "representatives": self._lookup.representative_count,
                "revision": self._gallery.revision,
                "threshold": self._lookup.threshold,
            }
            return {"model": self.model.spec.to_dict(), "gallery": gallery}

        return self._call(work)
