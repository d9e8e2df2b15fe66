"""Frames per second of the live loop on a Pi-like budget: Lite0 int8 at 96, 128 and 224 px.

Each row runs the real ``run_live`` (camera thread, centre region, embedding, lookup,
debouncer, events) in a fresh process on a 640x480 video of the sample's unseen items played
at 30 fps like a camera, against a gallery of those items: once with 1 interpreter thread
and the whole process pinned to one core (``taskset -c 0``: camera decoding shares it, as on
a small Pi), once with 2 threads on both cores. The loop's frames/s is capped by the camera's
30; the time each frame's ``embed`` (preprocessing + invoke) took in the loop says how far
below that cap a slower CPU may go (embeds/s possible). Beside them, the raw
``invoke()`` time (alone, same process) and each model's rank-1 on the sample (from
``edge_models.lite0_int8_by_size``, which trains and converts the models once).

    nice python benchmarks/bench_live.py [--frames 120] [--size 96 --size 128 --size 224]

Writes ``benchmarks/results/live.json`` and ``live.md``. Figures are x86 ones: a Pi 4's
cores are several times slower; compare the sizes by their ratios.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import cv2
import numpy as np
from bench_edge import raw_invoke_ms
from commands import SAMPLE_UNSEEN, show
from edge_models import lite0_int8_by_size

from itemrec.edge_runtime.camera import FrameGrabber
from itemrec.edge_runtime.folders import scan_class_folders
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.live import LiveOptions, NoDisplay, run_live
from itemrec.edge_runtime.lookup import GalleryLookup

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WARM_UP = 10
FRAMES_PER_ITEM = 15  # half a second of each item at 30 fps


def sample_items() -> list[tuple[str, list[Path]]]:
    return [(code, paths) for code, paths in scan_class_folders(SAMPLE_UNSEEN).items()]


def make_video(path: Path, frames: int) -> Path:
    """Each unseen item's second (probe) image centred on a grey 640x480 frame, in turn."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    items = sample_items()
    for n in range(frames):
        _, paths = items[(n // FRAMES_PER_ITEM) % len(items)]
        item = cv2.resize(load_image(paths[-1]), (240, 240), interpolation=cv2.INTER_AREA)
        frame = np.full((480, 640, 3), 128, np.uint8)
        frame[120:360, 200:440] = item
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def make_gallery(model: EmbeddingModel, path: Path) -> Path:
    """The unseen items, each represented by its first image."""
    with Gallery.create(path, model.spec) as gallery:
        for code, paths in sample_items():
            gallery.enroll(code, code, model.embed_many(np.stack([load_image(paths[0])])))
    return path


class TimedModel:
    """The model, with the time each ``embed_bgr`` took (what the loop calls per frame:
    resize into the input, invoke, dequantise)."""

    def __init__(self, model: EmbeddingModel):
        self.model, self.seconds = model, []

    def embed_bgr(self, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        vector = self.model.embed_bgr(frame)
        self.seconds.append(time.perf_counter() - t0)
        return vector


class FrameClock(NoDisplay):
    """Headless, but remembers when each frame was done."""

    def __init__(self):
        self.times: list[float] = []

    def show(self, frame_number, frame, result, fps):
        self.times.append(time.perf_counter())
        return True


def worker(model_path: Path, threads: int, video: Path, frames: int) -> dict:
    """One row: the loop's frames/s and the raw invoke time, in this process."""
    model = EmbeddingModel(model_path, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_gallery(model, Path(tmp) / "g.db")
        tensor = model.prepare(np.zeros((480, 640, 3), np.uint8))
        raw_invoke_ms(model, tensor, runs=WARM_UP)  # the first invokes allocate: not timed
        raw_ms = float(np.mean(raw_invoke_ms(model, tensor, runs=20)))
        with Gallery.open(db) as gallery:
            clock, timed = FrameClock(), TimedModel(model)
            options = LiveOptions(roi=0.6, max_frames=frames + WARM_UP)
            run_live(timed, GalleryLookup(gallery), FrameGrabber(str(video)), clock, options)
    times = np.array(clock.times[WARM_UP:])
    fps = (len(times) - 1) / (times[-1] - times[0])
    embed_ms = 1e3 * float(np.mean(timed.seconds[WARM_UP:]))
    return {
        "frames_per_s": round(float(fps), 2),
        "embed_ms": round(embed_ms, 3),
        "embed_capacity_per_s": round(1e3 / embed_ms, 1),
        "raw_invoke_ms": round(raw_ms, 3),
    }


def measure(model: Path, threads: int, pinned: bool, video: Path, frames: int) -> dict:
    command = [sys.executable, __file__, "--worker", str(model), str(threads), str(video)]
    command += ["--frames", str(frames)]
    if pinned:
        command = ["taskset", "-c", "0", *command]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{show(command)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


@click.command()
@click.option("--frames", default=90, show_default=True, help="Frames timed per row.")
@click.option(
    "--rounds",
    default=3,
    show_default=True,
    help="Interleaved rounds over all rows; the table gives each figure's median.",
)
@click.option("--size", "sizes", multiple=True, type=int, default=(96, 128, 224), show_default=True)
@click.option("--worker", "worker_args", nargs=3, type=str, default=None, hidden=True)
def main(frames: int, rounds: int, sizes: tuple[int, ...], worker_args) -> None:
    """Time the live loop per model size, 1 thread on one core and 2 threads."""
    if worker_args:
        model, threads, video = worker_args
        print(json.dumps(worker(Path(model), int(threads), Path(video), frames)))
        return
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the process to one core")
    models = lite0_int8_by_size(sizes)
    configs = [(size, threads, threads == 1) for size in models for threads in (1, 2)]
    samples: dict[tuple, list[dict]] = {config: [] for config in configs}
    with tempfile.TemporaryDirectory() as tmp:
        # Long enough for the slowest row: every frame of it at 30 fps, and then some.
        video = make_video(Path(tmp) / "items.avi", 30 * 60)
        for round_number in range(rounds):  # interleaved: a busy minute hits every row alike
            for size, threads, pinned in configs:
                row = measure(models[size][0], threads, pinned, video, frames)
                samples[(size, threads, pinned)].append(row)
                click.echo(f"round {round_number + 1}: {size} px, {threads} thr: {row}", err=True)
    rows = []
    for (size, threads, pinned), runs in samples.items():
        medians = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
        rows.append(
            {
                "input": size,
                "threads": threads,
                "pinned_to_one_core": pinned,
                "rank1": models[size][1],
                "rounds": runs,
                **medians,
            }
        )
    RESULTS.mkdir(exist_ok=True)
    commands = [show(c) for _, _, cmds in models.values() for c in cmds]
    (RESULTS / "live.json").write_text(json.dumps({"rows": rows, "commands": commands}, indent=2))
    lines = [
        "Live loop (`run_live`, headless) with EfficientNet-Lite0 int8, 640x480 video at 30 fps, "
        f"{frames} frames timed after {WARM_UP}; gallery of the sample's 100 unseen items; "
        f"medians of {rounds} interleaved rounds. x86-64, a 2-core machine shared with other "
        f"jobs (load average {os.getloadavg()[0]:.0f} at the end): compare sizes by ratio.",
        "",
        "| input | threads | CPU | loop frames/s (camera 30) | embed ms/frame | embeds/s "
        "possible | raw invoke ms | rank-1 (unseen, int8) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = "1 core (taskset -c 0)" if r["pinned_to_one_core"] else "2 cores"
        lines.append(
            f"| {r['input']} | {r['threads']} | {cpu} | {r['frames_per_s']:.1f} | "
            f"{r['embed_ms']:.2f} | {r['embed_capacity_per_s']:.0f} | {r['raw_invoke_ms']:.2f} | "
            f"{100 * r['rank1']:.0f} % |"
        )
    lines += ["", "Models made by:", ""] + [f"- `{c}`" for c in commands]
    (RESULTS / "live.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
