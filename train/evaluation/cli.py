"""``itemrec-eval``: how often is the right item first, and are unknown items rejected?

    itemrec-eval --data data/sample/unseen --out eval_out RUN_DIR [MODEL.tflite ...]
    itemrec-eval --data build/devdata/enrolled --unknown build/devdata/unknown --out eval_out \
        MODEL.tflite --gallery gallery.db

Each model (a training run directory, a ``.tflite`` file, or ``pretrained:BACKBONE[@SIZE]``
for frozen ImageNet features without training) is measured through the same
path; several models are drawn on one CMC plot. Unknown items (``--unknown``, or a part of
``--data`` left out of the gallery) calibrate the "unknown item" threshold; ``--gallery``
stores it in a device gallery. Writes ``cmc.json``, ``cmc.png``, ``scores-<model>.png`` and
``report.md`` into ``--out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from itemrec.edge_runtime.cli_common import ItemrecCommand
from itemrec.edge_runtime.folders import flatten, scan_class_folders
from itemrec.train import quiet_tensorflow, verbose_option
from itemrec.train.evaluation.embedders import open_embedder
from itemrec.train.evaluation.protocol import (
    REPRESENTATIVE_RULES,
    choose_representatives,
    embed_folder,
    evaluate,
    read_representatives_file,
)


@click.command(
    "itemrec-eval", cls=ItemrecCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.argument("models", nargs=-1)
@click.option(
    "--model",
    "extra_models",
    multiple=True,
    help="A run directory, a .tflite file or pretrained:BACKBONE[@SIZE] (repeatable; "
    "same as the MODELS arguments).",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Class folders of items NOT used in training.",
)
@click.option(
    "--unknown",
    type=click.Path(path_type=Path),
    help="Class folders of items never enrolled: the impostors of the open-set figures.",
)
@click.option(
    "--unknown-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Without --unknown: the part of --data's items left out of the gallery in each trial.",
)
@click.option(
    "--gallery",
    "gallery_db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Store the recommended threshold in this gallery.db (one .tflite model only).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option(
    "--representatives",
    "representatives_file",
    type=click.Path(exists=True, path_type=Path),
    help="File with one representative image path per line (several per item allowed).",
)
@click.option(
    "--representative-rule",
    type=click.Choice(REPRESENTATIVE_RULES),
    default="first",
    show_default=True,
    help="How to pick one representative per item without a file.",
)
@click.option("--trials", default=10, show_default=True, help="Random draws of the seed protocol.")
@click.option("--seed", default=0, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--workers", default=4, show_default=True, help="Image decoding threads.")
@click.option("--threads", type=int, default=None, help="Interpreter threads for .tflite models.")
@verbose_option
def main(models, extra_models, data, out, gallery_db, verbose, **options):
    """Evaluate embedding models on unseen items: CMC, mAP and unknown-item rejection."""
    quiet_tensorflow(verbose)
    models = list(models) + list(extra_models)
    if not models:
        raise click.UsageError("give at least one model (a run directory or a .tflite file)")
    if gallery_db is not None and (len(models) != 1 or Path(models[0]).suffix != ".tflite"):
        raise click.UsageError("--gallery takes the threshold of exactly one .tflite model")
    results = _evaluate_all(models, data, **options)
    from itemrec.train.evaluation.report import markdown_report, plot_cmc, plot_scores

    out.mkdir(parents=True, exist_ok=True)
    (out / "cmc.json").write_text(json.dumps(results, indent=1))
    plot_cmc({label: r for label, r in results["models"].items()}, out / "cmc.png")
    for label, result in results["models"].items():
        plot_scores(result, out / f"scores-{_slug(label)}.png", label)
    (out / "report.md").write_text(markdown_report(results["models"], str(data)))
    click.echo(markdown_report(results["models"], str(data)))
    click.echo(f"wrote {out / 'cmc.json'}, {out / 'cmc.png'} and {out / 'report.md'}")
    if gallery_db is not None:
        (result,) = results["models"].values()
        _store_threshold(gallery_db, Path(models[0]), result["recommended_threshold"])


def _store_threshold(gallery_db: Path, model_path: Path, threshold: float) -> None:
    """Write ``threshold`` into a gallery made with the model it was calibrated for."""
    from itemrec.edge_runtime.gallery import Gallery
    from itemrec.edge_runtime.interpreter import EmbeddingModel

    fingerprint = EmbeddingModel(model_path, threads=1).fingerprint
    with Gallery.open(gallery_db, write=True) as gallery:
        gallery.check_model(fingerprint, model_path)
        gallery.set_threshold(threshold)
    click.echo(f"{gallery_db}: unknown-item threshold {threshold:.4f} (open-set EER)")


def _embed(embedder, label: str, root: Path, batch_size: int, workers: int):
    n_images = len(flatten(scan_class_folders(root))[0])
    with click.progressbar(
        length=n_images, label=f"embedding {root} with {label}", file=sys.stderr
    ) as bar:
        folder = embed_folder(
            embedder, root, batch_size=batch_size, workers=workers, progress=bar.update
        )
    for skipped_path, reason in folder.skipped:
        click.echo(f"skipped {skipped_path}: {reason}", err=True)
    return folder


def _evaluate_all(
    models,
    data,
    *,
    unknown,
    unknown_fraction,
    representatives_file,
    representative_rule,
    trials,
    seed,
    batch_size,
    workers,
    threads,
) -> dict:
    scan_class_folders(data)  # a bad folder fails before any model loads
    if unknown is not None:
        scan_class_folders(unknown)
    listed = read_representatives_file(representatives_file, data) if representatives_file else None
    results = {"data": str(data), "unknown": str(unknown) if unknown else None}
    results |= {"trials": trials, "seed": seed, "models": {}}
    for path in models:
        embedder = open_embedder(path, threads=threads)
        label = _unique_label(embedder.name, results["models"])
        folder = _embed(embedder, label, data, batch_size, workers)
        unknown_folder = _embed(embedder, label, unknown, batch_size, workers) if unknown else None
        reps = choose_representatives(folder, representative_rule, seed, listed)
        result = evaluate(
            folder,
            reps,
            trials=trials,
            seed=seed,
            redraw_representatives=listed is None and representative_rule == "random",
            unknown=unknown_folder,
            unknown_fraction=unknown_fraction,
        )
        result["model"] = str(path)
        result["skipped"] = [{"path": p, "reason": r} for p, r in folder.skipped]
        results["models"][label] = result
    return results


def _unique_label(name: str, taken) -> str:
    label, n = name, 2
    while label in taken:
        label, n = f"{name}-{n}", n + 1
    return label


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


if __name__ == "__main__":
    main()
