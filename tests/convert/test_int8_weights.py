"""int8 weight preparation, on real int8 conversions run by LiteRT: the rounding it models
is the converter's, the grid it writes is what the converter stores, bias correction removes
the mean error of the rounded weights, and adaptive rounding lowers the error left."""

from __future__ import annotations

import numpy as np
import pytest

from itemrec.convert import export
from itemrec.convert.int8_weights import prepare, prepared_copy
from itemrec.convert.rounding import rounded_error
from itemrec.train.keras_api import keras

SIZE = 12


def wide_range_model(depthwise: bool, pooled: bool = True):
    """Conv (or depthwise conv) -> BatchNormalization -> ReLU6 -> mean (or every position),
    whose folded weights have one large outlier per channel beside small ones: coarse
    per-channel int8 steps."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((SIZE, SIZE, 3))  # 0..255: the kernel carries the 1/255
    if depthwise:
        conv = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv")
        kernel = rng.normal(0, 0.05, (3, 3, 3, 1))
        kernel[1, 1] = 1.5
    else:
        conv = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="conv")
        kernel = rng.normal(0, 0.05, (3, 3, 3, 6))
        kernel[1, 1, 0] = 1.5
    x = conv(inputs)
    norm = keras.layers.BatchNormalization(name="norm")
    x = keras.layers.ReLU(6.0)(norm(x))
    outputs = (keras.layers.GlobalAveragePooling2D() if pooled else keras.layers.Flatten())(x)
    model = keras.Model(inputs, outputs)
    conv.set_weights([(kernel / 255).astype(np.float32)])
    channels = conv.output_shape[-1]
    norm.set_weights(
        [
            rng.uniform(0.5, 2.0, channels),  # gamma
            np.full(channels, 0.5),  # beta
            np.zeros(channels),  # moving mean
            rng.uniform(0.5, 1.5, channels),  # moving variance
        ]
    )
    return model


def images(count: int, seed: int) -> np.ndarray:
    # Bright, mostly uniform images: a large input mean, as real photos have after scaling.
    rng = np.random.default_rng(seed)
    return rng.integers(150, 256, (count, SIZE, SIZE, 3)).astype(np.uint8)


def run_int8(content: bytes, batch: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = sink["quantization"]
    rows = []
    for image in batch:
        interpreter.set_tensor(source["index"], image[np.newaxis])
        interpreter.invoke()
        rows.append((interpreter.get_tensor(sink["index"])[0].astype(np.float32) - zero) * scale)
    return np.array(rows)


def folded_kernel(model) -> np.ndarray:
    conv, norm = model.get_layer("conv"), model.get_layer("norm")
    gamma, _, _, variance = norm.get_weights()
    factor = gamma / np.sqrt(variance + norm.epsilon)
    kernel = conv.get_weights()[0]
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        return kernel[..., 0] * factor  # (h, w, channels)
    return kernel * factor  # (h, w, in, out)


@pytest.mark.parametrize("depthwise", [False, True])
def test_rounded_error_is_the_converters_own_rounding(depthwise):
    from ai_edge_litert.interpreter import Interpreter

    model = wide_range_model(depthwise)
    folded = folded_kernel(model)
    interpreter = Interpreter(model_content=export.convert(model, "int8", images(16, 0)))
    (tensor,) = [
        t
        for t in interpreter.get_tensor_details()
        if t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][1:3].tolist() == [3, 3]
    ]
    stored = interpreter.get_tensor(tensor["index"]).astype(np.float64)
    scales = tensor["quantization_parameters"]["scales"]
    # TFLite keeps conv kernels as (out, h, w, in) and depthwise ones as (1, h, w, channels).
    if depthwise:
        dequantised = stored[0] * scales
    else:
        dequantised = np.transpose(stored * scales[:, None, None, None], (1, 2, 3, 0))
    expected = folded + rounded_error(folded)
    assert np.abs(dequantised - expected).max() < 1e-5 * np.abs(folded).max()
    assert np.abs(rounded_error(folded)).max() > 1e-3 * np.abs(folded).max()  # not negligible


@pytest.mark.parametrize("depthwise", [False, True])
def test_the_written_grid_is_what_the_converter_stores(depthwise):
    model, _ = prepared_copy(wide_range_model(depthwise), images(64, 1))
    folded = folded_kernel(model)
    assert np.abs(rounded_error(folded)).max() < 1e-5 * np.abs(folded).max()  # on the grid
    original = folded_kernel(wide_range_model(depthwise))
    moved = np.abs(folded - original) / (np.abs(original).max() / 127)  # in int8 steps
    assert moved.max() <= 1 + 1e-4  # each weight moved to a neighbouring grid point
    nearest = np.abs(original + rounded_error(original) - folded) > 1e-5 * np.abs(folded).max()
    assert nearest.any()  # ... and some of them not to the nearest one


def output_errors(depthwise: bool, pooled: bool = True, **options) -> np.ndarray:
    """int8 outputs minus the original float model's, on probes apart from the calibration."""
    model = wide_range_model(depthwise, pooled)
    calibration, probes = images(64, 1), images(64, 2)
    float_outputs = model.predict(probes.astype(np.float32), verbose=0)
    if options:
        summary = prepare(model, calibration, **options)
        assert summary["layers"] == 1
    return run_int8(export.convert(model, "int8", calibration), probes) - float_outputs


@pytest.mark.parametrize("depthwise", [False, True])
def test_correction_removes_the_mean_error_of_int8_weights(depthwise):
    plain = output_errors(depthwise)
    fixed = output_errors(depthwise, rounding="nearest", bias_correction=True)
    bias_before = np.abs(plain.mean(axis=0))
    bias_after = np.abs(fixed.mean(axis=0))
    assert bias_before.max() > 0.01  # the defect is there without the correction (0.015-0.022)
    assert bias_after.max() < 0.2 * bias_before.max()  # measured: 0.07x and 0.02x
    assert np.abs(fixed).mean() < 0.5 * np.abs(plain).mean()


@pytest.mark.parametrize("depthwise", [False, True])
def test_adaptive_rounding_lowers_the_error_left(depthwise):
    # At every position: the mean over positions averages much of the error away.
    nearest = output_errors(depthwise, False, rounding="nearest", bias_correction=True)
    adaptive = output_errors(depthwise, False, rounding="adaptive", bias_correction=True)
    assert np.abs(adaptive.mean(axis=0)).mean() < 0.01  # still bias-corrected
    assert (adaptive**2).mean() < 0.8 * (nearest**2).mean()  # measured: 0.68x and 0.58x


def test_adaptive_rounding_reports_the_error_variance_it_removed():
    summary = prepare(wide_range_model(False), images(64, 1))
    assert summary["rounding"] == "adaptive" and summary["bias_correction"]
    assert summary["error_variance"] < 0.9 * summary["error_variance_nearest"]


def test_models_without_weighted_layers_are_left_alone():
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    assert prepare(model, images(4, 0))["layers"] == 0
