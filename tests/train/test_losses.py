"""The objectives against numpy references of their formulas."""

import numpy as np
import pytest

import itemrec.train  # noqa: F401  (selects tf_keras)
from itemrec.train.keras_api import tf
from itemrec.train.losses import (
    ArcFaceLoss,
    CenterLoss,
    CosFaceLoss,
    SoftmaxLoss,
    SubCenterArcFaceLoss,
    TripletLoss,
    make_objective,
)


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


def margin_softmax_reference(embeddings, weights, labels, scale, target_logit, subcenters=1):
    """Cross-entropy over ``s * cos`` with ``target_logit`` applied to the true class, in numpy."""
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    w = weights / np.linalg.norm(weights, axis=0, keepdims=True)
    cosines = e @ w
    classes = w.shape[1] // subcenters
    cosines = cosines.reshape(len(e), classes, subcenters).max(axis=2)
    logits = scale * cosines.copy()
    rows = np.arange(len(e))
    logits[rows, labels] = scale * target_logit(cosines[rows, labels])
    log_softmax = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1))[:, None]
    log_softmax -= logits.max(1, keepdims=True)
    return -log_softmax[rows, labels]


def arcface_target(margin):
    def target(cosine):
        theta = np.arccos(np.clip(cosine, -1, 1))
        return np.where(
            theta + margin < np.pi, np.cos(theta + margin), cosine - margin * np.sin(margin)
        )

    return target


@pytest.mark.parametrize(
    ("make", "target", "subcenters"),
    [
        (lambda: ArcFaceLoss(4, 6, scale=16.0, margin=0.5), arcface_target(0.5), 1),
        (lambda: CosFaceLoss(4, 6, scale=16.0, margin=0.35), lambda c: c - 0.35, 1),
        (
            lambda: SubCenterArcFaceLoss(4, 6, scale=16.0, margin=0.5, subcenters=3),
            arcface_target(0.5),
            3,
        ),
    ],
    ids=["arcface", "cosface", "subcenter"],
)
def test_margin_losses_match_numpy(make, target, subcenters):
    rng = np.random.default_rng(4)
    loss = make()
    weights = rng.normal(size=(6, 4 * subcenters))
    loss.class_weights.assign(weights)
    embeddings = rng.normal(size=(7, 6))
    # One example far from its class (theta + m > pi) exercises ArcFace's fallback branch.
    embeddings[6] = -weights[:, 2 * subcenters]
    labels = np.array([0, 1, 2, 3, 0, 1, 2])
    terms = loss.terms(tf.constant(labels), {"embedding": tf.constant(embeddings, tf.float32)})
    reference = margin_softmax_reference(embeddings, weights, labels, 16.0, target, subcenters)
    np.testing.assert_allclose(loss.total(terms), reference, rtol=1e-4, atol=1e-4)
    assert reference.min() > 0


def test_margins_make_the_loss_larger_and_chance_is_uniform():
    rng = np.random.default_rng(5)
    embeddings = tf.constant(rng.normal(size=(5, 6)), tf.float32)
    labels = tf.constant([0, 1, 2, 0, 1])
    plain = ArcFaceLoss(3, 6, scale=10.0, margin=0.0)
    margin = ArcFaceLoss(3, 6, scale=10.0, margin=0.4)
    margin.class_weights.assign(plain.class_weights)
    outputs = {"embedding": embeddings}
    low = plain.total(plain.terms(labels, outputs)).numpy()
    high = margin.total(margin.terms(labels, outputs)).numpy()
    assert np.all(high > low)
    # Without a margin every cosine 0 is the uniform softmax: ln C.
    assert plain.chance_loss(3) == pytest.approx(np.log(3))
    assert CenterLoss(7, 2).chance_loss(7) == pytest.approx(np.log(7))
    cosface = CosFaceLoss(10, 6, scale=30.0, margin=0.35)
    assert cosface.chance_loss(10) == pytest.approx(np.log(np.exp(-10.5) + 9) + 10.5)


def test_margin_loss_weights_are_trained_by_the_trainer():
    from train_helpers import tiny_backbone

    from itemrec.train.model import build_network
    from itemrec.train.trainer import EmbeddingTrainer

    network = build_network(tiny_backbone(16), 3, 4, hidden_units=8, dropout=0.0)
    objective = ArcFaceLoss(3, 4)
    trainer = EmbeddingTrainer(network, objective)
    trainer.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    before = objective.class_weights.numpy().copy()
    images = np.random.default_rng(0).uniform(0, 255, (6, 16, 16, 3)).astype(np.float32)
    logs = trainer.train_on_batch(images, np.array([0, 1, 2, 0, 1, 2]), return_dict=True)
    assert np.abs(objective.class_weights.numpy() - before).max() > 1e-4
    assert {"arcface_loss", "accuracy"} <= set(logs)


def test_make_objective_refuses_unknown_names():
    assert isinstance(make_objective("center", 3, 2), CenterLoss)
    assert isinstance(make_objective("subcenter", 3, 2, subcenters=2), SubCenterArcFaceLoss)
    with pytest.raises(ValueError, match="unknown loss 'magnet'"):
        make_objective("magnet", 3, 2)
