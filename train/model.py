"""The embedding network: backbone -> GAP -> Dropout -> Dense(512, relu) -> Dense(D) = deep feature.

Two heads sit on the deep feature: a softmax classifier (``logits``) and the
L2-normalised ``embedding`` that everything downstream uses. The model is built *flat*
from ``backbone.input`` / ``backbone.output`` (tfmot cannot quantise a nested model) and
returns a dict ``{"logits", "deep_feature", "embedding"}``. Input: RGB 0..255 float32.
"""

from __future__ import annotations

from itemrec.train.keras_api import keras
from itemrec.train.layers import L2Normalize

LOGITS, DEEP_FEATURE, EMBEDDING = "logits", "deep_feature", "embedding"
POOL = "gap"
#: The head layers on the pooled backbone features, in the order they are applied.
HEAD_CHAIN = ("dropout", "fc", "deep_feature_dense", DEEP_FEATURE)
HEAD_LAYERS = frozenset((POOL, *HEAD_CHAIN, LOGITS, EMBEDDING))


def build_network(
    backbone: keras.Model,
    num_classes: int,
    embedding_size: int = 128,
    hidden_units: int = 512,
    dropout: float = 0.5,
    prelu: bool = False,
    name: str = "itemrec",
) -> keras.Model:
    """Put the pooling, the deep-feature layers and both heads on ``backbone``."""
    if num_classes < 1:
        raise ValueError("num_classes must be positive")
    x = keras.layers.GlobalAveragePooling2D(name=POOL)(backbone.output)
    x = _apply_head(x, _new_head_layers(num_classes, embedding_size, hidden_units, dropout, prelu))
    return keras.Model(backbone.input, x, name=name)


def build_model(
    backbone_name: str,
    image_size: int,
    num_classes: int,
    weights: str = "imagenet",
    **head_options,
) -> keras.Model:
    """Build the named backbone (see ``train.backbones``) with the embedding heads on it."""
    from itemrec.train.backbones import build_backbone

    backbone = build_backbone(backbone_name, image_size, weights=weights)
    return build_network(backbone, num_classes, **head_options)


def embedding_model(model: keras.Model) -> keras.Model:
    """The deployable embedder: image (RGB 0..255) -> L2-normalised embedding; heads stripped."""
    return keras.Model(model.input, model.get_layer(EMBEDDING).output, name="embedder")


def pooled_features_model(model: keras.Model) -> keras.Model:
    """Image -> globally pooled backbone features (the input of the head)."""
    return keras.Model(model.input, model.get_layer(POOL).output, name="pooled_features")


def head_network(model: keras.Model) -> keras.Model:
    """Pooled features -> the model's outputs, sharing the head layers (and weights) of ``model``.

    Training it trains ``model``'s head: used to train on cached backbone features.
    """
    pooled = model.get_layer(POOL).output
    inputs = keras.Input(shape=pooled.shape[1:], name="pooled_features")
    layers = {layer.name: layer for layer in model.layers if layer.name in HEAD_LAYERS}
    return keras.Model(inputs, _apply_head(inputs, layers), name=f"{model.name}_head")


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` computing in float32: itself, or (after mixed-precision training) a copy
    sharing nothing, with the same weights. Run directories keep float32 models: the
    converter and the device expect them, and the copy's outputs match to float16 rounding.
    """
    if all(layer.compute_dtype == "float32" for layer in model.layers):
        return model

    def in_float32(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=in_float32)
    copy.set_weights(model.get_weights())
    return copy


def backbone_layers(model: keras.Model) -> list:
    """The layers of ``model`` that belong to the backbone (everything but the input and head)."""
    return [
        layer
        for layer in model.layers
        if layer.name not in HEAD_LAYERS and not isinstance(layer, keras.layers.InputLayer)
    ]


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the backbone. Batch normalisation stays frozen when fine-tuning.

    Keeping the ImageNet statistics (and running those layers in inference mode) is the
    usual transfer-learning practice: small or class-balanced batches would otherwise
    overwrite them with noisy estimates.
    """
    for layer in backbone_layers(model):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable and not is_bn


def _new_head_layers(num_classes, embedding_size, hidden_units, dropout, prelu) -> dict:
    layers = {
        "dropout": keras.layers.Dropout(dropout, name="dropout"),
        LOGITS: keras.layers.Dense(num_classes, name=LOGITS, dtype="float32"),
        # The outputs stay float32 under mixed precision (Keras' advice for the last layers).
        EMBEDDING: L2Normalize(name=EMBEDDING, dtype="float32"),
    }
    if hidden_units:  # 0: the deep feature straight from the pooled features
        layers["fc"] = keras.layers.Dense(hidden_units, activation="relu", name="fc")
    if prelu:
        layers["deep_feature_dense"] = keras.layers.Dense(embedding_size, name="deep_feature_dense")
        layers[DEEP_FEATURE] = keras.layers.PReLU(name=DEEP_FEATURE, dtype="float32")
    else:
        layers[DEEP_FEATURE] = keras.layers.Dense(
            embedding_size, name=DEEP_FEATURE, dtype="float32"
        )
    return layers


def _apply_head(x, layers: dict) -> dict:
    for name in HEAD_CHAIN:
        if name in layers:
            x = layers[name](x)
    return {LOGITS: layers[LOGITS](x), DEEP_FEATURE: x, EMBEDDING: layers[EMBEDDING](x)}
