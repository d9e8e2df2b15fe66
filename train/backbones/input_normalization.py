"""The registered layer that puts a backbone's input normalisation inside the model."""

from __future__ import annotations

from itemrec.train.keras_api import keras, tf


@keras.utils.register_keras_serializable(package="itemrec")
class InputNormalization(keras.layers.Layer):
    """Map RGB values in 0..255 to the backbone's range: ``y = (x - offset) / divisor``.

    InceptionV3: offset 127.5, divisor 127.5 (-> [-1, 1]);
    EfficientNet-Lite: offset 127, divisor 128 (-> [-0.99, 1]).
    """

    def __init__(self, offset: float, divisor: float, **kwargs):
        super().__init__(**kwargs)
        if divisor == 0:
            raise ValueError("divisor must not be zero")
        self.offset = float(offset)
        self.divisor = float(divisor)

    def call(self, inputs):
        x = tf.cast(inputs, self.compute_dtype)
        return (x - self.offset) * (1.0 / self.divisor)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "offset": self.offset, "divisor": self.divisor}
