"""The training run directory: its layout, and the one module that reads and writes it.

``itemrec-train --out RUN`` fills it; ``itemrec-eval RUN`` and ``itemrec-convert RUN`` read it.
No other module names a file in it: they ask a :class:`RunDir` for the path. ::

    config.json          the resolved training configuration (``data``: the class folders)
    classes.json         {"train": [codes], "val": [codes held out], image counts}
    skipped.json / .txt  unreadable images: path and reason / one path a line
    history.json         one entry per epoch (``loss.png`` draws it)
    summary.json         epochs, classes, best validation epoch and rank-1
    state.json           the phases already finished (for resume)
    model.keras          the training network with both heads
    embedder.keras       image (RGB 0..255) -> L2-normalised embedding: what gets exported
    best_embedder.keras  the embedder of the best validation epoch
    centers.npy          the center-loss centers
    features/epoch_NNN.png, features.gif    the deep-feature scatter per epoch
    logs/                TensorBoard
    checkpoints/<phase>/ the weights at the end of each phase
    backup/<phase>/      mid-phase backups, deleted when the phase ends (for resume)

Across machines only the chief worker writes here; the others write the same layout into a
temporary directory (``itemrec.train.distribute.writable_run_dir``, ``docs/multi-machine.md``).

Every JSON file is written atomically (temporary file, then rename): a run killed while
writing keeps the previous version. Models are loaded only from ``.keras`` zip archives in
Keras' safe mode: tf_keras applies safe mode to zip files alone, and a legacy HDF5 file
named ``.keras`` would deserialise Lambda bytecode, i.e. run code from the directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from itemrec.edge_runtime.errors import ModelError


class _Entry:
    """A file or folder of the run directory: ``RunDir(path).history`` is ``path/history.json``."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, run, owner=None):
        return self if run is None else run.path / self.name


class RunDir:
    """The paths of one run directory, and the reading and writing of its JSON files."""

    config = _Entry("config.json")
    classes = _Entry("classes.json")
    skipped_json = _Entry("skipped.json")
    skipped_txt = _Entry("skipped.txt")
    history = _Entry("history.json")
    loss_plot = _Entry("loss.png")
    summary = _Entry("summary.json")
    state = _Entry("state.json")
    model = _Entry("model.keras")
    embedder = _Entry("embedder.keras")
    best_embedder = _Entry("best_embedder.keras")
    centers = _Entry("centers.npy")
    features = _Entry("features")
    features_gif = _Entry("features.gif")
    logs = _Entry("logs")

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def checkpoint(self, phase: str) -> str:
        """The ``tf.train.Checkpoint`` prefix of the weights at the end of ``phase``."""
        return str(self.path / "checkpoints" / phase / "ckpt")

    def backup(self, phase: str) -> str:
        """The ``BackupAndRestore`` folder of ``phase``."""
        return str(self.path / "backup" / phase)

    def scatter_frame(self, epoch: int) -> Path:
        """The deep-feature scatter of global epoch ``epoch`` (1-based)."""
        return self.features / f"epoch_{epoch:03d}.png"

    def scatter_frames(self) -> list[Path]:
        return sorted(self.features.glob("epoch_*.png"))

    # -- JSON files ------------------------------------------------------------------------
    def read_json(self, path: Path, default=None):
        """The content of one of this run's JSON files, ``default`` when it does not exist."""
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
        except OSError as err:
            raise ModelError(f"{path}: cannot read ({err.strerror})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelError(f"{path}: not valid JSON ({err})") from None

    def write_json(self, path: Path, data) -> None:
        write_text_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def read_config(self) -> dict:
        config = self.read_json(self.config)
        if not isinstance(config, dict):
            raise ModelError(f"{self.config}: expected a JSON object")
        return config

    def read_history(self) -> list[dict]:
        history = self.read_json(self.history, [])
        if not isinstance(history, list):
            raise ModelError(f"{self.history}: expected a JSON list")
        return history

    def class_codes(self, split: str) -> list[str] | None:
        """The class codes of ``split`` ("train" or "val") from ``classes.json``, if recorded."""
        try:
            codes = self.read_json(self.classes, {})
        except ModelError:
            return None
        codes = codes.get(split) if isinstance(codes, dict) else None
        return [str(c) for c in codes] if isinstance(codes, list) else None

    def write_skipped(self, skipped: list[dict]) -> None:
        """``skipped.json`` (``{"path", "reason"}`` entries) and ``skipped.txt`` (the paths)."""
        self.write_json(self.skipped_json, skipped)
        write_text_atomically(self.skipped_txt, "".join(s["path"] + "\n" for s in skipped))


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def config_hash(config: dict) -> str:
    """SHA-256 of the canonical JSON of ``config`` (sorted keys, no whitespace)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class Run:
    """What evaluation and conversion need from a finished run."""

    dir: RunDir
    embedder: object  # tf_keras Model: float32 RGB 0..255 -> L2-normalised embedding
    config: dict
    config_hash: str

    @property
    def path(self) -> Path:
        return self.dir.path

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
        return self.dir.class_codes(split)


def load_run(path: str | os.PathLike) -> Run:
    """Load the embedder and config of the run at ``path``; ``ModelError`` if it cannot be."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise ModelError(f"{run.path}: not a directory")
    models = [p for p in (run.embedder, run.model) if p.is_file()]
    if not run.config.is_file() or not models:
        raise ModelError(
            f"{run.path}: not a training run (needs {run.config.name} and "
            f"{run.embedder.name} or {run.model.name})"
        )
    config = run.read_config()
    return Run(run, load_embedder(models[0]), config, config_hash(config))


def load_embedder(path: Path):
    """The embedding model in the ``.keras`` file ``path`` (heads stripped from a full model)."""
    import itemrec.train.backbones  # noqa: F401  (registers InputNormalization)
    import itemrec.train.layers  # noqa: F401  (registers L2Normalize)
    from itemrec.train.keras_api import keras
    from itemrec.train.model import EMBEDDING, embedding_model

    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path}: not a .keras zip archive; refusing to load it (an HDF5 file under that "
            "name would bypass Keras' safe mode)"
        )
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # unknown/unregistered layers raise TypeError, ValueError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{path}: cannot be loaded ({reason[:300]})") from None
    if len(model.outputs) != 1:  # the training network: strip its heads
        try:
            model = embedding_model(model)
        except ValueError:
            raise ModelError(f"{path}: has no {EMBEDDING!r} layer to export") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.output_shape) != 2:
        raise ModelError(f"{path}: expected one image input and one embedding output")
    return model
