"""Enrolment-time augmentation (numpy/OpenCV) and the enrolment commands' ``--augment``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from edge_helpers import INT8_MODEL, build_args

from itemrec.edge_runtime import augment
from itemrec.edge_runtime.cli import main
from itemrec.edge_runtime.gallery import Gallery


def _half_dark(height=120, width=160) -> np.ndarray:
    """Left half dark, right half light: a flip would swap them."""
    image = np.full((height, width, 3), 200, np.uint8)
    image[:, : width // 2] = 40
    return image


def test_views_are_seeded_by_the_photo_distinct_and_at_twice_the_input_size():
    image = _half_dark()
    views = augment.augmented_views(image, 4, (32, 48))
    again = augment.augmented_views(image, 4, (32, 48))
    assert all(np.array_equal(a, b) for a, b in zip(views, again, strict=True))
    assert [v.shape for v in views] == [(64, 96, 3)] * 4 and views[0].dtype == np.uint8
    assert len({v.tobytes() for v in views}) == 4
    image[0, 0] = 0  # another photo: other views
    other_photo = augment.augmented_views(image, 4, (32, 48))
    assert not np.array_equal(views[0], other_photo[0])
    assert augment.augmented_views(image, 0, (32, 48)) == []


def test_views_never_mirror_the_product():
    for view in augment.augmented_views(_half_dark(), 12, (64, 64)):
        # Tilt and zoom move the edge by a few pixels at most: left stays dark, right light.
        assert view[:, :40].mean() < 100 < 150 < view[:, -40:].mean()


def test_lighting_stays_within_its_ranges_on_a_flat_image():
    flat = np.full((16, 16, 3), 100, np.uint8)
    low = 100 * augment.BRIGHTNESS_RANGE[0] * augment.CHANNEL_GAIN_RANGE[0]
    high = 100 * augment.BRIGHTNESS_RANGE[1] * augment.CHANNEL_GAIN_RANGE[1]
    rng = np.random.default_rng(3)
    values = np.concatenate([augment.lighting(flat, rng).ravel() for _ in range(50)])
    assert low - 1 <= values.min() and values.max() <= high + 1
    assert values.max() - values.min() > 30  # strengths really vary


def test_blur_and_jpeg_keep_the_image_and_soften_edges():
    image = _half_dark(128, 128)
    rng = np.random.default_rng(0)
    for _ in range(6):
        blurred = augment.blur(image, rng)
        assert blurred.shape == image.shape
        assert np.abs(np.diff(blurred.astype(int), axis=1)).max() < 160  # the step was 160
    compressed = augment.jpeg(image, rng)
    assert compressed.shape == image.shape and np.abs(compressed.astype(int) - image).mean() < 5


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_build_and_enroll_add_k_views_per_photo(tmp_path, class_folders):
    db = tmp_path / "g.db"
    result = invoke(*build_args(class_folders, db, "--augment", 3))
    assert result.exit_code == 0, result.output
    # A, B, C have two readable photos each: 2 x (1 + 3) representatives per item.
    assert "3 items, 24 representatives" in result.output
    photo = class_folders / "A" / "front.png"
    args = ["enroll", "--model", INT8_MODEL, "--db", db, "--code", "D", "--augment", 2, photo]
    result = invoke(*args)
    assert result.exit_code == 0 and "enrolled 3 representatives" in result.output
    listing = json.loads(invoke("gallery", "list", "--db", db, "--json").output)
    assert [i["representatives"] for i in listing["items"]] == [8, 8, 8, 3]
    with Gallery.open(db) as gallery:
        vectors = gallery.vectors()
    # The photo's own embedding comes first and equals an un-augmented enrolment's.
    plain = tmp_path / "plain.db"
    assert invoke(*build_args(class_folders, plain)).exit_code == 0
    with Gallery.open(plain) as gallery:
        unaugmented = gallery.vectors()
    np.testing.assert_allclose(vectors.matrix[0], unaugmented.matrix[0], atol=1e-6)
    views = vectors.matrix[1:4]
    assert float(np.min(views @ vectors.matrix[0])) < 0.9999  # the views really differ


@pytest.mark.parametrize("count", [-1, "x"])
def test_a_bad_count_is_a_usage_error(tmp_path, class_folders, count):
    result = invoke(*build_args(class_folders, tmp_path / "g.db", "--augment", count))
    assert result.exit_code == 2
