"""The live loop of ``itemrec-edge run`` in a thread, with the newest frame kept for HTTP.

``LiveCamera`` runs ``itemrec.edge_runtime.live.run_live`` over the server's ``Recognizer``
and publishes the same event stream. It is also the loop's display: it keeps the newest frame
and its answer, and encodes that frame with the aiming square drawn on when a client asks
(once per frame, however many clients watch). A lost camera does not end the server: the
API goes on answering uploads, ``/healthz`` says ``lost``, and the camera is reopened every
``reopen_seconds`` until it delivers again (a new ``ready`` event). A video file therefore
plays in a loop.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from itemrec.edge_runtime.camera import FrameGrabber, center_roi
from itemrec.edge_runtime.camera_sources import DEFAULT_RESOLUTION
from itemrec.edge_runtime.errors import CameraError, CameraLostError
from itemrec.edge_runtime.events import EventStream
from itemrec.edge_runtime.live import LiveOptions, draw_overlay, run_live
from itemrec.edge_runtime.lookup import Identification
from itemrec.edge_runtime.server.recognizer import Recognizer

JPEG_QUALITY = 80


@dataclass(frozen=True)
class LiveFrame:
    number: int  # counts every frame the loop recognised since the server started
    image: np.ndarray  # BGR, as the camera delivered it
    result: Identification
    fps: float


class LiveCamera:
    """Run the live loop in a daemon thread; see the module docstring."""

    def __init__(
        self,
        source: str,
        recognizer: Recognizer,
        events: EventStream,
        options: LiveOptions,
        retries: int = 5,
        resolution: tuple[int, int] = DEFAULT_RESOLUTION,
        reopen_seconds: float = 2.0,
        on_crash: Callable[[BaseException], None] = lambda error: None,
    ):
        self.options, self.retries, self.resolution = options, retries, resolution
        self.reopen_seconds = reopen_seconds
        self._recognizer, self._events, self._on_crash = recognizer, events, on_crash
        self._grabber: FrameGrabber | None = self._open(source)
        self.source = self._grabber.source  # "auto" resolved to the camera it found
        self.state, self.error = "starting", None
        self._newest: LiveFrame | None = None
        self._frames = 0
        self._changed = threading.Condition()
        self._jpeg_lock = threading.Lock()
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-camera", daemon=True)

    def start(self) -> LiveCamera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @property
    def fps(self) -> float:
        newest = self._newest
        return newest.fps if newest and self.state == "running" else 0.0

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                grabber, self._grabber = self._grabber or self._reopen(), None
                if grabber is None:
                    break
                try:
                    run_live(
                        self._recognizer,
                        self._recognizer,
                        grabber,
                        self,
                        self.options,
                        self._events,
                        self._stop,
                    )
                except CameraLostError as error:
                    self.state, self.error = "lost", error.one_line()
                    print(f"itemrec-edge serve: {self.error}; reopening", file=sys.stderr)
        except BaseException as error:  # a bug: the server stops and shows the traceback
            self.state, self.error = "failed", f"{type(error).__name__}: {error}"
            traceback.print_exc()
            self._on_crash(error)
        else:
            self.state = "stopped"

    def _open(self, source: str) -> FrameGrabber:
        return FrameGrabber(source, retries=self.retries, resolution=self.resolution)

    def _reopen(self) -> FrameGrabber | None:
        """A new grabber once the source opens again; None when stopped meanwhile."""
        while not self._stop.wait(self.reopen_seconds):
            try:
                return self._open(self.source)
            except CameraError as error:
                self.error = error.one_line()
        return None

    # -- the display protocol of run_live ---------------------------------------------------
    def show(self, frame_number: int, frame: np.ndarray, result: Identification, fps: float):
        with self._changed:
            self._frames += 1
            self._newest = LiveFrame(self._frames, frame, result, fps)
            self.state, self.error = "running", None
            self._changed.notify_all()
        return not self._stop.is_set()

    def close(self) -> None:
        pass

    # -- readers ----------------------------------------------------------------------------
    def next_frame(self, after: int = 0, timeout: float = 5.0) -> LiveFrame | None:
        """The newest frame numbered above ``after``, waiting up to ``timeout`` s; else None."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._stop.is_set()
                    or (self._newest is not None and self._newest.number > after)
                ),
                timeout,
            )
            newest = self._newest
        return newest if newest is not None and newest.number > after else None

    def jpeg(self, frame: LiveFrame) -> bytes:
        """``frame`` as JPEG with the aiming square and the answer drawn on (cached)."""
        with self._jpeg_lock:
            number, data = self._jpeg
            if number != frame.number:
                image = frame.image.copy()
                draw_overlay(image, frame.result, frame.fps, self.options.roi)
                ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise RuntimeError("OpenCV could not encode a frame as JPEG")
                number, data = frame.number, encoded.tobytes()
                self._jpeg = number, data
            return data

    def shots(self, count: int, interval: float, stall_seconds: float = 10.0) -> list[np.ndarray]:
        """``count`` new frames ``interval`` s apart, cut to the aiming square, as RGB."""
        images, after = [], 0
        while len(images) < count:
            frame = self.next_frame(after, timeout=stall_seconds)
            if frame is None:
                raise CameraLostError(
                    f"no frame from camera {self.source!r} for {stall_seconds:g} s"
                )
            after = frame.number
            roi = center_roi(frame.image, self.options.roi)
            images.append(cv2.cvtColor(roi, cv2.COLOR_BGR2RGB))
            if len(images) < count:
                time.sleep(interval)
        return images
