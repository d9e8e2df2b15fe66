"""Metrics against examples worked by hand."""

import numpy as np
import pytest

from itemrec.train.evaluation import metrics

# Four classes a, b, c, d; one representative each (columns), four probes (rows).
# Probe a: own class best -> rank 1.
# Probe b: c scores 0.9 > b's 0.8 -> rank 2.
# Probe c: a 0.7, b 0.6 and d 0.5 all beat c's 0.4 -> rank 4.
# Probe d: ties with a at 0.6 -> pessimistic rank 2.
TOY = np.array(
    [
        [0.9, 0.1, 0.2, 0.3],
        [0.1, 0.8, 0.9, 0.0],
        [0.7, 0.6, 0.4, 0.5],
        [0.6, 0.2, 0.1, 0.6],
    ]
)
LABELS = ["a", "b", "c", "d"]


def test_ranks_on_a_four_class_toy_case():
    assert metrics.true_class_ranks(TOY, LABELS, LABELS).tolist() == [1, 2, 4, 2]


def test_cmc_on_a_four_class_toy_case():
    cmc = metrics.cmc_curve(TOY, LABELS, LABELS, max_rank=5)
    np.testing.assert_allclose(cmc, [0.25, 0.75, 0.75, 1.0, 1.0])


def test_best_representative_counts_for_a_class():
    # Gallery: b has a second representative at 0.95 for probe b -> rank 1 now.
    similarity = np.hstack([TOY, [[0.0], [0.95], [0.0], [0.0]]])
    ranks = metrics.true_class_ranks(similarity, LABELS, LABELS + ["b"])
    assert ranks.tolist() == [1, 1, 4, 2]


def test_probes_of_unenrolled_classes_are_left_out_of_cmc():
    similarity = np.vstack([TOY, [[0.1, 0.2, 0.3, 0.4]]])
    cmc = metrics.cmc_curve(similarity, LABELS + ["e"], LABELS, max_rank=2)
    np.testing.assert_allclose(cmc, [0.25, 0.75])
    assert metrics.true_class_ranks(similarity, LABELS + ["e"], LABELS)[-1] == 0


def test_mean_average_precision_by_hand():
    # Probe x against gallery [x, y, x]: sims order -> y (0.9), x (0.8), x (0.1).
    # Relevant at positions 2 and 3: AP = (1/2 + 2/3) / 2 = 7/12.
    # Probe y against the same gallery: y first: AP = 1.
    similarity = np.array([[0.8, 0.9, 0.1], [0.2, 0.7, 0.1]])
    value = metrics.mean_average_precision(similarity, ["x", "y"], ["x", "y", "x"])
    assert value == pytest.approx((7 / 12 + 1) / 2)


def test_open_set_scores_leave_own_class_out():
    genuine, impostor = metrics.open_set_scores(TOY, LABELS, LABELS)
    np.testing.assert_allclose(genuine, [0.9, 0.8, 0.4, 0.6])
    np.testing.assert_allclose(impostor, [0.3, 0.9, 0.7, 0.6])


def test_tar_at_far_by_hand():
    impostor = np.arange(100) / 100.0  # 0.00 .. 0.99
    genuine = np.array([0.5, 0.985, 0.995, 1.0])
    # FAR 1 %: one impostor (0.99) may pass; threshold just above 0.98.
    tar, threshold, achieved = metrics.tar_at_far(genuine, impostor, 0.01)
    assert 0.98 < threshold <= 0.99 and achieved == pytest.approx(0.01)
    assert tar == pytest.approx(3 / 4)
    # FAR 0.1 %: no impostor may pass; threshold just above 0.99.
    tar, threshold, achieved = metrics.tar_at_far(genuine, impostor, 0.001)
    assert 0.99 < threshold < 0.991 and achieved == 0.0
    assert tar == pytest.approx(2 / 4)


def test_equal_error_rate_by_hand():
    # Genuine 0.6 0.7 0.8 0.9, impostor 0.1 0.2 0.3 0.65. At t = 0.65: FAR 1/4 (0.65),
    # FRR 1/4 (0.6): they meet -> EER 0.25.
    eer, threshold = metrics.equal_error_rate([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65])
    assert threshold == 0.65 and eer == 0.25
    # Perfectly separated scores: EER 0 at the lowest genuine score.
    assert metrics.equal_error_rate([0.8, 0.9], [0.1, 0.2]) == (0.0, 0.8)


def test_verification_report_recommends_the_equal_error_threshold():
    impostor = np.arange(100) / 100.0
    report = metrics.verification_report([0.995, 1.0], impostor, fars=(0.05, 0.01))
    assert [row["far"] for row in report["tar_at_far"]] == [0.05, 0.01]
    assert 0.94 < report["tar_at_far"][0]["threshold"] <= 0.95
    assert report["recommended_threshold"] == report["eer_threshold"] == 0.995
    assert report["eer"] == 0.0


def _clustered_embeddings(n_classes, per_class, noise, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 16))
    labels = np.repeat(np.arange(n_classes), per_class)
    x = centres[labels] + noise * rng.normal(size=(len(labels), 16))
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_seed_protocol_is_perfect_on_separated_classes_and_repeatable():
    x, labels = _clustered_embeddings(20, 3, noise=0.01)
    result = metrics.seed_protocol_cmc(x, labels, trials=5, seed=1)
    assert result.rank(1) == 1.0 and result.std.max() == 0.0 and result.n_probes == 20
    again = metrics.seed_protocol_cmc(x, labels, trials=5, seed=1)
    np.testing.assert_array_equal(result.trials, again.trials)


