"""Camera capture in its own thread: the newest frame wins, so inference never waits on it.

A source is a camera index (``0``), a video file, a stream URL or a GStreamer pipeline string
(it contains ``!``). A file is played at its own frame rate, like a camera. When the source
stops delivering frames the reader retries (re-opening live sources), then gives up and
``FrameGrabber.failed`` says why.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from itemrec.edge_runtime.errors import CameraError, CameraLostError


def parse_source(text: str | int) -> int | str:
    """``"0"`` -> camera index 0; anything else is a path, URL or pipeline string."""
    if isinstance(text, int):
        return text
    return int(text) if text.strip().isdigit() else text


def open_capture(source: int | str) -> cv2.VideoCapture:
    """Open ``source`` with OpenCV; raise ``CameraError`` when it cannot be opened."""
    if isinstance(source, str) and "!" in source:
        capture = cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
    else:
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise CameraError(f"cannot open camera {source!r}")
    return capture


def center_roi(frame: np.ndarray, fraction: float) -> np.ndarray:
    """The centred region covering ``fraction`` of the frame's width and height (a view)."""
    top, left, height, width = roi_box(frame.shape[0], frame.shape[1], fraction)
    return frame[top : top + height, left : left + width]


def roi_box(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """``(top, left, roi_height, roi_width)`` of the centred region of interest."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the region of interest is a fraction in (0, 1], got {fraction}")
    roi_h, roi_w = max(1, round(height * fraction)), max(1, round(width * fraction))
    return (height - roi_h) // 2, (width - roi_w) // 2, roi_h, roi_w


class FrameGrabber:
    """Read frames continuously in a daemon thread and keep only the newest (BGR)."""

    def __init__(
        self,
        source: int | str,
        *,
        retries: int = 5,
        retry_delay: float = 0.2,
        realtime: bool | None = None,
    ):
        self.source = parse_source(source)
        self.retries = retries
        self.retry_delay = retry_delay
        is_file = isinstance(self.source, str) and Path(self.source).is_file()
        self._live = not is_file
        self._realtime = is_file if realtime is None else realtime
        self._condition = threading.Condition()
        self._frame: np.ndarray | None = None
        self._sequence = 0
        self._consumed = 0
        self._stop = threading.Event()
        self.failed: str | None = None
        self._capture = open_capture(self.source)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self._period = 1.0 / fps if self._realtime and fps and 0 < fps < 1000 else 0.0
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)

    def start(self) -> FrameGrabber:
        self._thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        next_due = time.monotonic()
        while not self._stop.is_set():
            ok, frame = self._capture.read()
            if ok and frame is not None:
                failures = 0
                with self._condition:
                    self._frame = frame
                    self._sequence += 1
                    self._condition.notify_all()
                if self._period:
                    next_due += self._period
                    self._stop.wait(max(0.0, next_due - time.monotonic()))
                continue
            failures += 1
            if failures > self.retries:
                self._give_up(
                    f"camera {self.source!r} stopped delivering frames "
                    f"({self.retries} retries, {self.retry_delay:g} s apart)"
                )
                return
            self._stop.wait(self.retry_delay)
            next_due = time.monotonic()
            if self._live:
                self._reopen()

    def _reopen(self) -> None:
        self._capture.release()
        try:
            self._capture = open_capture(self.source)
        except CameraError:
            self._capture = cv2.VideoCapture()  # read() fails: counts as the next retry

    def _give_up(self, reason: str) -> None:
        with self._condition:
            self.failed = reason
            self._condition.notify_all()

    def latest(self, timeout: float = 1.0) -> np.ndarray | None:
        """The newest frame not yet returned, waiting up to ``timeout`` s; None if none came.

        Raises ``CameraLostError`` once the reader has given up and no unread frame is left.
        """
        with self._condition:
            self._condition.wait_for(
                lambda: self._sequence > self._consumed or self.failed is not None, timeout
            )
            if self._sequence > self._consumed:
                self._consumed = self._sequence
                return self._frame
            if self.failed is not None:
                raise CameraLostError(self.failed)
            return None

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._capture.release()

    def __enter__(self) -> FrameGrabber:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
