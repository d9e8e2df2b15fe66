"""One training run: data, model, the two phases (frozen, then fine-tuned), artefacts, resume.

What the run directory holds is listed in :mod:`itemrec.train.run_dir`. Rerunning the same
command into the same directory resumes: finished phases are restored from their
checkpoints, an interrupted phase from its last backup.

Across machines every worker runs this same code: all of them *read* the run directory
(to resume), only the chief *writes* it; the others write a temporary copy of its layout
(:func:`~itemrec.train.distribute.writable_run_dir`, ``docs/multi-machine.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys

import numpy as np

from itemrec.edge_runtime.errors import InputError
from itemrec.train.augment import Augmentation
from itemrec.train.callbacks import (
    CollapseGuard,
    FeatureScatter,
    KeepBest,
    PhaseBackup,
    RunHistory,
    ValidationCMC,
)
from itemrec.train.config import TrainConfig, check_resumable
from itemrec.train.data import (
    ClassFolders,
    augmented_views,
    evaluation_dataset,
    pk_dataset,
    pk_feature_dataset,
    readable_class_folders,
    split_by_class,
    training_dataset,
)
from itemrec.train.distribute import choose_strategy, precision_policy, writable_run_dir
from itemrec.train.keras_api import keras, tf
from itemrec.train.losses import make_objective
from itemrec.train.model import (
    DEEP_FEATURE,
    EMBEDDING,
    build_model,
    embedding_model,
    float32_model,
    head_network,
    pooled_features_model,
    set_backbone_trainable,
)
from itemrec.train.plots import write_gif
from itemrec.train.run_dir import RunDir
from itemrec.train.schedule import WarmupCosine, epochs_for_steps
from itemrec.train.trainer import EmbeddingTrainer
from itemrec.train.whitening import whiten_for_export

log = logging.getLogger(__name__)

#: A cached-features epoch trains in ~0.1 s and drew its two figures in ~1 s (bench_train), so
#: that phase redraws them at most this often (and at its end), and its scatter reads the
#: cached features instead of running the frozen backbone again.
CACHED_DRAW_INTERVAL = 10.0


#: Probe images whose embedding spread the collapse guard watches.
GUARD_PROBES = 64


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    learning_rate: float
    train_backbone: bool


def phases(config: TrainConfig, frozen_steps_per_epoch: int, finetune_steps_per_epoch: int):
    """The frozen and the fine-tuning phase; an epoch count left unset comes from the steps."""

    def epochs(given, steps, per_epoch):
        if given is not None:
            return given
        if steps == 0:
            return 0
        return epochs_for_steps(steps, per_epoch, config.min_epochs, config.max_epochs)

    return [
        Phase(
            "frozen",
            epochs(config.frozen_epochs, config.frozen_steps, frozen_steps_per_epoch),
            config.frozen_lr,
            train_backbone=False,
        ),
        Phase(
            "finetune",
            epochs(config.finetune_epochs, config.finetune_steps, finetune_steps_per_epoch),
            config.finetune_lr,
            train_backbone=True,
        ),
    ]


def train_run(config: TrainConfig, extra_callbacks=()) -> dict:
    """Train (or resume) the run ``config.out``; returns ``summary.json``'s content."""
    config.validate()
    run_dir = RunDir(config.out)
    check_resumable(run_dir, config)
    _check_backbone(config)
    data = readable_class_folders(config.data, skip_small_classes=config.skip_small_classes)
    train_set, val_set = split_by_class(data, config.val_classes, config.seed)
    strategy = choose_strategy()  # before any other TensorFlow op; a cluster connects here
    with writable_run_dir(run_dir, strategy) as out, precision_policy(config.mixed_precision):
        out.write_json(out.config, config.to_dict())
        out.write_skipped(data.skipped)
        _write_classes(out, train_set, val_set)
        if data.skipped:
            log.warning(
                "%d unreadable image(s) skipped, listed in %s", len(data.skipped), out.skipped_txt
            )
        tf.keras.utils.set_random_seed(config.seed)
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
                triplet_margin=config.triplet_margin,
                scale=config.margin_scale,
                angular_margin=config.angular_margin,
                cosine_margin=config.cosine_margin,
                subcenters=config.subcenters,
                seed=config.seed,
            )
        run = _Run(config, run_dir, out, strategy, network, objective, train_set, val_set)
        schedule = phases(config, *run.steps_per_epoch())
        log.info(
            "%s: %d frozen + %d fine-tuning epochs on %d images of %d classes",
            config.loss,
            schedule[0].epochs,
            schedule[1].epochs,
            run.image_count,
            len(train_set.classes),
        )
        for index, phase in enumerate(schedule):
            run.do_phase(
                phase,
                offset=sum(p.epochs for p in schedule[:index]),
                extra_callbacks=extra_callbacks,
            )
        return run.finish()


