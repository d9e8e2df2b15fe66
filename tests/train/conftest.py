"""Fixtures for the training tests."""

import pytest
from train_helpers import write_class_folders


@pytest.fixture
def class_folders(tmp_path):
    return write_class_folders(tmp_path / "data")
