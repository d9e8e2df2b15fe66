"""Class folders -> validated file lists -> a split by class -> tf.data pipelines.

``root/<class code>/<image>``: every sub-folder is a class, every image file in it
an example. Files that cannot be decoded are skipped and reported; decoding and
geometry are the device's own (``edge_runtime.images.load_model_input``), so training
sees exactly the pixels the device will.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from itemrec.edge_runtime import folders
from itemrec.edge_runtime.errors import ImageLoadError, InputError
from itemrec.edge_runtime.images import load_image, load_model_input
from itemrec.train.augment import Augmentation, augment
from itemrec.train.keras_api import tf

log = logging.getLogger(__name__)
MIN_IMAGES_PER_CLASS = 2


@dataclasses.dataclass
class ClassFolders:
    """The readable images of a dataset, grouped by class (label = index into ``classes``)."""

    classes: list[str]
    files: list[list[str]]
    skipped: list[dict] = dataclasses.field(default_factory=list)

    @property
    def paths_and_labels(self) -> tuple[list[str], np.ndarray]:
        paths = [path for files in self.files for path in files]
        labels = np.concatenate([np.full(len(f), i, np.int32) for i, f in enumerate(self.files)])
        return paths, labels

    def subset(self, indices) -> ClassFolders:
        return ClassFolders([self.classes[i] for i in indices], [self.files[i] for i in indices])


def readable_class_folders(
    root, min_images: int = MIN_IMAGES_PER_CLASS, skip_small_classes: bool = False, workers: int = 4
) -> ClassFolders:
    """Find the classes under ``root`` and decode every image once to drop unreadable ones."""
    found = folders.scan_class_folders(root)
    candidates = {name: [str(p) for p in files] for name, files in found.items() if files}
    if not candidates:
        raise InputError(f"{root}: no class folders with images (expected {root}/<class>/<image>)")

    all_files = [path for files in candidates.values() for path in files]
    with ThreadPoolExecutor(workers) as pool:
        problems = dict(zip(all_files, pool.map(_problem, all_files), strict=True))
    skipped = [{"path": p, "reason": why} for p, why in problems.items() if why]
    for entry in skipped:
        log.warning("skipping unreadable image %s", entry["reason"])

    classes, files, small = [], [], []
    for name, paths in candidates.items():
        readable = [p for p in paths if not problems[p]]
        if len(readable) >= min_images:
            classes.append(name)
            files.append(readable)
        else:
            small.append(f"{name} ({len(readable)})")
    if small and not skip_small_classes:
        shown = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
        raise InputError(
            f"{root}: {len(small)} class(es) have fewer than {min_images} readable images: "
            f"{shown}; add images or pass --skip-small-classes"
        )
    for entry in small:
        log.warning("skipping class %s: too few readable images", entry)
    if len(classes) < 2:
        raise InputError(f"{root}: at least 2 classes with {min_images}+ images are needed")
    return ClassFolders(classes, files, skipped)


def _problem(path: str) -> str | None:
    try:
        load_image(path)
    except ImageLoadError as err:
        return str(err)
    return None


def split_by_class(data: ClassFolders, val_classes: float, seed: int = 0):
    """Hold ``val_classes`` classes (a count >= 1, or a fraction < 1) out of training.

    Returns ``(train, val)``; ``val`` is None for 0. A fraction holds out at least 2
    classes. The choice is seeded, so a rerun holds out the same classes.
    """
    n = len(data.classes)
    if val_classes <= 0:
        return data, None
    count = int(val_classes) if val_classes >= 1 else max(2, round(val_classes * n))
    if val_classes >= 1 and count != val_classes:
        raise InputError(f"--val-classes {val_classes}: give a whole number or a fraction below 1")
    if n - count < 2:
        raise InputError(f"cannot hold out {count} of {n} classes and keep 2 for training")
    held_out = set(np.random.default_rng(seed).choice(n, size=count, replace=False).tolist())
    kept = [i for i in range(n) if i not in held_out]
    return data.subset(kept), data.subset(sorted(held_out))


def decoded_images(paths, labels, image_size: int) -> tf.data.Dataset:
    """``(image float32 HxWx3 in 0..255, label)`` through the device's loader and geometry."""
    dataset = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int32)))
    return dataset.map(_decoder(image_size), num_parallel_calls=tf.data.AUTOTUNE)


def _decoder(image_size: int):
    def load(path):
        return load_model_input(path.decode(), image_size)

    def decode(path, label):
        image = tf.numpy_function(load, [path], tf.uint8, stateful=False)
        image = tf.ensure_shape(image, [image_size, image_size, 3])
        return tf.cast(image, tf.float32), label

    return decode


