"""``itemrec-edge``: galleries, identification, the live camera loop and enrolment on the device.

Errors print one line and exit with a code of the shared table (``itemrec.edge_runtime.errors``).
"""

from __future__ import annotations

import json
import os
import sys

import click

from itemrec.edge_runtime.camera import FrameGrabber
from itemrec.edge_runtime.cli_common import ItemrecGroup
from itemrec.edge_runtime.enroll import (
    EnrollmentReport,
    build_gallery,
    enroll_camera,
    enroll_files,
    read_names_csv,
)
from itemrec.edge_runtime.errors import ImageLoadError, InputError
from itemrec.edge_runtime.files import shown
from itemrec.edge_runtime.gallery import Gallery, check_item_code
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.live import (
    JsonLinesReporter,
    LiveOptions,
    WindowDisplay,
    gui_available,
    run_live,
)
from itemrec.edge_runtime.lookup import GalleryLookup

model_option = click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(),  # a folder or a FIFO is refused with exit code 4, like a bad model
    help="The embedding .tflite file.",
)
db_option = click.option(
    "--db", "db_path", required=True, type=click.Path(), help="The gallery.db file."
)
threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Interpreter threads (default: all cores).",
)


def cosine_threshold(value: float | None) -> float | None:
    """``--threshold``, checked: ``nan`` or a value outside [-1, 1] is bad input (exit 3)."""
    if value is not None and not -1.0 <= value <= 1.0:  # false for nan too
        raise InputError(f"--threshold: a cosine threshold lies in [-1, 1], got {value}")
    return value


threshold_option = click.option(
    "--threshold",
    type=float,
    default=None,
    help="Override the gallery's unknown-item threshold.",
)
roi_option = click.option(
    "--roi",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.6,
    show_default=True,
    help="Centre region of the frame used, as a fraction of width and height.",
)


def open_matching(model_path, db_path, threads, write=False) -> tuple[EmbeddingModel, Gallery]:
    """Load the model and open the gallery, refusing a gallery made by another model."""
    model = EmbeddingModel(model_path, threads=threads)
    gallery = Gallery.open(db_path, write=write)
    try:
        gallery.check_model(model.fingerprint, model_path)
    except BaseException:
        gallery.close()
        raise
    return model, gallery


def echo_skipped(report: EnrollmentReport) -> None:
    for line in report.skipped:
        click.echo(f"skipped: {line}", err=True)


@click.group(
    "itemrec-edge", cls=ItemrecGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
def main():
    """Recognise items on the device: a TFLite embedder and a SQLite gallery, no TensorFlow."""


@main.group()
def gallery():
    """Build and maintain a gallery of item representatives."""


@gallery.command("build")
@model_option
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="One folder per item: IMAGES/<code>/<image files>.",
)
@db_option
@click.option(
    "--names",
    "names_csv",
    type=click.Path(dir_okay=False),
    help="A CSV with header 'code,name' mapping codes to names.",
)
@threads_option
def gallery_build(model_path, images_dir, db_path, names_csv, threads):
    """Create a gallery from class folders (folder name = item code).

    The gallery appears under its name only once complete; every file left out is named.
    """
    if os.path.lexists(db_path):
        raise InputError(f"{shown(db_path)} already exists; remove it or use 'gallery add'")
    names = read_names_csv(names_csv) if names_csv else None
    model = EmbeddingModel(model_path, threads=threads)

    def progress(items):
        with click.progressbar(items, label="enrolling", file=sys.stderr) as bar:
            yield from bar

    report = build_gallery(model, images_dir, db_path, names, progress)
    echo_skipped(report)
    click.echo(
        f"{db_path}: {report.items} items, {report.representatives} representatives, "
        f"{len(report.skipped)} skipped"
    )


@gallery.command("remove")
@db_option
@click.argument("codes", nargs=-1, required=True)
def gallery_remove(db_path, codes):
    """Remove items (and all their representatives) by code."""
    with Gallery.open(db_path, write=True) as db:
        for code in codes:
            db.remove(code)
            click.echo(f"removed {code}")


@gallery.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object for machines.")
def gallery_list(db_path, as_json):
    """List items with their representative counts, and the gallery's model and threshold."""
    with Gallery.open(db_path) as db:
        items, spec, threshold = db.items(), db.spec, db.threshold
    if as_json:
        click.echo(
            json.dumps(
                {
                    "fingerprint": spec.fingerprint,
                    "threshold": threshold,
                    "spec": spec.to_dict(),
                    "items": [
                        {
                            "code": i.code,
                            "name": i.name,
                            "attributes": i.attributes,
                            "representatives": i.representatives,
                        }
                        for i in items
                    ],
                }
            )
        )
        return
    click.echo(
        f"model {spec.backbone} {spec.input_height}x{spec.input_width} "
        f"{spec.quantization}, fingerprint {spec.fingerprint[:12]}, threshold {threshold}"
    )
    for item in items:  # codes and names are one printable line each (item_code_problem)
        click.echo(f"{item.code}\t{item.name}\t{item.representatives}")
    click.echo(f"{len(items)} items")


