"""Fixtures of the device tests: reference images, class folders, a names CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edge_helpers import FIXTURES, INT8_MODEL, ITEM_IMAGES, write_png

from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.interpreter import EmbeddingModel


@pytest.fixture(scope="session")
def reference():
    """``images`` (8 x 32 x 32 x 3 uint8) and the Keras model's ``embeddings`` of them."""
    data = np.load(FIXTURES / "tiny_reference.npz")
    return {"images": data["images"], "embeddings": data["embeddings"]}


@pytest.fixture
def class_folders(tmp_path, reference) -> Path:
    """``images/<code>/`` for A, B, C (two copies each) plus an unreadable file in B."""
    root = tmp_path / "images"
    for code, index in ITEM_IMAGES.items():
        write_png(root / code / "front.png", reference["images"][index])
        write_png(root / code / "back.png", reference["images"][index], scale=3)
    (root / "B" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root


@pytest.fixture
def db(tmp_path, reference) -> Path:
    """``g.db``: items A, B, C (one reference image each) embedded by the int8 tiny model."""
    model = EmbeddingModel(INT8_MODEL)
    path = tmp_path / "g.db"
    with Gallery.create(path, model.spec) as gallery:
        for code, index in ITEM_IMAGES.items():
            gallery.enroll(code, code.lower(), model.embed_many(reference["images"][[index]]))
    return path


@pytest.fixture
def names_csv(tmp_path) -> Path:
    path = tmp_path / "names.csv"
    path.write_text("code,name\nA,Apple juice\nB,Bread\nC,Coffee\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def private_camera_locks(tmp_path, monkeypatch):
    """Camera locks in this test's own folder (other test runs on the machine have theirs)."""
    monkeypatch.setenv("ITEMREC_LOCK_DIR", str(tmp_path))
