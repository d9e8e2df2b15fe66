"""benchmarks/embedding_postprocess: the test-time crops and the candidates' arithmetic."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import embedding_postprocess
from embedding_postprocess import Views, candidates, normalised, zoom_crops

from itemrec.train.whitening import fit_whitening


def test_the_five_crops_are_the_centre_and_the_corners_at_85_percent_of_the_short_side():
    rows, cols = np.mgrid[0:100, 0:80]
    image = np.stack([rows, cols, np.zeros_like(rows)], axis=-1)  # each pixel holds its place
    crops = zoom_crops(image)
    assert [c.shape for c in crops] == [(68, 68, 3)] * 5  # 0.85 x 80
    corners = [(c[0, 0, 0], c[0, 0, 1]) for c in crops]
    assert corners == [(16, 6), (0, 0), (0, 12), (32, 0), (32, 12)]


def _views(rng, n=40, d=6):
    rows = normalised(rng.normal(size=(n, 6, d)))  # whole, centre crop, 4 corner crops
    views = SimpleNamespace(whole=rows[:, 0], center=rows[:, 1], corners=rows[:, 2:])
    views.tta = lambda: Views.tta(views)
    return views


def test_each_candidate_computes_its_formula():
    rng = np.random.default_rng(0)
    train, views = normalised(rng.normal(size=(200, 6)) + 0.5), _views(rng)
    made = candidates(train)
    np.testing.assert_array_equal(made["none"](views), views.whole)
    np.testing.assert_allclose(made["center-train"](views), normalised(views.whole - train.mean(0)))
    kernel, bias = fit_whitening(train, 0.3)
    np.testing.assert_allclose(made["whiten-0.3"](views), normalised(views.whole @ kernel + bias))
    np.testing.assert_array_equal(made["centre-crop-0.85"](views), views.center)
    two = normalised((views.whole + views.center) / 2)
    np.testing.assert_allclose(made["tta-2crop"](views), two)
    six = np.concatenate([views.whole[:, None], views.center[:, None], views.corners], axis=1)
    np.testing.assert_allclose(made["tta-5crop"](views), normalised(six.mean(axis=1)))
    shrink = embedding_postprocess.DEFAULT_SHRINK
    kernel, bias = fit_whitening(train, shrink)
    both = made[f"whiten-{shrink}+tta-5crop"](views)
    np.testing.assert_allclose(both, normalised(normalised(six.mean(axis=1)) @ kernel + bias))


def test_whitening_on_fewer_classes_fits_on_their_images_only():
    rng = np.random.default_rng(1)
    train, views = normalised(rng.normal(size=(60, 6))), _views(rng)
    labels = np.repeat(np.arange(10), 6)
    shrink = embedding_postprocess.DEFAULT_SHRINK
    made = candidates(train, labels, fit_classes=(4, 10), seed=3)
    assert f"whiten-{shrink} on 10 classes" not in made  # all of them: that is whiten-S
    chosen = np.random.default_rng(3).choice(np.arange(10), 4, replace=False)
    kernel, bias = fit_whitening(train[np.isin(labels, chosen)], shrink)
    got = made[f"whiten-{shrink} on 4 classes"](views)
    np.testing.assert_allclose(got, normalised(views.whole @ kernel + bias))
