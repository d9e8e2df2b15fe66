"""Identification and verification metrics for open-set item recognition, in numpy.

Conventions shared by every function:

- ``similarity`` is a probes x gallery matrix of cosine similarities (dot products of
  L2-normalised embeddings); larger is more alike.
- A gallery may hold several representatives of one class; a class scores the *best*
  similarity of its representatives.
- Ranks are 1-based and pessimistic on ties: a probe's true class is at rank
  ``1 + (number of other classes scoring >= it)``, so a model that maps everything to
  one point scores no better than chance.
- Probes whose class is not in the gallery are left out of identification metrics
  (they are the impostors of the verification metrics).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from itemrec.edge_runtime.errors import InputError


@dataclasses.dataclass(frozen=True)
class CMCResult:
    """A cumulative match characteristic: identification rate at ranks 1..K over trials."""

    mean: np.ndarray  # (K,) identification rate at rank k, averaged over trials
    std: np.ndarray  # (K,) standard deviation over trials (0 for one trial)
    trials: np.ndarray  # (T, K) one CMC per trial
    n_probes: int  # probes per trial

    def rank(self, k: int) -> float:
        """Mean identification rate at rank ``k`` (1-based)."""
        return float(self.mean[k - 1])

    def to_dict(self) -> dict:
        return {
            "ranks": list(range(1, len(self.mean) + 1)),
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
            "trials": int(self.trials.shape[0]),
            "n_probes": self.n_probes,
        }


def class_scores(similarity, gallery_labels):
    """Best similarity per gallery class: returns ``(scores P x C, classes C)``."""
    similarity = np.asarray(similarity, dtype=np.float64)
    classes, column_class = np.unique(np.asarray(gallery_labels), return_inverse=True)
    scores = np.full((similarity.shape[0], len(classes)), -np.inf)
    for c in range(len(classes)):
        scores[:, c] = similarity[:, column_class == c].max(axis=1)
    return scores, classes


def true_class_ranks(similarity, probe_labels, gallery_labels) -> np.ndarray:
    """1-based rank of each probe's own class among gallery classes; 0 if it is not enrolled."""
    scores, classes = class_scores(similarity, gallery_labels)
    probe_labels = np.asarray(probe_labels)
    position = {label: i for i, label in enumerate(classes.tolist())}
    ranks = np.zeros(len(probe_labels), dtype=np.int64)
    for p, label in enumerate(probe_labels.tolist()):
        c = position.get(label)
        if c is None:
            continue
        ranks[p] = int(np.sum(scores[p] >= scores[p, c]))  # its own class counts as 1
    return ranks


def cmc_curve(similarity, probe_labels, gallery_labels, max_rank: int = 10) -> np.ndarray:
    """Identification rate at ranks 1..``max_rank`` over the probes whose class is enrolled."""
    ranks = true_class_ranks(similarity, probe_labels, gallery_labels)
    ranks = ranks[ranks > 0]
    if len(ranks) == 0:
        raise InputError("no probe belongs to an enrolled class")
    return np.array([np.mean(ranks <= k) for k in range(1, max_rank + 1)])


def seed_protocol_cmc(
    embeddings,
    labels,
    *,
    representatives=None,
    trials: int = 1,
    max_rank: int = 10,
    seed: int = 0,
) -> CMCResult:
    """The original study's protocol: one representative and one random probe per class.

    Every class with at least two images takes part. ``representatives`` optionally fixes
    each class's representative(s) (a mapping label -> image index or indices, all of which
    then stand in the gallery); otherwise one is drawn at random in every trial. The probe
    is drawn at random from the class's other images. Trials use independent draws.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    members = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    members = {c: idx for c, idx in members.items() if len(idx) >= 2}
    if not members:
        raise InputError("the seed protocol needs classes with at least two images")
    curves = []
    for _ in range(trials):
        rep_idx, probe_idx = [], []
        for c, idx in members.items():
            if representatives is None:
                reps = [rng.choice(idx)]
            else:
                reps = np.atleast_1d(representatives[c]).tolist()
            candidates = idx[~np.isin(idx, reps)]
            if len(candidates) == 0:
                continue  # every image of this class is a representative: nothing to probe
            probe_idx.append(rng.choice(candidates))
            rep_idx.extend(reps)
        similarity = embeddings[probe_idx] @ embeddings[rep_idx].T
        curves.append(cmc_curve(similarity, labels[probe_idx], labels[rep_idx], max_rank))
    return _result(curves, len(probe_idx))


def first_of_each_class(labels) -> np.ndarray:
    """itemrec's representative rule: the first image of each class represents it.

    Returns the boolean mask of representatives over ``labels`` (in their order); every other
    image is a probe. Validation during training, the converter's verification,
    ``itemrec-eval``'s default and the demo's device gallery all use this rule, so their
    rank-1 figures measure the same thing.
    """
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), bool)
    mask[np.unique(labels, return_index=True)[1]] = True
    return mask


def first_representative_cmc(embeddings, labels, max_rank: int = 10) -> np.ndarray:
    """Rank-1..K identification of every probe under :func:`first_of_each_class`.

    ``K`` is ``max_rank`` or the number of classes, whichever is smaller.
    """
    mask = first_of_each_class(labels)
    return all_probes_cmc(embeddings, labels, mask, min(max_rank, int(mask.sum()))).mean


def all_probes_cmc(embeddings, labels, representative_mask, max_rank: int = 10) -> CMCResult:
    """Every image that is not a representative is a probe against all representatives."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    mask = np.asarray(representative_mask, dtype=bool)
    similarity = embeddings[~mask] @ embeddings[mask].T
    curve = cmc_curve(similarity, labels[~mask], labels[mask], max_rank)
    n_probes = int(np.sum(np.isin(labels[~mask], labels[mask])))
    return _result([curve], n_probes)


