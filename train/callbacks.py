"""Keras callbacks of a run: validation CMC, the history file, the feature scatter, backups."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from itemrec.train.evaluation.metrics import first_representative_cmc
from itemrec.train.keras_api import keras
from itemrec.train.model import float32_model
from itemrec.train.plots import pca_2d, plot_losses, plot_scatter
from itemrec.train.private_api import backup_now
from itemrec.train.run_dir import RunDir


class ValidationCMC(keras.callbacks.Callback):
    """After each epoch: embed the held-out classes and add ``val_rank1``/``val_rank5`` to logs.

    ``dataset`` may repeat its last image to fill a batch: predictions past ``labels`` are
    dropped (here and in :class:`FeatureScatter`).
    """

    def __init__(self, embedder: keras.Model, dataset, labels, max_rank: int = 10):
        super().__init__()
        self.embedder, self.dataset, self.labels = embedder, dataset, np.asarray(labels)
        self.max_rank = max_rank
        self.last_cmc: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        embeddings = self.embedder.predict(self.dataset, verbose=0)[: len(self.labels)]
        cmc = first_representative_cmc(embeddings, self.labels, self.max_rank)
        self.last_cmc = [float(v) for v in cmc]
        if logs is not None:
            logs["val_rank1"] = self.last_cmc[0]
            logs["val_rank5"] = self.last_cmc[min(4, len(cmc) - 1)]


class FeatureScatter(keras.callbacks.Callback):
    """After each epoch: a 2-D PCA scatter of the deep features of a few training classes."""

    def __init__(self, features_model, dataset, labels, names, run_dir: RunDir, phase: str):
        super().__init__()
        self.features_model, self.dataset = features_model, dataset
        self.labels, self.names = np.asarray(labels), names
        self.run_dir, self.phase = run_dir, phase
        run_dir.features.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        features = self.features_model.predict(self.dataset, verbose=0)[: len(self.labels)]
        plot_scatter(
            pca_2d(features),
            self.labels,
            self.names,
            f"deep features, epoch {epoch + 1} ({self.phase})",
            self.run_dir.scatter_frame(epoch + 1),
        )


class RunHistory(keras.callbacks.Callback):
    """Appends one entry per epoch to ``history`` (the run's, shared by its phases), writes it
    to ``history.json`` and redraws ``loss.png``.

    Entries are keyed by (phase, epoch): a resumed epoch replaces what a killed run
    wrote for it and everything after it, so the file always reads as one run.
    """

    def __init__(
        self,
        run_dir: RunDir,
        phase: str,
        offset: int,
        history: list[dict],
        cmc: ValidationCMC | None = None,
    ):
        super().__init__()
        self.run_dir, self.phase, self.offset, self.cmc = run_dir, phase, offset, cmc
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        """``epoch`` counts across phases (``fit`` starts each phase at its ``initial_epoch``)."""
        entry = {"phase": self.phase, "epoch": epoch - self.offset, "global_epoch": epoch}
        entry.update({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})
        if self.cmc is not None and self.cmc.last_cmc:
            entry["val_cmc"] = self.cmc.last_cmc
        entry["time"] = time.time()
        self.history[:] = [e for e in self.history if e["global_epoch"] < epoch] + [entry]
        self.run_dir.write_json(self.run_dir.history, self.history)
        plot_losses(self.history, self.run_dir.loss_plot)


class KeepBest(keras.callbacks.Callback):
    """Save the embedder (in float32) whenever validation rank-1 beats every earlier epoch."""

    def __init__(self, embedder: keras.Model, path: Path, best: float):
        super().__init__()
        self.embedder, self.path, self.best = embedder, Path(path), best

    def on_epoch_end(self, epoch, logs=None):
        rank1 = (logs or {}).get("val_rank1")
        if rank1 is not None and rank1 > self.best:
            self.best = float(rank1)
            float32_model(self.embedder).save(self.path)


class PhaseBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` every ``save_freq`` batches *and* at the end of every epoch.

    A killed run rerun with the same command continues at the batch after the last
    backup; the backup is deleted when the phase finishes.
    """

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            backup_now(self, epoch)
