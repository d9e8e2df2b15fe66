"""Helpers for the training tests: a tiny backbone, synthetic class folders, and processes
(``itemrec-train`` workers of a cluster on loopback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def tiny_backbone(image_size: int = 32, seed: int = 0):
    """A two-conv backbone without batch norm (deterministic across replica counts)."""
    from itemrec.train.keras_api import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", kernel_initializer=init)(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", kernel_initializer=init)(x)
    return keras.Model(inputs, x, name="tiny")


COLORS = [
    (220, 30, 30),
    (30, 200, 40),
    (40, 60, 230),
    (240, 220, 20),
    (200, 40, 220),
    (20, 210, 210),
]


def write_class_folders(root, classes: int = 5, per_class: int = 3, size: int = 32, seed: int = 0):
    """``root/<code>/<n>.png``: each class a coloured shape, each image a jittered copy."""
    import cv2

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for c in range(classes):
        folder = root / f"item{c:02d}"
        folder.mkdir(exist_ok=True)
        for i in range(per_class):
            image = np.full((size, size, 3), 90, np.uint8)
            center = (size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4)))
            color = tuple(int(v) for v in COLORS[c % len(COLORS)])
            if c % 2:
                cv2.circle(image, center, size // 3, color, -1)
            else:
                half = size // 3
                cv2.rectangle(
                    image,
                    (center[0] - half, center[1] - half),
                    (center[0] + half, center[1] + half),
                    color,
                    -1,
                )
            image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i}.png"), image[:, :, ::-1])
    return root


TRAIN_COMMAND = [sys.executable, "-m", "itemrec.train.cli"]


class Processes:
    """Processes a test starts, each logging to ``logs/<name>.log``; on leaving the block,
    every one still running is killed (a failing test leaves none behind)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *error) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def start(self, name: str, argv: list, env: dict | None = None) -> None:
        with open(self.logs / f"{name}.log", "w") as log:
            self.running[name] = subprocess.Popen(
                [str(part) for part in argv],
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait(self, name: str, timeout: float) -> int:
        """The exit status of ``name``; fails the test (with the log's tail) on a timeout."""
        try:
            return self.running[name].wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running after {timeout} s:\n{self.log(name)[-3000:]}")

    def kill(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGKILL)
        self.running[name].wait()

    def poll(self, name: str) -> int | None:
        return self.running[name].poll()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


def start_workers(processes: Processes, workers: list[str], args: list, tmp: Path) -> None:
    """``itemrec-train args`` as every worker of the loopback cluster ``workers``.

    Worker ``i``'s temporary files go to ``tmp/worker<i>`` (its ``TMPDIR``), for the test to
    check that nothing is left there.
    """
    from itemrec.train.distribute import tf_config

    for index in range(len(workers)):
        temporary = tmp / f"worker{index}"
        temporary.mkdir(parents=True, exist_ok=True)
        env = {"TF_CONFIG": tf_config(workers, index), "TMPDIR": str(temporary)}
        processes.start(f"worker{index}", [*TRAIN_COMMAND, *args], env)
