"""Open-set evaluation: embed a folder of unseen items, then CMC, mAP and rejection rates.

The protocols (see ``edge_runtime.metrics``):

- **seed**: the original study's, one representative and one random probe per class,
  repeated over ``trials`` independent draws (mean and std per rank);
- **all-probes**: every non-representative image probes every representative;
- **verification**: for each probe, its own class's score (genuine) against the best other
  class's score (impostor: what an unknown item would score), TAR at FAR 1 % and 0.1 %
  and the threshold recommended to the device for "unknown item".
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


def evaluate(
    folder: EmbeddedFolder,
    representatives: dict[str, list[int]],
    *,
    trials: int = 10,
    seed: int = 0,
    max_rank: int = 10,
    fars=(0.01, 0.001),
    redraw_representatives: bool = False,
) -> dict:
    """All protocols on one embedded dataset; returns a JSON-ready dict.

    With ``redraw_representatives`` the seed protocol draws a new random representative in
    every trial (the original study's protocol); otherwise it keeps ``representatives``.
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
    mask = np.zeros(len(labels), dtype=bool)
    for indices in representatives.values():
        mask[indices] = True
    similarity = x[~mask] @ x[mask].T
    all_cmc = metrics.all_probes_cmc(x, labels, mask, max_rank=max_rank)
    genuine, impostor = metrics.open_set_scores(similarity, labels[~mask], labels[mask])
    return {
        "n_classes": int(len(np.unique(labels))),
        "n_images": int(len(labels)),
        "n_representatives": int(mask.sum()),
        "seed_protocol": seed_cmc.to_dict(),
        "all_probes": all_cmc.to_dict(),
        "mAP": metrics.mean_average_precision(similarity, labels[~mask], labels[mask]),
        "verification": metrics.verification_report(genuine, impostor, fars),
        "scores": {"genuine": genuine.tolist(), "impostor": impostor.tolist()},
    }
