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
                         (whitened on the training images, ``itemrec.train.whitening``)
    best_embedder.keras  the embedder of the best validation epoch (not whitened)
    centers.npy          the center-loss centers
    features/epoch_NNN.png, features.gif    the deep-feature scatter per epoch
    logs/                TensorBoard
    checkpoints/<phase>/ the weights at the end of each phase
    backup/<phase>/      mid-phase backups, deleted when the phase ends (for resume)

Across machines only the chief worker writes here; the others write the same layout into a
temporary directory (``itemrec.train.distribute.writable_run_dir``, ``docs/multi-machine.md``).

Every JSON file is written atomically (temporary file, then rename): a run killed while
writing keeps the previous version.

Run directories get shared, so loading one must never run code from it. Models are loaded
only from ``.keras`` zip archives, in Keras' safe mode, after :func:`check_keras_archive`
has read their ``config.json``: tf_keras applies safe mode to zip files alone (a legacy HDF5
file named ``.keras`` deserialises Lambda bytecode), and even in safe mode it imports any
module a config names and takes any function from it. So a config may name only Keras'
own modules and itemrec's registered layers, and no ``Lambda`` layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path

from itemrec.edge_runtime.errors import ModelError
from itemrec.edge_runtime.files import atomic_path


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
    def read_json(self, path: Path, default=None, kind: type | None = None):
        """The content of one of this run's JSON files, ``default`` when it does not exist.

        With ``kind`` (``dict`` or ``list``), content of another type is a ``ModelError``: the
        files may have been edited by hand or come with a shared run directory.
        """
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
        except OSError as err:
            raise ModelError(f"{path}: cannot read ({err.strerror})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelError(f"{path}: not valid JSON ({err})") from None
        except RecursionError:
            raise ModelError(f"{path}: JSON nested too deeply") from None
        if kind is not None and not isinstance(content, kind):
            raise ModelError(f"{path}: expected a JSON {'object' if kind is dict else 'list'}")
        return content

    def write_json(self, path: Path, data) -> None:
        write_text_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def read_config(self) -> dict:
        config = self.read_json(self.config, kind=dict)
        if config is None:
            raise ModelError(f"{self.config}: missing")
        return config

    def read_state(self) -> dict:
        """``state.json``: ``{"finished_phases": [phase names]}`` ({} before the first phase)."""
        state = self.read_json(self.state, {}, dict)
        phases = state.setdefault("finished_phases", [])
        if not (isinstance(phases, list) and all(isinstance(p, str) for p in phases)):
            raise ModelError(f"{self.state}: 'finished_phases' must be a list of phase names")
        return state

    def read_history(self) -> list[dict]:
        """``history.json``: one object per epoch, each with an integer ``global_epoch``."""
        history = self.read_json(self.history, [], list)
        for entry in history:
            if not (
                isinstance(entry, dict)
                and type(entry.get("global_epoch")) is int
                and isinstance(entry.get("val_rank1", 0.0), int | float)
            ):
                raise ModelError(f"{self.history}: {str(entry)[:60]} is not an epoch record")
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
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


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

    check_keras_archive(path)
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


#: The modules a ``.keras`` config may name (and their sub-modules): Keras' own, and
#: itemrec's registered layers. Saved itemrec models name exactly these.
ALLOWED_MODULES = ("keras", "tf_keras", "itemrec.train")
#: Layers that hold code: ``Lambda`` (bytecode or a function looked up by name).
REFUSED_CLASSES = ("Lambda", "__lambda__")
#: A larger ``config.json`` is refused before it is read (InceptionV3's is 0.5 MB).
MAX_CONFIG_BYTES = 64_000_000


def check_keras_archive(path: Path) -> None:
    """Refuse a ``.keras`` file that Keras would load unsafely; ``ModelError`` says why."""
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path}: not a .keras zip archive; refusing to load it (an HDF5 file under that "
            "name would bypass Keras' safe mode)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelError(f"{path}: config.json of {info.file_size} bytes; refusing it")
            config = json.loads(archive.read(info))
    except (KeyError, OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not a readable .keras archive ({err})") from None
    except RecursionError:
        raise ModelError(f"{path}: config.json is nested too deeply") from None
    problem = _unsafe_config(config)
    if problem:
        raise ModelError(f"{path}: refusing to load it: {problem}")


def _unsafe_config(config) -> str | None:
    """What in a Keras config could run code on loading, or None (an iterative walk)."""
    pending = [config]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("class_name") in REFUSED_CLASSES:
            return f"it holds a {node['class_name']} layer (code)"
        module = node.get("module")
        if module is not None and not _allowed_module(module):
            return f"its config names the module {str(module)[:80]!r}"
        pending.extend(node.values())
    return None


def _allowed_module(module) -> bool:
    return isinstance(module, str) and any(
        module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_MODULES
    )
