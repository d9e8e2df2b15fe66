"""Does score normalisation reject unknown items better than the plain top-1 cosine?

The device accepts a frame when its best item's cosine clears the gallery's threshold. This
study embeds the dev benchmark with a ``.tflite`` (the first image of each enrolled item is
its representative, the others are known probes; every image of a never-enrolled item is an
unknown probe) and compares the equal error rate of "known probe vs unknown probe" for the
plain top-1 score and for normalised ones: the margin to the second item, the margin to the
mean of the next nine, the probe's z-score over the gallery, and a per-item z-score (each
item's mean and spread of cosines to the other items). Not part of ``make bench``.

    python benchmarks/open_set_norms.py MODEL.tflite [--data build/devdata]

Writes ``benchmarks/results/open_set_norms.json`` and ``.md``.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from commands import ROOT, write_results

from itemrec.edge_runtime.folders import scan_class_folders
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.train.evaluation.metrics import equal_error_rate


def embed_items(model: EmbeddingModel, root: Path) -> list[np.ndarray]:
    """Each item's images' embeddings, in folder order (first = representative)."""
    return [
        np.stack([model.embed(load_image(path)) for path in files])
        for _, files in sorted(scan_class_folders(root).items())
    ]


def normalised_scores(scores: np.ndarray, gallery: np.ndarray) -> dict[str, np.ndarray]:
    """Per probe row of ``scores`` (probes x items): each candidate acceptance score."""
    ranked = -np.sort(-scores, axis=1)
    best_item = scores.argmax(axis=1)
    between = gallery @ gallery.T
    np.fill_diagonal(between, np.nan)
    item_mean, item_std = np.nanmean(between, axis=1), np.nanstd(between, axis=1)
    return {
        "top-1 cosine (the device's)": ranked[:, 0],
        "top-1 - top-2": ranked[:, 0] - ranked[:, 1],
        "top-1 - mean of top-2..10": ranked[:, 0] - ranked[:, 1:10].mean(axis=1),
        "probe z-score of top-1": (ranked[:, 0] - scores.mean(axis=1)) / scores.std(axis=1),
        "per-item z-score of top-1": (ranked[:, 0] - item_mean[best_item]) / item_std[best_item],
    }


@click.command()
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=ROOT / "build" / "devdata",
    show_default=True,
    help="A dev benchmark folder with enrolled/ and unknown/ (make devdata).",
)
def main(model_path: Path, data: Path):
    """Compare open-set rejection with and without score normalisation."""
    model = EmbeddingModel(model_path, threads=1)
    enrolled = embed_items(model, data / "enrolled")
    unknown = np.concatenate(embed_items(model, data / "unknown"))
    gallery = np.stack([item[0] for item in enrolled])
    known = np.concatenate([item[1:] for item in enrolled])
    known_scores = normalised_scores(known @ gallery.T, gallery)
    unknown_scores = normalised_scores(unknown @ gallery.T, gallery)
    rows = [
        {"score": name, "eer": equal_error_rate(known_scores[name], unknown_scores[name])[0]}
        for name in known_scores
    ]
    table = "\n".join(
        [
            f"Open-set rejection on `{data.name}` with `{model_path}`: "
            f"{len(gallery)} enrolled items, {len(known)} known and {len(unknown)} unknown "
            "probes; equal error rate of accepting known probes against unknown ones.",
            "",
            "| acceptance score | EER |",
            "|---|---:|",
            *[f"| {r['score']} | {100 * r['eer']:.1f} % |" for r in rows],
            "",
        ]
    )
    write_results("open_set_norms", rows, table)


if __name__ == "__main__":
    main()
