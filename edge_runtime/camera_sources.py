"""Camera sources: what ``--camera`` names, opened behind one small interface.

============================  =================================================================
``--camera``                  source
============================  =================================================================
``auto`` (the default)        Picamera2 when it imports and sees a camera, else the first V4L2
                              camera (``/dev/videoN``, skipping codec and libcamera-only nodes)
``picamera2`` / ``picamera2:N``  the Camera Module (CSI) through Picamera2 (libcamera)
``0`` / ``/dev/videoN``       a V4L2 device through OpenCV: USB webcams
``gst:PIPELINE``              a GStreamer pipeline ending in ``appsink`` (also any string with
                              ``!``); needs an OpenCV built with GStreamer
a file or URL                 a video file (played at its own frame rate) or a stream
============================  =================================================================

A :class:`FrameSource` has a ``name`` for messages, says whether it is ``live`` (a camera is
re-opened after failed reads, a file is not), knows its ``fps`` when it is a file, and
``read()`` returns a BGR frame or None. ``itemrec.edge_runtime.camera.FrameGrabber`` reads it
in a thread and keeps the newest frame.

On Raspberry Pi OS the Camera Module also shows up as V4L2 nodes (``unicam-image`` on a Pi 4,
``rp1-cfe-*`` on a Pi 5) that OpenCV opens but never reads (OpenCV issue 22820, won't fix):
such a node is refused with a message that says ``--camera picamera2``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from itemrec.edge_runtime.errors import CameraError, InputError

# 640x480: the centre region (--roi 0.6) is then 288 px high, more than the largest model input
# (224 px), so no model sees an upscaled image, and every USB webcam offers this size.
DEFAULT_RESOLUTION = (640, 480)
SYSFS_V4L = Path("/sys/class/video4linux")
DEV = Path("/dev")
# V4L2 node names (sysfs ``name``) of the Pi's CSI receivers and ISPs: only libcamera can
# stream from them (kernel drivers bcm2835-unicam, rp1-cfe, bcm2835-isp, pisp_be).
LIBCAMERA_ONLY_NODES = ("unicam", "rp1-cfe", "bcm2835-isp", "pispbe")
# Video nodes that are no cameras at all: the Pi's hardware codecs.
CODEC_NODES = ("bcm2835-codec", "rpi-hevc-dec", "rpivid")
PICAMERA2_HINT = "use --camera picamera2 (docs/raspberry-pi.md)"


class FrameSource(Protocol):
    name: str
    live: bool
    fps: float | None

    def read(self) -> np.ndarray | None:
        """The next BGR frame (H x W x 3 uint8), or None when none came."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class CameraSpec:
    """A parsed ``--camera`` value: ``kind`` is auto, picamera2, v4l2, gstreamer or file."""

    kind: str
    target: str | int = ""

    @property
    def lockable(self) -> bool:
        """A device one process at a time can read (a camera, not a file or a stream)."""
        return self.kind in ("picamera2", "v4l2")

    @property
    def name(self) -> str:
        if self.kind == "picamera2":
            return f"picamera2:{self.target}"
        return str(self.target) if self.kind != "auto" else "auto"


def parse_camera(text: str | int) -> CameraSpec:
    """The ``--camera`` value as a :class:`CameraSpec` (see the module docstring)."""
    if isinstance(text, int):
        return CameraSpec("v4l2", v4l2_path(text))
    text = text.strip()
    lowered = text.lower()
    if lowered == "auto":
        return CameraSpec("auto")
    if lowered == "picamera2" or lowered.startswith("picamera2:"):
        index = text.partition(":")[2] or "0"
        if not index.isdigit():
            raise InputError(
                f"--camera {text!r}: the camera number after 'picamera2:' is 0, 1, ..."
            )
        return CameraSpec("picamera2", int(index))
    if lowered.startswith("gst:"):
        return CameraSpec("gstreamer", text[4:].strip())
    if "!" in text:
        return CameraSpec("gstreamer", text)
    if text.isdigit():
        return CameraSpec("v4l2", v4l2_path(int(text)))
    if text.startswith("/dev/"):
        return CameraSpec("v4l2", text)
    return CameraSpec("file", text)


def v4l2_path(index: int) -> str:
    return str(DEV / f"video{index}")


