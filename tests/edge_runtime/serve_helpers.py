"""A real ``itemrec-edge serve`` process on loopback for the API and browser tests."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from edge_helpers import INT8_MODEL, ITEM_IMAGES, write_png

from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.interpreter import EmbeddingModel

NAMES = {"A": "Apple juice", "B": "Bread", "C": "Coffee"}
START_SECONDS = 60  # two cores shared by many: imports alone took 2.5 s on a busy one


def make_gallery(path: Path, images: np.ndarray) -> Path:
    """A gallery of items A, B, C (one representative each) made with the tiny int8 model."""
    model = EmbeddingModel(INT8_MODEL)
    with Gallery.create(path, model.spec) as gallery:
        for code, index in ITEM_IMAGES.items():
            gallery.enroll(code, NAMES[code], model.embed_many(images[index : index + 1]))
    return path


FRAME_SIZE = (320, 240)  # width, height of the camera's frames
ITEM_SIZE = 144  # the item fills the square the model sees of the default --roi 0.6


def camera_video(
    path: Path,
    image: np.ndarray,
    seconds: float,
    fps: int = 10,
    first: tuple[np.ndarray, float] | None = None,
) -> Path:
    """A 320 x 240 MJPG video showing ``image`` in the middle of a grey shelf for ``seconds``,
    after ``first`` (another image and its seconds) if given (the server's camera; 10 frames/s
    keep the file quick to write)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, FRAME_SIZE)
    assert writer.isOpened()
    for shown, duration in ([first] if first else []) + [(image, seconds)]:
        frame = _on_shelf(shown)
        for _ in range(round(fps * duration)):
            writer.write(frame)
    writer.release()
    return path


def _on_shelf(image: np.ndarray) -> np.ndarray:
    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 90, np.uint8)
    top, left = (height - ITEM_SIZE) // 2, (width - ITEM_SIZE) // 2
    item = cv2.resize(image, (ITEM_SIZE, ITEM_SIZE), interpolation=cv2.INTER_NEAREST)
    frame[top : top + ITEM_SIZE, left : left + ITEM_SIZE] = cv2.cvtColor(item, cv2.COLOR_RGB2BGR)
    return frame


def photo(path: Path, image: np.ndarray) -> Path:
    return write_png(path, image, scale=4)


class Server:
    """``itemrec-edge serve`` in a subprocess; stdout (event lines) and stderr are collected."""

    def __init__(self, db: Path, *extra, camera: Path | None = None, token: str | None = None):
        command = [sys.executable, "-m", "itemrec.edge_runtime.cli", "serve"]
        command += ["--model", str(INT8_MODEL), "--db", str(db), "--port", "0"]
        if camera is not None:
            command += ["--camera", str(camera)]
        command += [str(arg) for arg in extra]
        self.token = token
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        threading.Thread(target=self._drain, args=(self.process.stderr, self.stderr)).start()
        threading.Thread(target=self._drain, args=(self.process.stdout, self.stdout)).start()
        if not self._listening.wait(START_SECONDS):
            self.stop()
            raise AssertionError("the server did not start:\n" + "".join(self.stderr))

    def _drain(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                self.url = found.group(1).rstrip("/")
                self._listening.set()

    def client(self, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers, **kwargs)

    def events(self) -> list[dict]:
        return [json.loads(line) for line in list(self.stdout)]

    def wait_for_event(self, kind: str, timeout: float = 30.0, after: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events()[after:]:
                if event["event"] == kind:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event in {timeout} s: {self.events()}")

    def stop(self) -> int:
        """SIGTERM, then the exit status (the server must stop by itself within 15 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
