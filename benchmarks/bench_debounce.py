"""How many stable frames should confirm a scan? Simulated scans of the sample, per N.

Each of the sample's 100 unseen items is "shown to the camera" for 20 frames and then taken
away for 10 frames of empty background. An item frame is one of its images on a 640x480
background, moved, scaled and brightened at random like a hand-held product, and
motion-blurred with probability 0.15 (the junk frames that made one scan into three). Two
runs: the item as enrolled (its gallery image: the debouncer against frame-to-frame noise
alone; the default comes from this one) and the other vendor's drawing (another package
design: the model's own errors on top). Every frame goes through the real model (Lite0
int8, 96 px, from ``edge_models``) and lookup, with the gallery's threshold at the equal
error rate of the probes; then the real ``Debouncer`` runs over the answers for N = 1..6.

A visit's *steady answer* is the item most of its frames vote for (what the model can
know). Per N: visits scanned once with the steady answer, *spurious* scans (any other scan
during a visit: a flicker's item, or the same item again), visits missed, and the median
frames from the item's arrival to its scan. Every spurious scan and every missed item costs
the staff a correction, so the default is the N with the fewest of both together (on the
item as enrolled; the fewer frames on a tie), summed over several draws of the frames
(``--seeds``). Writes ``benchmarks/results/debounce.json``
and ``debounce.md``.

    nice python benchmarks/bench_debounce.py [--visits 100] [--seeds 0,1,2]
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import click
import cv2
import numpy as np
from bench_live import make_gallery, sample_items
from commands import show
from edge_models import lite0_int8_by_size

from itemrec.edge_runtime.camera import center_roi
from itemrec.edge_runtime.events import Debouncer
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import GalleryLookup
from itemrec.train.evaluation.metrics import equal_error_rate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ITEM_FRAMES, EMPTY_FRAMES, BLUR_PROBABILITY = 20, 10, 0.15
#: Sensor-noise backgrounds drawn once and picked at random per frame: drawing 640x480x3
#: normal values for each of the 6,000 frames took 85 of this benchmark's 110 s.
BACKGROUNDS = 32
STABLE_FRAMES = range(1, 7)


def noise_backgrounds(rng: np.random.Generator) -> np.ndarray:
    """``BACKGROUNDS`` 640x480 RGB frames of grey sensor noise."""
    return np.clip(rng.normal(128, 6, (BACKGROUNDS, 480, 640, 3)), 0, 255).astype(np.uint8)


def frame_of(
    item: np.ndarray | None, backgrounds: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A 640x480 RGB camera frame: a noise background, and the item hand-held in the middle."""
    frame = backgrounds[rng.integers(len(backgrounds))].copy()
    if item is None:
        return frame
    side = int(240 * rng.uniform(0.9, 1.1))
    top, left = 120 + rng.integers(-20, 21), 200 + rng.integers(-20, 21)
    patch = cv2.resize(item, (side, side), interpolation=cv2.INTER_AREA).astype(np.int16)
    patch = np.clip(patch + rng.integers(-20, 21), 0, 255).astype(np.uint8)
    frame[top : top + side, left : left + side] = patch[: 480 - top, : 640 - left]
    if rng.random() < BLUR_PROBABILITY:
        kernel = np.zeros((25, 25), np.float32)
        kernel[12, :] = 1 / 25
        frame = cv2.filter2D(frame, -1, kernel)
    return frame


def answers(model: EmbeddingModel, lookup: GalleryLookup, visits: int, seed: int, image: int):
    """Per visit: the true code and the identification of each of its frames, showing
    each item's image number ``image`` (0: the enrolled one, -1: the other design)."""
    rng = np.random.default_rng(seed)
    backgrounds = noise_backgrounds(rng)
    out = []
    for code, paths in sample_items()[:visits]:
        probe = load_image(paths[image])
        frames = [probe] * ITEM_FRAMES + [None] * EMPTY_FRAMES
        results = [
            lookup.identify(model.embed(center_roi(frame_of(f, backgrounds, rng), 0.6)), 1)
            for f in frames
        ]
        out.append((code, results))
    return out


