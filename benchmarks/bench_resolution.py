"""Resolution against latency on the device: EfficientNet-Lite0 int8 at 96, 128, 160, 224 px.

For each input size and data set (the bundled sample; the dev benchmark of ``make devdata``):
train with the recipe below, convert to int8 (``itemrec-convert --int8``), evaluate the Keras
model on unseen items with ``itemrec-eval`` (rank-1, mAP, open-set EER), and
time a frame of the live loop on 1 interpreter thread (``bench_edge.measure``: camera at
30 fps, 640x480 frames, preprocessing + invoke + lookup in a 1,000-item gallery). Only the
int8 model is evaluated: it is what the device runs, and the converter's verification already
compares it with the Keras run (rank-1 of both, in each ``*_int8.report.json``).

Recipe, kept short for a shared 2-core CPU (the figures are for it, not for a full run):
ImageNet weights, backbone frozen with cached features, 30 epochs, SGD lr 0.01, center loss
lambda 0.003, batch 32, no fine-tuning (``RECIPE``).

    python benchmarks/bench_resolution.py [--size 96 --size 128 ...] [--data sample --data devdata]

Models, logs and evaluations are kept under ``build/bench_resolution`` and reused. The
sample's images are 96 px and the dev benchmark's 160 px: larger inputs are upsampled, so
they cost time without new detail. Writes ``benchmarks/results/resolution.json`` and
``resolution.md``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
import numpy as np
from bench_convert import interleaved_latency
from bench_edge import measure
from commands import (
    DEVDATA,
    ROOT,
    SAMPLE_TRAIN,
    SAMPLE_UNSEEN,
    run_batch,
    show,
    train_command,
    write_results,
)

from itemrec.train.run_dir import RunDir

WORK = ROOT / "build" / "bench_resolution"
SIZES = (96, 128, 160, 224)
RECIPE = [
    "--frozen-epochs", 30, "--finetune-epochs", 0, "--cache-features",
    "--frozen-lr", 0.01, "--center-lambda", 0.003, "--batch-size", 32,
]  # fmt: skip
# data set -> (training classes, unseen enrolled classes, unseen never-enrolled classes)
DATA = {
    "sample": (SAMPLE_TRAIN, SAMPLE_UNSEEN, None),
    "devdata": (DEVDATA / "train", DEVDATA / "enrolled", DEVDATA / "unknown"),
}

data_option = click.option(
    "--data",
    "datasets",
    multiple=True,
    type=click.Choice(list(DATA)),
    help="Data sets [default: both; the sample alone while build/devdata is missing].",
)


def commands(data: str, size: int) -> dict[str, dict[str, list]]:
    """The train, convert and evaluate commands of one data set and size, by step."""
    train, enrolled, unknown = DATA[data]
    name = f"{data}_{size}"
    run_dir, model, evaluation = WORK / name, WORK / f"{name}_int8.tflite", WORK / f"{name}_eval"
    open_set = ["--unknown", unknown] if unknown else []
    return {
        "train": {name: train_command(run_dir, "efficientnet_lite0", size, *RECIPE, data=train)},
        "convert": {
            f"{name}_int8": ["itemrec-convert", run_dir, "-o", model, "--int8"]
            + ["--verify-data", enrolled, "--latency-runs", 1]
        },
        "eval": {
            f"{name}_eval": ["itemrec-eval", model, "--data", enrolled, *open_set]
            + ["--out", evaluation, "--threads", 2]
        },
    }


def prepare(pairs: list[tuple[str, int]], jobs: int = 1) -> list[str]:
    """Train, convert and evaluate what is missing for each (data set, size); the commands."""
    WORK.mkdir(parents=True, exist_ok=True)
    plan = [commands(data, size) for data, size in pairs]
    shown = []
    for step in ("train", "convert", "eval"):
        batch = {name: c for p in plan for name, c in p[step].items()}
        shown += [show(c) for c in batch.values()]
        todo = {name: c for name, c in batch.items() if not _done(step, c)}
        if todo and any(run_batch(todo, WORK / "logs", jobs).values()):
            raise SystemExit(f"a {step} step failed: see {WORK / 'logs'}")
    return shown


def available_data(datasets) -> list[str]:
    """``datasets``, or every data set present (the dev benchmark only once built)."""
    have_devdata = (DEVDATA / "manifest.json").exists()
    if "devdata" in datasets and not have_devdata:
        raise click.UsageError(f"{DEVDATA} is missing: run `make devdata` first")
    if not datasets and not have_devdata:
        click.echo(f"{DEVDATA} is missing (`make devdata`): the sample only", err=True)
    return list(datasets) or (list(DATA) if have_devdata else ["sample"])


def _done(step: str, command: list) -> bool:
    if step == "train":
        return RunDir(command[command.index("--out") + 1]).embedder.exists()
    if step == "convert":
        return Path(command[command.index("-o") + 1]).exists()
    return (Path(command[command.index("--out") + 1]) / "cmc.json").exists()


def _row(data: str, size: int, timing: dict, invoke_ms: float) -> dict:
    name = f"{data}_{size}"
    models = json.loads((WORK / f"{name}_eval" / "cmc.json").read_text())["models"]
    int8 = models[f"{name}_int8.tflite"]
    verification = json.loads((WORK / f"{name}_int8.report.json").read_text())["verification"]
    return {
        "data": data,
        "size": size,
        "items": int8["n_classes"],
        "rank1_keras_verification": verification["rank1_keras"],
        "rank1_int8_verification": verification["rank1_tflite"],
        "rank1_int8": int8["seed_protocol"]["mean"][0],
        "rank5_int8": int8["seed_protocol"]["mean"][4],
        "mAP_int8": int8["mAP"],
        "open_set_eer_int8": int8["open_set"]["eer"],
        "eer_best_other_int8": int8["verification"]["eer"],
        "model_mb": (WORK / f"{name}_int8.tflite").stat().st_size / 1e6,
        "frame_ms_1_thread": timing["total_ms"] - timing["capture_ms"],
        "invoke_ms_1_thread": invoke_ms,
    }


def markdown(rows: list[dict], shown: list[str]) -> str:
    lines = [
        "# EfficientNet-Lite0 int8: input size against accuracy and latency",
        "",
        "Recipe: `" + " ".join(str(part) for part in RECIPE) + "` (ImageNet weights, frozen "
        "backbone, no fine-tuning): the figures are for this short recipe. Rank-1: one "
        "representative (the first image) per unseen item, one probe. Open-set EER: probes of "
        "items not in the gallery are the impostors (sample: half its items left out, 10 draws; "
        "dev benchmark: its 250 never-enrolled items). Verification rank-1: the converter's "
        "check on about 100 images of unseen items, Keras run vs int8. ms per frame: the live "
        "loop's preprocessing + invoke + lookup (1,000 items) on 1 interpreter thread; invoke "
        "ms: the fastest of 20 interleaved rounds of 10 runs (bench_convert's timer); x86-64, "
        "shared 2-core machine: compare within a column.",
        "",
        "| data | input px | items | rank-1 int8 | rank-5 int8 | mAP int8 "
        "| open-set EER int8 | EER best other item | verification rank-1 Keras / int8 "
        "| MB | ms/frame (1 thread) | invoke ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['data']} | {r['size']} | {r['items']} "
        f"| {100 * r['rank1_int8']:.1f} % | {100 * r['rank5_int8']:.1f} % | {r['mAP_int8']:.3f} "
        f"| {100 * r['open_set_eer_int8']:.1f} % | {100 * r['eer_best_other_int8']:.1f} % "
        f"| {100 * r['rank1_keras_verification']:.0f} / "
        f"{100 * r['rank1_int8_verification']:.0f} % "
        f"| {r['model_mb']:.2f} | {r['frame_ms_1_thread']:.2f} | {r['invoke_ms_1_thread']:.2f} |"
        for r in rows
    ]
    lines += ["", "Commands:", ""] + [f"- `{command}`" for command in shown]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--size", "sizes", multiple=True, type=int, default=SIZES, show_default=True)
@data_option
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--frames", default=200, show_default=True, help="Frames timed per model.")
def main(sizes, datasets, jobs, frames):
    """Train, convert, evaluate and time Lite0 int8 at each size."""
    datasets = available_data(datasets)
    pairs = [(data, size) for data in datasets for size in sizes]
    shown = prepare(pairs, jobs)
    models = {pair: WORK / f"{pair[0]}_{pair[1]}_int8.tflite" for pair in pairs}
    # Timed alone, after every other step; invoke round robin so load changes hit all alike.
    # The fastest round: on a shared machine the least disturbed by other jobs.
    invoke_ms = interleaved_latency(models, threads=1, statistic=np.min)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair, model in models.items():
            timing = measure(model, Path(tmp), frames, threads=1, roi=0.6, paced=True)
            rows.append(_row(*pair, timing, invoke_ms[pair]))
    write_results("resolution", rows, markdown(rows, shown))


if __name__ == "__main__":
    main()
