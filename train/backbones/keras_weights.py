"""Load a local Keras weights file (``.h5``, ``.weights.h5`` or a TF checkpoint) into a model."""

from __future__ import annotations

from itemrec.edge_runtime.errors import ModelError


def load_keras_weights(model, path: str) -> None:
    """``model.load_weights(path)`` (layer order), with one clear ModelError on failure."""
    try:
        model.load_weights(path)
    except Exception as exc:  # h5py and TensorFlow raise many types for a wrong file
        raise ModelError(f"{path}: cannot load weights into {model.name}: {exc}") from exc
