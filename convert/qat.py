"""Quantisation-aware fine-tuning with tensorflow-model-optimization (tfmot).

Every layer of the flat embedder except the registered custom layers is annotated, so
tfmot's default 8-bit scheme folds each convolution with its batch norm and ReLU6 the way
the TFLite converter will. ``InputNormalization`` and ``L2Normalize`` stay unannotated:
the int8 converter calibrates their ranges from the representative images, exactly as in
post-training quantisation, which keeps the graph fully integer (annotating them with an
output-only QuantizeConfig left a DEQUANTIZE/QUANTIZE float island after the input, and
L2_NORMALIZATION has a fixed output scale of 1/128 anyway).

tfmot starts every activation range at [-6, 6] and moves it by an exponential moving
average with decay 0.999, far too slowly for a short fine-tune; so the ranges are first
set to the float model's observed min/max on the fine-tuning images.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot

from itemrec.convert.distill import clone_for_finetuning, distill
from itemrec.train.private_api import inbound_layer_name

quantize = tfmot.quantization.keras
#: Names tfmot gives to the range variables of activations (not weights).
ACTIVATION_RANGES = ("post_activation", "output", "quantize_layer")


def _custom_layer_types() -> tuple:
    from itemrec.train.backbones import InputNormalization
    from itemrec.train.layers import L2Normalize

    return (InputNormalization, L2Normalize)


def quantize_aware(model):
    """A fake-quantised copy of the flat ``model``, ready to fine-tune."""
    custom = _custom_layer_types()

    def annotate(layer):
        return layer if isinstance(layer, custom) else quantize.quantize_annotate_layer(layer)

    annotated = clone_for_finetuning(model, wrap=annotate)
    with quantize.quantize_scope({cls.__name__: cls for cls in custom}):
        return quantize.quantize_apply(annotated)


def initialize_activation_ranges(qat_model, float_model, images, batch_size: int = 32) -> int:
    """Set each activation range of ``qat_model`` to ``[min(x, 0), max(x, 0)]`` of the matching
    layer output ``x`` of ``float_model`` (same layer names) over ``images``; returns how many."""
    from itemrec.train.keras_api import tf

    targets = []  # (min variable, max variable, float layer name)
    for layer in qat_model.layers:
        wrapped = getattr(layer, "layer", None)
        if wrapped is not None:
            source = wrapped.name
        elif type(layer).__name__ == "QuantizeLayer":
            source = inbound_layer_name(layer)
        else:
            continue
        variables = {w.name.split("/")[-1].split(":")[0]: w for w in layer.weights}
        for stem in ACTIVATION_RANGES:
            if f"{stem}_min" in variables:
                targets.append((variables[f"{stem}_min"], variables[f"{stem}_max"], source))
    names = sorted({name for _, _, name in targets})
    if not names:
        return 0
    probe = tf.keras.Model(float_model.input, [float_model.get_layer(n).output for n in names])
    low = {n: 0.0 for n in names}
    high = {n: 0.0 for n in names}
    for start in range(0, len(images), batch_size):
        outputs = probe(np.asarray(images[start : start + batch_size], np.float32), training=False)
        for name, value in zip(names, outputs, strict=True):
            value = value.numpy()
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    for min_var, max_var, name in targets:
        min_var.assign(np.full(min_var.shape, low[name], np.float32))
        max_var.assign(np.full(max_var.shape, high[name], np.float32))
    return len(targets)


def qat_finetune(model, images, teacher_embeddings, *, epochs: int, **options):
    """``(qat_model, loss per epoch)``: ranges initialised, then ``epochs`` of distillation."""
    qat_model = quantize_aware(model)
    initialize_activation_ranges(qat_model, clone_for_finetuning(model), images)
    losses = distill(qat_model, images, teacher_embeddings, epochs=epochs, **options)
    return qat_model, losses
