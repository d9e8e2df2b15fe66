"""Weights prepared for post-training int8: each weight's rounding chosen, each bias corrected.

TFLite rounds every weight to the nearest step of its output channel (``scale = max|W| / 127``
on the BatchNormalization-folded weights). EfficientNet-Lite0's stem and first depthwise
convolution, once folded, hold weights of up to 17.7 beside a median of 1.7, so their steps
are coarse: TFLite's quantisation debugger put most of ``bench_convert``'s int8 error in
these two layers (``benchmarks/int8_study.py``).

From the calibration images, each convolution's and dense layer's input patches give their
mean ``m`` and covariance ``S`` (per channel for a depthwise convolution). With the
BatchNormalization folded in as the converter folds it, each weight is rounded to TFLite's
grid, adaptively by default (``convert.rounding``: up or down so that the output error
``d . x`` has the least variance ``d^T S d``), and written back as a float weight the
converter maps onto exactly that grid point. Bias correction (Nagel et al., "Data-Free
Quantization Through Weight Equalization and Bias Correction", 2019) then subtracts the mean
error ``d . m`` from the bias the converter folds in (the BatchNormalization's ``beta``, or
the layer's own bias). Without it, the rounding minimises ``d^T (S + m m^T) d``: the whole
squared error.

Call it on a copy of the trained model (``prepared_copy``): the float model then computes
with the int8 weights, and on average matches what the int8 model computes.
"""

from __future__ import annotations

import numpy as np

from itemrec.convert.rounding import adaptive_grid, error_variance, nearest_grid, step_sizes
from itemrec.train.keras_api import keras, tf
from itemrec.train.private_api import inbound_layer_name

ROUNDINGS = ("adaptive", "nearest")
# Images per probe pass: 16 x 40 x 40 x 864 float32 patches of block1_dw at 160 px are 88 MB.
BATCH = 16
# Patches per batch that enter a covariance (the mean uses them all): 2,048 x 13 batches of
# 200 calibration images; on bench_convert's run 512, 2,048 and 8,192 gave cosine 0.9957,
# 0.9959 and 0.9958, and a depthwise layer's 8,192 patches alone cost 0.4 s per batch.
COVARIANCE_ROWS = 2048


