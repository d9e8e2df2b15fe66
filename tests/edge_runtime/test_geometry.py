import numpy as np
import pytest

from itemrec.edge_runtime.geometry import center_crop_box, center_crop_resize


@pytest.mark.parametrize(
    "image_hw, target_hw, box",
    [
        ((100, 200), (50, 50), (0, 50, 100, 100)),  # landscape -> square: trim left/right
        ((200, 100), (50, 50), (50, 0, 100, 100)),  # portrait -> square: trim top/bottom
        ((101, 101), (10, 10), (0, 0, 101, 101)),  # same aspect: no crop
        ((480, 640), (224, 112), (0, 200, 480, 240)),  # 1:2 target from 4:3
        ((5, 8), (2, 2), (0, 1, 5, 5)),  # odd remainder goes right/bottom
    ],
)
def test_center_crop_box(image_hw, target_hw, box):
    assert center_crop_box(*image_hw, *target_hw) == box


def test_center_crop_resize_keeps_the_centre_and_aspect():
    image = np.zeros((60, 120, 3), np.uint8)
    image[:, 30:90] = 200  # the central square
    out = center_crop_resize(image, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out == 200).all()


def test_resize_is_bilinear_with_half_pixel_centres():
    # A 1x2 ramp (0, 100) widened to 1x4 (same aspect, no crop): output centres sample the
    # input at -0.25, 0.25, 0.75, 1.25 -> clamped weights 0, 0.25, 0.75, 1.
    image = np.array([[[0] * 3, [100] * 3]], np.uint8)
    out = center_crop_resize(image, (1, 4))
    assert out.shape == (1, 4, 3)
    np.testing.assert_array_equal(out[0, :, 0], [0, 25, 75, 100])


def test_rejects_empty_sizes():
    with pytest.raises(ValueError):
        center_crop_box(0, 10, 5, 5)
