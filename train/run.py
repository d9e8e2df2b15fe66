"""One training run: data, model, the two phases (frozen, then fine-tuned), artefacts, resume.

What the run directory holds is listed in :mod:`itemrec.train.run_dir`. Rerunning the same
command into the same directory resumes: finished phases are restored from their
checkpoints, an interrupted phase from its last backup.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

import numpy as np

from itemrec.edge_runtime.errors import InputError
from itemrec.train.augment import Augmentation
from itemrec.train.callbacks import (
    FeatureScatter,
    KeepBest,
    PhaseBackup,
    RunHistory,
    ValidationCMC,
)
from itemrec.train.config import TrainConfig, check_resumable
from itemrec.train.data import (
    ClassFolders,
    evaluation_dataset,
    pk_dataset,
    readable_class_folders,
    split_by_class,
    training_dataset,
)
from itemrec.train.distribute import choose_strategy, precision_policy
from itemrec.train.keras_api import keras, tf
from itemrec.train.losses import make_objective
from itemrec.train.model import (
    DEEP_FEATURE,
    build_model,
    embedding_model,
    head_network,
    pooled_features_model,
    set_backbone_trainable,
)
from itemrec.train.plots import write_gif
from itemrec.train.run_dir import RunDir
from itemrec.train.trainer import EmbeddingTrainer

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    learning_rate: float
    train_backbone: bool


def phases(config: TrainConfig) -> list[Phase]:
    return [
        Phase("frozen", config.frozen_epochs, config.frozen_lr, train_backbone=False),
        Phase("finetune", config.finetune_epochs, config.finetune_lr, train_backbone=True),
    ]


def train_run(config: TrainConfig, extra_callbacks=()) -> dict:
    """Train (or resume) the run ``config.out``; returns ``summary.json``'s content."""
    config.validate()
    run_dir = RunDir(config.out)
    check_resumable(run_dir, config)
    _check_backbone(config)
    data = readable_class_folders(config.data, skip_small_classes=config.skip_small_classes)
    train_set, val_set = split_by_class(data, config.val_classes, config.seed)
    run_dir.write_json(run_dir.config, config.to_dict())
    run_dir.write_skipped(data.skipped)
    _write_classes(run_dir, train_set, val_set)
    if data.skipped:
        log.warning(
            "%d unreadable image(s) skipped, listed in %s", len(data.skipped), run_dir.skipped_txt
        )

    tf.keras.utils.set_random_seed(config.seed)
    strategy = choose_strategy()
    with precision_policy(config.mixed_precision):
        with strategy.scope():
            network = build_model(
                config.backbone,
                config.image_size,
                len(train_set.classes),
                weights=config.weights,
                embedding_size=config.embedding_size,
                hidden_units=config.hidden_units,
                dropout=config.dropout,
                prelu=config.prelu,
            )
            objective = make_objective(
                config.loss,
                len(train_set.classes),
                config.embedding_size,
                lam=config.center_lambda,
                alpha=config.center_alpha,
                margin=config.triplet_margin,
            )
        run = _Run(config, run_dir, strategy, network, objective, train_set, val_set)
        for index, phase in enumerate(phases(config)):
            run.do_phase(
                phase,
                offset=sum(p.epochs for p in phases(config)[:index]),
                extra_callbacks=extra_callbacks,
            )
        return run.finish()


