"""``itemrec-edge``: galleries, identification, the live camera loop and enrolment on the device.

Errors print one line and exit with a code of the shared table (``itemrec.edge_runtime.errors``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from contextlib import nullcontext

import click

from itemrec.edge_runtime.camera import FrameGrabber
from itemrec.edge_runtime.cli_common import ItemrecGroup
from itemrec.edge_runtime.enroll import (
    BATCH_ITEMS,
    EnrollmentReport,
    build_gallery,
    enroll_batched,
    enroll_camera,
    enroll_files,
    read_names_csv,
    read_vectors_npz,
)
from itemrec.edge_runtime.errors import ImageLoadError, InputError
from itemrec.edge_runtime.events import DEFAULT_STABLE_FRAMES, EventStream, JsonLinesWriter
from itemrec.edge_runtime.files import read_regular_file, shown
from itemrec.edge_runtime.gallery import Gallery, check_item_code
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.live import (
    LiveOptions,
    NoDisplay,
    WindowDisplay,
    gui_available,
    no_gui_reason,
    run_live,
)
from itemrec.edge_runtime.lookup import GalleryLookup
from itemrec.edge_runtime.wedge import KeyboardWedge, types_scans

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


augment_option = click.option(
    "--augment",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Augmented views (tilt, zoom, light, blur, JPEG) added per enrolment photo.",
)


CAMERA_HELP = (
    "auto (Picamera2, else the first V4L2 camera), picamera2[:N] (the Camera Module), "
    "0 or /dev/videoN (USB), gst:PIPELINE, or a video file or URL."
)


def parse_resolution(ctx, param, value: str) -> tuple[int, int]:
    width, _, height = value.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 640x480")
    return int(width), int(height)


resolution_option = click.option(
    "--resolution",
    default="640x480",
    show_default=True,
    callback=parse_resolution,
    help="Camera frame size WIDTHxHEIGHT (Picamera2 and V4L2 cameras).",
)
roi_option = click.option(
    "--roi",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.6,
    show_default=True,
    help="Centre region of the frame used, as a fraction of width and height.",
)


stable_frames_option = click.option(
    "--stable-frames",
    type=click.IntRange(min=1),
    default=DEFAULT_STABLE_FRAMES,
    show_default=True,
    help="Consecutive frames that must agree before an item counts as scanned.",
)
min_score_option = click.option(
    "--min-score",
    type=float,
    default=None,
    help="Least score of a scan, on top of the gallery's threshold (default: the threshold).",
)
retries_option = click.option(
    "--retries",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Reads retried before a silent camera counts as lost.",
)
type_codes_option = click.option(
    "--type-codes",
    is_flag=True,
    help="Type each scanned code and Enter on a virtual keyboard (Linux uinput), as a USB "
    "barcode scanner does (docs/serving.md).",
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


def warm_cache(db_path) -> None:
    """Write the vector cache now, so that the first ``identify`` maps it instead of reading
    every vector out of SQLite (0.6 s at 100k items; bench_lookup)."""
    with Gallery.open(db_path) as db:
        GalleryLookup(db)


def gallery_listing(db: Gallery) -> dict:
    """The gallery's model, threshold and items as one JSON object (``gallery list --json``)."""
    spec = db.spec
    return {
        "fingerprint": spec.fingerprint,
        "threshold": db.threshold,
        "spec": spec.to_dict(),
        "items": [dataclasses.asdict(item) for item in db.items()],
    }


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
@augment_option
@threads_option
def gallery_build(model_path, images_dir, db_path, names_csv, augment, threads):
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

    report = build_gallery(model, images_dir, db_path, names, progress, augment)
    warm_cache(db_path)
    echo_skipped(report)
    click.echo(
        f"{db_path}: {report.items} items, {report.representatives} representatives, "
        f"{len(report.skipped)} skipped"
    )


