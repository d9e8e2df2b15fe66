"""Fixtures for the training tests."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import pytest  # noqa: E402
from train_helpers import write_class_folders  # noqa: E402


@pytest.fixture
def class_folders(tmp_path):
    return write_class_folders(tmp_path / "data")
