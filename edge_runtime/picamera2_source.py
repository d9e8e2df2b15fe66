"""The Raspberry Pi Camera Module through Picamera2 (``--camera picamera2[:N]``).

Picamera2 and libcamera come from Raspberry Pi OS (``sudo apt install python3-picamera2``),
never from PyPI: the device venv sees them with ``--system-site-packages`` (extra
``edge-system``, docs/raspberry-pi.md). Only this module imports them, lazily.

The Picamera2 calls made here (and nothing else; the test stand-in implements exactly these):
``Picamera2.global_camera_info()``, ``Picamera2(n)``, ``create_preview_configuration(main=
{"size": (w, h), "format": "RGB888"})``, ``configure``, ``start``, ``camera_controls``,
``set_controls({"AfMode": libcamera.controls.AfModeEnum.Continuous})``,
``capture_array("main", wait=seconds)``, ``stop`` and ``close``. Picamera2's ``RGB888`` is
24-bit pixels laid out B, G, R in memory: OpenCV's BGR, used as it comes.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from itemrec.edge_runtime.errors import CameraError

FRAME_WAIT_SECONDS = 2.0  # one capture_array call; the grabber retries after a None
INSTALL_HINT = (
    "Picamera2 is not importable: on Raspberry Pi OS, `sudo apt install python3-picamera2` "
    "and make the venv with --system-site-packages (docs/raspberry-pi.md)"
)


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError:
        return None
    return Picamera2


def picamera2_cameras() -> int:
    """How many cameras Picamera2 sees; 0 when it is not installed or fails to look."""
    picamera2 = _import_picamera2()
    if picamera2 is None:
        return 0
    try:
        return len(picamera2.global_camera_info())
    except Exception:  # libcamera without a camera stack: no Picamera2 camera to offer
        return 0


class Picamera2Source:
    """Continuous ``RGB888`` frames of Picamera2 camera ``index`` at ``resolution``."""

    live = True
    fps = None
    silent_hint = ""

    def __init__(self, index: int, resolution: tuple[int, int]):
        self.name = f"picamera2:{index}"
        picamera2 = _import_picamera2()
        if picamera2 is None:
            raise CameraError(INSTALL_HINT)
        cameras = picamera2.global_camera_info()
        if index >= len(cameras):
            raise CameraError(
                f"no camera {self.name!r}: Picamera2 sees {len(cameras)} camera(s); check the "
                "ribbon cable and `rpicam-hello --list-cameras`"
            )
        try:
            camera = picamera2(index)
        except RuntimeError as error:  # libcamera could not acquire it: another program has it
            raise CameraError(
                f"camera {self.name!r} is busy or failed to open ({error}): stop the program "
                "using it (`sudo systemctl stop itemrec-edge` if it is the service)"
            ) from error
        self._camera = camera
        try:
            width, height = resolution
            config = camera.create_preview_configuration(
                main={"size": (width, height), "format": "RGB888"}
            )
            camera.configure(config)
            camera.start()
            if "AfMode" in camera.camera_controls:  # Camera Module 3: keep the item in focus
                from libcamera import controls

                camera.set_controls({"AfMode": controls.AfModeEnum.Continuous})
        except RuntimeError as error:
            camera.close()
            raise CameraError(f"camera {self.name!r} cannot start: {error}") from error

    def read(self) -> np.ndarray | None:
        try:
            frame = self._camera.capture_array("main", wait=FRAME_WAIT_SECONDS)
        except (concurrent.futures.TimeoutError, RuntimeError):
            return None
        return frame

    def close(self) -> None:
        try:
            self._camera.stop()
        finally:
            self._camera.close()
