"""Bias correction for post-training int8: cancel the mean error that weight rounding adds.

An int8 layer computes with rounded weights ``Q(W) = W + dW``. Its output is off by
``conv(x, dW)``, whose mean over images and positions is not zero when the inputs have a
non-zero mean (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias
Correction", 2019). EfficientNet-Lite0's stem and first depthwise convolution, after their
BatchNormalization is folded in, hold weights of up to 17.7 beside a median of 1.7, so their
per-channel scale is coarse and the shift large: 0.24 and 0.35 on ReLU6 outputs whose int8
step is 0.024. These two layers alone carried most of the error of ``bench_convert``'s run
(``benchmarks/int8_study.py``).

``correct_biases`` computes ``E[conv(x, dW)]`` per output channel over calibration images,
running each layer's own operation (strides, padding) on its float inputs with the rounding
error as the kernel, and subtracts it from the bias the converter folds in (the
BatchNormalization's ``beta``, or the layer's own bias). ``dW`` is TFLite's rounding: per
output channel, symmetric, ``scale = max|W| / 127`` on the BatchNormalization-folded weights.
"""

from __future__ import annotations

import numpy as np

from itemrec.train.keras_api import keras, tf
from itemrec.train.private_api import inbound_layer_name

BATCH = 32


def corrected_copy(model, images: np.ndarray):
    """``(copy of model with corrected biases, number of layers corrected)``."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy, correct_biases(copy, images)


def correct_biases(model, images: np.ndarray) -> int:
    """Correct every convolution's and dense layer's bias of ``model`` in place, from the
    mean error of its int8 weights on ``images``; returns how many layers were corrected.

    Call it on a copy of the trained model: the float model's outputs move by the expected
    int8 error (they then match what the int8 model computes, on average).
    """
    targets = list(_targets(model))
    if not targets:
        return 0
    probe = keras.Model(model.inputs, [layer.input for layer, _ in targets])
    errors = [_error_operation(layer, norm) for layer, norm in targets]
    totals = [0.0] * len(targets)
    for start in range(0, len(images), BATCH):
        inputs = probe(np.asarray(images[start : start + BATCH], np.float32), training=False)
        inputs = inputs if isinstance(inputs, list) else [inputs]
        for i, (error, x) in enumerate(zip(errors, inputs, strict=True)):
            totals[i] = totals[i] + _channel_sums(error(x))
    for (layer, norm), total in zip(targets, totals, strict=True):
        _subtract_from_bias(layer, norm, total / len(images))
    return len(targets)


def rounded_error(folded: np.ndarray) -> np.ndarray:
    """``Q(W) - W`` of TFLite's per-channel symmetric int8 rounding (last axis: channels)."""
    flat = folded.reshape(-1, folded.shape[-1])
    scale = np.abs(flat).max(axis=0) / 127.0
    safe = np.where(scale > 0, scale, 1.0)
    quantised = np.clip(np.round(flat / safe), -127, 127) * scale
    return (quantised - flat).reshape(folded.shape)


def _targets(model):
    """Each convolution or dense layer, with the BatchNormalization it feeds (or None).

    The model is flat, as every itemrec embedder is (``train.backbones``): the probe reads
    each layer's input from the model's own graph."""
    layers = model.layers
    norms = {
        inbound_layer_name(layer): layer
        for layer in layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    for layer in layers:
        norm = norms.get(layer.name)
        if norm is not None and not norm.center:
            continue  # no beta to correct (and no layer of ours builds one)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            if norm is not None or layer.use_bias:
                yield layer, norm
        elif isinstance(layer, keras.layers.Dense) and layer.use_bias:
            yield layer, None


def _fold_factor(norm) -> np.ndarray | None:
    if norm is None:
        return None
    gamma = norm.gamma.numpy() if norm.scale else np.ones(norm.moving_variance.shape)
    return gamma / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)


def _error_operation(layer, norm):
    """``layer``'s own operation (strides, padding) without bias or activation, whose kernel
    is the rounding error in the layer's unfolded units (folded error / fold factor)."""
    config = {**layer.get_config(), "use_bias": False, "activation": None}
    config.pop("name", None)
    operation = layer.__class__.from_config(config)
    operation.build(layer.input_shape)
    operation.set_weights([_kernel_error(layer, norm).astype(np.float32)])
    return operation


def _kernel_error(layer, norm) -> np.ndarray:
    kernel = layer.get_weights()[0]
    factor = _fold_factor(norm)
    if factor is None:
        return rounded_error(kernel)
    safe = np.where(factor != 0, factor, 1.0)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        height, width, inputs, multiplier = kernel.shape
        folded = kernel.reshape(height, width, inputs * multiplier) * factor
        return (rounded_error(folded) / safe).reshape(kernel.shape)
    return rounded_error(kernel * factor) / safe


def _channel_sums(output) -> np.ndarray:
    """Per output channel: the sum over images of the mean over positions."""
    output = tf.convert_to_tensor(output)
    axes = list(range(1, len(output.shape) - 1))
    means = tf.reduce_mean(output, axis=axes) if axes else output
    return tf.reduce_sum(tf.cast(means, tf.float64), axis=0).numpy()


def _subtract_from_bias(layer, norm, shift: np.ndarray) -> None:
    """Remove ``shift`` (in the layer's output units) from what the converter folds in."""
    if norm is not None:
        factor = _fold_factor(norm)
        beta = norm.beta  # the folded bias is beta + (bias - mean) * factor
        beta.assign(beta.numpy() - (factor * shift).astype(beta.dtype.as_numpy_dtype))
        return
    weights = layer.get_weights()
    weights[1] = (weights[1] - shift).astype(weights[1].dtype)
    layer.set_weights(weights)
