"""A training run directory as ``itemrec-train`` writes it: embedder, config and its hash.

A run (written by ``itemrec-train``) holds ``config.json`` (``data``: the class folders it
trained on), ``classes.json`` (which of them were training and validation classes) and
``embedder.keras`` (image -> L2-normalised embedding) or at least ``model.keras`` (the full
training network, whose softmax head is stripped here with ``train.model.embedding_model``).
The center-loss centers live in the objective, not in the network: nothing else to strip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"  # {"train": [codes], "val": [codes held out for validation]}
EMBEDDER_FILE = "embedder.keras"
MODEL_FILE = "model.keras"


class RunError(ValueError):
    """A directory is not a training run, or its model cannot be loaded."""


@dataclasses.dataclass
class Run:
    """What the converter needs from a training run."""

    path: Path
    embedder: object  # tf_keras Model: float32 RGB 0..255 -> L2-normalised embedding
    config: dict
    config_hash: str

    @property
    def input_size(self) -> tuple[int, int]:
        _, height, width, _ = self.embedder.input_shape
        return int(height), int(width)

    @property
    def embedding_size(self) -> int:
        return int(self.embedder.output_shape[-1])

    @property
    def backbone(self) -> str:
        return str(self.config.get("backbone", "unknown"))

    @property
    def data_dir(self) -> Path | None:
        """The training data folder named by the config (``data``), if it still exists."""
        value = self.config.get("data")
        if isinstance(value, str) and value and Path(value).is_dir():
            return Path(value)
        return None

    def classes(self, split: str) -> list[str] | None:
        """The class codes of ``split`` ("train" or "val") from ``classes.json``, if recorded."""
        try:
            codes = json.loads((self.path / CLASSES_FILE).read_text(encoding="utf-8")).get(split)
        except (OSError, ValueError, AttributeError):
            return None
        return [str(c) for c in codes] if isinstance(codes, list) else None


def config_hash(config: dict) -> str:
    """SHA-256 of the canonical JSON of ``config`` (sorted keys, no whitespace)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_config(run_dir: Path) -> dict:
    path = run_dir / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RunError(f"{path}: cannot read ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise RunError(f"{path}: expected a JSON object")
    return config


def load_run(run_dir: str | Path) -> Run:
    """Load the embedder and config of ``run_dir``; RunError with a one-line reason if it fails."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a directory")
    model_paths = [run_dir / name for name in (EMBEDDER_FILE, MODEL_FILE)]
    if not (run_dir / CONFIG_FILE).is_file() or not any(p.is_file() for p in model_paths):
        raise RunError(
            f"{run_dir}: not a training run "
            f"(needs {CONFIG_FILE} and {EMBEDDER_FILE} or {MODEL_FILE})"
        )
    config = read_config(run_dir)
    embedder = _load_embedder(next(p for p in model_paths if p.is_file()))
    return Run(run_dir, embedder, config, config_hash(config))


def _load_embedder(path: Path):
    import tensorflow as tf

    import train.backbones  # noqa: F401  (registers InputNormalization)
    import train.layers  # noqa: F401  (registers L2Normalize)
    from train.model import EMBEDDING, embedding_model

    try:
        model = tf.keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # unknown/unregistered layers raise TypeError, ValueError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunError(f"{path}: cannot be loaded ({reason[:300]})") from None
    if path.name == MODEL_FILE:
        try:
            model = embedding_model(model)
        except ValueError:
            raise RunError(f"{path}: has no {EMBEDDING!r} layer to export") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.output_shape) != 2:
        raise RunError(f"{path}: expected one image input and one embedding output")
    return model
