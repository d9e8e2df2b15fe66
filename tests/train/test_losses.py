"""The objectives against numpy references of their formulas."""

import numpy as np
import pytest

import itemrec.train  # noqa: F401  (selects tf_keras)
from itemrec.train.keras_api import tf
from itemrec.train.losses import CenterLoss, SoftmaxLoss, TripletLoss, make_objective


def _outputs(logits, features, embeddings=None):
    out = {
        "logits": tf.constant(logits, tf.float32),
        "deep_feature": tf.constant(features, tf.float32),
    }
    if embeddings is not None:
        out["embedding"] = tf.constant(embeddings, tf.float32)
    return out


def test_center_loss_terms_match_the_formula():
    rng = np.random.default_rng(1)
    labels = np.array([0, 2, 2, 1])
    logits, features = rng.normal(size=(4, 3)), rng.normal(size=(4, 5))
    centers = rng.normal(size=(3, 5))
    loss = CenterLoss(3, 5, lam=0.01)
    loss.centers.assign(centers)
    terms = loss.terms(tf.constant(labels), _outputs(logits, features))

    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    softmax_ref = -log_softmax[np.arange(4), labels]
    center_ref = 0.5 * ((features - centers[labels]) ** 2).sum(axis=1)
    np.testing.assert_allclose(terms["softmax_loss"], softmax_ref, rtol=1e-5)
    np.testing.assert_allclose(terms["center_loss"], center_ref, rtol=1e-5)
    np.testing.assert_allclose(loss.total(terms), softmax_ref + 0.01 * center_ref, rtol=1e-5)


def center_update_reference(centers, features, labels, alpha):
    """The paper's rule, written with loops."""
    new = centers.copy()
    for j in range(len(centers)):
        members = labels == j
        delta = (centers[j] - features[members]).sum(axis=0) / (1 + members.sum())
        new[j] = centers[j] - alpha * delta
    return new


def test_center_update_follows_the_paper():
    labels = np.array([0, 0, 2, 0])
    features = np.array([[1.0, 2.0], [3.0, 0.0], [-2.0, 4.0], [2.0, 2.0]])
    centers = np.array([[0.5, 0.5], [9.0, 9.0], [0.0, 0.0]])
    loss = CenterLoss(3, 2, alpha=0.5)
    loss.centers.assign(centers)
    loss.update(tf.constant(labels), _outputs(np.zeros((4, 3)), features))
    # Worked by hand: class 0 has 3 members, sum(c - x) = (1.5-6, 1.5-4) = (-4.5, -2.5),
    # delta = that / 4, c <- c - 0.5 * delta = (0.5 + 0.5625, 0.5 + 0.3125).
    np.testing.assert_allclose(loss.centers.numpy()[0], [1.0625, 0.8125])
    np.testing.assert_allclose(loss.centers.numpy()[1], [9.0, 9.0])  # no members: unchanged
    np.testing.assert_allclose(
        loss.centers.numpy(), center_update_reference(centers, features, labels, 0.5), rtol=1e-6
    )


def test_softmax_is_center_loss_with_lambda_zero():
    rng = np.random.default_rng(2)
    loss = SoftmaxLoss(4, 3, alpha=0.5)
    labels = tf.constant([1, 3])
    terms = loss.terms(labels, _outputs(rng.normal(size=(2, 4)), rng.normal(size=(2, 3))))
    assert loss.lam == 0.0
    np.testing.assert_allclose(loss.total(terms), terms["softmax_loss"])
    assert float(tf.reduce_sum(terms["center_loss"])) > 0  # still reported


def triplet_reference(embeddings, labels, margin):
    n = len(labels)
    d = np.sqrt(((embeddings[:, None] - embeddings[None]) ** 2).sum(-1))
    out = np.zeros(n)
    for i in range(n):
        pos = [d[i, j] for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [d[i, j] for j in range(n) if labels[j] != labels[i]]
        if pos and neg:
            out[i] = max(0.0, margin + max(pos) - min(neg))
    return out


def test_batch_hard_triplet_matches_brute_force():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(8, 4))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 3])  # class 3 has no positive -> 0
    loss = TripletLoss(margin=0.3)
    terms = loss.terms(tf.constant(labels), _outputs(np.zeros((8, 4)), embeddings, embeddings))
    reference = triplet_reference(embeddings, labels, 0.3)
    assert reference[7] == 0 and reference.max() > 0
    np.testing.assert_allclose(terms["triplet_loss"], reference, atol=1e-5)


def test_make_objective_refuses_unknown_names():
    assert isinstance(make_objective("center", 3, 2), CenterLoss)
    with pytest.raises(ValueError, match="unknown loss 'arcface'"):
        make_objective("arcface", 3, 2)