@gallery.command("set-threshold")
@db_option
@click.argument("threshold", type=float, required=False)
@click.option("--clear", is_flag=True, help="Forget the threshold (every answer is accepted).")
def gallery_set_threshold(db_path, threshold, clear):
    """Store the cosine THRESHOLD below which an answer is 'unknown'."""
    if (threshold is None) == (not clear):
        raise click.UsageError("give a THRESHOLD or --clear")
    with Gallery.open(db_path, write=True) as db:
        db.set_threshold(None if clear else threshold)
    click.echo(f"threshold: {None if clear else threshold}")


@gallery.command("export")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["android"]),
    default="android",
    show_default=True,
    help="Export format (docs/gallery-format.md).",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output file.")
def gallery_export(db_path, fmt, out):
    """Export the gallery for the Android app (gallery.bin)."""
    from itemrec.edge_runtime.gallery_bin import write_gallery_bin

    with Gallery.open(db_path) as db:
        vectors, spec, threshold = db.vectors(), db.spec, db.threshold
    write_gallery_bin(
        out,
        codes=vectors.codes,
        names=vectors.names,
        item_index=vectors.item_index,
        vectors=vectors.matrix,
        threshold=threshold,
        input_size=spec.input_size,
        fingerprint_hex=spec.fingerprint,
    )
    click.echo(f"{out}: {len(vectors.codes)} items, {len(vectors.matrix)} vectors")


@main.command()
@model_option
@db_option
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", "-k", default=5, show_default=True, type=click.IntRange(min=1))
@threshold_option
@click.option("--json", "as_json", is_flag=True, help="One JSON line per image.")
@threads_option
def identify(model_path, db_path, images, top_k, threshold, as_json, threads):
    """Print the top-k items for each image."""
    threshold = cosine_threshold(threshold)
    model, db = open_matching(model_path, db_path, threads)
    with db:
        lookup = GalleryLookup(db, threshold)
    failed = 0
    for path in images:
        try:
            result = lookup.identify(model.embed(load_image(path)), top_k)
        except ImageLoadError as err:
            failed += 1
            click.echo(f"skipped: {err.one_line()}", err=True)
            continue
        if as_json:
            click.echo(json.dumps({"image": path, **result.to_dict()}))
            continue
        item = result.item
        click.echo(f"{shown(path)}: {item.code + ' ' + item.name if item else 'unknown'}")
        for rank, match in enumerate(result.matches, 1):
            click.echo(f"  {rank}. {match.code}\t{match.name}\t{match.score:.4f}")
    if failed:
        raise InputError(f"{failed} of {len(images)} images could not be read")


@main.command()
@model_option
@db_option
@click.option(
    "--camera",
    required=True,
    help="Camera index (0), video file, URL or GStreamer pipeline.",
)
@roi_option
@click.option("--headless", is_flag=True, help="No window: one JSON line per change of item.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--top-k", "-k", default=3, show_default=True, type=click.IntRange(min=1))
@threshold_option
@click.option(
    "--retries",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Reads retried before a silent camera counts as lost (exit 6).",
)
@threads_option
def run(model_path, db_path, camera, roi, headless, max_frames, top_k, threshold, retries, threads):
    """Recognise items live. Exit 0 when stopped, 5 if the camera cannot be opened,
    6 if it stops delivering frames."""
    if not headless and not gui_available():
        raise InputError(
            "this OpenCV has no GUI (or there is no display): use --headless, or install "
            "opencv-python instead of opencv-python-headless"
        )
    threshold = cosine_threshold(threshold)
    model, db = open_matching(model_path, db_path, threads)
    lookup = GalleryLookup(db, threshold)
    grabber = FrameGrabber(camera, retries=retries)
    display = JsonLinesReporter(sys.stdout) if headless else WindowDisplay(roi)
    options = LiveOptions(roi=roi, top_k=top_k, max_frames=max_frames)
    with db:
        run_live(model, lookup, grabber, display, options)


@main.command()
@model_option
@db_option
@click.option("--code", required=True, help="Item code.")
@click.option("--name", default=None, help="Item name.")
@click.option("--camera", default=None, help="Take the pictures with this camera.")
@click.option(
    "--shots",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Pictures taken with --camera.",
)
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between camera shots.",
)
@roi_option
@click.argument("images", nargs=-1, type=click.Path())  # checked one by one, as in identify
@threads_option
def enroll(model_path, db_path, code, name, camera, shots, interval, roi, images, threads):
    """Enrol an item from the camera or from IMAGES, in one transaction.

    Unreadable IMAGES are named and left out, the others enrolled; the exit code is then 3.
    """
    if (camera is None) == (not images):
        raise click.UsageError("give either --camera or IMAGES")
    check_item_code(code)
    model, db = open_matching(model_path, db_path, threads, write=True)
    with db:
        if camera is not None:
            report = enroll_camera(
                db, model, FrameGrabber(camera), code, name, shots, roi, interval
            )
        else:
            report = enroll_files(db, model, code, name, images)
    echo_skipped(report)
    if not report.items:
        raise InputError(f"no readable image for {code}; nothing enrolled")
    click.echo(f"{code}: enrolled {report.representatives} representatives")
    if report.skipped:
        raise InputError(f"{len(images) - report.representatives} of {len(images)} images skipped")


gallery.add_command(enroll, name="add")

if __name__ == "__main__":
    main()