def test_seed_protocol_on_noise_is_near_chance_with_spread():
    x, labels = _clustered_embeddings(50, 2, noise=100.0)
    result = metrics.seed_protocol_cmc(x, labels, trials=40, seed=3)
    # Chance rank-k is k / 50; 40 trials of 50 probes: the mean is within a few percent.
    assert abs(result.rank(1) - 0.02) < 0.02
    assert abs(result.rank(10) - 0.20) < 0.05
    assert result.std[9] > 0
    assert np.all(np.diff(result.mean) >= 0)


def test_seed_protocol_fixed_representatives_never_probe_themselves():
    # With representatives fixed at 0 and 2, the probes can only be 1 and 3.
    x = np.eye(4)
    labels = np.array([0, 0, 1, 1])
    result = metrics.seed_protocol_cmc(x, labels, representatives={0: 0, 1: 2}, trials=3)
    # Probes are 1 and 3: orthogonal to everything -> all scores 0 -> pessimistic rank 2.
    np.testing.assert_allclose(result.mean, [0.0] + [1.0] * 9)


def test_all_probes_protocol():
    x = np.array([[1.0, 0], [0.8, 0.6], [0, 1.0], [0.6, 0.8], [0.7071, 0.7071]])
    labels = np.array(["a", "a", "b", "b", "b"])
    reps = np.array([True, False, True, False, False])
    # Probes: (0.8, 0.6)->a 0.8 vs b 0.6: rank 1; (0.6, 0.8)->b 0.8: rank 1;
    # (0.7071, 0.7071) ties a and b -> pessimistic rank 2.
    result = metrics.all_probes_cmc(x, labels, reps, max_rank=2)
    np.testing.assert_allclose(result.mean, [2 / 3, 1.0])
    assert result.n_probes == 3


def test_seed_protocol_with_several_representatives_per_class():
    # Class 0 has representatives 0 and 1; its probe can only be 2, which matches rep 1.
    x = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0], [0, 1.0, 0], [0, 1.0, 0]])
    labels = np.array([0, 0, 0, 1, 1])
    result = metrics.seed_protocol_cmc(x, labels, representatives={0: [0, 1], 1: 3}, trials=2)
    np.testing.assert_allclose(result.trials[:, 0], [1.0, 1.0])
    assert result.n_probes == 2


def test_first_of_each_class_represents_it_and_the_rest_probe():
    labels = np.array([0, 0, 1, 1, 2, 2])
    # The rule picks by order, not by sorting: a class's first image in the list.
    assert metrics.first_of_each_class([1, 0, 0, 1]).tolist() == [True, True, False, False]
    assert metrics.first_of_each_class(labels).tolist() == [True, False, True, False, True, False]
    e = np.eye(3)
    # Probe of class 0 sits on class 0, probe of 1 on class 2 (true class 2nd), probe of 2 on 2.
    embeddings = np.array([e[0], e[0], e[1], 0.6 * e[2] + 0.4 * e[1], e[2], e[2]])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(
        metrics.first_representative_cmc(embeddings, labels), [2 / 3, 1.0, 1.0]
    )


# --- open set: unknown items absent from the gallery ------------------------------------


def test_unknown_item_scores_by_hand():
    # Gallery a, b, b (b has two representatives). Known probes of a and b; unknowns u, v.
    known = np.array([[0.9, 0.2, 0.3], [0.5, 0.1, 0.4], [0.7, 0.7, 0.1]])
    unknown = np.array([[0.2, 0.6, 0.3], [0.1, 0.0, -0.2]])
    scores = metrics.unknown_item_scores(known, ["a", "b", "a"], unknown, ["a", "b", "b"])
    np.testing.assert_allclose(scores.genuine, [0.9, 0.4, 0.7])  # b's best representative
    np.testing.assert_allclose(scores.best, [0.9, 0.5, 0.7])
    assert scores.correct.tolist() == [True, False, False]  # a tie is not rank 1
    np.testing.assert_allclose(scores.impostor, [0.6, 0.1])


def test_open_set_report_counts_what_the_device_does_at_the_threshold():
    scores = metrics.OpenSetScores(
        genuine=np.array([0.9, 0.8, 0.4, 0.3]),
        best=np.array([0.9, 0.85, 0.4, 0.6]),
        correct=np.array([True, False, True, False]),
        impostor=np.array([0.1, 0.2, 0.5, 0.35]),
    )
    report = metrics.open_set_report(scores, fars=(0.25,))
    # Candidates: at t = 0.4 FRR 1/4 (0.3) and FAR 1/4 (0.5) meet -> EER 0.25.
    assert report["recommended_threshold"] == 0.4 and report["eer"] == 0.25
    at = report["at_threshold"]
    assert at["identification_rate"] == 0.5  # probes 0 and 2: right item and >= 0.4
    assert at["known_rejected"] == 0.0  # every known probe's best score is >= 0.4
    assert at["unknown_accepted"] == 0.25
    assert report["impostor"]["n"] == 4 and report["genuine"]["n"] == 4


def test_pooling_trials_concatenates_every_field():
    part = metrics.unknown_item_scores(np.eye(2), ["a", "b"], np.zeros((3, 2)), ["a", "b"])
    pooled = metrics.OpenSetScores.concatenate([part, part])
    assert len(pooled.genuine) == len(pooled.best) == len(pooled.correct) == 4
    assert len(pooled.impostor) == 6 and pooled.correct.all()
