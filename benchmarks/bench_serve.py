"""Load on ``itemrec-edge serve``: identifications while items are enrolled and deleted.

Starts a real server on 127.0.0.1 (int8 EfficientNet-Lite0 at 224 px, a 10,000-item gallery,
a 640x480 video at 30 frames/s as its camera, so the live loop runs all along) and, for at
most ``--seconds`` and ``--max-requests`` identifications:

* ``--clients`` clients post photos of the bundled sample's unseen items to ``/v1/identify``;
* two clients enrol new items (two photos each) and delete every other one they enrolled;
* one client watches the MJPEG live view.

Reports requests/s, p50/p95/p99 latency, errors (any status but the expected, or a failed
connection: goal 0) and items lost (enrolled, not deleted, yet missing from ``/v1/items`` and
from the SQLite file, or deleted yet still there: goal 0), and the server's resident memory
(``VmRSS`` once started, ``VmHWM`` at the end) with the 10,000-item gallery. Loopback only.

    python benchmarks/bench_serve.py [--seconds 30] [--clients 4] [--max-requests 3000]

Writes ``benchmarks/results/serve.json`` and ``serve.md``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import click
import cv2
import httpx
import numpy as np
from bench_edge import make_video
from commands import BIN, ROOT, SAMPLE_UNSEEN, show
from edge_models import lite0_int8_224

from itemrec.edge_runtime.folders import scan_class_folders
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.live import draw_overlay
from itemrec.edge_runtime.lookup import Identification, Match

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "build" / "bench_serve"
GALLERY_ITEMS = 10_000
CHURN_CLIENTS = 2


def build_gallery(model_path: Path, path: Path) -> Path:
    """The sample's 100 unseen items (first image each) + random items up to 10,000 (cached)."""
    if path.exists():
        return path
    model = EmbeddingModel(model_path)
    partial = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    with Gallery.create(partial, model.spec) as gallery:
        classes = scan_class_folders(SAMPLE_UNSEEN)
        for code, paths in classes.items():
            gallery.enroll(code, code, model.embed_many([load_image(paths[0])]))
        dim = model.spec.embedding_size
        for n in range(GALLERY_ITEMS - len(classes)):
            vector = rng.normal(size=(1, dim)).astype(np.float32)
            gallery.enroll(f"R{n:05d}", f"random {n}", vector / np.linalg.norm(vector))
    partial.rename(path)
    return path


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) for key in ("VmRSS", "VmHWM")}


def encode_ms(runs: int = 100) -> float:
    """Mean ms to draw the overlay on a 640x480 frame and encode it as the live view does."""
    frame = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = Identification([Match("4711", "Eau de Cologne", 0.9)], 0.5)
    began = time.perf_counter()
    for _ in range(runs):
        image = frame.copy()
        draw_overlay(image, result, 30.0, 0.6)
        cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return 1e3 * (time.perf_counter() - began) / runs


class Server:
    def __init__(self, command: list):
        self.process = subprocess.Popen(
            [str(part) for part in command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for line in self.process.stderr:
            found = re.search(rb"listening on (http://\S+)/", line)
            if found:
                self.url = found.group(1).decode()
                break
        else:
            raise SystemExit(f"the server did not start (exit {self.process.wait()})")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=30)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)  # code -> photos, enrolled and kept
    deleted: set[str] = field(default_factory=set)
    stream_frames: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, expected: int, request, *args, **kwargs):
        """``request(*args, **kwargs)``, timed; the response, or None (counted as an error)."""
        began = time.perf_counter()
        try:
            response = request(*args, **kwargs)
        except httpx.HTTPError as error:
            with self.lock:
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
            return None
        with self.lock:
            self.latencies[kind].append(time.perf_counter() - began)
            if response.status_code != expected:
                self.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
                return None
        return response


def identify_client(url, photos, tally, deadline, budget):
    rng = np.random.default_rng(threading.get_ident() % 2**32)
    with httpx.Client(base_url=url, timeout=60) as http:
        while time.monotonic() < deadline and budget.acquire(blocking=False):
            name, data = photos[rng.integers(len(photos))]
            files = {"image": (name, data, "image/png")}
            tally.timed("identify", 200, http.post, "/v1/identify", files=files)