def training_dataset(
    data: ClassFolders,
    image_size: int,
    batch_size: int,
    augmentation: Augmentation | None,
    seed: int = 0,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Shuffled, (augmented), batched and prefetched; decoded images are cached in memory.

    ``drop_remainder``: only full batches (a different few images left out each epoch).
    """
    paths, labels = data.paths_and_labels
    dataset = decoded_images(paths, labels, image_size)
    if cache:
        dataset = dataset.cache()
    dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = _augmented(dataset, augmentation, image_size, paths, seed)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def augmented_views(
    data: ClassFolders,
    image_size: int,
    batch_size: int,
    augmentation: Augmentation | None,
    views: int,
    seed: int = 0,
) -> tuple[tf.data.Dataset, np.ndarray]:
    """``views`` augmented copies of every training image, in order, and their labels.

    What the frozen phase's cached features are computed from: the head then learns on the
    same kind of pixels the fine-tuning phase will show it, so the phase switch does not
    jump. Without augmentation one view (the plain images) is enough.
    """
    paths, labels = data.paths_and_labels
    views = views if augmentation is not None else 1
    dataset = decoded_images(paths, labels, image_size).cache().repeat(views)
    dataset = _augmented(dataset, augmentation, image_size, paths, seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE), np.tile(labels, views)


def evaluation_dataset(
    paths, labels, image_size: int, batch_size: int, full_batches: bool = False
) -> tf.data.Dataset:
    """In order, no augmentation: for embeddings, validation and cached features.

    ``full_batches``: the last image repeated to fill the last batch (the caller drops the
    extra predictions), for a prediction distributed over replicas.
    """
    missing = -len(paths) % batch_size if full_batches else 0
    paths = list(paths) + list(paths[-1:]) * missing
    labels = np.concatenate([labels, np.repeat(labels[-1:], missing)])
    return decoded_images(paths, labels, image_size).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pk_indices(labels, p: int, k: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """``steps`` batches of ``p`` random classes x ``k`` of their images (``steps x p*k`` indices).

    Images are drawn without replacement when a class has ``k`` or more, with it otherwise.
    """
    labels = np.asarray(labels)
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    if p > len(members):
        raise InputError(f"a P x K batch needs {p} classes, the data has {len(members)}")
    batches = np.empty((steps, p * k), np.int64)
    for step in range(steps):
        chosen = rng.choice(len(members), size=p, replace=False)
        batches[step] = np.concatenate(
            [rng.choice(members[c], size=k, replace=len(members[c]) < k) for c in chosen]
        )
    return batches


def pk_dataset(
    data: ClassFolders,
    image_size: int,
    p: int,
    k: int,
    augmentation: Augmentation | None,
    seed: int = 0,
) -> tuple[tf.data.Dataset, int]:
    """An endless class-balanced stream of ``p*k`` batches and the steps that make an epoch."""
    paths, labels = data.paths_and_labels
    indices, steps = _pk_index_stream(labels, p, k, seed)
    paths_t, labels_t = tf.constant(paths), tf.constant(labels)
    images = indices.map(lambda i: (paths_t[i], labels_t[i])).map(
        _decoder(image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    images = _augmented(images, augmentation, image_size, paths, seed)
    return images.batch(p * k).prefetch(tf.data.AUTOTUNE), steps


def pk_feature_dataset(features, labels, p: int, k: int, seed: int = 0):
    """:func:`pk_dataset` over precomputed features: ``(dataset, steps per epoch)``."""
    indices, steps = _pk_index_stream(labels, p, k, seed)
    features_t, labels_t = tf.constant(features), tf.constant(np.asarray(labels, np.int32))
    rows = indices.map(lambda i: (features_t[i], labels_t[i]))
    return rows.batch(p * k).prefetch(tf.data.AUTOTUNE), steps


def _pk_index_stream(labels, p: int, k: int, seed: int):
    """An endless stream of example indices, ``p*k`` per batch, and the batches per epoch."""
    steps = max(1, len(labels) // (p * k))
    rng = np.random.default_rng(seed)

    def batches():
        while True:
            yield from pk_indices(labels, p, k, steps, rng)

    stream = tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec([p * k], tf.int64)
    ).unbatch()
    return stream, steps


def _augmented(dataset, augmentation: Augmentation | None, image_size: int, paths, seed: int):
    """``dataset`` augmented; steps that need a second image draw it from ``paths`` at random."""
    if augmentation is None:
        return dataset
    if not augmentation.needs_other_image:
        return dataset.map(
            lambda image, label: (augment(image, image_size, augmentation), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    others = decoded_images(paths, np.zeros(len(paths), np.int32), image_size)
    others = others.shuffle(len(paths), seed=seed + 1, reshuffle_each_iteration=True).repeat()
    return tf.data.Dataset.zip((dataset, others)).map(
        lambda item, other: (augment(item[0], image_size, augmentation, other[0]), item[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
