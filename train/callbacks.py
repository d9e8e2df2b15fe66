"""Keras callbacks of a run: validation CMC, the history file, the feature scatter, backups."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from edge_runtime.metrics import cmc_curve
from train.plots import pca_2d, plot_losses, plot_scatter

keras = tf.keras


def first_as_gallery(labels) -> np.ndarray:
    """Gallery mask: the first image of each class is its one representative, the rest probe."""
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), bool)
    mask[np.unique(labels, return_index=True)[1]] = True
    return mask


def gallery_cmc(embeddings, labels, max_rank: int = 10) -> np.ndarray:
    """Rank-1..``max_rank`` identification of every non-representative image (dot products)."""
    embeddings, labels = np.asarray(embeddings), np.asarray(labels)
    gallery = first_as_gallery(labels)
    similarity = embeddings[~gallery] @ embeddings[gallery].T
    ranks = min(max_rank, int(gallery.sum()))
    return cmc_curve(similarity, labels[~gallery], labels[gallery], max_rank=ranks)


class ValidationCMC(keras.callbacks.Callback):
    """After each epoch: embed the held-out classes and add ``val_rank1``/``val_rank5`` to logs."""

    def __init__(self, embedder: keras.Model, dataset, labels, max_rank: int = 10):
        super().__init__()
        self.embedder, self.dataset, self.labels = embedder, dataset, np.asarray(labels)
        self.max_rank = max_rank
        self.last_cmc: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        embeddings = self.embedder.predict(self.dataset, verbose=0)
        cmc = gallery_cmc(embeddings, self.labels, self.max_rank)
        self.last_cmc = [float(v) for v in cmc]
        if logs is not None:
            logs["val_rank1"] = self.last_cmc[0]
            logs["val_rank5"] = self.last_cmc[min(4, len(cmc) - 1)]


class FeatureScatter(keras.callbacks.Callback):
    """After each epoch: a 2-D PCA scatter of the deep features of a few training classes."""

    def __init__(self, features_model, dataset, labels, names, frames_dir: Path, phase, offset):
        super().__init__()
        self.features_model, self.dataset = features_model, dataset
        self.labels, self.names = np.asarray(labels), names
        self.frames_dir, self.phase, self.offset = Path(frames_dir), phase, offset
        self.frames_dir.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        features = self.features_model.predict(self.dataset, verbose=0)
        number = self.offset + epoch + 1
        plot_scatter(
            pca_2d(features),
            self.labels,
            self.names,
            f"deep features, epoch {number} ({self.phase})",
            self.frames_dir / f"epoch_{number:03d}.png",
        )


class RunHistory(keras.callbacks.Callback):
    """Appends one entry per epoch to ``history.json`` and redraws ``loss.png``.

    Entries are keyed by (phase, epoch): a resumed epoch replaces what a killed run
    wrote for it and everything after it, so the file always reads as one run.
    """

    def __init__(self, run_dir: Path, phase: str, offset: int, cmc: ValidationCMC | None = None):
        super().__init__()
        self.path = Path(run_dir) / "history.json"
        self.plot_path = Path(run_dir) / "loss.png"
        self.phase, self.offset, self.cmc = phase, offset, cmc

    def on_epoch_end(self, epoch, logs=None):
        entry = {"phase": self.phase, "epoch": epoch, "global_epoch": self.offset + epoch}
        entry.update({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})
        if self.cmc is not None and self.cmc.last_cmc:
            entry["val_cmc"] = self.cmc.last_cmc
        entry["time"] = time.time()
        history = [e for e in read_history(self.path) if e["global_epoch"] < entry["global_epoch"]]
        history.append(entry)
        self.path.write_text(json.dumps(history, indent=1) + "\n")
        plot_losses(history, self.plot_path)


def read_history(path: Path) -> list[dict]:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else []


class KeepBest(keras.callbacks.Callback):
    """Save the embedder whenever validation rank-1 beats every earlier epoch of the run."""

    def __init__(self, embedder: keras.Model, path: Path, best: float):
        super().__init__()
        self.embedder, self.path, self.best = embedder, Path(path), best

    def on_epoch_end(self, epoch, logs=None):
        rank1 = (logs or {}).get("val_rank1")
        if rank1 is not None and rank1 > self.best:
            self.best = float(rank1)
            self.embedder.save(self.path)


class PhaseBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` every ``save_freq`` batches *and* at the end of every epoch.

    A killed run rerun with the same command continues at the batch after the last
    backup; the backup is deleted when the phase finishes.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._backup(epoch=epoch)
