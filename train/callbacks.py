"""Keras callbacks of a run: validation CMC, the history file, the feature scatter, backups,
and the collapse guard."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from itemrec.train.evaluation.metrics import first_representative_cmc
from itemrec.train.keras_api import keras, tf
from itemrec.train.model import float32_model
from itemrec.train.plots import pca_2d, plot_losses, plot_scatter
from itemrec.train.private_api import backup_now
from itemrec.train.run_dir import RunDir

log = logging.getLogger(__name__)


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
            features = self.features_model.predict(self.dataset, verbose=0)[: len(self.labels)]
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
        draw_interval: float = 0.0,
    ):
        """``draw_interval`` > 0: redraw ``loss.png`` at most that often, and at phase end."""
        super().__init__()
        self.run_dir, self.phase, self.offset, self.cmc = run_dir, phase, offset, cmc
        self.history = history
        self.throttle = DrawingThrottle(draw_interval)

    def on_epoch_end(self, epoch, logs=None):
        """``epoch`` counts across phases (``fit`` starts each phase at its ``initial_epoch``)."""
        entry = {"phase": self.phase, "epoch": epoch - self.offset, "global_epoch": epoch}
        entry.update({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})
        if self.cmc is not None and self.cmc.last_cmc:
            entry["val_cmc"] = self.cmc.last_cmc
        entry["time"] = time.time()
        self.history[:] = [e for e in self.history if e["global_epoch"] < epoch] + [entry]
        self.run_dir.write_json(self.run_dir.history, self.history)
        history = list(self.history)  # as it is now, whenever the throttle draws it
        self.throttle(lambda: plot_losses(history, self.run_dir.loss_plot))

    def on_train_end(self, logs=None):
        self.throttle.flush()


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


#: Below this :func:`embedding_spread` the embeddings have collapsed (the guard's ``min_spread``;
#: healthy runs log 0.7-0.95, a collapsed one 0.00).
COLLAPSED_SPREAD = 0.02


def embedding_spread(embeddings) -> float:
    """Mean squared distance of L2-normalised embeddings to their mean: ``1 - ||mean e||^2``.

    About 0.5-0.9 for a healthy model on varied images (``history.json`` logs it every
    epoch); 0 when every image maps to the same point.
    """
    embeddings = np.asarray(embeddings, np.float64)
    return float(np.mean(np.sum((embeddings - embeddings.mean(axis=0)) ** 2, axis=1)))


class CollapseGuard(keras.callbacks.Callback):
    """After each epoch: has training destroyed the features? If so, undo the epoch.

    An epoch has collapsed when its loss is not finite, when the embeddings of a fixed set
    of probe images (``embed_probes()``) have (nearly) no spread left
    (:func:`embedding_spread` below ``min_spread`` and below a tenth of the phase's start;
    not watched when the phase starts below it, as an untrained backbone may), or when the
    loss has climbed more than half of the way from the last good epoch's back to
    ``chance_loss`` (the loss of a model that learnt nothing, ln C for softmax) after it
    had been clearly below it; three quarters of the way at a phase's first epoch, measured
    against the previous phase: the head meets fresh augmentations there (on the sample the
    loss rose from 2.64 to 3.78 of a chance 5.60, 38 % of the way, in a healthy run). Then
    the weights of the last good epoch are restored (the network's and the objective's),
    the optimiser's momentum is zeroed, the learning rate is cut by ``cut``
    (``schedule_cut`` multiplies the schedule) and a warning says so. After
    ``max_restores`` restores training stops on the good weights.

    Each epoch's ``embedding_spread``, ``lr_cut`` and ``collapse_restored`` (1 when the
    epoch was undone) go into the logs, hence into ``history.json``.
    """

    def __init__(
        self,
        embed_probes,
        chance_loss: float,
        schedule_cut,
        reference_loss: float | None = None,
        min_spread: float = COLLAPSED_SPREAD,
        cut: float = 0.1,
        max_restores: int = 3,
    ):
        super().__init__()
        self.embed_probes = embed_probes
        self.chance_loss, self.schedule_cut = float(chance_loss), schedule_cut
        self.reference_loss = reference_loss
        self.min_spread, self.cut, self.max_restores = min_spread, cut, max_restores
        self.restores = 0
        self.good_weights: list | None = None
        self.good_epoch: int | None = None
        self.spread_floor = min_spread

    def _variables(self) -> list:
        return [*self.model.network.weights, *self.model.objective.variables]

    def on_train_begin(self, logs=None):
        self.good_weights = [v.numpy() for v in self._variables()]
        start = self._spread()
        self.spread_floor = min(self.min_spread, 0.1 * start) if start >= self.min_spread else 0.0

    def _spread(self) -> float:
        return embedding_spread(self.embed_probes())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        spread = self._spread()
        loss = float(logs.get("loss", float("nan")))
        logs["embedding_spread"] = spread
        why = self._collapse_reason(loss, spread)
        if why is None:
            self.good_weights = [v.numpy() for v in self._variables()]
            self.good_epoch, self.reference_loss = epoch, loss
            logs["collapse_restored"] = 0.0
        else:
            self._restore(epoch, why)
            logs["collapse_restored"] = 1.0
        logs["lr_cut"] = float(self.schedule_cut.numpy())

    def _collapse_reason(self, loss: float, spread: float) -> str | None:
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if spread < self.spread_floor:
            return f"the embeddings have collapsed (spread {spread:.4f} < {self.spread_floor:.4f})"
        reference, chance = self.reference_loss, self.chance_loss
        if reference is not None and reference < 0.9 * chance:
            share = 0.5 if self.good_epoch is not None else 0.75
            if loss > reference + share * (chance - reference):
                return (
                    f"the loss jumped from {reference:.3f} to {loss:.3f}, more than "
                    f"{share:.0%} of the way back to chance ({chance:.3f})"
                )
        return None

    def _restore(self, epoch: int, why: str) -> None:
        for variable, value in zip(self._variables(), self.good_weights, strict=True):
            variable.assign(value)
        iterations = self.model.optimizer.iterations
        for variable in self.model.optimizer.variables:
            if variable is not iterations:
                variable.assign(tf.zeros_like(variable))
        self.restores += 1
        restored = (
            "the phase's start" if self.good_epoch is None else f"epoch {self.good_epoch + 1}"
        )
        if self.restores > self.max_restores:
            self.model.stop_training = True
            log.error(
                "collapse guard: epoch %d: %s; restored the weights of %s and stopped the "
                "phase after %d restores",
                epoch + 1,
                why,
                restored,
                self.max_restores,
            )
            return
        self.schedule_cut.assign(self.schedule_cut * self.cut)
        log.warning(
            "collapse guard: epoch %d: %s; restored the weights of %s and cut the learning "
            "rate to %.3g x its schedule",
            epoch + 1,
            why,
            restored,
            float(self.schedule_cut.numpy()),
        )
