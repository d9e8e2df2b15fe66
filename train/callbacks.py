"""Keras callbacks of a run: validation CMC, the history file, the feature scatter, backups."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from itemrec.train.evaluation.metrics import first_representative_cmc
from itemrec.train.keras_api import keras
from itemrec.train.plots import pca_2d, plot_losses, plot_scatter
from itemrec.train.private_api import backup_now
from itemrec.train.run_dir import RunDir


class ValidationCMC(keras.callbacks.Callback):
    """After each epoch: embed the held-out classes and add ``val_rank1``/``val_rank5`` to logs."""

    def __init__(self, embedder: keras.Model, dataset, labels, max_rank: int = 10):
        super().__init__()
        self.embedder, self.dataset, self.labels = embedder, dataset, np.asarray(labels)
        self.max_rank = max_rank
        self.last_cmc: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        embeddings = self.embedder.predict(self.dataset, verbose=0)
        cmc = first_representative_cmc(embeddings, self.labels, self.max_rank)
        self.last_cmc = [float(v) for v in cmc]
        if logs is not None:
            logs["val_rank1"] = self.last_cmc[0]
            logs["val_rank5"] = self.last_cmc[min(4, len(cmc) - 1)]


class DrawingThrottle:
    """Run a drawing now if ``interval`` s have passed since the last one, else keep it for
    ``flush()`` (the end of the phase). ``interval`` 0: always now."""

    def __init__(self, interval: float = 0.0):
        self.interval = interval
        self._last = -float("inf")
        self._pending = None

    def __call__(self, draw) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            draw()
            self._last, self._pending = now, None
        else:
            self._pending = draw

    def flush(self) -> None:
        if self._pending is not None:
            self._pending()
            self._last, self._pending = time.monotonic(), None


class FeatureScatter(keras.callbacks.Callback):
    """After each epoch: a 2-D PCA scatter of the deep features of a few training classes.

    ``draw_interval`` > 0: a frame at most every that many seconds, and the phase's last one.
    """

    def __init__(
        self,
        features_model,
        dataset,
        labels,
        names,
        run_dir: RunDir,
        phase: str,
        draw_interval: float = 0.0,
    ):
        super().__init__()
        self.features_model, self.dataset = features_model, dataset
        self.labels, self.names = np.asarray(labels), names
        self.run_dir, self.phase = run_dir, phase
        self.throttle = DrawingThrottle(draw_interval)
        run_dir.features.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        if isinstance(self.dataset, np.ndarray):  # a few cached feature rows: one call
            features = self.features_model(self.dataset, training=False).numpy()
        else:  # predict's set-up costs ~0.3 s, worth it only for a pipeline of images
            features = self.features_model.predict(self.dataset, verbose=0)
        self.throttle(
            lambda: plot_scatter(
                pca_2d(features),
                self.labels,
                self.names,
                f"deep features, epoch {epoch + 1} ({self.phase})",
                self.run_dir.scatter_frame(epoch + 1),
            )
        )

    def on_train_end(self, logs=None):
        self.throttle.flush()


class RunHistory(keras.callbacks.Callback):
    """Appends one entry per epoch to ``history.json`` and redraws ``loss.png``.

    Entries are keyed by (phase, epoch): a resumed epoch replaces what a killed run
    wrote for it and everything after it, so the file always reads as one run.
    """

    def __init__(
        self,
        run_dir: RunDir,
        phase: str,
        offset: int,
        cmc: ValidationCMC | None = None,
        draw_interval: float = 0.0,
    ):
        """``draw_interval`` > 0: redraw ``loss.png`` at most that often, and at phase end."""
        super().__init__()
        self.run_dir, self.phase, self.offset, self.cmc = run_dir, phase, offset, cmc
        self.throttle = DrawingThrottle(draw_interval)

    def on_epoch_end(self, epoch, logs=None):
        """``epoch`` counts across phases (``fit`` starts each phase at its ``initial_epoch``)."""
        entry = {"phase": self.phase, "epoch": epoch - self.offset, "global_epoch": epoch}
        entry.update({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})
        if self.cmc is not None and self.cmc.last_cmc:
            entry["val_cmc"] = self.cmc.last_cmc
        entry["time"] = time.time()
        history = [e for e in self.run_dir.read_history() if e["global_epoch"] < epoch]
        history.append(entry)
        self.run_dir.write_json(self.run_dir.history, history)
        self.throttle(lambda: plot_losses(history, self.run_dir.loss_plot))

    def on_train_end(self, logs=None):
        self.throttle.flush()


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
            backup_now(self, epoch)