class _Run:
    def __init__(self, config, run_dir, strategy, network, objective, train_set, val_set):
        self.config, self.run_dir, self.strategy = config, run_dir, strategy
        self.network, self.objective = network, objective
        self.train_set, self.val_set = train_set, val_set
        self.size = config.image_size
        self.state = run_dir.read_state()
        self.embedder = embedding_model(network)
        self.train_images = None  # built once, its cache shared by both phases

    # -- phases ---------------------------------------------------------------------------
    def do_phase(self, phase: Phase, offset: int, extra_callbacks=()) -> None:
        if phase.name in self.state["finished_phases"]:
            self._checkpoint().read(self.run_dir.checkpoint(phase.name))
            log.info("phase %s already finished; restored its weights", phase.name)
            return
        if phase.epochs == 0:
            self._finish_phase(phase)
            return
        set_backbone_trainable(self.network, phase.train_backbone)
        cached = self.config.cache_features and not phase.train_backbone
        dataset, steps = self._dataset(phase, cached)
        with self.strategy.scope():
            network = head_network(self.network) if cached else self.network
            trainer = EmbeddingTrainer(network, self.objective)
            trainer.build(network.input_shape)  # BackupAndRestore needs a built model
            trainer.compile(
                optimizer=keras.optimizers.SGD(phase.learning_rate, momentum=self.config.momentum),
                jit_compile=self.config.xla,
            )
        # Epochs count across phases, so TensorBoard's steps and the history continue.
        trainer.fit(
            dataset,
            initial_epoch=offset,
            epochs=offset + phase.epochs,
            steps_per_epoch=steps,
            callbacks=[*self._callbacks(phase, offset), *extra_callbacks],
            verbose=_keras_verbosity(self.config.progress),
        )
        self._finish_phase(phase)

    def _finish_phase(self, phase: Phase) -> None:
        self._checkpoint().write(self.run_dir.checkpoint(phase.name))
        self.state["finished_phases"].append(phase.name)
        self.run_dir.write_json(self.run_dir.state, self.state)

    def _checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(network=self.network, objective=self.objective)

    # -- data -----------------------------------------------------------------------------
    def _dataset(self, phase: Phase, cached: bool):
        config = self.config
        if cached:
            return self._cached_features(), None
        augmentation = Augmentation(flip=config.flip) if config.augment else None
        if self.objective.needs_class_balanced_batches:
            k = config.triplet_k
            return pk_dataset(
                self.train_set, self.size, config.batch_size // k, k, augmentation, seed=config.seed
            )
        if self.train_images is None:
            self.train_images = training_dataset(
                self.train_set, self.size, config.batch_size, augmentation, seed=config.seed
            )
        return self.train_images, None

    def _cached_features(self) -> tf.data.Dataset:
        """Backbone features of every training image, computed once (no augmentation)."""
        paths, labels = self.train_set.paths_and_labels
        images = evaluation_dataset(paths, labels, self.size, self.config.batch_size)
        features = pooled_features_model(self.network).predict(images, verbose=0)
        log.info("cached backbone features of %d images", len(features))
        dataset = tf.data.Dataset.from_tensor_slices((features.astype(np.float32), labels))
        dataset = dataset.shuffle(len(labels), seed=self.config.seed)
        return dataset.batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)

    # -- callbacks ------------------------------------------------------------------------
    def _callbacks(self, phase: Phase, offset: int) -> list:
        run_dir = self.run_dir
        backup = PhaseBackup(run_dir.backup(phase.name), save_freq=self.config.checkpoint_every)
        callbacks = [backup]
        cmc = None
        if self.val_set is not None:
            paths, labels = self.val_set.paths_and_labels
            data = evaluation_dataset(paths, labels, self.size, self.config.batch_size)
            cmc = ValidationCMC(self.embedder, data, labels)
            best = max(
                [
                    e.get("val_rank1", -1.0)
                    for e in run_dir.read_history()
                    if e["global_epoch"] < offset
                ]
                or [-1.0]
            )
            callbacks += [cmc, KeepBest(self.embedder, run_dir.best_embedder, best)]
        if self.config.scatter_classes > 0:
            callbacks.append(self._scatter(phase))
        callbacks.append(RunHistory(run_dir, phase.name, offset, cmc))
        if _tensorboard_installed():
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir.logs), write_graph=False))
        return callbacks

    def _scatter(self, phase: Phase) -> FeatureScatter:
        rng = np.random.default_rng(self.config.seed)
        count = min(self.config.scatter_classes, len(self.train_set.classes))
        chosen = np.sort(rng.choice(len(self.train_set.classes), size=count, replace=False))
        paths = [p for c in chosen for p in self.train_set.files[c]]
        labels = np.concatenate([np.full(len(self.train_set.files[c]), c) for c in chosen])
        data = evaluation_dataset(paths, labels, self.size, self.config.batch_size)
        features = keras.Model(self.network.input, self.network.get_layer(DEEP_FEATURE).output)
        return FeatureScatter(
            features, data, labels, self.train_set.classes, self.run_dir, phase.name
        )

    # -- artefacts ------------------------------------------------------------------------
    def finish(self) -> dict:
        run_dir = self.run_dir
        self.network.save(run_dir.model)
        self.embedder.save(run_dir.embedder)
        if hasattr(self.objective, "centers"):
            np.save(run_dir.centers, self.objective.centers.numpy())
        write_gif(run_dir.scatter_frames(), run_dir.features_gif)
        history = run_dir.read_history()
        ranked = [e for e in history if "val_rank1" in e]
        best = max(ranked, key=lambda e: e["val_rank1"], default=None)
        summary = {
            "epochs": len(history),
            "classes": len(self.train_set.classes),
            "val_classes": 0 if self.val_set is None else len(self.val_set.classes),
            "final": history[-1] if history else None,
            "best_epoch": None if best is None else best["global_epoch"],
            "best_val_rank1": None if best is None else best["val_rank1"],
        }
        run_dir.write_json(run_dir.summary, summary)
        return summary


def _keras_verbosity(progress):
    """``auto``: Keras' live progress bar on a terminal, one line per epoch in a log file."""
    if progress == "auto":
        return 1 if sys.stdout.isatty() else 2
    return progress


def _tensorboard_installed() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return False
    return True


def _check_backbone(config: TrainConfig) -> None:
    from itemrec.train.backbones import BACKBONES, default_image_size

    if config.backbone not in BACKBONES:
        raise InputError(
            f"unknown backbone {config.backbone!r}; choose one of {', '.join(BACKBONES)}"
        )
    if not config.image_size:
        config.image_size = default_image_size(config.backbone)


def _write_classes(run_dir: RunDir, train_set: ClassFolders, val_set: ClassFolders | None) -> None:
    classes = {
        "train": train_set.classes,  # label i is train[i]
        "val": [] if val_set is None else val_set.classes,
        "train_images": sum(len(f) for f in train_set.files),
        "val_images": 0 if val_set is None else sum(len(f) for f in val_set.files),
    }
    run_dir.write_json(run_dir.classes, classes)