def churn_client(url, client, photos, tally, deadline):
    """Enrol items with two photos each; delete every other one right after its successor."""
    with httpx.Client(base_url=url, timeout=60) as http:
        n, previous = 0, None
        while time.monotonic() < deadline:
            code = f"bench-{client}-{n:05d}"
            files = [("photos", photos[(n + k) % len(photos)]) for k in (0, 1)]
            data = {"code": code, "name": f"bench item {n}"}
            if tally.timed("enroll", 201, http.post, "/v1/items", data=data, files=files):
                with tally.lock:
                    tally.kept[code] = 2
            if n % 2 == 1 and previous is not None:
                if tally.timed("delete", 204, http.delete, f"/v1/items/{previous}"):
                    with tally.lock:
                        tally.kept.pop(previous, None)
                        tally.deleted.add(previous)
            previous, n = code, n + 1


def stream_client(url, tally, deadline):
    with httpx.Client(base_url=url, timeout=60) as http:
        with http.stream("GET", "/v1/stream.mjpg") as stream:
            for chunk in stream.iter_bytes():
                tally.stream_frames += chunk.count(b"--frame\r\n")
                if time.monotonic() >= deadline:
                    break


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ms = 1e3 * np.asarray(values)
    return {
        "count": len(values),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
        "max_ms": round(float(ms.max()), 1),
    }


def lost_items(url: str, db: Path, tally: Tally, initial: set[str]) -> dict:
    with httpx.Client(base_url=url, timeout=60) as http:
        listed = {i["code"]: i["representatives"] for i in http.get("/v1/items").json()["items"]}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        stored = {code for (code,) in connection.execute("SELECT code FROM items")}
    expected = initial | tally.kept.keys()
    wrong_count = [c for c, n in tally.kept.items() if listed.get(c) not in (None, n)]
    return {
        "expected": len(expected),
        "listed": len(listed),
        "lost": sorted((expected - listed.keys()) | (expected - stored)),
        "deleted_but_present": sorted(tally.deleted & (listed.keys() | stored)),
        "wrong_representatives": wrong_count,
    }


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seconds", default=30.0, show_default=True, type=click.FloatRange(1, 300))
@click.option("--clients", default=4, show_default=True, type=click.IntRange(1, 32))
@click.option("--max-requests", default=3000, show_default=True, type=click.IntRange(1))
@click.option("--threads", default=None, type=click.IntRange(min=1), help="Server's --threads.")
def main(seconds, clients, max_requests, threads):
    """Identifications under enrolment churn on a local server; results/serve.{json,md}."""
    WORK.mkdir(parents=True, exist_ok=True)
    model = lite0_int8_224()
    db = build_gallery(model, WORK / "gallery_10k.db")
    run_db = WORK / "run.db"  # the load changes the gallery: start from a copy each time
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run_db}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(db) as source, sqlite3.connect(run_db) as target:
        source.backup(target)
    video = WORK / "camera.avi"
    if not video.exists():
        make_video(video, 300)
    photos = [
        (paths[0].name, paths[0].read_bytes())
        for paths in list(scan_class_folders(SAMPLE_UNSEEN).values())[:50]
    ]
    command = [BIN / "itemrec-edge", "serve", "--model", model, "--db", run_db]
    command += ["--camera", video, "--port", 0] + (["--threads", threads] if threads else [])
    click.echo("$ " + show(command), err=True)
    load_average = os.getloadavg()[0]  # this machine is shared: say how busy it was
    server = Server(command)
    tally = Tally()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            initial = {i["code"] for i in http.get("/v1/items").json()["items"]}
            for _ in range(5):  # warm-up: the first requests allocate
                http.post("/v1/identify", files={"image": photos[0]})
        started = memory_kib(server.process.pid)
        budget = threading.Semaphore(max_requests)
        began = time.monotonic()
        deadline = began + seconds
        workers = [
            threading.Thread(
                target=identify_client, args=(server.url, photos, tally, deadline, budget)
            )
            for _ in range(clients)
        ]
        workers += [
            threading.Thread(target=churn_client, args=(server.url, c, photos, tally, deadline))
            for c in range(CHURN_CLIENTS)
        ]
        workers.append(threading.Thread(target=stream_client, args=(server.url, tally, deadline)))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=seconds + 120)
        elapsed = time.monotonic() - began
        with httpx.Client(base_url=server.url, timeout=60) as http:
            health = http.get("/healthz").json()
        peak = memory_kib(server.process.pid)
        items = lost_items(server.url, run_db, tally, initial)
    finally:
        exit_code = server.stop()
    identify = tally.latencies["identify"]
    result = {
        "command": " ".join(["python benchmarks/bench_serve.py", *sys.argv[1:]]),
        "load_average_1min": round(load_average, 1),
        "server": show(command),
        "seconds": round(elapsed, 1),
        "identify_clients": clients,
        "churn_clients": CHURN_CLIENTS,
        "gallery_items": len(initial),
        "identify": {"requests_per_s": round(len(identify) / elapsed, 1), **percentiles(identify)},
        "enroll": percentiles(tally.latencies["enroll"]),
        "delete": percentiles(tally.latencies["delete"]),
        "errors": len(tally.errors),
        "error_examples": tally.errors[:5],
        "items": items,
        "items_lost": len(items["lost"]) + len(items["deleted_but_present"]),
        "camera_fps_at_end": health["fps"],
        "stream_frames_per_s": round(tally.stream_frames / elapsed, 1),
        "overlay_and_jpeg_ms": round(encode_ms(), 2),
        "memory_mib": {
            "rss_started": round(started["VmRSS"] / 1024, 1),
            "rss_end": round(peak["VmRSS"] / 1024, 1),
            "peak": round(peak["VmHWM"] / 1024, 1),
        },
        "server_exit_code": exit_code,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "serve.md").write_text(markdown(result))
    click.echo(markdown(result))
    sys.exit(1 if result["errors"] or result["items_lost"] or exit_code else 0)


