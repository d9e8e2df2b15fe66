"""Class folders, unreadable files, the split by class, P x K batches and the pipelines."""

import numpy as np
import pytest

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.images import load_model_input
from itemrec.train.augment import Augmentation, augment
from itemrec.train.data import (
    evaluation_dataset,
    pk_indices,
    readable_class_folders,
    split_by_class,
    training_dataset,
)
from itemrec.train.keras_api import tf
from itemrec.train.run_dir import RunDir


def test_unreadable_files_are_skipped_and_reported(class_folders, tmp_path):
    (class_folders / "item00" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (class_folders / "item01" / "notes.txt").write_text("not an image: ignored")
    data = readable_class_folders(class_folders)
    assert data.classes == [f"item{i:02d}" for i in range(5)]
    assert [len(f) for f in data.files] == [3] * 5
    assert [s["path"] for s in data.skipped] == [str(class_folders / "item00" / "broken.jpg")]
    assert "broken.jpg" in data.skipped[0]["reason"]
    run_dir = RunDir(tmp_path)
    run_dir.write_skipped(data.skipped)
    assert run_dir.skipped_txt.read_text().strip().endswith("broken.jpg")
    assert run_dir.read_json(run_dir.skipped_json) == data.skipped


def test_small_classes_are_refused_or_skipped(class_folders):
    for name in ("1.png", "2.png"):
        (class_folders / "item03" / name).unlink()
    with pytest.raises(InputError, match=r"item03 \(1\).*--skip-small-classes"):
        readable_class_folders(class_folders)
    data = readable_class_folders(class_folders, skip_small_classes=True)
    assert "item03" not in data.classes and len(data.classes) == 4


def test_missing_or_empty_directories(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        readable_class_folders(tmp_path / "absent")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(InputError, match="no class folders with images"):
        readable_class_folders(tmp_path / "empty")


def test_split_by_class_is_seeded_and_disjoint(class_folders):
    data = readable_class_folders(class_folders)
    train, val = split_by_class(data, 2, seed=3)
    again, _ = split_by_class(data, 2, seed=3)
    assert len(val.classes) == 2 and len(train.classes) == 3
    assert not set(train.classes) & set(val.classes)
    assert train.classes == again.classes
    assert len(split_by_class(data, 0.1)[1].classes) == 2  # a fraction keeps at least 2
    assert split_by_class(data, 0)[1] is None
    with pytest.raises(InputError, match="keep 2 for training"):
        split_by_class(data, 4)


def test_pk_batches_hold_p_classes_times_k():
    labels = np.repeat(np.arange(6), [2, 3, 4, 5, 2, 6])
    batches = pk_indices(labels, p=3, k=4, steps=5, rng=np.random.default_rng(0))
    assert batches.shape == (5, 12)
    for batch in batches:
        classes = labels[batch].reshape(3, 4)
        assert (classes == classes[:, :1]).all()  # K images of one class per group
        assert len(set(classes[:, 0])) == 3  # P different classes
        big = [g for g in batch.reshape(3, 4) if (labels == labels[g[0]]).sum() >= 4]
        assert all(len(set(g)) == 4 for g in big)  # without replacement where possible


def test_pipeline_pixels_are_the_devices(class_folders):
    data = readable_class_folders(class_folders)
    paths, labels = data.paths_and_labels
    images, got_labels = next(iter(evaluation_dataset(paths, labels, 24, batch_size=4)))
    for image, path in zip(images.numpy(), paths[:4], strict=True):
        np.testing.assert_array_equal(image, load_model_input(path, 24).astype(np.float32))
    np.testing.assert_array_equal(got_labels, labels[:4])
    batch, batch_labels = next(iter(training_dataset(data, 24, 15, None, seed=1)))
    assert batch.shape == (15, 24, 24, 3) and sorted(batch_labels.numpy()) == sorted(labels)


def test_full_batches_for_distribution(class_folders):
    """Training drops the last partial batch; evaluation repeats its last image to fill it."""
    data = readable_class_folders(class_folders)  # 15 images
    paths, labels = data.paths_and_labels
    training = training_dataset(data, 24, 4, None, drop_remainder=True)
    assert [len(batch_labels) for _, batch_labels in training] == [4, 4, 4]
    plain = np.concatenate([images for images, _ in evaluation_dataset(paths, labels, 24, 4)])
    padded = list(evaluation_dataset(paths, labels, 24, 4, full_batches=True))
    assert [len(images) for images, _ in padded] == [4, 4, 4, 4]
    images = np.concatenate([images for images, _ in padded])
    np.testing.assert_array_equal(images[:15], plain)
    np.testing.assert_array_equal(images[15], plain[14])
    padded_labels = np.concatenate([batch_labels for _, batch_labels in padded])
    np.testing.assert_array_equal(padded_labels, [*labels, labels[-1]])


def test_augmentation_keeps_size_and_range():
    tf.random.set_seed(0)
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (40, 40, 3)), tf.float32)
    out = augment(image, 32, Augmentation()).numpy()
    assert out.shape == (32, 32, 3) and out.min() >= 0 and out.max() <= 255
    assert np.abs(out - tf.image.resize(image, (32, 32)).numpy()).mean() > 1  # it changed
