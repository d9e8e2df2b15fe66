"""Open-set evaluation: embed a folder of unseen items, then CMC, mAP and rejection rates.

The protocols (see ``edge_runtime.metrics``):

- **seed**: the original study's, one representative and one random probe per class,
  repeated over ``trials`` independent draws (mean and std per rank);
- **all-probes**: every non-representative image probes every representative;
- **open set** (the field case): items that are *not in the gallery* are the impostors. Either
  a separate folder of never-enrolled items (``--unknown``), or, without one, a seeded
  fraction of the evaluated items left out of the gallery in each of ``trials`` draws. TAR
  at FAR 1 % and 0.1 %, the equal error rate, and the threshold recommended to the device
  for "unknown item", with what the device then does (``metrics.open_set_report``);
- **best other item** (``verification``, kept for comparison with earlier reports): for each
  probe, its own class's score (genuine) against the best *other enrolled* class's score.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from itemrec.edge_runtime.errors import ImageLoadError, InputError
from itemrec.edge_runtime.files import read_regular_file
from itemrec.edge_runtime.folders import flatten, scan_class_folders
from itemrec.edge_runtime.images import load_model_input
from itemrec.train.evaluation import metrics

REPRESENTATIVE_RULES = ("first", "random")


@dataclasses.dataclass
class EmbeddedFolder:
    """Embeddings of every readable image of a class-folder dataset."""

    paths: list[Path]
    labels: np.ndarray
    embeddings: np.ndarray
    skipped: list[tuple[str, str]]  # (path, reason)


def embed_folder(
    embedder, root, *, batch_size: int = 32, workers: int = 4, progress=None
) -> EmbeddedFolder:
    """Embed all images under ``root`` in batches, decoding each batch on ``workers`` threads.

    Only one batch of pixels is held at a time. Unreadable images are skipped and listed.
    ``progress(n)`` is called with the number of images done after each batch.
    """
    paths, labels = flatten(scan_class_folders(root))
    kept_paths, kept_labels, rows, skipped = [], [], [], []

    def load(path):
        try:
            return load_model_input(path, embedder.input_size), None
        except ImageLoadError as err:
            return None, str(err)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch_size):
            batch_paths = paths[start : start + batch_size]
            batch_labels = labels[start : start + batch_size]
            images = []
            for path, label, (image, error) in zip(
                batch_paths, batch_labels, pool.map(load, batch_paths), strict=True
            ):
                if error is not None:
                    skipped.append((str(path), error))
                    continue
                images.append(image)
                kept_paths.append(path)
                kept_labels.append(label)
            if images:
                rows.append(embedder.embed_batch(np.stack(images)))
            if progress is not None:
                progress(len(batch_paths))
    if not rows:
        raise InputError(f"{root}: no readable images")
    return EmbeddedFolder(kept_paths, np.asarray(kept_labels), np.concatenate(rows), skipped)


def choose_representatives(
    folder: EmbeddedFolder, rule: str = "first", seed: int = 0, listed=None
) -> dict[str, list[int]]:
    """Indices of each class's representatives.

    ``listed`` (paths, e.g. from a ``representatives.txt``) takes precedence; a listed path
    names its class by its parent folder. Otherwise ``rule`` picks one per class: the
    first file by name, or a seeded random file.
    """
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(folder.labels.tolist()):
        by_class.setdefault(label, []).append(i)
    if listed is not None:
        index = {p.resolve(): i for i, p in enumerate(folder.paths)}
        chosen: dict[str, list[int]] = {}
        for path in listed:
            i = index.get(Path(path).resolve())
            if i is None:
                raise InputError(f"representative {path} is not a readable image of the dataset")
            chosen.setdefault(folder.labels[i], []).append(i)
        return chosen
    if rule not in REPRESENTATIVE_RULES:
        raise InputError(f"unknown representative rule {rule!r}; use one of {REPRESENTATIVE_RULES}")
    if rule == "first":
        first = np.flatnonzero(metrics.first_of_each_class(folder.labels))
        return {folder.labels[i]: [int(i)] for i in first}
    rng = np.random.default_rng(seed)
    return {label: [int(rng.choice(idx))] for label, idx in by_class.items()}


def read_representatives_file(path, root) -> list[Path]:
    """One image path per line (relative to ``root`` or absolute); blank and # lines skipped."""
    root = Path(root)
    data = read_regular_file(path, 100_000_000, InputError, "a representatives file")
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 ({err.reason} at byte {err.start})") from None
    entries = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [p if p.is_absolute() else root / p for p in map(Path, entries)]


def _representative_mask(n: int, representatives: dict[str, list[int]], classes=None):
    mask = np.zeros(n, dtype=bool)
    for label, indices in representatives.items():
        if classes is None or label in classes:
            mask[indices] = True
    return mask


