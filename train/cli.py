"""``itemrec-train``: train an item-embedding model on class folders (see ``train.run``)."""

from __future__ import annotations

import logging

import click

from itemrec.edge_runtime.cli_common import ItemrecCommand
from itemrec.train import quiet_tensorflow, verbose_option
from itemrec.train.config import (
    AUGMENTATIONS,
    FIELDS,
    LOSSES,
    TrainConfig,
    load_config_file,
    resolve_config,
)

DEFAULTS = TrainConfig()


def _option(name: str, help: str, **kwargs):
    flag = "--" + name.replace("_", "-")
    default = getattr(DEFAULTS, name)
    if FIELDS[name].type in ("bool", bool):
        flag = f"{flag}/--no-{name.replace('_', '-')}"
    show = default not in ("", None)
    return click.option(flag, name, default=default, show_default=show, help=help, **kwargs)


OPTIONS = [
    ("data", "Class folders: DIR/<class code>/<image>.", {"type": click.Path()}),
    (
        "out",
        "Run directory (created; rerun the same command to resume).",
        {"type": click.Path(), "required": True},
    ),
    ("backbone", "inception_v3, efficientnet_lite0/1/2.", {}),
    ("weights", "imagenet, none, or a weights file.", {}),
    ("image_size", "Input side in px (0: the backbone's default).", {"type": int}),
    ("embedding_size", "Deep feature / embedding size.", {"type": int}),
    ("hidden_units", "Units of the Dense layer before the deep feature.", {"type": int}),
    ("dropout", "Dropout rate after pooling.", {"type": float}),
    ("prelu", "PReLU on the deep feature (as in the seed).", {}),
    ("loss", "Objective.", {"type": click.Choice(LOSSES)}),
    ("center_lambda", "Weight of the center loss.", {"type": float}),
    ("center_alpha", "Center update rate.", {"type": float}),
    ("triplet_margin", "Triplet margin (L2 embeddings).", {"type": float}),
    ("triplet_k", "Images per class in a triplet batch (P = batch / K).", {"type": int}),
    ("margin_scale", "Logit scale s of arcface, cosface and subcenter.", {"type": float}),
    ("angular_margin", "Margin m of arcface and subcenter, radians.", {"type": float}),
    ("cosine_margin", "Margin m of cosface.", {"type": float}),
    ("subcenters", "Sub-centers per class (subcenter).", {"type": int}),
    (
        "frozen_epochs",
        "Epochs with the backbone frozen (default: from --frozen-steps).",
        {"type": int},
    ),
    (
        "finetune_epochs",
        "Epochs fine-tuning the whole network (default: from --finetune-steps).",
        {"type": int},
    ),
    (
        "frozen_steps",
        "Optimiser steps of the frozen phase, when its epochs are not given.",
        {"type": int},
    ),
    (
        "finetune_steps",
        "Optimiser steps of fine-tuning, when its epochs are not given.",
        {"type": int},
    ),
    ("min_epochs", "Fewest epochs a phase derived from steps runs.", {"type": int}),
    ("max_epochs", "Most epochs a phase derived from steps runs.", {"type": int}),
    ("frozen_lr", "Peak SGD learning rate, frozen phase.", {"type": float}),
    ("finetune_lr", "Peak SGD learning rate of the head when fine-tuning.", {"type": float}),
    (
        "backbone_lr_scale",
        "The backbone fine-tunes at this times the head's rate.",
        {"type": float},
    ),
    (
        "warmup_fraction",
        "Linear warm-up over this fraction of a phase, then cosine decay.",
        {"type": float},
    ),
    ("clip_norm", "Clip the global gradient norm to this (0: off).", {"type": float}),
    ("collapse_guard", "Undo an epoch that collapses the features and cut the rate.", {}),
    ("momentum", "SGD momentum.", {"type": float}),
    ("batch_size", "Global batch size.", {"type": int}),
    ("augment", "Training augmentation (the steps of --augmentations).", {}),
    ("augmentations", f"Comma-separated steps: {', '.join(AUGMENTATIONS)}, or none.", {}),
    ("flip", "Also random horizontal flips (off: products carry text).", {}),
    (
        "whitening",
        "Shrinkage of the PCA whitening fitted on the training images at the end, 0..1 (0: none).",
        {"type": float},
    ),
    (
        "feature_views",
        "Augmented views per image behind the cached frozen features.",
        {"type": int},
    ),
    (
        "val_classes",
        "Classes held out for validation: a count, or a fraction < 1.",
        {"type": float},
    ),
    ("skip_small_classes", "Skip classes with < 2 readable images instead of stopping.", {}),
    (
        "cache_features",
        "Frozen phase: compute backbone features once (of --feature-views views).",
        {},
    ),
    ("mixed_precision", "Compute in float16, keep weights and losses float32 (GPUs).", {}),
    ("xla", "Compile the training step with XLA.", {}),
    ("scatter_classes", "Classes in the per-epoch deep-feature scatter.", {"type": int}),
    ("checkpoint_every", "Batches between backups for resume.", {"type": int}),
    ("seed", "Random seed (split, shuffling, initialisation).", {"type": int}),
]


def _with_options(command):
    for name, help_text, kwargs in reversed(OPTIONS):
        command = _option(name, help_text, **kwargs)(command)
    return command


@click.command(
    "itemrec-train", cls=ItemrecCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--config", "config_file", type=click.Path(), help="JSON file of options.")
@_with_options
@verbose_option
@click.pass_context
def main(ctx: click.Context, config_file, verbose, **values):
    """Train an embedding model (softmax + center loss by default), frozen then fine-tuned.

    With only --data and --out it runs the measured default recipe (see the README).
    """
    quiet_tensorflow(verbose)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("itemrec.train").setLevel(logging.INFO)
    given = {
        name: value
        for name, value in values.items()
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    file_values = load_config_file(config_file) if config_file else {}
    config = resolve_config(file_values, given)
    from itemrec.train.run import train_run

    summary = train_run(config)
    best = summary.get("best_val_rank1")
    click.echo(
        f"done: {summary['epochs']} epochs, {summary['classes']} classes -> {config.out}"
        + ("" if best is None else f"; best validation rank-1 {best:.3f}")
    )


if __name__ == "__main__":
    main()
