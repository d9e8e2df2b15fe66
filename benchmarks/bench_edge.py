"""Where a live frame's time goes: capture, preprocessing, invoke, lookup.

Plays a 640x480 MJPG video through the threaded ``FrameGrabber`` (decoding as fast as it can,
like a camera that always has a frame ready, and competing for the CPU as its driver would) into the
live loop's steps, against a random 1,000-item gallery, and compares the per-frame total with
the raw ``invoke()`` time measured alone on the same input (goal: total / invoke <= 1.10 at
steady state for a real-sized model; a tiny model's invoke is too short to hide the rest).

    python benchmarks/bench_edge.py [--model M.tflite ...] [--frames 200] [--threads 1 --threads 2]
        [--unpaced]

The video plays at 30 fps, as a camera delivers it (``--unpaced``: as fast as it decodes,
which on 2 cores takes a core from the interpreter). Without
``--model`` it times EfficientNet-Lite0 and InceptionV3 (299 px), fp32 and int8
(``edge_models.py`` makes them), with 1 and 2 threads. Besides total / raw invoke, the
table gives work / raw invoke: the frame's time without waiting for the camera
(preprocessing + invoke + lookup), what the loop adds to the model itself.
Writes ``benchmarks/results/edge.json`` and ``edge.md``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click
import cv2
import numpy as np
from edge_models import standard_models

from itemrec.edge_runtime.camera import FrameGrabber, center_roi
from itemrec.edge_runtime.errors import CameraError
from itemrec.edge_runtime.gallery import GalleryVectors
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import Lookup

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TINY = ROOT / "tests" / "fixtures" / "tiny_int8.tflite"
WARM_UP = 10


def make_video(path: Path, frames: int) -> Path:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for _ in range(frames):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        writer.write(cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR))
    writer.release()
    return path


def random_lookup(items: int, dim: int) -> Lookup:
    rows = np.random.default_rng(1).normal(size=(items, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    codes = [str(i) for i in range(items)]
    return Lookup(GalleryVectors(rows, np.arange(items), codes, codes))


def raw_invoke_ms(model: EmbeddingModel, tensor: np.ndarray, runs: int) -> float:
    """Mean ms of ``invoke()`` alone on one prepared input, after a warm-up."""
    times = []
    for n in range(runs + WARM_UP):
        t0 = time.perf_counter()
        model.invoke(tensor)
        if n >= WARM_UP:
            times.append(time.perf_counter() - t0)
    return 1e3 * float(np.mean(times))


def measure(
    model_path: Path, workdir: Path, frames: int, threads: int, roi: float, paced: bool
) -> dict:
    model = EmbeddingModel(model_path, threads=threads)
    lookup = random_lookup(1000, model.spec.embedding_size)
    tensor = model.prepare(np.zeros((480, 640, 3), np.uint8))
    raw_ms = raw_invoke_ms(model, tensor, runs=20)
    # About ten seconds of steady state per model, and a video long enough for it at
    # whichever is slower, the camera (30 fps) or the model.
    frames = min(frames, max(20, int(10_000 / raw_ms)))
    seconds = (frames + WARM_UP) * max(raw_ms / 1e3, 1 / 30)
    video = make_video(workdir / f"{model_path.stem}_{threads}.avi", int(60 * seconds) + 60)
    steps = {"capture": [], "preprocess": [], "invoke": [], "lookup": []}
    with FrameGrabber(str(video), realtime=paced) as grabber:
        for n in range(frames + WARM_UP):
            t0 = time.perf_counter()
            try:
                frame = grabber.latest(timeout=5)
            except CameraError:  # the video ran out before enough frames were processed
                break
            t1 = time.perf_counter()
            tensor = model.prepare(cv2.cvtColor(center_roi(frame, roi), cv2.COLOR_BGR2RGB))
            t2 = time.perf_counter()
            raw = model.invoke(tensor)
            t3 = time.perf_counter()
            lookup.identify(model.finish(raw), 3)
            t4 = time.perf_counter()
            if n >= WARM_UP:
                for name, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    steps[name].append(dt)
    ms = {name: 1e3 * float(np.mean(values)) for name, values in steps.items()}
    total = sum(ms.values())
    return {
        "model": model_path.name,
        "backbone": model.spec.backbone,
        "quantization": model.spec.quantization,
        "input": f"{model.spec.input_height}x{model.spec.input_width}",
        "threads": threads,
        "camera": "30 fps" if paced else "unpaced",
        "frames": len(steps["invoke"]),
        **{f"{name}_ms": round(value, 4) for name, value in ms.items()},
        "total_ms": round(total, 4),
        "raw_invoke_ms": round(raw_ms, 4),
        "total_over_raw_invoke": round(total / raw_ms, 3),
        "work_over_raw_invoke": round((total - ms["capture"]) / raw_ms, 3),
    }


@click.command()
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Another .tflite to measure (repeatable).",
)
@click.option("--frames", default=200, show_default=True)
@click.option(
    "--threads",
    "thread_counts",
    multiple=True,
    type=int,
    default=(1, 2),
    show_default=True,
    help="Interpreter threads (repeatable).",
)
@click.option("--roi", default=0.6, show_default=True)
@click.option(
    "--paced/--unpaced",
    default=True,
    show_default=True,
    help="Play the video at 30 fps like a camera, or decode it as fast as possible.",
)
def main(models, frames, thread_counts, roi, paced):
    """Split per-frame time into capture, preprocessing, invoke and lookup."""
    models = [Path(m) for m in models] or standard_models()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            measure(model, Path(tmp), frames, threads, roi, paced)
            for model in (TINY, *models)
            for threads in thread_counts
        ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "edge.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "Per-frame time (ms, mean at steady state) of the live loop's steps on 640x480 frames, "
        "1,000-item gallery.",
        "",
        "| model | quant | input | threads | camera | capture | preprocess | invoke | lookup "
        "| total | raw invoke | total / raw | work / raw |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['quantization']} | {r['input']} | {r['threads']} | {r['camera']} | "
        f"{r['capture_ms']:.3f} | {r['preprocess_ms']:.3f} | {r['invoke_ms']:.3f} | "
        f"{r['lookup_ms']:.3f} | {r['total_ms']:.3f} | {r['raw_invoke_ms']:.3f} | "
        f"{r['total_over_raw_invoke']:.2f} | {r['work_over_raw_invoke']:.2f} |"
        for r in rows
    ]
    (RESULTS / "edge.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
