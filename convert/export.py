"""Keras embedder -> ``.tflite`` bytes in one of the spec's quantisations.

- ``float32``: as trained;
- ``float16``: weights stored as float16 (computed in float32 on most CPUs);
- ``dynamic``: weights int8, activations quantised on the fly;
- ``int8``: full-integer post-training quantisation, calibrated on representative images;
  uint8 RGB input, int8 embedding output (L2_NORMALIZATION's fixed scale 1/128).

``from_keras_model`` is used for every variant (``from_concrete_functions`` breaks the int8
calibration: see FACTS.md).
"""

from __future__ import annotations

import numpy as np

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def convert(
    model, quantization: str, representative: np.ndarray | None = None, progress=None
) -> bytes:
    """Convert ``model`` to ``quantization``.

    For int8, ``representative`` (N x H x W x 3, 0..255) is required: it calibrates every
    activation range a quantisation-aware model does not bring (``progress(1)`` per image).
    """
    from itemrec.train.keras_api import tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; one of {QUANTIZATIONS}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("int8 quantisation needs at least one representative image")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _feed(representative, progress)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def _feed(images: np.ndarray, progress):
    def generator():
        for image in images:
            yield [np.asarray(image, np.float32)[np.newaxis]]
            if progress is not None:
                progress(1)

    return generator
