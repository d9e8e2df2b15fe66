"""Size, fidelity, rank-1 and latency of every itemrec-convert variant of one run.

    python benchmarks/bench_convert.py [--run RUN] [--threads 2]

Without ``--run`` it first trains the reference run (EfficientNet-Lite0, ImageNet weights,
96 px, one frozen and one fine-tuning epoch on the bundled sample)::

    itemrec-train --data data/sample/train --out RUN --backbone efficientnet_lite0 \
        --image-size 96 --frozen-epochs 1 --finetune-epochs 1

then converts it to fp32, fp16, dynamic, int8 and QAT-int8, each verified on the sample's
unseen items (every image: first per item represents, the other probes), and writes
``benchmarks/results/convert.json`` and ``convert.md``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TRAIN_DATA = ROOT / "data" / "sample" / "train"
UNSEEN = ROOT / "data" / "sample" / "unseen"
VARIANTS = {
    "float32": [],
    "float16": ["--fp16"],
    "dynamic": ["--dynamic"],
    "int8": ["--int8"],
    "qat": ["--qat"],
}


def _run(command: list[str]) -> int:
    click.echo("$ " + " ".join(command), err=True)
    return subprocess.run(command, cwd=ROOT).returncode


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
@click.option("--threads", default=2, show_default=True)
@click.option("--qat-epochs", default=2, show_default=True)
def main(run_dir: Path, out: Path, threads: int, qat_epochs: int):
    train = [
        "itemrec-train",
        "--data",
        str(TRAIN_DATA),
        "--out",
        str(run_dir),
        "--backbone",
        "efficientnet_lite0",
        "--image-size",
        "96",
        "--frozen-epochs",
        "1",
        "--finetune-epochs",
        "1",
    ]
    if not (run_dir / "embedder.keras").exists() and _run(train) != 0:
        sys.exit("training the reference run failed")
    out.mkdir(parents=True, exist_ok=True)
    commands, reports = {}, {}
    for name, flags in VARIANTS.items():
        command = [
            "itemrec-convert",
            str(run_dir),
            "-o",
            str(out / f"{name}.tflite"),
            *flags,
            "--verify-data",
            str(UNSEEN),
            "--verify-images",
            "1000",
            "--threads",
            str(threads),
            "--qat-epochs",
            str(qat_epochs),
        ]
        commands[name] = " ".join(command)
        if _run(command) not in (0, 1):  # 1: written report, verification failed
            sys.exit(f"{name}: itemrec-convert failed")
        reports[name] = json.loads((out / f"{name}.report.json").read_text())

    from convert.report import markdown_table

    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = (
        f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    (RESULTS / "convert.json").write_text(
        json.dumps(
            {
                "train_command": " ".join(train),
                "commands": commands,
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
        f"Run: `{' '.join(train)}`; verified on `data/sample/unseen` "
        f"(first image per item represents, the other probes); latency: LiteRT, median of "
        f"50 runs, {threads} threads, {machine}. Cosine: Keras float embedder vs TFLite.",
        "",
        markdown_table(list(reports.values())),
        "Commands:",
        "",
        *[f"- `{c}`" for c in commands.values()],
    ]
    (RESULTS / "convert.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
