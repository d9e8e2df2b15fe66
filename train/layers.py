"""Registered custom layers of the embedding model (importing this module registers them)."""

from __future__ import annotations

from itemrec.train.keras_api import keras, tf


@keras.utils.register_keras_serializable(package="itemrec")
class L2Normalize(keras.layers.Layer):
    """``y = x / max(||x||_2, sqrt(epsilon))`` along ``axis``.

    Calls ``tf.math.l2_normalize`` so TFLite converts it to its native L2_NORMALIZATION
    op (fully integer in int8). Computed in float32 under mixed precision.
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return tf.math.l2_normalize(inputs, axis=self.axis, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
