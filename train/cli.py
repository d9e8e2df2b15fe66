"""``itemrec-train``: train an item-embedding model on class folders (see ``train.run``)."""

from __future__ import annotations

import logging

import click

from itemrec.edge_runtime.cli_common import ItemrecCommand
from itemrec.train import quiet_tensorflow, verbose_option
from itemrec.train.config import FIELDS, TrainConfig, load_config_file, resolve_config

DEFAULTS = TrainConfig()


def _option(name: str, help: str, **kwargs):
    flag = "--" + name.replace("_", "-")
    default = getattr(DEFAULTS, name)
    if FIELDS[name].type in ("bool", bool):
        flag = f"{flag}/--no-{name.replace('_', '-')}"
    show = default != ""
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
    ("loss", "Objective.", {"type": click.Choice(["center", "softmax", "triplet"])}),
    ("center_lambda", "Weight of the center loss.", {"type": float}),
    ("center_alpha", "Center update rate.", {"type": float}),
    ("triplet_margin", "Triplet margin (L2 embeddings).", {"type": float}),
    ("triplet_k", "Images per class in a triplet batch (P = batch / K).", {"type": int}),
    ("frozen_epochs", "Epochs with the backbone frozen.", {"type": int}),
    ("finetune_epochs", "Epochs fine-tuning the whole network.", {"type": int}),
    ("frozen_lr", "SGD learning rate, frozen phase.", {"type": float}),
    ("finetune_lr", "SGD learning rate, fine-tuning.", {"type": float}),
    ("momentum", "SGD momentum.", {"type": float}),
    ("batch_size", "Global batch size.", {"type": int}),
    ("augment", "Random resized crop and colour jitter.", {}),
    ("flip", "Also random horizontal flips (off: products carry text).", {}),
    (
        "val_classes",
        "Classes held out for validation: a count, or a fraction < 1.",
        {"type": float},
    ),
    ("skip_small_classes", "Skip classes with < 2 readable images instead of stopping.", {}),
    ("cache_features", "Frozen phase: compute backbone features once (no augmentation).", {}),
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
    """Train an embedding model (softmax + center loss), frozen then fine-tuned."""
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
