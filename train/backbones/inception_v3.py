"""InceptionV3 (Keras applications) with its [-1, 1] normalisation as the first layer."""

from __future__ import annotations

from itemrec.edge_runtime.errors import ModelError
from itemrec.train.keras_api import keras

from .input_normalization import InputNormalization

NORMALIZATION = {"offset": 127.5, "divisor": 127.5}
MIN_IMAGE_SIZE = 75
IMAGENET_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + IMAGENET_FILE
)
IMAGENET_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"


def build_inception_v3(height: int, width: int):
    """Return the flat InceptionV3 model: 0..255 RGB in, ``mixed10`` (B, h', w', 2048) out."""
    inputs = keras.Input((height, width, 3), name="image")
    x = InputNormalization(**NORMALIZATION, name="normalization")(inputs)
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_tensor=x)
    return keras.Model(inputs, base.output, name="inception_v3")


def imagenet_weights_path() -> str:
    """Keras' ImageNet no-top weights: from its cache (~/.keras/models) or downloaded."""
    try:
        return keras.utils.get_file(
            IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_MD5
        )
    except Exception as exc:  # no internet: URLError, OSError, ...
        raise ModelError(
            f"inception_v3: cannot download the ImageNet weights from {IMAGENET_URL} ({exc}); "
            f"put {IMAGENET_FILE} in ~/.keras/models, pass its path as the weights, "
            "use weights='none', or pick an efficientnet_lite backbone (offline weights)"
        ) from exc


def weights_path(weights: str) -> str:
    """The weights file for ``"imagenet"`` (Keras' file, fetched first) or a local path."""
    return imagenet_weights_path() if weights == "imagenet" else weights
