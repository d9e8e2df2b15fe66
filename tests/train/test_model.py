"""The embedding network: outputs, the stripped embedder, saving, the cached-feature head."""

import numpy as np
import pytest
from train_helpers import tiny_backbone

import itemrec.train  # noqa: F401  (selects tf_keras)
from itemrec.train.keras_api import keras
from itemrec.train.model import (
    backbone_layers,
    build_network,
    embedding_model,
    head_network,
    pooled_features_model,
    set_backbone_trainable,
)


@pytest.fixture(scope="module")
def network():
    return build_network(tiny_backbone(32), num_classes=7, embedding_size=16, hidden_units=24)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, size=(3, 32, 32, 3)).astype(np.float32)


def test_outputs_and_unit_embeddings(network, images):
    out = network(images, training=False)
    assert out["logits"].shape == (3, 7)
    assert out["deep_feature"].shape == (3, 16)
    features = out["deep_feature"].numpy()
    expected = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(out["embedding"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in network.layers)


def test_saved_models_load_in_safe_mode(network, images, tmp_path):
    network.save(tmp_path / "model.keras")
    embedder = embedding_model(network)
    embedder.save(tmp_path / "embedder.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    loaded_embedder = keras.models.load_model(tmp_path / "embedder.keras", safe_mode=True)
    expected = network(images)["embedding"].numpy()
    np.testing.assert_allclose(loaded(images)["embedding"].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(loaded_embedder(images).numpy(), expected, atol=1e-6)
    assert embedding_model(loaded).output_shape == (None, 16)


def test_prelu_deep_feature(images):
    net = build_network(tiny_backbone(32), 3, embedding_size=8, hidden_units=8, prelu=True)
    assert isinstance(net.get_layer("deep_feature"), keras.layers.PReLU)
    assert net(images)["deep_feature"].shape == (3, 8)


def test_no_hidden_layer_projects_the_pooled_features(images):
    net = build_network(tiny_backbone(32), 3, embedding_size=8, hidden_units=0, dropout=0.0)
    assert "fc" not in {layer.name for layer in net.layers}
    dense = net.get_layer("deep_feature")
    pooled = pooled_features_model(net)(images).numpy()
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(net(images)["deep_feature"], pooled @ kernel + bias, atol=1e-5)


def test_head_network_shares_weights(network, images):
    pooled = pooled_features_model(network)(images)
    head = head_network(network)
    np.testing.assert_allclose(
        head(pooled)["embedding"].numpy(), network(images)["embedding"].numpy(), atol=1e-6
    )
    assert {v.ref() for v in head.trainable_variables} <= {v.ref() for v in network.variables}


def test_freezing_touches_only_the_backbone(network):
    set_backbone_trainable(network, False)
    assert all(not layer.trainable for layer in backbone_layers(network))
    assert network.get_layer("fc").trainable and network.get_layer("logits").trainable
    assert {layer.name for layer in backbone_layers(network)} >= {"normalize"}
    set_backbone_trainable(network, True)
    assert all(layer.trainable for layer in backbone_layers(network))
