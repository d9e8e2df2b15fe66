"""Training throughput: is the input pipeline or the model the bottleneck, and what does
``--cache-features`` save in the frozen phase?

    python benchmarks/bench_train.py [--data data/sample/train] [--image-size 96]

Measured as ratios within one run:
- the tf.data pipeline alone (decode + cache on the first pass, augmentation after), images/s;
- the training step alone on one in-memory batch (frozen and fine-tuning), images/s;
- the fine-tuning step with mixed precision (float16) against float32 (on a CPU: slower);
- the frozen phase through ``train_run``: seconds per epoch with and without cached features;
- fine-tuning epochs of two ``itemrec-train`` worker processes on loopback against one
  process, same global batch (on one small machine the two share its cores: this checks
  the overhead of the multi-worker path, not how training scales across machines);
- on a GPU only: the fine-tuning step with mixed precision against float32.
Results: ``benchmarks/results/train.json`` and ``train.md``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import click
from commands import run, run_batch, train_command

from itemrec.train.augment import Augmentation
from itemrec.train.config import TrainConfig
from itemrec.train.data import readable_class_folders, training_dataset
from itemrec.train.distribute import loopback_workers, precision_policy, tf_config
from itemrec.train.keras_api import tf
from itemrec.train.losses import make_objective
from itemrec.train.model import build_model, set_backbone_trainable
from itemrec.train.run import train_run
from itemrec.train.run_dir import RunDir
from itemrec.train.trainer import EmbeddingTrainer

RESULTS = Path(__file__).resolve().parent / "results"


def pipeline_rate(data, size: int, batch: int) -> dict:
    dataset = training_dataset(data, size, batch, Augmentation())
    n = sum(len(f) for f in data.files)
    rates = []
    for _ in range(2):  # pass 1 decodes and fills the cache, pass 2 reads it and augments
        start = time.perf_counter()
        for _ in dataset:
            pass
        rates.append(n / (time.perf_counter() - start))
    return {"first_pass_images_per_s": rates[0], "cached_images_per_s": rates[1]}


def step_rate(
    backbone: str,
    size: int,
    classes: int,
    batch: int,
    train_backbone: bool,
    steps: int = 10,
    mixed: bool = False,
) -> float:
    with precision_policy(mixed):
        network = build_model(backbone, size, classes, weights="none")
        set_backbone_trainable(network, train_backbone)
        trainer = EmbeddingTrainer(network, make_objective("center", classes, 128))
        trainer.compile(optimizer=tf.keras.optimizers.SGD(1e-3, momentum=0.9))
        images = tf.random.uniform((batch, size, size, 3), 0, 255)
        labels = tf.random.uniform((batch,), 0, classes, tf.int32)
        trainer.train_on_batch(images, labels)  # trace and compile
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_on_batch(images, labels)
        return steps * batch / (time.perf_counter() - start)


def frozen_epoch_seconds(data_dir: str, backbone: str, size: int, batch: int, cache: bool) -> float:
    """Seconds of the last of three frozen epochs (the first ones include decoding/caching)."""
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            data=data_dir,
            out=out,
            backbone=backbone,
            weights="none",
            image_size=size,
            frozen_epochs=3,
            finetune_epochs=0,
            batch_size=batch,
            val_classes=0,
            cache_features=cache,
            augment=not cache,
            progress=0,
        )
        train_run(config)
        history = RunDir(out).read_history()
    return history[-1]["time"] - history[-2]["time"]


def epochs_images_per_s(run_dir: Path, images_per_epoch: int) -> float:
    """Images per second over a run's epochs after the first (which traces the step and
    decodes the images into the cache)."""
    times = [entry["time"] for entry in RunDir(run_dir).read_history()]
    return images_per_epoch * (len(times) - 1) / (times[-1] - times[0])


def worker_scaling(data: str, images: int, backbone: str, size: int, batch: int) -> dict:
    """Fine-tuning images/s of one process and of two worker processes on loopback."""
    options = ("--weights", "none", "--frozen-epochs", 0, "--finetune-epochs", 3)
    options += ("--batch-size", batch, "--val-classes", 0, "--scatter-classes", 0)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if run(train_command(work / "one", backbone, size, *options, data=data)) != 0:
            raise click.ClickException("the single-process run failed")
        workers = loopback_workers(2)
        command = train_command(work / "two", backbone, size, *options, data=data)
        names = [f"worker{index}" for index in range(len(workers))]
        codes = run_batch(
            {name: command for name in names},
            work / "logs",
            jobs=len(workers),
            env={name: {"TF_CONFIG": tf_config(workers, i)} for i, name in enumerate(names)},
        )
        if any(codes.values()):
            raise click.ClickException(f"the two-worker run failed: {codes}")
        one = epochs_images_per_s(work / "one", images)
        two = epochs_images_per_s(work / "two", images // batch * batch)  # full batches only
    return {"one_process_images_per_s": one, "two_workers_images_per_s": two, "ratio": two / one}


@click.command()
@click.option("--data", default="data/sample/train", show_default=True)
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--image-size", default=96, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
def main(data, backbone, image_size, batch_size):
    folders = readable_class_folders(data)
    classes = len(folders.classes)
    results = {
        "backbone": backbone,
        "image_size": image_size,
        "batch_size": batch_size,
        "images": sum(len(f) for f in folders.files),
        "cpu_count": os.cpu_count(),
    }
    click.echo("input pipeline ...", err=True)
    results["pipeline"] = pipeline_rate(folders, image_size, batch_size)
    click.echo("training steps ...", err=True)
    results["step_frozen_images_per_s"] = step_rate(
        backbone, image_size, classes, batch_size, False
    )
    results["step_finetune_images_per_s"] = step_rate(
        backbone, image_size, classes, batch_size, True
    )
    results["step_finetune_mixed_images_per_s"] = step_rate(
        backbone, image_size, classes, batch_size, True, mixed=True
    )
    click.echo("frozen phase with and without --cache-features ...", err=True)
    plain = frozen_epoch_seconds(data, backbone, image_size, batch_size, cache=False)
    cached = frozen_epoch_seconds(data, backbone, image_size, batch_size, cache=True)
    results["frozen_epoch_s"] = {
        "images": plain,
        "cached_features": cached,
        "speedup": plain / cached,
    }
    click.echo("fine-tuning: two worker processes on loopback against one process ...", err=True)
    results["workers"] = worker_scaling(data, results["images"], backbone, image_size, batch_size)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        fp32 = step_rate(backbone, 224, classes, 64, True, steps=20)
        fp16 = step_rate(backbone, 224, classes, 64, True, steps=20, mixed=True)
        results["gpu"] = {
            "devices": len(gpus),
            "finetune_224_fp32_images_per_s": fp32,
            "finetune_224_mixed_images_per_s": fp16,
            "speedup": fp16 / fp32,
        }
    else:
        results["gpu"] = None

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "train.md").write_text(_table(results))
    click.echo(_table(results))


def _table(r: dict) -> str:
    p, f, w = r["pipeline"], r["frozen_epoch_s"], r["workers"]
    lines = [
        f"{r['backbone']} at {r['image_size']} px, batch {r['batch_size']}, {r['images']} images,"
        f" {r['cpu_count']} CPUs",
        "",
        "| measure | value |",
        "|---|---|",
        f"| input pipeline, first pass (decode + cache) | "
        f"{p['first_pass_images_per_s']:.0f} images/s |",
        f"| input pipeline, cached + augmentation | {p['cached_images_per_s']:.0f} images/s |",
        f"| training step, backbone frozen | {r['step_frozen_images_per_s']:.0f} images/s |",
        f"| training step, fine-tuning | {r['step_finetune_images_per_s']:.0f} images/s |",
        f"| training step, fine-tuning, `--mixed-precision` (float16 on this device) | "
        f"{r['step_finetune_mixed_images_per_s']:.0f} images/s |",
        f"| pipeline / frozen step (> 1: the model is the bottleneck) | "
        f"{p['cached_images_per_s'] / r['step_frozen_images_per_s']:.1f} |",
        f"| frozen epoch, images | {f['images']:.2f} s |",
        f"| frozen epoch, `--cache-features` | {f['cached_features']:.2f} s |",
        f"| `--cache-features` speed-up | {f['speedup']:.1f}x |",
        f"| fine-tuning epochs, 2 worker processes on loopback / 1 process (same global batch;"
        f" the workers share this machine's CPUs, so not a scaling figure) | "
        f"{w['ratio']:.2f} ({w['two_workers_images_per_s']:.0f} vs "
        f"{w['one_process_images_per_s']:.0f} images/s) |",
    ]
    if r["gpu"]:
        g = r["gpu"]
        lines.append(
            f"| GPU fine-tuning at 224 px, mixed precision vs fp32 | {g['speedup']:.2f}x "
            f"({g['finetune_224_mixed_images_per_s']:.0f} vs "
            f"{g['finetune_224_fp32_images_per_s']:.0f} images/s) |"
        )
    else:
        lines.append("| GPU section | skipped: no GPU on this machine |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
