"""Each augmentation step alone: what it does to a picture, checked on pixels."""

import numpy as np
import pytest

from itemrec.train.augment import (
    Augmentation,
    _gaussian_kernel,
    _motion_kernel,
    _paste,
    augment,
)
from itemrec.train.config import AUGMENTATIONS
from itemrec.train.data import augmented_views, readable_class_folders
from itemrec.train.keras_api import tf

SIZE = 32


def _picture():
    """A white square with a black bar across its top half, on grey, with a little noise."""
    image = np.full((SIZE, SIZE, 3), 128.0, np.float32)
    image[8:24, 8:24] = 235.0
    image[10:14, 8:24] = 20.0
    noise = np.random.default_rng(0).normal(0, 10, image.shape)
    return tf.constant(np.clip(image + noise, 0, 255), tf.float32)


def _only(step, **changes):
    return Augmentation(**{**Augmentation.named([step]).__dict__, **changes})


@pytest.mark.parametrize("step", AUGMENTATIONS)
def test_each_step_alone_changes_the_picture_within_range(step):
    tf.random.set_seed(1)
    image, other = _picture(), tf.fill((SIZE, SIZE, 3), 30.0)
    changes = {f"{step}_probability": 1.0} if step in ("clutter", "occlusion", "blur") else {}
    outputs = [augment(image, SIZE, _only(step, **changes), other).numpy() for _ in range(4)]
    for out in outputs:
        assert out.shape == (SIZE, SIZE, 3) and out.min() >= 0 and out.max() <= 255
    assert max(np.abs(out - image.numpy()).mean() for out in outputs) > 0.5, step


def test_no_step_is_the_identity_and_flip_is_off_by_default():
    image = _picture()
    out = augment(image, SIZE, Augmentation(steps=())).numpy()
    np.testing.assert_allclose(out, image.numpy(), atol=1e-3)  # flip is off: nothing moved
    assert not Augmentation().flip and set(Augmentation().steps) == set(AUGMENTATIONS)
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmentation.named(["mirror"])


def test_clutter_shrinks_the_product_onto_the_other_image():
    tf.random.set_seed(2)
    aug = _only("clutter", clutter_probability=1.0, clutter_scale=(0.5, 0.5))
    out = augment(_picture(), SIZE, aug, tf.fill((SIZE, SIZE, 3), 30.0)).numpy()
    background = np.isclose(out[..., 0], 30.0, atol=0.5)
    assert background.mean() == pytest.approx(0.75, abs=0.02)  # a 16 x 16 product on 32 x 32


def test_occlusion_covers_the_chosen_share_with_the_other_image():
    tf.random.set_seed(3)
    aug = _only("occlusion", occlusion_probability=1.0, occlusion_area=(0.1, 0.1))
    out = augment(tf.fill((SIZE, SIZE, 3), 200.0), SIZE, aug, tf.fill((SIZE, SIZE, 3), 10.0))
    covered = np.isclose(out.numpy()[..., 0], 10.0).mean()
    assert 0.06 <= covered <= 0.14


def test_perspective_moves_corners_but_keeps_the_middle():
    tf.random.set_seed(4)
    image = _picture()
    out = augment(image, SIZE, _only("perspective", perspective=0.1)).numpy()
    assert np.abs(out - image.numpy()).mean() > 1
    assert out[18:20, 15:17].min() > 180  # below the bar, the square is still white


def test_blur_kernels_are_normalized_and_shaped():
    gaussian = _gaussian_kernel(tf.constant(1.0)).numpy()
    assert gaussian.sum() == pytest.approx(1.0) and gaussian.argmax() == 40  # the center
    horizontal = _motion_kernel(tf.constant(7.0), tf.constant(0.0)).numpy()
    assert horizontal.sum() == pytest.approx(1.0)
    assert np.count_nonzero(horizontal[4]) == 7 and np.count_nonzero(horizontal) == 7
    vertical = _motion_kernel(tf.constant(7.0), tf.constant(np.pi / 2, tf.float32)).numpy()
    assert np.count_nonzero(vertical[:, 4]) == 7


def test_paste_places_a_patch_exactly():
    canvas = tf.zeros((6, 6, 3))
    out = _paste(canvas, tf.ones((2, 3, 3)), tf.constant(1), tf.constant(2)).numpy()
    assert out[..., 0].sum() == 6 and out[1:3, 2:5].min() == 1


def test_augmented_views_repeat_every_image(class_folders):
    data = readable_class_folders(class_folders)
    dataset, labels = augmented_views(data, 24, 7, Augmentation(), views=3)
    images = np.concatenate([batch.numpy() for batch, _ in dataset])
    got = np.concatenate([label.numpy() for _, label in dataset])
    assert len(images) == 3 * 15 and np.array_equal(got, labels)
    np.testing.assert_array_equal(labels, np.tile(data.paths_and_labels[1], 3))
    assert np.abs(images[:15] - images[15:30]).mean() > 1  # different views of the same image
    _, plain = augmented_views(data, 24, 7, None, views=3)
    assert len(plain) == 15  # without augmentation one view is enough