def v4l2_node_name(device: str) -> str:
    """The driver's name of a V4L2 node (sysfs), '' when unknown (not Linux, no such node)."""
    real = Path(device).resolve() if Path(device).exists() else Path(device)
    try:
        return (SYSFS_V4L / real.name / "name").read_text().strip()
    except OSError:
        return ""


def is_libcamera_only(node_name: str) -> bool:
    return node_name.startswith(LIBCAMERA_ONLY_NODES)


def v4l2_cameras() -> list[str]:
    """``/dev/videoN`` of every V4L2 node that may be a camera, lowest N first."""
    nodes = []
    for entry in SYSFS_V4L.glob("video*") if SYSFS_V4L.is_dir() else []:
        number = entry.name.removeprefix("video")
        name = v4l2_node_name(entry.name)
        if number.isdigit() and not (is_libcamera_only(name) or name.startswith(CODEC_NODES)):
            nodes.append(int(number))
    return [v4l2_path(n) for n in sorted(nodes)]


def gstreamer_available() -> bool:
    """True when this OpenCV was built with GStreamer (``cv2.getBuildInformation()``)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "GStreamer":
            return value.strip().upper().startswith("YES")
    return False


class OpenCVSource:
    """A V4L2 camera, GStreamer pipeline, video file or stream read with ``cv2.VideoCapture``."""

    def __init__(self, spec: CameraSpec, resolution: tuple[int, int] = DEFAULT_RESOLUTION):
        self.name = spec.name
        self.live = not (spec.kind == "file" and Path(str(spec.target)).is_file())
        self.silent_hint = ""  # said when the source opens but never delivers a frame
        if spec.kind == "gstreamer":
            if not gstreamer_available():
                raise CameraError(
                    "this OpenCV was built without GStreamer (the PyPI opencv-python wheels "
                    "are), so it cannot open a pipeline: use --camera picamera2, or Pi OS's "
                    "python3-opencv with the edge-system extra (docs/raspberry-pi.md)"
                )
            capture = cv2.VideoCapture(str(spec.target), cv2.CAP_GSTREAMER)
        elif spec.kind == "v4l2":
            node = v4l2_node_name(str(spec.target))
            if is_libcamera_only(node):
                raise CameraError(
                    f"{spec.target} is {node!r}, a libcamera camera (the Camera Module) that "
                    f"OpenCV cannot read: {PICAMERA2_HINT}"
                )
            self.silent_hint = f"; if it is a Camera Module, {PICAMERA2_HINT}"
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            target = spec.target
            match = re.fullmatch(r"/dev/video(\d+)", str(target))
            if match and not Path(str(target)).exists():
                target = int(match.group(1))  # no device file: let OpenCV say it cannot open
            capture = cv2.VideoCapture(target, backend)
            if capture.isOpened():
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, resolution[0])
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, resolution[1])
        else:
            capture = cv2.VideoCapture(str(spec.target))
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open camera {self.name!r}")
        self._capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if not self.live and fps and 0 < fps < 1000 else None

    def read(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def close(self) -> None:
        self._capture.release()


def resolve_auto() -> CameraSpec:
    """``--camera auto``: Picamera2's first camera if it imports and sees one, else V4L2's."""
    from itemrec.edge_runtime.picamera2_source import picamera2_cameras

    if picamera2_cameras() > 0:
        return CameraSpec("picamera2", 0)
    cameras = v4l2_cameras()
    if not cameras:
        raise CameraError(
            "no camera found: Picamera2 sees none (or is not installed) and there is no V4L2 "
            "camera (/dev/video*); plug one in or name it with --camera"
        )
    return CameraSpec("v4l2", cameras[0])


def open_source(
    spec: CameraSpec | str | int, resolution: tuple[int, int] = DEFAULT_RESOLUTION
) -> FrameSource:
    """Open what ``spec`` names; raise ``CameraError`` when it cannot be opened."""
    spec = spec if isinstance(spec, CameraSpec) else parse_camera(spec)
    if spec.kind == "auto":
        spec = resolve_auto()
    if spec.kind == "picamera2":
        from itemrec.edge_runtime.picamera2_source import Picamera2Source

        return Picamera2Source(int(spec.target), resolution)
    return OpenCVSource(spec, resolution)