def prepared_copy(model, images, rounding="adaptive", bias_correction=True, progress=None):
    """``(copy of model with int8-ready weights, summary dict)``; see ``prepare``."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy, prepare(copy, images, rounding, bias_correction, progress)


def steps(model, images) -> int:
    """How many steps ``prepare`` reports to ``progress``: one per image, one per layer."""
    return len(images) + len(list(_targets(model)))


def prepare(model, images, rounding="adaptive", bias_correction=True, progress=None) -> dict:
    """Round the weights of ``model``'s convolutions and dense layers to TFLite's int8 grid
    (``rounding``: adaptive or nearest) and, with ``bias_correction``, cancel their mean
    error on ``images``, in place. Returns ``layers`` (how many), ``rounding``,
    ``bias_correction`` and, for adaptive rounding, the output error variance summed over
    every channel with nearest rounding and with the rounding chosen (folded output units).
    """
    progress = progress or (lambda steps: None)
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    targets = list(_targets(model))
    summary = {"layers": len(targets), "rounding": rounding, "bias_correction": bias_correction}
    if not targets:
        return summary
    adaptive = rounding == "adaptive"
    statistics = _patch_statistics(model, targets, images, adaptive, progress)
    variances = np.zeros(2)
    for (layer, norm), patches in zip(targets, statistics, strict=True):
        correct = bias_correction and (norm is not None or layer.use_bias)
        folded, factor = _folded_kernel(layer, norm)
        scale = step_sizes(folded)
        values = folded / np.where(scale > 0, scale, 1.0)
        if adaptive:
            covariance = patches.second_moment(centred=correct)
            grid = adaptive_grid(values, covariance)
            variances += [
                error_variance((nearest_grid(values) - values) * scale, covariance).sum(),
                error_variance((grid - values) * scale, covariance).sum(),
            ]
        else:
            grid = nearest_grid(values)
        _write_kernel(layer, grid * scale, factor)
        if correct:
            _subtract_from_bias(layer, norm, patches.mean_output((grid - values) * scale))
        progress(1)
    if adaptive:
        summary["error_variance_nearest"], summary["error_variance"] = map(float, variances)
    return summary


class _PatchStatistics:
    """Running sums over one layer's input patches: their mean (all of them) and, if asked,
    their second moment (``COVARIANCE_ROWS`` drawn per batch). Rows are ``(n, D)``, or
    ``(n, D, channels)`` for a depthwise convolution (``D`` = its kernel's positions); its
    second moments are kept per input channel, ``(channels, D, D)``."""

    def __init__(self, multiplier: int = 1):
        self.multiplier = multiplier  # depthwise: output channels per input channel
        self.total, self.count = 0.0, 0
        self.outer, self.sampled_total, self.sampled = 0.0, 0.0, 0

    def add(self, rows, rng, covariance: bool) -> None:
        self.total = self.total + tf.reduce_sum(rows, axis=0).numpy().astype(np.float64)
        self.count += int(rows.shape[0])
        if not covariance:
            return
        if rows.shape[0] > COVARIANCE_ROWS:
            rows = tf.gather(rows, np.sort(rng.choice(rows.shape[0], COVARIANCE_ROWS, False)))
        if len(rows.shape) == 3:  # per channel: (channels, n, D), half tf.einsum's time
            rows = tf.transpose(rows, [2, 0, 1])  # in float32: 103 -> 73 ms at 2048 x 25 x 240
        rows = tf.cast(rows, tf.float64)
        outer = tf.matmul(rows, rows, transpose_a=True)
        self.outer = self.outer + outer.numpy()
        self.sampled_total = self.sampled_total + tf.reduce_sum(rows, axis=-2).numpy()
        self.sampled += int(rows.shape[-2])

    def second_moment(self, centred: bool) -> np.ndarray:
        """The patches' covariance (``centred``) or raw second moment, per output channel
        for a depthwise convolution."""
        moment = self.outer / self.sampled
        if centred:
            mean = self.sampled_total / self.sampled
            moment = moment - mean[..., :, None] * mean[..., None, :]
        return moment if moment.ndim == 2 else np.repeat(moment, self.multiplier, axis=0)

    def mean_output(self, errors: np.ndarray) -> np.ndarray:
        """``d . m`` per output channel for weight errors ``errors`` (``(D, channels)``)."""
        mean = self.total / self.count
        if mean.ndim == 1:
            return mean @ errors
        return np.einsum("kc,kc->c", np.repeat(mean, self.multiplier, axis=1), errors)


def _patch_statistics(model, targets, images, covariances, progress) -> list[_PatchStatistics]:
    probe = keras.Model(model.inputs, [layer.input for layer, _ in targets])
    statistics = [_PatchStatistics(_multiplier(layer)) for layer, _ in targets]
    rng = np.random.default_rng(0)
    for start in range(0, len(images), BATCH):
        batch = np.asarray(images[start : start + BATCH], np.float32)
        inputs = probe(batch, training=False)
        inputs = inputs if isinstance(inputs, list) else [inputs]
        for (layer, _), x, patches in zip(targets, inputs, statistics, strict=True):
            patches.add(_patch_rows(layer, x), rng, covariances)
        progress(len(batch))
    return statistics


def _patch_rows(layer, x):
    """Each output position's input patch, flattened in the kernel's order."""
    if isinstance(layer, keras.layers.Dense):
        return tf.reshape(x, [-1, x.shape[-1]])
    (height, width), (row_step, column_step) = layer.kernel_size, layer.strides
    patches = tf.image.extract_patches(
        x,
        sizes=[1, height, width, 1],
        strides=[1, row_step, column_step, 1],
        rates=[1, *layer.dilation_rate, 1],
        padding=layer.padding.upper(),
    )
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return tf.reshape(patches, [-1, height * width, x.shape[-1]])
    return tf.reshape(patches, [-1, patches.shape[-1]])


def _multiplier(layer) -> int:
    return layer.depth_multiplier if isinstance(layer, keras.layers.DepthwiseConv2D) else 1


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
        if _is_plain_convolution(layer) or isinstance(layer, keras.layers.Dense):
            yield layer, norm


def _is_plain_convolution(layer) -> bool:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return True
    return (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.Conv2DTranspose)
        and layer.groups == 1
    )


def _fold_factor(norm) -> np.ndarray | None:
    if norm is None:
        return None
    gamma = norm.gamma.numpy() if norm.scale else np.ones(norm.moving_variance.shape)
    return gamma / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)


def _folded_kernel(layer, norm) -> tuple[np.ndarray, np.ndarray | None]:
    """The kernel as the converter quantises it, ``(D, output channels)``, and the
    BatchNormalization's factor that was folded in (None: no BatchNormalization)."""
    kernel = layer.get_weights()[0]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        height, width, inputs, multiplier = kernel.shape
        flat = kernel.reshape(height * width, inputs * multiplier)
    else:
        flat = kernel.reshape(-1, kernel.shape[-1])
    factor = _fold_factor(norm)
    return (flat if factor is None else flat * factor), factor


def _write_kernel(layer, folded: np.ndarray, factor: np.ndarray | None) -> None:
    weights = layer.get_weights()
    kernel = folded if factor is None else folded / np.where(factor != 0, factor, 1.0)
    weights[0] = kernel.reshape(weights[0].shape).astype(weights[0].dtype)
    layer.set_weights(weights)


def _subtract_from_bias(layer, norm, shift: np.ndarray) -> None:
    """Remove ``shift`` (folded output units) from the bias the converter folds in."""
    if norm is not None:  # the folded bias is beta + (bias - mean) * factor
        norm.beta.assign(norm.beta.numpy() - shift.astype(norm.beta.dtype.as_numpy_dtype))
        return
    weights = layer.get_weights()
    weights[1] = (weights[1] - shift).astype(weights[1].dtype)
    layer.set_weights(weights)
