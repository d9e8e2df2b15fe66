"""Run itemrec's own commands for a benchmark: one in the foreground, or a batch two at a time.

The commands come from this interpreter's environment (``itemrec-train`` next to
``sys.executable``), so a benchmark works from ``.venv/bin/python`` without activating it.
A batch runs ``jobs`` commands at once, each logging to its own file: preparing models is
mostly single-threaded Python (tracing, saving, converting), so two at a time use both cores
of a small machine. Nothing is timed while a batch runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SAMPLE_TRAIN = ROOT / "data" / "sample" / "train"
SAMPLE_UNSEEN = ROOT / "data" / "sample" / "unseen"
REFERENCE_RUN = ROOT / "build" / "bench_convert" / "run"  # bench_convert trains, int8_study reads
DEVDATA = ROOT / "build" / "devdata"  # `make devdata`
RESULTS = ROOT / "benchmarks" / "results"
LOG_TAIL_LINES = 15


def write_results(name: str, rows: list[dict], table: str) -> None:
    """``results/<name>.json`` (the rows) and ``results/<name>.md`` (the table); print the table."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    print(table)


def train_command(
    run_dir: Path, backbone: str, size: int, *options, data: Path = SAMPLE_TRAIN
) -> list:
    """``itemrec-train`` of ``backbone`` at ``size`` px on ``data`` (default: the sample)."""
    return [
        "itemrec-train",
        "--data",
        data,
        "--out",
        run_dir,
        "--backbone",
        backbone,
        "--image-size",
        size,
        *options,
    ]


def _argv(command: list) -> list[str]:
    argv = [str(part) for part in command]
    return [str(BIN / argv[0]), *argv[1:]]


def show(command: list) -> str:
    """The command as a user would type it from the repository root."""
    parts = []
    for part in command:
        if isinstance(part, Path) and part.resolve().is_relative_to(ROOT):
            part = part.resolve().relative_to(ROOT)
        parts.append(str(part))
    return " ".join(parts)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(command: list) -> int:
    """Run one command with its output on this terminal; its exit status."""
    _say("$ " + show(command))
    return subprocess.run(_argv(command), cwd=ROOT).returncode


def run_batch(
    commands: dict[str, list], logs: Path, jobs: int = 2, env: dict[str, dict] | None = None
) -> dict[str, int]:
    """Run ``commands`` (name -> argv), ``jobs`` at a time, in the given order.

    Each writes ``logs/<name>.log``; a line says when each starts and ends, and a failing
    command's last lines are shown. ``env``: name -> variables added to that command's
    environment. Returns name -> exit status.
    """
    logs.mkdir(parents=True, exist_ok=True)
    waiting, running, codes = list(commands), {}, {}
    started = time.perf_counter()
    while waiting or running:
        while waiting and len(running) < max(jobs, 1):
            name = waiting.pop(0)
            log = logs / f"{name}.log"
            _say(f"[{len(codes) + len(running) + 1}/{len(commands)}] $ {show(commands[name])}")
            with log.open("w") as handle:
                process = subprocess.Popen(
                    _argv(commands[name]),
                    cwd=ROOT,
                    env={**os.environ, **(env or {}).get(name, {})},
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            running[name] = (process, log, time.perf_counter())
        time.sleep(0.5)
        for name, (process, log, begun) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            codes[name] = process.returncode
            elapsed = time.perf_counter() - begun
            _say(f"{name}: exit {process.returncode} after {elapsed:.0f} s (log: {show([log])})")
            if process.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                _say("\n".join("    " + line for line in tail))
    _say(f"{len(commands)} commands in {time.perf_counter() - started:.0f} s, {jobs} at a time")
    return codes
