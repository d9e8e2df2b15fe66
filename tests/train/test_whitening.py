"""The whitening fitted after training: its formula, its Keras layers, its refusals, and
what ``itemrec-train`` exports with it."""

import numpy as np
import pytest

from itemrec.train.config import TrainConfig, resolve_config
from itemrec.train.keras_api import keras, tf
from itemrec.train.layers import L2Normalize
from itemrec.train.model import embedding_model
from itemrec.train.run import train_run
from itemrec.train.run_dir import RunDir, load_embedder
from itemrec.train.whitening import (
    WHITENED,
    WHITENING,
    fit_whitening,
    too_few_classes,
    whitened_embedder,
)


def _embeddings(n=400, d=8, seed=0):
    """Normalised rows with very unequal variances per direction and an offset mean."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.geomspace(3.0, 0.05, d) + rng.normal(size=d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_without_shrinkage_the_training_embeddings_come_out_white():
    x = _embeddings()
    kernel, bias = fit_whitening(x, shrink=1e-9)
    y = x @ kernel + bias
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(x.shape[1]), atol=1e-3)


def _cosines(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def test_full_shrinkage_is_plain_centring():
    x = _embeddings()
    kernel, bias = fit_whitening(x, shrink=1.0)
    # the same cosines as the centred embeddings (the kernel also rotates them)
    np.testing.assert_allclose(_cosines(x @ kernel + bias), _cosines(x - x.mean(axis=0)), atol=1e-5)
    assert not np.allclose(_cosines(x), _cosines(x - x.mean(axis=0)), atol=0.05)


def test_shrinkage_interpolates_the_eigenvalues():
    x = _embeddings()
    values = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    kernel, bias = fit_whitening(x, shrink=0.25)
    # the whitened covariance has eigenvalues lambda / ((1 - s) lambda + s mean(lambda))
    expected = values / (0.75 * values + 0.25 * values.mean())
    got = np.linalg.eigvalsh(np.cov(x @ kernel + bias, rowvar=False))
    np.testing.assert_allclose(np.sort(got), np.sort(expected), rtol=1e-4)


def test_fewer_images_than_dimensions_still_whiten_with_shrinkage():
    x = _embeddings(n=5, d=16)
    kernel, bias = fit_whitening(x, shrink=0.1)
    assert np.isfinite(kernel).all() and np.isfinite(bias).all()
    assert np.abs(kernel).max() < 100  # the unseen directions are not blown up


@pytest.mark.parametrize(
    "x, shrink, message",
    [
        (np.ones((1, 4)), 0.1, "at least 2"),
        (np.tile([[0.6, 0.8]], (10, 1)), 0.1, "collapsed"),
        (_embeddings(d=4) * 0.01 + [1, 0, 0, 0], 0.1, "collapsed"),  # noise around one point
        (np.eye(4), 0.0, "(0, 1]"),
        (np.eye(4), 1.5, "(0, 1]"),
    ],
)
def test_what_cannot_be_whitened_is_refused(x, shrink, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        fit_whitening(x, shrink)


def test_the_whitened_embedder_computes_the_formula_and_loads_safely(tmp_path):
    inputs = keras.Input((6,))
    embedder = keras.Model(inputs, L2Normalize()(keras.layers.Dense(8)(inputs)))
    rng = np.random.default_rng(1)
    kernel, bias = fit_whitening(embedder(rng.normal(size=(300, 6))).numpy(), 0.1)
    model = whitened_embedder(embedder, kernel, bias)
    probes = rng.normal(size=(4, 6)).astype(np.float32)
    expected = embedder(probes).numpy() @ kernel + bias
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(model(probes).numpy(), expected, atol=1e-5)
    assert model.layers[-1].name == WHITENED
    model.save(tmp_path / "embedder.keras")
    loaded = load_embedder(tmp_path / "embedder.keras")  # the run directory's safety checks
    np.testing.assert_allclose(loaded(probes).numpy(), expected, atol=1e-5)


def _train(class_folders, out, embedding_size):
    """ImageNet Lite0 at 32 px (real features), 5 classes x 3 images, one cached epoch."""
    config = {
        "data": str(class_folders),
        "out": str(out),
        "image_size": 32,
        "embedding_size": embedding_size,
        "frozen_epochs": 1,
        "finetune_epochs": 0,
        "batch_size": 5,
        "val_classes": 0,
        "feature_views": 1,
        "scatter_classes": 0,
    }
    train_run(resolve_config({}, config))
    return RunDir(out)


@pytest.mark.slow
def test_training_exports_the_network_whitened_when_it_has_the_classes(class_folders, tmp_path):
    run = _train(class_folders, tmp_path / "run", embedding_size=2)  # 5 classes >= 2 x 2
    assert run.read_json(run.summary)["whitening"] == {
        "shrink": TrainConfig.whitening,
        "images": 15,
    }
    exported = tf.keras.models.load_model(run.embedder, safe_mode=True)
    kernel, bias = exported.get_layer(WHITENING).get_weights()
    network = embedding_model(tf.keras.models.load_model(run.model, safe_mode=True))
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    expected = network(images).numpy() @ kernel + bias
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(exported(images).numpy(), expected, atol=1e-5)
    # and the training images come out white (the shrinkage aside)
    train_images = np.stack([np.asarray(image) for image, _ in _train_images(class_folders)])
    whitened = network(train_images).numpy() @ kernel + bias
    assert np.allclose(whitened.mean(axis=0), 0, atol=1e-4)


@pytest.mark.slow
def test_too_few_classes_for_the_dimensions_export_the_network_as_it_is(class_folders, tmp_path):
    run = _train(class_folders, tmp_path / "run", embedding_size=4)  # 5 classes < 2 x 4
    reason = "5 training classes, fewer than 8 (2 per embedding dimension)"
    assert run.read_json(run.summary)["whitening"] == {"shrink": 0.0, "not_whitened": reason}
    assert too_few_classes(5, 4) == reason and too_few_classes(8, 4) is None
    exported = tf.keras.models.load_model(run.embedder, safe_mode=True)
    assert exported.layers[-1].name != WHITENED


def _train_images(class_folders):
    from itemrec.train.data import decoded_images, readable_class_folders

    paths, labels = readable_class_folders(class_folders).paths_and_labels
    return decoded_images(paths, labels, 32)