def open_set_scores(
    folder: EmbeddedFolder,
    representatives: dict[str, list[int]],
    unknown: EmbeddedFolder | None = None,
    *,
    unknown_fraction: float = 0.5,
    trials: int = 10,
    seed: int = 0,
) -> tuple[metrics.OpenSetScores, dict]:
    """Scores of known and never-enrolled probes, and how the unknown items were chosen.

    With ``unknown``, every item of ``folder`` is enrolled (its ``representatives``) and
    every image of ``unknown`` is an impostor. Without, each of ``trials`` seeded draws
    leaves ``unknown_fraction`` of the items out of the gallery: all their images are
    impostors, the other items' non-representative images are the known probes; the
    draws' scores are pooled.
    """
    x, labels = folder.embeddings, folder.labels
    if unknown is not None:
        shared = sorted(set(labels.tolist()) & set(unknown.labels.tolist()))
        if shared:
            raise InputError(f"item {shared[0]!r} is both enrolled and unknown")
        mask = _representative_mask(len(labels), representatives)
        gallery = x[mask]
        scores = metrics.unknown_item_scores(
            x[~mask] @ gallery.T, labels[~mask], unknown.embeddings @ gallery.T, labels[mask]
        )
        return scores, {
            "impostors": "unknown folder",
            "trials": 1,
            "unknown_items": len(set(unknown.labels.tolist())),
            "enrolled_items": len(representatives),
        }
    items = sorted(representatives)
    n_unknown = int(round(unknown_fraction * len(items)))
    if not 1 <= n_unknown <= len(items) - 2:
        raise InputError(
            f"leaving {unknown_fraction:g} of {len(items)} items out of the gallery leaves "
            f"{n_unknown} unknown and {len(items) - n_unknown} enrolled; the open set needs "
            "at least 1 and 2 (more items, another --unknown-fraction, or --unknown)"
        )
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(trials):
        left_out = set(rng.permutation(items)[:n_unknown].tolist())
        enrolled = np.array([label not in left_out for label in labels.tolist()])
        mask = _representative_mask(len(labels), representatives, set(items) - left_out)
        gallery = x[mask]
        known = enrolled & ~mask
        parts.append(
            metrics.unknown_item_scores(
                x[known] @ gallery.T, labels[known], x[~enrolled] @ gallery.T, labels[mask]
            )
        )
    how = {
        "impostors": f"{n_unknown} of the items left out of the gallery",
        "trials": trials,
        "unknown_items": n_unknown,
        "enrolled_items": len(items) - n_unknown,
    }
    return metrics.OpenSetScores.concatenate(parts), how


def evaluate(
    folder: EmbeddedFolder,
    representatives: dict[str, list[int]],
    *,
    trials: int = 10,
    seed: int = 0,
    max_rank: int = 10,
    fars=(0.01, 0.001),
    redraw_representatives: bool = False,
    unknown: EmbeddedFolder | None = None,
    unknown_fraction: float = 0.5,
) -> dict:
    """All protocols on one embedded dataset; returns a JSON-ready dict.

    With ``redraw_representatives`` the seed protocol draws a new random representative in
    every trial (the original study's protocol); otherwise it keeps ``representatives``.
    Identification (CMC, mAP) enrols every item of ``folder``; the open set takes its
    impostors from ``unknown`` or leaves ``unknown_fraction`` of the items out
    (:func:`open_set_scores`). ``recommended_threshold`` is the open set's.
    """
    x, labels = folder.embeddings, folder.labels
    seed_cmc = metrics.seed_protocol_cmc(
        x,
        labels,
        representatives=None if redraw_representatives else representatives,
        trials=trials,
        seed=seed,
        max_rank=max_rank,
    )
    mask = _representative_mask(len(labels), representatives)
    similarity = x[~mask] @ x[mask].T
    all_cmc = metrics.all_probes_cmc(x, labels, mask, max_rank=max_rank)
    genuine, impostor = metrics.open_set_scores(similarity, labels[~mask], labels[mask])
    open_set, how = open_set_scores(
        folder,
        representatives,
        unknown,
        unknown_fraction=unknown_fraction,
        trials=trials,
        seed=seed,
    )
    open_set_report = how | metrics.open_set_report(open_set, fars)
    return {
        "n_classes": int(len(np.unique(labels))),
        "n_images": int(len(labels)),
        "n_representatives": int(mask.sum()),
        "seed_protocol": seed_cmc.to_dict(),
        "all_probes": all_cmc.to_dict(),
        "mAP": metrics.mean_average_precision(similarity, labels[~mask], labels[mask]),
        "open_set": open_set_report,
        "verification": {"impostors": "best other enrolled item"}
        | metrics.verification_report(genuine, impostor, fars),
        "recommended_threshold": open_set_report["recommended_threshold"],
        "scores": {
            "genuine": genuine.tolist(),
            "impostor": impostor.tolist(),
            "open_set_genuine": open_set.genuine.tolist(),
            "unknown": open_set.impostor.tolist(),
        },
    }