@gallery.command("import")
@db_option
@click.argument("npz", type=click.Path(dir_okay=False))
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="The model the vectors come from; needed when --db does not exist yet (creates it).",
)
def gallery_import(db_path, npz, model_path):
    """Enrol precomputed embeddings from NPZ: arrays 'codes' (unique), 'vectors' (N x D) and
    optionally 'names' and 'fingerprint' (the model's sha256). One representative per row;
    rows are L2-normalised; an existing code gets another representative."""
    from pathlib import Path

    if Path(db_path).exists():
        db = Gallery.open(db_path, write=True)
        if model_path:
            db.check_model(EmbeddingModel(model_path, threads=1).fingerprint, model_path)
    elif model_path:
        db = Gallery.create(db_path, EmbeddingModel(model_path, threads=1).spec)
    else:
        raise InputError(f"{db_path} does not exist: pass --model to create it")
    with db:
        entries = read_vectors_npz(npz, db.spec.embedding_size, db.fingerprint)
        batches = [entries[i : i + BATCH_ITEMS] for i in range(0, len(entries), BATCH_ITEMS)]
        report = EnrollmentReport()
        with click.progressbar(batches, label="importing", file=sys.stderr) as bar:
            for batch in bar:
                enroll_batched(db, batch, report)
    warm_cache(db_path)
    click.echo(f"{db_path}: imported {report.items} items from {npz}")


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
        if as_json:
            click.echo(json.dumps(gallery_listing(db)))
            return
        items, spec, threshold = db.items(), db.spec, db.threshold
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
@click.option("--camera", default="auto", show_default=True, help=CAMERA_HELP)
@resolution_option
@roi_option
@click.option("--headless", is_flag=True, help="No window: the JSON event lines only.")
@stable_frames_option
@min_score_option
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--top-k", "-k", default=3, show_default=True, type=click.IntRange(min=1))
@threshold_option
@retries_option
@type_codes_option
@threads_option
def run(
    model_path,
    db_path,
    camera,
    resolution,
    roi,
    headless,
    stable_frames,
    min_score,
    max_frames,
    top_k,
    threshold,
    retries,
    type_codes,
    threads,
):
    """Recognise items live; print one JSON line per event (docs/events.md): ready, one
    scan per confirmed item, camera_lost. Exit 0 when stopped, 5 if the camera cannot be
    opened, 6 if it stops delivering frames."""
    if not headless and not gui_available():
        raise InputError(no_gui_reason())
    threshold = cosine_threshold(threshold)
    events = EventStream()
    events.subscribe(JsonLinesWriter(sys.stdout))
    wedge = KeyboardWedge() if type_codes else None  # before the camera: it may refuse
    if wedge is not None:
        events.subscribe(types_scans(wedge))
    model, db = open_matching(model_path, db_path, threads)
    lookup = GalleryLookup(db, threshold)
    grabber = FrameGrabber(camera, retries=retries, resolution=resolution)
    display = NoDisplay() if headless else WindowDisplay(roi)
    options = LiveOptions(
        roi=roi,
        top_k=top_k,
        max_frames=max_frames,
        stable_frames=stable_frames,
        min_score=min_score,
    )
    with db, wedge or nullcontext():
        run_live(model, lookup, grabber, display, options, events)


@main.command()
@model_option
@db_option
@click.option(
    "--camera", default=None, help=CAMERA_HELP + " Without it, the API answers photos only."
)
@resolution_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; any but loopback needs --token or --token-file.",
)
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@click.option(
    "--token",
    envvar="ITEMREC_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on every endpoint but /healthz "
    "(env ITEMREC_TOKEN).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the token from this file (first line).",
)
@click.option(
    "--max-upload-mb",
    default=32.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest request body (413 above it).",
)
@roi_option
@stable_frames_option
@min_score_option
@click.option("--top-k", "-k", default=3, show_default=True, type=click.IntRange(min=1))
@retries_option
@type_codes_option
@threads_option
def serve(
    model_path,
    db_path,
    camera,
    resolution,
    host,
    port,
    token,
    token_file,
    max_upload_mb,
    roi,
    stable_frames,
    min_score,
    top_k,
    retries,
    type_codes,
    threads,
):
    """Serve the HTTP API (/v1, /docs), the live page (/) and the scan event stream.

    Prints the same JSON event lines as 'run --headless'. Exit 0 on SIGTERM or Ctrl-C,
    5 if the camera cannot be opened; a camera lost later is reopened while the API stays up.
    """
    try:
        from itemrec.edge_runtime.server.serve import ServeOptions, is_loopback
        from itemrec.edge_runtime.server.serve import serve as run_server
    except ImportError as error:
        raise InputError(
            f"'serve' needs the edge-serve extra ({error.name} is missing): "
            "pip install 'itemrec[edge-serve]'"
        ) from None
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    if token_file is not None:
        token = read_token(token_file)
    if token is None and not is_loopback(host):
        raise click.UsageError(f"--host {host} is not loopback: give --token or --token-file")
    options = ServeOptions(
        host=host,
        port=port,
        token=token,
        camera=camera,
        resolution=resolution,
        retries=retries,
        threads=threads,
        type_codes=type_codes,
        max_upload_bytes=int(max_upload_mb * 2**20),
    )
    live = LiveOptions(roi=roi, top_k=top_k, stable_frames=stable_frames, min_score=min_score)
    run_server(model_path, db_path, options, live)


def read_token(path) -> str:
    """The first line of a token file (a regular file of at most 4 KB), not empty."""
    data = read_regular_file(path, 4096, what="a token file")
    try:
        token = data.decode("utf-8").partition("\n")[0].strip()
    except UnicodeDecodeError:
        raise InputError(f"token file {shown(path)} is not UTF-8 text") from None
    if not token:
        raise InputError(f"token file {path} is empty")
    return token


@main.command()
@model_option
@db_option
@click.option("--code", required=True, help="Item code.")
@click.option("--name", default=None, help="Item name.")
@click.option("--camera", default=None, help="Take the pictures with this camera: " + CAMERA_HELP)
@resolution_option
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
@augment_option
@threads_option
def enroll(
    model_path,
    db_path,
    code,
    name,
    camera,
    resolution,
    shots,
    interval,
    roi,
    images,
    augment,
    threads,
):
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
                db,
                model,
                FrameGrabber(camera, resolution=resolution),
                code,
                name,
                shots,
                roi,
                interval,
                augment=augment,
            )
        else:
            report = enroll_files(db, model, code, name, images, augment=augment)
    echo_skipped(report)
    if not report.items:
        raise InputError(f"no readable image for {code}; nothing enrolled")
    click.echo(f"{code}: enrolled {report.representatives} representatives")
    if report.skipped:  # one line per unreadable image
        raise InputError(f"{len(report.skipped)} of {len(images)} images skipped")


gallery.add_command(enroll, name="add")

if __name__ == "__main__":
    main()
