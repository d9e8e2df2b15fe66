"""``itemrec-convert``: export a training run's embedder to a verified ``.tflite``.

    itemrec-convert RUN_DIR -o model.tflite [--fp16 | --dynamic | --int8 | --qat] [--prune 0.5]

Writes ``model.tflite`` (spec embedded as metadata ``itemrec_spec``), ``model.spec.json``
(with the fingerprint) and ``model.report.json``, and prints the verification table.
"""

from __future__ import annotations

from pathlib import Path

import click

from itemrec.convert.pipeline import ConvertOptions, report_path
from itemrec.convert.report import markdown_table, write_report
from itemrec.edge_runtime.cli_common import ItemrecCommand
from itemrec.edge_runtime.errors import InputError, ModelError
from itemrec.train import quiet_tensorflow, verbose_option


@click.command(
    "itemrec-convert", cls=ItemrecCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The .tflite file to write.",
)
@click.option("--fp16", "variant", flag_value="float16", help="Float16 weights.")
@click.option("--dynamic", "variant", flag_value="dynamic", help="Dynamic-range int8 weights.")
@click.option(
    "--int8",
    "variant",
    flag_value="int8",
    help="Full-integer post-training quantisation, uint8 input.",
)
@click.option(
    "--qat",
    "variant",
    flag_value="qat",
    help="Quantisation-aware fine-tuning (distillation), then full-integer export.",
)
@click.option(
    "--representative-data",
    type=click.Path(path_type=Path),
    help="Class folders to calibrate/fine-tune on [default: the run's training classes].",
)
@click.option(
    "--calibration-images",
    default=200,
    show_default=True,
    help="Training images that calibrate int8 activation ranges (50 to 540 gave the same "
    "fidelity on bench_convert's run: benchmarks/results/int8_study.md).",
)
@click.option(
    "--rounding",
    type=click.Choice(["adaptive", "nearest"]),
    default="adaptive",
    show_default=True,
    help="int8: round each weight up or down so that errors on correlated inputs cancel, or "
    "to the nearest step as TFLite does (cosine 0.994 -> 0.996 on bench_convert's run: "
    "benchmarks/results/int8_study.md).",
)
@click.option(
    "--bias-correction/--no-bias-correction",
    default=True,
    show_default=True,
    help="int8: cancel the mean error of the rounded weights in each bias (cosine 0.980 -> "
    "0.994 on bench_convert's run: benchmarks/results/int8_study.md).",
)
@click.option(
    "--finetune-images",
    default=500,
    show_default=True,
    help="Training images for the QAT/pruning distillation.",
)
@click.option(
    "--verify-data",
    type=click.Path(path_type=Path),
    help="Held-out class folders [default: the run's validation classes].",
)
@click.option("--verify-images", default=100, show_default=True)
@click.option("--qat-epochs", default=2, show_default=True)
@click.option(
    "--prune",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Experimental. Target weight sparsity of the convolutions and dense layers, e.g. 0.5, "
    "reached in a distillation fine-tune. TFLite stores the zeros, so the file keeps its size; "
    "what shrinks is the compressed update: with --int8, gzip 2.95 MB instead of 4.00 (-26 %). "
    "Accuracy is not settled: rank-1 moved +11 and -5 points against plain --int8 in two "
    "bench_convert runs, and the embedding moves (cosine 0.72-0.82 to the run's): rebuild the "
    "gallery and check rank-1 before shipping.",
)
@click.option("--prune-epochs", default=2, show_default=True)
@click.option(
    "--learning-rate",
    type=float,
    help="Adam learning rate of the QAT/pruning distillation "
    "[default: 1e-5 for QAT, 3e-4 when pruning].",
)
@click.option(
    "--min-cosine", type=float, help="Minimum mean Keras-vs-TFLite cosine [default: per variant]."
)
@click.option("--force", is_flag=True, help="Write the model even if verification fails.")
@click.option("--threads", type=int, help="Interpreter threads [default: all cores].")
@click.option("--latency-runs", default=50, show_default=True)
@click.option("--seed", default=0, show_default=True)
@verbose_option
def main(run_dir, output, variant, verbose, **options):
    """Export RUN_DIR's embedding model (heads stripped) to a verified TFLite file."""
    quiet_tensorflow(verbose)
    from itemrec.convert.pipeline import convert_run

    options = ConvertOptions(variant=variant or "float32", **options)
    report = convert_run(run_dir, output, options)
    try:
        write_report(report, report_path(output))
    except OSError as err:
        raise InputError(f"{report_path(output)}: cannot write the report ({err})") from None
    click.echo(markdown_table([report]))
    if report["failures"]:
        click.echo("verification failed: " + "; ".join(report["failures"]), err=True)
    if not report["written"]:
        why = "; ".join(report["degenerate"]) or "verification failed"
        raise ModelError(f"{output} NOT written: {why} (--force writes it anyway)")
    click.echo(f"wrote {output} (sha256 {report['verification']['fingerprint']})")


if __name__ == "__main__":
    main()
