"""What can a trained model's embeddings gain without retraining?

Each candidate is applied to the int8 models that ``compare_recipes.py`` trained (one per
seed) and evaluated exactly as ``itemrec-eval`` does (one random representative per item over
20 draws, the run's seed; open-set impostors from the set's never-enrolled items, or a seeded
half of the unseen items). The ``none`` row must equal the run's own ``eval/cmc.json``, which
the script checks. The candidates:

- ``center-train``: subtract the mean embedding of the training images, L2-normalise again;
- ``whiten-S``: PCA whitening fitted on the training images' embeddings with shrinkage S
  (``itemrec.train.whitening``, which training applies by default since this study);
- ``tta-5crop``: a test-time crop average: an image's embedding is the normalised mean of
  those of the whole image, its centre crop of 85 % of the side and the four corner crops of
  that size, for the gallery and the probes alike (5 more inferences per frame on the device);
- ``whiten-S+tta-5crop``: both, at the default shrinkage;
- ``centre-crop-0.85``: the centre crop alone instead of the whole image (no more inferences:
  does a zoomed view match what training's random crops showed better?), and ``tta-2crop``
  the normalised mean of the whole image and that crop (2 inferences).

    python benchmarks/embedding_postprocess.py --set devdata -r size-160-ft1600 --seeds 0,1,2

Use runs trained without whitening (``--whitening 0``, or trained before it existed).
``--fit-classes 16,64,...`` adds the default whitening fitted on that many random training
classes only (a smaller catalogue; what ``MIN_CLASSES_PER_DIMENSION`` rests on).
``--as-trained`` also whitens each run's Keras embedder as ``itemrec-train`` now does at its
end (``<run>/whitened-<shrinkage>-s<seed>/``), converts it and evaluates both, like
``compare_recipes``.

Writes ``benchmarks/results/postprocess-<set>.json`` and ``.md`` (or ``--results-name``).
Not part of ``make bench``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import click
import numpy as np
from bench_convert import interleaved_latency
from commands import ROOT, run_batch, write_results
from compare_recipes import (
    SETS,
    cmc_file,
    convert_command,
    eval_command,
    figures,
    int8_file,
)

from itemrec.edge_runtime.folders import flatten, scan_class_folders
from itemrec.edge_runtime.geometry import center_crop_resize
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.train.config import TrainConfig
from itemrec.train.evaluation.protocol import EmbeddedFolder, choose_representatives, evaluate
from itemrec.train.whitening import fit_whitening

TRIALS = 20  # compare_recipes' evaluation
SHRINKS = (0.1, 0.3, 0.5)  # whitening shrinkages tried
DEFAULT_SHRINK = TrainConfig.whitening
WHITENED_RUN = f"whitened-{DEFAULT_SHRINK}"  # <run>/whitened-S-s<seed>/: --as-trained's copy
ZOOM = 0.85  # side of a test-time crop, as a fraction of the image's shorter side


def zoom_crops(image: np.ndarray) -> list[np.ndarray]:
    """Square crops of ``ZOOM`` of the shorter side: the centre one, then the four corners."""
    height, width = image.shape[:2]
    side = round(ZOOM * min(height, width))
    corners = [(0, 0), (0, width - side), (height - side, 0), (height - side, width - side)]
    boxes = [((height - side) // 2, (width - side) // 2), *corners]
    return [image[y : y + side, x : x + side] for y, x in boxes]


def normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Views:
    """Embeddings of every image of a folder: the whole image and the zoomed crops."""

    def __init__(self, model: EmbeddingModel, root: Path, crops: bool = True):
        self.paths, self.labels = flatten(scan_class_folders(root))
        size = model.input_size
        whole, center, corner = [], [], []
        for path in self.paths:
            image = load_image(path)
            whole.append(model.embed(center_crop_resize(image, size)))
            if crops:
                views = [model.embed(center_crop_resize(c, size)) for c in zoom_crops(image)]
                center.append(views[0])
                corner.append(np.stack(views[1:]))
        self.whole = np.stack(whole)
        self.center, self.corners = (np.stack(v) if crops else None for v in (center, corner))

    def tta(self) -> np.ndarray:
        views = [self.whole[:, None], self.center[:, None], self.corners]
        return normalised(np.concatenate(views, axis=1).mean(axis=1))


def whitened(weights: tuple[np.ndarray, np.ndarray], views: Views, tta: bool) -> np.ndarray:
    kernel, bias = weights
    return normalised((views.tta() if tta else views.whole) @ kernel + bias)


def candidates(
    train: np.ndarray, labels=None, fit_classes=(), seed: int = 0
) -> dict[str, Callable[[Views], np.ndarray]]:
    """Name -> a function of a ``Views`` giving its embeddings under that candidate.

    ``fit_classes``: also the default whitening fitted on that many random training classes
    (of ``labels``, drawn with ``seed``) only, as if the catalogue had been that small.
    """
    mean = train.mean(axis=0)
    weights = {shrink: fit_whitening(train, shrink) for shrink in {*SHRINKS, DEFAULT_SHRINK}}
    classes = np.unique(labels) if labels is not None else []
    subsets = {
        f"whiten-{DEFAULT_SHRINK} on {k} classes": np.isin(
            labels, np.random.default_rng(seed).choice(classes, k, replace=False)
        )
        for k in fit_classes
        if k < len(classes)
    }
    return {
        "none": lambda v: v.whole,
        "center-train": lambda v: normalised(v.whole - mean),
        **{f"whiten-{s}": partial(whitened, weights[s], tta=False) for s in SHRINKS},
        f"centre-crop-{ZOOM}": lambda v: v.center,
        "tta-2crop": lambda v: normalised(v.whole + v.center),
        "tta-5crop": lambda v: v.tta(),
        f"whiten-{DEFAULT_SHRINK}+tta-5crop": partial(whitened, weights[DEFAULT_SHRINK], tta=True),
        **{
            name: partial(whitened, fit_whitening(train[rows], DEFAULT_SHRINK), tta=False)
            for name, rows in subsets.items()
        },
    }


def evaluate_embeddings(known: Views, unknown: Views | None, embed, seed: int) -> dict:
    """``itemrec-eval``'s figures (as ``compare_recipes``) for one candidate's embeddings."""
    folder = EmbeddedFolder(known.paths, np.asarray(known.labels), embed(known), [])
    impostors = None
    if unknown is not None:
        impostors = EmbeddedFolder(unknown.paths, np.asarray(unknown.labels), embed(unknown), [])
    result = evaluate(
        folder,
        choose_representatives(folder, "random", seed),
        trials=TRIALS,
        seed=seed,
        redraw_representatives=True,
        unknown=impostors,
    )
    return figures(result)


def study_run(
    set_name: str, recipe: str, seed: int, as_trained: bool, fit_classes=()
) -> list[dict]:
    """Every candidate on one trained run's int8 model; checks ``none`` against its eval.

    ``as_trained`` adds the run whitened as ``itemrec-train`` now does it (its Keras embedder
    on the training images), converted and evaluated like ``compare_recipes``.
    """
    data = {k: v and ROOT / v for k, v in SETS[set_name].items()}
    out = ROOT / "build" / "compare" / set_name
    run = out / f"{recipe}-s{seed}"
    recorded = json.loads(cmc_file(out, recipe, seed).read_text())["models"]
    if json.loads((run / "run" / "config.json").read_text()).get("whitening"):
        raise click.ClickException(f"{run.name} was whitened in training; use unwhitened runs")
    model = EmbeddingModel(int8_file(run), threads=1)
    click.echo(f"{run.name}: embedding {set_name} (whole images and 5 crops)", err=True)
    train = Views(model, data["train"], crops=False)
    known = Views(model, data["unseen"])
    unknown = Views(model, data["unknown"]) if data["unknown"] else None
    key = {"recipe": recipe, "seed": seed}
    rows = []
    made = candidates(train.whole, np.asarray(train.labels), fit_classes, seed)
    for name, embed in made.items():
        rows.append({"candidate": name, **key, "model": "int8"})
        rows[-1] |= evaluate_embeddings(known, unknown, embed, seed)
        click.echo(f"  {name}: rank-1 {rows[-1]['rank1']:.3f}, EER {rows[-1]['open_set_eer']:.3f}")
    if not all(
        np.isclose(rows[0][k], v) for k, v in figures(recorded[int8_file(run).name]).items()
    ):
        raise click.ClickException(f"{run.name}: 'none' differs from its eval/cmc.json")
    if as_trained and whiten_like_training(run):
        rows.append({"candidate": "none", **key, "model": "Keras", **figures(recorded["run"])})
        models = json.loads(cmc_file(run, WHITENED_RUN, seed).read_text())["models"]
        for label, kind in (("run", "Keras"), (int8_file(run).name, "int8")):
            name = f"whitened in training ({DEFAULT_SHRINK})"
            rows.append({"candidate": name, **key, "model": kind, **figures(models[label])})
        files = {"none": int8_file(run), "whitened": int8_file(whitened_copy(run, seed))}
        rows[-1]["device"] = {
            "ms_1_thread": interleaved_latency(files, threads=1, statistic=np.min),
            "bytes": {name: path.stat().st_size for name, path in files.items()},
        }
    return rows


def whitened_copy(run: Path, seed: int) -> Path:
    """Where ``--as-trained`` puts ``run`` whitened (``cmc_file(run, WHITENED_RUN, seed)``)."""
    return run / f"{WHITENED_RUN}-s{seed}"


def whiten_like_training(run: Path) -> bool:
    """``run/whitened-S-s<seed>/``: ``run``'s embedder whitened as training's end does it,
    converted and evaluated with ``compare_recipes``' commands (skipped once evaluated).
    False when training would not whiten it (too few classes, collapsed embeddings)."""
    from itemrec.train.data import readable_class_folders, split_by_class
    from itemrec.train.run_dir import load_run
    from itemrec.train.whitening import whiten_for_export

    trained = load_run(run / "run")
    config = trained.config
    seed = config["seed"]
    target = whitened_copy(run, seed)
    set_name = run.parent.name
    if not cmc_file(run, WHITENED_RUN, seed).is_file():
        # the set's own folder: the path in config.json may be another checkout's
        train = ROOT / SETS[set_name]["train"]
        data = readable_class_folders(train, config.get("skip_small_classes", False))
        train_set = split_by_class(data, config["val_classes"], seed)[0]
        whitened, record = whiten_for_export(
            trained.embedder, train_set, trained.input_size[0], config["batch_size"], DEFAULT_SHRINK
        )
        if "not_whitened" in record:
            click.echo(f"{run.name}: training would not whiten it: {record['not_whitened']}")
            return False
        (target / "run").mkdir(parents=True, exist_ok=True)
        whitened.save(target / "run" / "embedder.keras")
        for name in ("classes.json", "summary.json"):
            shutil.copyfile(run / "run" / name, target / "run" / name)
        (target / "run" / "config.json").write_text(
            json.dumps(config | {"whitening": DEFAULT_SHRINK, "data": str(train)}, indent=1)
        )
        steps = {
            "convert": convert_command(target),
            "eval": eval_command(set_name, seed, target, [target / "run", int8_file(target)]),
        }
        codes = run_batch(steps, target / "logs", jobs=1)
        if any(codes.values()):
            raise click.ClickException(f"{target}: {codes}")
    return True


GAINS = ("rank1", "open_set_eer")  # the paired differences from `none` in the table


def _stat(values) -> str:
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}"


def table(rows: list[dict], set_name: str, command: str) -> str:
    """Mean +- std over seeds, and the paired gain over ``none``, per candidate."""
    base = {(r["recipe"], r["seed"], r["model"]): r for r in rows if r["candidate"] == "none"}
    lines = [
        f"# Post-processing the int8 embeddings on {set_name} (no retraining)",
        "",
        "| candidate | model | runs | rank-1 | rank-5 | mAP | open-set EER | rank-1 gain (paired) "
        "| EER change (paired) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, kind in dict.fromkeys((r["candidate"], r["model"]) for r in rows):
        mine = [r for r in rows if (r["candidate"], r["model"]) == (name, kind)]
        cells = [_stat([r[k] for r in mine]) for k in ("rank1", "rank5", "mAP", "open_set_eer")]
        cells += [
            _stat([r[k] - base[r["recipe"], r["seed"], kind][k] for r in mine]) for k in GAINS
        ]
        lines.append(f"| {name} | {kind} | {len(mine)} | " + " | ".join(cells) + " |")
    for row in (r for r in rows if "device" in r):
        ms, size = row["device"]["ms_1_thread"], row["device"]["bytes"]
        lines.append(
            f"\n{row['recipe']}-s{row['seed']} int8 on 1 thread (fastest of the round-robin "
            f"rounds): {ms['none']:.2f} ms unwhitened, {ms['whitened']:.2f} ms whitened; "
            f"{size['none']:,} and {size['whitened']:,} bytes."
        )
    runs = sorted({f"{r['recipe']}-s{r['seed']}" for r in rows})
    lines += [
        "",
        f"Runs: {', '.join(runs)} (`build/compare/{set_name}/`). The int8 rows other than "
        "`whitened in training` transform the embeddings of each run's int8 model.",
        "",
    ]
    lines += ["Command (from `benchmarks/`):", "", f"    {command}", ""]
    return "\n".join(lines)


@click.command()
@click.option("--set", "set_name", type=click.Choice(sorted(SETS)), default="devdata")
@click.option("-r", "--recipe", "recipes", multiple=True, default=["size-160-ft1600"])
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option(
    "--as-trained",
    is_flag=True,
    help="Also whiten each run as itemrec-train does (Keras), convert and evaluate it.",
)
@click.option(
    "--fit-classes",
    default="",
    help="Comma-separated class counts: also whiten on that many random training classes only.",
)
@click.option("--results-name", help="Results file name (default: postprocess-<set>).")
def main(set_name, recipes, seeds, as_trained, fit_classes, results_name):
    """Measure embedding post-processing candidates on trained runs without retraining."""
    fit_classes = [int(k) for k in fit_classes.split(",") if k]
    rows = [
        row
        for recipe in recipes
        for seed in (int(s) for s in seeds.split(","))
        for row in study_run(set_name, recipe, seed, as_trained, fit_classes)
    ]
    command = " ".join(
        ["python embedding_postprocess.py", "--set", set_name, *(f"-r {r}" for r in recipes)]
        + ["--seeds", seeds, *["--as-trained"] * as_trained]
        + [f"--fit-classes {','.join(map(str, fit_classes))}"] * bool(fit_classes)
    )
    write_results(results_name or f"postprocess-{set_name}", rows, table(rows, set_name, command))


if __name__ == "__main__":
    main()
