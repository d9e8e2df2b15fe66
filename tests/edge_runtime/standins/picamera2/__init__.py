"""A stand-in for Picamera2 (no libcamera here): exactly the calls itemrec makes, nothing more.

Implemented, with the real signatures and behaviour (picamera2 0.3.x, ``picamera2.py``):

- ``Picamera2.global_camera_info()`` -> list of dicts (``Model``, ``Id``, ``Num``)
- ``Picamera2(camera_num=0)``; an index past the list raises ``IndexError`` like the real one
- ``create_preview_configuration(main={...})`` -> a dict with ``main``'s ``size``/``format``
- ``configure(config)``: refuses odd sizes and unknown formats with ``RuntimeError``
- ``start()``, ``stop()``, ``close()``
- ``camera_controls``: a dict; it has ``AfMode`` when the module has autofocus
- ``set_controls(dict)``
- ``capture_array(name="main", wait=None)``: the next frame of ``name``, H x W x 3 uint8 for
  ``RGB888`` (bytes B, G, R: OpenCV's order); a numeric ``wait`` with no frame in time
  raises ``TimeoutError`` as the real ``Job.get_result`` does; before ``start()``, it waits
  forever in the real library, here it raises ``RuntimeError`` (a test must not hang)

The "sensor" is a video file: ``PICAMERA2_STANDIN_VIDEO``, played at ``PICAMERA2_STANDIN_FPS``
(default 30) and resized to the configured size; after its last frame the camera delivers
nothing (a lost camera). ``PICAMERA2_STANDIN_CAMERAS`` (default 1) cameras are attached,
``PICAMERA2_STANDIN_AF=1`` gives them autofocus, and every call is appended as a JSON line to
``PICAMERA2_STANDIN_LOG`` when set, for tests to check what itemrec asked for.
"""

from __future__ import annotations

import json
import os
import time

import cv2

FORMATS = {"RGB888", "BGR888", "XRGB8888", "XBGR8888"}
_sensor = {"stopped": False}  # once the video ended, re-opened cameras stay dark too


def _log(call: str, **arguments) -> None:
    path = os.environ.get("PICAMERA2_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"call": call, **arguments}, default=str) + "\n")


class Picamera2:
    @staticmethod
    def global_camera_info() -> list[dict]:
        count = int(os.environ.get("PICAMERA2_STANDIN_CAMERAS", "1"))
        return [
            {"Model": "imx708", "Location": 2, "Rotation": 180, "Id": f"/base/i2c@{n}", "Num": n}
            for n in range(count)
        ]

    def __init__(self, camera_num: int = 0):
        self.camera_idx = self.global_camera_info()[camera_num]["Num"]  # IndexError past it
        _log("__init__", camera_num=camera_num)
        self._config: dict | None = None
        self._video: cv2.VideoCapture | None = None
        self._next_frame_at = 0.0
        self._controls: dict = {}
        self.started = False

    @property
    def camera_controls(self) -> dict:
        controls = {"ExposureTime": (75, 11766829, None)}
        if os.environ.get("PICAMERA2_STANDIN_AF") == "1":
            controls["AfMode"] = (0, 2, 0)
        return controls

    def create_preview_configuration(self, main={}) -> dict:  # noqa: B006 (the real signature)
        _log("create_preview_configuration", main=main)
        return {"use_case": "preview", "main": {"format": "XBGR8888", "size": (640, 480), **main}}

    def configure(self, camera_config=None) -> None:
        main = camera_config["main"]
        width, height = main["size"]
        if main["format"] not in FORMATS:
            raise RuntimeError("Bad format " + main["format"] + " in stream main")
        if width % 2 or height % 2:
            raise RuntimeError("width and height should be even")
        _log("configure", main=main)
        self._config = camera_config

    def start(self, config=None, show_preview=False) -> None:
        if self._config is None:
            raise RuntimeError("Camera has not been configured")
        _log("start")
        self._video = cv2.VideoCapture(os.environ["PICAMERA2_STANDIN_VIDEO"])
        self._period = 1.0 / float(os.environ.get("PICAMERA2_STANDIN_FPS", "30"))
        self._next_frame_at = time.monotonic()
        self.started = True

    def set_controls(self, controls) -> None:
        _log("set_controls", controls={k: int(v) for k, v in controls.items()})
        self._controls.update(controls)

    def capture_array(self, name="main", wait=None, signal_function=None):
        if not self.started:
            raise RuntimeError("the stand-in camera was not started")
        time.sleep(max(0.0, self._next_frame_at - time.monotonic()))
        ok, frame = self._video.read() if not _sensor["stopped"] else (False, None)
        if not ok:  # the sensor stopped: nothing arrives within ``wait``
            _sensor["stopped"] = True
            if wait is None or wait is True:
                raise RuntimeError("the stand-in would wait forever here")
            time.sleep(wait)
            raise TimeoutError()
        self._next_frame_at += self._period
        main = self._config[name]
        width, height = main["size"]
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        if main["format"] == "BGR888":  # BGR888 is R, G, B in memory
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return frame

    def stop(self) -> None:
        _log("stop")
        self.started = False

    def close(self) -> None:
        _log("close")
        if self._video is not None:
            self._video.release()