def _result(curves, n_probes: int) -> CMCResult:
    trials = np.stack(curves)
    return CMCResult(trials.mean(axis=0), trials.std(axis=0), trials, n_probes)


def mean_average_precision(similarity, probe_labels, gallery_labels) -> float:
    """Mean over probes of the average precision of the gallery ranked by similarity.

    Relevant gallery entries are those of the probe's class; ties keep gallery order.
    Probes with no relevant entry are left out.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    gallery_labels = np.asarray(gallery_labels)
    precisions = []
    for row, label in zip(similarity, np.asarray(probe_labels), strict=True):
        relevant = gallery_labels[np.argsort(-row, kind="stable")] == label
        if not relevant.any():
            continue
        hits = np.cumsum(relevant)
        positions = np.flatnonzero(relevant)
        precisions.append(np.mean(hits[positions] / (positions + 1)))
    if not precisions:
        raise InputError("no probe has a relevant gallery entry")
    return float(np.mean(precisions))


def open_set_scores(similarity, probe_labels, gallery_labels):
    """Genuine and "best other item" impostor scores (the closed-set stand-in for unknowns).

    For each probe of an enrolled class, the genuine score is its own class's score and
    the impostor score is the best score among the *other* classes: an approximation of
    an item that was never enrolled, kept for comparison with earlier reports. The field
    case, a product absent from the gallery, is :func:`unknown_item_scores`.
    Returns ``(genuine, impostor)``.
    """
    scores, classes = class_scores(similarity, gallery_labels)
    position = {label: i for i, label in enumerate(classes.tolist())}
    genuine, impostor = [], []
    for p, label in enumerate(np.asarray(probe_labels).tolist()):
        c = position.get(label)
        if c is None:
            impostor.append(scores[p].max())
            continue
        genuine.append(scores[p, c])
        if len(classes) > 1:
            impostor.append(np.delete(scores[p], c).max())
    return np.asarray(genuine), np.asarray(impostor)


@dataclasses.dataclass(frozen=True)
class OpenSetScores:
    """Scores of an open-set trial: probes of enrolled items and of items never enrolled."""

    genuine: np.ndarray  # own item's score s_own of each probe of an enrolled item
    best: np.ndarray  # that probe's best item score max_c s_c (>= s_own)
    correct: np.ndarray  # whether that best item is its own (rank 1)
    impostor: np.ndarray  # best score max_c s_c of each probe of an item not in the gallery

    @staticmethod
    def concatenate(parts) -> OpenSetScores:
        """Pool several trials' scores."""
        fields = [f.name for f in dataclasses.fields(OpenSetScores)]
        return OpenSetScores(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def unknown_item_scores(
    known_similarity, known_labels, unknown_similarity, gallery_labels
) -> OpenSetScores:
    """Open-set scores with the unknown items absent from the gallery (the field case).

    ``known_similarity`` (P x G) holds probes of enrolled items, ``unknown_similarity``
    (U x G) probes of items that have no representative. A known probe's genuine score is
    its own item's, ``s_own = max_{i in own item} <q, g_i>``; an unknown probe's impostor
    score is the best of all items, ``max_c s_c``: exactly what the device compares with
    its threshold when shown a product it does not know.
    """
    scores, classes = class_scores(known_similarity, gallery_labels)
    position = {label: i for i, label in enumerate(classes.tolist())}
    own = np.array([position.get(label, -1) for label in np.asarray(known_labels).tolist()])
    if len(own) and own.min() < 0:
        raise InputError("a known probe's item has no representative in the gallery")
    genuine = scores[np.arange(len(own)), own]
    best = scores.max(axis=1, initial=-np.inf)
    # Pessimistic on ties, like the ranks: a tie with another item is not rank 1.
    correct = (scores < genuine[:, None]).sum(axis=1) == len(classes) - 1
    impostor = class_scores(unknown_similarity, gallery_labels)[0].max(axis=1)
    return OpenSetScores(genuine, best, correct, impostor)


def open_set_report(scores: OpenSetScores, fars=(0.01, 0.001)) -> dict:
    """:func:`verification_report` of unknown-item impostors, plus what the device does at
    the recommended threshold ``t``:

    - ``identification_rate``: DIR(t) = #(known probe at rank 1 and s_own >= t) / #known;
    - ``known_rejected``: #(known probe with max_c s_c < t) / #known (answered "unknown");
    - ``unknown_accepted``: #(unknown probe with max_c s_c >= t) / #unknown (= FAR(t)).
    """
    report = verification_report(scores.genuine, scores.impostor, fars)
    t = report["recommended_threshold"]
    report["at_threshold"] = {
        "identification_rate": float(np.mean(scores.correct & (scores.genuine >= t))),
        "known_rejected": float(np.mean(scores.best < t)),
        "unknown_accepted": float(np.mean(scores.impostor >= t)),
    }
    return report


def tar_at_far(genuine, impostor, far: float):
    """True accept rate at the threshold that keeps the false accept rate <= ``far``.

    The threshold is the lowest value accepting at most ``floor(far * len(impostor))``
    impostors (a score is accepted when ``score >= threshold``). Returns
    ``(tar, threshold, achieved_far)``.
    """
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    if len(genuine) == 0 or len(impostor) == 0:
        raise InputError("TAR at FAR needs genuine and impostor scores")
    allowed = int(np.floor(far * len(impostor) + 1e-9))
    if allowed >= len(impostor):
        threshold = float(impostor[-1])
    else:
        threshold = float(np.nextafter(impostor[allowed], np.inf))
    return (
        float(np.mean(genuine >= threshold)),
        threshold,
        float(np.mean(impostor >= threshold)),
    )


def equal_error_rate(genuine, impostor):
    """The threshold where the false accept and false reject rates meet.

    Candidates are the observed scores; the one minimising ``|FAR - FRR|`` wins (the lowest
    on ties). Returns ``(eer, threshold)`` with ``eer = (FAR + FRR) / 2`` there.
    """
    genuine = np.asarray(genuine, dtype=np.float64)
    impostor = np.asarray(impostor, dtype=np.float64)
    if len(genuine) == 0 or len(impostor) == 0:
        raise InputError("an equal error rate needs genuine and impostor scores")
    candidates = np.unique(np.concatenate([genuine, impostor]))
    far = np.array([np.mean(impostor >= t) for t in candidates])
    frr = np.array([np.mean(genuine < t) for t in candidates])
    best = int(np.argmin(np.abs(far - frr)))
    return float((far[best] + frr[best]) / 2), float(candidates[best])


def verification_report(genuine, impostor, fars=(0.01, 0.001)) -> dict:
    """TAR at each FAR, the equal error rate, and a threshold recommended to the device.

    The recommendation is the equal-error threshold: on small galleries a strict FAR
    (1 % of a few hundred impostors) can reject nearly every item, which makes the device
    useless; the TAR-at-FAR rows show what stricter thresholds would cost.
    """
    rows = []
    for far in fars:
        tar, threshold, achieved = tar_at_far(genuine, impostor, far)
        rows.append({"far": far, "tar": tar, "threshold": threshold, "achieved_far": achieved})
    eer, eer_threshold = equal_error_rate(genuine, impostor)
    return {
        "genuine": {"n": int(len(genuine)), "mean": float(np.mean(genuine))},
        "impostor": {"n": int(len(impostor)), "mean": float(np.mean(impostor))},
        "tar_at_far": rows,
        "eer": eer,
        "eer_threshold": eer_threshold,
        "recommended_threshold": eer_threshold,
    }
