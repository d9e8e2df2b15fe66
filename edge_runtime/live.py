"""The live loop: newest camera frame -> centre region -> embedding -> lookup -> window or JSON.

``run_live`` returns when stopped on purpose (``--max-frames`` reached, Ctrl-C, SIGTERM, ``q``
in the window) and raises ``CameraLostError`` when the camera stops delivering frames.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

import cv2
import numpy as np

from itemrec.edge_runtime.camera import FrameGrabber, center_roi, roi_box
from itemrec.edge_runtime.errors import CameraLostError
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import GalleryLookup, Identification

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class LiveOptions:
    roi: float = 0.6
    top_k: int = 3
    max_frames: int | None = None
    stall_seconds: float = 10.0  # no frame for this long counts as a lost camera


def gui_available() -> bool:
    """True when OpenCV was built with a GUI backend and a display is there to show it on."""
    gui = next(
        (line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI")),
        "",
    )
    if not gui or gui.split(":", 1)[-1].strip().upper() in ("", "NONE"):
        return False
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    return sys.platform != "linux" or bool(has_display)


class FpsMeter:
    """Frames per second as an exponential moving average of frame intervals."""

    def __init__(self, smoothing: float = 0.9):
        self.smoothing = smoothing
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self) -> float:
        now = time.perf_counter()
        if self._last is not None:
            dt = now - self._last
            s = self.smoothing
            self._interval = dt if self._interval is None else s * self._interval + (1 - s) * dt
        self._last = now
        return 1.0 / self._interval if self._interval else 0.0


class JsonLinesReporter:
    """Headless output: one JSON line whenever the recognised item changes (null = unknown)."""

    def __init__(self, out: TextIO):
        self.out = out
        self._shown: object = object()  # nothing printed yet

    def show(self, frame_number: int, frame: np.ndarray, result: Identification, fps: float):
        item = result.item
        code = item.code if item else None
        if code == self._shown:
            return True
        self._shown = code
        line = {"frame": frame_number, "time": round(time.time(), 3), "fps": round(fps, 2)}
        line.update(result.to_dict())
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()
        return True

    def close(self) -> None:
        pass


class WindowDisplay:
    """An OpenCV window with the region of interest, the answer and the frame rate drawn on."""

    def __init__(self, roi: float, title: str = "itemrec"):
        self.roi, self.title = roi, title

    def show(self, frame_number: int, frame: np.ndarray, result: Identification, fps: float):
        draw_overlay(frame, result, fps, self.roi)
        cv2.imshow(self.title, frame)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyAllWindows()


def draw_overlay(frame: np.ndarray, result: Identification, fps: float, roi: float) -> None:
    """Draw the ROI box, the item (name, code, score) or "unknown", and the FPS, in place."""
    top, left, height, width = roi_box(frame.shape[0], frame.shape[1], roi)
    item = result.item
    color = (0, 200, 0) if item else (0, 0, 255)
    cv2.rectangle(frame, (left, top), (left + width, top + height), color, 2)
    if item:
        label = f"{item.name} ({item.code}) {item.score:.2f}"
    else:
        best = result.matches[0].score if result.matches else float("nan")
        label = f"unknown ({best:.2f})"
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(frame, label, (10, 30), font, 0.8, color, 2, cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} FPS", (10, 60), font, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


def run_live(
    model: EmbeddingModel,
    lookup: GalleryLookup,
    grabber: FrameGrabber,
    display,
    options: LiveOptions,
) -> int:
    """Run until stopped on purpose; return the number of frames recognised.

    Raises ``CameraLostError`` when no frame comes for ``options.stall_seconds`` or the
    grabber gives up.
    """
    stop = threading.Event()
    restore = _stop_on_sigterm(stop)
    fps_meter = FpsMeter()
    frames = 0
    last_frame_at = last_refresh = time.monotonic()
    try:
        grabber.start()
        while not stop.is_set():
            frame = grabber.latest(timeout=0.5)
            now = time.monotonic()
            if frame is None:
                if now - last_frame_at > options.stall_seconds:
                    raise CameraLostError(
                        f"no frame from camera {grabber.source!r} for {options.stall_seconds:g} s"
                    )
                continue
            last_frame_at = now
            if now - last_refresh >= REFRESH_SECONDS:
                lookup.refresh()
                last_refresh = now
            result = lookup.identify(model.embed_bgr(center_roi(frame, options.roi)), options.top_k)
            frames += 1
            if not display.show(frames, frame, result, fps_meter.tick()):
                break
            if options.max_frames is not None and frames >= options.max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        grabber.stop()
        display.close()
        restore()
    return frames


def _stop_on_sigterm(stop: threading.Event):
    """Make SIGTERM set ``stop`` (main thread only); return a function restoring the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    return lambda: signal.signal(signal.SIGTERM, previous)
