"""What makes post-training int8 faithful: adaptive rounding, bias correction, calibration
count, image choice, per-channel weights, and which layers carry the error (TFLite's
quantisation debugger; the worst kept in float).

On ``bench_convert``'s reference run (EfficientNet-Lite0, 96 px, 1+1 epochs; ``make bench``
or ``bench_convert.py`` trains it), each setting is converted to a full-integer ``.tflite``
and compared with the run's Keras embedder on the sample's unseen items (the verification set
of ``bench_convert``): mean and minimum cosine, rank-1 and size. Not part of ``make bench``
(about 15 minutes); its result chose ``itemrec-convert --int8``'s defaults.

    python benchmarks/int8_study.py [--run RUN] [--verify-data DIR] [--results-name NAME]

Writes ``benchmarks/results/int8_study.json`` and ``int8_study.md`` (or NAME.json, NAME.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from commands import REFERENCE_RUN, ROOT, SAMPLE_UNSEEN

RESULTS = ROOT / "benchmarks" / "results"

DEFAULT = (True, True, True)  # TFLite's: per-channel conv and dense, the MLIR quantizer
#: How the weights are prepared (``convert.int8_weights``): name, rounding, bias correction.
PREPARATIONS = [
    ("adaptive rounding, bias correction", "adaptive", True),  # itemrec-convert's default
    ("bias correction", "nearest", True),
    ("random images", "nearest", False),  # TFLite alone
]
# (name, calibration images, how they are drawn, per-channel conv, per-channel dense,
#  the MLIR quantizer (False: the older one), weight rounding, bias correction)
SETTINGS = [
    *[
        (name, count, "random", *DEFAULT, rounding, corrected)
        for name, rounding, corrected in PREPARATIONS
        for count in (200, 50, 500)
    ],
    ("adaptive rounding", 200, "random", *DEFAULT, "adaptive", False),
    ("all 540 training images", 1000, "random", *DEFAULT, "nearest", False),
    ("1 per class (270)", 270, "per_class", *DEFAULT, "nearest", False),
    ("per-tensor dense", 200, "random", True, False, True, "nearest", False),
    ("per-tensor everywhere", 200, "random", False, False, True, "nearest", False),
    ("the older quantizer", 200, "random", True, True, False, "nearest", False),
]
#: How many of the worst layers (by the quantisation debugger) are kept in float.
FLOAT_LAYER_COUNTS = (1, 2, 4)


def calibration_images(run, count: int, choice: str) -> np.ndarray:
    from itemrec.convert.samples import sample_classes, sample_images

    root, classes = run.data_dir, run.classes("train")
    if choice == "random":
        return sample_images(root, run.input_size, count, 0, classes).images
    # The first image of each class: every item seen once, none twice.
    sample = sample_classes(root, run.input_size, 10**9, 0, classes)
    _, first = np.unique(sample.labels, return_index=True)
    return sample.images[np.sort(first)][:count]


def convert(model, images, per_channel: bool, dense_per_channel: bool, mlir: bool) -> bytes:
    from itemrec.train.keras_api import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _feed(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    converter.experimental_new_quantizer = mlir
    converter._experimental_disable_per_channel = not per_channel
    converter._experimental_disable_per_channel_quantization_for_dense_layers = (
        not dense_per_channel
    )
    return bytes(converter.convert())


def layer_errors(model, calibration, debug_images) -> list[dict]:
    """Each quantised op's output error against the float op on the same input (TFLite's
    quantisation debugger), as a multiple of the error rounding alone would give
    (``step^2 / 12``), worst first."""
    import csv
    import io

    from itemrec.train.keras_api import tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=_float_io_converter(model, calibration), debug_dataset=_feed(debug_images)
    )
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        step = float(row["scale"])
        rows.append(
            {
                "op": row["op_name"],
                "tensor": row["tensor_name"],
                "layer": _layer_name(row["tensor_name"]),
                "rmse": float(row["mean_squared_error"]) ** 0.5,
                "step": step,
                "error_over_rounding": float(row["mean_squared_error"]) / (step**2 / 12),
            }
        )
    return sorted(rows, key=lambda r: -r["error_over_rounding"])


def _layer_name(tensor: str) -> str:
    """``embedder/block0_dw_relu/Relu6;...`` -> ``block0_dw_relu``."""
    parts = tensor.split(";")[0].split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def convert_keeping_float(model, calibration, tensors: list[str]) -> bytes:
    """Post-training int8 with the ops producing ``tensors`` left in float (float in/out)."""
    from itemrec.train.keras_api import tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=_float_io_converter(model, calibration),
        debug_dataset=_feed(calibration[:1]),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=tensors),
    )
    return bytes(debugger.get_nondebug_quantized_model())


def _float_io_converter(model, calibration):
    from itemrec.train.keras_api import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _feed(calibration)
    return converter


def _feed(images):
    return lambda: ([np.asarray(image, np.float32)[np.newaxis]] for image in images)


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def size_breakdown(content: bytes) -> dict:
    """Where an int8 file's bytes go: int8 weights, int32 biases, per-channel quantisation
    parameters (float32 scale + int64 zero point each), metadata, the rest (graph, names)."""
    from tensorflow.lite.python import schema_py_generated as schema  # a study, not the product

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    metadata = {m.buffer for m in model.metadata or []}
    parts = {"int8 weights": 0, "int32 biases": 0, "quantisation parameters": 0, "metadata": 0}
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            data = model.buffers[tensor.buffer].data
            size = 0 if data is None else len(data)
            if tensor.type == schema.TensorType.INT8:
                parts["int8 weights"] += size
            elif tensor.type == schema.TensorType.INT32:
                parts["int32 biases"] += size
            q = tensor.quantization
            if q is not None and q.scale is not None:
                parts["quantisation parameters"] += 4 * len(q.scale) + 8 * len(q.zeroPoint)
    parts["metadata"] = sum(
        0 if model.buffers[i].data is None else len(model.buffers[i].data) for i in metadata
    )
    parts["rest (graph, names, padding)"] = len(content) - sum(parts.values())
    return parts


@click.command()
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    default=REFERENCE_RUN,
    show_default=True,
)
@click.option(
    "--verify-data",
    type=click.Path(path_type=Path),
    default=SAMPLE_UNSEEN,
    show_default=True,
    help="Class folders of unseen items the int8 model is compared on.",
)
@click.option("--verify-images", default=1000, show_default=True)
@click.option("--results-name", default="int8_study", show_default=True)
def main(run_dir: Path, verify_data: Path, verify_images: int, results_name: str):
    """Convert the reference run with each calibration setting and measure fidelity."""
    from itemrec.convert.distill import embed
    from itemrec.convert.int8_weights import prepared_copy
    from itemrec.convert.samples import sample_classes
    from itemrec.convert.verify import cosines, median_latency_ms, rank1, tflite_embeddings
    from itemrec.edge_runtime.interpreter import EmbeddingModel
    from itemrec.train.run_dir import load_run

    run = load_run(run_dir)
    verification = sample_classes(verify_data, run.input_size, verify_images, 1)
    reference = embed(run.embedder, verification.images)
    work = ROOT / "build" / "int8_study"
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    def measure(name: str, content: bytes, **setting):
        path = work / f"{len(rows)}.tflite"
        path.write_bytes(content)
        model = EmbeddingModel(path, threads=1)
        embedded = tflite_embeddings(model, verification.images)
        similarity = cosines(reference, embedded)
        rows.append(
            {
                "setting": name,
                **setting,
                "cosine_mean": float(similarity.mean()),
                "cosine_min": float(similarity.min()),
                "rank1_keras": rank1(reference, verification.labels),
                "rank1_tflite": rank1(embedded, verification.labels),
                "size_bytes": len(content),
                "invoke_ms_1_thread": median_latency_ms(model, verification.images[0], 200),
            }
        )
        click.echo(json.dumps(rows[-1]), err=True)

    for name, count, choice, per_channel, dense_per_channel, mlir, rounding, corrected in SETTINGS:
        images = calibration_images(run, count, choice)
        model, preparation = run.embedder, {}
        if rounding == "adaptive" or corrected:
            model, preparation = prepared_copy(run.embedder, images, rounding, corrected)
        content = convert(model, images, per_channel, dense_per_channel, mlir)
        measure(
            name,
            content,
            calibration_images=int(len(images)),
            per_channel_conv=per_channel,
            per_channel_dense=dense_per_channel,
            mlir_quantizer=mlir,
            rounding=rounding,
            bias_correction=corrected,
            weight_error_variance=preparation.get("error_variance"),
        )
    default_images = calibration_images(run, 200, "random")
    errors = layer_errors(run.embedder, default_images, verification.images[:64])
    for count in FLOAT_LAYER_COUNTS:
        kept = [e["tensor"] for e in errors[:count]]
        layers = ", ".join(e["layer"] for e in errors[:count])
        content = convert_keeping_float(run.embedder, default_images, kept)
        measure(
            f"worst {count} in float ({layers}), float in/out, no bias correction",
            content,
            calibration_images=200,
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{results_name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        f"int8 post-training quantisation of `{_shown(run_dir)}`, verified on "
        f"{len(verification.images)} images of `{_shown(verify_data)}`.",
        "",
        "| setting | images | cos mean | cos min | rank-1 Keras | rank-1 int8 | size MB "
        "| invoke ms (1 thread) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['setting']} | {r['calibration_images']} | {r['cosine_mean']:.4f} | "
        f"{r['cosine_min']:.4f} | {100 * r['rank1_keras']:.1f} % | "
        f"{100 * r['rank1_tflite']:.1f} % | {r['size_bytes'] / 1e6:.2f} | "
        f"{r['invoke_ms_1_thread']:.2f} |"
        for r in rows
    ]
    lines += [
        "",
        "Where the error comes from: each op's output error against the float op on the same "
        "input, over the error int8 rounding of its output alone would give (`step^2 / 12`), "
        f"on {min(64, len(verification.images))} verification images, worst first:",
        "",
        "| op | layer | RMS error | output step | error / rounding |",
        "|---|---|---:|---:|---:|",
        *[
            f"| {e['op']} | {e['layer']} | {e['rmse']:.4f} | {e['step']:.4f} | "
            f"{e['error_over_rounding']:.1f} |"
            for e in errors[:8]
        ],
    ]
    first = (work / "0.tflite").read_bytes()
    fp32 = ROOT / "build" / "bench_convert" / "models" / "float32.tflite"
    parts = size_breakdown(first)
    lines += [
        "",
        f"Where the bytes of the int8 file go ({len(first) / 1e6:.2f} MB"
        + (f", {len(first) / fp32.stat().st_size:.3f}x the fp32 file" if fp32.exists() else "")
        + "):",
        "",
        "| part | MB | share |",
        "|---|---:|---:|",
        *[f"| {k} | {v / 1e6:.3f} | {100 * v / len(first):.1f} % |" for k, v in parts.items()],
    ]
    rows.append({"size_breakdown": parts, "layer_errors": errors})
    (RESULTS / f"{results_name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / f"{results_name}.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
