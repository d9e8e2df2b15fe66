"""The live loop: newest camera frame -> centre region -> embedding -> lookup -> events.

``run_live`` publishes the scan event stream (``itemrec.edge_runtime.events``: ``ready``, one
``scan`` per confirmed item, ``camera_lost``) and shows every frame to a display (a window, or
nothing when headless). It returns when stopped on purpose (``--max-frames`` reached, Ctrl-C,
SIGTERM, ``q`` in the window, or the caller's ``stop`` event) and raises ``CameraLostError``
when the camera stops delivering frames. Another front end (``itemrec-edge serve``) runs the
same function in a thread with its own ``EventStream`` subscriber and ``stop`` event.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from itemrec.edge_runtime.camera import FrameGrabber, center_roi, roi_box
from itemrec.edge_runtime.errors import CameraLostError
from itemrec.edge_runtime.events import (
    DEFAULT_STABLE_FRAMES,
    CameraLost,
    Debouncer,
    EventStream,
    Ready,
)
from itemrec.edge_runtime.interpreter import EmbeddingModel
from itemrec.edge_runtime.lookup import GalleryLookup, Identification

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class LiveOptions:
    roi: float = 0.6
    top_k: int = 3
    max_frames: int | None = None
    stall_seconds: float = 10.0  # no frame for this long counts as a lost camera
    stable_frames: int = DEFAULT_STABLE_FRAMES  # consecutive frames that confirm a scan
    min_score: float | None = None  # a scan's least score (None: the gallery's threshold)


def opencv_has_gui() -> bool:
    """True when this OpenCV was built with a GUI backend (not the headless wheel)."""
    gui = next(
        (line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI")),
        "",
    )
    return bool(gui) and gui.split(":", 1)[-1].strip().upper() not in ("", "NONE")


def has_display() -> bool:
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    return sys.platform != "linux" or bool(has_display)


def gui_available() -> bool:
    """True when OpenCV was built with a GUI backend and a display is there to show it on."""
    return opencv_has_gui() and has_display()


def no_gui_reason() -> str:
    """Why there can be no window, and what to do (for the one-line error)."""
    installed = set()
    for dist in ("opencv-python", "opencv-python-headless"):
        try:
            importlib.metadata.version(dist)
            installed.add(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    if len(installed) == 2:
        return (
            "opencv-python and opencv-python-headless are both installed and overwrite each "
            "other's cv2: use --headless, or pip uninstall -y opencv-python "
            "opencv-python-headless and reinstall with the edge-gui extra (docs/raspberry-pi.md)"
        )
    if not opencv_has_gui():
        return (
            "this OpenCV has no GUI (the headless wheel): use --headless, or pip uninstall -y "
            "opencv-python-headless and reinstall with the edge-gui extra (docs/raspberry-pi.md)"
        )
    return "there is no display (DISPLAY and WAYLAND_DISPLAY are unset): use --headless"


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


class NoDisplay:
    """Headless: frames are not shown; the event stream is the output."""

    def show(self, frame_number: int, frame: np.ndarray, result: Identification, fps: float):
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
    events: EventStream | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run until stopped on purpose; return the number of frames recognised.

    Publishes ``Ready`` at the first frame, a ``Scan`` per confirmed item and, before raising
    ``CameraLostError`` (no frame for ``options.stall_seconds``, or the grabber gave up),
    ``CameraLost``. Setting ``stop`` (or SIGTERM, in the main thread) ends the loop.
    """
    events = events if events is not None else EventStream()
    stop = stop if stop is not None else threading.Event()
    restore = _stop_on_sigterm(stop)
    fps_meter = FpsMeter()
    debouncer = Debouncer(options.stable_frames, options.min_score)
    frames = 0
    last_frame_at = last_refresh = time.monotonic()
    try:
        grabber.start()
        while not stop.is_set():
            try:
                frame = grabber.latest(timeout=0.5)
                now = time.monotonic()
                if frame is None and now - last_frame_at > options.stall_seconds:
                    raise CameraLostError(
                        f"no frame from camera {grabber.source!r} for {options.stall_seconds:g} s"
                    )
            except CameraLostError as error:
                events.publish(CameraLost(source=str(grabber.source), reason=error.one_line()))
                raise
            if frame is None:
                continue
            if frames == 0:
                ready = Ready(
                    source=str(grabber.source),
                    items=lookup.item_count,
                    stable_frames=options.stable_frames,
                    min_score=options.min_score,
                )
                events.publish(ready)
            last_frame_at = now
            if now - last_refresh >= REFRESH_SECONDS:
                lookup.refresh()
                last_refresh = now
            rgb = cv2.cvtColor(center_roi(frame, options.roi), cv2.COLOR_BGR2RGB)
            result = lookup.identify(model.embed(rgb), options.top_k)
            frames += 1
            scan = debouncer.update(result, frames)
            if scan is not None:
                events.publish(scan)
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
