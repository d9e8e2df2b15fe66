"""Rank losses, lambdas, head rates and shapes, augmentations cheaply: on cached features.

    python benchmarks/compare_heads.py --train data/sample/train --unseen data/sample/unseen \\
        --name sample --image-size 96 --seeds 0,1,2 [--grid losses|lambda|lr|augment|head]

The backbone (ImageNet EfficientNet-Lite0, frozen) embeds every training image once per
augmented view and every unseen image once; then, for each recipe of the grid and each
seed, only the head (by default Dense 512, Dense 128) is trained on those features, exactly as the
frozen phase of ``itemrec-train`` does, and the unseen items are scored through the same
metrics as ``itemrec-eval``: rank-1/5 (one random representative and probe per item, 20
draws), mAP and the EER. Seeds are paired: seed s draws the same initial head, the same
batches and the same evaluation draws for every recipe.

Full fine-tuning is what ``compare_recipes.py`` measures; this script ranks the choices
that the head decides (a few seconds a recipe instead of many minutes) to pick finalists.
Results: ``benchmarks/results/heads-<name>-<grid>.json`` and ``.md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from itemrec.train.augment import Augmentation
from itemrec.train.config import AUGMENTATIONS
from itemrec.train.data import (
    augmented_views,
    evaluation_dataset,
    pk_feature_dataset,
    readable_class_folders,
)
from itemrec.train.evaluation.metrics import first_of_each_class
from itemrec.train.evaluation.protocol import EmbeddedFolder, evaluate
from itemrec.train.keras_api import keras, tf
from itemrec.train.losses import make_objective
from itemrec.train.model import build_model, head_network, pooled_features_model
from itemrec.train.schedule import WarmupCosine
from itemrec.train.trainer import EmbeddingTrainer

RESULTS = Path(__file__).resolve().parent / "results"
BASE = {
    **{"loss": "center", "lam": 3e-3, "lr": 1e-2, "steps": 400, "augment": "all"},
    **{"dropout": 0.5, "hidden": 512, "embedding": 128},  # TrainConfig's head
}
GRIDS = {
    "losses": [
        {"loss": "center"},
        {"loss": "softmax"},
        {"loss": "triplet"},
        {"loss": "arcface"},
        {"loss": "cosface"},
        {"loss": "subcenter"},
    ],
    "lambda": [{"lam": lam} for lam in (1e-3, 3e-3, 1e-2, 3e-2)],
    "lr": [{"lr": lr} for lr in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)],
    "steps": [{"steps": steps} for steps in (400, 1600, 3200)],
    "augment": [{"augment": "none"}, *({"augment": a} for a in AUGMENTATIONS), {"augment": "all"}],
    "head": [
        {},
        *({"dropout": rate} for rate in (0.0, 0.2)),
        *({"hidden": units} for units in (0, 1024)),  # 0: pooled features -> deep feature
        *({"embedding": size} for size in (64, 256)),
    ],
}


class Features:
    """Pooled backbone features of the training views and the unseen images, computed once."""

    def __init__(self, train_dir, unseen_dir, unknown_dir, size: int, views: int, batch=32):
        self.train = readable_class_folders(train_dir)
        self.train_dir, self.unseen_dir, self.unknown_dir = train_dir, unseen_dir, unknown_dir
        self.size, self.views, self.batch = size, views, batch
        network = build_model("efficientnet_lite0", size, len(self.train.classes))
        self.pooled = pooled_features_model(network)
        self.unseen = self._folder(unseen_dir)
        self.unknown = self._folder(unknown_dir) if unknown_dir else None
        self._train_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _folder(self, root) -> tuple[np.ndarray, np.ndarray]:
        """Features and class codes of every image of ``root``."""
        folders = readable_class_folders(root)
        paths, labels = folders.paths_and_labels
        features = self._predict(evaluation_dataset(paths, labels, self.size, self.batch))
        return features, np.array([folders.classes[i] for i in labels])

    def _predict(self, dataset) -> np.ndarray:
        return self.pooled.predict(dataset, verbose=0).astype(np.float32)

    def training(self, augment: str):
        """Features of the training images under ``augment`` (steps, comma-separated; all; none)."""
        if augment not in self._train_cache:
            steps = {"all": AUGMENTATIONS, "none": ()}.get(augment, tuple(augment.split(",")))
            aug = Augmentation.named(steps) if steps else None
            tf.keras.utils.set_random_seed(1234)  # the same views for every recipe
            dataset, labels = augmented_views(self.train, self.size, self.batch, aug, self.views)
            self._train_cache[augment] = (self._predict(dataset), labels)
        return self._train_cache[augment]


def train_head(features: Features, recipe: dict, seed: int) -> dict:
    x, y = features.training(recipe["augment"])
    classes = len(features.train.classes)
    tf.keras.utils.set_random_seed(seed)
    network = build_model(
        "efficientnet_lite0",
        features.size,
        classes,
        weights="none",
        dropout=recipe["dropout"],
        hidden_units=recipe["hidden"],
        embedding_size=recipe["embedding"],
    )
    head = head_network(network)
    objective = make_objective(
        recipe["loss"], classes, recipe["embedding"], lam=recipe["lam"], seed=seed
    )
    trainer = EmbeddingTrainer(head, objective)
    schedule = WarmupCosine(recipe["lr"], recipe["steps"], round(0.1 * recipe["steps"]))
    trainer.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, global_clipnorm=5.0))
    if objective.needs_class_balanced_batches:
        data, per_epoch = pk_feature_dataset(x, y, features.batch // 4, 4, seed)
    else:
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed)
        data = data.repeat().batch(features.batch)
        per_epoch = len(y) // features.batch
    epochs = max(1, round(recipe["steps"] / per_epoch))
    history = trainer.fit(data, epochs=epochs, steps_per_epoch=per_epoch, verbose=0).history
    embed = keras.Model(head.input, head.output["embedding"])

    def embedded(pair):
        return EmbeddedFolder([], pair[1], embed.predict(pair[0], verbose=0), [])

    folder = embedded(features.unseen)
    unknown = embedded(features.unknown) if features.unknown is not None else None
    representatives = {
        label: [int(i)]
        for i, label in zip(
            np.flatnonzero(first_of_each_class(folder.labels)),
            folder.labels[first_of_each_class(folder.labels)],
            strict=True,
        )
    }
    result = evaluate(
        folder, representatives, trials=20, seed=seed, redraw_representatives=True, unknown=unknown
    )
    return {
        "rank1": result["seed_protocol"]["mean"][0],
        "rank5": result["seed_protocol"]["mean"][4],
        "mAP": result["mAP"],
        "eer": result["open_set"]["eer"],
        "final_loss": float(history["loss"][-1]),
    }


def summarize(rows: list[dict], keys) -> list[dict]:
    """Mean and std over seeds of each recipe, and its paired difference to the first recipe."""
    recipes = []
    for row in rows:
        if row["recipe"] not in recipes:
            recipes.append(row["recipe"])
    table = []
    for recipe in recipes:
        runs = [r for r in rows if r["recipe"] == recipe]
        baseline = {r["seed"]: r for r in rows if r["recipe"] == recipes[0]}
        entry = {"recipe": recipe, "seeds": len(runs)}
        for key in keys:
            values = np.array([r[key] for r in runs])
            diffs = np.array([r[key] - baseline[r["seed"]][key] for r in runs])
            entry[key] = [float(values.mean()), float(values.std(ddof=1)) if len(runs) > 1 else 0.0]
            entry[f"{key}_paired_diff"] = [
                float(diffs.mean()),
                float(diffs.std(ddof=1)) if len(runs) > 1 else 0.0,
            ]
        table.append(entry)
    return table


def markdown(table: list[dict], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "| recipe | seeds | rank-1 | rank-5 | mAP | open-set EER | rank-1 - first row (paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in table:
        lines.append(
            f"| {e['recipe']} | {e['seeds']} | {e['rank1'][0]:.3f} +- {e['rank1'][1]:.3f} "
            f"| {e['rank5'][0]:.3f} +- {e['rank5'][1]:.3f} "
            f"| {e['mAP'][0]:.3f} +- {e['mAP'][1]:.3f} "
            f"| {e['eer'][0]:.3f} +- {e['eer'][1]:.3f} "
            f"| {e['rank1_paired_diff'][0]:+.3f} +- {e['rank1_paired_diff'][1]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def label(recipe: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in recipe.items() if BASE.get(k) != v) or "base"


@click.command()
@click.option("--train", "train_dir", required=True, type=click.Path(exists=True))
@click.option("--unseen", "unseen_dir", required=True, type=click.Path(exists=True))
@click.option("--unknown", "unknown_dir", type=click.Path(exists=True), help="Unenrolled items.")
@click.option("--name", required=True, help="Names the results (e.g. sample, devdata).")
@click.option("--image-size", default=96, show_default=True)
@click.option("--views", default=4, show_default=True, help="Augmented views per image.")
@click.option("--grid", default="losses", show_default=True, help=f"Comma list of {sorted(GRIDS)}.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--base", "base_json", default="{}", help="JSON overrides of the base recipe.")
def main(train_dir, unseen_dir, unknown_dir, name, image_size, views, grid, seeds, base_json):
    base = {**BASE, **json.loads(base_json)}
    seeds = [int(s) for s in seeds.split(",")]
    started = time.perf_counter()
    features = Features(train_dir, unseen_dir, unknown_dir, image_size, views)
    click.echo(f"features in {time.perf_counter() - started:.0f} s", err=True)
    for one_grid in grid.split(","):
        _run_grid(features, base, one_grid, seeds, started, f"{name}", base_json)


def _run_grid(features, base, grid, seeds, started, name, base_json):
    rows = []
    for change in GRIDS[grid]:
        recipe = {**base, **change}
        for seed in seeds:
            result = train_head(features, recipe, seed)
            rows.append({"recipe": label(recipe), "seed": seed, **result})
            click.echo(f"{rows[-1]}", err=True)
    table = summarize(rows, ("rank1", "rank5", "mAP", "eer"))
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"heads-{name}-{grid}"
    unknown = features.unknown_dir
    record = {
        "command": f"python benchmarks/compare_heads.py --train {features.train_dir} "
        f"--unseen {features.unseen_dir} "
        + (f"--unknown {unknown} " if unknown else "")
        + f"--name {name} --image-size {features.size} --views {features.views} --grid {grid} "
        f"--seeds {','.join(map(str, seeds))} --base '{base_json}'",
        "base": base,
        "image_size": features.size,
        "views": features.views,
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "table": table,
    }
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1))
    title = f"Heads on cached features: {name}, {grid}, {features.size} px, {features.views} views"
    stem.with_suffix(".md").write_text(markdown(table, title) + f"\n`{record['command']}`\n")
    click.echo(markdown(table, title))


if __name__ == "__main__":
    main()
