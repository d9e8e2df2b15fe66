"""Import TensorFlow with the Keras 2 API (tf_keras), which tfmot requires."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from .errors import BackboneError  # noqa: E402

keras = tf.keras
if not keras.__name__.startswith("tf_keras"):
    raise BackboneError(
        "tf.keras is Keras 3: set TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported"
    )

__all__ = ["keras", "tf"]
