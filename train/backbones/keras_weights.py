"""Load a local Keras weights file (``.h5``, ``.weights.h5`` or a TF checkpoint) into a model."""

from __future__ import annotations

from .errors import BackboneError


def load_keras_weights(model, path: str) -> None:
    """``model.load_weights(path)`` (layer order), with one clear BackboneError on failure."""
    try:
        model.load_weights(path)
    except Exception as exc:  # h5py and TensorFlow raise many types for a wrong file
        raise BackboneError(f"{path}: cannot load weights into {model.name}: {exc}") from exc
