"""Size, fidelity, rank-1 and latency of every itemrec-convert variant of one run.

    python benchmarks/bench_convert.py [--run RUN] [--threads 2] [--jobs 2] [--skip-existing]

Without ``--run`` it first trains the reference run (EfficientNet-Lite0, ImageNet weights,
96 px, one frozen and one fine-tuning epoch on the bundled sample)::

    itemrec-train --data data/sample/train --out RUN --backbone efficientnet_lite0 \
        --image-size 96 --frozen-epochs 1 --finetune-epochs 1

then converts it to fp32, fp16, dynamic, int8, QAT-int8 and a 50 %-pruned int8, each
verified on the sample's unseen items (every image: first per item represents, the other
probes). The conversions run two at a time (``--jobs``; logs beside the models), so their
own latency figure (``--latency-runs 1``) means nothing: all models are timed afterwards,
alone and interleaved (round robin), for comparable ratios. Writes
``benchmarks/results/convert.json`` and ``convert.md`` (the table, then the figures against
issue #18's goals); ``--render`` rewrites ``convert.md`` from the last ``convert.json``.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import click
import numpy as np
from commands import REFERENCE_RUN, ROOT, SAMPLE_UNSEEN, run, run_batch, show, train_command

from itemrec.train.run_dir import RunDir

RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = {
    "float32": [],
    "float16": ["--fp16"],
    "dynamic": ["--dynamic"],
    "int8": ["--int8"],
    "qat": ["--qat"],
    "prune50": ["--int8", "--prune", "0.5"],
}
SLOWEST = ("qat", "prune50")  # started first, so the two lanes finish together
LATENCY_ROUNDS, LATENCY_RUNS = 20, 10
GOALS = {"int8_cosine_mean": 0.995, "int8_size_ratio": 0.27}  # issue #18


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
    default=REFERENCE_RUN,
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
@click.option("--render", is_flag=True, help="Only rewrite convert.md from the last convert.json.")
def main(
    run_dir: Path,
    out: Path,
    threads: int,
    jobs: int,
    qat_epochs: int,
    skip_existing: bool,
    render: bool,
):
    if render:
        results = json.loads((RESULTS / "convert.json").read_text())
        (RESULTS / "convert.md").write_text(markdown(results))
        return
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

    paths = {name: out / f"{name}.tflite" for name in reports if reports[name]["written"]}
    click.echo(f"timing {len(paths)} models interleaved ...", err=True)
    for name, latency in interleaved_latency(paths, threads).items():
        reports[name]["verification"]["latency_ms_median"] = latency
        reports[name]["verification"]["latency_runs"] = LATENCY_ROUNDS * LATENCY_RUNS
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = (
        f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    results = {
        "train_command": show(train),
        "commands": {name: show(command) for name, command in commands.items()},
        "machine": machine,
        "threads": threads,
        "goals": GOALS,
        "reports": reports,
    }
    (RESULTS / "convert.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "convert.md").write_text(markdown(results))
    click.echo(markdown(results))


def markdown(results: dict) -> str:
    """convert.md: the variants' table, the figures against the goals, the commands."""
    from itemrec.convert.report import markdown_table

    reports = results["reports"]
    threads = results.get("threads") or reports["int8"]["verification"]["threads"]
    lines = [
        "# itemrec-convert variants",
        "",
        f"Run: `{results['train_command']}`; verified on `data/sample/unseen` "
        f"(first image per item represents, the other probes). Cosine: the run's Keras "
        f"embedder vs the TFLite model, per image. Latency: LiteRT (XNNPACK), {threads} "
        f"threads, median of {LATENCY_ROUNDS} interleaved rounds of {LATENCY_RUNS} runs, "
        f"{results['machine']}, shared with other jobs.",
        "",
        markdown_table(list(reports.values())),
        *against_goals(reports),
        "Commands:",
        "",
        *[f"- `{command}`" for command in results["commands"].values()],
    ]
    return "\n".join(lines) + "\n"


def against_goals(reports: dict) -> list[str]:
    """int8 fidelity and size, and what pruning buys, each beside its goal (issue #18)."""
    fp32, int8, qat, pruned = (
        reports[name]["verification"] for name in ("float32", "int8", "qat", "prune50")
    )
    cosine, size = int8["cosine_mean"], int8["size_bytes"] / fp32["size_bytes"]
    gzip = pruned["size_gzip_bytes"] / int8["size_gzip_bytes"] - 1
    cosine_verdict = "met" if cosine >= GOALS["int8_cosine_mean"] else "missed"
    size_verdict = "met" if size <= GOALS["int8_size_ratio"] else "explained"

    return [
        "Against the goals:",
        "",
        "| figure | measured | goal | |",
        "|---|---|---|---|",
        f"| int8 cosine to the Keras embedder, mean | {cosine:.4f} (QAT {qat['cosine_mean']:.4f})"
        f" | >= {GOALS['int8_cosine_mean']} | {cosine_verdict} |",
        f"| int8 size / float32 size | {size:.3f}x | <= {GOALS['int8_size_ratio']}x, or "
        f"explained | {size_verdict}: int8 "
        f"weights, then per-channel scales and zero points (`int8_study.md`) |",
        f"| 50 % pruning with --int8: gzip size, rank-1 (TFLite), cosine | "
        f"{pruned['size_gzip_bytes'] / 1e6:.2f} vs {int8['size_gzip_bytes'] / 1e6:.2f} MB "
        f"({100 * gzip:+.0f} %), {100 * pruned['rank1_tflite']:.0f} vs "
        f"{100 * int8['rank1_tflite']:.0f} %, {pruned['cosine_mean']:.3f} | a measured win, "
        f"else labelled experimental | labelled experimental in `--help` |",
        "",
    ]


if __name__ == "__main__":
    main()