def markdown(r: dict) -> str:
    i, e, d, m = r["identify"], r["enroll"], r["delete"], r["memory_mib"]
    return (
        f"`{r['command']}` on 127.0.0.1: `{r['server']}`\n\n"
        f"{r['identify_clients']} clients identifying and {r['churn_clients']} enrolling and "
        f"deleting for {r['seconds']} s, one watching the live view; gallery of "
        f"{r['gallery_items']:,} items (int8 EfficientNet-Lite0, 224 px); 1-minute load "
        f"average {r['load_average_1min']} on this machine's 2 cores before the run.\n\n"
        "| requests | count | per s | p50 ms | p95 ms | p99 ms | max ms |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| identify | {i['count']} | {i['requests_per_s']} | {i.get('p50_ms')} | "
        f"{i.get('p95_ms')} | {i.get('p99_ms')} | {i.get('max_ms')} |\n"
        f"| enroll (2 photos) | {e['count']} | | {e.get('p50_ms')} | {e.get('p95_ms')} | "
        f"{e.get('p99_ms')} | {e.get('max_ms')} |\n"
        f"| delete | {d['count']} | | {d.get('p50_ms')} | {d.get('p95_ms')} | "
        f"{d.get('p99_ms')} | {d.get('max_ms')} |\n\n"
        f"- errors: **{r['errors']}**; items lost: **{r['items_lost']}** "
        f"({r['items']['expected']} expected, {r['items']['listed']} listed)\n"
        f"- camera loop at the end: {r['camera_fps_at_end']} frames/s; live view delivered "
        f"{r['stream_frames_per_s']} frames/s; overlay + JPEG of a 640x480 frame: "
        f"{r['overlay_and_jpeg_ms']} ms\n"
        f"- server memory: {m['rss_started']} MiB resident once started, {m['rss_end']} MiB "
        f"at the end, peak {m['peak']} MiB\n"
    )


if __name__ == "__main__":
    main()
