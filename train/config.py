"""The training configuration: measured defaults, a JSON file, CLI flags.

Every default is the best value measured on the bundled sample and the development
benchmark (``docs/defaults.md``; ``benchmarks/compare_recipes.py``).

Precedence: defaults < ``--config FILE`` < flags given on the command line. The
resolved configuration is written to ``<run>/config.json``; rerunning into the same
run directory with a different configuration is refused (it would not be a resume).
"""

from __future__ import annotations

import dataclasses
import json

from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.files import read_regular_file
from itemrec.train.run_dir import RunDir

LOSSES = ("center", "softmax", "triplet", "arcface", "cosface", "subcenter")
#: The training augmentation steps, in the order they apply (see ``itemrec.train.augment``).
AUGMENTATIONS = ("clutter", "crop", "perspective", "occlusion", "blur", "lighting", "jpeg")

#: Keys that may differ between the run that started a directory and the one resuming it.
RESUMABLE_CHANGES = frozenset({"out", "progress"})
#: What a key missing from an older run's ``config.json`` meant: how runs trained before the
#: key existed behaved.
ABSENT_KEYS = {"whitening": 0.0}


@dataclasses.dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    # Lite1 over Lite0, 3 paired seeds at these defaults: rank-1 +1.6 +- 2.3 points on the dev
    # benchmark, -0.5 +- 1.0 on the sample, for 1.35x the device time (docs/defaults.md).
    backbone: str = "efficientnet_lite0"
    weights: str = "imagenet"  # "imagenet", "none" or a weights file
    # 160 over 96 px: rank-1 +6.1 +- 0.9 points on the dev benchmark, +6.6 +- 1.0 on the sample
    # (3 paired seeds each; docs/defaults.md), for ~2.7x the training time.
    # 0: the backbone's own (224 for Lite0).
    image_size: int = 160
    # The head: 128 dimensions and 512 hidden units tie 64/256 and 0/1,024 on cached features;
    # dropout 0 trails 0.5 by 1.5 points of rank-1 on the dev benchmark once whitened, as
    # shipped (2 seeds; docs/defaults.md, Head).
    embedding_size: int = 128
    hidden_units: int = 512
    dropout: float = 0.5
    prelu: bool = False
    loss: str = "center"  # center | softmax | triplet | arcface | cosface | subcenter
    # Dev benchmark, 2 seeds, whitened: 0.01 -0.5 points of rank-1 and open-set EER +1.7 (the
    # previous defaults); 0.001 -1.5 points, EER level (today's; docs/defaults.md, Fine-tuning).
    center_lambda: float = 3e-3
    center_alpha: float = 0.5
    triplet_margin: float = 0.2
    triplet_k: int = 4  # images per class in a P x K batch (P = batch_size // K)
    margin_scale: float = 30.0  # s of arcface, cosface and subcenter
    angular_margin: float = 0.5  # m of arcface and subcenter (radians)
    cosine_margin: float = 0.35  # m of cosface
    subcenters: int = 3  # K of subcenter
    # Phase lengths in optimiser steps (a CPU's cost); None epochs: derived from the steps.
    frozen_epochs: int | None = None
    finetune_epochs: int | None = None
    frozen_steps: int = 1600
    # On the dev benchmark (3 paired seeds each) 800 gained +5.3 +- 0.8 points of rank-1 over
    # 400 (recipes-*-ft800.md), 1,200 +2.6 +- 0.4 over 800 (recipes-devdata-ft1200.md) and
    # 1,600 +2.5 +- 1.0 over 1,200 (recipes-devdata-ft1600.md), every seed; 1,600 trains 1.2x
    # as long as 1,200. 2,000 over 1,600 at today's defaults: +1.0 +- 0.7 whitened, every seed,
    # below the defaults' seed std there (1.2; recipes-devdata-pair-ft2000.md). Small sets
    # reach max_epochs first.
    finetune_steps: int = 1600
    min_epochs: int = 3
    max_epochs: int = 60
    frozen_lr: float = 1e-2  # peak rate of the head, frozen phase
    finetune_lr: float = 1e-2  # peak rate of the head, fine-tuning
    # The backbone fine-tunes at this times the head's rate. The full rate with JPEG in the
    # augmentations, against 0.3 x and crop,lighting (3 paired seeds, whitened): rank-1 +2.1 +- 0.7
    # points on the dev benchmark, +2.4 +- 1.9 on the sample, every seed positive, both means
    # above the sets' seed stds (0.6, 1.4); alone each lever gained about a point
    # (docs/defaults.md, Both levers together). Warm-up, clipping and the collapse guard keep
    # fine-tuning safe; the guard fired in none of the 9 runs.
    backbone_lr_scale: float = 1.0
    warmup_fraction: float = 0.1  # of each phase's steps
    clip_norm: float = 5.0  # global gradient norm; 0: no clipping
    collapse_guard: bool = True
    momentum: float = 0.9
    batch_size: int = 32
    augment: bool = True
    augmentations: str = "crop,lighting,jpeg"  # with backbone_lr_scale 1 (above)
    # Shrinkage of the PCA whitening fitted on the training images after training, applied
    # with at least 2 training classes per embedding dimension (itemrec.train.whitening); 0:
    # none. On the same weights, whitened at 0.3: rank-1 +2.1 +- 0.3 points, EER -1.2 on the
    # dev benchmark (2 seeds), +2.6 +- 1.5 and -4.2 on the sample (3); 0.1 and 0.5 no better
    # (docs/defaults.md, Whitening).
    whitening: float = 0.3
    flip: bool = False
    feature_views: int = 4  # augmented copies of each image behind the cached frozen features
    val_classes: float = 0.1  # a count >= 1 or a fraction of the classes; 0: none
    skip_small_classes: bool = False
    cache_features: bool = True
    mixed_precision: bool = False
    xla: bool = False
    scatter_classes: int = 10
    checkpoint_every: int = 50  # batches between backups (and at every epoch end)
    seed: int = 0
    progress: str = "auto"  # Keras' fit verbosity: auto (a bar on a terminal), 0, 1 or 2

    def validate(self) -> TrainConfig:
        if not self.data:
            raise InputError("no data directory given (--data)")
        if not self.out:
            raise InputError("no run directory given (--out)")
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        for name in (
            "batch_size",
            "embedding_size",
            "hidden_units",
            "checkpoint_every",
            "subcenters",
            "feature_views",
            "min_epochs",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_epochs < self.min_epochs:
            raise InputError("max_epochs must not be below min_epochs")
        for name in ("frozen_epochs", "finetune_epochs", "frozen_steps", "finetune_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative")
        for name in ("frozen_lr", "finetune_lr", "backbone_lr_scale", "clip_norm"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative")
        if not 0 <= self.whitening <= 1:
            raise InputError(f"whitening must be in [0, 1] (0: none), got {self.whitening}")
        if not 0 <= self.warmup_fraction < 1:
            raise InputError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        unknown = sorted(set(self.augmentation_steps) - set(AUGMENTATIONS))
        if unknown:
            raise InputError(
                f"unknown augmentation(s) {', '.join(unknown)}; "
                f"choose from {', '.join(AUGMENTATIONS)}"
            )
        if not 0 <= self.dropout < 1:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.loss == "triplet" and not 2 <= self.triplet_k <= self.batch_size // 2:
            raise InputError("triplet batches need 2 <= --triplet-k <= batch_size / 2")
        return self

    @property
    def augmentation_steps(self) -> tuple[str, ...]:
        """``augmentations`` as names (``none`` or empty: no step)."""
        names = [n.strip() for n in self.augmentations.split(",") if n.strip()]
        return () if names == ["none"] else tuple(names)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
#: A larger config file is refused before reading (a real one has under 2 KB).
MAX_CONFIG_FILE_BYTES = 1_000_000


def load_config_file(path) -> dict:
    """Read a JSON object of config keys (unknown keys are refused)."""
    data = read_regular_file(path, MAX_CONFIG_FILE_BYTES, InputError, "a config file")
    try:
        values = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{path}: cannot read the config ({err})") from None
    if not isinstance(values, dict):
        raise InputError(f"{path}: the config must be a JSON object")
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InputError(f"{path}: unknown config keys {', '.join(unknown)}")
    return values


def resolve_config(file_values: dict, overrides: dict) -> TrainConfig:
    """Defaults, then the file's values, then the command line's."""
    values = {**file_values, **overrides}
    try:
        return TrainConfig(**values).validate()
    except TypeError as err:
        raise InputError(f"bad config: {err}") from None


def changed_fields(saved: dict, config: TrainConfig, ignore=RESUMABLE_CHANGES) -> list[str]:
    """The sorted keys on which a run's saved ``config.json`` and ``config`` differ.

    A phase's step count is not compared when both fix its epoch count: the steps applied
    to neither (so a moved step default does not strand such a run).
    """
    current = config.to_dict()
    unused_steps = {
        f"{phase}_steps"
        for phase in ("frozen", "finetune")
        if current[f"{phase}_epochs"] is not None and saved.get(f"{phase}_epochs") is not None
    }
    return sorted(
        key
        for key in set(saved) | set(current)
        if key not in ignore | unused_steps
        and saved.get(key, ABSENT_KEYS.get(key)) != current.get(key)
    )


def check_resumable(run_dir: RunDir, config: TrainConfig) -> None:
    """Refuse to continue a run directory that was started with a different configuration."""
    saved = run_dir.read_json(run_dir.config, kind=dict)
    if saved is None:
        return
    changed = changed_fields(saved, config)
    if changed:
        raise InputError(
            f"{run_dir.path} holds a run with a different configuration ({', '.join(changed)}); "
            "use another --out to start a new run"
        )
