"""Camera capture in its own thread: the newest frame wins, so inference never waits on it.

The source is whatever ``--camera`` names (``itemrec.edge_runtime.camera_sources``: auto,
Picamera2, V4L2, GStreamer, a video file or URL). A file is played at its own frame rate, like
a camera. A camera is locked for this process (``camera_lock``) while it is open. When the
source stops delivering frames the reader retries (re-opening live sources), then gives up and
``FrameGrabber.failed`` says why.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from itemrec.edge_runtime.camera_lock import CameraLock
from itemrec.edge_runtime.camera_sources import (
    DEFAULT_RESOLUTION,
    CameraSpec,
    FrameSource,
    open_source,
    parse_camera,
    resolve_auto,
)
from itemrec.edge_runtime.errors import CameraError, CameraLostError


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
        camera: int | str | CameraSpec,
        *,
        retries: int = 5,
        retry_delay: float = 0.2,
        realtime: bool | None = None,
        resolution: tuple[int, int] = DEFAULT_RESOLUTION,
    ):
        spec = camera if isinstance(camera, CameraSpec) else parse_camera(camera)
        self.spec = resolve_auto() if spec.kind == "auto" else spec
        self.source = self.spec.name  # what messages call it
        self.retries = retries
        self.retry_delay = retry_delay
        self.resolution = resolution
        self._condition = threading.Condition()
        self._frame: np.ndarray | None = None
        self._sequence = 0
        self._consumed = 0
        self._stop = threading.Event()
        self.failed: str | None = None
        self._lock = CameraLock(self.source).acquire() if self.spec.lockable else None
        try:
            self._reader: FrameSource | None = open_source(self.spec, resolution)
        except CameraError:
            self._release_lock()
            raise
        self._live = self._reader.live
        realtime = not self._live if realtime is None else realtime
        fps = self._reader.fps
        self._period = 1.0 / fps if realtime and fps else 0.0
        self._silent_hint = getattr(self._reader, "silent_hint", "")
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)

    def start(self) -> FrameGrabber:
        self._thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        next_due = time.monotonic()
        while not self._stop.is_set():
            frame = self._reader.read() if self._reader is not None else None
            if frame is not None:
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
                hint = self._silent_hint if self._sequence == 0 else ""
                self._give_up(
                    f"camera {self.source!r} stopped delivering frames "
                    f"({self.retries} retries, {self.retry_delay:g} s apart){hint}"
                )
                return
            self._stop.wait(self.retry_delay)
            next_due = time.monotonic()
            if self._live:
                self._reopen()

    def _reopen(self) -> None:
        self._close_reader()
        try:
            self._reader = open_source(self.spec, self.resolution)
        except CameraError:
            self._reader = None  # no frame: counts as the next retry

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

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
        self._close_reader()
        self._release_lock()

    def __enter__(self) -> FrameGrabber:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
