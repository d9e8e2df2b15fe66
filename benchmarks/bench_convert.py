"""Size, fidelity, rank-1 and latency of every itemrec-convert variant of one run.

    python benchmarks/bench_convert.py [--run RUN] [--threads 2] [--jobs 2] [--skip-existing]

Without ``--run`` it first trains the reference run (EfficientNet-Lite0, ImageNet weights,
96 px, one frozen and one fine-tuning epoch on the bundled sample)::

    itemrec-train --data data/sample/train --out RUN --backbone efficientnet_lite0 \
        --image-size 96 --frozen-epochs 1 --finetune-epochs 1

then converts it to fp32, fp16, dynamic, int8, QAT-int8 and a 50 %-pruned fp32, each
verified on the sample's unseen items (every image: first per item represents, the other
probes). The conversions run two at a time (``--jobs``; logs beside the models), so their
own latency figure (``--latency-runs 1``) means nothing: all models are timed afterwards,
alone and interleaved (round robin), for comparable ratios. Writes
``benchmarks/results/convert.json`` and ``convert.md``.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import click
import numpy as np
from commands import ROOT, SAMPLE_UNSEEN, run, run_batch, show, train_command

from itemrec.train.run_dir import RunDir

RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = {
    "float32": [],
    "float16": ["--fp16"],
    "dynamic": ["--dynamic"],
    "int8": ["--int8"],
    "qat": ["--qat"],
    "prune50": ["--prune", "0.5"],
}
SLOWEST = ("qat", "prune50")  # started first, so the two lanes finish together
LATENCY_ROUNDS, LATENCY_RUNS = 20, 10


def interleaved_latency(paths: dict, threads: int, statistic=np.median) -> dict:
    """Median ms per image of each model, timed round robin so load changes hit all alike.

    ``statistic`` summarises each model's rounds (their median by default; the minimum is the
    least disturbed by other jobs on a busy machine).
    """
    from itemrec.convert.verify import median_latency_ms
    from itemrec.edge_runtime.interpreter import EmbeddingModel

    models = {name: EmbeddingModel(path, threads=threads) for name, path in paths.items()}
    image = np.full((*next(iter(models.values())).input_size, 3), 128, np.uint8)
    samples = {name: [] for name in models}
    for _ in range(LATENCY_ROUNDS):
        for name, model in models.items():
            samples[name].append(median_latency_ms(model, image, LATENCY_RUNS, warmup=1))
    return {name: float(statistic(values)) for name, values in samples.items()}


@click.command()
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    default=ROOT / "build" / "bench_convert" / "run",
    show_default=True,
    help="Run directory (trained first if it does not exist).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=ROOT / "build" / "bench_convert" / "models",
    show_default=True,
)
@click.option("--threads", default=2, show_default=True, help="Interpreter threads when timing.")
@click.option(
    "--jobs", default=2, show_default=True, type=click.IntRange(min=1), help="Conversions at once."
)
@click.option("--qat-epochs", default=2, show_default=True)
@click.option("--skip-existing", is_flag=True, help="Reuse models whose report already exists.")
def main(run_dir: Path, out: Path, threads: int, jobs: int, qat_epochs: int, skip_existing: bool):
    train = train_command(
        run_dir, "efficientnet_lite0", 96, "--frozen-epochs", 1, "--finetune-epochs", 1
    )
    if not RunDir(run_dir).embedder.exists() and run(train) != 0:
        sys.exit("training the reference run failed")
    out.mkdir(parents=True, exist_ok=True)
    commands = {
        name: [
            "itemrec-convert",
            run_dir,
            "-o",
            out / f"{name}.tflite",
            *flags,
            "--verify-data",
            SAMPLE_UNSEEN,
            "--verify-images",
            "1000",
            "--threads",
            str(threads),
            "--qat-epochs",
            str(qat_epochs),
            "--latency-runs",
            "1",
        ]
        for name, flags in VARIANTS.items()
    }
    pending = {
        name: commands[name]
        for name in sorted(commands, key=lambda name: name not in SLOWEST)
        if not (skip_existing and (out / f"{name}.report.json").exists())
    }
    codes = run_batch(pending, out / "logs", jobs)
    failed = [name for name, code in codes.items() if code not in (0, 1)]  # 1: verify failed
    if failed:
        sys.exit(f"itemrec-convert failed for {', '.join(failed)}")
    reports = {name: json.loads((out / f"{name}.report.json").read_text()) for name in VARIANTS}

    from itemrec.convert.report import markdown_table

    paths = {name: out / f"{name}.tflite" for name in reports if reports[name]["written"]}
    click.echo(f"timing {len(paths)} models interleaved ...", err=True)
    for name, latency in interleaved_latency(paths, threads).items():
        reports[name]["verification"]["latency_ms_median"] = latency
        reports[name]["verification"]["latency_runs"] = LATENCY_ROUNDS * LATENCY_RUNS
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = (
        f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    (RESULTS / "convert.json").write_text(
        json.dumps(
            {
                "train_command": show(train),
                "commands": {name: show(command) for name, command in commands.items()},
                "machine": machine,
                "reports": reports,
            },
            indent=1,
        )
        + "\n"
    )
    lines = [
        "# itemrec-convert variants",
        "",
        f"Run: `{show(train)}`; verified on `data/sample/unseen` "
        f"(first image per item represents, the other probes). Cosine: the run's Keras "
        f"embedder vs the TFLite model, per image. Latency: LiteRT (XNNPACK), {threads} "
        f"threads, median of {LATENCY_ROUNDS} interleaved rounds of {LATENCY_RUNS} runs, "
        f"{machine}, shared with other jobs.",
        "",
        markdown_table(list(reports.values())),
        "Commands:",
        "",
        *[f"- `{show(command)}`" for command in commands.values()],
    ]
    (RESULTS / "convert.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
