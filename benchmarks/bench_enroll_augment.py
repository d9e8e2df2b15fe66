"""Enrolment-time augmentation on the device: K views per enrolment photo, measured.

For K in 0, 1, 2, 4, 8: build a real gallery (``itemrec.edge_runtime.enroll.build_gallery``,
SQLite) from one photo per enrolled item, the first (itemrec's representative rule), plus K
augmented views of it (``edge_runtime.augment``); identify every other photo of the enrolled
items, and reject the photos of items never enrolled, through the device's ``Lookup``.
Reported: rank-1/5, open-set EER (impostors: items not in the gallery), the share of known
items identified and accepted at that EER threshold, the gallery's rows and file size, the
enrolment time per photo and the lookup time per query (1 interpreter thread).

The model is ``bench_resolution``'s int8 EfficientNet-Lite0 of each data set (made here if
missing); the sample's unseen items are split once (seed 0) into 50 enrolled and 50 unknown.

    python benchmarks/bench_enroll_augment.py [--size 128] [--data sample --data devdata]
        [--model devdata=RUN/model_int8.tflite] [--results-name enroll_augment]

Writes ``benchmarks/results/enroll_augment.json`` and ``enroll_augment.md`` (or
``--results-name``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import numpy as np
from bench_resolution import DATA, WORK, available_data, data_option, prepare
from commands import write_results

from itemrec.edge_runtime.enroll import build_gallery
from itemrec.edge_runtime.folders import flatten, scan_class_folders
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import Lookup
from itemrec.train.evaluation import metrics

VIEWS = (0, 1, 2, 4, 8)


def split(data: str) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Enrolled and never-enrolled items' photos (class folders)."""
    _, enrolled, unknown = DATA[data]
    items = scan_class_folders(enrolled)
    if unknown is not None:
        return items, scan_class_folders(unknown)
    codes = sorted(items)
    left_out = set(np.random.default_rng(0).permutation(codes)[: len(codes) // 2].tolist())
    known = {c: p for c, p in items.items() if c not in left_out}
    return known, {c: p for c, p in items.items() if c in left_out}


def representatives_folder(items: dict[str, list[Path]], root: Path) -> Path:
    """``root/<code>/<first photo>`` as links: the gallery's photos."""
    for code, paths in items.items():
        (root / code).mkdir(parents=True)
        (root / code / paths[0].name).symlink_to(paths[0].resolve())
    return root


def embed_all(model: EmbeddingModel, items: dict[str, list[Path]]) -> tuple[np.ndarray, list]:
    paths, labels = flatten(items)
    return np.stack([model.embed(load_image(p)) for p in paths]), labels


def measure(model_path: Path, data: str, views: int, probes, unknown, work: Path) -> dict:
    known_items, _ = split(data)
    model = EmbeddingModel(model_path, threads=1)
    db = work / f"{data}_{views}.db"
    started = time.perf_counter()
    report = build_gallery(model, work / f"{data}_photos", db, augment=views)
    enroll_ms = 1e3 * (time.perf_counter() - started) / len(known_items)
    with Gallery.open(db) as gallery:
        vectors = gallery.vectors()
    lookup = Lookup(vectors)
    gallery_labels = np.asarray(vectors.codes)[vectors.item_index]
    (x, labels), (u, _) = probes, unknown
    started = time.perf_counter()
    for row in x:
        lookup.identify(row, 5)
    lookup_ms = 1e3 * (time.perf_counter() - started) / len(x)
    similarity = x @ vectors.matrix.T
    cmc = metrics.cmc_curve(similarity, labels, gallery_labels, max_rank=5)
    scores = metrics.unknown_item_scores(similarity, labels, u @ vectors.matrix.T, gallery_labels)
    open_set = metrics.open_set_report(scores)
    return {
        "data": data,
        "views": views,
        "items": report.items,
        "representatives": int(len(vectors.matrix)),
        "gallery_kb": db.stat().st_size / 1024,
        "probes": len(x),
        "unknown_probes": len(u),
        "rank1": float(cmc[0]),
        "rank5": float(cmc[4]),
        "open_set_eer": open_set["eer"],
        "threshold": open_set["recommended_threshold"],
        "identified_at_threshold": open_set["at_threshold"]["identification_rate"],
        "enroll_ms_per_photo": enroll_ms,
        "lookup_ms_per_query": lookup_ms,
    }


def markdown(rows: list[dict], models: dict[str, str]) -> str:
    lines = [
        "# Enrolment-time augmentation: K views per enrolment photo",
        "",
        "Models: " + "; ".join(f"{data}: {what}" for data, what in models.items()) + ". "
        "One photo per enrolled item (the first) plus K augmented views; "
        "probes: the items' other photos; open-set impostors: every photo of the items never "
        "enrolled. Times: 1 interpreter thread, shared 2-core x86-64 machine.",
        "",
        "| data | K | items | representatives | gallery.db KB | rank-1 | rank-5 "
        "| open-set EER | identified at EER threshold | enrol ms/photo | lookup ms/query |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['data']} | {r['views']} | {r['items']} | {r['representatives']} "
        f"| {r['gallery_kb']:.0f} | {100 * r['rank1']:.1f} % | {100 * r['rank5']:.1f} % "
        f"| {100 * r['open_set_eer']:.1f} % | {100 * r['identified_at_threshold']:.1f} % "
        f"| {r['enroll_ms_per_photo']:.1f} | {r['lookup_ms_per_query']:.3f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--size", default=128, show_default=True, help="bench_resolution's model size.")
@data_option
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="DATA=TFLITE",
    help="Measure this .tflite on DATA instead of bench_resolution's model "
    "(e.g. a default-recipe run of compare_recipes).",
)
@click.option("--results-name", default="enroll_augment", show_default=True)
def main(size, datasets, models, results_name):
    """Rank-1, open-set EER, gallery size and latency against K augmented views."""
    datasets = available_data(datasets)
    given = _parse_models(models, datasets)
    prepare([(data, size) for data in datasets if data not in given])
    model_paths = {d: given.get(d, WORK / f"{d}_{size}_int8.tflite") for d in datasets}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for data, model_path in model_paths.items():
            known, unknown = split(data)
            representatives_folder(known, work / f"{data}_photos")
            model = EmbeddingModel(model_path, threads=1)
            probes = embed_all(model, {c: p[1:] for c, p in known.items()})
            unknown_probes = embed_all(model, unknown)
            for views in VIEWS:
                click.echo(f"{data}: K = {views}", err=True)
                rows.append(measure(model_path, data, views, probes, unknown_probes, work))
    described = {
        d: f"`{given[d]}`"
        if d in given
        else f"`bench_resolution`'s Lite0 int8 at {size} px "
        "(its short recipe: frozen backbone, no fine-tuning)"
        for d in datasets
    }
    write_results(results_name, rows, markdown(rows, described))


def _parse_models(models: tuple[str, ...], datasets: list[str]) -> dict[str, Path]:
    """``DATA=TFLITE`` options as {data set: existing model file}."""
    given = {}
    for option in models:
        data, _, path = option.partition("=")
        if data not in datasets or not Path(path).is_file():
            raise click.BadParameter(
                f"expected DATA=TFLITE with DATA in {', '.join(datasets)} and an existing file, "
                f"got {option!r}",
                param_hint="--model",
            )
        given[data] = Path(path)
    return given


if __name__ == "__main__":
    main()