class _Run:
    """One run's phases. It reads ``run_dir`` (what an earlier, killed run left) and writes
    ``out``: the same directory on the chief, a temporary one on the other workers.

    What decides the course of training (finished phases, the best validation rank-1 so
    far) is read once, here, before any worker trains: every worker then takes the same
    decisions, and saves (collective operations) happen on all of them in the same order.
    """

    def __init__(self, config, run_dir, out, strategy, network, objective, train_set, val_set):
        self.config, self.run_dir, self.out, self.strategy = config, run_dir, out, strategy
        self.network, self.objective = network, objective
        self.train_set, self.val_set = train_set, val_set
        self.size = config.image_size
        self.state = run_dir.read_state()
        self.history = run_dir.read_history()  # RunHistory appends to it
        self.full_batches = _full_batches(strategy, config.batch_size, train_set)
        self.embedder = embedding_model(network)
        self.train_images = None  # built once, its cache shared by both phases
        self.image_count = sum(len(f) for f in train_set.files)

    def steps_per_epoch(self) -> tuple[int, int]:
        """Optimiser steps in one epoch of the frozen and of the fine-tuning phase."""
        config = self.config
        views = config.feature_views if self._augmentation() is not None else 1
        frozen_images = self.image_count * (views if config.cache_features else 1)
        per_batch = config.batch_size
        if self.objective.needs_class_balanced_batches:  # P x K batches: see pk_dataset
            per_batch = (config.batch_size // config.triplet_k) * config.triplet_k
            return max(1, frozen_images // per_batch), max(1, self.image_count // per_batch)
        return math.ceil(frozen_images / per_batch), math.ceil(self.image_count / per_batch)

    # -- phases ---------------------------------------------------------------------------
    def do_phase(self, phase: Phase, offset: int, extra_callbacks=()) -> None:
        if phase.name in self.state["finished_phases"]:
            self._checkpoint().read(self.run_dir.checkpoint(phase.name))
            log.info("phase %s already finished; restored its weights", phase.name)
            return
        if phase.epochs == 0:
            self._finish_phase(phase)
            return
        config = self.config
        set_backbone_trainable(self.network, phase.train_backbone)
        cached = config.cache_features and not phase.train_backbone
        dataset, steps = self._dataset(phase, cached)
        per_epoch = self.steps_per_epoch()[1 if phase.train_backbone else 0]
        with self.strategy.scope():
            network = head_network(self.network) if cached else self.network
            learning_rate = WarmupCosine(
                phase.learning_rate,
                total_steps=phase.epochs * per_epoch,
                warmup_steps=round(config.warmup_fraction * phase.epochs * per_epoch),
            )
            learning_rate.cut.assign(self._lr_cut(offset))
            trainer = EmbeddingTrainer(
                network,
                self.objective,
                backbone_lr_scale=config.backbone_lr_scale if phase.train_backbone else 1.0,
            )
            trainer.build(network.input_shape)  # BackupAndRestore needs a built model
            trainer.compile(
                optimizer=keras.optimizers.SGD(
                    learning_rate,
                    momentum=config.momentum,
                    global_clipnorm=config.clip_norm or None,
                ),
                jit_compile=config.xla,
            )
        callbacks = self._callbacks(phase, offset, cached)
        if config.collapse_guard:
            callbacks.insert(0, self._guard(learning_rate, offset, cached))
        # Epochs count across phases, so TensorBoard's steps and the history continue.
        trainer.fit(
            dataset,
            initial_epoch=offset,
            epochs=offset + phase.epochs,
            steps_per_epoch=steps,
            callbacks=[*callbacks, *extra_callbacks],
            verbose=_keras_verbosity(config.progress),
        )
        self._finish_phase(phase)

    def _earlier_epochs(self, offset: int) -> list[dict]:
        return [e for e in self.history if e["global_epoch"] < offset]

    def _lr_cut(self, offset: int) -> float:
        """The collapse guard's cut of an interrupted phase (1 for a new phase)."""
        resumed = [e for e in self.history if e["global_epoch"] >= offset]
        return resumed[-1].get("lr_cut", 1.0) if resumed else 1.0

    def _guard(self, schedule: WarmupCosine, offset: int, cached: bool) -> CollapseGuard:
        probes = self.val_set if self.val_set is not None else self.train_set
        paths, labels = probes.paths_and_labels
        count = min(GUARD_PROBES, len(paths))
        chosen = np.random.default_rng(self.config.seed).choice(len(paths), count, replace=False)
        images = evaluation_dataset(
            [paths[i] for i in np.sort(chosen)], labels[np.sort(chosen)], self.size, count
        ).map(_image_only)
        if cached:  # the backbone is frozen: its features of the probes are computed once
            features = pooled_features_model(self.network).predict(images, verbose=0)
            head = head_network(self.network)
            embed = keras.Model(head.input, head.output[EMBEDDING])

            def embed_probes():
                return embed(features, training=False).numpy()  # no predict(): 0.07 s an epoch
        else:

            def embed_probes():
                return self.embedder.predict(images, verbose=0)

        earlier = self._earlier_epochs(offset)
        return CollapseGuard(
            embed_probes,
            self.objective.chance_loss(len(self.train_set.classes)),
            schedule.cut,
            reference_loss=earlier[-1]["loss"] if earlier else None,
        )

    def _finish_phase(self, phase: Phase) -> None:
        self._checkpoint().write(self.out.checkpoint(phase.name))
        self.state["finished_phases"].append(phase.name)
        self.out.write_json(self.out.state, self.state)

    def _checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(network=self.network, objective=self.objective)

    # -- data -----------------------------------------------------------------------------
    def _dataset(self, phase: Phase, cached: bool):
        config = self.config
        if cached:
            return self._cached_features()
        augmentation = self._augmentation()
        if self.objective.needs_class_balanced_batches:
            k = config.triplet_k
            return pk_dataset(
                self.train_set, self.size, config.batch_size // k, k, augmentation, seed=config.seed
            )
        if self.train_images is None:
            self.train_images = training_dataset(
                self.train_set,
                self.size,
                config.batch_size,
                augmentation,
                seed=config.seed,
                drop_remainder=self.full_batches,
            )
        return self.train_images, None

    def _augmentation(self) -> Augmentation | None:
        config = self.config
        if not config.augment or not (config.augmentation_steps or config.flip):
            return None
        return Augmentation.named(config.augmentation_steps, flip=config.flip)

    def _cached_features(self) -> tuple[tf.data.Dataset, int | None]:
        """Backbone features of ``feature_views`` augmented views of every training image,
        computed once: the head trains on the kind of pixels fine-tuning will show it."""
        config = self.config
        images, labels = augmented_views(
            self.train_set,
            self.size,
            config.batch_size,
            self._augmentation(),
            config.feature_views,
            seed=config.seed,
        )
        features = pooled_features_model(self.network).predict(images, verbose=0)
        features = features.astype(np.float32)
        log.info("cached backbone features of %d image views", len(features))
        self.cached = (features, np.asarray(labels))
        if self.objective.needs_class_balanced_batches:
            k = config.triplet_k
            return pk_feature_dataset(features, labels, config.batch_size // k, k, config.seed)
        dataset = tf.data.Dataset.from_tensor_slices(self.cached)
        dataset = dataset.shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
        batches = dataset.batch(config.batch_size, drop_remainder=self.full_batches)
        return batches.prefetch(tf.data.AUTOTUNE), None

    # -- callbacks ------------------------------------------------------------------------
    def _callbacks(self, phase: Phase, offset: int, cached: bool = False) -> list:
        out = self.out
        draw_interval = CACHED_DRAW_INTERVAL if cached else 0.0
        # Every worker names the run directory's backup: all restore from the chief's, and
        # Keras sends the other workers' writes to a temporary folder beside it.
        backup = PhaseBackup(
            self.run_dir.backup(phase.name), save_freq=self.config.checkpoint_every
        )
        callbacks = [backup]
        cmc = None
        if self.val_set is not None:
            paths, labels = self.val_set.paths_and_labels
            data = evaluation_dataset(
                paths, labels, self.size, self.config.batch_size, self.full_batches
            )
            cmc = ValidationCMC(self.embedder, data, labels)
            best = max([e.get("val_rank1", -1.0) for e in self._earlier_epochs(offset)] or [-1.0])
            callbacks += [cmc, KeepBest(self.embedder, out.best_embedder, best)]
        if self.config.scatter_classes > 0:
            callbacks.append(self._scatter(phase, cached, draw_interval))
        callbacks.append(RunHistory(out, phase.name, offset, self.history, cmc, draw_interval))
        if _tensorboard_installed():
            callbacks.append(keras.callbacks.TensorBoard(str(out.logs), write_graph=False))
        return callbacks

    def _scatter(self, phase: Phase, cached: bool, draw_interval: float) -> FeatureScatter:
        rng = np.random.default_rng(self.config.seed)
        count = min(self.config.scatter_classes, len(self.train_set.classes))
        chosen = np.sort(rng.choice(len(self.train_set.classes), size=count, replace=False))
        if cached:  # the backbone is frozen: its features of these images are the cached ones
            features, all_labels = self.cached
            mask = np.isin(all_labels, chosen)
            data, labels = features[mask], all_labels[mask]
            head = head_network(self.network)
            model = keras.Model(head.input, head.output[DEEP_FEATURE])
        else:
            paths = [p for c in chosen for p in self.train_set.files[c]]
            labels = np.concatenate([np.full(len(self.train_set.files[c]), c) for c in chosen])
            data = evaluation_dataset(
                paths, labels, self.size, self.config.batch_size, self.full_batches
            )
            model = keras.Model(self.network.input, self.network.get_layer(DEEP_FEATURE).output)
        return FeatureScatter(
            model, data, labels, self.train_set.classes, self.out, phase.name, draw_interval
        )

    # -- artefacts ------------------------------------------------------------------------
    def finish(self) -> dict:
        out = self.out
        float32_model(self.network).save(out.model)
        whitening = self._whitening()
        float32_model(whitening.pop("embedder")).save(out.embedder)
        if hasattr(self.objective, "centers"):
            np.save(out.centers, self.objective.centers.numpy())
        write_gif(out.scatter_frames(), out.features_gif)
        history = self.history
        ranked = [e for e in history if "val_rank1" in e]
        best = max(ranked, key=lambda e: e["val_rank1"], default=None)
        summary = {
            "epochs": len(history),
            "classes": len(self.train_set.classes),
            "val_classes": 0 if self.val_set is None else len(self.val_set.classes),
            "final": history[-1] if history else None,
            "best_epoch": None if best is None else best["global_epoch"],
            "best_val_rank1": None if best is None else best["val_rank1"],
            "whitening": whitening,
        }
        out.write_json(out.summary, summary)
        return summary

    def _whitening(self) -> dict:
        """The embedder to export (whitened unless turned off or impossible) and its record."""
        config = self.config
        embedder, record = whiten_for_export(
            float32_model(self.embedder),
            self.train_set,
            self.size,
            config.batch_size,
            config.whitening,
        )
        if "not_whitened" in record:
            log.info("embeddings not whitened: %s", record["not_whitened"])
        elif record["shrink"]:
            log.info("whitened the embeddings on %d training images", record["images"])
        return {"embedder": embedder, **record}


def _image_only(image, _label):
    return image


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


def _full_batches(strategy, batch_size: int, train_set: ClassFolders) -> bool:
    """Whether every batch must be full: distributed, a last batch smaller than the replica
    count leaves a replica without images, and TensorFlow's CPU convolutions fail on an
    empty batch (oneDNN, TF 2.21: "input depth must be evenly divisible by filter depth").
    Training then drops that batch; predictions fill it with copies of the last image."""
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return False
    images = sum(len(files) for files in train_set.files)
    if not replicas <= batch_size <= images:
        raise InputError(
            f"--batch-size {batch_size} must be at least the {replicas} replicas and at most "
            f"the {images} training images"
        )
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
