"""TensorFlow with the Keras 2 API (tf_keras), which tfmot requires.

``train/__init__.py`` sets ``TF_USE_LEGACY_KERAS=1`` before anything imports TensorFlow;
this module refuses to go on if TensorFlow was imported earlier with Keras 3.
"""

import tensorflow as tf

from .errors import BackboneError

keras = tf.keras
if not keras.__name__.startswith("tf_keras"):
    raise BackboneError(
        "tf.keras is Keras 3: set TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported"
    )

__all__ = ["keras", "tf"]
