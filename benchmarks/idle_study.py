"""What waiting for the camera costs the next frame's calls, apart from the loop's own code.

The live loop at 30 fps is idle most of each 33 ms frame. ``bench_edge`` finds the loop's
work 1.2-1.9 x a back-to-back ``invoke()`` for small models; this study asks how much of that
is the machine's, by timing the same calls three ways, in interleaved rounds:

- back to back (the baseline ``bench_edge`` divides by);
- after a 33 ms sleep (the core idles: caches, clocks and the thread pool may go cold);
- after 33 ms of spinning on the same core (busy, but on nothing the calls use).

The calls: the model's ``invoke()`` on a prepared input, and the loop's lookup
(``Lookup.identify``, top-3 of a random 1,000-item gallery) and its 1,000 x 128 product alone.
If sleeping and spinning cost the same, waking up is not the cause and spinning in the loop
would not help; if both cost more than back to back, no change to the loop's code can bring
its work down to the back-to-back invoke on this machine.

    python benchmarks/idle_study.py [--model M.tflite ...] [--runs 200] [--threads 1 --threads 2]
        [--results-name idle_study]

Without ``--model`` it times Lite0 int8 at 96 px (bench_convert's run) and at 224 px
(``edge_models``). 1 thread runs pinned to one core (like ``taskset -c 0``).
Writes ``benchmarks/results/<results-name>.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import click
import numpy as np
from bench_edge import on_one_core, random_lookup
from edge_models import CONVERTED, lite0_int8_224

from itemrec.edge_runtime.interpreter import EmbeddingModel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FRAME_S = 1 / 30
WAITS = ("back to back", "after sleep", "after spin")
ROUNDS = 10


def wait(how: str) -> None:
    """Nothing, or one camera frame's time asleep or spinning."""
    if how == "after sleep":
        time.sleep(FRAME_S)
    elif how == "after spin":
        end = time.perf_counter() + FRAME_S
        while time.perf_counter() < end:
            pass


def timed_ms(call, how: str, runs: int) -> list[float]:
    """ms of each of ``runs`` calls, each after ``wait(how)``."""
    times = []
    for _ in range(runs):
        wait(how)
        t0 = time.perf_counter()
        call()
        times.append(1e3 * (time.perf_counter() - t0))
    return times


def study(model_path: Path, threads: int, runs: int) -> dict:
    """Median ms of each call after each kind of wait, the waits interleaved in rounds."""
    model = EmbeddingModel(model_path, threads=threads)
    lookup = random_lookup(1000, model.spec.embedding_size)
    tensor = model.prepare(np.zeros((480, 640, 3), np.uint8))
    query = model.finish(model.invoke(tensor))
    calls = {
        "invoke": lambda: model.invoke(tensor),
        "identify": lambda: lookup.identify(query, 3),
        "product": lambda: lookup.matrix @ query,
    }
    for call in calls.values():  # warm-up
        timed_ms(call, "back to back", 10)
    times = {(c, w): [] for c in calls for w in WAITS}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            for how in WAITS:
                times[name, how] += timed_ms(call, how, max(1, runs // ROUNDS))
    medians = {f"{c} {w}": round(float(np.median(t)), 4) for (c, w), t in times.items()}
    return {
        "model": model_path.name,
        "input": f"{model.spec.input_height}x{model.spec.input_width}",
        "threads": threads,
        "cpus": len(os.sched_getaffinity(0)),
        **medians,
    }


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| model | input | threads | cpus | call | back to back ms | after sleep | after spin "
        "| sleep / b2b | spin / b2b |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for call in ("invoke", "identify", "product"):
            b2b, slept, spun = (r[f"{call} {w}"] for w in WAITS)
            lines.append(
                f"| {r['model']} | {r['input']} | {r['threads']} | {r['cpus']} | {call} | "
                f"{b2b:.3f} | {slept:.3f} | {spun:.3f} | {slept / b2b:.2f} | {spun / b2b:.2f} |"
            )
    return lines


@click.command()
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--runs", default=200, show_default=True, help="Calls per call and wait.")
@click.option("--threads", "thread_counts", multiple=True, type=int, default=(1, 2))
@click.option("--results-name", default="idle_study", show_default=True)
def main(models, runs, thread_counts, results_name):
    """Time invoke and lookup back to back, after a frame's sleep and after a frame's spin."""
    if not models:
        models = [CONVERTED / "int8.tflite", lite0_int8_224()]
    rows = []
    for model in map(Path, models):
        for threads in thread_counts:
            if threads == 1:
                rows.append(on_one_core(study, model, threads, runs))
            else:
                rows.append(study(model, threads, runs))
    RESULTS.mkdir(exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    (RESULTS / f"{results_name}.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2)
    )
    lines = [
        "Median ms of each call back to back, after a 33 ms sleep and after 33 ms of spinning "
        f"(one camera frame at 30 fps), interleaved in {ROUNDS} rounds; identify: top-3 of a "
        "random 1,000-item gallery; product: its 1,000 x 128 matrix times the query. "
        f"1 thread pinned to one core. {machine} at the end.",
        "",
        *table(rows),
    ]
    (RESULTS / f"{results_name}.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