def eer_threshold(model: EmbeddingModel, lookup: GalleryLookup) -> float:
    """The equal-error threshold of the probes: genuine = own item, impostor = best other."""
    genuine, impostor = [], []
    codes = lookup.codes
    for code, paths in sample_items():
        scores = lookup.item_scores(model.embed(load_image(paths[-1])))[0]
        own = codes.index(code)
        genuine.append(scores[own])
        impostor.append(np.max(np.delete(scores, own)))
    return equal_error_rate(genuine, impostor)[1]


def score(visits, stable_frames: int) -> dict:
    debouncer = Debouncer(stable_frames)
    frame = once = spurious = missed = correct = 0
    latencies = []
    for code, results in visits:
        votes = Counter(r.item.code if r.item else None for r in results[:ITEM_FRAMES])
        steady = votes.most_common(1)[0][0]
        scans = []
        for n, result in enumerate(results):
            frame += 1
            scan = debouncer.update(result, frame)
            if scan is not None:
                scans.append((n, scan.code))
        hits = [n for n, c in scans if c == steady and steady is not None]
        once += bool(hits)
        spurious += len(scans) - min(len(hits), 1)
        missed += steady is not None and not hits
        correct += any(c == code for _, c in scans)
        latencies += hits[:1]
    return {
        "stable_frames": stable_frames,
        "visits_scanned_once": once,
        "spurious_scans": spurious,
        "visits_missed": missed,
        "visits_scanned_right": correct,
        "median_latency_frames": float(np.median(latencies)) + 1 if latencies else None,
    }


def fewest_errors(rows: list[dict]) -> int:
    """The stable-frames count with the fewest spurious scans + missed visits."""
    return min(rows, key=lambda r: (r["spurious_scans"] + r["visits_missed"], r["stable_frames"]))[
        "stable_frames"
    ]


# One draw of 100 visits moves the pick by a frame: in December seed 0 alone put 5 ahead of 4
# (11 against 13 corrections), seeds 1 and 2 put 4 ahead (10 against 14, 5 against 8).
@click.command()
@click.option("--visits", default=100, show_default=True)
@click.option(
    "--seeds", default="0,1,2", show_default=True, help="Draws of the frames, scored together."
)
def main(visits: int, seeds: str):
    """Count spurious and missed scans per --stable-frames on simulated scans."""
    draws = [int(s) for s in seeds.split(",")]
    model_path, rank1, commands = lite0_int8_by_size((96,))[96]
    model = EmbeddingModel(model_path, threads=2)
    with tempfile.TemporaryDirectory() as tmp:
        db = make_gallery(model, Path(tmp) / "g.db")
        with Gallery.open(db) as gallery:
            threshold = eer_threshold(model, GalleryLookup(gallery))
            lookup = GalleryLookup(gallery, threshold)
            shown = {"as enrolled": 0, "other design": -1}
            simulated = {
                name: [visit for seed in draws for visit in answers(model, lookup, visits, seed, i)]
                for name, i in shown.items()
            }
    runs = {name: [score(sim, n) for n in STABLE_FRAMES] for name, sim in simulated.items()}
    best = fewest_errors(runs["as enrolled"])
    RESULTS.mkdir(exist_ok=True)
    summary = {"threshold": threshold, "rank1": rank1, "seeds": draws, "best": best, "runs": runs}
    summary["commands"] = [show(c) for c in commands]
    (RESULTS / "debounce.json").write_text(json.dumps(summary, indent=2))
    lines = [
        f"Simulated scans: {visits} unseen items in each of {len(draws)} draws (seeds {seeds}), "
        f"each {ITEM_FRAMES} frames hand-held "
        f"({BLUR_PROBABILITY:.0%} motion-blurred) then {EMPTY_FRAMES} empty; Lite0 int8 96 px "
        f"(rank-1 {100 * rank1:.0f} %), threshold {threshold:.3f} (equal error rate).",
        "",
        "| item shown | --stable-frames | visits scanned once | spurious scans | visits missed "
        "| scanned right | median frames to scan |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in runs.items():
        lines += [
            f"| {name} | {r['stable_frames']} | {r['visits_scanned_once']} | "
            f"{r['spurious_scans']} | {r['visits_missed']} | {r['visits_scanned_right']} | "
            f"{r['median_latency_frames']} |"
            for r in rows
        ]
    lines += [
        "",
        f"Fewest spurious scans + missed visits (item as enrolled): **--stable-frames {best}**.",
    ]
    (RESULTS / "debounce.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
