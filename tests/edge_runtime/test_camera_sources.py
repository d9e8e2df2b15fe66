"""Camera sources: parsing --camera, Picamera2 (against the stand-in), V4L2 nodes, GStreamer,
auto selection, and the camera lock that keeps enrolment off the service's camera.

Nothing here touches real camera hardware: Picamera2 is ``standins/picamera2`` (the API
subset itemrec calls, listed in its docstring) fed by a video file, and V4L2 nodes are a
fake ``/sys/class/video4linux``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from edge_helpers import INT8_MODEL, write_video

from itemrec.edge_runtime import camera_sources
from itemrec.edge_runtime.camera_sources import CameraSpec, gstreamer_available, parse_camera
from itemrec.edge_runtime.cli import main
from itemrec.edge_runtime.errors import CameraError, ExitCode, InputError
from itemrec.edge_runtime.events import DEFAULT_STABLE_FRAMES
from itemrec.edge_runtime.gallery import Gallery
from itemrec.edge_runtime.images import load_image
from itemrec.edge_runtime.interpreter import EmbeddingModel

STANDINS = Path(__file__).resolve().parent / "standins"
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "unseen"


def test_parse_camera():
    assert parse_camera("auto") == CameraSpec("auto")
    assert parse_camera("picamera2") == CameraSpec("picamera2", 0)
    assert parse_camera("picamera2:1") == CameraSpec("picamera2", 1)
    assert parse_camera("0") == parse_camera(0) == CameraSpec("v4l2", "/dev/video0")
    assert parse_camera("/dev/video2") == CameraSpec("v4l2", "/dev/video2")
    assert parse_camera("gst:videotestsrc ! appsink") == CameraSpec(
        "gstreamer", "videotestsrc ! appsink"
    )
    assert parse_camera("a ! b").kind == "gstreamer"
    assert parse_camera("clip.mp4") == CameraSpec("file", "clip.mp4")
    assert parse_camera("rtsp://10.0.0.2/cam").kind == "file"
    assert parse_camera("picamera2:0").lockable and not parse_camera("clip.mp4").lockable
    with pytest.raises(InputError, match="number after 'picamera2:'"):
        parse_camera("picamera2:front")


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """Put the Picamera2 stand-in on sys.path; returns a function reading its call log."""
    monkeypatch.syspath_prepend(str(STANDINS))
    log = tmp_path / "picamera2_calls.jsonl"
    monkeypatch.setenv("PICAMERA2_STANDIN_LOG", str(log))
    yield lambda: [json.loads(line) for line in log.read_text().splitlines()]
    for name in ("picamera2", "libcamera"):
        sys.modules.pop(name, None)


def run_args(db, *options) -> list[str]:
    return ["run", "--model", str(INT8_MODEL), "--db", str(db), "--headless", *map(str, options)]


# Three of the bundled sample's items whose tiny-model embeddings are far apart (cosine <= 0.97).
SAMPLE_ITEMS = ("badger", "black_nib", "admission_tickets")


def test_picamera2_run_recognizes_sample_items_and_emits_debounced_events(
    tmp_path, standin, monkeypatch
):
    model = EmbeddingModel(INT8_MODEL)
    images = {
        code: load_image(SAMPLE / code / sorted(os.listdir(SAMPLE / code))[0])
        for code in SAMPLE_ITEMS
    }
    db = tmp_path / "sample.db"
    with Gallery.create(db, model.spec) as gallery:
        for code, image in images.items():
            gallery.enroll(code, code.replace("_", " "), model.embed_many(image[None]))
    frames = [images["badger"]] * 10 + [images["black_nib"]] * 10
    monkeypatch.setenv("PICAMERA2_STANDIN_VIDEO", str(write_video(tmp_path / "s.avi", frames)))
    monkeypatch.setenv("PICAMERA2_STANDIN_AF", "1")
    options = ("--camera", "picamera2", "--resolution", "320x320", "--roi", 1, "--retries", 0)
    result = CliRunner().invoke(main, run_args(db, *options))
    assert result.exit_code == ExitCode.CAMERA_LOST, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["ready", "scan", "scan", "camera_lost"]
    assert events[0]["source"] == "picamera2:0" and events[0]["items"] == 3
    confirmed = [("badger", DEFAULT_STABLE_FRAMES), ("black_nib", DEFAULT_STABLE_FRAMES)]
    assert [(e["code"], e["frames"]) for e in events[1:3]] == confirmed
    assert events[2]["name"] == "black nib"
    assert min(e["score"] for e in events[1:3]) > 0.99  # the right colours: BGR kept as is
    calls = standin()
    assert calls[:5] == [
        {"call": "__init__", "camera_num": 0},
        {"call": "create_preview_configuration", "main": {"size": [320, 320], "format": "RGB888"}},
        {"call": "configure", "main": {"format": "RGB888", "size": [320, 320]}},
        {"call": "start"},
        {"call": "set_controls", "controls": {"AfMode": 2}},  # continuous autofocus
    ]
    assert [c["call"] for c in calls[-2:]] == ["stop", "close"]  # retried once, then released


def test_picamera2_errors_name_the_fix(tmp_path, db, standin, monkeypatch, reference):
    video = write_video(tmp_path / "s.avi", [reference["images"][0]] * 3)
    monkeypatch.setenv("PICAMERA2_STANDIN_VIDEO", str(video))
    result = CliRunner().invoke(main, run_args(db, "--camera", "picamera2:1"))
    assert result.exit_code == ExitCode.CAMERA_UNAVAILABLE
    assert "Picamera2 sees 1 camera(s)" in result.output
    # Without autofocus (Camera Module 2) no AfMode is set.
    result = CliRunner().invoke(main, run_args(db, "--camera", "picamera2", "--max-frames", 1))
    assert result.exit_code == 0, result.output
    assert "set_controls" not in [c["call"] for c in standin()]


def test_picamera2_missing_says_how_to_install(db):
    assert "picamera2" not in sys.modules  # this machine has no Picamera2
    result = CliRunner().invoke(main, run_args(db, "--camera", "picamera2"))
    assert result.exit_code == ExitCode.CAMERA_UNAVAILABLE
    assert "sudo apt install python3-picamera2" in result.output
    assert "--system-site-packages" in result.output


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """A fake /sys/class/video4linux: ``sysfs({0: "unicam-image", ...})``."""
    root = tmp_path / "video4linux"

    def make(nodes: dict[int, str]) -> None:
        for number, name in nodes.items():
            (root / f"video{number}").mkdir(parents=True)
            (root / f"video{number}" / "name").write_text(name + "\n")

    monkeypatch.setattr(camera_sources, "SYSFS_V4L", root)
    return make


@pytest.mark.parametrize("node", ["unicam-image", "rp1-cfe-csi2_ch0"])
def test_a_libcamera_only_v4l2_node_says_use_picamera2(db, sysfs, node):
    sysfs({0: node})
    result = CliRunner().invoke(main, run_args(db, "--camera", "0"))
    assert result.exit_code == ExitCode.CAMERA_UNAVAILABLE
    assert f"/dev/video0 is '{node}', a libcamera camera" in result.output
    assert "use --camera picamera2" in result.output


def test_auto_prefers_picamera2_then_the_first_v4l2_camera(sysfs, standin, monkeypatch):
    from itemrec.edge_runtime.camera_sources import resolve_auto

    assert resolve_auto() == CameraSpec("picamera2", 0)  # the stand-in reports one camera
    monkeypatch.setenv("PICAMERA2_STANDIN_CAMERAS", "0")
    with pytest.raises(CameraError, match="no camera found"):
        resolve_auto()
    # A Pi 4 with a Camera Module (libcamera-only nodes), its codecs, and a USB webcam.
    sysfs({0: "unicam-image", 1: "unicam-embedded", 10: "bcm2835-codec-decode", 12: "USB Cam"})
    sysfs({13: "USB Cam metadata"})
    assert resolve_auto() == CameraSpec("v4l2", "/dev/video12")


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_a_gstreamer_pipeline_without_gstreamer_says_why(db):
    pipeline = "gst:libcamerasrc ! videoconvert ! appsink"
    result = CliRunner().invoke(main, run_args(db, "--camera", pipeline))
    assert result.exit_code == ExitCode.CAMERA_UNAVAILABLE
    assert "this OpenCV was built without GStreamer" in result.output
    assert "--camera picamera2" in result.output


def test_enroll_while_the_service_holds_the_camera_says_busy(tmp_path, db, reference):
    video = write_video(tmp_path / "long.avi", [reference["images"][0]] * 600)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(STANDINS), os.environ.get("PYTHONPATH", "")]),
        PICAMERA2_STANDIN_VIDEO=str(video),
    )
    service = subprocess.Popen(
        [sys.executable, "-m", "itemrec.edge_runtime.cli", *run_args(db, "--camera", "picamera2")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(service.stdout.readline())["event"] == "ready"
        enroll = ["enroll", "--model", str(INT8_MODEL), "--db", str(db), "--code", "D"]
        result = CliRunner().invoke(main, [*enroll, "--camera", "picamera2"])
        assert result.exit_code == ExitCode.CAMERA_UNAVAILABLE, result.output
        assert "camera 'picamera2:0' is busy: cli.py run" in result.output
        assert f"(pid {service.pid})" in result.output
        assert "sudo systemctl stop itemrec-edge" in result.output
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=10)
    assert service.returncode == 0
    with Gallery.open(db) as gallery:
        assert "D" not in {item.code for item in gallery.items()}  # nothing half-enrolled
