"""Magnitude pruning with tfmot: ``prune_low_magnitude`` on the convolutions and dense layers,
distillation fine-tuning with ``UpdatePruningStep``, then ``strip_pruning``.

The sparsity rises polynomially from 0 to the target over the first 3/4 of the
fine-tuning steps and is held there for the rest.
"""

from __future__ import annotations

import math

import numpy as np

from itemrec.convert.distill import clone_for_finetuning, distill

PRUNABLE = ("Conv2D", "DepthwiseConv2D", "Dense")


def _prunable(layer) -> bool:
    return type(layer).__name__ in PRUNABLE


def prune_finetune(
    model,
    images,
    teacher_embeddings,
    *,
    sparsity: float,
    epochs: int,
    batch_size: int = 16,
    **options,
):
    """Return ``(pruned model with pruning stripped, loss per epoch)``."""
    import tensorflow_model_optimization as tfmot

    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be between 0 and 1, got {sparsity}")
    sparsity_api = tfmot.sparsity.keras
    steps = max(1, epochs * math.ceil(len(images) / batch_size))
    schedule = sparsity_api.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=float(sparsity),
        begin_step=0,
        end_step=max(1, (3 * steps) // 4),
        frequency=1,
    )

    def wrap(layer):
        if _prunable(layer):
            return sparsity_api.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = clone_for_finetuning(model, wrap=wrap)
    losses = distill(
        pruned,
        images,
        teacher_embeddings,
        epochs=epochs,
        batch_size=batch_size,
        callbacks=[sparsity_api.UpdatePruningStep()],
        **options,
    )
    return sparsity_api.strip_pruning(pruned), losses


def kernel_sparsity(model) -> float:
    """Fraction of zero weights in the kernels of the prunable layers of ``model``."""
    zeros = total = 0
    for layer in model.layers:
        if not _prunable(layer):
            continue
        kernel = np.asarray(layer.get_weights()[0])
        zeros += int(np.sum(kernel == 0))
        total += kernel.size
    return zeros / total if total else 0.0
