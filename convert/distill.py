"""Fine-tune a copy of the embedder to reproduce the trained embedder's own embeddings.

QAT and pruning both change the network; both are followed by a short distillation on
training images, which needs no labels, no classifier head and no center-loss state::

    loss = 1/m * sum_i (1 - <s_i, t_i>)

with ``s_i`` the fine-tuned model's and ``t_i`` the trained float model's L2-normalised
embeddings of image ``i`` (the cosine distance). The target is what the gallery was built
to work with, so a fine-tune that keeps it keeps rank-1.

Batch normalisation runs in inference mode (its statistics stay the trained ones) and
dropout is removed: the student must reproduce the deterministic teacher.
"""

from __future__ import annotations

import numpy as np

from itemrec.train.keras_api import keras, tf


def cosine_distance(teacher, student):
    """``1 - <t, s>`` per example (both L2-normalised)."""
    return 1.0 - tf.reduce_sum(tf.cast(teacher, tf.float32) * tf.cast(student, tf.float32), -1)


def clone_for_finetuning(model, wrap=None):
    """A flat copy of ``model`` (same weights) without dropout; ``wrap(layer)`` may wrap a layer.

    ``wrap`` receives built layers holding the copied weights (tfmot's wrappers keep them).
    """

    def without_dropout(layer):
        if isinstance(layer, keras.layers.Dropout):
            return keras.layers.Dropout(0.0, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=without_dropout)
    clone.set_weights(model.get_weights())
    if wrap is None:
        return clone
    return keras.models.clone_model(clone, clone_function=wrap)


def freeze_batch_norm(model) -> None:
    """Keep every BatchNormalization (wrapped by tfmot or not) in inference mode."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.BatchNormalization):
            layer.trainable = False


def distill(
    student,
    images: np.ndarray,
    teacher_embeddings: np.ndarray,
    *,
    epochs: int,
    learning_rate: float = 1e-5,
    batch_size: int = 16,
    callbacks=(),
    seed: int = 0,
    verbose: int = 1,
) -> list[float]:
    """Fit ``student`` to ``teacher_embeddings`` of ``images`` (cosine distance); loss per epoch."""
    tf.keras.utils.set_random_seed(seed)
    freeze_batch_norm(student)
    student.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=cosine_distance)
    history = student.fit(
        np.asarray(images, np.float32),
        np.asarray(teacher_embeddings, np.float32),
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        callbacks=list(callbacks),
        verbose=verbose,
    )
    return [float(v) for v in history.history["loss"]]


def embed(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Embeddings of N x H x W x 3 images (0..255) by a Keras model in inference mode."""
    rows = [
        model(np.asarray(images[i : i + batch_size], np.float32), training=False).numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(rows) if rows else np.zeros((0, model.output_shape[-1]), np.float32)
