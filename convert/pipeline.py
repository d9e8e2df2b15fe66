"""``itemrec-convert``'s work: run directory -> verified ``.tflite`` + spec sidecar + report.

Steps: load the run's embedder; draw the representative (training) images when the variant
needs them (int8 calibration, QAT or pruning fine-tune) and the held-out verification
images; fine-tune (prune, QAT); round int8 weights and correct biases (``convert.int8_weights``);
convert;
embed the spec; write to a temporary file beside the output; verify it with the device's
interpreter; move it into place only if it passes (or ``force``). The report is written
either way.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import click

from itemrec.convert.samples import ImageSample, sample_classes, sample_images
from itemrec.convert.verify import DEFAULT_MIN_COSINE
from itemrec.edge_runtime.errors import InputError
from itemrec.edge_runtime.files import new_file_mode
from itemrec.edge_runtime.spec import ModelSpec, sidecar_path
from itemrec.train.run_dir import Run, load_run

VARIANTS = ("float32", "float16", "dynamic", "int8", "qat")
# Distillation learning rates: QAT only nudges the float weights, pruning must recover from
# zeroing half of them. Measured on bench_convert's run (Lite0, 96 px; 50 % sparsity in 2
# epochs of 500 images): cosine to the trained model 0.69 at 1e-5, 0.82 at 3e-4, 0.75 at 1e-3.
QAT_LEARNING_RATE = 1e-5
PRUNE_LEARNING_RATE = 3e-4
# A model is degenerate below this total variance of its L2-normalised embeddings over the
# verification images (``verify.embedding_variance``; 0 = every image at one point). Measured
# on sample images: 0.0 for a run whose features collapsed to a constant, 0.29 for the tests'
# 1-epoch 16-d run, 0.60 for frozen ImageNet Lite0 features at 96 px: 0.01 is far from both.
MIN_EMBEDDING_VARIANCE = 0.01


@dataclasses.dataclass
class ConvertOptions:
    variant: str = "float32"
    representative_data: Path | None = None
    calibration_images: int = 200
    rounding: str = "adaptive"
    bias_correction: bool = True
    finetune_images: int = 500
    verify_data: Path | None = None
    verify_images: int = 100
    qat_epochs: int = 2
    prune: float | None = None
    prune_epochs: int = 2
    learning_rate: float | None = None
    batch_size: int = 16
    min_cosine: float | None = None
    force: bool = False
    threads: int | None = None
    latency_runs: int = 50
    seed: int = 0

    @property
    def quantization(self) -> str:
        return "int8" if self.variant == "qat" else self.variant

    @property
    def required_cosine(self) -> float:
        return self.min_cosine if self.min_cosine is not None else DEFAULT_MIN_COSINE[self.variant]

    @property
    def finetune_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return PRUNE_LEARNING_RATE if self.prune else QAT_LEARNING_RATE

    @property
    def needs_training_images(self) -> bool:
        return self.variant in ("int8", "qat") or bool(self.prune)


def report_path(output: Path) -> Path:
    """``model.tflite`` -> ``model.report.json``."""
    return output.with_name(output.stem + ".report.json")


@contextmanager
def _progress(length: int, label: str):
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def _temp_output(output: Path) -> Path:
    """Reserve a temporary file beside ``output`` (proves the folder is writable)."""
    if output.is_dir():
        raise InputError(f"{output}: is a directory, expected a .tflite file path")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    except OSError as err:
        raise InputError(f"{output}: cannot write there ({err.strerror})") from None
    os.close(handle)
    return Path(name)


def _training_sample(run: Run, options: ConvertOptions, count: int, label: str) -> ImageSample:
    root = options.representative_data or run.data_dir
    if root is None:
        raise InputError(
            f"{run.path}: its config names no existing training data; pass --representative-data"
        )
    classes = None if options.representative_data else run.classes("train")
    with _progress(count, label) as update:
        return sample_images(root, run.input_size, count, options.seed, classes, update)


def _verification_sample(run: Run, options: ConvertOptions) -> tuple[ImageSample, str]:
    root, classes, source = options.verify_data, None, "--verify-data"
    if root is None and run.data_dir is not None and run.classes("val"):
        root, classes, source = run.data_dir, run.classes("val"), "the run's validation classes"
    if root is None:
        root, source = options.representative_data or run.data_dir, "the training data"
    if root is None:
        raise InputError(f"{run.path}: no verification data; pass --verify-data")
    with _progress(options.verify_images, "loading verification images") as update:
        sample = sample_classes(
            root, run.input_size, options.verify_images, options.seed + 1, classes, update
        )
    return sample, f"{root} ({source})"


def convert_run(run_dir, output, options: ConvertOptions) -> dict:
    """Convert, verify and (if it passes or ``force``) write; returns the report."""
    from itemrec.convert import export
    from itemrec.convert.distill import embed
    from itemrec.convert.graph import inspect_graph
    from itemrec.convert.metadata import embed_spec
    from itemrec.convert.verify import verify

    if options.prune and options.variant == "qat":
        raise InputError(
            "--prune with --qat is not supported: the QAT fine-tune would regrow the pruned "
            "weights (tfmot's prune-preserving scheme refuses the custom layers); "
            "use --prune with --int8"
        )
    output = Path(output)
    temp = _temp_output(output)
    try:
        run = load_run(run_dir)
        verification, verify_source = _verification_sample(run, options)
        reference = embed(run.embedder, verification.images)
        report = {
            "run": str(run.path),
            "output": str(output),
            "variant": options.variant,
            "quantization": options.quantization,
            "verify_data": verify_source,
        }
        model, finetuned_reference = run.embedder, None
        if options.needs_training_images:
            calibration = _training_sample(
                run, options, options.calibration_images, "loading calibration images"
            )
        if options.variant == "qat" or options.prune:
            model = _finetune(run, options, report, embed)
            finetuned_reference = embed(model, verification.images)
        click.echo(f"converting to {options.variant} ...", err=True)
        if options.quantization == "int8":
            if options.variant != "qat":
                model = _int8_ready(model, calibration.images, options, report)
            with _progress(len(calibration.images), "calibrating") as update:
                content = export.convert(model, "int8", calibration.images, update)
            report["calibration_images"] = len(calibration.images)
        else:
            content = export.convert(model, options.quantization)
        spec = ModelSpec(
            *run.input_size,
            run.embedding_size,
            run.backbone,
            options.quantization,
            config_hash=run.config_hash,
        )
        temp.write_bytes(embed_spec(content, spec))
        report["graph"] = inspect_graph(temp.read_bytes())
        with _progress(len(verification.images), "verifying") as update:
            report["verification"] = verify(
                temp,
                verification.images,
                verification.labels,
                reference,
                threads=options.threads,
                latency_runs=options.latency_runs,
                finetuned_reference=finetuned_reference,
                progress=update,
            )
        report.update(_decide(report, options))
        spec = spec.with_fingerprint(report["verification"]["fingerprint"])
        report["spec"] = spec.to_dict()
        if report["written"]:
            os.chmod(temp, new_file_mode())  # mkstemp's 0600 would hide it from other users
            os.replace(temp, output)
            spec.save(sidecar_path(output))
        return report
    finally:
        temp.unlink(missing_ok=True)


def _int8_ready(model, images, options: ConvertOptions, report: dict):
    """A copy of ``model`` whose weights sit on the int8 grid as ``options`` choose, its
    biases corrected for their mean error (not for QAT: its fine-tune has adapted to the
    rounding already)."""
    from itemrec.convert import int8_weights

    if options.rounding == "nearest" and not options.bias_correction:
        return model  # the converter rounds to nearest itself
    work = [f"{options.rounding} rounding"] + ["bias correction"] * options.bias_correction
    started = time.monotonic()
    with _progress(int8_weights.steps(model, images), f"int8 weights ({', '.join(work)})") as step:
        prepared, summary = int8_weights.prepared_copy(
            model, images, options.rounding, options.bias_correction, step
        )
    report["int8_weights"] = {**summary, "seconds": round(time.monotonic() - started, 1)}
    return prepared


def _finetune(run: Run, options: ConvertOptions, report: dict, embed):
    """Prune and/or QAT-fine-tune a copy of the embedder (distillation, see convert.distill)."""
    images = _training_sample(
        run, options, options.finetune_images, "loading fine-tuning images"
    ).images
    teacher = embed(run.embedder, images)
    fit = {
        "learning_rate": options.finetune_learning_rate,
        "batch_size": options.batch_size,
        "seed": options.seed,
    }
    from itemrec.convert.prune import kernel_sparsity, prune_finetune
    from itemrec.convert.qat import qat_finetune

    model = run.embedder
    if options.prune:
        click.echo(f"pruning to {options.prune:.0%} sparsity ...", err=True)
        model, losses = prune_finetune(
            model, images, teacher, sparsity=options.prune, epochs=options.prune_epochs, **fit
        )
        report["pruning"] = {
            "target_sparsity": options.prune,
            "learning_rate": options.finetune_learning_rate,
            "achieved_sparsity": kernel_sparsity(model),
            "epochs": options.prune_epochs,
            "distillation_loss": losses,
        }
    if options.variant == "qat":
        click.echo("quantisation-aware fine-tuning ...", err=True)
        model, losses = qat_finetune(model, images, teacher, epochs=options.qat_epochs, **fit)
        report["qat"] = {
            "epochs": options.qat_epochs,
            "learning_rate": options.finetune_learning_rate,
            "distillation_loss": losses,
            "images": len(images),
        }
    return model


def _decide(report: dict, options: ConvertOptions) -> dict:
    """Pass/fail. The cosine threshold applies to the run's embedder, except when pruning:
    pruning changes the network on purpose, so the threshold then checks the conversion of
    the pruned network, and its distance from the run's embedder (and rank-1) is reported."""
    degenerate = degeneracy(report["verification"])
    failures = list(degenerate)
    key = "cosine_to_finetuned_mean" if options.prune else "cosine_mean"
    cosine = report["verification"][key]
    if cosine < options.required_cosine:
        failures.append(f"{key.replace('_', ' ')} {cosine:.4f} < {options.required_cosine}")
    if options.quantization == "int8" and not report["graph"]["integer"]:
        failures.append(f"float ops left: {', '.join(report['graph']['float_ops'][:5])}")
    passed = not failures
    return {
        "min_cosine": options.required_cosine,
        "min_embedding_variance": MIN_EMBEDDING_VARIANCE,
        "degenerate": degenerate,
        "passed": passed,
        "failures": failures,
        "written": passed or options.force,
    }


def degeneracy(verification: dict) -> list[str]:
    """Why the run's own embeddings are useless, whatever the conversion: empty if they are not.

    A training run whose features collapsed converts faithfully (cosine 1 to itself) yet
    answers every photo alike; only the spread of its embeddings and its rank-1 show it.
    """
    reasons = []
    variance, images = verification["embedding_variance_keras"], verification["images"]
    if variance < MIN_EMBEDDING_VARIANCE:
        reasons.append(
            f"degenerate embeddings: their variance across the {images} verification images "
            f"is {variance:.2g} < {MIN_EMBEDDING_VARIANCE} (every image maps to nearly one point)"
        )
    rank1, chance = verification["rank1_keras"], verification["rank1_chance"]
    if rank1 <= chance:
        reasons.append(
            f"rank-1 {100 * rank1:.1f} % is at chance level ({100 * chance:.1f} % for "
            f"{verification['classes']} items)"
        )
    return reasons
